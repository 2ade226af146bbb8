#!/usr/bin/env bash
# The one-line mutations that survived the suite in issue 19, each applied to a scratch copy of this checkout
# and run against the tests written to catch it: every line should say "killed". A line saying
# "PATTERN NOT FOUND" means the code moved; update the pattern. Slow (the agent/runner ones start servers).
set -u
SRC="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${TMPDIR:-/tmp}/medagent-known-mutants"; mkdir -p "$OUT"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$SRC/.venv/bin/python" ]; then . "$SRC/.venv/bin/activate"; fi
check() {  # name file python-old python-new tests...
  local name=$1 file=$2 old=$3 new=$4; shift 4
  local dir=$OUT/scratch
  rm -rf $dir; mkdir -p $dir
  (cd $SRC && git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C $dir)
  python - "$dir/$file" "$old" "$new" <<'PY' || { echo "$name: PATTERN NOT FOUND"; return; }
import sys
p, old, new = sys.argv[1:4]
s = open(p).read()
if s.count(old) != 1:
    sys.exit(1)
open(p, "w").write(s.replace(old, new))
PY
  (cd $dir && PYTHONPATH=$dir MEDAGENT_HOME=$OUT/home timeout 900 python -m pytest -x -q -p no:cacheprovider "$@" >$OUT/$name.log 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then echo "$name: SURVIVED"; else echo "$name: killed (rc=$rc) $(grep -m1 -E '^FAILED' $OUT/$name.log)"; fi
}
T=tests/scenarios/test_grading_mutants.py
check widening medagent/scenarios/answers.py "tol_abs = max(tol_abs, 0.5 * 10 ** -_decimals_of(answer) * factor)" "pass" $T
check ratio075 medagent/scenarios/answers.py "ratio() >= 0.9" "ratio() >= 0.75" $T
check greedy medagent/scenarios/writes.py "if change not in slot_of_change or assign(slot_of_change[change], seen):" "if change not in slot_of_change:" $T
check setup-filter medagent/scenarios/writes.py 'if change.action == "create" and (change.resourceType, change.id) in setup:' 'if (change.resourceType, change.id) in setup:' $T
check subject-slash medagent/scenarios/writes.py 'r.endswith("/" + spec.subject)' 'r.endswith(spec.subject)' $T
F=tests/fhir/test_values_edges.py
check sa-gt medagent/fhir/server/search.py 'return f"{rlo} >= ?", [hi]' 'return f"{rlo} > ?", [hi]' $F
check month-early medagent/fhir/server/values.py 'timedelta(days=calendar.monthrange(year, month)[1])' 'timedelta(days=calendar.monthrange(year, month)[1] - 1)' $F
check day-1s medagent/fhir/server/values.py 'end = start + timedelta(days=1)' 'end = start + timedelta(days=1) - timedelta(seconds=1)' $F
check left-gt-1 medagent/tools/compact.py 'if left > 0:' 'if left > 1:' tests/tools/test_compact_edges.py
check repeat-names medagent/agent/graph.py 'calls = [(s.get("tool"), s.get("arguments")) for s in state["trace"] if s.get("tool")]' 'calls = [s.get("tool") for s in state["trace"] if s.get("tool")]' tests/agent/test_rules.py
check refuse-auto medagent/agent/graph.py 'pending["approval"] = "refused: read-only mode"' 'pending["approval"] = "auto-approved"' tests/agent/test_rules.py
check resume-trial0 medagent/bench/runner.py 'if (s.id, t) not in done]' 'if (s.id, 0) not in done]' tests/bench/test_resume_trials.py
