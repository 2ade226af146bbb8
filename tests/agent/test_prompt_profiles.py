"""Prompt profiles: the compact one names every tool and its required arguments in far fewer words; an agent
uses the profile it is given, else its model's preferred one (a trained adapter's), else the full one."""

from __future__ import annotations

import pytest

from medagent.agent.graph import Agent
from medagent.agent.prompts import system_prompt
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy
from medagent.tools.registry import Registry
from tests.agent.conftest import NOW, PATIENT, final


class CompactPreferringPolicy(ScriptedPolicy):
    """A test policy that, like an embedded backend carrying an adapter, prefers the compact profile."""

    preferred_profile = "compact"


def test_compact_profile_names_tools_and_required_arguments(registry: Registry) -> None:
    tools = registry.openai_schemas(None)
    compact = system_prompt(NOW, PATIENT, tools, "compact")
    full = system_prompt(NOW, PATIENT, tools, "full")
    assert "search_observations(patient)" in compact and "lookup_codes(text)" in compact
    assert "order_medication(patient, code)" in compact
    assert all(spec["function"]["name"] in compact for spec in tools)
    assert f"Patient/{PATIENT}" in compact and NOW in compact
    assert len(compact) * 4 < len(full)
    with pytest.raises(ValueError, match="profile"):
        system_prompt(NOW, PATIENT, tools, "tiny")  # type: ignore[arg-type]


@pytest.mark.parametrize(("policy_cls", "given", "expected"), [
    (ScriptedPolicy, None, "full"),
    (CompactPreferringPolicy, None, "compact"),
    (CompactPreferringPolicy, "full", "full"),
    (ScriptedPolicy, "compact", "compact"),
])
async def test_agent_picks_the_given_then_the_models_profile(registry: Registry, client: FhirClient,
                                                             policy_cls: type[ScriptedPolicy], given: str | None,
                                                             expected: str) -> None:
    policy = policy_cls([final("no", f"Patient/{PATIENT}")])
    agent = Agent(model=policy, registry=registry, client=client, prompt_profile=given)  # type: ignore[arg-type]
    result = await agent.run("Does the patient have asthma?", now=NOW, patient=PATIENT)
    assert result.status == "answered"
    sent = policy.requests[0].messages[0].content
    assert sent == system_prompt(NOW, PATIENT, registry.openai_schemas(None), expected)  # type: ignore[arg-type]
