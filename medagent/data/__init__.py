"""The default data set: 100 Synthea R4 patient bundles shipped compressed with the package.

Bundles are read from the packaged ZIP, or from a user folder/ZIP/files of Synthea output.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

DEFAULT_ARCHIVE_NAME = "synthea/patients.zip"


def default_archive() -> Path:
    """Path of the packaged ZIP of Synthea bundles."""
    return Path(str(resources.files(__package__).joinpath(DEFAULT_ARCHIVE_NAME)))


class BundleSourceError(ValueError):
    """A path given as bundle source does not exist or holds no bundles."""


def _iter_zip(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".json"):
                yield name, orjson.loads(archive.read(name))


def iter_bundles(sources: Iterable[Path] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (name, bundle) for each bundle in the given files, folders or ZIPs, sorted by name.

    With no sources, yields the packaged default patients.
    """
    paths = list(sources) if sources else [default_archive()]
    for path in paths:
        if not path.exists():
            raise BundleSourceError(f"bundle source not found: {path}")
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise BundleSourceError(f"no *.json bundles in folder: {path}")
            for file in files:
                yield file.name, _load_json(file)
        elif path.suffix == ".zip":
            yield from _iter_zip(path)
        else:
            yield path.name, _load_json(path)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise BundleSourceError(f"{path}: not valid JSON ({exc})") from exc


def patient_ids(sources: Iterable[Path] | None = None) -> list[str]:
    """Patient.id of every bundle, in bundle-name order."""
    ids = []
    for _, bundle in iter_bundles(sources):
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Patient":
                ids.append(resource["id"])
    return ids
