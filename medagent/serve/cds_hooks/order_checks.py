"""Medication safety checks of drafted MedicationRequests (order-select, order-sign): an allergy to the drug or
its class, an active order of the same ingredient, and a dose the latest kidney function rules out or changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medagent.serve.cds_hooks.cards import card, override_reasons, remove_draft, source
from medagent.serve.cds_hooks.chart import (
    Chart,
    coded,
    is_active,
    is_active_order,
    onset,
    reference,
    short_date,
)
from medagent.serve.cds_hooks.kidney import KidneyFunction, kidney_function
from medagent.serve.cds_hooks.medications import (
    allergy_classes,
    allergy_ingredients,
    concept_ingredients,
    medication_concept,
    rxnorm_codes,
)
from medagent.serve.cds_hooks.messages import (
    Card,
    Indicator,
    OrderSelectContext,
    OrderSignContext,
)
from medagent.serve.cds_hooks.prefetch import patient_reference
from medagent.serve.cds_hooks.value_sets import renal_rules
from medagent.serve.errors import ApiError

ALLERGY = source("drug-allergy", "drug allergy by class")
DUPLICATE = source("duplicate-therapy", "duplicate order")
RENAL = source("renal-dosing", "renal dosing")
STALE_DAYS = 365


@dataclass(frozen=True)
class DraftOrder:
    """A drafted MedicationRequest: where it is (``MedicationRequest/id``, None without an id), what it is."""

    resource: dict[str, Any]
    reference: str | None
    label: str
    ingredients: frozenset[str]
    rxnorm: frozenset[str]


def check_drafts(context: OrderSignContext) -> None:
    """A 400 for a drafted MedicationRequest of another patient, or a selection naming no draft."""
    in_bundle = set()
    for index, entry in enumerate(context.draftOrders.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise ApiError(400, "invalid_context", f"draftOrders entry {index} has no resource")
        if resource.get("id"):
            in_bundle.add(reference(resource))
        if resource.get("resourceType") != "MedicationRequest":
            continue
        subject = patient_reference(resource)
        if subject != f"Patient/{context.patientId}":
            raise ApiError(
                400,
                "invalid_context",
                f"draftOrders entry {index} (MedicationRequest/"
                f"{resource.get('id', '?')}) is for {subject or 'no patient'}, not the context's patient "
                f"Patient/{context.patientId}",
            )
    if isinstance(context, OrderSelectContext):
        missing = [s for s in context.selections if s not in in_bundle]
        if missing:
            raise ApiError(
                400,
                "invalid_context",
                f"selections name {', '.join(missing)}, which draftOrders does "
                "not hold (a selection is Type/id of a draft in draftOrders)",
            )


def draft_orders(bundle: dict[str, Any], chart: Chart) -> list[DraftOrder]:
    """The drafted MedicationRequests of a ``draftOrders`` Bundle (checked by :func:`check_drafts`)."""
    drafts = []
    for entry in bundle.get("entry") or []:
        resource = entry["resource"]
        if resource.get("resourceType") != "MedicationRequest":
            continue
        concept = medication_concept(resource, chart.medications)
        drafts.append(
            DraftOrder(
                resource,
                f"MedicationRequest/{resource['id']}" if resource.get("id") else None,
                coded(concept),
                frozenset(concept_ingredients(concept)),
                frozenset(rxnorm_codes(concept)),
            )
        )
    return drafts


def medication_safety_cards(
    checked: list[DraftOrder], all_drafts: list[DraftOrder], chart: Chart, now: datetime
) -> list[Card]:
    kidney = kidney_function(chart)
    cards: list[Card] = []
    for draft in checked:
        cards += allergy_cards(draft, chart)
        cards += duplicate_cards(draft, all_drafts, chart)
        if kidney is not None:
            cards += renal_cards(draft, kidney, now)
    return cards


def allergy_cards(draft: DraftOrder, chart: Chart) -> list[Card]:
    cards = []
    for allergy in (a for a in chart.allergies if is_active(a)):
        shared = allergy_ingredients(allergy) & draft.ingredients
        classes = [c for c in allergy_classes(allergy) if c.names & draft.ingredients]
        if not shared and not classes:
            continue
        what = coded(allergy.get("code"))
        criticality = allergy.get("criticality") or "not recorded"
        indicator: Indicator = "warning" if criticality == "low" else "critical"
        recorded = onset(allergy)
        facts = (
            f"The chart records an active allergy: *{what}* ({reference(allergy)}, criticality {criticality}"
            f"{', recorded ' + short_date(recorded) if recorded else ''})."
        )
        if shared:
            ingredient = min(shared)
            headline = f"Allergy to {ingredient}: the draft {draft.label} contains it"
            why = f"The draft contains {ingredient}, which the allergy names."
        else:
            drug_class = classes[0]
            ingredient = min(drug_class.names & draft.ingredients)
            headline = f"{what}: {ingredient} is one of the {drug_class.title}"
            why = (
                f"The draft contains {ingredient}, one of the {drug_class.title} (class membership: "
                f"{drug_class.source})."
            )
        detail = (
            f"**{draft.label}** ({draft.reference or 'draft without an id'}) vs. the documented allergy.\n\n"
            f"- {facts}\n- {why}\n\nChoose a drug outside this class, or record why the allergy does not apply."
        )
        cards.append(
            card(
                summary_text=headline,
                detail=detail,
                indicator=indicator,
                card_source=ALLERGY,
                suggestions=remove_draft(draft.reference, ingredient),
                reasons=override_reasons(
                    ("tolerated-before", "Patient has tolerated this drug before"),
                    ("not-true-allergy", "Documented reaction is not an allergy"),
                    ("benefit-outweighs-risk", "Benefit outweighs the risk"),
                ),
            )
        )
    return cards


def duplicate_cards(draft: DraftOrder, all_drafts: list[DraftOrder], chart: Chart) -> list[Card]:
    cards = []
    pending = [
        ("active order", o, reference(o), _order_label(o, chart))
        for o in chart.medication_requests
        if is_active_order(o) and reference(o) != draft.reference
    ]
    pending += [
        ("draft in this session", other.resource, other.reference or "a draft without an id", other.label)
        for other in all_drafts
        if other is not draft and other.reference != draft.reference
    ]
    for kind, order, where, label in pending:
        concept = medication_concept(order, chart.medications)
        shared = draft.ingredients & concept_ingredients(concept)
        same_product = bool(draft.rxnorm & rxnorm_codes(concept))
        if not shared and not same_product:
            continue
        ingredient = min(shared) if shared else draft.label
        since = order.get("authoredOn")
        detail = (
            f"**{draft.label}** ({draft.reference or 'draft without an id'}) duplicates an {kind}: "
            f"*{label}* ({where}, status {order.get('status', 'draft')}"
            f"{', authored ' + since[:10] if isinstance(since, str) else ''}), "
            f"{'the same product' if same_product else 'the same ingredient, ' + ingredient}.\n\n"
            "Keep one order: remove the new draft, or stop the existing order if this one replaces it."
        )
        cards.append(
            card(
                summary_text=f"Duplicate {ingredient}: {label} is already an {kind}",
                detail=detail,
                indicator="warning",
                card_source=DUPLICATE,
                suggestions=remove_draft(draft.reference, ingredient),
                reasons=override_reasons(
                    ("intended-combination", "Both orders are intended"),
                    ("replaces-existing", "The new order replaces the existing one"),
                ),
            )
        )
    return cards


def renal_cards(draft: DraftOrder, kidney: KidneyFunction, now: datetime) -> list[Card]:
    cards = []
    for rule in renal_rules():
        ingredients = sorted(set(rule.ingredients) & draft.ingredients)
        if not ingredients:
            continue
        limits = sorted((limit for limit in rule.limits if kidney.egfr < limit.below), key=lambda limit: limit.below)
        if not limits:
            continue
        limit = limits[0]
        age_days = (now - kidney.when).days
        stale = f" The value is {age_days} days old; check current kidney function." if age_days > STALE_DAYS else ""
        detail = (
            f"**{draft.label}** ({draft.reference or 'draft without an id'}): {limit.advice}.\n\n"
            f"- Latest kidney function: {kidney.describe()}.{stale}\n- Source: {rule.source}.\n"
            "- eGFR stands in for creatinine clearance (Cockcroft-Gault), in which most labels state limits."
        )
        cards.append(
            card(
                summary_text=f"eGFR {kidney.egfr:.0f}: {ingredients[0]} {_limit_phrase(limit.remove, limit.below)}",
                detail=detail,
                indicator=limit.indicator,
                card_source=RENAL,
                suggestions=remove_draft(draft.reference, ingredients[0]) if limit.remove else None,
                reasons=override_reasons(
                    ("dose-adjusted", "Dose already adjusted for kidney function"),
                    ("benefit-outweighs-risk", "Benefit outweighs the risk"),
                ),
            )
        )
    return cards


def _limit_phrase(remove: bool, below: float) -> str:
    return f"should not be used below {below:g}" if remove else f"needs review below {below:g}"


def _order_label(order: dict[str, Any], chart: Chart) -> str:
    return coded(medication_concept(order, chart.medications))
