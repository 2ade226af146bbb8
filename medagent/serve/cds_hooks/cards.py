"""What the cards of every service share: the source they name, override reasons, the remove-the-draft
suggestion, and the summary line kept under the specification's 140 characters."""

from __future__ import annotations

from medagent.serve.cds_hooks.messages import (
    Action,
    Card,
    Coding,
    Indicator,
    Source,
    Suggestion,
)

TOPIC_SYSTEM = "urn:medagent:cds:topic"
OVERRIDE_SYSTEM = "urn:medagent:cds:override-reason"
SOURCE_LABEL = "medagent CDS"
SUMMARY_MAX = 139


def source(topic: str, display: str) -> Source:
    return Source(label=f"{SOURCE_LABEL}: {display}", topic=Coding(system=TOPIC_SYSTEM, code=topic, display=display))


def override_reasons(*reasons: tuple[str, str]) -> list[Coding]:
    return [Coding(system=OVERRIDE_SYSTEM, code=code, display=display) for code, display in reasons]


def summary(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def remove_draft(draft_reference: str | None, label: str) -> list[Suggestion] | None:
    """One recommended suggestion deleting the draft order (none when the draft has no id to name)."""
    if draft_reference is None:
        return None
    action = Action(type="delete", description=f"Remove the draft order {draft_reference}", resourceId=draft_reference)
    return [Suggestion(label=f"Remove the draft {label} order", isRecommended=True, actions=[action])]


def card(
    *,
    summary_text: str,
    detail: str,
    indicator: Indicator,
    card_source: Source,
    suggestions: list[Suggestion] | None = None,
    reasons: list[Coding] | None = None,
) -> Card:
    return Card(
        summary=summary(summary_text),
        detail=detail,
        indicator=indicator,
        source=card_source,
        suggestions=suggestions,
        selectionBehavior="at-most-one" if suggestions else None,
        overrideReasons=reasons,
    )
