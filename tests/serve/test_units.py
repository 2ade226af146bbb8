"""Unit cases (hand-made) for the serve pieces that need no server: step accessor, bind check, request bodies."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from medagent.fhir.ids import split_reference
from medagent.serve.auth import check_bind, is_loopback, session_value
from medagent.serve.runs import step_view
from medagent.serve.schemas import Decision, StartRun

STEP = {"step": 2, "tool": "record_vital_sign", "arguments": {"systolic": 128}, "result": "recorded Observation/x",
        "error": None, "references": ["Observation/x"], "wrote": ["Observation/x"], "approval": "approved",
        "model_s": 0.5, "tool_s": 0.1, "prompt_tokens": 900, "completion_tokens": 30}


class TypedStep(BaseModel):
    """A stand-in for a typed trajectory step (the shape issue #15 moves the agent to)."""

    step: int
    tool: str | None
    arguments: dict | None = None
    result: str | None = None
    error: str | None = None
    references: list[str] = []
    wrote: list[str] = []
    approval: str | None = None
    model_s: float | None = None
    tool_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def test_step_view_reads_mappings_and_typed_steps_alike() -> None:
    from_mapping = step_view(STEP)
    assert from_mapping == step_view(TypedStep(**STEP))
    assert (from_mapping.kind, from_mapping.wrote, from_mapping.approval) == ("tool", ["Observation/x"], "approved")
    assert step_view({"step": 3, "tool": "final_answer", "arguments": {"answer": "7.1 %"}}).kind == "answer"
    assert step_view({"step": 1, "tool": None, "error": "not JSON"}).kind == "invalid"


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False),
                                                ("::", False), ("example.org", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bind_beyond_loopback_needs_a_long_enough_token() -> None:
    check_bind("127.0.0.1", None)
    with pytest.raises(ValueError, match="refusing to bind 10.1.2.3"):
        check_bind("10.1.2.3", None)
    with pytest.raises(ValueError, match="at least 16"):
        check_bind("10.1.2.3", "short")
    check_bind("10.1.2.3", "a-token-of-enough-length")
    assert "a-token-of-enough-length" not in session_value("a-token-of-enough-length")


def test_start_run_body_validation_names_the_field() -> None:
    body = StartRun(question="  Last HbA1c?  ", patient="Patient/abc-1", now="2020-06-01")
    assert (body.question, body.patient, body.now) == ("Last HbA1c?", "abc-1", "2020-06-01")
    assert StartRun(question="q", patient="", now="").patient is None
    with pytest.raises(ValidationError, match="now '06/01/2020' is not an ISO 8601"):
        StartRun(question="q", now="06/01/2020")
    with pytest.raises(ValidationError, match="patient\n.*'a b' is not a FHIR id"):
        StartRun(question="q", patient="a b")
    with pytest.raises(ValidationError, match="pending_id"):
        Decision(approve=True)  # type: ignore[call-arg]


def test_references_must_look_like_type_slash_id() -> None:
    assert split_reference("Observation/abc-1.2") == ("Observation", "abc-1.2")
    for bad in ("observation/abc", "Observation/", "Observation/a/b", "../etc/passwd", "Observation/a b",
                "Observation/.", "Observation/.."):
        with pytest.raises(ValueError, match="is not a (reference|FHIR id)"):
            split_reference(bad)


@pytest.mark.parametrize("now", ["2020", "2020-06", "2020-06-01", "2020-06-01T09:30:00Z", "2020-06-01T09:30:00+02:00"])
def test_a_run_clock_the_agent_accepts_is_accepted_by_the_service(now: str) -> None:
    # one instant parser (medagent.vocabulary.parse_instant) for the agent, the tools and the service
    assert StartRun(question="q", now=now).now == now


@pytest.mark.parametrize("now", ["2020-13-01", "2020-06-31", "yesterday", "2020-06-01T25:00"])
def test_a_clock_no_one_can_read_is_refused_by_name(now: str) -> None:
    with pytest.raises(ValidationError, match=f"now '{now}' is not an ISO 8601"):
        StartRun(question="q", now=now)
