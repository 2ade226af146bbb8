"""The ``embedded`` specs: an in-process CPU model (Gemma 3 270M + the packaged trained adapter by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medagent.models.backends import BackendKind, register_backend
from medagent.models.base import ModelBackend, ModelError


def _claims(spec: str) -> bool:
    return spec == "embedded" or spec.startswith("embedded:")


def _load(spec: str, model_name: str | None = None, **opts: Any) -> ModelBackend:
    """ "embedded" (the default model + the packaged trained adapter), "embedded:base" (the untrained model),
    "embedded:<model>" (see ``EMBEDDED_MODELS``) or "embedded:<adapter folder>"."""
    from medagent.models.adapter import ADAPTER_FILE, shipped_adapter
    from medagent.models.embedded import (
        BASE_KEY,
        DEFAULT_EMBEDDED_MODEL,
        EMBEDDED_MODELS,
        EmbeddedBackend,
        read_adapter_record,
    )

    key = spec.partition(":")[2] or model_name or ""
    if not key:  # the default: the base model with the packaged trained adapter (when the package has one)
        return EmbeddedBackend(model=DEFAULT_EMBEDDED_MODEL, adapter=shipped_adapter(), **opts)
    if key == BASE_KEY:
        return EmbeddedBackend(model=DEFAULT_EMBEDDED_MODEL, **opts)
    if (Path(key) / ADAPTER_FILE).exists():  # embedded:PATH/TO/ADAPTER (medagent train sft --out)
        return EmbeddedBackend(model=read_adapter_record(key).base, adapter=key, **opts)
    if key not in EMBEDDED_MODELS:
        raise ModelError(
            "config",
            f"unknown embedded model {key!r}; choose one of "
            f"{', '.join(sorted([BASE_KEY, *EMBEDDED_MODELS]))} or an adapter folder",
        )
    return EmbeddedBackend(model=key, **opts)


BACKEND = register_backend(
    BackendKind(
        name="embedded",
        claims=_claims,
        load=_load,
        usage="'embedded', 'embedded:<model>' or 'embedded:<adapter folder>'",
    )
)
