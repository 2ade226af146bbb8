"""Training examples from a real oracle run on the dev split: they are the turns the real agent sends at each
step (replayed through the agent on the real embedded FHIR server), and nothing of the test split is in them
or in the shipped adapter's recorded data."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from medagent.bench.results import ResultsLog
from medagent.bench.run_folder import record_set
from medagent.bench.runner import run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios, open_set, set_dir, set_hash, set_names
from medagent.bench.solvers.agent import AgentSolver
from medagent.bench.solvers.catalog import make_code_solver
from medagent.config import UserError
from medagent.data import iter_bundles
from medagent.models.adapter import ADAPTER_FILE, shipped_adapter
from medagent.models.scripted import ScriptedPolicy
from medagent.scenarios.chart import chart_from_bundle
from medagent.scenarios.models import Scenario
from medagent.scenarios.scenario_files import read_scenarios, write_set
from medagent.scenarios.user_phrasings import write_rephrased_set
from medagent.tools.registry import default_registry
from medagent.train.examples import Example, action_text, build_examples


@pytest.fixture(scope="module")
def dev_sample() -> list[Scenario]:
    return [*load_scenarios(default_scenarios_dir(), "ehrqa", "dev", limit=10, tier="core"),
            *load_scenarios(default_scenarios_dir(), "agentic", "dev", limit=6, tier="core")]


@pytest.fixture(scope="module")
async def oracle_run(dev_sample: list[Scenario], bench_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """oracle-by-name, the policy the packaged adapter learns from, on a dev sample."""
    out = tmp_path_factory.mktemp("oracle-dev")
    await run_benchmark(dev_sample, make_code_solver("oracle-by-name"), out_dir=out, home=bench_home, show_progress=False)
    return out


@pytest.fixture(scope="module")
async def rephrased_run(bench_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """oracle-by-name (the training policy) on rephrased dev questions of every suite and tier."""
    folder = tmp_path_factory.mktemp("rephrased-set")
    manifest = write_rephrased_set(default_scenarios_dir(), folder, seed=2026, variants=1)
    out = tmp_path_factory.mktemp("oracle-by-name-rephrased")
    record_set(out, str(manifest.name), manifest.content_hash, folder)
    await run_benchmark(load_scenarios(folder, "all", "dev", limit=40, tier="all"), make_code_solver("oracle-by-name"),
                        out_dir=out, home=bench_home, show_progress=False)
    return out


@pytest.fixture(scope="module")
async def cohort_run(bench_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """oracle-by-name on hard-tier dev cohort questions: a population search lists every patient, test ones too."""
    cohort = [s for s in load_scenarios(default_scenarios_dir(), "ehrqa", "dev", tier="hard")
              if s.category == "cohort_measure"][:3]
    out = tmp_path_factory.mktemp("oracle-by-name-cohort")
    await run_benchmark(cohort, make_code_solver("oracle-by-name"), out_dir=out, home=bench_home, show_progress=False)
    return out


@pytest.fixture(scope="module")
def examples(oracle_run: Path) -> list[Example]:
    made, _ = build_examples([oracle_run], profile="compact")
    return made


def _frozen_sets() -> list[list[Scenario]]:
    return [read_scenarios(set_dir(name)) for name in set_names()]


def _test_split() -> tuple[set[str], set[str], set[str]]:
    """Patient ids, MRNs (from the bundle files) and question texts of the test split of every frozen set."""
    test = [s for scenarios in _frozen_sets() for s in scenarios if s.split == "test"]
    patients = {s.patient for s in test}
    mrns = {chart.mrn for chart in (chart_from_bundle(b) for _, b in iter_bundles()) if chart.patient_id in patients}
    return patients, mrns, {s.question for s in test}


def test_every_step_of_a_passed_trajectory_is_an_example(oracle_run: Path, examples: list[Example]) -> None:
    records = [r for r in ResultsLog(oracle_run / "results.jsonl").load() if r.passed]
    assert len(records) == 16
    by_task: dict[str, list[Example]] = {}
    for example in examples:
        by_task.setdefault(example.scenario_id, []).append(example)
    two_step = [r for r in records if r.outcome.tool_calls >= 1 and r.scenario_id in by_task
                and len(by_task[r.scenario_id]) == r.outcome.tool_calls + 1]
    assert len(two_step) >= 10  # first tool choice AND final answer
    for record in two_step:
        targets = [json.loads(e.target) for e in by_task[record.scenario_id]]
        assert [t["tool"] for t in targets] == [s.tool for s in record.outcome.trace]
        assert targets[-1]["arguments"]["answer"] == record.outcome.answer


def _masked(messages: list[dict[str, str]], written: set[str]) -> list[dict[str, str]]:
    """What may differ between two runs of the same writes: the ids the server gave the new resources and
    the writer's name (medagent/oracle vs medagent/<model>)."""
    out = []
    for message in messages:
        content = re.sub(r"medagent/[\w:.-]+", "medagent/<actor>", message["content"])
        for ref in written:
            content = content.replace(ref.split("/")[-1], "<new id>")
        out.append({**message, "content": content})
    return out


async def test_examples_are_the_turns_the_real_agent_sends(examples: list[Example], dev_sample: list[Scenario],
                                                           oracle_run: Path, bench_home: Path, tmp_path: Path) -> None:
    """Replay each trajectory's targets through the real agent (a ScriptedPolicy answers with them) on the
    real embedded server: the messages the agent sends at each step are the examples' messages (up to the
    ids of resources the run itself wrote)."""
    scenarios = {s.id: s for s in dev_sample}
    by_task: dict[str, list[Example]] = {}
    for example in examples:
        by_task.setdefault(example.scenario_id, []).append(example)
    compared = 0
    for index, (scenario_id, task_examples) in enumerate(sorted(by_task.items())):
        policy = ScriptedPolicy([e.target for e in task_examples])
        solver = AgentSolver(policy, model="scripted", prompt_profile="compact")
        await run_benchmark([scenarios[scenario_id]], solver, out_dir=tmp_path / str(index), home=bench_home,
                            show_progress=False)
        written = {ref for run in (oracle_run, tmp_path / str(index)) for r in ResultsLog(run / "results.jsonl").load()
                   if r.scenario_id == scenario_id for step in r.outcome.trace for ref in step.wrote}
        for example, request in zip(task_examples, policy.requests):
            sent = [m.model_dump() for m in request.messages]
            assert _masked(sent, written) == _masked(example.messages, written)
            compared += 1
    assert compared == len(examples) >= 25


def test_targets_are_compact_json_in_schema_order() -> None:
    registry = default_registry()
    text = action_text("search_observations", {"latest": 1, "code": "4548-4"}, registry)
    assert text == '{"tool":"search_observations","arguments":{"code":"4548-4","latest":1}}'
    assert action_text("final_answer", {"citations": [], "answer": "no"}, registry) == \
        '{"tool":"final_answer","arguments":{"answer":"no","citations":[]}}'


def test_no_test_split_patient_mrn_or_question_in_the_examples(examples: list[Example]) -> None:
    patients, mrns, questions = _test_split()
    assert patients and mrns and questions
    text = "\n".join(m["content"] for e in examples for m in e.messages) + "\n".join(e.target for e in examples)
    assert not [p for p in patients if p in text]
    assert not [m for m in mrns if m in text]
    assert not [q for q in questions if q in text]


async def test_a_test_split_run_is_refused(bench_home: Path, tmp_path: Path) -> None:
    scenarios = load_scenarios(default_scenarios_dir(), "ehrqa", "test", limit=2, tier="core")
    await run_benchmark(scenarios, make_code_solver("oracle"), out_dir=tmp_path, home=bench_home, show_progress=False)
    with pytest.raises(UserError, match="test-split task"):
        build_examples([tmp_path])


def test_a_run_without_passed_tasks_is_refused(oracle_run: Path, tmp_path: Path) -> None:
    lines = (oracle_run / "results.jsonl").read_text().splitlines()
    failed = [json.dumps({**json.loads(line), "passed": False}) for line in lines]
    (tmp_path / "results.jsonl").write_text("\n".join(failed) + "\n")
    with pytest.raises(UserError, match="no passed tasks"):
        build_examples([tmp_path])
    with pytest.raises(UserError, match="no results.jsonl"):
        build_examples([tmp_path / "missing"])


def test_the_shipped_adapter_was_trained_on_dev_patients_only() -> None:
    folder = shipped_adapter()
    assert folder is not None, "the package ships medagent/models/adapters/gemma3-270m-ehr"
    data = json.loads((folder / ADAPTER_FILE).read_text())["data"]
    patients, mrns, questions = _test_split()
    assert data["split"] == "dev" and data["patients"] and data["scenario_ids"]
    assert not set(data["patients"]) & patients
    dev = {s.id: s for scenarios in _frozen_sets() for s in scenarios if s.split == "dev"}
    # every trained task is a dev-split task, or a rephrased copy of one (id + "-u<n>", medagent scenarios rephrase)
    sources = {re.sub(r"-u\d+$", "", i) for i in data["scenario_ids"]}
    # a set rebuilt since the adapter was trained (v3 is not frozen yet) renames the items it changed: such an id
    # must still name a dev patient (its fourth part is the patient id's first 8 characters) and no test patient
    renamed = sources - set(dev)
    dev_prefixes = {s.patient[:8] for s in dev.values()}
    assert all(i.startswith("v3-") and i.split("-")[3] in dev_prefixes for i in renamed), sorted(renamed)[:5]
    assert not {i.split("-")[3] for i in renamed} & {p[:8] for p in patients}
    assert len(renamed) < len(sources) / 2, "most trained tasks must still be in the frozen sets"
    sources -= renamed
    assert {dev[i].suite for i in sources} == {"ehrqa", "agentic"}
    # issue 28: questions asked as users ask (rephrased copies) and the hard tier's dev split are in
    assert data["rephrased"] > 0 and any(i != re.sub(r"-u\d+$", "", i) for i in data["scenario_ids"])
    assert {"core", "hard"} <= {dev[i].tier for i in sources}
    trained = [dev[i] for i in sources]
    assert not {s.question for s in trained} & questions
    bundle_mrns = {chart.patient_id: chart.mrn for chart in (chart_from_bundle(b) for _, b in iter_bundles())}
    assert not {bundle_mrns[p] for p in data["patients"]} & mrns


def _text_of(examples: list[Example]) -> str:
    return "\n".join(m["content"] for e in examples for m in e.messages) + "\n".join(e.target for e in examples)


def test_rephrased_questions_train_free_answers_and_no_test_patient(rephrased_run: Path) -> None:
    made, summary = build_examples([rephrased_run], profile="compact")
    assert summary.rephrased == summary.tasks >= 30
    patients, mrns, _ = _test_split()
    text = _text_of(made)
    assert not [p for p in patients if p in text] and not [m for m in mrns if m in text]
    answers = [json.loads(e.target)["arguments"]["answer"] for e in made if '"final_answer"' in e.target]
    assert any(a.startswith(("Yes, ", "No, ", "It was ", "They are: ")) for a in answers)  # free answers
    # the patient in context is never looked up by MRN (the agent's guard would refuse it): its record is read
    in_context = [e for e in made if "The patient in context: Patient/" in e.messages[0]["content"]]
    assert in_context and not [e for e in in_context if '"find_patients"' in e.target and '"identifier"' in e.target]


def test_a_population_search_brings_no_test_patient_into_the_examples(cohort_run: Path) -> None:
    records = [r for r in ResultsLog(cohort_run / "results.jsonl").load() if r.passed]
    patients, mrns, _ = _test_split()
    assert any(m in (s.result or "") for r in records for s in r.outcome.trace for m in [*patients, *mrns])
    made, _ = build_examples([cohort_run])
    text = _text_of(made)
    assert not [p for p in patients if p in text] and not [m for m in mrns if m in text]


def test_a_task_whose_text_names_a_test_patient_is_left_out(oracle_run: Path, tmp_path: Path) -> None:
    """A passed dev task whose tool result names a test patient (edited into a copy of a real run) is dropped whole."""
    shutil.copytree(oracle_run, tmp_path / "run")
    _, mrns, _ = _test_split()
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert record["passed"] and record["outcome"]["trace"][0]["result"]
    record["outcome"]["trace"][0]["result"] += f"\nalso found: MRN {sorted(mrns)[0]}"
    (tmp_path / "run" / "results.jsonl").write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    before, summary_before = build_examples([oracle_run])
    after, summary = build_examples([tmp_path / "run"])
    assert summary.dropped_test_mentions == summary_before.dropped_test_mentions + 1
    assert summary.tasks == summary_before.tasks - 1
    assert record["scenario_id"] in {e.scenario_id for e in before} - {e.scenario_id for e in after}


def _natural() -> tuple[Path, list[Scenario]]:
    folder = set_dir("natural")
    return folder, open_set(folder).load("ehrqa", "test", "all")


async def test_a_run_on_the_held_out_natural_set_is_refused(bench_home: Path, tmp_path: Path) -> None:
    """The natural-phrasing set is evaluation only (its manifest says so): a passed run on it never becomes data."""
    folder, scenarios = _natural()
    assert open_set(folder).manifest.evaluation_only
    picked = [s for s in scenarios if s.meta.get("form") == "condition"][:2]
    record_set(tmp_path, "natural", set_hash(folder), folder)
    await run_benchmark(picked, make_code_solver("oracle"), out_dir=tmp_path, home=bench_home, show_progress=False)
    assert any(r.passed for r in ResultsLog(tmp_path / "results.jsonl").load())
    with pytest.raises(UserError, match="held-out evaluation set"):
        build_examples([tmp_path])


def test_a_dev_task_asking_a_held_out_question_is_refused(oracle_run: Path, dev_sample: list[Scenario],
                                                           tmp_path: Path) -> None:
    """A copy of a natural question in a dev set (an edited copy of the real dev sample) is refused, though the
    copy's split, patient and set are all dev."""
    _, natural = _natural()
    passed = {r.scenario_id for r in ResultsLog(oracle_run / "results.jsonl").load() if r.passed}
    target = next(s for s in dev_sample if s.id in passed)
    copied = [s.model_copy(update={"question": natural[0].question}) if s.id == target.id else s for s in dev_sample]
    manifest = write_set(tmp_path / "set", {"ehrqa/dev.jsonl": copied}, name="copy", generator_version="test",
                         seed=0, patients=1, test_patients=[])
    run = tmp_path / "run"
    shutil.copytree(oracle_run, run)
    (run / "scenario_set.json").unlink(missing_ok=True)
    record_set(run, "copy", manifest.content_hash, tmp_path / "set")
    with pytest.raises(UserError, match=f"task {target.id} asks a question of the held-out evaluation set 'natural'"):
        build_examples([run])
    build_examples([oracle_run])  # the same run on the real dev set is data


async def test_a_search_for_the_patient_in_context_ends_the_trajectory(dev_sample: list[Scenario], bench_home: Path,
                                                                       tmp_path: Path) -> None:
    """The grading oracle looks the patient in context up by MRN; the agent's guard would not run that search,
    so the data keep no step from it on (no example shows a turn the agent never has)."""
    agentic = [s for s in dev_sample if s.suite == "agentic" and s.category != "find_mrn"]
    await run_benchmark(agentic, make_code_solver("oracle"), out_dir=tmp_path, home=bench_home, show_progress=False)
    records = [r for r in ResultsLog(tmp_path / "results.jsonl").load() if r.passed]
    assert records and all(r.outcome.trace[0].tool == "find_patients" for r in records)
    with pytest.raises(UserError, match="no passed tasks with usable steps"):
        build_examples([tmp_path])


@pytest.mark.parametrize("clause", ["patient", "question"])
def test_a_dev_task_sharing_a_test_patient_or_question_is_refused(oracle_run: Path, tmp_path: Path,
                                                                 clause: str) -> None:
    """Issue 25, item 7: the rule's patient and question clauses. A dev-split task (the split clause passes)
    about a patient of the test split, or asking a test-split question word for word, is refused."""
    import shutil

    from medagent.bench.run_folder import SET_FILE, run_set_dir
    from medagent.scenarios.scenario_files import read_manifest

    original = run_set_dir(oracle_run)
    folder = tmp_path / "set"
    shutil.copytree(original, folder)
    record = next(json.loads(line) for line in (oracle_run / "results.jsonl").read_text().splitlines()
                  if line.strip() and json.loads(line)["passed"])
    test_task = next(s for s in read_scenarios(folder) if s.split == "test")
    for name in read_manifest(folder).files:
        path = folder / name
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            if line.strip() and json.loads(line)["id"] == record["scenario_id"]:
                changed = {**json.loads(line), clause: getattr(test_task, clause)}
                assert changed["split"] == "dev"
                lines[index] = json.dumps(changed)
        path.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text(json.dumps(record) + "\n")
    (run / SET_FILE).write_text(json.dumps({"set": "v2", "content_hash": "x", "folder": str(folder)}))
    with pytest.raises(UserError, match="test-split task"):
        build_examples([run])
