"""The quickstart's questions: a few template questions of the test split and one test question asked as a user
would ask it (reworded by :mod:`medagent.scenarios.user_phrasings`, no answer-format line: a free answer), as a
small scenario set that ``medagent bench run`` scores like any other."""

from __future__ import annotations

from pathlib import Path

from medagent.bench.scenario_sets import default_scenarios_dir
from medagent.scenarios.build import load_charts
from medagent.scenarios.models import Scenario
from medagent.scenarios.scenario_files import open_set, read_manifest, write_set
from medagent.scenarios.user_phrasings import rephrase

SEED = 2026


def user_question(template: Scenario) -> Scenario:
    """The template question reworded with no answer format (the first variant that states none); it keeps its
    category (the oracle and the graders find it by that), ``meta["rephrased_from"]`` marks it."""
    chart = next(c for c in load_charts() if c.patient_id == template.patient)
    for variant in range(1, 50):
        made = rephrase(template, chart, SEED, variant, test_split=True)
        if made is not None and "answer_kind" in made.meta:
            return made
    raise ValueError(f"{template.id}: no rewording without an answer format in 49 variants")


def quickstart_set(out: Path, limit: int) -> Path:
    """Write the quickstart's set: ``limit`` template questions (round-robin over the EHRQA categories of the test
    split) and, after them, the first one asked as a user would ask it."""
    source = default_scenarios_dir()
    templates = open_set(source).load("ehrqa", "test", "core", limit)
    write_set(
        out,
        {"ehrqa/test.jsonl": [*templates, user_question(templates[0])]},
        name="quickstart",
        generator_version="quickstart",
        seed=SEED,
        patients=len({s.patient for s in templates}),
        test_patients=read_manifest(source).test_patients,
    )
    return out
