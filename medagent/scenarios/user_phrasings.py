"""Questions as users ask them: a deterministic generator of rephrased dev scenarios for training.

A rephrased scenario is a dev scenario of a frozen set asked another way: the patient named as people do
("Mrs. Kutch", "she", "the patient", a first name), labs and vaccines by their abbreviations (A1c, K, BP,
eGFR, flu shot), other word orders, short ("latest a1c?") and long questions, with or without the answer
format line, now and then a typo. The ground truth is the source scenario's (same patient, clock, facts,
expected writes); where the question states no format the answer expected is a free answer
(:mod:`medagent.scenarios.free_answers`): ``meta["answer_kind"]`` says which sentence, and the source's
answer is kept (a JSON record's ``medications`` part where the question asks only for the drugs; a number
asked with no rounding is right to the precision the tools display it with).

Only for training: the generator's wording lists are ours, so a model trained on them is scored on
questions written elsewhere. Test-split scenarios are refused.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from medagent.scenarios.category import category_of
from medagent.scenarios.chart import Chart
from medagent.scenarios.free_answers import AnswerKind
from medagent.scenarios.identity import rng_for
from medagent.scenarios.models import Manifest, Scenario
from medagent.scenarios.scenario_files import read_manifest, read_scenarios, write_set
from medagent.scenarios.user_words import Referent, lab_alias, referent, typo, vaccine_alias

__all__ = ["FORMS", "rephrase", "rephrase_scenarios", "write_rephrased_set"]

TYPO_RATE = 0.12
LOWERCASE_RATE = 0.12
KEEP_FORMAT_RATE = 0.35  # the rest state no format: the answer expected is a free answer
STATE_NOW_RATE = 0.2  # "It is now ..." before the question (the agent's prompt states the clock anyway)

# ---------- EHRQA: one list of question shapes per form ----------
# Slots: {S} the patient as subject, {P} possessive, {O} object; the form's words ({c}, {g}, {m}, {v}, {lab},
# {day}). A yes/no shape starts with an auxiliary verb (or "Any"), the way agent.answer_format recognises
# a yes/no question; no other shape does.


@dataclass(frozen=True)
class Form:
    kind: AnswerKind
    shapes: tuple[str, ...]


FORMS: dict[str, Form] = {
    "condition": Form(
        "yes_no",
        (
            "Has {S} ever been diagnosed with {c}?",
            "Does {S} have a history of {c}?",
            "Any history of {c} for {O}?",
            "Was {S} ever diagnosed with {c}?",
            "Did {S} ever have {c}?",
            "Has {c} ever been documented for {O}?",
            "Is there a diagnosis of {c} in {P} chart?",
            "Is {c} on {P} problem list at any time?",
            "Has {S} had {c}?",
            "Does {P} record show {c} at any time?",
            "Any {c} in {P} history?",
            "Is {c} one of {P} diagnoses?",
        ),
    ),
    "group": Form(
        "yes_no",
        (
            "Has {S} ever had any form of {g}?",
            "Does {S} have any kind of {g} on record, subtypes included?",
            "Any type of {g} in {P} history?",
            "Has {S} been diagnosed with {g} of any kind?",
            "Is any form of {g} documented for {O}?",
            "Did {S} ever have some type of {g}?",
            "Does {P} problem list include any {g}, counting the more specific diagnoses?",
        ),
    ),
    "treated": Form(
        "yes_no",
        (
            "Has {S} ever been prescribed anything for {c}?",
            "Was {P} {c} ever treated with a medication?",
            "Is there any medication ordered for {P} {c}?",
            "Did {S} get any prescription for {c}?",
            "Any meds ordered for {c} for {O}?",
            "Has a drug ever been ordered for {P} {c}?",
            "Does any of {P} prescriptions list {c} as the reason?",
        ),
    ),
    "vaccine_last": Form(
        "date",
        (
            "When did {S} last get the {v}?",
            "When was {P} most recent {v}?",
            "Date of {P} last {v}?",
            "last {v} for {O}?",
            "When was the {v} last given to {O}?",
            "What's the date of {P} latest {v}?",
            "Most recent {v} date for {O}?",
            "When did {S} have {P} last {v}?",
        ),
    ),
    "vaccine_first": Form(
        "date",
        (
            "When did {S} first get the {v}?",
            "Date of {P} first {v}?",
            "When was {P} earliest {v} given?",
            "When did {S} receive {P} very first {v}?",
            "first {v} date for {O}?",
            "What was the date of the first {v} {S} got?",
        ),
    ),
    "med_current": Form(
        "yes_no",
        (
            "Is {S} currently taking {m}?",
            "Is {S} still on {m}?",
            "Does {S} have an active prescription for {m}?",
            "Is {m} on {P} current med list?",
            "Is {m} still active for {O}?",
            "Is there an active order for {m} for {O}?",
            "Is {S} on {m} right now?",
            "Is {m} an active medication for {O}?",
        ),
    ),
    "med_current_list": Form(
        "list",
        (
            "What medications is {S} currently taking?",
            "List {P} active medications.",
            "What is {S} on right now?",
            "Current meds for {O}?",
            "Which drugs are active for {O}?",
            "Give me {P} current medication list.",
            "What are {P} active prescriptions?",
            "active meds for {O}?",
            "Which medications does {S} take now?",
        ),
    ),
    "med_ever": Form(
        "yes_no",
        (
            "Has {S} ever been prescribed {m}?",
            "Was {m} ever ordered for {O}?",
            "Has {S} ever been on {m}?",
            "Did {S} ever get a prescription for {m}?",
            "Any {m} prescriptions for {O}, ever?",
            "Has {m} ever been prescribed to {O}?",
            "Is there any order for {m} in {P} history?",
            "Was {S} ever given {m}?",
        ),
    ),
    "prescriber": Form(
        "person",
        (
            "Who prescribed {P} most recent {m}?",
            "Who ordered {m} for {O} last time?",
            "Which doctor wrote {P} latest {m} prescription?",
            "Who is the prescriber of {P} last {m} order?",
            "Who prescribed {m} for {O} most recently?",
            "Prescriber of the latest {m} for {O}?",
        ),
    ),
    "med_date_last": Form(
        "date",
        (
            "When was {m} last prescribed to {O}?",
            "When was {P} most recent {m} prescription written?",
            "Date of the last {m} order for {O}?",
            "When did {S} last get a prescription for {m}?",
            "Last time {m} was ordered for {O}?",
            "What date was {m} most recently ordered for {O}?",
        ),
    ),
    "med_date_first": Form(
        "date",
        (
            "When was {m} first prescribed to {O}?",
            "When did {S} start {m}?",
            "Date of {P} first {m} prescription?",
            "When was {m} first ordered for {O}?",
            "When did {S} get {P} first prescription for {m}?",
            "What date was {m} first ordered for {O}?",
        ),
    ),
    "meds_for_condition": Form(
        "list",
        (
            "Which medications were prescribed for {P} {c}?",
            "What drugs has {S} been prescribed for {c}?",
            "List the meds ordered for {P} {c}.",
            "What was {S} given for {c}?",
            "Which prescriptions name {c} as their reason for {O}?",
            "What has {S} been prescribed for {c}?",
            "meds for {c} for {O}?",
        ),
    ),
    "obs_last": Form(
        "value",
        (
            "What was {P} most recent {lab}?",
            "latest {lab}?",
            "What's {P} last {lab}?",
            "{lab} latest value for {O}?",
            "Most recent {lab} for {O}?",
            "What is {P} latest {lab}?",
            "Give me {P} newest {lab} result.",
            "last {lab} for {O}",
            "What did {P} last {lab} show?",
        ),
    ),
    "obs_on_day": Form(
        "value",
        (
            "What was {P} {lab} on {day}?",
            "{lab} on {day}?",
            "What {lab} did {S} have on {day}?",
            "What was the {lab} result from {day} for {O}?",
            "Give me {P} {lab} from {day}.",
            "On {day}, what was {P} {lab}?",
        ),
    ),
    "obs_at_condition": Form(
        "value",
        (
            "What was {P} {lab} when {S} was first diagnosed with {c}?",
            "What was {P} {lab} at the time of {P} first {c} diagnosis?",
            "{lab} at the first {c} diagnosis for {O}?",
            "At the first diagnosis of {c}, what was {P} latest {lab}?",
            "What was the last {lab} on or before {P} first {c} diagnosis?",
        ),
    ),
    "obs_at_medication": Form(
        "value",
        (
            "What was {P} {lab} when {m} was first prescribed?",
            "What was {P} {lab} when {S} started {m}?",
            "{lab} at the start of {m} for {O}?",
            "What was the last {lab} on or before {P} first {m} prescription?",
            "When {m} was first ordered for {O}, what was the {lab}?",
        ),
    ),
}

_LEADS = ("", "", "", "", "Quick question: ", "Can you check: ", "I need this: ", "Please look up: ", "Hi, ")
_TAILS = ("", "", "", "", " Thanks.", " Please check the chart.", " Thank you!")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

EHRQA_HEADER = re.compile(
    r"^It is now (?P<now>\S+)\. The patient is (?P<name>.+?) \(Patient/[^)]+\)\.\n"
    r"Question: (?P<question>.+)\nAnswer format: (?P<format>.+)$",
    re.S,
)


def template_words(template: str, question: str) -> dict[str, str] | None:
    """The words a template was filled with, read back from the question it made (None: another template)."""
    pattern, seen = "", set()
    for literal, slot in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        pattern += re.escape(literal)
        if slot:
            pattern += f"(?P={slot})" if slot in seen else f"(?P<{slot}>.+?)"
            seen.add(slot)
    match = re.fullmatch(pattern, question, re.S)
    return match.groupdict() if match else None


def _day_text(rng: random.Random, day: str) -> str:
    year, month, date_ = (int(x) for x in day.split("-"))
    style = rng.choice(("iso", "iso", "iso", "mdy", "dmy"))
    if style == "mdy":
        return f"{_MONTHS[month - 1]} {date_}, {year}"
    if style == "dmy":
        return f"{date_} {_MONTHS[month - 1]} {year}"
    return day


def _fill(shape: str, who: Referent, words: dict[str, str]) -> str:
    text = shape.format(S=who.subject, P=who.possessive, O=who.object, **words)
    return who.intro + text[:1].upper() + text[1:] if who.intro else text[:1].upper() + text[1:]


def _finish(rng: random.Random, question: str, fmt: str | None, protected: list[str]) -> str:
    """Lead-in and tail, a typo now and then, lowercase now and then, and the format line where kept."""
    text = rng.choice(_LEADS) + question if not question[:1].islower() else question
    text += rng.choice(_TAILS) if fmt is None else ""
    if rng.random() < TYPO_RATE:
        text = typo(rng, text, protected)
    if rng.random() < LOWERCASE_RATE:
        text = text.lower()
    elif fmt is None and rng.random() < 0.1 and text.endswith("?"):
        text = text[:-1]
    if fmt is not None:
        text += f"\nAnswer format: {fmt}" if rng.random() < 0.7 else f" {fmt}"
    return text


def _ehrqa(scenario: Scenario, chart: Chart, rng: random.Random) -> tuple[str, AnswerKind | None, bool] | None:
    """(question, answer kind or None where a format is stated, answer narrowed to the medications)."""
    parts = EHRQA_HEADER.match(scenario.question)
    form_name = str(scenario.meta.get("form"))
    if parts is None or form_name not in FORMS:
        return None
    phrasings = category_of(scenario).phrasings.get(form_name)
    if phrasings is None:
        return None
    template = phrasings[int(scenario.meta["phrasing"])]
    words = template_words(template, parts["question"])
    if words is None:
        return None
    form = FORMS[form_name]
    if "label" in words:
        words["lab"] = lab_alias(rng, words.pop("code"), words.pop("label"))
    if "v" in words:
        words["v"] = vaccine_alias(rng, words.pop("code"), words["v"])
    if "day" in words:
        words["day"] = _day_text(rng, words["day"])
    if rng.random() < 0.3:  # names as people type them
        words = {k: (v.lower() if k in ("c", "g", "m") else v) for k, v in words.items()}
    who = referent(rng, chart.given, chart.family, chart.gender)
    question = _fill(rng.choice(form.shapes), who, words)
    keep_format = rng.random() < KEEP_FORMAT_RATE
    if rng.random() < STATE_NOW_RATE:
        question = f"It is now {parts['now']}. {question}"
    protected = [chart.given, chart.family, *words.values()]
    text = _finish(rng, question, parts["format"] if keep_format else None, protected)
    narrowed = form_name == "meds_for_condition" and not keep_format
    return text, None if keep_format else form.kind, narrowed


# ---------- agentic tasks and the hard tier: the request reworded, the context and rules kept ----------

AGENTIC_SHAPES: dict[str, tuple[AnswerKind, tuple[str, ...]]] = {
    "age": (
        "age",
        (
            "How old is {S}?",
            "What is {P} age?",
            "Age of {O}?",
            "How old is {S} today?",
            "{P} age in years?",
            "What age is {S} now?",
        ),
    ),
    "find_mrn": (
        "mrn",
        (
            "What is the MRN of {name}, born {born}?",
            "MRN for {name} (DOB {born})?",
            "Find the medical record number for {name}, date of birth {born}.",
            "Look up {name} born {born} and give me the MRN.",
            "I need the MRN of {name}, DOB {born}.",
            "{name}, DOB {born}: what's the MRN?",
        ),
    ),
    "record_bp": (
        "done",
        (
            "BP {sys}/{dia} for {O}, please record it.",
            "Please chart a BP of {sys}/{dia} mmHg for {O}.",
            "{P} blood pressure just now was {sys}/{dia}; record it.",
            "Record BP {sys}/{dia} mmHg for {O}.",
            "Enter {sys}/{dia} as {P} blood pressure.",
            "bp {sys}/{dia} - please document for {O}.",
        ),
    ),
    "recent_lab": (
        "value",
        (
            "What was {P} {lab} in the last 24 hours?",
            "Any {lab} for {O} in the past 24 h? What was the latest?",
            "Latest {lab} from the last 24 hours for {O}?",
            "{lab} in the last 24 hours for {O}?",
            "What {lab} did {S} have in the past 24 hours?",
        ),
    ),
    "latest_glucose": (
        "value",
        (
            "What's {P} latest glucose?",
            "Most recent blood sugar for {O}?",
            "Last glucose for {O}?",
            "What was {P} last blood glucose reading?",
            "latest BG for {O}?",
        ),
    ),
    "average_glucose": (
        "value",
        (
            "What is {P} average blood glucose over the last 2 years?",
            "Mean glucose for {O} over the past 730 days?",
            "Average blood sugar for {O}, last 2 years?",
            "What was {P} mean glucose over the last 730 days?",
        ),
    ),
    "referral": (
        "done",
        (
            'Refer {O} to {service}; put this in the referral note: "{note}"',
            'Please send a {service} referral for {O} with the note "{note}"',
            '{service} referral for {O}, note: "{note}"',
            'Can you place a referral to {service} for {O}? Free text: "{note}"',
        ),
    ),
}
# Tasks whose request states a rule or asks for an answer the user would not guess: reworded only in who they
# name and where the context goes; their answer format is always kept.
RULE_TASKS = {
    "magnesium_replacement",
    "potassium_replacement",
    "hba1c_reorder",
    "medication_reconciliation",
    "influenza_vaccine_due",
    "lab_trend",
    "discontinue_medication",
}
MRN_PHRASE = re.compile(r"the patient with MRN [0-9a-f-]{36}", re.I)
AGENTIC_PARTS = re.compile(
    r"^(?P<request>.+?)\n\nContext: (?P<context>.+?)(?:\n\nAnswer format: (?P<format>.+))?$", re.S
)


def _agentic(scenario: Scenario, chart: Chart, rng: random.Random) -> tuple[str, AnswerKind | None, bool] | None:
    parts = AGENTIC_PARTS.match(scenario.question)
    if parts is None:
        return None
    who = referent(rng, chart.given, chart.family, chart.gender, pronouns=False)
    meta = scenario.meta
    request, fmt, kind = parts["request"], parts["format"], None
    shapes = AGENTIC_SHAPES.get(scenario.category) if scenario.tier == "core" else None
    if shapes is not None and scenario.category not in RULE_TASKS:
        kind, options = shapes
        words = {
            "name": meta.get("name", ""),
            "born": meta.get("born", ""),
            "sys": meta.get("systolic", ""),
            "dia": meta.get("diastolic", ""),
            "service": str(meta.get("service", "")).lower(),
            "note": meta.get("note", ""),
        }
        if "loinc" in meta:
            words["lab"] = lab_alias(rng, str(meta["loinc"]), "result")
        request = _fill(rng.choice(options), who, words)
    elif MRN_PHRASE.search(request) and scenario.patient_context:
        request = MRN_PHRASE.sub(who.object, request, count=1)
        request = request[:1].upper() + request[1:]
    else:
        return None  # nothing of ours to reword (a task that names no patient in context)
    keep_format = kind is None or fmt is None or rng.random() < KEEP_FORMAT_RATE
    context = parts["context"]
    protected = [chart.given, chart.family, *(str(v) for v in meta.values() if isinstance(v, str))]
    if shapes is not None and scenario.category not in RULE_TASKS and rng.random() < TYPO_RATE:
        request = typo(rng, request, protected)  # not in a request that states a rule: its words are the rule
    if rng.random() < 0.3:
        text = f"Context: {context}\n\n{request}"
    else:
        text = f"{request}\n\nContext: {context}"
    if keep_format and fmt is not None:
        text += f"\n\nAnswer format: {fmt}"
    return text, None if keep_format else kind, False


def _hard_ehrqa(scenario: Scenario, chart: Chart, rng: random.Random) -> tuple[str, AnswerKind | None, bool] | None:
    parts = EHRQA_HEADER.match(scenario.question)
    if parts is None:
        return None
    who = referent(rng, chart.given, chart.family, chart.gender)
    question = parts["question"]
    if "the patient's " in question:
        question = question.replace("the patient's ", who.possessive + " ", 1)
    elif "the patient " in question:
        question = question.replace("the patient ", who.subject + " ", 1)
    question = who.intro + question[:1].upper() + question[1:]
    if rng.random() < STATE_NOW_RATE:
        question = f"It is now {parts['now']}. {question}"
    return _finish(rng, question, parts["format"], [chart.given, chart.family]), None, False


# ---------- scenarios ----------

Rephraser = Callable[[Scenario, Chart, random.Random], "tuple[str, AnswerKind | None, bool] | None"]


def _rephraser(scenario: Scenario) -> Rephraser | None:
    if scenario.tier == "hard":
        return _hard_ehrqa if scenario.suite == "ehrqa" else _agentic
    return _ehrqa if scenario.suite == "ehrqa" else _agentic


def rephrase(scenario: Scenario, chart: Chart, seed: int, variant: int, *, test_split: bool = False) -> Scenario | None:
    """One rephrased copy of a dev scenario (id ``<id>-u<variant>``), or None where there is nothing to reword
    (a question about the whole population, a task that names no patient in context). ``test_split``: also a
    test scenario (the quickstart shows one; training data never holds one)."""
    if scenario.split != "dev" and not test_split:
        raise ValueError(f"{scenario.id}: only dev-split scenarios are rephrased (split {scenario.split})")
    if chart.patient_id != scenario.patient:
        raise ValueError(f"{scenario.id}: the chart of {chart.patient_id} is not its patient's ({scenario.patient})")
    rephraser = _rephraser(scenario)
    made = rephraser(scenario, chart, rng_for(seed, "user-phrasing", scenario.id, variant)) if rephraser else None
    if made is None:
        return None
    text, kind, narrowed = made
    answer = scenario.answer
    if narrowed and answer.type == "record":
        answer = answer.fields["medications"]
    if kind is not None:  # no format stated: a free answer, read by typed extraction
        answer = answer.model_copy(update={"free": True})
    if kind == "value" and answer.type == "number" and answer.value is not None:
        # no rounding asked: a value as the tools display it (2 decimals, 3 below 1) answers it
        shown = 0.001 if abs(float(answer.value)) < 1 else 0.01  # type: ignore[arg-type]
        answer = answer.model_copy(
            update={"tolerance": answer.tolerance.model_copy(update={"abs": max(answer.tolerance.abs, shown)})}
        )
    meta = {**scenario.meta, "rephrased_from": scenario.id, "user_variant": variant}
    if kind is not None:
        meta["answer_kind"] = kind
    return scenario.model_copy(
        update={"id": f"{scenario.id}-u{variant}", "question": text, "answer": answer, "meta": meta}
    )


def rephrase_scenarios(
    scenarios: Iterable[Scenario], charts: Iterable[Chart], seed: int, variants: int
) -> list[Scenario]:
    """``variants`` rephrased copies of every dev scenario that has something to reword, in input order."""
    by_patient = {chart.patient_id: chart for chart in charts}
    out = []
    for scenario in scenarios:
        for variant in range(1, variants + 1):
            made = rephrase(scenario, by_patient[scenario.patient], seed, variant)
            if made is not None:
                out.append(made)
    return out


def write_rephrased_set(
    source: Path, out: Path, *, seed: int, variants: int, charts: Iterable[Chart] | None = None
) -> Manifest:
    """Write the rephrased dev scenarios of the frozen set ``source`` as a scenario set (one file per suite and
    tier, a manifest whose ``test_patients`` are the source's, so training still refuses them)."""
    from medagent.scenarios.build import load_charts

    manifest = read_manifest(source)
    chart_list = list(charts) if charts is not None else load_charts()
    files: dict[str, list[Scenario]] = {}
    for name, entry in sorted(manifest.files.items()):
        if entry.split != "dev":
            continue
        made = rephrase_scenarios(read_scenarios(source / name), chart_list, seed, variants)
        if made:
            files[name] = made
    return write_set(
        out,
        files,
        name=f"{manifest.name or source.name}-user-phrasings",
        generator_version=f"user-phrasings/{seed}/{variants}",
        seed=seed,
        patients=manifest.patients,
        test_patients=manifest.test_patients,
    )
