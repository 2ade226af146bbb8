"""Training examples from scored runs: every step of a passed trajectory becomes the exact turns the agent
reads at that step (``prompts.decision_messages``, the function the agent itself calls) and the target
action JSON, written as the agent's constrained decoding writes it (compact JSON, keys in schema order).

Only dev-split tasks are used: a run that holds a test-split task, or a task about a patient of the test
split (of its set, or of any frozen set), is refused (:class:`~medagent.config.UserError`), and a passed dev
task whose text names a test patient (a population search lists everyone) is left out, so nothing of the
test split can leak into training. A held-out evaluation set (``evaluation_only`` in its manifest, e.g.
``scenarios/natural``) is never training data: a run on it, or a task asking one of its questions, is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medagent.agent.actions import FINAL_ANSWER, FINAL_ANSWER_PARAMETERS
from medagent.agent.guards import PATIENT_SEARCH
from medagent.agent.prompts import decision_messages, must_answer_reason, tool_result_message
from medagent.agent.state import Limits
from medagent.bench.results import TaskRecord
from medagent.bench.runner import RESULTS_FILE
from medagent.config import UserError
from medagent.models.adapter import DataSummary
from medagent.models.base import PromptProfile
from medagent.scenarios.models import Scenario
from medagent.scenarios.scenario_files import open_set, read_manifest, read_scenarios
from medagent.tools.registry import Registry, default_registry
from medagent.tools.search_args import check_patient
from medagent.trajectory import Step

CUT_MARK = "(trace copy cut at"  # tool_session marks a result it shortened for the log
AGENT_RESULT_CHARS = 800 * 4  # the agent's per-call budget (ToolContext.token_budget x 4 chars): longer oracle
# results (the oracle reads with a larger budget) are not what the agent would see, so their steps are dropped
MAX_CITATIONS = int(FINAL_ANSWER_PARAMETERS["properties"]["citations"]["maxItems"])


class Example(BaseModel):
    """One step of one task: the turns before it and the action the model should reply with."""

    scenario_id: str
    suite: str
    category: str
    patient: str
    step: int
    messages: list[dict[str, str]]
    target: str = Field(description="The action JSON exactly as the agent's constrained decoding writes it.")


def action_text(tool: str, arguments: dict[str, Any], registry: Registry) -> str:
    """The action as compact JSON with the keys in the schema's order (what llguidance emits without whitespace)."""
    order = (
        list(FINAL_ANSWER_PARAMETERS["properties"])
        if tool == FINAL_ANSWER
        else list(registry[tool].parameters()["properties"])
    )
    ordered = {k: arguments[k] for k in order if k in arguments}
    ordered.update((k, v) for k, v in arguments.items() if k not in ordered)
    return json.dumps({"tool": tool, "arguments": ordered}, ensure_ascii=False, separators=(",", ":"))


def _agent_arguments(step: Step, patient_context: str | None, registry: Registry) -> dict[str, Any]:
    """The arguments the trained agent should write: a patient argument equal to the run's patient context is
    left out (the agent fills it, as an EHR launch context does), which saves ~20 generated tokens a step."""
    arguments = dict(step.arguments or {})
    if step.tool != FINAL_ANSWER and patient_context and isinstance(arguments.get("patient"), str):
        try:
            same = check_patient(arguments["patient"]) == patient_context
        except ValueError:
            same = False
        if same and "patient" in registry[step.tool or ""].parameters()["properties"]:
            arguments.pop("patient")
    return arguments


def trajectory_examples(
    record: TaskRecord,
    scenario: Scenario,
    *,
    profile: PromptProfile,
    tools: list[dict[str, Any]],
    registry: Registry,
    limits: Limits,
) -> tuple[list[Example], int]:
    """The examples of one passed task, and how many of its steps were dropped (a result the agent would not
    see in full ends the trajectory there: later prompts would hold it; so does a search for the patient in
    context, which the agent's guard does not run)."""
    history: list[dict[str, str]] = [{"role": "user", "content": scenario.question}]
    trace: list[dict[str, Any]] = []
    examples: list[Example] = []
    steps_done = 0
    patient = scenario.patient_context
    for index, step in enumerate(record.outcome.trace):
        if step.tool is None:
            continue
        if step.tool != FINAL_ANSWER and step.tool not in registry.names:
            return examples, len(record.outcome.trace) - index
        if step.tool == PATIENT_SEARCH and patient and step.references == [f"Patient/{patient}"]:
            return examples, len(record.outcome.trace) - index  # the agent's guard refuses this search
        arguments = _agent_arguments(step, patient, registry)
        if step.tool == FINAL_ANSWER and len(arguments.get("citations") or []) > MAX_CITATIONS:
            return examples, len(record.outcome.trace) - index
        reason = must_answer_reason(steps_done, trace, limits.max_steps)
        if reason and step.tool != FINAL_ANSWER:
            return examples, len(record.outcome.trace) - index
        target = action_text(step.tool, arguments, registry)
        messages = decision_messages(
            now=scenario.now, patient=patient, tools=tools, history=history, profile=profile, must_answer=reason
        )
        examples.append(
            Example(
                scenario_id=scenario.id,
                suite=scenario.suite,
                category=scenario.category,
                patient=scenario.patient,
                step=len(examples) + 1,
                messages=messages,
                target=target,
            )
        )
        if step.tool == FINAL_ANSWER:
            break
        text = step.result or ""
        if CUT_MARK in text or len(text) > AGENT_RESULT_CHARS:
            return examples, len(record.outcome.trace) - index - 1
        history = [*history, {"role": "assistant", "content": target}, tool_result_message(step.tool, text, step.error)]
        trace.append({"tool": step.tool, "arguments": step.arguments})
        steps_done += 1
    return examples, 0


def test_split_identity(scenarios: Iterable[Scenario]) -> tuple[set[str], set[str]]:
    """The test split's patient ids and question texts."""
    test = [s for s in scenarios if s.split == "test"]
    return {s.patient for s in test}, {s.question for s in test}


def frozen_test_patients(*folders: Path) -> set[str]:
    """The test patients of every frozen set under ``scenarios/`` and of ``folders`` (their manifests'
    ``test_patients``: a rephrased set lists its source's)."""
    from medagent.bench.scenario_sets import scenarios_root

    root = scenarios_root()
    manifests = [*sorted(root.glob("*/manifest.json")), *(Path(f) / "manifest.json" for f in folders)]
    return {p for path in manifests if path.exists() for p in read_manifest(path.parent).test_patients}


def held_out_questions() -> dict[str, str]:
    """Question text -> name of the held-out evaluation set (``evaluation_only``) under ``scenarios/`` asking it."""
    from medagent.bench.scenario_sets import scenarios_root

    held: dict[str, str] = {}
    for path in sorted(scenarios_root().glob("*/manifest.json")):
        manifest = read_manifest(path.parent)
        if manifest.evaluation_only:
            held.update((s.question, manifest.name or path.parent.name) for s in read_scenarios(path.parent))
    return held


def test_patient_marks(patients: set[str]) -> list[str]:
    """What names a test patient in a text: the Patient id and the MRN (from the bundles)."""
    from medagent.scenarios.build import load_charts

    return [mark for chart in load_charts() if chart.patient_id in patients for mark in (chart.patient_id, chart.mrn)]


def build_examples(
    run_dirs: list[Path], *, profile: PromptProfile = "compact", registry: Registry | None = None
) -> tuple[list[Example], DataSummary]:
    """Examples from the passed tasks of the runs (results.jsonl), in a fixed order (run, line, step)."""
    from medagent.bench.run_folder import run_set_dir

    registry = registry or default_registry()
    tools = registry.openai_schemas(None)
    limits = Limits()
    examples: list[Example] = []
    dropped = mentions = 0
    tasks: list[Scenario] = []
    every_test_patient = frozen_test_patients(
        *(run_set_dir(Path(r)) for r in run_dirs if (Path(r) / RESULTS_FILE).exists())
    )
    held_out = held_out_questions()
    marks = re.compile("|".join(map(re.escape, test_patient_marks(every_test_patient))) or r"(?!)")
    for run_dir in run_dirs:
        path = Path(run_dir) / RESULTS_FILE
        if not path.exists():
            raise UserError(f"{run_dir}: no {RESULTS_FILE} (give a folder written by medagent bench run)")
        folder = run_set_dir(Path(run_dir))
        chosen = open_set(folder)  # the manifest must be readable
        if chosen.manifest.evaluation_only:
            raise UserError(
                f"{run_dir}: a run on {chosen.name!r}, a held-out evaluation set ({folder}), is never training data"
            )
        scenarios = {s.id: s for s in read_scenarios(folder)}
        test_patients, test_questions = test_split_identity(scenarios.values())
        test_patients |= every_test_patient
        seen: set[str] = set()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            record = TaskRecord.from_line(line.encode())
            if not record.passed or record.scenario_id in seen:
                continue
            scenario = scenarios.get(record.scenario_id)
            if scenario is None:
                raise UserError(f"{path}:{number}: task {record.scenario_id} is not in the scenario set {folder}")
            if scenario.question in held_out:
                raise UserError(
                    f"{path}:{number}: task {scenario.id} asks a question of the held-out evaluation set "
                    f"{held_out[scenario.question]!r}: never training data"
                )
            if scenario.split != "dev" or scenario.patient in test_patients or scenario.question in test_questions:
                raise UserError(
                    f"{path}:{number}: task {scenario.id} is a test-split task (split {scenario.split}, "
                    f"patient {scenario.patient}): train on dev-split runs only"
                )
            seen.add(record.scenario_id)
            made, cut = trajectory_examples(
                record, scenario, profile=profile, tools=tools, registry=registry, limits=limits
            )
            if any(marks.search(m["content"]) for e in made for m in e.messages) or any(
                marks.search(e.target) for e in made
            ):
                mentions += 1  # a population search or a shared name brought a test patient into the text
                continue
            dropped += cut
            if made:
                tasks.append(scenario)
                examples.extend(made)
    if not examples:
        raise UserError(f"no passed tasks with usable steps in {', '.join(map(str, run_dirs))}")
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.messages, example.target], ensure_ascii=False).encode())
    summary = DataSummary(
        runs=[str(r) for r in run_dirs],
        tasks=len(tasks),
        examples=len(examples),
        dropped_steps=dropped,
        dropped_test_mentions=mentions,
        rephrased=sum(1 for s in tasks if "rephrased_from" in s.meta),
        patients=sorted({s.patient for s in tasks}),
        scenario_ids=sorted(s.id for s in tasks),
        categories=dict(sorted(Counter(f"{s.suite}/{s.category}" for s in tasks).items())),
        phrasings=len({(s.category, s.meta.get("phrasing")) for s in tasks}),
        sha256=digest.hexdigest(),
    )
    return examples, summary
