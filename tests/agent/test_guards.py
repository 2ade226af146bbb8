"""The agent's decoding guards, through the real agent on the real embedded FHIR server with ScriptedPolicy (the test
model): a final answer echoing the format text or a placeholder is asked again; a yes/no question gets the yes/no
pattern in its grammar and a non-yes/no answer is asked again; find_patients for the patient already in context is
not run, for anyone else it is. (The yes/no pattern through the real tokenizer's grammar:
tests/models/test_answer_grammar.py.)"""

from __future__ import annotations

import re

import pytest

from medagent.agent.answer_format import YES_NO_PATTERN, answer_pattern, format_text, yes_no_question
from medagent.agent.graph import Agent
from medagent.agent.guards import echoes_format, final_answer_problem
from medagent.agent.state import Limits
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy
from medagent.scenarios.build import load_charts
from medagent.scenarios.chart import Chart
from medagent.tools.registry import Registry
from tests.agent.conftest import NOW, PATIENT, call, final

NUMBER_QUESTION = ("Question: What was the patient's most recent hemoglobin A1c (LOINC 4548-4)?\n"
                   "Answer format: Answer with one number in %, rounded to 1 decimal place.")
DATE_QUESTION = "Question: When was the flu shot last given?\nAnswer format: Answer with one date in YYYY-MM-DD format."
CARE_GAPS_QUESTION = ("Care-gap review for MRN 1234: go through the screening and vaccine schedule.\n"
                      'Answer format: Answer as JSON: {"colorectal": ..., "lipids": ..., "diabetes": ..., '
                      '"tetanus": ..., "pneumococcal": ...}, each "due", "up to date" or "not applicable".')


def agent(policy: ScriptedPolicy, registry: Registry, client: FhirClient) -> Agent:
    return Agent(model=policy, registry=registry, client=client, limits=Limits(max_steps=6))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def charts() -> dict[str, Chart]:
    return {chart.patient_id: chart for chart in load_charts()}


def answer_schema(request_schema: dict) -> dict:
    option = next(o for o in request_schema["anyOf"] if o["properties"]["tool"]["const"] == "final_answer")
    return option["properties"]["arguments"]["properties"]["answer"]


# ---------- the final answer: no echo, no placeholder ----------

@pytest.mark.parametrize("echo", ["one number in %, rounded to 1 decimal place",
                                  "a number rounded to 1 decimal place in %",
                                  "Answer with one number in %, rounded to 1 decimal place."])
async def test_an_answer_echoing_the_format_is_asked_again(echo: str, registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([final(echo), final("6.1 %")])
    result = await agent(policy, registry, client).run(NUMBER_QUESTION, now=NOW, patient=PATIENT)
    assert result.status == "answered" and result.answer == "6.1 %"
    assert result.trace[0].tool is None and "answer-format instructions" in (result.trace[0].error or "")
    assert "answer-format instructions" in policy.requests[1].messages[-1].content


@pytest.mark.parametrize("answer", ["<id>", "Patient/<id>", "YYYY-MM-DD", "[the medication names exactly as written]"])
async def test_an_answer_holding_a_placeholder_is_asked_again(answer: str, registry: Registry,
                                                             client: FhirClient) -> None:
    policy = ScriptedPolicy([final(answer), final("2019-10-01")])
    result = await agent(policy, registry, client).run(DATE_QUESTION, now=NOW, patient=PATIENT)
    assert result.answer == "2019-10-01"
    assert "placeholder" in (result.trace[0].error or "")


async def test_an_answer_that_keeps_echoing_ends_the_run_as_invalid_output(registry: Registry,
                                                                         client: FhirClient) -> None:
    policy = ScriptedPolicy([final("one date in YYYY-MM-DD format")] * 3)
    result = await agent(policy, registry, client).run(DATE_QUESTION, now=NOW, patient=PATIENT)
    assert result.status == "invalid_output" and result.answer is None


@pytest.mark.parametrize(("answer", "question"), [
    ("6.1 %, rounded to 1 decimal place", NUMBER_QUESTION),  # the value is there: not an echo
    ("No patient matches both the name and the birth date",
     "Answer format: Answer with the MRN only, or 'Patient not found' if no patient matches both the name and the "
     "birth date."),
    ("Patient not found", "Answer format: Answer with the MRN only, or 'Patient not found' if no patient matches."),
    ("none", NUMBER_QUESTION),
    ("It was 6.1 %.", "What was her last a1c?"),  # no format stated: nothing to echo
    ('{"colorectal": "up to date", "lipids": "up to date", "diabetes": "up to date", "tetanus": "up to date", '
     '"pneumococcal": "not applicable"}', CARE_GAPS_QUESTION),  # each value one of the options: the answer itself
])
def test_answers_that_carry_a_value_are_not_echoes(answer: str, question: str) -> None:
    assert not echoes_format(answer, question)
    assert final_answer_problem(answer, question, answer_pattern(question)) is None


def test_a_json_answer_whose_value_echoes_the_format_is_an_echo() -> None:
    answer = '{"colorectal": "each due, up to date or not applicable", "lipids": "due"}'
    assert echoes_format(answer, CARE_GAPS_QUESTION)



def test_the_format_text_is_found_on_its_line_and_inline() -> None:
    assert format_text(NUMBER_QUESTION) == "Answer with one number in %, rounded to 1 decimal place."
    assert format_text("When was it? Answer with one date in YYYY-MM-DD format.") == \
        "Answer with one date in YYYY-MM-DD format."
    assert format_text("When was her last flu shot?") == ""


# ---------- yes/no ----------

@pytest.mark.parametrize(("question", "yes_no"), [
    ("Has Mrs. Kutch ever been prescribed metformin?", True),
    ("Re Fannie Kutch - Is she still on lisinopril?", True),
    ("Any history of asthma for the patient?", True),
    ("Can you check if she has diabetes?", True),
    ("Is her A1c above 6.5?", True),
    ("Is she on metformin or insulin?", True),
    ("Question: Is the patient on X?\nAnswer format: Answer yes or no.", True),
    ("Which medications is Mrs. Kutch currently taking?", False),
    ("Who prescribed her latest amlodipine?", False),
    ("Has she had an A1c in the last year? If so, what was it?", False),
    ("Can you give me her latest a1c?", False),
    ("latest a1c?", False),
    ("Is the patient due? Look at the record.\n\nAnswer format: Answer with the date of the last dose as YYYY-MM-DD.",
     False),
])
def test_yes_no_questions_are_recognised(question: str, yes_no: bool) -> None:
    assert yes_no_question(question) is yes_no
    assert (answer_pattern(question) == YES_NO_PATTERN) is yes_no


def test_the_yes_no_pattern_takes_yes_or_no_first() -> None:
    for good in ("yes", "No", "Yes.", "No, it is not in the record.", "Yes - since 2015", "YES"):
        assert re.fullmatch(YES_NO_PATTERN, good), good
    for bad in ("Jane Doe", "None", "Not recorded", "Nope", "yesterday", "It is yes", ""):
        assert not re.fullmatch(YES_NO_PATTERN, bad), bad


async def test_a_yes_no_question_gets_the_pattern_and_a_name_is_asked_again(registry: Registry,
                                                                          client: FhirClient) -> None:
    question = "Has Adalberto ever been prescribed amlodipine?"
    policy = ScriptedPolicy([final("Dr. Jane Doe"), final("No, it is not in the record.")])
    result = await agent(policy, registry, client).run(question, now=NOW, patient=PATIENT)
    assert answer_schema(policy.requests[0].json_schema)["pattern"] == YES_NO_PATTERN  # the grammar's, for every backend
    assert result.answer == "No, it is not in the record."
    assert "start the answer with Yes or No" in (result.trace[0].error or "")


async def test_another_question_takes_a_name(registry: Registry, client: FhirClient) -> None:
    policy = ScriptedPolicy([final("Dr. Jane Doe")])
    result = await agent(policy, registry, client).run("Who prescribed her amlodipine?", now=NOW, patient=PATIENT)
    assert result.answer == "Dr. Jane Doe" and result.trace[0].error is None
    assert "pattern" not in answer_schema(policy.requests[0].json_schema)


# ---------- the patient in context is not searched for again ----------

@pytest.mark.parametrize("by", ["name", "family", "mrn", "name+birth"])
async def test_a_search_for_the_patient_in_context_is_not_run(by: str, registry: Registry, client: FhirClient,
                                                             charts: dict[str, Chart]) -> None:
    me = charts[PATIENT]
    arguments = {"name": {"name": me.name}, "family": {"name": me.family}, "mrn": {"identifier": me.mrn},
                 "name+birth": {"name": me.name, "birth_date": me.birth_date.isoformat()}}[by]
    policy = ScriptedPolicy([call("find_patients", **arguments), final("No, it is not in the record.")])
    result = await agent(policy, registry, client).run(f"Has {me.name} ever been prescribed X?", now=NOW,
                                                      patient=PATIENT)
    step = result.trace[0]
    assert step.tool == "find_patients" and step.references == []  # not run: nothing was read
    assert f"Patient/{PATIENT}" in (step.error or "") and "already in context" in (step.error or "")
    assert me.mrn in (step.error or "")  # who that is: the search's answer, without the search
    assert "already in context" in policy.requests[1].messages[-1].content


async def test_a_search_for_someone_else_runs(registry: Registry, client: FhirClient,
                                              charts: dict[str, Chart]) -> None:
    me = charts[PATIENT]
    other = next(c for c in charts.values() if c.patient_id != PATIENT and c.family != me.family)
    # the question names that person (a question naming only the patient in context closes the search:
    # tests/agent/test_patient_search_guard.py)
    for arguments, question in (({"name": other.name}, f"Find {other.name}."),
                                ({"identifier": other.mrn}, f"Find the patient with MRN {other.mrn}."),
                                ({"name": me.name, "birth_date": "1901-01-01"},  # the same name, another birth date
                                 f"Find {me.name}, born 1901-01-01.")):
        policy = ScriptedPolicy([call("find_patients", **arguments), final("done")])
        result = await agent(policy, registry, client).run(question, now=NOW, patient=PATIENT)
        assert result.trace[0].error is None, arguments
        assert result.trace[0].result is not None and "already in context" not in result.trace[0].result
    policy = ScriptedPolicy([call("find_patients", name=other.name), final("done")])
    result = await agent(policy, registry, client).run(f"Find {other.name}.", now=NOW, patient=PATIENT)
    assert result.trace[0].references == [f"Patient/{other.patient_id}"]


async def test_without_a_patient_in_context_find_patients_runs(registry: Registry, client: FhirClient,
                                                               charts: dict[str, Chart]) -> None:
    me = charts[PATIENT]
    policy = ScriptedPolicy([call("find_patients", name=me.name), final("done")])
    result = await agent(policy, registry, client).run(f"Find {me.name}.", now=NOW)
    assert result.trace[0].error is None and result.trace[0].references == [f"Patient/{PATIENT}"]
