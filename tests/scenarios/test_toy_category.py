"""Adding a scenario category is one module (plus this test): a toy hard-tier category, written to a folder of its
own and put on the ``medagent.scenarios.hard`` package path, is found by the registry, passes the completeness
checks, is generated with the hard tier, and the oracle scores 100% on it through the real bench runner.

The toy runs in a subprocess, so the registry of this test session never holds it. Files touched to add it: the
module below (one file) and this test; no table, list or other module of medagent changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TOY_MODULE = '''
"""Toy: how many doses of the patient's most frequent vaccine were given up to now (exact count)."""

from __future__ import annotations

from collections import Counter

from medagent.scenarios.category import Category, ChartInput, register
from medagent.scenarios.chart_reads import MAX_ROWS
from medagent.scenarios.hard.common import HardBuilder, exact_integer
from medagent.scenarios.models import Scenario
from medagent.scenarios.tool_caller import OracleAnswer, ToolCaller
from medagent.scenarios.tool_rows import refs

NAME = "toy_vaccine_count"
PHRASINGS = [
    "How many doses of the {vaccine} vaccine (CVX {cvx}) has the patient received up to now?",
    "Count the {vaccine} immunizations (CVX {cvx}) in the chart to date.",
    "What is the number of {vaccine} vaccinations (CVX {cvx}) on record as of now?",
    "How often was the {vaccine} vaccine (CVX {cvx}) given to this patient so far?",
    "Give the total count of {vaccine} doses (CVX {cvx}) documented up to now.",
]


def generate(given: ChartInput) -> list[Scenario]:
    b = HardBuilder.of(given)
    shots = [s for s in b.chart.immunizations if s.when <= b.end]
    counts = Counter(s.code.code for s in shots)
    if not counts:
        return []
    cvx, count = min(counts.items(), key=lambda item: (-item[1], item[0]))
    if count > MAX_ROWS:
        return []
    display = next(s.code.display for s in shots if s.code.code == cvx)
    index, template = b.phrasing(NAME, (cvx,), PHRASINGS)
    return [b.ehrqa(NAME, (cvx,), now=b.end, question=template.format(vaccine=display, cvx=cvx),
                    answer_format="Answer with one whole number.", answer=exact_integer(count), phrasing=index,
                    provenance=[f"Immunization/{s.id}" for s in shots if s.code.code == cvx], meta={"cvx": cvx})]


async def solve(tools: ToolCaller, sc: Scenario) -> OracleAnswer:
    result = await tools.call("search_immunizations", complete=True, patient=sc.patient, code=sc.meta["cvx"],
                              limit=MAX_ROWS)
    doses = [row for row in result.rows if row.get("status") in (None, "completed")]
    return OracleAnswer(str(len(doses)), refs(doses))


CATEGORY = register(Category(
    name=NAME, suite="ehrqa", tier="hard", order=1000, generate=generate, solve=solve,
    description="How many doses of one vaccine the patient received up to now.", phrasings={NAME: PHRASINGS},
    since=99,  # in no frozen set
))
'''

RUN = '''
import asyncio, json, sys
from pathlib import Path

import medagent.scenarios.hard as hard

hard.__path__.append(sys.argv[1])  # the toy module's folder, as if the module were in the package

from test_category_registry import assert_complete  # noqa: E402

from medagent.bench.solvers.oracle import OracleSolver  # noqa: E402
from medagent.bench.runner import run_benchmark  # noqa: E402
from medagent.scenarios import sampling  # noqa: E402
from medagent.scenarios.build import load_charts  # noqa: E402
from medagent.scenarios.category import categories, category  # noqa: E402
from medagent.scenarios.hard import generate_hard  # noqa: E402
from medagent.scenarios.population import population_of  # noqa: E402

toy = category("toy_vaccine_count")
assert_complete(toy)
charts = load_charts()
args = (charts, population_of(charts), 2026, sampling.test_patients(c.patient_id for c in charts))
scenarios = [s for s in generate_hard(*args) if s.category == toy.name]
again = [s for s in generate_hard(*args) if s.category == toy.name]
records = []
asyncio.run(run_benchmark(scenarios[:8], OracleSolver(), out_dir=Path(sys.argv[3]), home=Path(sys.argv[2]),
                          concurrency=2, show_progress=False, on_record=records.append))
print(json.dumps({
    "hard_categories": [c.name for c in categories(tier="hard")],
    "in_v2": toy.name in [c.name for c in categories(since=2)],
    "generated": len(scenarios), "deterministic": scenarios == again,
    "splits": sorted({s.split for s in scenarios}),
    "oracle": [[r.scenario_id, r.passed, r.outcome.answer] for r in records],
}))
'''


def test_a_toy_category_is_one_module(tmp_path: Path, bench_home: Path) -> None:
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "toy_vaccine_count.py").write_text(TOY_MODULE, encoding="utf-8")
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", RUN, str(folder), str(bench_home), str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".py") == ["toy_vaccine_count.py"]  # one file
    assert result["hard_categories"][-1] == "toy_vaccine_count" and not result["in_v2"]
    assert result["generated"] >= 50 and result["deterministic"] and result["splits"] == ["dev", "test"]
    assert len(result["oracle"]) == 8 and all(passed for _, passed, _ in result["oracle"]), result["oracle"]
