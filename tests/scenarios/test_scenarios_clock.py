"""Graders under a wall clock set years ahead give the same verdicts (MedAgentBench's v2 clock bug).

A fresh interpreter replaces datetime.now/today, date.today and time.time with 2040 before
importing medagent, grades every frozen scenario with its reference answer and diff and with a
silent finish, and builds a small set; the results must equal those under the real clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from medagent.scenarios.build import build_scenarios
from medagent.scenarios.grading import grade
from medagent.scenarios.models import Scenario
from medagent.scenarios.reference import reference_answer, reference_diff

FUTURE = r'''
import datetime as _dt, json, sys, time
from pathlib import Path

class _FutureDateTime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime(2040, 6, 1, 12, 0, tzinfo=tz) if tz else _dt.datetime(2040, 6, 1, 12, 0)
    @classmethod
    def utcnow(cls):
        return _dt.datetime(2040, 6, 1, 12, 0)
    @classmethod
    def today(cls):
        return cls.now()

class _FutureDate(_dt.date):
    @classmethod
    def today(cls):
        return _dt.date(2040, 6, 1)

_dt.datetime, _dt.date = _FutureDateTime, _FutureDate
time.time = lambda: 2222222222.0

from medagent.scenarios.build import build_scenarios
from medagent.scenarios.grading import grade
from medagent.scenarios.reference import reference_answer, reference_diff
from medagent.scenarios.scenario_files import read_scenarios

scenarios = read_scenarios(Path(sys.argv[1]))
out = {s.id: [grade(s, reference_answer(s.answer), reference_diff(s)).passed, grade(s, "", []).passed]
       for s in scenarios}
out["_hash"] = build_scenarios(seed=9, patients=3, out_dir=Path(sys.argv[2])).content_hash
print(json.dumps(out))
'''


def test_verdicts_and_builds_do_not_depend_on_the_wall_clock(frozen_dir: Path, frozen: list[Scenario],
                                                            tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", FUTURE, str(frozen_dir), str(tmp_path / "future")],
                            capture_output=True, text=True, check=True)
    future = json.loads(result.stdout)
    assert future.pop("_hash") == build_scenarios(seed=9, patients=3, out_dir=tmp_path / "now").content_hash
    present = {s.id: [grade(s, reference_answer(s.answer), reference_diff(s)).passed, grade(s, "", []).passed]
               for s in frozen}
    assert future == present
    # a workflow task's reference is the oracle's run (tests/scenarios/test_workflow_set.py): its spec alone
    # holds no note, so only the empty answer is checked here
    workflow = {s.id for s in frozen if s.checkpoints}
    assert all((ok or sid in workflow) and not silent for sid, (ok, silent) in future.items())
