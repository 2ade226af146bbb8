"""The oracle: solves every scenario through the agent's typed tools; it must score 100% on every frozen set.

It solves through ``Registry.call`` on the bench's FHIR client (the path the agent takes), never through
the bundles. It reads the question's *meaning* from the task (``scenario.meta``: which codes, which form
of question; the task text: names, the reported list, the note to write) and every *value* from the
server. It never reads ``scenario.answer``, ``expected_writes`` or ``provenance``. Anything less than
100% is a tool gap or a ground-truth bug.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from statistics import mean
from typing import Any

from medagent.bench.oracle_hard import HARD_HANDLERS
from medagent.bench.tool_session import (
    ToolGap,
    ToolSession,
    numeric,
    parse_time,
    quantity_text,
    stated_decimals,
    utc_day,
    utc_moment,
)
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
from medagent.scenarios.free_answers import sentence_answer
from medagent.scenarios.models import Scenario
from medagent.tools.registry import Registry, ToolResult, default_registry
from medagent.trajectory import RunOutcome


GROUPS = {group.key: group for group in CONDITION_GROUPS}
MAX_ROWS = 100  # the tools' largest page
TREND_THRESHOLD = 0.05  # stated in the lab_trend task text
AVERAGE_WINDOW = "-730d"  # "the 730 days before now"
RECENT_WINDOW = "-24h"  # "within the last 24 hours"
HBA1C_STALE = timedelta(days=365)  # "more than 1 year old"
FLU_WINDOW = timedelta(days=365)  # v1: "no influenza vaccination ... in the 365 days before now"
MAGNESIUM_ANY_AGE = "even if it is older than 24 hours"  # v2 answer format: the latest value, however old
DEDUP_RULE = "recorded more than once at the same moment with the same value counts once"  # v2 average_glucose

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

    async def solve(self, scenario: Scenario, client: FhirClient, *, run_id: str | None = None) -> RunOutcome:
        kwargs = {"token_budget": self.token_budget} if self.token_budget else {}
        session = ToolSession(self.registry, client, scenario, actor=f"medagent/{self.name}", run_id=run_id, **kwargs)
        try:
            answer, citations = await self.answer(session, scenario)
        except ToolGap as exc:
            session.final(None, [])
            return self._outcome(session, status="error", answer=None, citations=[], error=f"tool gap: {exc}")
        kind = scenario.meta.get("answer_kind")
        if kind is not None:  # the question states no format: the free answer's sentence (scenarios.free_answers)
            answer = sentence_answer(str(kind), answer)
        session.final(answer, citations)
        return self._outcome(session, status="answered", answer=answer, citations=citations)

    @staticmethod
    def _outcome(session: ToolSession, **fields: Any) -> RunOutcome:
        return session.outcome(**fields)

    async def answer(self, s: ToolSession, scenario: Scenario) -> Answer:
        if scenario.tier == "hard":
            handler = HARD_HANDLERS.get(scenario.category)
        elif scenario.suite == "ehrqa":
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

    async def patient_in_context(self, s: ToolSession, name: str, born: str) -> dict[str, Any] | None:
        """The row of the patient in context when they are the one named (None: search for them)."""
        return None

    async def demographics(self, s: ToolSession, mrn: str) -> tuple[str, dict[str, Any]]:
        """The patient with this MRN and their row with the age at now (the age task's answer)."""
        return await self.patient_by_mrn(s, mrn)

    async def conditions(self, s: ToolSession, patient: str, codes: str) -> list[dict[str, Any]]:
        result = await s.call("search_conditions", complete=True, patient=patient, code=codes, limit=MAX_ROWS)
        return result.rows

    async def first_condition(self, s: ToolSession, patient: str, code: str) -> dict[str, Any] | None:
        """The earliest Condition with this code."""
        result = await s.call("search_conditions", patient=patient, code=code, order="oldest", limit=1)
        return result.rows[0] if result.rows else None

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

    async def first_order(self, s: ToolSession, patient: str, code: str, which: str = "first") -> dict[str, Any] | None:
        """The first (or, ``which="last"``, the most recent) order of a medication code."""
        order = "oldest" if which == "first" else "newest"
        result = await s.call("search_medications", patient=patient, code=code, order=order, limit=1)
        return result.rows[0] if result.rows else None

    async def ever_ordered(self, s: ToolSession, patient: str, code: str) -> list[dict[str, Any]]:
        """Some order of a medication code, at any time (at most one row)."""
        result = await s.call("search_medications", patient=patient, code=code, limit=1)
        return result.rows

    async def orders_for_condition(self, s: ToolSession, patient: str, condition_code: str,
                                   medication_code: str | None = None) -> list[dict[str, Any]]:
        """Orders whose documented reason is a Condition with this code (reasonReference -> Condition)."""
        conditions = {row["ref"] for row in await self.conditions(s, patient, condition_code)}
        if not conditions:
            return []
        orders = await self.medications(s, patient, code=medication_code)
        return [row for row in orders if conditions & set(row.get("reasons") or [])]

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


async def _condition(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    rows = await p.conditions(s, sc.patient, sc.meta["key"][1])
    return yes_no(bool(rows)), refs(rows)


async def _group(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    group = GROUPS[sc.meta["key"][1]]  # the question's parent concept and its member codes
    rows = await p.conditions(s, sc.patient, ",".join(sorted(group.members)))
    return yes_no(bool(rows)), refs(rows)


async def _treated(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    orders = await p.orders_for_condition(s, sc.patient, sc.meta["key"][1])
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
    rows = await p.ever_ordered(s, sc.patient, sc.meta["key"][1])
    return yes_no(bool(rows)), refs(rows)


async def _prescriber(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    last = await p.first_order(s, sc.patient, sc.meta["key"][1], "last")
    if last is None:
        return "none", []
    if not last.get("prescriber"):
        raise ToolGap(f"{last['ref']}: the row names no prescriber")
    return last["prescriber"], [last["ref"], *([last["requester"]] if last.get("requester") else [])]


async def _med_date(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    row = await p.first_order(s, sc.patient, sc.meta["key"][1], sc.meta["key"][0])
    if row is None:
        return "none", []
    return utc_day(row["authored"]), [row["ref"]]


async def _meds_for_condition(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    orders = await p.orders_for_condition(s, sc.patient, sc.meta["key"][1])
    listed = sorted(set(names_by_code(orders).values()))
    if '"first_ordered"' in sc.question:  # v2: the drugs and the date of the first of those orders
        first = utc_day(oldest_first(orders, "authored")[0]["authored"]) if orders else None
        return json.dumps({"medications": listed, "first_ordered": first}), refs(orders)
    return names_text(listed), refs(orders)


async def _med_for_condition(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    _, condition_code, medication_code = sc.meta["key"]
    orders = await p.orders_for_condition(s, sc.patient, condition_code, medication_code)
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
        event = await p.first_condition(s, sc.patient, event_code)
        when = event["onset"] if event else None
    else:
        event = await p.first_order(s, sc.patient, event_code)
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


def _said(sc: Scenario, key: str, pattern: str) -> Any:
    """A part of the task the text names: from ``meta`` (v2, where phrasings vary), else read from the v1 text."""
    return sc.meta[key] if key in sc.meta else _text(pattern, sc)


async def _find_mrn(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    name = _said(sc, "name", r"patient named (.+?), born \d{4}-\d{2}-\d{2}\?")
    born = _said(sc, "born", r", born (\d{4}-\d{2}-\d{2})\?")
    known = await p.patient_in_context(s, name, born)
    if known is not None:
        return known["mrn"], [known["ref"]]
    result = await s.call("find_patients", name=name, birth_date=born)
    rows = [row for row in result.rows if row.get("name") == name and row.get("birthDate") == born and row.get("mrn")]
    if len(rows) != 1:
        return "Patient not found", []
    return rows[0]["mrn"], [rows[0]["ref"]]


async def _age(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, row = await p.demographics(s, sc.meta["mrn"])
    if row.get("age") is None:
        raise ToolGap(f"no age for Patient/{patient} at now in {row.get('ref')}")
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
    if MAGNESIUM_ANY_AGE in sc.question:  # v2: the answer is the latest value, however old; the order needs 24 h
        latest = await p.latest(s, patient, MAGNESIUM)
        await _replace_magnesium(p, s, patient, value)
        return _value_answer(sc, latest)
    await _replace_magnesium(p, s, patient, value)
    return _value_answer(sc, row)


async def _replace_magnesium(p: OraclePolicy, s: ToolSession, patient: str, value: float | None) -> None:
    if (value is not None and value <= MAGNESIUM_THRESHOLD) or p.force_act:
        grams = magnesium_dose(value if value is not None and value <= MAGNESIUM_THRESHOLD else 1.9)
        await p.write(s, "order_medication", patient=patient, code=NDC_MAGNESIUM_IV, system="ndc", dose_value=grams,
                      dose_unit="g", route="iv", duration_value=grams, duration_unit="h",
                      reason=f"serum magnesium {value} mg/dL" if value is not None else "magnesium replacement")


async def _average_glucose(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    result = await s.call("search_observations", complete=True, patient=patient, code=GLUCOSE, since=AVERAGE_WINDOW,
                          limit=MAX_ROWS)
    rows = [row for row in result.rows if row.get("code") == GLUCOSE]
    if not rows:
        return "none", []
    values = [numeric(row) for row in rows]
    if DEDUP_RULE in sc.question:  # v2: a result recorded twice at the same moment counts once
        values = list({(utc_moment(row.get("date")), numeric(row)): numeric(row) for row in rows}.values())
    average = mean(values)
    return quantity_text(average, rows[0].get("unit"), stated_decimals(sc.question)), refs(rows)


async def _latest_glucose(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    return _value_answer(sc, await p.latest(s, patient, GLUCOSE))


async def _referral(p: OraclePolicy, s: ToolSession, sc: Scenario) -> Answer:
    patient, _ = await p.patient_by_mrn(s, sc.meta["mrn"])
    note = _said(sc, "note", r'free text of the referral: "(.+?)"')
    code = _said(sc, "referral_code", r"SNOMED CT code for the referral is (\d+)")
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
    reported = sc.meta["reported"] if "reported" in sc.meta else \
        [name.strip() for name in _text(r"reports currently taking: (.+?)\. Compare this list", sc).split(";")]
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
    season = re.search(r"season (?:began|started) on (\d{4}-\d{2}-\d{2})|start of the current season \((\d{4}-\d{2}-"
                       r"\d{2})\)", sc.question)
    if season:  # v2: one dose per season; due when none since the season began
        begun = season.group(1) or season.group(2)
        due = last is None or utc_day(last["date"]) < begun
    else:  # v1: due when none in the 365 days before now
        due = when is None or s.now - when > FLU_WINDOW
    if due or p.force_act:
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
    drug = _said(sc, "drug", r"decided to stop (.+?) for the patient with MRN")
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

