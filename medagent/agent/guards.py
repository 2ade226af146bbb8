"""Decoding guards the agent applies to every model's decisions, whatever the backend.

- A final answer may not echo the question's answer-format text or hold a placeholder ("a number rounded
  to 1 decimal and its unit", "<id>", "YYYY-MM-DD"): it is re-asked.
- A question recognisably yes/no (:func:`~medagent.agent.answer_format.yes_no_question`) gets an answer that
  starts with Yes or No: the answer grammar holds it where the backend decodes under one (llguidance, vLLM's
  structured outputs: the same action schema), and here it is checked and re-asked for the others.
- A patient already in context is not searched for again unless the question names someone else
  (:func:`~medagent.agent.patient_mentions.names_someone_else`, decided once per run: :func:`search_closed`):
  then ``find_patients`` is left out of the action grammar (backends that decode under it never write it) and
  refused whatever its arguments (a made-up MRN included), for every backend. Where the question does name
  someone else, a search whose every identifying argument (name, MRN, birth date) matches the patient in context
  is still not run. Either way the model is told who the patient in context is and to read their record.
- A record search's free text is not the patient's name (:func:`~medagent.agent.patient_mentions.without_patient_name`,
  applied by the agent where it fills in the patient in context): "Almeda Conn - miscarriage" is searched as
  "miscarriage", "addie tremblay" not at all (the search then lists every row).
- No final answer straight after a failed read before anything was read (:func:`failed_before_reading`): the
  grammar offers only tools at that step (the model fixes its arguments as the error says), and a backend that
  answers anyway is asked once to read first. The small model otherwise answers from nothing ("It was 4548-4.").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from medagent.agent.answer_format import YES_NO_PATTERN, format_text
from medagent.agent.patient_mentions import names_someone_else, patient_search_names
from medagent.fhir.errors import FhirClientError
from medagent.tools.context import ToolContext
from medagent.tools.registry import ToolError
from medagent.tools.rows import mrn_of, person_name
from medagent.tools.search_args import require_patient

__all__ = [
    "NOTHING_READ",
    "PATIENT_SEARCH",
    "failed_before_reading",
    "final_answer_problem",
    "patient_in_context_refusal",
    "search_closed",
]

PATIENT_SEARCH = "find_patients"  # the tool that searches for a patient (medagent.tools.read_patients)

PLACEHOLDER = re.compile(r"<[^<>\n]{1,80}>|\bYYYY\b|\bMM-DD\b|\bType/id\b|\[the [^\]\n]{3,80}\]")
ECHO_SHINGLE = 3  # words in a run shared with the format text
ECHO_SHARE = 0.6  # of the answer's words inside such runs
_WORD = re.compile(r"[a-z0-9]+(?:[.'/-][a-z0-9]+)*")
_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof"}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _json_values(answer: str) -> list[str] | None:
    """The string values of an answer that is a JSON object or array (nested ones included), else None."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(parsed, dict | list):
        return None
    values: list[str] = []
    pending: list[Any] = [parsed]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, str):
            values.append(node)
    return values


def echoes_format(answer: str, question: str) -> bool:
    """Whether the answer restates the question's format instructions instead of answering: most of its words
    sit in runs of three or more words of the format text, and none of the rest is a number. A "none" or
    yes/no answer is never an echo ("No patient matches both the name and the birth date" answers). A JSON answer
    is judged value by value: its keys and chosen options are the format's own words."""
    values = _json_values(answer)
    if values is not None:
        return any(echoes_format(value, question) for value in values)
    fmt = _words(format_text(question))
    words = _words(answer)
    if len(words) < 4 or not fmt or words[0] in {"yes", "no", "none", "not"} or "not found" in answer.lower():
        return False
    runs = {tuple(fmt[i : i + ECHO_SHINGLE]) for i in range(len(fmt) - ECHO_SHINGLE + 1)}
    covered: set[int] = set()
    for i in range(len(words) - ECHO_SHINGLE + 1):
        if tuple(words[i : i + ECHO_SHINGLE]) in runs:
            covered.update(range(i, i + ECHO_SHINGLE))
    rest = [w for i, w in enumerate(words) if i not in covered]
    return len(covered) >= ECHO_SHARE * len(words) and not any(ch.isdigit() for w in rest for ch in w)


def final_answer_problem(answer: str, question: str, pattern: str | None) -> str | None:
    """What is wrong with a final answer (the text of the re-ask), or None."""
    placeholder = PLACEHOLDER.search(answer)
    if placeholder:
        return (
            f"the answer holds the placeholder {placeholder.group()!r} instead of a value; write the value "
            "itself, read from the record"
        )
    if echoes_format(answer, question):
        return (
            "the answer repeats the question's answer-format instructions instead of answering; write the "
            "value itself, read from the record"
        )
    if pattern == YES_NO_PATTERN and not re.fullmatch(pattern, answer.strip()):
        return "the question asks yes or no: start the answer with Yes or No"
    return None


NOTHING_READ = (
    "the last tool call failed and nothing has been read from the record yet; call a tool again with its arguments "
    "fixed as the error says (or another tool) and answer from what it returns"
)


def failed_before_reading(trace: list[dict[str, Any]], writes: Iterable[str] = ()) -> bool:
    """Whether the run's last step is a failed read (a tool not in ``writes``: a refused or rejected write is an
    answer in itself) and no tool call has succeeded before it (a final answer now would rest on nothing read). A
    re-asked reply in between ends it: the model is asked to read first once."""
    last = trace[-1] if trace else {}
    if not last.get("tool") or not last.get("error") or last["tool"] in set(writes):
        return False
    return not any(step.get("tool") and not step.get("error") for step in trace)


def _name_words(text: str) -> set[str]:
    return {w for w in _words(text.replace(",", " ")) if w not in _TITLES}


NAME_LOOKUP_ROWS = 100  # patients read per name word; more matches than this count as "someone else"


async def _other_patient_named(ctx: ToolContext, word: str) -> bool:
    """Whether a patient other than the one in context has ``word`` as a name part on the server (True when
    the server cannot tell: an error, or more prefix matches than one page holds)."""
    try:
        bundle = await ctx.client.search_page("Patient", {"name": word, "_count": str(NAME_LOOKUP_ROWS)})
    except (FhirClientError, OSError, ValueError):
        return True
    found = [e.get("resource") or {} for e in bundle.get("entry") or []]
    if patient_search_names(found, word, ctx.patient):
        return True
    return int(bundle.get("total", len(found))) > len(found)


async def search_closed(ctx: ToolContext, question: str) -> bool:
    """Whether ``find_patients`` is closed for this run: a patient is in context and the question names no one
    else (its name words, birth date and identifiers are the patient's, or name nobody on the server)."""
    if not ctx.patient:
        return False
    try:
        patient = await require_patient(ctx, ctx.patient)
    except (ToolError, FhirClientError, OSError):
        return False
    return await names_someone_else(question, patient, lambda word: _other_patient_named(ctx, word)) is None


async def patient_in_context_refusal(ctx: ToolContext, arguments: dict[str, Any], closed: bool = False) -> str | None:
    """Why a ``find_patients`` call is not run, or None. ``closed`` (:func:`search_closed`): the question names
    no one but the patient in context, so no search is run, whatever its arguments; otherwise one whose every
    identifying argument matches the patient in context is not run, and one naming someone else is."""
    if not ctx.patient:
        return None
    if closed:
        return _in_context(ctx, await require_patient(ctx, ctx.patient), "the question names no one else")
    given = {k: str(arguments[k]).strip() for k in ("name", "identifier", "birth_date") if arguments.get(k)}
    patient = await require_patient(ctx, ctx.patient)
    name = person_name(patient)
    identifiers = {str(i.get("value", "")).strip().lower() for i in patient.get("identifier", [])}
    born = str(patient.get("birthDate") or "")[:10]
    if "name" in given and not _name_words(given["name"]) <= _name_words(
        " ".join(
            [name, *(part for n in patient.get("name", []) for part in [*n.get("given", []), n.get("family", "")])]
        )
    ):
        return None
    if "identifier" in given and given["identifier"].lower() not in identifiers:
        return None
    if "birth_date" in given and given["birth_date"][:10] != born:
        return None
    return _in_context(ctx, patient, "this search would find only them")


def _in_context(ctx: ToolContext, patient: dict[str, Any], why: str) -> str:
    born = str(patient.get("birthDate") or "")[:10]
    mrn = mrn_of(patient)
    who = f"{person_name(patient)} (born {born}{f', MRN {mrn}' if mrn else ''})"
    return (
        f"{who} is the patient already in context, Patient/{ctx.patient}: {why}, so find_patients is not run. "
        "Read their record with the other tools (get_patient for demographics) instead of searching for them."
    )
