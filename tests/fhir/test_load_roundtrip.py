"""After loading the 100 default patients, the server holds exactly the bundles' resources.

Every resource of every bundle is on the server with the same content (modulo ``meta``), its
``urn:uuid:`` references rewritten to ``Type/id``; every reference on the server resolves.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from fhir_expect import Key, dataset, walk_references
from fhir_support import FhirTarget

SEKMET_DEVIATIONS: dict[str, str] = {}

READ_CONCURRENCY = 8


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


def first_difference(expected: Any, got: Any, path: str = "") -> str | None:
    """Where two JSON values first differ, as a readable path."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(set(expected) | set(got)):
            if key not in got:
                return f"{path}.{key}: missing on the server"
            if key not in expected:
                return f"{path}.{key}: added by the server ({str(got[key])[:80]})"
            if (diff := first_difference(expected[key], got[key], f"{path}.{key}")) is not None:
                return diff
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{path}: {len(expected)} items expected, {len(got)} on the server"
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            if (diff := first_difference(a, b, f"{path}[{i}]")) is not None:
                return diff
        return None
    if expected != got or type(expected) is not type(got):
        return f"{path}: expected {expected!r}, server has {got!r}"
    return None


def check_same(expected: dict[str, Any], got: dict[str, Any]) -> str | None:
    return first_difference(without_meta(expected), without_meta(got), f"{expected['resourceType']}/{expected['id']}")


@pytest.fixture(scope="module")
def server_resources(fhir: FhirTarget) -> dict[Key, dict[str, Any]]:
    """Everything the server holds of the data set's resource types, paged with _count=1000."""
    held: dict[Key, dict[str, Any]] = {}
    for rtype in sorted(dataset().by_type):
        result = fhir.search_all(rtype, {"_count": 1000})
        for resource in result.resources:
            key = (resource["resourceType"], resource["id"])
            assert key not in held, f"{key} returned twice while paging {rtype}"
            held[key] = resource
    return held


def test_every_bundle_resource_is_stored_unchanged(server_resources: dict[Key, dict[str, Any]]) -> None:
    expected = dataset().resources
    missing = sorted(set(expected) - set(server_resources))
    extra = sorted(set(server_resources) - set(expected))
    assert not missing, f"{len(missing)} bundle resources not on the server, e.g. {missing[:5]}"
    assert not extra, f"{len(extra)} resources on the server that no bundle has, e.g. {extra[:5]}"
    differences = [d for key, resource in expected.items() if (d := check_same(resource, server_resources[key]))]
    assert not differences, f"{len(differences)} resources differ, e.g.:\n" + "\n".join(differences[:10])


def test_every_stored_resource_has_version_meta(server_resources: dict[Key, dict[str, Any]]) -> None:
    lacking = [key for key, r in server_resources.items()
               if not (r.get("meta") or {}).get("versionId") or not (r.get("meta") or {}).get("lastUpdated")]
    assert not lacking, f"{len(lacking)} resources without meta.versionId/lastUpdated, e.g. {lacking[:5]}"


def _reference_key(reference: str, base_url: str) -> Key | None:
    if reference.startswith(base_url + "/"):
        reference = reference[len(base_url) + 1:]
    parts = reference.split("/_history/")[0].split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else None


def test_no_dangling_references(fhir: FhirTarget, server_resources: dict[Key, dict[str, Any]]) -> None:
    dangling, unresolved, checked = [], [], 0
    for key, resource in server_resources.items():
        for holder in walk_references(resource):
            reference = holder["reference"]
            if reference.startswith("#"):  # a contained resource
                continue
            checked += 1
            if reference.startswith("urn:"):
                unresolved.append((key, reference))
                continue
            target = _reference_key(reference, fhir.base_url)
            if target is None or target not in server_resources:
                dangling.append((key, reference))
    assert checked > 100_000
    assert not unresolved, f"{len(unresolved)} urn: references left unresolved, e.g. {unresolved[:5]}"
    assert not dangling, f"{len(dangling)} dangling references, e.g. {dangling[:5]}"


def read_sample() -> list[Key]:
    """All resources of three patients, every Patient, Organization and Practitioner, and 500 more at random."""
    data = dataset()
    families = ("Rodríguez", "Huels", "Tremblay")
    owners = {data.patient_by_name(f)["id"] for f in families}
    keys = {key for key, pid in data.patient_of.items() if pid in owners}
    keys |= {key for key in data.resources if key[0] in ("Patient", "Organization", "Practitioner")}
    rest = sorted(set(data.resources) - keys)
    keys |= set(random.Random(4548).sample(rest, 500))
    return sorted(keys)


async def read_all(fhir: FhirTarget, keys: list[Key]) -> list[str]:
    """GET /Type/id for every key; a problem report per failing key."""
    expected = dataset().resources
    problems: list[str] = []
    queue: asyncio.Queue[Key] = asyncio.Queue()
    for key in keys:
        queue.put_nowait(key)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            rtype, rid = queue.get_nowait()
            response = await client.get(f"{fhir.base_url}/{rtype}/{rid}")
            if response.status_code != 200:
                problems.append(f"GET {rtype}/{rid} -> {response.status_code}: {response.text[:200]}")
                continue
            body = response.json()
            version = (body.get("meta") or {}).get("versionId")
            if response.headers.get("ETag") != f'W/"{version}"':
                problems.append(f"GET {rtype}/{rid}: ETag {response.headers.get('ETag')!r}, versionId {version!r}")
            if (diff := check_same(expected[(rtype, rid)], body)) is not None:
                problems.append(diff)

    async with httpx.AsyncClient(timeout=60, headers={"Accept": "application/fhir+json"}) as client:
        await asyncio.gather(*(worker(client) for _ in range(READ_CONCURRENCY)))
    return problems


async def test_read_by_id_sample(fhir: FhirTarget) -> None:
    keys = read_sample()
    problems = await read_all(fhir, keys)
    assert not problems, f"{len(problems)} of {len(keys)} reads wrong, e.g.:\n" + "\n".join(problems[:10])


@pytest.mark.slow
async def test_read_every_resource_by_id(fhir: FhirTarget) -> None:
    keys = sorted(dataset().resources)
    problems = await read_all(fhir, keys)
    assert not problems, f"{len(problems)} of {len(keys)} reads wrong, e.g.:\n" + "\n".join(problems[:10])


def test_reference_targets_read(fhir: FhirTarget, server_resources: dict[Key, dict[str, Any]]) -> None:
    """A sample of reference targets, read through their reference as written on the server."""
    targets: dict[str, None] = {}
    for resource in list(server_resources.values())[::50]:
        for holder in walk_references(resource):
            if not holder["reference"].startswith("#"):
                targets.setdefault(holder["reference"], None)
    assert len(targets) > 100
    failing = []
    for reference in list(targets)[:300]:
        url = reference if reference.startswith("http") else f"{fhir.base_url}/{reference}"
        if (status := fhir.get(url).status_code) != 200:
            failing.append((reference, status))
    assert not failing, failing[:10]
