"""The one approval path's policies, decided in-process (no server, no model): what each mode decides,
the patient-in-context rule, the label the trajectory records, and the refusal text the model reads.
Expected values are the documented contract (medagent/agent/README.md, "Writes"), written out by hand."""

from __future__ import annotations

import asyncio

import pytest

from medagent.tools.approval import (
    APPROVE_WRITES,
    ESCALATE_WRITES,
    REFUSE_WRITES,
    ApprovalDecision,
    FixedVerdict,
    PatientInContext,
    ReviewerCallback,
    WriteRequest,
    approval_policy,
)
from medagent.tools.registry import refusal_message

HERE, OTHER = "ba18818d-faef-44cd-9744-b12d8973d402", "0b5c2c5a-0000-4000-8000-000000000001"


def request(patient: str | None = HERE, context: str | None = HERE) -> WriteRequest:
    return WriteRequest(tool="record_vital_sign", arguments={"patient": patient}, patient=patient,
                        context_patient=context)


def decide(policy, req: WriteRequest) -> ApprovalDecision:  # type: ignore[no-untyped-def]
    return asyncio.run(policy.decide(req))


def test_each_mode_names_its_policy_and_an_unknown_mode_is_refused() -> None:
    assert approval_policy("refuse") is REFUSE_WRITES
    assert approval_policy("ask") is ESCALATE_WRITES
    assert approval_policy("auto") is APPROVE_WRITES
    assert approval_policy(REFUSE_WRITES) is REFUSE_WRITES       # a policy passes through
    with pytest.raises(ValueError, match="unknown approval mode 'yes'; use one of refuse, ask, auto"):
        approval_policy("yes")  # type: ignore[arg-type]


def test_refuse_ask_and_auto_decide_as_named() -> None:
    assert decide(REFUSE_WRITES, request()).verdict == "reject"
    assert decide(REFUSE_WRITES, request()).by == "read-only"
    assert decide(ESCALATE_WRITES, request()).verdict == "escalate"
    auto = decide(APPROVE_WRITES, request())
    assert (auto.verdict, auto.by) == ("approve", "auto")


@pytest.mark.parametrize(("patient", "context"), [
    (HERE, HERE), (f"Patient/{HERE}", HERE), (HERE, f"Patient/{HERE}"),   # with or without the type prefix
    (HERE, None),      # no patient in context: nothing to compare against
])
def test_auto_approves_a_write_to_the_patient_in_context(patient: str | None, context: str | None) -> None:
    assert decide(APPROVE_WRITES, request(patient, context)).verdict == "approve"


def test_auto_escalates_a_write_that_names_no_patient() -> None:
    """Issue 25: a write whose patient is unknown is not covered by auto (the registry resolves every write's
    patient, from the record it changes when no argument names one; a request without one fails closed)."""
    decision = decide(APPROVE_WRITES, request(None, HERE))
    assert (decision.verdict, decision.by) == ("escalate", "patient-in-context rule")
    assert decision.reason == f"the write names no patient (Patient/{HERE} in context)"
    assert refusal_message("add_note", decision) == (
        "refused: add_note needs a reviewer's approval (the write names no patient "
        f"(Patient/{HERE} in context)) and no reviewer is attached to this run")


def test_auto_escalates_a_write_to_another_patient_and_names_both() -> None:
    decision = decide(APPROVE_WRITES, request(OTHER, HERE))
    assert decision.verdict == "escalate"
    assert decision.by == "patient-in-context rule"
    assert decision.reason == f"the write names Patient/{OTHER}, not Patient/{HERE} in context"
    prefixed = decide(APPROVE_WRITES, request(f"Patient/{OTHER}", f"Patient/{HERE}"))
    assert prefixed.reason == f"the write names Patient/{OTHER}, not Patient/{HERE} in context"
    # the rule never turns a refusal into something else
    assert decide(REFUSE_WRITES, request(OTHER, HERE)).verdict == "reject"


def test_a_reviewer_callback_decides_each_write() -> None:
    async def only_here(req: WriteRequest) -> bool:
        return req.patient == HERE

    assert ReviewerCallback(only_here).name == "callback"       # the name traces show when none is given
    reviewer = ReviewerCallback(only_here, name="ward reviewer")
    yes, no = decide(reviewer, request(HERE)), decide(reviewer, request(OTHER))
    assert (yes.verdict, yes.by, no.verdict, no.by) == ("approve", "ward reviewer", "reject", "ward reviewer")


@pytest.mark.parametrize(("decision", "label"), [
    (ApprovalDecision(verdict="approve", by="auto"), "auto-approved"),
    (ApprovalDecision(verdict="approve", by="ward reviewer"), "approved by ward reviewer"),
    (ApprovalDecision.reviewer(True), "approved"),
    (ApprovalDecision.reviewer(False), "rejected by user"),
    (ApprovalDecision.reviewer(False, "wrong dose"), "rejected by user: wrong dose"),
    (ApprovalDecision(verdict="reject", by="read-only"), "refused: read-only mode"),
    (ApprovalDecision(verdict="reject", by="benchmark", reason="no reviewer"), "refused by benchmark: no reviewer"),
    (ApprovalDecision(verdict="reject", by="benchmark"), "refused by benchmark"),
    (ApprovalDecision(verdict="escalate", by="ask"), "waiting for a reviewer"),
])
def test_the_trajectory_label_says_who_decided_what(decision: ApprovalDecision, label: str) -> None:
    assert decision.label == label


def test_the_model_reads_why_a_write_did_not_run() -> None:
    assert refusal_message("order_medication", ApprovalDecision(verdict="approve", by="auto")) is None
    read_only = refusal_message("order_medication", REFUSE_WRITES.decision)
    assert read_only == ("refused: read-only mode; order_medication would write to the EHR and writes are disabled "
                         "for this run. Answer from what you can read, or say the write could not be made.")
    waiting = refusal_message("order_medication", ApprovalDecision(verdict="escalate", by="ask"))
    assert waiting == "refused: order_medication needs a reviewer's approval and no reviewer is attached to this run"
    rejected = refusal_message("order_medication", ApprovalDecision.reviewer(False, "wrong dose"))
    assert rejected == "refused: order_medication was not approved (rejected by user: wrong dose); do not retry it"


def test_a_policy_built_at_run_time_keeps_its_name_and_decision_and_the_rule_asks_the_inner_policy() -> None:
    seen: list[WriteRequest] = []

    async def record(req: WriteRequest) -> bool:
        seen.append(req)
        return True

    fixed = FixedVerdict("ward", ApprovalDecision(verdict="reject", by="ward", reason="night shift"))
    assert fixed.name == "ward"
    assert decide(fixed, request()) == ApprovalDecision(verdict="reject", by="ward", reason="night shift")
    rule = PatientInContext(ReviewerCallback(record, name="nurse"))
    assert rule.name == "nurse"
    req = request(HERE, HERE)
    assert decide(rule, req).verdict == "approve"
    assert seen == [req]                      # the inner policy saw the very request
    assert ApprovalDecision.reviewer(True) == ApprovalDecision(verdict="approve", by="reviewer", reason="")
    assert ApprovalDecision.reviewer(False, "no") == ApprovalDecision(verdict="reject", by="reviewer", reason="no")
