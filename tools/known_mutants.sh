#!/usr/bin/env bash
# The one-line mutations that survived the suite in issue 19, each applied to a scratch copy of this checkout
# and run against the tests written to catch it: every line should say "killed". A line saying
# "PATTERN NOT FOUND" means the code moved; update the pattern. Slow (the agent/runner ones start servers).
set -u
SRC="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${TMPDIR:-/tmp}/medagent-known-mutants"; mkdir -p "$OUT"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$SRC/.venv/bin/python" ]; then . "$SRC/.venv/bin/activate"; fi
check() {  # name file python-old python-new tests...   (ONLY="name ..." runs only those)
  local name=$1 file=$2 old=$3 new=$4; shift 4
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
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
check repeat-names medagent/agent/prompts.py 'calls = [(s.get("tool"), s.get("arguments")) for s in trace if s.get("tool")]' 'calls = [s.get("tool") for s in trace if s.get("tool")]' tests/agent/test_rules.py
check refuse-auto medagent/tools/approval.py 'return "refused: read-only mode"' 'return "auto-approved"' tests/agent/test_rules.py
check resume-trial0 medagent/bench/runner.py 'if (s.id, t) not in done]' 'if (s.id, 0) not in done]' tests/bench/test_resume_trials.py
# issue 25, item 7: the behaviours an outside mutation check found untested
check tx-rollback medagent/fhir/server/store.py 'self._writer.execute("ROLLBACK")' 'self._writer.execute("COMMIT")' tests/fhir/test_server_lenient_and_transactions.py
check before-image-last medagent/bench/server_diff.py 'prior = _version(versions[0]) - 1' 'prior = _version(versions[-1]) - 1' tests/bench/test_standard_scoring.py -k creates_then_corrects
check train-patient-clause medagent/train/examples.py ' or scenario.patient in test_patients' '' tests/train/test_examples.py -k sharing
check train-question-clause medagent/train/examples.py ' or scenario.question in test_questions' '' tests/train/test_examples.py -k sharing
check answer-no-negative medagent/agent/answer_format.py '|-?\d+(?:\.\d+)?|' '|\d+(?:\.\d+)?|' tests/agent/test_answer_format.py
# issue 25, items 1-4: the safety rules themselves
check write-two-patients medagent/tools/registry.py 'for argument, reference, owner in named[1:]:' 'for argument, reference, owner in named[1:1]:' tests/tools/test_write_names_patient.py -k link
check write-path-patient medagent/tools/write_clinical.py 'if ctx.write_patient is None or owner != ctx.write_patient:' 'if ctx.write_patient is None:' tests/tools/test_write_names_patient.py -k write_path
check auto-unnamed medagent/tools/approval.py 'if request.patient is None:' 'if False:' tests/tools/test_approval_policies.py
check dot-ids medagent/fhir/ids.py 'rf"(?!\.+$){ID_CHARACTERS}"' 'rf"{ID_CHARACTERS}"' tests/fhir/test_fhir_ids.py
check chat-neutralise medagent/models/base.py 'content = neutralize_control_tokens(message.content)' 'content = message.content' tests/tools/test_untrusted_text.py -k "neutralised_before or embedded_prompt"
check join-guard medagent/tools/compact.py 'return sep.join(guard_record_text(p) for p in parts if p)' 'return sep.join(p for p in parts if p)' tests/tools/test_untrusted_text.py -k every_string_field
check nfkc medagent/untrusted_text.py 'unicodedata.normalize("NFKC", text)' 'text' tests/tools/test_quoting_rule.py
check model-streak medagent/bench/runner.py 'len(self.held) >= self.limit' 'len(self.held) > self.limit' tests/bench/test_model_failure_watch.py
check model-timeout medagent/bench/runner.py 'record.outcome.error_kind == "timeout"' 'record.outcome.error_kind == "timed out"' tests/bench/test_model_failure_watch.py
