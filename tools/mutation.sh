#!/usr/bin/env bash
# Mutation testing of the critical modules (mutmut 3, see tools/mutation.py and tools/mutation_targets.toml).
# Slow and CPU-bound: not part of .ci/run. Prints a per-target killed/total table.
#   tools/mutation.sh [--tests-at REF] [--budget SECONDS] [TARGET|MODULE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then . .venv/bin/activate; fi
python -c "import mutmut" 2>/dev/null || python -m pip install --quiet -e ".[mutation]"
exec python tools/mutation.py "$@"
