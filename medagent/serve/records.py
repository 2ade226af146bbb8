"""What the UI reads from the FHIR server directly: the patient picker and cited resources with a summary."""

from __future__ import annotations

import re
from datetime import datetime

from medagent.fhir.client import FhirClient
from medagent.fhir.ids import split_reference
from medagent.serve.schemas import PatientRow, ResourceView
from medagent.tools.read_patients import patient_row
from medagent.tools.rows import generic_line

_BIRTH_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def _row(patient: dict, now: datetime) -> PatientRow:
    row = patient_row(patient, now)
    return PatientRow(
        id=patient["id"],
        name=row["name"],
        gender=row["gender"],
        birth_date=row["birthDate"],
        age=row["age"],
        mrn=row["mrn"],
        deceased=row["deceased"],
    )


async def search_patients(client: FhirClient, query: str, now: datetime, limit: int = 20) -> list[PatientRow]:
    """Patients whose name parts start with each word of ``query``, or born on a date; empty: the first ones."""
    words = query.replace(",", " ").split()
    params: list[tuple[str, str]] = [("_sort", "family"), ("_count", str(limit))]
    if len(words) == 1 and _BIRTH_DATE.match(words[0]):
        params.append(("birthdate", words[0]))
    else:
        params += [("name", word) for word in words]
    bundle = await client.search_page("Patient", params)
    found = [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
    return [_row(p, now) for p in found]


async def patient_in_context(client: FhirClient, patient_id: str, now: datetime) -> PatientRow:
    """The row of the one patient a SMART launch is about."""
    return _row(await client.read_json("Patient", patient_id), now)


async def read_resource(client: FhirClient, reference: str, now: datetime) -> ResourceView:
    """A cited resource and its one-line summary (the same line the tools show the model)."""
    kind, resource_id = split_reference(reference, "reference")
    resource = await client.read_json(kind, resource_id)
    return ResourceView(reference=f"{kind}/{resource_id}", summary=generic_line(resource, now).text, resource=resource)
