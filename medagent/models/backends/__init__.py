"""Model backends by ``--model`` spec: one :class:`BackendKind` declaration per backend, found by the registry.

A backend kind says which specs it claims (``"embedded"``, ``"embedded:<model>"``, an ``http(s)://`` base URL
...) and builds the backend for one. The kinds shipped with medagent are the modules of this package (each
registers itself on import and imports its heavy dependencies only when it builds a backend); another
package adds one by an entry point in the ``medagent.model_backends`` group whose object is a
:class:`BackendKind`. :func:`load_backend` asks the kinds in registration order; the first that claims the
spec builds it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from medagent.models.base import ModelBackend, ModelError

__all__ = ["ENTRY_POINT_GROUP", "BackendKind", "backend_kinds", "load_backend", "register_backend"]

ENTRY_POINT_GROUP = "medagent.model_backends"


@dataclass(frozen=True, kw_only=True)
class BackendKind:
    """One kind of model backend: ``claims(spec)`` says whether a ``--model`` spec names it, ``load(spec,
    model_name, **opts)`` builds the backend (``model_name``: the served model, or the model the spec leaves
    open); ``usage`` is how its specs are written, shown when no kind claims a spec."""

    name: str
    usage: str
    claims: Callable[[str], bool]
    load: Callable[..., ModelBackend]


_KINDS: dict[str, BackendKind] = {}
_discovered = False


def register_backend(kind: BackendKind) -> BackendKind:
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"model backend {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in pkgutil.iter_modules(__path__, f"{__name__}."):
        importlib.import_module(module.name)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        kind = point.load()
        if not isinstance(kind, BackendKind):
            raise ModelError(
                "config",
                f"entry point {point.name!r} ({point.value}) of {ENTRY_POINT_GROUP} is not a "
                "medagent.models.backends.BackendKind",
            )
        register_backend(kind)


def backend_kinds() -> list[BackendKind]:
    """Every registered backend kind, shipped ones first."""
    _discover()
    return list(_KINDS.values())


def load_backend(spec: str, model_name: str | None = None, **opts: Any) -> ModelBackend:
    """The backend a ``--model`` spec names (see each kind's ``usage``); ``opts`` go to its constructor.

    ``model_name`` is the served model name for a URL (None: the server's first model) and the embedded model for
    "embedded" (when the spec names none). A spec no kind claims is a ``ModelError("config")`` listing them.
    """
    spec = spec.strip()
    for kind in backend_kinds():
        if kind.claims(spec):
            return kind.load(spec, model_name, **opts)
    usages = "; ".join(kind.usage for kind in backend_kinds())
    raise ModelError("config", f"unknown model spec {spec!r}: use {usages}")
