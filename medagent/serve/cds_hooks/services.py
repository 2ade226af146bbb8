"""The CDS services this server offers: each one declaration (id, hook, context, prefetch templates, the rules
that make its cards), found by ``SERVICES``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medagent.serve.cds_hooks.chart import Chart
from medagent.serve.cds_hooks.kidney import CREATININE_CODES, EGFR_CODES
from medagent.serve.cds_hooks.messages import (
    Card,
    OrderSelectContext,
    OrderSignContext,
    PatientContext,
)
from medagent.serve.cds_hooks.order_checks import (
    check_drafts,
    draft_orders,
    medication_safety_cards,
)
from medagent.serve.cds_hooks.patient_view import patient_view_cards
from medagent.serve.cds_hooks.prefetch import PrefetchItem
from medagent.serve.cds_hooks.value_sets import chart_rules
from medagent.vocabulary import LOINC

# the hooks of the CDS Hooks library (cds-hooks.org/hooks), for telling an unknown hook from a wrong one
KNOWN_HOOKS = (
    "patient-view",
    "order-select",
    "order-sign",
    "order-dispatch",
    "appointment-book",
    "encounter-start",
    "encounter-discharge",
    "medication-prescribe",
    "order-review",
    "allergyintolerance-create",
    "medication-refill",
    "problem-list-item-create",
)

PATIENT = PrefetchItem("patient", "Patient/{{context.patientId}}", "patient")
ALLERGIES = PrefetchItem("allergies", "AllergyIntolerance?patient={{context.patientId}}", "allergies")
ACTIVE_MEDICATIONS = PrefetchItem(
    "medications", "MedicationRequest?patient={{context.patientId}}&status=active", "medication_requests"
)


def _codes(codes: tuple[str, ...] | list[str]) -> str:
    return ",".join(f"{LOINC}|{code}" for code in codes)


def _chart_labs() -> tuple[str, ...]:
    rules = chart_rules()
    codes = [c for rule in rules.monitoring for c in rule.lab_codes] + [c for r in rules.ranges for c in r.codes]
    return tuple(dict.fromkeys([*codes, "85354-9", "55284-4"]))  # blood pressure panels hold 8480-6 / 8462-4


@dataclass(frozen=True)
class HookCall:
    """One service call, checked: the context, the chart read for it, the clock."""

    context: PatientContext
    chart: Chart
    now: datetime


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    context_model: type[PatientContext]
    prefetch: tuple[PrefetchItem, ...]
    cards: Callable[[HookCall], list[Card]]
    check: Callable[[Any], None] = lambda context: None  # request checks beyond the context model (400s)
    usage_requirements: str | None = None

    def discovery(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": {item.key: item.template for item in self.prefetch},
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry

    def orders(self, context: PatientContext) -> list[dict[str, Any]]:
        """The drafted resources of an order hook (none for patient-view)."""
        if not isinstance(context, OrderSignContext):
            return []
        return [e["resource"] for e in context.draftOrders.get("entry") or []]


def _patient_view(call: HookCall) -> list[Card]:
    return patient_view_cards(call.chart, call.now, call.context.userId)


def _order_sign(call: HookCall) -> list[Card]:
    assert isinstance(call.context, OrderSignContext)
    drafts = draft_orders(call.context.draftOrders, call.chart)
    return medication_safety_cards(drafts, drafts, call.chart, call.now)


def _order_select(call: HookCall) -> list[Card]:
    assert isinstance(call.context, OrderSelectContext)
    drafts = draft_orders(call.context.draftOrders, call.chart)
    chosen = [d for d in drafts if d.reference in call.context.selections]
    return medication_safety_cards(chosen, drafts, call.chart, call.now)


_MEDICATION_SAFETY_PREFETCH = (
    PATIENT,
    ALLERGIES,
    ACTIVE_MEDICATIONS,
    PrefetchItem(
        "kidney",
        "Observation?patient={{context.patientId}}&code="
        f"{_codes(EGFR_CODES + CREATININE_CODES)}&_sort=-date&_count=10",
        "observations",
        first_page=True,
    ),
)
_USAGE = (
    "Uses prefetch when sent and reads what is missing through fhirServer with fhirAuthorization; without "
    "either it answers 412."
)

SERVICES: dict[str, CdsService] = {
    service.id: service
    for service in (
        CdsService(
            id="chart-summary",
            hook="patient-view",
            title="medagent chart summary",
            description="When a chart opens: active problems, medications and allergies, overdue monitoring labs "
            "(HbA1c in diabetes, kidney function in CKD, lipids in hyperlipidemia) with the order to place, "
            "and out-of-range recent results; every fact cites its FHIR resource.",
            context_model=PatientContext,
            prefetch=(
                PATIENT,
                PrefetchItem(
                    "conditions", "Condition?patient={{context.patientId}}&clinical-status=active", "conditions"
                ),
                ACTIVE_MEDICATIONS,
                ALLERGIES,
                PrefetchItem(
                    "labs",
                    f"Observation?patient={{{{context.patientId}}}}&code={_codes(_chart_labs())}"
                    "&_sort=-date&_count=200",
                    "observations",
                ),
            ),
            cards=_patient_view,
            usage_requirements=_USAGE,
        ),
        CdsService(
            id="medication-safety-select",
            hook="order-select",
            title="medagent medication safety (order-select)",
            description="For the selected MedicationRequest drafts: an allergy to the drug or its class, an active or "
            "drafted order of the same ingredient, and a renal dose limit at the latest eGFR.",
            context_model=OrderSelectContext,
            prefetch=_MEDICATION_SAFETY_PREFETCH,
            cards=_order_select,
            check=check_drafts,
            usage_requirements=_USAGE,
        ),
        CdsService(
            id="medication-safety-sign",
            hook="order-sign",
            title="medagent medication safety (order-sign)",
            description="For every MedicationRequest draft about to be signed: an allergy to the drug or its class, an "
            "active or drafted order of the same ingredient, and a renal dose limit at the latest eGFR.",
            context_model=OrderSignContext,
            prefetch=_MEDICATION_SAFETY_PREFETCH,
            cards=_order_sign,
            check=check_drafts,
            usage_requirements=_USAGE,
        ),
    )
}
