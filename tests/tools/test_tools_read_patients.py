"""find_patients and get_patient against the embedded server, checked against the bundle files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tools_expect import PATIENT, age, instant, mrn, patient, record_end, records

NOW = datetime(2019, 5, 2, 10, 15, tzinfo=UTC)


def official(pid: str) -> dict[str, Any]:
    names = patient(pid)["name"]
    return next((n for n in names if n.get("use") == "official"), names[0])


async def test_every_patient_is_found_by_full_name_and_birth_date(run: Any) -> None:
    for pid in sorted(records()):
        name = official(pid)
        full = " ".join([*name["given"], name["family"]])
        born = patient(pid)["birthDate"]
        result = await run("find_patients", record_end(pid), name=full, birth_date=born)
        assert result.error is None
        refs = [row["ref"] for row in result.rows]
        assert f"Patient/{pid}" in refs, full
        row = next(r for r in result.rows if r["ref"] == f"Patient/{pid}")
        assert row["birthDate"] == born and row["mrn"] == mrn(pid)
        assert f"Patient/{pid}" in result.text and f"MRN {mrn(pid)}" in result.text


async def test_family_name_finds_exactly_the_matching_patients(run: Any) -> None:
    family = official(PATIENT)["family"]
    expected = {f"Patient/{pid}" for pid in records()
                if any(part.lower().startswith(family.lower()) for n in patient(pid)["name"]
                       for part in [*n.get("given", []), n.get("family", ""), *n.get("prefix", [])])}
    result = await run("find_patients", datetime(2030, 1, 1, tzinfo=UTC), name=family, limit=100)
    assert {row["ref"] for row in result.rows} == expected
    assert result.text.startswith(f"patients matching name='{family}': {len(expected)}")


async def test_birth_date_and_mrn(run: Any) -> None:
    born = patient(PATIENT)["birthDate"]
    expected = {f"Patient/{pid}" for pid in records() if patient(pid)["birthDate"] == born}
    by_date = await run("find_patients", datetime(2030, 1, 1, tzinfo=UTC), birth_date=born)
    assert {row["ref"] for row in by_date.rows} == expected
    by_mrn = await run("find_patients", NOW, identifier=mrn(PATIENT))
    assert [row["ref"] for row in by_mrn.rows] == [f"Patient/{PATIENT}"]


async def test_age_at_now_for_every_patient(run: Any) -> None:
    for pid in sorted(records()):
        resource = patient(pid)
        now = record_end(pid)
        result = await run("get_patient", now, patient=f"Patient/{pid}")
        row = result.rows[0]
        died = resource.get("deceasedDateTime")
        if died and instant(died) <= now:
            assert row["age"] is None and f"died {died[:10]}" in result.text
            assert row["deceased"] == died
        else:
            assert row["age"] == age(resource["birthDate"], now.date())
            assert f"age {row['age']}" in result.text
        assert row["mrn"] == mrn(pid) and row["gender"] == resource["gender"]


async def test_age_uses_the_runs_clock_not_the_wall_clock(run: Any) -> None:
    born = patient(PATIENT)["birthDate"]  # 1949-11-29
    before_birthday = datetime(2000, 11, 28, tzinfo=UTC)
    on_birthday = datetime(2000, 11, 29, 12, tzinfo=UTC)
    before = await run("get_patient", before_birthday, patient=PATIENT)
    assert before.rows[0]["age"] == age(born, before_birthday.date()) == 50
    assert (await run("get_patient", on_birthday, patient=PATIENT)).rows[0]["age"] == 51


async def test_a_deceased_patient_is_alive_before_death(run: Any) -> None:
    pid = next(p for p in sorted(records()) if patient(p).get("deceasedDateTime"))
    died = instant(patient(pid)["deceasedDateTime"])
    before = await run("get_patient", died - timedelta(days=400), patient=pid)
    assert before.rows[0]["deceased"] is None and "died" not in before.text, "a death after now is not known yet"
    assert f"age {age(patient(pid)['birthDate'], (died - timedelta(days=400)).date())}" in before.text
    after = await run("get_patient", died + timedelta(days=1), patient=pid)
    assert after.rows[0]["deceased"] and "died" in after.text


async def test_patients_born_after_now_are_not_found(run: Any) -> None:
    born = instant(patient(PATIENT)["birthDate"])
    result = await run("find_patients", born - timedelta(days=1), identifier=mrn(PATIENT))
    assert result.rows == [] and "no patient matches" in result.text


async def test_bad_arguments(run: Any) -> None:
    nothing = await run("find_patients", NOW)
    assert nothing.error and "at least one of name, birth_date or identifier" in nothing.error and "Example" in nothing.error
    impossible = await run("find_patients", NOW, birth_date="1949-02-30")
    assert impossible.error and "February 1949 has 28 days" in impossible.error
    relative = await run("find_patients", NOW, birth_date="-30d")
    assert relative.error and "calendar date" in relative.error
    unknown = await run("get_patient", NOW, patient="Patient/does-not-exist")
    assert unknown.error and "patient 'does-not-exist' not found" in unknown.error and "find_patients" in unknown.error
    malformed = await run("get_patient", NOW, patient="Observation/abc")
    assert malformed.error and "not a patient reference" in malformed.error
    too_many = await run("find_patients", NOW, name="Smith", limit=500)
    assert too_many.error and "limit" in too_many.error
