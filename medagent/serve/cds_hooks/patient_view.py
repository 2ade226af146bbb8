"""patient-view: what the chart shows that matters now, every fact cited to its FHIR resource.

Cards: a summary (active problems, active medications, allergies); one per overdue monitoring lab (a condition
calls for it and the latest result is older than its interval, or missing), suggesting the order; one for the
latest results within the recent window that are out of range (the Observation's own interpretation or
reference range first, else the adult limits of chart_rules.json).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from medagent.serve.cds_hooks.cards import card, override_reasons, source
from medagent.serve.cds_hooks.chart import (
    Chart,
    Reading,
    coded,
    describe,
    is_active,
    is_active_order,
    latest,
    number,
    onset,
    reference,
    short_date,
)
from medagent.serve.cds_hooks.medications import medication_concept
from medagent.serve.cds_hooks.messages import Action, Card, Indicator, Suggestion
from medagent.serve.cds_hooks.value_sets import LabRange, Monitoring, chart_rules
from medagent.vocabulary import condition_label

SUMMARY = source("chart-summary", "chart summary")
MONITORING = source("overdue-monitoring", "overdue monitoring")
RESULTS = source("abnormal-results", "abnormal recent results")
LISTED = 8  # items per section before "and N more"
HIGH_FLAGS = {"H": "high", "HH": "critically high", "HU": "significantly high"}
LOW_FLAGS = {"L": "low", "LL": "critically low", "LU": "significantly low"}
ABNORMAL_FLAGS = {"A": "abnormal", "AA": "critically abnormal"}
CRITICAL_FLAGS = ("HH", "LL", "AA")


def patient_view_cards(chart: Chart, now: datetime, user_id: str) -> list[Card]:
    problems = sorted(
        (c for c in chart.conditions if is_active(c) and not _is_situation(c)),
        key=lambda c: onset(c) or datetime.min.replace(tzinfo=now.tzinfo),
        reverse=True,
    )
    cards = [summary_card(chart, problems)]
    if deceased(chart.patient):  # no monitoring to order, no results to act on
        return cards
    cards += [c for rule in chart_rules().monitoring if (c := overdue_card(rule, chart, problems, now, user_id))]
    abnormal = abnormal_results_card(chart, now)
    return cards + ([abnormal] if abnormal else [])


def summary_card(chart: Chart, problems: list[dict[str, Any]]) -> Card:
    medications = [m for m in chart.medication_requests if is_active_order(m)]
    allergies = [a for a in chart.allergies if is_active(a)]
    lines = [
        "**Active problems**",
        *_listed([f"{condition_label(coded(c.get('code')))}{_since(onset(c))} ({reference(c)})" for c in problems]),
    ]
    lines += [
        "",
        "**Active medications**",
        *_listed(
            [f"{coded(medication_concept(m, chart.medications))}{_authored(m)} ({reference(m)})" for m in medications]
        ),
    ]
    lines += [
        "",
        "**Allergies**",
        *_listed([f"{condition_label(coded(a.get('code')))}{_criticality(a)} ({reference(a)})" for a in allergies]),
    ]
    text = (
        f"{_count(len(problems), 'active problem')}, {_count(len(medications), 'active medication')}, "
        f"{_count(len(allergies), 'allergy', 'allergies')}"
    )
    died = deceased(chart.patient)
    if died:
        text = f"deceased {died}; {text}"
        lines = [f"**Deceased** {died} (Patient/{chart.patient_id}).", "", *lines]
    return card(summary_text=f"Chart: {text}", detail="\n".join(lines), indicator="info", card_source=SUMMARY)


def overdue_card(
    rule: Monitoring, chart: Chart, problems: list[dict[str, Any]], now: datetime, user_id: str
) -> Card | None:
    triggers = [c for c in problems if _matches(rule, c)]
    if not triggers:
        return None
    last = latest(chart.observations, rule.lab_codes)
    due = now - timedelta(days=rule.every_days)
    if last is not None and last.when >= due:
        return None
    condition = triggers[0]
    why = f"{condition_label(coded(condition.get('code')))} ({reference(condition)})"
    if last is None:
        headline = f"{rule.label} due: none on record for {condition_label(coded(condition.get('code')))}"
        history = f"No {rule.label} result is on record."
    else:
        headline = f"{rule.label} overdue: last {short_date(last.when)}, due every {_interval(rule.every_days)}"
        history = f"Last result: {describe(last)}."
    detail = (
        f"- Indication: {why}.\n- {history}\n- Recommended interval: every {_interval(rule.every_days)} "
        f"({rule.source})."
    )
    order = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"coding": [rule.order.as_json()], "text": rule.order.display},
        "subject": {"reference": f"Patient/{chart.patient_id}"},
        "reasonReference": [{"reference": reference(condition)}],
        "authoredOn": now.isoformat(timespec="seconds"),
        **({"requester": {"reference": user_id}} if user_id.startswith(("Practitioner/", "PractitionerRole/")) else {}),
    }
    suggestion = Suggestion(
        label=f"Order {rule.order.display}",
        isRecommended=True,
        actions=[Action(type="create", description=f"Propose {rule.order.display}", resource=order)],
    )
    return card(
        summary_text=headline,
        detail=detail,
        indicator="warning",
        card_source=MONITORING,
        suggestions=[suggestion],
        reasons=override_reasons(
            ("done-elsewhere", "Done elsewhere; result not in this chart"),
            ("not-indicated", "Not indicated for this patient now"),
        ),
    )


def abnormal_results_card(chart: Chart, now: datetime) -> Card | None:
    rules = chart_rules()
    since = now - timedelta(days=rules.recent_days)
    findings: list[tuple[bool, str, str]] = []  # (critical, "potassium 6.4 mmol/L", the cited line)
    for limits in rules.ranges:
        reading = latest(chart.observations, limits.codes)
        if reading is None or reading.when < since:
            continue
        verdict = judge(reading, limits)
        if verdict is not None:
            critical, words, by_table = verdict
            value = f"{limits.label} {number(reading.value)} {reading.unit}"
            basis = f"; limit: {limits.source}" if by_table else ""
            findings.append(
                (critical, value, (f"{value} on {short_date(reading.when)}: {words} ({reading.reference}){basis}"))
            )
    if not findings:
        return None
    indicator: Indicator = "critical" if any(critical for critical, _, _ in findings) else "warning"
    names = ", ".join(value for _, value, _ in findings)
    detail = f"Latest results of the last {rules.recent_days} days outside their range:\n\n" + "\n".join(
        f"- {line}" for _, _, line in findings
    )
    return card(
        summary_text=f"Abnormal recent results: {names}", detail=detail, indicator=indicator, card_source=RESULTS
    )


def judge(reading: Reading, limits: LabRange) -> tuple[bool, str, bool] | None:
    """(critical, what is wrong, judged by the table's limits) for an out-of-range result; None when in range
    (the laboratory's interpretation flags or reference range first, the table's limits only without them)."""
    flags = [c.get("code") for i in reading.observation.get("interpretation") or [] for c in i.get("coding") or []]
    for flag in flags:
        for table in (HIGH_FLAGS, LOW_FLAGS, ABNORMAL_FLAGS):
            if flag in table:
                return flag in CRITICAL_FLAGS, f"{table[flag]} (flagged by the laboratory)", False
    if flags:  # interpreted as normal by the laboratory
        return None
    own = next(iter(reading.observation.get("referenceRange") or []), None)
    if own and reading.observation.get("valueQuantity"):
        low, high = (own.get("low") or {}).get("value"), (own.get("high") or {}).get("value")
        if isinstance(low, (int, float)) and reading.value < low:
            return False, f"below the reported range (low {low:g})", False
        if isinstance(high, (int, float)) and reading.value > high:
            return False, f"above the reported range (high {high:g})", False
        return None
    unit = limits.unit
    if limits.critical_low is not None and reading.value < limits.critical_low:
        return True, f"critically low (below {limits.critical_low:g} {unit})", True
    if limits.critical_high is not None and reading.value > limits.critical_high:
        return True, f"critically high (above {limits.critical_high:g} {unit})", True
    if limits.low is not None and reading.value < limits.low:
        return False, f"low (below {limits.low:g} {unit})", True
    if limits.high is not None and reading.value >= limits.high:
        return False, f"high ({limits.high:g} {unit} or above)", True
    return None


def deceased(patient: dict[str, Any] | None) -> str | None:
    """'2019-06-01' (or 'date not recorded') for a patient recorded as deceased, else None."""
    if not patient:
        return None
    if isinstance(patient.get("deceasedDateTime"), str):
        return patient["deceasedDateTime"][:10]
    return "date not recorded" if patient.get("deceasedBoolean") is True else None


def _matches(rule: Monitoring, condition: dict[str, Any]) -> bool:
    concept = condition.get("code") or {}
    codes = {c.get("code") for c in concept.get("coding") or []}
    text = " ".join([concept.get("text") or "", *(c.get("display") or "" for c in concept.get("coding") or [])]).lower()
    if any(term in text for term in rule.exclude_terms):
        return False
    return bool(codes & set(rule.condition_codes)) or any(term in text for term in rule.condition_terms)


def _is_situation(condition: dict[str, Any]) -> bool:
    return coded(condition.get("code")).endswith("(situation)")


def _listed(items: list[str]) -> list[str]:
    if not items:
        return ["- none recorded"]
    shown = [f"- {item}" for item in items[:LISTED]]
    return shown + ([f"- and {len(items) - LISTED} more"] if len(items) > LISTED else [])


def _since(moment: datetime | None) -> str:
    return f", since {short_date(moment)}" if moment else ""


def _authored(order: dict[str, Any]) -> str:
    authored = order.get("authoredOn")
    return f", ordered {authored[:10]}" if isinstance(authored, str) else ""


def _criticality(allergy: dict[str, Any]) -> str:
    return f", criticality {allergy['criticality']}" if allergy.get("criticality") else ""


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _interval(days: int) -> str:
    return f"{round(days / 30.4)} months"
