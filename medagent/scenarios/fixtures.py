"""Setup resources a scenario adds to the chart before the agent runs.

Synthea v2.4 has no magnesium result and no potassium below 3.5 mmol/L, so the conditional
replacement tasks could never reach their "act" branch on the raw data. Those scenarios carry
lab Observations in ``Scenario.setup``; the runner writes them after resetting the snapshot
(PUT with the given id, or a transaction) and the grader drops their creation from the diff.
Both branches of a task get fixtures of the same shape, so their presence says nothing about
which branch a scenario is on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medagent.scenarios.clock import iso
from medagent.scenarios.codes import LOINC, OBSERVATION_CATEGORY, UCUM
from medagent.scenarios.identity import fixture_id


def lab_observation(
    scenario: str, index: int, patient: str, code: str, display: str, value: float, unit: str, when: datetime
) -> dict[str, Any]:
    """A final laboratory Observation shaped like Synthea's own results."""
    return {
        "resourceType": "Observation",
        "id": fixture_id(scenario, index),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": iso(when),
        "issued": iso(when),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def setup_bundle(setup: list[dict[str, Any]]) -> dict[str, Any]:
    """The setup resources as a FHIR transaction of PUTs (create-with-id, idempotent)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}
            for resource in setup
        ],
    }
