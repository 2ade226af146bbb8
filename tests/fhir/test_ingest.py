"""Loading bundles into the store: the packaged patients skip re-validation only because their
archive is the validated one; any other data is validated, and a bad bundle loads nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from medagent.data import default_archive, iter_bundles
from medagent.fhir.bundles import as_upsert_transaction
from medagent.fhir.server.loading import (
    VALIDATED_ARCHIVE_SHA256,
    is_validated_archive,
    load_into_store,
)
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.store import Store
from medagent.fhir.server.transaction import Transaction


@pytest.mark.slow
def test_packaged_archive_is_the_validated_one() -> None:
    """The trust the first-start load places in the packaged archive, checked: same bytes, and
    every resource in it passes the server's validation."""
    assert hashlib.sha256(default_archive().read_bytes()).hexdigest() == VALIDATED_ARCHIVE_SHA256
    checked = 0
    for name, bundle in iter_bundles():
        transaction = Transaction(as_upsert_transaction(bundle)["entry"])
        assert transaction.validation is not None
        assert transaction.validation.result() == {}, f"{name} has invalid resources"
        checked += transaction.resources
    assert checked == sum(len(b["entry"]) for _, b in iter_bundles())


def test_only_the_packaged_archive_is_trusted(tmp_path: Path) -> None:
    assert is_validated_archive(None) == (
        hashlib.sha256(default_archive().read_bytes()).hexdigest() == VALIDATED_ARCHIVE_SHA256)
    assert not is_validated_archive([default_archive()])
    assert not is_validated_archive([tmp_path])


def _bundle(status: str) -> dict:
    patient_urn = "urn:uuid:7c1b2f1e-0000-4000-8000-000000000001"
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": patient_urn, "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "id": "zq-ingest-patient", "name": [{"family": "Zqingest"}]}},
        {"fullUrl": "urn:uuid:7c1b2f1e-0000-4000-8000-000000000002", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "id": "zq-ingest-obs", "status": status,
                      "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
                      "subject": {"reference": patient_urn}, "effectiveDateTime": "2020-01-01"}},
    ]}


def test_other_bundles_are_validated_and_a_bad_one_loads_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    (folder / "a_good.json").write_bytes(orjson.dumps(_bundle("final")))
    (folder / "b_bad.json").write_bytes(orjson.dumps(_bundle("bogus")))
    store = Store(tmp_path / "ingest.sqlite")
    try:
        with pytest.raises(FhirError) as raised:
            load_into_store(store, [folder / "b_bad.json"])
        assert "b_bad.json" in raised.value.diagnostics and "Observation.status" in raised.value.diagnostics
        assert store.is_empty()
        (folder / "a_good_again.json").write_bytes(orjson.dumps(_bundle("final")))
        # the good bundles before a bad one are not kept either (the first is written before the bad one is read)
        with pytest.raises(FhirError):
            load_into_store(store, [folder / "a_good.json", folder / "a_good_again.json", folder / "b_bad.json"])
        assert store.is_empty()
        assert load_into_store(store, [folder / "a_good.json"]) == (1, 2)
        stored = store.read("Observation", "zq-ingest-obs")
        assert stored is not None and stored.body["subject"] == {"reference": "Patient/zq-ingest-patient"}
    finally:
        store.close()
