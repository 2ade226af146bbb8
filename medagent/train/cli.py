"""``medagent train sft``: scored runs -> training examples -> a LoRA adapter folder."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from medagent.config import UserError
from medagent.train.config import TrainConfig

train_app = typer.Typer(help="Train models from scored trajectories.", no_args_is_help=True)


def base_folder(base: str) -> tuple[str, Path, bool]:
    """(recorded base name, HF folder, needs <bos>) for ``--base embedded|embedded:<key>|PATH``."""
    from medagent.models.embedded import DEFAULT_EMBEDDED_MODEL, EMBEDDED_MODELS, prepare_model

    if base == "embedded" or base.startswith("embedded:"):
        key = base.partition(":")[2] or DEFAULT_EMBEDDED_MODEL
        if key not in EMBEDDED_MODELS or key == "base":
            raise UserError(
                f"--base {base}: unknown embedded model {key!r}; choose one of "
                f"{', '.join(sorted(EMBEDDED_MODELS))} or a model folder"
            )
        return key, prepare_model(key), EMBEDDED_MODELS[key].needs_bos
    folder = Path(base)
    if not (folder / "config.json").exists():
        raise UserError(f"--base {base}: not 'embedded' and not a model folder with config.json")
    return str(folder.resolve()), folder, True


def run_sft(
    run_dirs: list[Path],
    base: str,
    out: Path,
    config: TrainConfig,
    *,
    resume: bool,
    profile: str = "compact",
    init_from: Path | None = None,
) -> Path:
    import torch

    from medagent.train.adapter import AdapterInfo, save_adapter
    from medagent.train.examples import build_examples
    from medagent.train.sft import CHECKPOINT_DIR, load_model, prepare_data, train, with_lora

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    checkpoint = out / CHECKPOINT_DIR
    if out.exists() and any(out.iterdir()) and not resume:
        raise UserError(f"{out} is not empty: give --resume to continue its run, or a new --out")
    if resume and not (checkpoint / "adapter_config.json").exists():
        raise UserError(f"--resume: {out} holds no checkpoint ({checkpoint})")
    name, folder, needs_bos = base_folder(base)
    if init_from is not None:
        check_init_adapter(init_from, name, profile)
    examples, summary = build_examples(run_dirs, profile=profile)  # type: ignore[arg-type]
    tokenizer, model = load_model(folder, config)
    data = prepare_data(tokenizer, examples, config, needs_bos=needs_bos)
    out.mkdir(parents=True, exist_ok=True)
    typer.echo(
        f"{summary.tasks} tasks, {summary.examples} steps from {len(run_dirs)} run(s); "
        f"{data.steps_kept} steps in {len(data.train)} training sequences (+{len(data.validation)} held out), "
        f"{data.steps_dropped_long} steps over --max-tokens {config.max_tokens}, "
        f"{summary.dropped_steps} steps whose result the agent would not see in full"
    )
    # --resume: the run's own checkpoint (weights, optimizer, step); --init-from: another adapter's weights, a new run
    peft_model = with_lora(model, config, checkpoint if resume else init_from)
    figures = train(peft_model, data, config, out, resume=resume)
    info = AdapterInfo(
        base=name,
        prompt_profile=profile,
        data=summary,
        training={
            "command": "medagent train sft " + " ".join(sys.argv[3:]) if sys.argv[1:3] == ["train", "sft"] else None,
            "config": config.__dict__,
            "init_from": init_from_record(init_from),
            "steps_kept": data.steps_kept,
            "steps_dropped_long": data.steps_dropped_long,
            **data.stats,
            **figures,
            "machine": f"{platform.machine()} {torch.get_num_threads()} threads {config.device}",
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    save_adapter(peft_model, out, info)
    typer.echo(json.dumps(figures))
    return out


def check_init_adapter(folder: Path, base: str, profile: str) -> None:
    """``--init-from``: an adapter folder trained on the same base model with the same prompt profile (UserError)."""
    from medagent.models.adapter import read_adapter_info
    from medagent.models.base import ModelError

    try:
        info = read_adapter_info(folder)
    except ModelError as exc:
        raise UserError(f"--init-from: {exc}") from None
    if info.base != base:
        raise UserError(f"--init-from {folder}: trained on {info.base}, not on --base {base}")
    if (info.prompt_profile or "full") != profile:
        raise UserError(
            f"--init-from {folder}: trained with --prompt-profile {info.prompt_profile or 'full'}, not {profile}"
        )


def init_from_record(folder: Path | None) -> dict[str, str] | None:
    """What a continued run started from (the adapter folder and its data hash), for medagent-adapter.json."""
    if folder is None:
        return None
    from medagent.models.adapter import read_adapter_info

    info = read_adapter_info(folder)
    return {
        "folder": str(folder),
        "data_sha256": info.data.sha256 if info.data else "",
        "finished": str(info.training.get("finished", "")),
    }


@train_app.command("sft")
def sft(
    from_runs: Annotated[
        list[Path], typer.Option("--from", help="Run folder(s) of medagent bench run (passed tasks are used).")
    ],
    out: Annotated[Path, typer.Option(help="The adapter folder to write.")],
    base: Annotated[
        str, typer.Option(help="'embedded' (Gemma 3 270M) or a Hugging Face model folder (MedGemma).")
    ] = "embedded",
    steps: Annotated[int, typer.Option(min=1)] = TrainConfig.steps,
    lr: Annotated[float, typer.Option()] = TrainConfig.lr,
    rank: Annotated[int, typer.Option(min=1)] = TrainConfig.rank,
    max_tokens: Annotated[
        int, typer.Option(min=64, help="Longest training sequence; longer steps are dropped.")
    ] = TrainConfig.max_tokens,
    seed: Annotated[int, typer.Option()] = TrainConfig.seed,
    checkpoint_every: Annotated[int, typer.Option(min=1)] = TrainConfig.checkpoint_every,
    validate_every: Annotated[
        int, typer.Option(min=1, help="Steps between validation losses (and at the end).")
    ] = TrainConfig.validate_every,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from --out's checkpoint.")] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Start from this adapter folder's weights (e.g. the packaged "
            "one) instead of a new LoRA; a fresh optimizer and schedule."
        ),
    ] = None,
    prompt_profile: Annotated[str, typer.Option(help="full or compact.")] = "compact",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = TrainConfig.device,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 weights (GPU).")] = TrainConfig.bf16,
    gradient_checkpointing: Annotated[
        bool, typer.Option("--gradient-checkpointing")
    ] = TrainConfig.gradient_checkpointing,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = TrainConfig.threads,
) -> None:
    """Fine-tune a LoRA adapter on the passed trajectories of scored runs (dev split only)."""
    from medagent.agent.prompts import PROMPT_PROFILES

    try:
        if prompt_profile not in PROMPT_PROFILES:
            raise UserError(f"--prompt-profile {prompt_profile!r}: choose one of {', '.join(PROMPT_PROFILES)}")
        config = TrainConfig(
            steps=steps,
            lr=lr,
            rank=rank,
            alpha=2 * rank,
            max_tokens=max_tokens,
            seed=seed,
            checkpoint_every=checkpoint_every,
            validate_every=validate_every,
            device=device,
            bf16=bf16,
            gradient_checkpointing=gradient_checkpointing,
            threads=threads,
        )
        run_sft(from_runs, base, out, config, resume=resume, profile=prompt_profile, init_from=init_from)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
