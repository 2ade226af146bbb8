"""The rephrased training scenarios (scenarios/user_phrasings.py): deterministic, dev only, the source's ground truth
kept, yes/no exactly where the agent recognises a yes/no question, varied wording, and solved 100% by the grading
oracle through the real tools and graders (free answers included)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from medagent.agent.answer_format import yes_no_question
from medagent.bench.results import ResultsLog
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir
from medagent.bench.solvers.catalog import make_code_solver
from medagent.scenarios.build import load_charts
from medagent.scenarios.chart import Chart
from medagent.scenarios.models import Scenario
from medagent.scenarios.scenario_files import read_manifest, read_scenarios, round_robin
from medagent.scenarios.user_phrasings import rephrase, rephrase_scenarios, write_rephrased_set

SEED = 2026


@pytest.fixture(scope="module")
def charts() -> list[Chart]:
    return load_charts()


@pytest.fixture(scope="module")
def dev() -> list[Scenario]:
    return [s for s in read_scenarios(default_scenarios_dir()) if s.split == "dev"]


@pytest.fixture(scope="module")
def rephrased(dev: list[Scenario], charts: list[Chart]) -> list[Scenario]:
    return rephrase_scenarios(dev, charts, SEED, 2)


def test_the_same_seed_gives_the_same_questions(dev: list[Scenario], charts: list[Chart],
                                                rephrased: list[Scenario]) -> None:
    sample = dev[::50]
    again = rephrase_scenarios(sample, charts, SEED, 2)
    assert again == [r for r in rephrased if r.meta["rephrased_from"] in {s.id for s in sample}]
    other = rephrase_scenarios(sample, charts, SEED + 1, 2)
    assert sum(a.question != b.question for a, b in zip(again, other, strict=True)) > 0.8 * len(again)


def test_only_dev_scenarios_are_rephrased(charts: list[Chart]) -> None:
    test = next(s for s in read_scenarios(default_scenarios_dir()) if s.split == "test")
    chart = next(c for c in charts if c.patient_id == test.patient)
    with pytest.raises(ValueError, match="only dev-split"):
        rephrase(test, chart, SEED, 1)


def test_every_template_question_and_patient_task_is_rephrased(dev: list[Scenario], rephrased: list[Scenario]) -> None:
    made = Counter(r.meta["rephrased_from"] for r in rephrased)
    core_ehrqa = [s for s in dev if s.suite == "ehrqa" and s.tier == "core"]
    assert all(made[s.id] == 2 for s in core_ehrqa)  # every form's template is read back
    core_agentic = [s for s in dev if s.suite == "agentic" and s.tier == "core"]
    assert sum(made[s.id] == 2 for s in core_agentic) >= 0.95 * len(core_agentic)
    hard = [s for s in dev if s.tier == "hard"]
    skipped = {s.category for s in hard if not made[s.id]}
    assert skipped == {"cohort_measure", "disambiguation"}  # no patient in context to name


def test_the_ground_truth_is_the_source_scenario(dev: list[Scenario], rephrased: list[Scenario]) -> None:
    by_id = {s.id: s for s in dev}
    for made in rephrased:
        source = by_id[made.meta["rephrased_from"]]
        assert made.id == f"{source.id}-u{made.meta['user_variant']}"
        assert (made.patient, made.now, made.split, made.provenance, made.expected_writes, made.setup) == \
            (source.patient, source.now, "dev", source.provenance, source.expected_writes, source.setup)
        want = source.answer
        if made.answer.type != want.type:  # only "which medications for C", asked without the JSON format
            assert want.type == "record" and made.meta["answer_kind"] == "list"
            want = want.fields["medications"]
        assert made.answer.free is ("answer_kind" in made.meta)  # no format stated: read from a free sentence
        assert made.answer.model_copy(update={"free": False, "tolerance": want.tolerance}) == want
        assert made.answer.tolerance.abs >= want.tolerance.abs  # at least the display precision of the tools


def test_yes_no_exactly_where_the_agent_sees_a_yes_no_question(rephrased: list[Scenario]) -> None:
    wrong = [r.question for r in rephrased if yes_no_question(r.question) != (r.answer.type == "boolean")]
    assert not wrong, wrong[:5]
    free = [r for r in rephrased if "answer_kind" in r.meta]
    assert all((r.meta["answer_kind"] == "yes_no") == (r.answer.type == "boolean") for r in free)


def test_the_wording_varies_as_users_write(rephrased: list[Scenario], charts: list[Chart]) -> None:
    ehrqa = [r for r in rephrased if r.suite == "ehrqa" and r.tier == "core"]
    texts = [r.question for r in ehrqa]
    assert not [t for t in texts if "Patient/" in t]  # the patient is in context, named as people name them
    without_format = [r for r in ehrqa if "answer_kind" in r.meta]
    assert 0.5 < len(without_format) / len(ehrqa) < 0.8
    words = " ".join(texts)
    for written in ("A1c", "HbA1c", " she ", " her ", "Mrs. ", "Mr. ", "the patient", "flu shot", "BMI", "eGFR",
                    "Quick question", "latest "):
        assert written in words, written
    assert len(set(texts)) >= 0.995 * len(texts)  # two variants of one question may come out the same
    by_form: dict[str, set[str]] = {}
    for r in ehrqa:  # distinct openings of the question per form
        by_form.setdefault(r.meta["form"], set()).add(" ".join(re.sub(r"^.*?(?:[:.-] )?", "", r.question).split()[:2]))
    assert all(len(openings) >= 4 for openings in by_form.values()), by_form
    lowercase = sum(t == t.lower() for t in texts)
    assert 0.05 * len(texts) < lowercase < 0.2 * len(texts)


def test_a_rephrased_set_is_a_scenario_set(tmp_path: Path, charts: list[Chart]) -> None:
    manifest = write_rephrased_set(default_scenarios_dir(), tmp_path, seed=SEED, variants=1, charts=charts)
    assert manifest.test_patients == read_manifest(default_scenarios_dir()).test_patients
    assert set(manifest.counts) == {"ehrqa", "agentic", "hard/ehrqa", "hard/agentic"}
    assert all(entry.split == "dev" for entry in manifest.files.values())
    again = write_rephrased_set(default_scenarios_dir(), tmp_path / "again", seed=SEED, variants=1, charts=charts)
    assert again.content_hash == manifest.content_hash


async def test_the_grading_oracle_solves_the_rephrased_questions(rephrased: list[Scenario], bench_home: Path,
                                                                 tmp_path: Path) -> None:
    """The oracle writes each free answer's sentence; the graders read it: 100%, every category."""
    sample = round_robin(rephrased, 120)
    await run_benchmark(sample, make_code_solver("oracle"), out_dir=tmp_path, home=bench_home, show_progress=False)
    records = ResultsLog(tmp_path / "results.jsonl").load()
    failed = [(r.scenario_id, r.outcome.answer) for r in records if not r.passed]
    assert len(records) == len(sample) and not failed, failed[:5]
    sentences = [r.outcome.answer for r in records if r.scenario_id in {s.id for s in sample if "answer_kind" in s.meta}]
    assert sentences and all(a and (a.endswith(".") or a.startswith("The MRN is ")) for a in sentences), sentences
