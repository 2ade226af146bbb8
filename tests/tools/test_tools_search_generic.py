"""fhir_search (with field projection) and fhir_read: bounded, date-aware, errors the model can act on."""

from __future__ import annotations

import json
from typing import Any

from tools_expect import PATIENT, code, display, instant, midpoint, observation_values, of_type, record_end


async def test_search_with_field_projection(run: Any) -> None:
    now = record_end(PATIENT)
    glucose = observation_values(PATIENT, "2339-0")
    result = await run("fhir_search", now, resource_type="Observation",
                       params={"patient": PATIENT, "code": "http://loinc.org|2339-0"},
                       fields=["effectiveDateTime", "valueQuantity.value", "valueQuantity.unit"], limit=5)
    assert [(instant(r["effectiveDateTime"]), r["valueQuantity.value"]) for r in result.rows] == \
        [(t, v) for t, v, _ in reversed(glucose)][:5]
    assert all(r["valueQuantity.unit"] == "mg/dL" for r in result.rows)
    assert result.truncated == len(glucose) - 5
    assert "valueQuantity.value=" in result.text and "more not shown" in result.text


async def test_default_lines_and_future_hidden(run: Any) -> None:
    now = midpoint(PATIENT)
    expected = {f"Condition/{c['id']}": display(c["code"]) for c in of_type(PATIENT, "Condition")
                if instant(c["onsetDateTime"]) <= now}
    result = await run("fhir_search", now, resource_type="Condition", params={"patient": f"Patient/{PATIENT}"}, limit=100)
    assert {r["ref"] for r in result.rows} == set(expected)
    assert all(name in result.text for name in expected.values())
    practitioners = await run("fhir_search", now, resource_type="Practitioner", params={"family": "Brakus"})
    assert practitioners.rows and all("Brakus" in r["name"] for r in practitioners.rows)


async def test_raw_escape_hatch_stays_bounded(run: Any) -> None:
    now = record_end(PATIENT)
    result = await run("fhir_search", now, resource_type="Immunization", params={"patient": PATIENT}, raw=True, limit=100)
    first = json.loads(result.text.splitlines()[1])
    assert first["resourceType"] == "Immunization" and "meta" not in first
    assert len(result.text) <= 2 * 800 * 4 and result.truncated > 0


async def test_search_bad_arguments(run: Any) -> None:
    now = record_end(PATIENT)
    unknown = await run("fhir_search", now, resource_type="Observation", params={"colour": "red"})
    assert unknown.error and "unknown search parameter 'colour'" in unknown.error and "supported:" in unknown.error
    count = await run("fhir_search", now, resource_type="Observation", params={"_count": "1000"})
    assert count.error and "use limit instead" in count.error
    kind = await run("fhir_search", now, resource_type="Spaceship", params={})
    assert kind.error and "resource_type" in kind.error
    date = await run("fhir_search", now, resource_type="Observation", params={"date": "2019-02-30"})
    assert date.error and "not a valid [prefix]date" in date.error
    field = await run("fhir_search", now, resource_type="Observation", params={}, fields=["code[0]"])
    assert field.error and "not a dotted path" in field.error


async def test_read_one_resource(run: Any) -> None:
    now = record_end(PATIENT)
    condition = of_type(PATIENT, "Condition")[0]
    line = await run("fhir_read", now, reference=f"Condition/{condition['id']}")
    assert display(condition["code"]) in line.text and line.references == [f"Condition/{condition['id']}"]
    fields = await run("fhir_read", now, reference=f"Condition/{condition['id']}", fields=["code.coding.code"])
    assert fields.rows[0]["code.coding.code"] == code(condition["code"])
    raw = await run("fhir_read", now, reference=f"Condition/{condition['id']}", raw=True)
    assert json.loads(raw.text.splitlines()[1])["id"] == condition["id"]


async def test_read_bad_arguments_and_the_future(run: Any) -> None:
    later = max(of_type(PATIENT, "Observation"), key=lambda o: o["effectiveDateTime"])
    future = await run("fhir_read", midpoint(PATIENT), reference=f"Observation/{later['id']}")
    assert future.error and "after now" in future.error
    missing = await run("fhir_read", record_end(PATIENT), reference="Observation/not-there")
    assert missing.error and missing.error.startswith("not found")
    malformed = await run("fhir_read", record_end(PATIENT), reference="observation not-there")
    assert malformed.error and "reference" in malformed.error and "Example" in malformed.error
