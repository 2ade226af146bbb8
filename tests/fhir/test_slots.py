"""Task databases ("slots") over one template: a slot answers like its own copy of the template, resets to
it exactly, keeps its writes to itself, and does no more database work than the template would; over HTTP,
every URL a slot's server writes names the slot."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from medagent.fhir.server.everything import everything
from medagent.fhir.server.history import history_bundle
from medagent.fhir.server.lastn import last_n
from medagent.fhir.server.outcome import FhirError
from medagent.fhir.server.process import EmbeddedServer
from medagent.fhir.server.search import matching_ids, search
from medagent.fhir.server.slots import SlotStore, SlotStores, Template
from medagent.fhir.server.store import Store
from medagent.serve.cds_hooks.services import SERVICES

BASE = "http://fhir.test"
HBA1C = "http://loinc.org|4548-4"
TABLES = ("resource", "resource_version", "change", "snapshot", "idx_token", "idx_ref", "idx_date", "idx_string",
          "idx_quantity")


@pytest.fixture(scope="module")
def template(synthea_db: Path) -> Template:
    return Template.open(synthea_db)


@pytest.fixture
def slots(template: Template, tmp_path: Path) -> Iterator[SlotStores]:
    made = SlotStores(template.path, tmp_path / "slots", 2)
    yield made
    made.close()


@pytest.fixture
def plain(synthea_db: Path, tmp_path: Path) -> Iterator[Store]:
    """The template's own copy, as the one-database server keeps it."""
    shutil.copyfile(synthea_db, tmp_path / "plain.sqlite")
    store = Store(tmp_path / "plain.sqlite")
    yield store
    store.close()


def a_patient(store: Store) -> str:
    """The patient with the most HbA1c results (deterministic: the same on every copy)."""
    rows = store.query("SELECT ref, COUNT(*) FROM idx_ref r JOIN idx_token t USING (rid) WHERE r.param = 'subject' "
                       "AND t.param = 'code' AND t.code = '4548-4' GROUP BY ref ORDER BY 2 DESC, 1 LIMIT 1")
    return str(rows[0][0]).removeprefix("Patient/")


def writes(store: Store, pid: str) -> int:
    """The same writes on any store: an update, a create with a client id, a delete of a template resource,
    a new resource updated twice then deleted, and a bulk put. Returns the snapshot taken before them."""
    snapshot = store.snapshot()
    patient = store.read("Patient", pid)
    assert patient is not None and patient.body is not None
    store.put("Patient", pid, {**patient.body, "gender": "other"})
    store.put("Observation", "slot-test-new", {
        "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}, "effectiveDateTime": "2031-01-01",
        "valueQuantity": {"value": 9.9, "unit": "%"}})
    condition = store.query("SELECT id FROM resource WHERE type = 'Condition' AND deleted = 0 ORDER BY id LIMIT 1")[0][0]
    store.delete("Condition", condition)
    for status in ("preliminary", "final"):
        store.put("Observation", "slot-test-twice", {"resourceType": "Observation", "status": status,
                                                     "subject": {"reference": f"Patient/{pid}"},
                                                     "code": {"text": "twice"}})
    store.delete("Observation", "slot-test-twice")
    store.put_many([("Observation", f"slot-test-bulk-{n}", {"resourceType": "Observation", "status": "final",
                                                            "subject": {"reference": f"Patient/{pid}"},
                                                            "code": {"text": f"bulk {n}"}}) for n in range(3)])
    return snapshot


def view(store: Store, pid: str, *, written: bool) -> dict[str, Any]:
    """What clients see of the patient (``written``: and of the resources ``writes`` made)."""
    seen = {
        "patient": search(store, "Patient", [("_id", pid)], base_url=BASE),
        "hba1c": search(store, "Observation", [("patient", pid), ("code", HBA1C), ("_sort", "-date")], base_url=BASE),
        "by-value": search(store, "Observation", [("patient", pid), ("value-quantity", "gt5"),
                                                  ("_sort", "value-quantity"), ("_count", "3")], base_url=BASE),
        "count": search(store, "Observation", [("patient", pid), ("_summary", "count")], base_url=BASE),
        "conditions": search(store, "Condition", [("patient", pid), ("_count", "5"), ("_offset", "2")], base_url=BASE),
        "revinclude": search(store, "Patient", [("_id", pid), ("_revinclude", "Observation:subject"), ("_count", "1")],
                             base_url=BASE),
        "lastn": last_n(store, [("patient", pid), ("max", "2")], base_url=BASE, strict=False),
        "patient history": history_bundle(store, "Patient", pid, [], base_url=BASE),
        "matching": matching_ids(store, "Observation", [("patient", pid), ("code", HBA1C)], limit=2),
    }
    if written:
        seen["deleted twice-written"] = history_bundle(store, "Observation", "slot-test-twice", [], base_url=BASE)
        first = store.vread("Observation", "slot-test-twice", 1)
        assert first is not None
        seen["version 1"] = {"version": first.version, "deleted": first.deleted, "body": first.body}
    return blank(seen)


def blank(value: Any) -> Any:
    """As JSON, with what differs between two stores by the clock alone blanked: bundle ids, write times."""
    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: "*" if k in ("lastUpdated", "lastModified", "last_updated")
                    or (k == "id" and item.get("resourceType") == "Bundle") else walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item
    return walk(orjson.loads(orjson.dumps(value)))


def rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    """A table's rows as the store's own SQL sees them (on a slot: the union view), timestamps left out."""
    columns = {"resource": "rid, type, id, version, deleted, body", "resource_version": "type, id, version, deleted, body",
               "change": "seq, type, id, action, prev_version", "snapshot": "id, seq"}.get(table, "*")
    found = [tuple(blank(orjson.loads(v)) if isinstance(v, bytes) else v for v in row)
             for row in store.query(f"SELECT {columns} FROM {table}")]
    return sorted(found, key=repr)


def test_a_slot_answers_like_its_own_copy_of_the_template(slots: SlotStores, plain: Store) -> None:
    slot = slots[0]
    pid = a_patient(plain)
    assert a_patient(slot) == pid
    assert view(slot, pid, written=False) == view(plain, pid, written=False)
    slot_snapshot, plain_snapshot = writes(slot, pid), writes(plain, pid)
    assert slot_snapshot == plain_snapshot
    assert view(slot, pid, written=True) == view(plain, pid, written=True)
    slot_diff = [(c.resource_type, c.id, c.action, blank(c.before), blank(c.after)) for c in slot.diff(slot_snapshot)[1]]
    plain_diff = [(c.resource_type, c.id, c.action, blank(c.before), blank(c.after)) for c in plain.diff(plain_snapshot)[1]]
    assert slot_diff == plain_diff
    assert {action for _, _, action, _, _ in slot_diff} == {"create", "update", "delete"}
    for table in ("resource", "resource_version", "change", "idx_token", "idx_ref", "idx_date", "idx_quantity"):
        assert rows(slot, table) == rows(plain, table), table


def test_a_reset_to_the_template_leaves_nothing_of_the_writes(slots: SlotStores, template: Template) -> None:
    slot = slots[0]
    clean = slot.snapshot()
    before = {table: rows(slot, table) for table in TABLES}
    writes(slot, a_patient(slot))
    second = slot.snapshot()
    slot.put("Patient", a_patient(slot), {"resourceType": "Patient", "gender": "female"})
    assert slot.reset(second) == (second, 1)  # a snapshot taken on the slot: the store's own reset
    assert slot.reset(clean)[0] == clean
    assert {table: rows(slot, table) for table in TABLES} == before
    assert slot.diff(clean)[1] == []
    assert slot.query("SELECT COUNT(*) FROM slot_resource")[0][0] == 0  # the slot's own rows are gone


def test_a_slot_cannot_undo_the_template_s_own_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "template.sqlite")
    store.put("Patient", "kept", {"resourceType": "Patient", "gender": "female"})
    early = store.snapshot()
    store.put("Patient", "later", {"resourceType": "Patient", "gender": "male"})
    store.checkpoint()
    store.close()
    slots = SlotStores(tmp_path / "template.sqlite", tmp_path / "slots", 1)
    with pytest.raises(FhirError, match="older than this slot's template"):
        slots[0].reset(early)
    assert slots[0].read("Patient", "later") is not None
    slots.close()


def test_slots_keep_their_writes_to_themselves(slots: SlotStores) -> None:
    pid = a_patient(slots[0])
    untouched = {table: rows(slots[1], table) for table in TABLES}
    writes(slots[0], pid)
    assert {table: rows(slots[1], table) for table in TABLES} == untouched
    assert gender(slots[0], pid) == "other"
    assert gender(slots[1], pid) != "other"


def gender(store: Store, patient: str) -> Any:
    stored = store.read("Patient", patient)
    assert stored is not None and stored.body is not None
    return stored.body["gender"]


class CountingSlot(SlotStore):
    """A slot that counts its database work: SQLite calls the store's deadline check every PROGRESS_STEPS
    virtual-machine instructions of a statement."""

    ticks = 0

    def _past_deadline(self) -> bool:
        type(self).ticks += 1
        return super()._past_deadline()


class CountingStore(Store):
    ticks = 0

    def _past_deadline(self) -> bool:
        type(self).ticks += 1
        return super()._past_deadline()


OPERATIONS: dict[str, Callable[[Store, str], Any]] = {
    "read": lambda s, p: s.read("Patient", p),
    "search by code, newest first": lambda s, p: search(s, "Observation", [("patient", p), ("code", HBA1C),
                                                                           ("_sort", "-date"), ("_count", "2")],
                                                        base_url=BASE),
    "search by date range": lambda s, p: search(s, "Observation", [("patient", p), ("date", "ge2015"),
                                                                   ("date", "lt2020")], base_url=BASE),
    "search sorted by value, page 2": lambda s, p: search(s, "Observation", [
        ("patient", p), ("value-quantity", "gt1"), ("_sort", "-value-quantity"), ("_count", "2"),
        ("_offset", "2")], base_url=BASE),
    "search sorted by name": lambda s, p: search(s, "Patient", [("_sort", "family"), ("_count", "3")],
                                                 base_url=BASE),
    "count": lambda s, p: search(s, "Condition", [("patient", p), ("_summary", "count")], base_url=BASE),
    "total of a first page": lambda s, p: search(s, "Observation", [("patient", p), ("_count", "1")], base_url=BASE),
    "string search": lambda s, p: search(s, "Patient", [("family", "Sm")], base_url=BASE),
    "_has": lambda s, p: search(s, "Patient", [("_has:Observation:subject:code", HBA1C), ("_count", "2")],
                                base_url=BASE),
    "_include and _revinclude": lambda s, p: search(s, "Encounter", [("patient", p), ("_count", "2"),
                                                                      ("_include", "Encounter:patient"),
                                                                      ("_revinclude", "Observation:encounter")],
                                                    base_url=BASE),
    "$lastn": lambda s, p: last_n(s, [("patient", p), ("max", "3")], base_url=BASE, strict=False),
    "compartment search": lambda s, p: search(s, "Observation", [("_count", "3")], base_url=BASE,
                                              patient_compartment=p),
    "$everything": lambda s, p: everything(s, p, [("_count", "5"), ("_offset", "5")], base_url=BASE),
    "instance history": lambda s, p: history_bundle(s, "Patient", p, [], base_url=BASE),
    "conditional match": lambda s, p: matching_ids(s, "Observation", [("patient", p), ("code", HBA1C)], limit=2),
    "writes, diff and reset": lambda s, p: (s.diff(writes(s, p)), s.reset(2)),
}


def prefetch_search(template: str) -> Callable[[Store, str], Any]:
    """The search a CDS Hooks service's prefetch template asks for, on the patient given."""
    def run(store: Store, patient: str) -> Any:
        resource_type, query = template.replace("{{context.patientId}}", patient).split("?", 1)
        return search(store, resource_type, parse_qsl(query), base_url=BASE)
    return run


# the searches the CDS Hooks services read a chart with (their prefetch templates, fetched when not sent)
OPERATIONS.update({f"CDS Hooks prefetch {template}": prefetch_search(template)
                   for template in sorted({item.template for service in SERVICES.values()
                                           for item in service.prefetch if "?" in item.template})})


def test_a_slot_does_no_more_database_work_than_the_template(template: Template, plain: Store,
                                                            tmp_path: Path) -> None:
    """Work counted in ticks of the store's progress handler (PROGRESS_STEPS SQLite instructions each).
    Reading through a slot's union views costs a small multiple of the template's work (both halves, and the
    check for hidden rows): under 8x here, where reading a whole template table instead of seeking in its
    index costs a hundred times more (an aggregate over the view in a correlated subquery did: 78 ms against
    0.3 ms)."""
    counting_plain = CountingStore(plain.path)
    slot = CountingSlot(tmp_path / "counting-slot.sqlite", template)
    pid = a_patient(counting_plain)
    slot.snapshot(), counting_plain.snapshot()  # snapshot 2 on both: where "writes, diff and reset" goes back to
    work = {}
    for name, operation in OPERATIONS.items():
        CountingSlot.ticks = CountingStore.ticks = 0
        operation(slot, pid)
        operation(counting_plain, pid)
        work[name] = (CountingSlot.ticks, CountingStore.ticks)
    slot.close()
    counting_plain.close()
    assert {name: ticks for name, ticks in work.items() if ticks[0] > 8 * ticks[1] + 2} == {}, work


# --------------------------------------------------------------------------------------------
# over HTTP
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slot_server(synthea_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(synthea_db, allow_reset=True, slots=3, slots_dir=tmp_path_factory.mktemp("slot-server")) as server:
        yield server


def test_every_url_a_slot_writes_names_the_slot(slot_server: EmbeddedServer) -> None:
    base = slot_server.slot_url(2)
    assert base.endswith("/slots/2")
    with httpx.Client(timeout=30, headers={"Content-Type": "application/fhir+json"}) as http:
        bundle = http.get(f"{base}/Observation", params={"code": HBA1C, "_count": "2"}).json()
        urls = [link["url"] for link in bundle["link"]] + [entry["fullUrl"] for entry in bundle["entry"]]
        assert len(urls) == 4 and all(url.startswith(f"{base}/Observation") for url in urls), urls
        following = http.get(bundle["link"][1]["url"]).json()  # the next page, through the slot
        assert following["link"][0]["url"].startswith(f"{base}/Observation?") and len(following["entry"]) == 2
        created = http.post(f"{base}/Basic", json={"resourceType": "Basic", "code": {"text": "slot 2 only"}})
        assert created.status_code == 201
        location = created.headers["Location"]
        assert location.startswith(f"{base}/Basic/") and location.endswith("/_history/1")
        rid = created.json()["id"]
        assert http.get(location).status_code == 200
        assert http.get(f"{slot_server.slot_url(1)}/Basic/{rid}").status_code == 404
        history = http.get(f"{base}/Basic/{rid}/_history").json()
        assert history["entry"][0]["fullUrl"] == f"{base}/Basic/{rid}"
        diff = http.get(f"{base}/$diff", params={"snapshot": "1"}).json()
        assert [(c["resourceType"], c["id"], c["action"]) for c in diff["changes"]] == [("Basic", rid, "create")]
        assert http.post(f"{base}/$diff", params={"snapshot": "1"}).status_code == 400  # a POST resets: to what?
        ended = http.post(f"{base}/$diff", params={"snapshot": "1", "reset": "1"}).json()  # a task's last request
        assert ended["changes"] == diff["changes"] and ended["reset"] == {"snapshot": 1, "restored": 1}
        assert http.get(f"{base}/Basic/{rid}").status_code == 404
        again = http.post(f"{base}/Basic", json={"resourceType": "Basic", "code": {"text": "again"}}).json()["id"]
        reset = http.post(f"{base}/$reset", params={"snapshot": "1"}).json()
        assert reset["parameter"] == [{"name": "snapshot", "valueInteger": 1}, {"name": "restored", "valueInteger": 1}]
        assert http.get(f"{base}/Basic/{again}").status_code == 404


def test_a_slot_server_refuses_what_is_not_a_slot(slot_server: EmbeddedServer) -> None:
    with httpx.Client(timeout=30) as http:
        for path in ("/metadata", "/Patient", "/slots/3/metadata", "/slots/x/metadata", "/slots"):
            response = http.get(f"{slot_server.base_url}{path}")
            assert response.status_code == 404, path
            body = response.json()
            assert body["resourceType"] == "OperationOutcome"
            assert "/slots/0 to /slots/2" in body["issue"][0]["diagnostics"], path
    with pytest.raises(ValueError, match="not one of this server's 3 slots"):
        slot_server.slot_url(3)
