"""``oracle-by-name``: the oracle, searching conditions and medications by the name the question uses.

A question names a condition or a drug in words ("Is the patient currently taking Naproxen sodium 220
MG Oral Tablet?"), never by its SNOMED or RxNorm code; the grading oracle searches by the code it reads
from ``scenario.meta``. Trajectories of that oracle teach a model to write codes it cannot know from the
question: the trained 270M adapter wrote RxNorm 311140 in 9 of its 12 medication searches, whatever
the drug. This solver makes the same searches with ``text=`` the name as the question writes it, and
keeps the rows of the code it is about, so its trajectories teach what an agent can do: copy the name.

It is a training-data solver, not the grading proof: it may fail where a name's words also match
other records or where the text search misses a spelling, and ``medagent train sft`` keeps passed
tasks only. Observations and vaccines stay searched by code: their questions give the LOINC or CVX
code (a rephrased question names the lab by an alias, and the model learns the alias's code). The name is
found from a resource with that code on the server (any patient's: a "no" question names something this
patient does not have) and used only when the question contains it. The patient in context is never
searched for (``patient_by_mrn``): the agent's guard refuses that search, so its record is read directly.
"""

from __future__ import annotations

from typing import Any

from medagent.bench.solvers.oracle import OracleSolver, SolverTools
from medagent.bench.solvers.tool_session import ToolSession
from medagent.scenarios.chart_reads import MAX_ROWS, ChartReads
from medagent.vocabulary import condition_label

ROWS_FOR_ONE = 5  # rows read when one order or condition is wanted (the name may match a few others)


class OracleByNameSolver(OracleSolver):
    """The oracle with condition and medication searches by the question's name for them."""

    name = "oracle-by-name"

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[tuple[str, str], str | None] = {}  # (resource type, code) -> its display, for the run

    def reads_for(self, tools: SolverTools, session: ToolSession) -> ChartReads:
        return ReadsByName(tools, session, self.names)


class ReadsByName(ChartReads):
    """The oracle's lookups, searching conditions and medications by the name the question writes."""

    def __init__(self, tools: SolverTools, session: ToolSession, names: dict[tuple[str, str], str | None]) -> None:
        super().__init__(tools)
        self.session = session
        self.names = names

    async def patient_by_mrn(self, mrn: str) -> tuple[str, dict[str, Any]]:
        """The patient in context is not searched for again (the agent's guard refuses that search): its record is
        read directly. Only a task that names no patient in context looks the MRN up."""
        context = self.session.scenario.patient_context
        if context:
            return context, {"ref": f"Patient/{context}"}
        return await super().patient_by_mrn(mrn)

    async def demographics(self, mrn: str) -> tuple[str, dict[str, Any]]:
        context = self.session.scenario.patient_context
        if context:
            result = await self.tools.call("get_patient", patient=context)
            return context, result.rows[0]
        return await super().demographics(mrn)

    async def patient_in_context(self, name: str, born: str) -> dict[str, Any] | None:
        """A lookup by name and birth date reads the patient in context first: when they are the one named, their
        MRN is the answer and no search is made."""
        context = self.session.scenario.patient_context
        if not context:
            return None
        row = (await self.tools.call("get_patient", patient=context)).rows[0]
        return row if row.get("name") == name and row.get("birthDate") == born else None

    async def question_name(self, resource_type: str, code: str) -> str | None:
        """The display of ``code`` as the question writes it, or None (not in the question, or several codes)."""
        if "," in code:
            return None
        key = (resource_type, code)
        if key not in self.names:
            page = await self.session.ctx.client.search_page(resource_type, {"code": code, "_count": "1"})
            display = next(
                (
                    coding.get("display")
                    for entry in page.get("entry") or []
                    for concept in _concepts(entry.get("resource") or {})
                    for coding in concept.get("coding") or []
                    if coding.get("code") == code
                ),
                None,
            )
            label = condition_label(display) if display and resource_type == "Condition" else display
            self.names[key] = label
        label = self.names[key]
        return label if label and label.lower() in self.session.scenario.question.lower() else None

    async def conditions(self, patient: str, codes: str) -> list[dict[str, Any]]:
        name = await self.question_name("Condition", codes)
        if name is None:
            return await super().conditions(patient, codes)
        result = await self.tools.call("search_conditions", complete=True, patient=patient, text=name, limit=MAX_ROWS)
        return [row for row in result.rows if row.get("code") == codes]

    async def first_condition(self, patient: str, code: str) -> dict[str, Any] | None:
        name = await self.question_name("Condition", code)
        if name is None:
            return await super().first_condition(patient, code)
        result = await self.tools.call(
            "search_conditions", patient=patient, text=name, order="oldest", limit=ROWS_FOR_ONE
        )
        return next((row for row in result.rows if row.get("code") == code), None)

    async def medications(self, patient: str, *, code: str | None = None, status: str = "all") -> list[dict[str, Any]]:
        name = await self.question_name("MedicationRequest", code) if code else None
        if name is None:
            return await super().medications(patient, code=code, status=status)
        result = await self.tools.call(
            "search_medications", complete=True, patient=patient, text=name, status=status, limit=MAX_ROWS
        )
        return [row for row in result.rows if row.get("code") == code]

    async def first_order(self, patient: str, code: str, which: str = "first") -> dict[str, Any] | None:
        name = await self.question_name("MedicationRequest", code)
        if name is None:
            return await super().first_order(patient, code, which)
        order = "oldest" if which == "first" else "newest"
        result = await self.tools.call(
            "search_medications", patient=patient, text=name, order=order, limit=ROWS_FOR_ONE
        )
        return next((row for row in result.rows if row.get("code") == code), None)

    async def ever_ordered(self, patient: str, code: str) -> list[dict[str, Any]]:
        name = await self.question_name("MedicationRequest", code)
        if name is None:
            return await super().ever_ordered(patient, code)
        result = await self.tools.call("search_medications", patient=patient, text=name, limit=ROWS_FOR_ONE)
        return [row for row in result.rows if row.get("code") == code][:1]

    async def orders_for_condition(
        self, patient: str, condition_code: str, medication_code: str | None = None
    ) -> list[dict[str, Any]]:
        """One search: the orders whose documented reason matches the condition's name (``reason=``), kept
        where that reason is the condition itself (its name, not one that only contains it: not 'Prediabetes'
        for 'Diabetes'); a drug the question names narrows the same search by ``text=``."""
        name = await self.question_name("Condition", condition_code)
        drug = await self.question_name("MedicationRequest", medication_code) if medication_code else None
        if name is None or (medication_code and drug is None):
            return await super().orders_for_condition(patient, condition_code, medication_code)
        words = {"text": drug} if drug else {}
        result = await self.tools.call(
            "search_medications", complete=True, patient=patient, reason=name, **words, limit=MAX_ROWS
        )
        return [
            row
            for row in result.rows
            if any(condition_label(d or "").lower() == name.lower() for d in row.get("reason_displays") or [])
            and (medication_code is None or row.get("code") == medication_code)
        ]


def _concepts(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The coded concepts a code search matches: Condition.code, MedicationRequest.medicationCodeableConcept."""
    return [concept for concept in (resource.get("code"), resource.get("medicationCodeableConcept")) if concept]
