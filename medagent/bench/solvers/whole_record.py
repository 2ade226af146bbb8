"""The whole-record baseline (as in the MedGemma report's EHRQA): the patient's record in the prompt, no tools.

The record is read through the same FHIR client, serialised as compact FHIR JSON (newest first),
and cut to the model's context budget; the cut is recorded so the report can count it.
"""

from __future__ import annotations

import asyncio
import time

import orjson

from medagent.fhir.client import FhirClient
from medagent.models.base import ChatMessage, ModelBackend, ModelError, ModelRequest
from medagent.scenarios.models import Scenario
from medagent.trajectory import ContextCut, RunOutcome, Step

RECORD_TYPES = (
    "Patient",
    "Condition",
    "MedicationRequest",
    "Immunization",
    "Observation",
    "Procedure",
    "Encounter",
    "DiagnosticReport",
    "AllergyIntolerance",
    "CarePlan",
)
PATIENT_PARAM = {"Patient": "_id", "Immunization": "patient", "AllergyIntolerance": "patient"}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
CHARS_PER_TOKEN = 2.3  # FHIR JSON in the Gemma tokenizer (ids are costly): 30.7k chars measured 13.1k tokens


async def patient_record(client: FhirClient, patient: str) -> list[dict]:
    """Every resource of the record types for one patient, as FHIR JSON."""
    resources: list[dict] = []
    for resource_type in RECORD_TYPES:
        params: dict[str, str | int] = {PATIENT_PARAM.get(resource_type, "patient"): patient, "_count": 1000}
        resources += await client.search_all_json(resource_type, params)
    return resources


def _date_key(resource: dict) -> str:
    for key in ("effectiveDateTime", "authoredOn", "occurrenceDateTime", "onsetDateTime", "recordedDate", "birthDate"):
        if isinstance(resource.get(key), str):
            return resource[key]
    period = resource.get("period") or resource.get("performedPeriod") or {}
    return period.get("start", "")


def fit_record(resources: list[dict], max_tokens: int) -> tuple[str, int, int]:
    """(record text, resources kept, resources cut): newest first, until the token budget is spent."""
    patient = [r for r in resources if r["resourceType"] == "Patient"]
    rest = sorted((r for r in resources if r["resourceType"] != "Patient"), key=_date_key, reverse=True)
    lines, used, kept = [], 0, 0
    for resource in [*patient, *rest]:
        line = orjson.dumps({k: v for k, v in resource.items() if k != "meta"}).decode()
        cost = int(len(line) / CHARS_PER_TOKEN) + 1
        if used + cost > max_tokens:
            break
        lines.append(line)
        used += cost
        kept += 1
    return "\n".join(lines), kept, len(resources) - kept


class WholeRecordSolver:
    """The same model, answering from the whole record in its context (no tools, no writes)."""

    def __init__(
        self,
        backend: ModelBackend,
        *,
        model: str,
        context_tokens: int = 8192,
        model_call_timeout_s: float | None = None,
    ) -> None:
        self.backend = backend
        self.model = model
        self.name = "whole-record"
        self.context_tokens = context_tokens
        self.model_call_timeout_s = model_call_timeout_s

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        started = time.perf_counter()
        resources = await patient_record(client, scenario.patient)
        fhir_s = time.perf_counter() - started
        budget = max(256, self.context_tokens - 512)
        text, kept, cut = fit_record(resources, budget)
        prompt = (
            f"Current date and time: {scenario.now}.\nThe patient's health record as FHIR R4 JSON, one resource "
            f"per line, newest first{' (older resources cut to fit the context)' if cut else ''}:\n{text}\n\n"
            f'Question: {scenario.question}\nReply as JSON: {{"answer": "..."}}'
        )
        request = ModelRequest(
            messages=[ChatMessage(role="user", content=prompt)], json_schema=ANSWER_SCHEMA, max_tokens=128
        )
        record = Step(
            step=1,
            tool=None,
            model_output="",
            tool_s=fhir_s,
            context=ContextCut(resources=len(resources), kept=kept, cut=cut),
        )
        try:
            reply = await asyncio.wait_for(self.backend.complete(request), timeout=self.model_call_timeout_s)
        except TimeoutError:
            exc = ModelError(
                "timeout",
                f"the model did not answer within {self.model_call_timeout_s:g} s (the per-call model timeout)",
                backend=getattr(self.backend, "name", None),
            )
            return RunOutcome(
                status="model_error",
                error=str(exc),
                error_kind=exc.kind,
                trace=[record.model_copy(update={"error": str(exc)})],
            )
        except ModelError as exc:
            return RunOutcome(
                status="model_error" if exc.kind != "invalid_output" else "invalid_output",
                error=str(exc),
                error_kind=exc.kind if exc.kind != "invalid_output" else None,
                trace=[record.model_copy(update={"error": str(exc)})],
            )
        answer = (reply.parsed or {}).get("answer") if reply.parsed else reply.text
        record = record.model_copy(
            update={
                "model_output": reply.text,
                "model_s": reply.latency_s,
                "prompt_tokens": reply.usage.prompt_tokens,
                "completion_tokens": reply.usage.completion_tokens,
            }
        )
        return RunOutcome(status="answered", answer=answer, trace=[record], steps=1)
