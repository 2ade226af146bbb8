"""The quickstart's questions (bench/quickstart.py): template questions of the test split and one of them asked as a
user asks it (no format line, a free answer), a set `medagent bench run` scores; the grading oracle solves all."""

from __future__ import annotations

from pathlib import Path

from medagent.agent.answer_format import format_text
from medagent.bench.quickstart import quickstart_set
from medagent.bench.results import ResultsLog
from medagent.bench.runner import run_benchmark
from medagent.bench.solvers.catalog import make_code_solver
from medagent.scenarios.scenario_files import open_set, read_manifest


async def test_the_quickstart_asks_one_question_as_a_user_would(tmp_path: Path, bench_home: Path) -> None:
    folder = quickstart_set(tmp_path / "questions", 3)
    questions = open_set(folder).load("ehrqa", "test", "all", None)
    assert len(questions) == 4
    templates, user = questions[:3], questions[3]
    assert user.category == templates[0].category and "rephrased_from" not in templates[0].meta
    assert all(format_text(q.question) for q in templates)
    assert not format_text(user.question) and "Patient/" not in user.question and user.answer.free
    assert user.patient == templates[0].patient and user.meta["rephrased_from"] == templates[0].id
    assert user.patient in read_manifest(folder).test_patients
    await run_benchmark(questions, make_code_solver("oracle"), out_dir=tmp_path / "run", home=bench_home,
                        show_progress=False)
    records = ResultsLog(tmp_path / "run" / "results.jsonl").load()
    assert len(records) == 4 and all(r.passed for r in records)
