"""Code policies for scored runs: the oracle, and deliberately wrong policies that the graders must fail.

``medagent bench run --agent NAME`` maps each name to ``make_policy(NAME)`` (a bench ``Solver``):

- ``oracle``: solves every scenario through the agent's typed tools (``Registry.call`` on the bench's
  FHIR client, the path the agent takes), never through the bundles. It reads the question's
  *meaning* from the task (``scenario.meta``: which codes, which form of question; the task text:
  names, the reported list, the note to write) and every *value* from the server. It never reads
  ``scenario.answer``, ``expected_writes`` or ``provenance``. It must score 100% on every frozen set;
  anything less is a tool gap or a ground-truth bug.
- ``always-no``: deliberately wrong; answers "no" to everything, reads and writes nothing. Passes only
  the boolean questions whose answer is no (about half of them).
- ``do-nothing``: deliberately wrong; a silent finish (empty answer, no tool call). Scores 0%: an
  empty answer never passes and every task with an ungraded answer requires a write.
- ``always-act``: deliberately wrong; the oracle's reads and answer, but it takes the action of every
  conditional task on either branch, and writes a note when a task leaves it nothing to act on. Fails
  every read-only task and every no-action branch, except where the write tools refuse to write at all
  (a patient who died before now).
- ``write-twice``: deliberately wrong; the oracle, but every write is sent again under another run id
  (a real second resource, not an idempotent retry). Fails every task that creates a resource; stopping
  an order a second time changes nothing, so discontinue tasks still pass.
- ``wrong-patient``: deliberately wrong; the oracle's reads and answer, but every write goes to another
  (living) patient. Fails every task that requires a write.

Every tool call becomes one trace step in the agent's format (step, tool, arguments, result, error,
references, wrote, tool_s), and the final answer a ``final_answer`` step, so the HTML report shows a
policy's trajectory like an agent's.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

from medagent.bench.solvers import SolveOutcome, Solver
from medagent.fhir.client import FhirClient
from medagent.scenarios.codes import (
    CONDITION_GROUPS,
    CVX_INFLUENZA,
    GLUCOSE,
    HBA1C,
    MAGNESIUM,
    MAGNESIUM_THRESHOLD,
    NDC_MAGNESIUM_IV,
    NDC_POTASSIUM_ORAL,
    POTASSIUM,
    POTASSIUM_SERUM_ORDER,
    POTASSIUM_THRESHOLD,
)
from medagent.scenarios.models import Scenario
from medagent.tools.context import ToolContext
from medagent.tools.registry import FINAL_ANSWER, Registry, ToolResult, default_registry

__all__ = ["POLICY_NAMES", "AlwaysActPolicy", "AlwaysNoPolicy", "DoNothingPolicy", "OraclePolicy", "ToolGap",
           "WriteTwicePolicy", "WrongPatientPolicy", "make_policy"]


# ====================================================================================================
# One task's tool session and the answer formats
# ====================================================================================================

# The agent's tools answer within 800 tokens per call by default: a patient's whole medication list
# (up to ~100 orders) then needs several pages (since/until). The oracle reads such a list in one call
# with a larger budget; every call whose completeness matters is checked for rows left out (ToolGap).
ORACLE_TOKEN_BUDGET = 8000
TRACE_RESULT_CHARS = 4000  # the copy of a tool's text kept in the trace (results.jsonl stays small)


class ToolGap(RuntimeError):
    """A tool could not give the policy what it needs (an error, or rows cut off): a tool gap to report."""


class ToolSession:
    """One task's tool calls: a ToolContext at the scenario's now, the trace, and the write log."""

    def __init__(self, registry: Registry, client: FhirClient, scenario: Scenario, *, actor: str,
                 token_budget: int = ORACLE_TOKEN_BUDGET) -> None:
        self.registry = registry
        self.scenario = scenario
        self.now = parse_now(scenario.now)
        self.ctx = ToolContext(client=client, now=self.now, read_only=False, actor=actor, run_id=scenario.id,
                               token_budget=token_budget)
        self.trace: list[dict[str, Any]] = []
        self.wrote: list[str] = []
        self.tool_s = 0.0

    @property
    def tool_calls(self) -> int:
        return len(self.trace)

    async def call(self, tool: str, *, strict: bool = True, complete: bool = False, ctx: ToolContext | None = None,
                   **arguments: Any) -> ToolResult:
        """Call a tool through the registry and record the step.

        ``strict``: an error result raises ToolGap (the oracle never expects one).
        ``complete``: rows left out (limit or budget) raise ToolGap (the policy needs them all).
        """
        args = {k: v for k, v in arguments.items() if v is not None}
        started = time.perf_counter()
        result = await self.registry.call(tool, args, ctx or self.ctx)
        elapsed = time.perf_counter() - started
        self.tool_s += elapsed
        text = result.text if len(result.text) <= TRACE_RESULT_CHARS else (
            result.text[:TRACE_RESULT_CHARS] + f"\n... (trace copy cut at {TRACE_RESULT_CHARS} characters; "
                                               f"the policy read all {len(result.rows)} rows)")
        self.trace.append({"step": len(self.trace) + 1, "tool": tool, "arguments": args, "result": text,
                           "error": result.error, "references": result.references, "wrote": result.wrote,
                           "tool_s": round(elapsed, 4)})
        self.wrote.extend(result.wrote)
        if strict and result.error:
            raise ToolGap(f"{tool}({json.dumps(args, default=str)}) failed: {result.error}")
        if complete and result.truncated:
            raise ToolGap(f"{tool}({json.dumps(args, default=str)}) left {result.truncated} row(s) out")
        return result

    def retry_context(self, suffix: str) -> ToolContext:
        """A context for the same task under another run id (its writes get other idempotency keys)."""
        return dataclasses.replace(self.ctx, run_id=f"{self.ctx.run_id}{suffix}", audit=[], cache={})

    def final(self, answer: str | None, citations: list[str]) -> None:
        self.trace.append({"step": len(self.trace) + 1, "tool": FINAL_ANSWER,
                           "arguments": {"answer": answer, "citations": citations}, "result": None, "error": None,
                           "references": [], "wrote": []})


# ---------- reading rows ----------

def parse_now(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    if len(value) <= 10:
        parts = [int(p) for p in value.split("-")]
        return datetime(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1, tzinfo=UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_moment(value: str | None) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise ToolGap(f"a row has no usable date ({value!r})")
    return moment.astimezone(UTC)


def utc_day(value: str | None) -> str:
    """The calendar date of a FHIR date/dateTime in UTC (the scenarios' clocks are UTC)."""
    return utc_moment(value).date().isoformat()


def numeric(row: dict[str, Any]) -> float:
    value = row.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ToolGap(f"{row.get('ref')} has no numeric value in its row ({row.get('text')!r})")
    return float(value)


# ---------- answer formats stated in the task text ----------

_ROUNDING = re.compile(r"rounded to (?:the nearest whole number|(\d+) decimal places?)")


def stated_decimals(question: str) -> int | None:
    """The rounding the answer format asks for (None: 'as recorded', no rounding stated)."""
    match = _ROUNDING.search(question)
    if match is None:
        return None
    return int(match.group(1)) if match.group(1) else 0


def number_text(value: float, decimals: int | None) -> str:
    if decimals is None:
        return f"{value:g}"
    return f"{round(value, decimals):.{decimals}f}"


def quantity_text(value: float, unit: str | None, decimals: int | None) -> str:
    return f"{number_text(value, decimals)} {unit or ''}".strip()


# ====================================================================================================
# The oracle
# ====================================================================================================

GROUPS = {group.key: group for group in CONDITION_GROUPS}
MAX_ROWS = 100  # the tools' largest page
TREND_THRESHOLD = 0.05  # stated in the lab_trend task text
AVERAGE_WINDOW = "-730d"  # "the 730 days before now"
RECENT_WINDOW = "-24h"  # "within the last 24 hours"
HBA1C_STALE = timedelta(days=365)  # "more than 1 year old"
FLU_WINDOW = timedelta(days=365)  # "no influenza vaccination ... in the 365 days before now"

Answer = tuple[str, list[str]]  # (final answer, citations)


class OraclePolicy:
    """Solves every EHRQA question and agentic task with the typed tools; must score 100%."""

    name = "oracle"
    model: str | None = None
    force_act = False  # the always-act policy sets it: act on every conditional branch
    strict_writes = True  # the oracle expects every write to succeed

    def __init__(self, registry: Registry | None = None, *, token_budget: int | None = None) -> None:
        self.registry = registry or default_registry()
        self.token_budget = token_budget

    # ---------- the Solver protocol ----------

    async def solve(self, scenario: Scenario, client: FhirClient) -> SolveOutcome:
        kwargs = {"token_budget": self.token_budget} if self.token_budget else {}
        session = ToolSession(self.registry, client, scenario, actor=f"medagent/{self.name}", **kwargs)
        try:
            answer, citations = await self.answer(session, scenario)
        except ToolGap as exc:
            session.final(None, [])
            return self._outcome(session, status="error", answer=None, citations=[], error=f"tool gap: {exc}")
        session.final(answer, citations)
        return self._outcome(session, status="answered", answer=answer, citations=citations)

    @staticmethod
    def _outcome(session: ToolSession, **fields: Any) -> SolveOutcome:
        return SolveOutcome(trace=session.trace, steps=session.tool_calls, tool_calls=session.tool_calls,
                            tool_s=session.tool_s, **fields)

    async def answer(self, s: ToolSession, scenario: Scenario) -> Answer:
        if scenario.suite == "ehrqa":
            handler = EHRQA_FORMS.get(str(scenario.meta.get("form")))
        else:
            handler = AGENTIC_TASKS.get(scenario.category)
        if handler is None:
            raise ToolGap(f"the oracle has no handler for {scenario.suite}/{scenario.category} "
                          f"(form {scenario.meta.get('form')!r})")
        return await handler(self, s, scenario)

    # ---------- the hooks the wrong policies override ----------

    async def write(self, s: ToolSession, tool: str, **arguments: Any) -> ToolResult:
        """Every write of every task goes through here."""
        return await s.call(tool, strict=self.strict_writes, **arguments)

    async def discontinue(self, s: ToolSession, patient: str, reference: str, reason: str) -> ToolResult:
        """Stopping an order (an update: it names the order, not the patient)."""
        return await self.write(s, "discontinue_medication", medication_request=reference, reason=reason)

    # ---------- shared reads ----------

    async def patient_by_mrn(self, s: ToolSession, mrn: str) -> tuple[str, dict[str, Any]]:
        result = await s.call("find_patients", identifier=mrn)
        rows = [row for row in result.rows if row.get("mrn") == mrn]
        if len(rows) != 1:
            raise ToolGap(f"find_patients(identifier={mrn!r}) gave {len(rows)} patient(s) with that MRN")
        return rows[0]["ref"].removeprefix("Patient/"), rows[0]

    async def conditions(self, s: ToolSession, patient: str, codes: str) -> list[dict[str, Any]]:
        result = await s.call("search_conditions", complete=True, patient=patient, code=codes, limit=MAX_ROWS)
        return result.rows

    async def medications(self, s: ToolSession, patient: str, *, code: str | None = None,
                          status: str = "all") -> list[dict[str, Any]]:
        result = await s.call("search_medications", complete=True, patient=patient, code=code, status=status,
                              limit=MAX_ROWS)
        return result.rows

    async def latest(self, s: ToolSession, patient: str, code: str, *, since: str | None = None,
                     until: str | None = None) -> dict[str, Any] | None:
        result = await s.call("search_observations", patient=patient, code=code, since=since, until=until, latest=1)
        rows = [row for row in result.rows if (row.get("component") or row.get("code")) == code]
        return rows[0] if rows else None

    async def immunizations(self, s: ToolSession, patient: str, cvx: str) -> list[dict[str, Any]]:
        result = await s.call("search_immunizations", complete=True, patient=patient, code=cvx, limit=MAX_ROWS)
        return [row for row in result.rows if row.get("status") in (None, "completed")]


# ---------- EHRQA (one handler per question form) ----------

Handler = Callable[[OraclePolicy, ToolSession, Scenario], Awaitable[Answer]]


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def refs(rows: list[dict[str, Any]]) -> list[str]:
    return [row["ref"] for row in rows if row.get("ref")]


def oldest_first(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows sorted by the date under ``key``, oldest first."""
    return sorted(rows, key=lambda row: utc_moment(row.get(key)))


async def first_order(s: ToolSession, patient: str, code: str, which: str = "first") -> dict[str, Any] | None:
    """The first (or, ``which="last"``, the most recent) order of a medication code."""
    order = "oldest" if which == "first" else "newest"
    result = await s.call("search_medications", patient=patient, code=code, order=order, limit=1)
    return result.rows[0] if result.rows else None


async def _condition(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    rows = await p.conditions(s, sc.patient, sc.meta["key"][1])
    return yes_no(bool(rows)), refs(rows)


async def _group(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    group = GROUPS[sc.meta["key"][1]]  # the question's parent concept and its member codes
    rows = await p.conditions(s, sc.patient, ",".join(sorted(group.members)))
    return yes_no(bool(rows)), refs(rows)


async def _orders_for_condition(p: OraclePolicy, s: ToolSession, patient: str, condition_code: str,
                                medication_code: str | None = None) -> list[dict[str, Any]]:
    """Orders whose documented reason is a Condition with this code (reasonReference -> Condition)."""
    conditions = {row["ref"] for row in await p.conditions(s, patient, condition_code)}
    if not conditions:
        return []
    orders = await p.medications(s, patient, code=medication_code)
    return [row for row in orders if conditions & set(row.get("reasons") or [])]


async def _treated(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    orders = await _orders_for_condition(p, s, sc.patient, sc.meta["key"][1])
    return yes_no(bool(orders)), refs(orders)


async def _vaccine(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    which, cvx = sc.meta["key"][0], sc.meta["key"][1]
    rows = oldest_first(await p.immunizations(s, sc.patient, cvx), "date")
    if not rows:
        return "none", []
    row = rows[0] if which == "first" else rows[-1]
    return utc_day(row["date"]), [row["ref"]]


async def _med_current(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    rows = await p.medications(s, sc.patient, code=sc.meta["key"][1], status="current")
    return yes_no(bool(rows)), refs(rows)


def names_by_code(rows: list[dict[str, Any]]) -> dict[str, str]:
    """code -> the display of its newest row (rows come newest first)."""
    out: dict[str, str] = {}
    for row in rows:
        out.setdefault(row.get("code") or row.get("display") or row["ref"], row["display"])
    return out


def names_text(names: list[str]) -> str:
    return "; ".join(sorted(set(names))) if names else "none"


async def _med_current_list(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    rows = await p.medications(s, sc.patient, status="current")
    return names_text(list(names_by_code(rows).values())), refs(rows)


async def _med_ever(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    result = await s.call("search_medications", patient=sc.patient, code=sc.meta["key"][1], limit=1)
    return yes_no(bool(result.rows)), refs(result.rows)


async def _prescriber(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    last = await first_order(s, sc.patient, sc.meta["key"][1], "last")
    if last is None:
        return "none", []
    if not last.get("prescriber"):
        raise ToolGap(f"{last['ref']}: the row names no prescriber")
    return last["prescriber"], [last["ref"], *([last["requester"]] if last.get("requester") else [])]


async def _med_date(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    row = await first_order(s, sc.patient, sc.meta["key"][1], sc.meta["key"][0])
    if row is None:
        return "none", []
    return utc_day(row["authored"]), [row["ref"]]


async def _meds_for_condition(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    orders = await _orders_for_condition(p, s, sc.patient, sc.meta["key"][1])
    return names_text(list(names_by_code(orders).values())), refs(orders)


async def _med_for_condition(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    _, condition_code, medication_code = sc.meta["key"]
    orders = await _orders_for_condition(p, s, sc.patient, condition_code, medication_code)
    return yes_no(bool(orders)), refs(orders)


def _value_answer(sc: Scenario, row: dict[str, Any] | None) -> Answer:
    if row is None:
        return "none", []
    return quantity_text(numeric(row), row.get("unit"), stated_decimals(sc.question)), [row["ref"]]


async def _obs_last(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    return _value_answer(sc, await p.latest(s, sc.patient, sc.meta["key"][1]))


async def _obs_on_day(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    _, code, day = sc.meta["key"]
    return _value_answer(sc, await p.latest(s, sc.patient, code, since=day, until=day))


async def _obs_at_event(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    kind, event_code, code = sc.meta["key"]
    if kind == "condition":
        result = await s.call("search_conditions", patient=sc.patient, code=event_code, order="oldest", limit=1)
        event = result.rows[0] if result.rows else None
        when = event["onset"] if event else None
    else:
        event = await first_order(s, sc.patient, event_code)
        when = event["authored"] if event else None
    if event is None or when is None:
        return "none", []
    text, cited = _value_answer(sc, await p.latest(s, sc.patient, code, until=utc_day(when)))
    return text, [event["ref"], *cited]


EHRQA_FORMS: dict[str, Handler] = {
    "condition": _condition,
    "group": _group,
    "treated": _treated,
    "vaccine_first": _vaccine,
    "vaccine_last": _vaccine,
    "med_current": _med_current,
    "med_current_list": _med_current_list,
    "med_ever": _med_ever,
    "prescriber": _prescriber,
    "med_date_first": _med_date,
    "med_date_last": _med_date,
    "meds_for_condition": _meds_for_condition,
    "med_for_condition": _med_for_condition,
    "obs_last": _obs_last,
    "obs_on_day": _obs_on_day,
    "obs_at_condition": _obs_at_event,
    "obs_at_medication": _obs_at_event,
}


# ---------- agentic tasks ----------

def _text(pattern: str, sc: Scenario) -> str:
    """A part of the task text (a name, the reported list, the note to write)."""
    match = re.search(pattern, sc.question, re.S)
    if match is None:
        raise ToolGap(f"cannot read {pattern!r} from the task text of {sc.id}")
    return match.group(1)


async def _find_mrn(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    name = _text(r"patient named (.+?), born \d{4}-\d{2}-\d{2}\?", sc)
    born = _text(r", born (\d{4}-\d{2}-\d{2})\?", sc)
    result = await s.call("find_patients", name=name, birth_date=born)
    rows = [row for row in result.rows if row.get("name") == name and row.get("birthDate") == born and row.get("mrn")]
    if len(rows) != 1:
        return "Patient not found", []
    return rows[0]["mrn"], [rows[0]["ref"]]


async def _age(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, row = await p.patient_by_mrn(s, sc.meta["mrn"])
    if row.get("age") is None:
        raise ToolGap(f"find_patients gives no age for Patient/{patient} at now")
    return str(row["age"]), [row["ref"]]


async def _record_bp(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    await p.write(s, "record_vital_sign", patient=patient, vital="blood_pressure", systolic=sc.meta["systolic"],
                  diastolic=sc.meta["diastolic"], reason="blood pressure measured at the visit")
    return "done", []


async def _recent_lab(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    return _value_answer(sc, await p.latest(s, patient, sc.meta["loinc"], since=RECENT_WINDOW))


def magnesium_dose(value: float) -> float:
    """Grams (= hours of infusion) by the task's dosing instructions."""
    if value < 1.0:
        return 4.0
    if value < 1.5:
        return 2.0
    return 1.0


async def _magnesium(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    row = await p.latest(s, patient, MAGNESIUM, since=RECENT_WINDOW)
    value = numeric(row) if row else None
    if (value is not None and value <= MAGNESIUM_THRESHOLD) or p.force_act:
        grams = magnesium_dose(value if value is not None and value <= MAGNESIUM_THRESHOLD else 1.9)
        await p.write(s, "order_medication", patient=patient, code=NDC_MAGNESIUM_IV, system="ndc", dose_value=grams,
                      dose_unit="g", route="iv", duration_value=grams, duration_unit="h",
                      reason=f"serum magnesium {value} mg/dL" if value is not None else "magnesium replacement")
    return _value_answer(sc, row)


async def _average_glucose(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    result = await s.call("search_observations", complete=True, patient=patient, code=GLUCOSE, since=AVERAGE_WINDOW,
                          limit=MAX_ROWS)
    rows = [row for row in result.rows if row.get("code") == GLUCOSE]
    if not rows:
        return "none", []
    average = mean(numeric(row) for row in rows)
    return quantity_text(average, rows[0].get("unit"), stated_decimals(sc.question)), refs(rows)


async def _latest_glucose(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    return _value_answer(sc, await p.latest(s, patient, GLUCOSE))


async def _referral(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    note = _text(r'free text of the referral: "(.+?)"', sc)
    code = _text(r"SNOMED CT code for the referral is (\d+)", sc)
    await p.write(s, "order_service", patient=patient, code=code, system="snomed", kind="referral", note=note,
                  reason=f"{sc.meta.get('service', 'specialist')} referral requested")
    return "done", []


async def _potassium(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    row = await p.latest(s, patient, POTASSIUM)
    value = numeric(row) if row else None
    if (value is not None and value < POTASSIUM_THRESHOLD) or p.force_act:
        steps = round(POTASSIUM_THRESHOLD * 10) - round((value if value is not None else 3.4) * 10)
        dose = float(max(steps, 1) * 10)  # 10 mEq per 0.1 mmol/L below 3.5
        await p.write(s, "order_medication", patient=patient, code=NDC_POTASSIUM_ORAL, system="ndc", dose_value=dose,
                      dose_unit="mEq", route="oral", reason=f"potassium {value} mmol/L below 3.5")
        await p.write(s, "order_service", patient=patient, code=POTASSIUM_SERUM_ORDER, system="loinc", kind="lab",
                      occurrence="tomorrow 08:00", reason="follow-up serum potassium after replacement")
    return _value_answer(sc, row)


async def _hba1c(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    row = await p.latest(s, patient, HBA1C)
    when = parse_time(row["date"]) if row else None
    if when is None or s.now - when > HBA1C_STALE or p.force_act:
        await p.write(s, "order_service", patient=patient, code=HBA1C, system="loinc", kind="lab",
                      reason="last HbA1c more than a year old" if when else "no HbA1c on record")
    if row is None:
        return "none", []
    decimals = stated_decimals(sc.question)
    value = round(numeric(row), decimals) if decimals is not None else numeric(row)
    return json.dumps({"value": value, "date": utc_day(row["date"])}), [row["ref"]]


async def _reconciliation(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    reported = [name.strip() for name in _text(r"reports currently taking: (.+?)\. Compare this list", sc).split(";")]
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    rows = await p.medications(s, patient, status="current")
    active = list(names_by_code(rows).values())

    def key(name: str) -> str:
        return " ".join(name.lower().split())

    on_chart = {key(name) for name in active}
    said = {key(name) for name in reported}
    answer = {"not_on_chart": [name for name in reported if key(name) not in on_chart],
              "not_reported": sorted({name for name in active if key(name) not in said})}
    return json.dumps(answer), refs(rows)


async def _influenza(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    rows = oldest_first(await p.immunizations(s, patient, CVX_INFLUENZA), "date")
    last = rows[-1] if rows else None
    when = parse_time(last["date"]) if last else None
    if when is None or s.now - when > FLU_WINDOW or p.force_act:
        await p.write(s, "order_medication", patient=patient, code=CVX_INFLUENZA, system="cvx",
                      reason="no influenza vaccination in the last 365 days" if when else "never vaccinated")
    if last is None:
        return "none", []
    return utc_day(last["date"]), [last["ref"]]


async def _lab_trend(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    code = sc.meta["loinc"]
    result = await s.call("search_observations", patient=patient, code=code, limit=3)
    rows = [row for row in result.rows if (row.get("component") or row.get("code")) == code][:3]
    if len(rows) < 3:
        raise ToolGap(f"fewer than three {code} results before now ({len(rows)})")
    newest, oldest = numeric(rows[0]), numeric(rows[2])
    change = (newest - oldest) / oldest
    trend = "increasing" if change >= TREND_THRESHOLD else "decreasing" if change <= -TREND_THRESHOLD else "stable"
    decimals = stated_decimals(sc.question)
    unit = rows[0].get("unit") or ""
    first = round(oldest, decimals) if decimals is not None else oldest
    last = round(newest, decimals) if decimals is not None else newest
    summary = (f"The last three results went from {first} {unit} ({utc_day(rows[2]['date'])}) to {last} {unit} "
               f"({utc_day(rows[0]['date'])}), a change of {change:+.1%}: {trend}.")
    return json.dumps({"trend": trend, "first": first, "last": last, "summary": summary}), refs(rows)


async def _discontinue(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    drug = _text(r"decided to stop (.+?) for the patient with MRN", sc)
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    words = drug if len(drug) <= 100 else drug[:100].rsplit(" ", 1)[0]  # the tools take at most 100 characters
    named = await s.call("search_medications", complete=True, patient=patient, text=words, limit=MAX_ROWS)
    codes = sorted({row["code"] for row in named.rows if row.get("display") == drug and row.get("code")})
    if not codes:
        raise ToolGap(f"no order of {drug!r} found for Patient/{patient}")
    orders = oldest_first(await p.medications(s, patient, code=",".join(codes)), "authored")
    for row in orders:
        if row.get("status") == "active" or p.force_act:
            await p.discontinue(s, patient, row["ref"], reason="care team decided to stop it")
    return utc_day(orders[-1]["authored"]), refs(orders)


AGENTIC_TASKS: dict[str, Handler] = {
    "find_mrn": _find_mrn,
    "age": _age,
    "record_bp": _record_bp,
    "recent_lab": _recent_lab,
    "magnesium_replacement": _magnesium,
    "average_glucose": _average_glucose,
    "latest_glucose": _latest_glucose,
    "referral": _referral,
    "potassium_replacement": _potassium,
    "hba1c_reorder": _hba1c,
    "medication_reconciliation": _reconciliation,
    "influenza_vaccine_due": _influenza,
    "lab_trend": _lab_trend,
    "discontinue_medication": _discontinue,
}


# ====================================================================================================
# The deliberately wrong policies
# ====================================================================================================

class FixedAnswerPolicy:
    """Deliberately wrong policy: the same final answer to every task, without a single tool call."""

    model: str | None = None

    def __init__(self, name: str, answer: str) -> None:
        self.name = name
        self.fixed = answer

    async def solve(self, scenario: Scenario, client: FhirClient) -> SolveOutcome:
        step = {"step": 1, "tool": FINAL_ANSWER, "arguments": {"answer": self.fixed, "citations": []},
                "result": None, "error": None, "references": [], "wrote": []}
        return SolveOutcome(status="answered", answer=self.fixed, trace=[step], steps=0, tool_calls=0)


class AlwaysNoPolicy(FixedAnswerPolicy):
    """Deliberately wrong policy: answers "no" to every task, reads nothing, writes nothing."""

    def __init__(self) -> None:
        super().__init__("always-no", "no")


class DoNothingPolicy(FixedAnswerPolicy):
    """Deliberately wrong policy: finishes at once with an empty answer (MedAgentBench's "silent finish")."""

    def __init__(self) -> None:
        super().__init__("do-nothing", "")


class AlwaysActPolicy(OraclePolicy):
    """Deliberately wrong policy: acts on every branch of every conditional task, and writes in read-only tasks.

    It reads and answers like the oracle, but orders the replacement / the lab / the vaccine whatever the
    value, stops every order of the named drug whatever its status, and when a task leaves it nothing to
    act on it records its answer as a progress note. Writes the tools refuse (a patient who died before
    now) are left in the trace as errors.
    """

    name = "always-act"
    force_act = True
    strict_writes = False

    async def answer(self, s: ToolSession, scenario: Scenario) -> Answer:
        answer, citations = await super().answer(s, scenario)
        if not s.wrote:
            patient = await self._patient_of(s, scenario)
            await self.write(s, "add_note", patient=patient, text=f"Task: {scenario.question}\nAnswer: {answer}",
                             title="Answer recorded by the always-act policy", reason="always act")
        return answer, citations

    async def _patient_of(self, s: ToolSession, scenario: Scenario) -> str:
        mrn = scenario.meta.get("mrn")
        if scenario.suite == "agentic" and mrn and scenario.category != "find_mrn":
            patient, _ = await self.patient_by_mrn(s, mrn)
            return patient
        return scenario.patient  # EHRQA names the patient; find_mrn: the patient the solver is given


class WriteTwicePolicy(OraclePolicy):
    """Deliberately wrong policy: the oracle, but every write is sent a second time under another run id.

    The write tools are idempotent within a run (a conditional create keyed on the call and the run id),
    so a plain retry would write nothing new; a second run id makes the second call a real duplicate,
    like an agent that re-issues an order it already placed.
    """

    name = "write-twice"

    async def write(self, s: ToolSession, tool: str, **arguments: Any) -> ToolResult:
        first = await super().write(s, tool, **arguments)
        await s.call(tool, strict=False, ctx=s.retry_context("/again"), **arguments)
        return first


class WrongPatientPolicy(OraclePolicy):
    """Deliberately wrong policy: the oracle's reads and answer, but every write goes to another patient.

    The other patient is found through the tools (the first living patient by id other than the task's);
    a stop goes to an active order of that patient.
    """

    name = "wrong-patient"
    strict_writes = False

    async def write(self, s: ToolSession, tool: str, **arguments: Any) -> ToolResult:
        if "patient" in arguments:
            arguments["patient"] = (await self._others(s, arguments["patient"]))[0]
        return await super().write(s, tool, **arguments)

    async def discontinue(self, s: ToolSession, patient: str, reference: str, reason: str) -> ToolResult:
        for other in await self._others(s, patient):
            result = await s.call("search_medications", patient=other, status="current", limit=1)
            if result.rows:
                return await super().write(s, "discontinue_medication", medication_request=result.rows[0]["ref"],
                                           reason=reason)
        raise ToolGap("no other patient has an active order to stop")

    async def _others(self, s: ToolSession, patient: str) -> list[str]:
        cached = s.ctx.cache.get("wrong-patient/others")
        if cached is None:
            result = await s.call("fhir_search", resource_type="Patient", params={},
                                  fields=["birthDate", "deceasedDateTime"], limit=100)
            cached = []
            for row in sorted(result.rows, key=lambda r: r["ref"]):
                died = row.get("deceasedDateTime")
                moment = parse_time(died) if isinstance(died, str) else None
                if moment is None or moment > s.now:
                    cached.append(row["ref"].removeprefix("Patient/"))
            s.ctx.cache["wrong-patient/others"] = cached
        others = [p for p in cached if p != patient]
        if not others:
            raise ToolGap("no other living patient to write to")
        return others


POLICIES: dict[str, Callable[[], Solver]] = {
    "oracle": OraclePolicy,
    "always-no": AlwaysNoPolicy,
    "do-nothing": DoNothingPolicy,
    "always-act": AlwaysActPolicy,
    "write-twice": WriteTwicePolicy,
    "wrong-patient": WrongPatientPolicy,
}
POLICY_NAMES = tuple(POLICIES)


def make_policy(name: str) -> Solver:
    """The code policy for ``medagent bench run --agent NAME``."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}") from None
