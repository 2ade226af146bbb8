"""A benchmark run has no reviewer: a write the approval path escalates is refused and the run goes on to its end.

Before this, the agent's interrupt for an escalated write ended the task with status ``running``.
"""

from __future__ import annotations

from pathlib import Path

from medagent.bench.results import ResultsLog
from medagent.bench.runner import RESULTS_FILE, run_benchmark
from medagent.bench.scenario_sets import default_scenarios_dir, load_scenarios
from medagent.bench.solvers.agent import AgentSolver
from medagent.models.scripted import ScriptedPolicy


async def test_an_escalated_write_is_refused_and_the_run_ends(tmp_path: Path, bench_home: Path) -> None:
    scenarios = load_scenarios(default_scenarios_dir(), "agentic", "test")
    task = next(s for s in scenarios if s.category == "record_bp" and s.patient_context)
    other = next(s.patient for s in scenarios if s.patient and s.patient != task.patient)
    policy = ScriptedPolicy([
        {"tool": "record_vital_sign", "arguments": {"patient": f"Patient/{other}", "vital": "blood_pressure",
                                                    "systolic": 128, "diastolic": 82}},
        {"tool": "final_answer", "arguments": {"answer": "not recorded", "citations": []}},
    ])
    await run_benchmark([task], AgentSolver(policy, model="scripted"), out_dir=tmp_path / "run", home=bench_home,
                        show_progress=False)
    [record] = ResultsLog(tmp_path / "run" / RESULTS_FILE).load()
    assert record.outcome.status == "answered" and record.outcome.answer == "not recorded"
    first = record.outcome.trace[0]
    assert first.tool == "record_vital_sign" and first.wrote == []
    assert first.approval is not None and first.approval.startswith("refused by benchmark")
    assert record.changes == [] and record.outcome.audit == []  # nothing reached the server
    told = policy.requests[-1].messages[-1].content  # the model read the refusal before answering
    assert "refused" in told and "record_vital_sign" in told
    assert not record.passed  # the task's write was never made
