"""The patient in context is not searched for again unless the question names someone else (issue 28 item 3).

The decision (``guards.search_closed``: the question's name words, birth dates and identifiers against the patient's
record and the other patients on the real embedded server), the guard refusing ``find_patients`` whatever its
arguments, and the action grammar the agent sends leaving the tool out, through the real agent driven by
ScriptedPolicy. Patients and their names come from the bundles (``load_charts``), not from the tools. Every question
of the natural set names only its patient, and of the v2/v3 tasks whose oracle's search finds someone other than the
patient in context (find_mrn, not found) every one stays open. (The grammar through llguidance and the real
tokenizer: tests/models/test_search_grammar.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medagent.agent.graph import Agent
from medagent.agent.guards import search_closed
from medagent.agent.patient_mentions import name_words, without_patient_name
from medagent.agent.state import Limits
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy
from medagent.scenarios.build import load_charts
from medagent.scenarios.chart import Chart
from medagent.tools.context import ToolContext
from medagent.tools.registry import Registry
from medagent.vocabulary import parse_instant
from tests.agent.conftest import NOW, PATIENT, call, final

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture(scope="module")
def charts() -> dict[str, Chart]:
    return {chart.patient_id: chart for chart in load_charts()}


@pytest.fixture(scope="module")
def me(charts: dict[str, Chart]) -> Chart:
    return charts[PATIENT]


@pytest.fixture(scope="module")
def other(charts: dict[str, Chart], me: Chart) -> Chart:
    """Another patient sharing no name word with the one in context."""
    mine = {me.given.casefold(), me.family.casefold()}
    return next(c for c in charts.values() if not {c.given.casefold(), c.family.casefold()} & mine)


async def closed(client: FhirClient, question: str, patient: str = PATIENT) -> bool:
    ctx = ToolContext(client=client, now=parse_instant(NOW), patient=patient)
    return await search_closed(ctx, question)


def agent(policy: ScriptedPolicy, registry: Registry, client: FhirClient) -> Agent:
    return Agent(model=policy, registry=registry, client=client, limits=Limits(max_steps=6))  # type: ignore[arg-type]


def tool_choices(schema: dict) -> set[str]:
    return {option["properties"]["tool"]["const"] for option in schema["anyOf"]}


# ---------- the decision: does the question name someone else? ----------

@pytest.mark.parametrize("template", [
    "Has {given} {family} ever been prescribed metformin?",  # full name
    "What was {given}'s last A1c?",  # first name, possessive
    "Does Mr. {family} have hypertension?",  # title and family name
    "Re {given} {family} - is she still on lisinopril?",
    "Is she on metformin or insulin?",  # pronoun only
    "What was the most recent hemoglobin A1c?",  # no name at all
    "Has {given} ever taken Lisinopril or Plavix for Hypertension?",  # capitalised drugs and a condition
    "Who prescribed {given} {family}'s Amlodipine in January?",  # a month
    "Find the MRN of {given} {family} (date of birth {born}).",  # their own birth date
    "What is the last A1c of the patient with MRN {mrn}?",  # their own MRN
])
async def test_a_question_naming_only_the_patient_closes_the_search(template: str, client: FhirClient,
                                                                   me: Chart) -> None:
    question = template.format(given=me.given, family=me.family, born=me.birth_date.isoformat(), mrn=me.mrn)
    assert await closed(client, question), question


@pytest.mark.parametrize("template", [
    "Has {o_given} {o_family} ever been prescribed metformin?",  # another patient's full name
    "Compare {given}'s last A1c with {o_given}'s.",  # the patient and another one by first name
    "Is Mrs. {o_family} on lisinopril?",
    "Find the MRN of {given} {family} (date of birth 1901-01-01).",  # the patient's name, another birth date
    "Find the MRN of {given} {family}, born January 1, 1901.",  # written out
    "Find the MRN of {given} {family}, DOB 1/1/19O1.",  # a birth date that cannot be read: open
    "What is the last A1c of the patient with MRN {o_mrn}?",  # another MRN
])
async def test_a_question_naming_someone_else_leaves_the_search_open(template: str, client: FhirClient, me: Chart,
                                                                    other: Chart) -> None:
    question = template.format(given=me.given, family=me.family, o_given=other.given, o_family=other.family,
                               o_mrn=other.mrn)
    assert not await closed(client, question), question


async def test_a_clinician_named_by_title_is_not_someone_to_search_for(client: FhirClient, other: Chart) -> None:
    # another patient's family name, after "Dr.": a prescriber, not a patient; without the title it may be a patient
    assert await closed(client, f"Was her amlodipine prescribed by Dr. {other.given} {other.family}?")
    assert not await closed(client, f"Was her amlodipine prescribed by {other.given} {other.family}?")


async def test_no_patient_in_context_no_closed_search(client: FhirClient, me: Chart) -> None:
    ctx = ToolContext(client=client, now=parse_instant(NOW))
    assert not await search_closed(ctx, f"Has {me.name} ever been prescribed metformin?")


def test_name_words_are_the_capitalised_non_function_words() -> None:
    assert name_words("Does Mr. Douglas (Barrett) have epilepsy?") == ["Douglas", "Barrett"]
    assert name_words("Who prescribed iron for Cary O'Hara's HbA1c and BP?") == ["Cary", "O'Hara"]
    assert name_words("What did Dr. Jane Doe order for him?") == []
    assert name_words("karla kessler most recent systolic bp") == []  # lower case: not read as names


def _questions(*files: str) -> list[dict]:
    return [json.loads(line) for name in files for line in (SCENARIOS / name).read_text().splitlines()]


async def test_every_natural_question_names_only_its_patient(client: FhirClient) -> None:
    """Written from each test patient's chart about that patient: the search is closed for all 425."""
    items = _questions("natural/ehrqa/test.jsonl", "natural/hard/test.jsonl")
    assert len(items) == 425
    still_open = [item["question"] for item in items if not await closed(client, item["question"], item["patient"])]
    assert still_open == []


async def test_a_find_mrn_task_whose_patient_is_not_found_stays_open(client: FhirClient) -> None:
    """The one v2/v3 category whose oracle's find_patients finds someone other than the patient in context (no
    one: the stated birth date is not theirs): every such task, dev and test, leaves the search open; a task asking
    for the patient in context by their own name and birth date closes it (the search would find only them)."""
    items = [item for version in ("v2", "v3") for split in ("dev", "test")
             for item in _questions(f"{version}/agentic/{split}.jsonl") if item["category"] == "find_mrn"]
    decided = {item["id"]: await closed(client, item["question"], item["patient"]) for item in items}
    assert {item["meta"]["variant"] for item in items} == {"found", "not-found"}
    assert [i["id"] for i in items if i["meta"]["variant"] == "not-found" and decided[i["id"]]] == []
    assert [i["id"] for i in items if i["meta"]["variant"] == "found" and not decided[i["id"]]] == []


# ---------- the guard and the grammar, through the agent ----------

@pytest.mark.parametrize("arguments", [{"identifier": "12345"}, {"name": "John Doe"}, {"birth_date": "1980-01-01"},
                                       {}])
async def test_a_made_up_search_for_the_patient_in_context_is_refused(arguments: dict, registry: Registry,
                                                                      client: FhirClient, me: Chart) -> None:
    policy = ScriptedPolicy([call("find_patients", **arguments), final("No, it is not in the record.")])
    result = await agent(policy, registry, client).run(f"Has {me.name} ever been prescribed metformin?", now=NOW,
                                                      patient=PATIENT)
    step = result.trace[0]
    assert step.tool == "find_patients" and step.references == []  # not run: nothing was read
    assert "already in context" in (step.error or "") and me.mrn in (step.error or "")
    assert "find_patients" not in tool_choices(policy.requests[0].json_schema)  # and not offered to a grammar
    assert "search_conditions" in tool_choices(policy.requests[0].json_schema)


async def test_a_question_naming_someone_else_keeps_the_search(registry: Registry, client: FhirClient,
                                                              other: Chart) -> None:
    policy = ScriptedPolicy([call("find_patients", name=other.name), final("done")])
    result = await agent(policy, registry, client).run(f"What is {other.name}'s MRN?", now=NOW, patient=PATIENT)
    assert "find_patients" in tool_choices(policy.requests[0].json_schema)
    assert result.trace[0].error is None and result.trace[0].references == [f"Patient/{other.patient_id}"]


# ---------- the patient's name is not a search text ----------

@pytest.mark.parametrize(("text", "searched"), [
    ("{given} {family}", None),
    ("{family}", None),
    ("Mrs. {family}", None),
    ("{given} {family} - miscarriage", "miscarriage"),
    ("{given} {family}'s pregnancies", "pregnancies"),
    ("hypertension of {given} {family}", "hypertension"),
    ("Hypertension", "Hypertension"),
    ("{family} disease", "{family} disease"),  # one name word beside others stays (an eponym)
    ("Ortho Tri-Cyclen", "Ortho Tri-Cyclen"),  # no name: the text as it is
    ("An appendectomy", "An appendectomy"),
])
def test_the_patients_name_is_taken_out_of_a_search_text(text: str, searched: str | None, me: Chart) -> None:
    names = {me.given.casefold(), me.family.casefold()}
    expected = searched.format(given=me.given, family=me.family) if searched else None
    assert without_patient_name(text.format(given=me.given, family=me.family), names) == expected


async def test_the_agent_searches_without_the_patients_name(registry: Registry, client: FhirClient,
                                                           me: Chart) -> None:
    policy = ScriptedPolicy([call("search_conditions", text=f"{me.name} hypertension"), final("Yes.")])
    result = await agent(policy, registry, client).run(f"Does {me.name} have hypertension?", now=NOW,
                                                      patient=PATIENT)
    step = result.trace[0]
    assert step.arguments["text"] == "hypertension" and "name taken out" in (step.note or "")
    policy = ScriptedPolicy([call("search_medications", text=me.name.lower()), final("None.")])
    result = await agent(policy, registry, client).run(f"what meds is {me.name.lower()} on", now=NOW,
                                                      patient=PATIENT)
    assert "text" not in result.trace[0].arguments and result.trace[0].error is None


# ---------- no answer from nothing after a failed call ----------

async def test_after_a_failed_first_call_the_model_must_read_before_answering(registry: Registry,
                                                                             client: FhirClient) -> None:
    policy = ScriptedPolicy([call("search_observations", code="4548-4", since="-1"), final("It was 4548-4."),
                             call("search_observations", code="4548-4"), final("6.1 %")])
    result = await agent(policy, registry, client).run("What was his last A1c?", now=NOW, patient=PATIENT)
    assert result.trace[0].error  # bad arguments
    assert "final_answer" not in tool_choices(policy.requests[1].json_schema)  # the grammar offers only tools
    assert "nothing has been read" in (result.trace[1].error or "")  # a backend without it is asked once
    assert result.trace[2].tool == "search_observations" and result.trace[2].error is None
    assert "final_answer" in tool_choices(policy.requests[3].json_schema)
    assert result.answer == "6.1 %"


async def test_after_reading_a_failed_call_does_not_hold_the_answer(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([call("search_observations", code="4548-4"), call("search_observations", since="-1"),
                             final("6.1 %")])
    result = await agent(policy, registry, client).run("What was his last A1c?", now=NOW, patient=PATIENT)
    assert result.trace[1].error and result.answer == "6.1 %"
    assert "final_answer" in tool_choices(policy.requests[2].json_schema)
