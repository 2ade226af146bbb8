"""The agent's decoding guards in the embedded backend's own grammar (llguidance, the real Gemma 3 tokenizer), on the
action schema the agent sends (issue 28 item 3): for a question naming only the patient in context the model may
begin every other tool and never ``find_patients``; for a question naming someone else it may. A date argument
(since, until) takes only the forms the tools read: "-1" or "2019-01-" cannot be closed. (The decision and the
guard: tests/agent/test_patient_search_guard.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from medagent.agent.graph import Agent
from medagent.agent.state import Limits
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy
from medagent.scenarios.build import load_charts
from medagent.tools.registry import Registry
from tests.agent.conftest import NOW, PATIENT, final

pytest.importorskip("llguidance")
pytest.importorskip("transformers")

from medagent.models.embedded import schema_matcher  # noqa: E402


@pytest.fixture(scope="module")
def tokenizers() -> tuple[Any, Any]:
    import llguidance.hf
    from transformers import AutoTokenizer

    from medagent.models.embedded import prepare_model

    tokenizer = AutoTokenizer.from_pretrained(str(prepare_model("gemma3-270m")))
    return tokenizer, llguidance.hf.from_tokenizer(tokenizer)


def _viable(tokenizers: tuple[Any, Any], schema: dict[str, Any], prefix: str) -> bool:
    """Whether the grammar's per-token mask lets a model write this reply prefix."""
    import numpy as np

    tokenizer, ll_tokenizer = tokenizers
    matcher = schema_matcher(ll_tokenizer, schema)
    for token in tokenizer(prefix, add_special_tokens=False)["input_ids"]:
        mask = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
        if not mask[token] or not matcher.consume_token(token):
            return False
    return True


async def _first_schema(question: str, registry: Registry, client: FhirClient) -> dict[str, Any]:
    policy = ScriptedPolicy([final("done")])
    agent = Agent(model=policy, registry=registry, client=client, limits=Limits(max_steps=4))  # type: ignore[arg-type]
    await agent.run(question, now=NOW, patient=PATIENT)
    schema = policy.requests[0].json_schema
    assert schema is not None
    return schema


async def test_the_grammar_leaves_find_patients_out_for_the_patient_in_context(
    tokenizers: tuple[Any, Any], registry: Registry, client: FhirClient
) -> None:
    charts = {chart.patient_id: chart for chart in load_charts()}
    me = charts[PATIENT]
    other = next(c for c in charts.values() if not {c.given, c.family} & {me.given, me.family})
    closed = await _first_schema(f"Has {me.name} ever been prescribed metformin?", registry, client)
    opened = await _first_schema(f"What is {other.name}'s MRN?", registry, client)
    search = '{"tool":"find_patients","arguments":{"identifier":"12'
    assert not _viable(tokenizers, closed, search)
    assert _viable(tokenizers, opened, search)
    for prefix in ('{"tool":"search_medications","arguments":{', '{"tool":"get_patient","arguments":{',
                   '{"tool":"final_answer","arguments":{"answer":"No'):
        assert _viable(tokenizers, closed, prefix), prefix


@pytest.mark.parametrize(("since", "closes"), [
    ("-1", False), ("2019-01-", False), ("last year", False),
    ("-1y", True), ("2019-01-01", True), ("2019", True), ("-30d", True), ("2019-05-02T08:00", True),
    ("MedicationRequest/abc-1", True),
])
async def test_a_date_argument_takes_only_the_forms_the_tools_read(since: str, closes: bool,
                                                                  tokenizers: tuple[Any, Any], registry: Registry,
                                                                  client: FhirClient) -> None:
    schema = await _first_schema("What was his last A1c?", registry, client)
    prefix = '{"tool":"search_observations","arguments":{"since":'
    if closes:
        assert _viable(tokenizers, schema, prefix + '"' + since)
    assert _viable(tokenizers, schema, prefix + '"' + since + '"') is closes
