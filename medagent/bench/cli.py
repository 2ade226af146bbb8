"""``medagent bench run|rescore|report``: scored runs, re-grading saved runs, the HTML report."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medagent.bench.executors import make_executor
from medagent.bench.model_check import check_model_reachable
from medagent.bench.results import ResultsLog
from medagent.bench.runner import (
    DEFAULT_MAX_MODEL_ERRORS,
    RESULTS_FILE,
    SUMMARY_FILE,
    RunDirError,
    run_benchmark,
    write_json_atomic,
)
from medagent.bench.scenario_sets import (
    DEFAULT_SET,
    ScenarioSetError,
    default_scenarios_dir,
    open_set,
    set_dir,
    set_hash,
)
from medagent.bench.summary import summarize
from medagent.config import UserError, get_settings
from medagent.models.base import ModelError
from medagent.tools.tool_sets import TOOLS_HELP, tool_names

bench_app = typer.Typer(help="Scored benchmark runs: run, rescore, report.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

DEFAULT_MODEL_TIMEOUT_S = 300.0
RUN_STOPPED_EXIT = 3  # the run stopped because its model failed (2: bad input)
CODE_POLICIES = ("oracle", "oracle-by-name", "always-no", "do-nothing", "always-act", "write-twice", "wrong-patient", "none-answerer",
                 "chart-blind")


def make_solver(agent: str, model: str, model_name: str | None, max_steps: int | None,
                set_folder: Path | None = None, tool_names: list[str] | None = None,
                prompt_profile: str | None = None, model_timeout: float | None = None) -> Any:
    """The solver for ``--agent``: the LangGraph agent (with ``tool_names``: only those tools), the whole-record
    baseline, or a code policy. ``model_timeout``: seconds one model call may take (its retries included)."""
    if tool_names is not None and agent != "agent":
        raise UserError(f"--tools applies to --agent agent only ({agent} does not choose tools)")
    if agent in CODE_POLICIES:
        from medagent.bench.policies import make_policy

        return make_policy(agent, set_folder)
    from medagent.agent.state import Limits
    from medagent.bench.endpoints import load_endpoints
    from medagent.bench.solvers import AgentSolver

    try:
        backend = load_endpoints(model, model_name)
    except ModelError as exc:
        if exc.kind != "config":
            raise
        raise UserError(f"--model {model}: {exc}") from None
    label = model_name or model
    limits = Limits(**({"max_steps": max_steps} if max_steps else {}), model_call_timeout_s=model_timeout)
    if agent == "whole-record":
        from medagent.bench.whole_record import WholeRecordSolver

        return WholeRecordSolver(backend, model=label, model_call_timeout_s=model_timeout)
    if agent == "agent":
        return AgentSolver(backend, model=label, limits=limits, tool_names=tool_names, prompt_profile=prompt_profile)
    raise typer.BadParameter(f"unknown agent {agent!r}; choose agent, whole-record or one of {', '.join(CODE_POLICIES)}")


async def check_servers(solver: Any, fhir_urls: list[str] | None) -> None:
    """The run's model server and standard FHIR servers answer (UserError naming the option otherwise)."""
    from medagent.fhir.client import check_fhir_server
    from medagent.fhir.errors import FhirClientError

    await check_model_reachable(solver)
    for url in fhir_urls or []:
        try:
            await check_fhir_server(url)
        except FhirClientError as exc:
            raise UserError(f"--fhir-url {url}: the FHIR server does not answer ({exc}); nothing was run") from None


def check_prompt_profile(profile: str | None) -> None:
    """--prompt-profile must name a profile of medagent.agent.prompts (UserError otherwise)."""
    from medagent.agent.prompts import PROMPT_PROFILES

    if profile is not None and profile not in PROMPT_PROFILES:
        raise UserError(f"--prompt-profile {profile!r}: choose one of {', '.join(PROMPT_PROFILES)}")


SET_FILE = "scenario_set.json"
SET_HELP = "Frozen scenario set under scenarios/: v1 or v2."


def record_set(out: Path, name: str, content_hash: str, folder: Path, **choice: Any) -> None:
    """``scenario_set.json`` in the run folder: which set (name, content hash, folder) and which part of it ran."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SET_FILE
    info = {"set": name, "content_hash": content_hash, "folder": str(folder), **choice}
    if path.exists():
        before = json.loads(path.read_text())
        if before.get("content_hash") != content_hash:
            raise RunDirError(f"{out} holds a run on set {before.get('set')} ({str(before.get('content_hash'))[:16]}), "
                              f"not {name} ({content_hash[:16]}): choose a new --out")
        if "tool_names" in before and "tool_names" in info and before["tool_names"] != info["tool_names"]:
            raise RunDirError(f"{out} holds a run with --tools {before.get('tools')}, not {info.get('tools')}: "
                              "choose a new --out")
    write_json_atomic(path, info)


def run_set_dir(run_dir: Path) -> Path:
    """The set a run used (its ``scenario_set.json``; runs from before it: the default set)."""
    path = run_dir / SET_FILE
    if not path.exists():
        return default_scenarios_dir()
    info = json.loads(path.read_text())
    folder = Path(info["folder"])
    return folder if (folder / "manifest.json").exists() else set_dir(info["set"])


def print_summary(summary: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for column in ("category", "n", "acc %", "pass^k %", "steps", "tools", "tok in", "tok out", "p50 s", "p95 s",
                   "failures"):
        table.add_column(column, justify="left" if column in ("category", "failures") else "right",
                         no_wrap=column != "failures")

    def row(name: str, group: dict[str, Any], style: str | None = None) -> None:
        pass_k = group["pass_hat_k"]
        k = max(pass_k, key=int) if pass_k else None
        table.add_row(
            name, str(group["n"]), f"{group['accuracy']:.1f}", f"{pass_k[k]:.1f} (k={k})" if k else "-",
            f"{group['mean_steps']:.1f}", f"{group['mean_tool_calls']:.1f}", f"{group['prompt_tokens']:,}",
            f"{group['completion_tokens']:,}", f"{group['latency_p50_s']:.2f}", f"{group['latency_p95_s']:.2f}",
            ", ".join(f"{c} {n}" for c, n in sorted(group["failures"].items())) or "-", style=style,
        )

    for name, group in summary["by_category"].items():
        row(name, group)
    row("overall", summary["overall"], style="bold")
    console.print(table)


@bench_app.command("run")
def bench_run(
    suite: Annotated[str, typer.Option(help="ehrqa, agentic or all.")] = "all",
    split: Annotated[str, typer.Option(help="dev, test or all.")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="At most N tasks, taken round-robin across categories.")] = None,
    agent: Annotated[str, typer.Option(help="agent, whole-record, or a code policy: " + ", ".join(CODE_POLICIES))] = "agent",
    model: Annotated[str | None, typer.Option(help="'embedded' or an OpenAI-compatible base URL (vLLM); several "
                                              "comma-separated URLs are replicas of one model, sharing the load "
                                              "(each call to the one with the fewest in flight).")] = None,
    model_name: Annotated[str | None, typer.Option(help="Model name served at --model (e.g. medgemma-27b).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks in flight, each on its own FHIR server.")] = 1,
    trials: Annotated[int, typer.Option(min=1, help="Repeats per task (pass^k).")] = 1,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Tool calls per task before status step_limit.")] = None,
    out: Annotated[Path, typer.Option(help="Run folder: results.jsonl, summary.json, report.html.")] = Path("runs/latest"),
    resume: Annotated[bool, typer.Option("--resume", help="Finish a killed run, skipping finished tasks.")] = False,
    scenario_set: Annotated[str, typer.Option("--set", help=SET_HELP)] = DEFAULT_SET,
    tier: Annotated[str, typer.Option(help="core, hard or all (v1 has only core).")] = "all",
    scenarios: Annotated[Path | None, typer.Option(help="A scenario set folder (overrides --set).")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html at the end.")] = True,
    tools: Annotated[str | None, typer.Option(help=TOOLS_HELP + " Default: all.")] = None,
    fhir_url: Annotated[str | None, typer.Option(
        "--fhir-url", help="Score on standard FHIR server(s) instead of embedded ones: comma-separated base URLs, "
        "one task at a time each, diff from _history and run tags, reset by before-images.")] = None,
    executor: Annotated[str, typer.Option(help="Where tasks run: local (this process) or ray (one actor per task "
                                               "in flight, each with its own FHIR server and solver).")] = "local",
    address: Annotated[str | None, typer.Option(help="--executor ray: a running Ray cluster ('auto' or "
                                                     "host:port); default: start a local one.")] = None,
    actor_slots: Annotated[int, typer.Option(min=1, help="--executor ray: FHIR servers (tasks in flight) per actor; "
                                                         "1: one actor per task in flight.")] = 1,
    prompt_profile: Annotated[str | None, typer.Option(
        help="System prompt: full or compact (default: the model's own, e.g. a trained adapter's; else full).")] = None,
    max_model_errors: Annotated[int, typer.Option(
        min=1, help="Consecutive tasks ended by a model error that stop the run (the rest are not run, not scored; "
                    "--resume continues).")] = DEFAULT_MAX_MODEL_ERRORS,
    model_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds one model call may take, its retries included; a call with no answer by then "
                        "stops the run.")] = DEFAULT_MODEL_TIMEOUT_S,
) -> None:
    """Run scored tasks: each on a freshly reset FHIR server, graded by answer and server diff."""
    settings = get_settings(model=model, model_name=model_name)
    try:
        check_prompt_profile(prompt_profile)
        names = _tool_set(tools) if tools is not None else None
        chosen = open_set(scenarios or set_dir(scenario_set))
        tasks = chosen.load(suite, split, tier, limit)
        solver = make_solver(agent, settings.model, settings.model_name, max_steps, chosen.folder, names, prompt_profile,
                             model_timeout)
        fhir_urls = [u.strip() for u in fhir_url.split(",") if u.strip()] if fhir_url is not None else None
        if fhir_url is not None and not fhir_urls:
            raise UserError("--fhir-url is empty: give one or more comma-separated FHIR base URLs")
        asyncio.run(check_servers(solver, fhir_urls))  # before anything is written
        runs_on = make_executor(executor, address=address, slots_per_actor=actor_slots, solver_factory=functools.partial(
            make_solver, agent, settings.model, settings.model_name, max_steps, chosen.folder, names, prompt_profile,
            model_timeout))
        content_hash = set_hash(chosen.folder)
        used = {"tools": tools or "all", "tool_names": names or tool_names("all")} if agent == "agent" else {}
        record_set(out, chosen.name, content_hash, chosen.folder, suite=suite, split=split, tier=tier, limit=limit,
                   **used)
        summary = asyncio.run(run_benchmark(tasks, solver, out_dir=out, home=settings.home, concurrency=concurrency,
                                            trials=trials, resume=resume, set_hash=content_hash, fhir_urls=fhir_urls,
                                            executor=runs_on, max_model_errors=max_model_errors))
    except (ScenarioSetError, UserError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    print_summary(summary, f"{solver.name} ({solver.model or 'code policy'}) on {suite}/{split}")
    console.print(f"overall accuracy: {summary['overall']['accuracy']:.1f}% (n={summary['overall']['n']})")
    console.print(f"results: {out / RESULTS_FILE}\nsummary: {out / SUMMARY_FILE}")
    if report:
        _write_report(out)
    stopped = summary.get("stopped")
    if stopped:
        err_console.print(f"[bold red]run stopped:[/] {escape(stopped['reason'])}; {stopped['not_run']} of "
                          f"{stopped['tasks']} tasks not run (not scored). Fix the model, then continue with "
                          "--resume (the same command).", soft_wrap=True)
        raise typer.Exit(RUN_STOPPED_EXIT)


@bench_app.command("baselines")
def bench_baselines(
    scenario_set: Annotated[str, typer.Option("--set", help=SET_HELP)] = DEFAULT_SET,
    split: Annotated[str, typer.Option(help="dev, test or all (the chart-blind prior learns from dev).")] = "test",
    out: Annotated[Path, typer.Option(help="Folder: one run folder per policy, baselines.json, baselines.md.")] = Path(
        "runs/baselines"),
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks in flight, each on its own FHIR server.")] = 2,
    policies: Annotated[str, typer.Option(help="Comma-separated baselines to run.")] = ",".join(
        ("oracle", "do-nothing", "always-act", "chart-blind", "none-answerer")),
    scenarios: Annotated[Path | None, typer.Option(help="A scenario set folder (overrides --set).")] = None,
) -> None:
    """Run the null baselines (oracle, do-nothing, always-act, chart-blind prior, none-answerer) through the real
    runner and print one table per suite x tier x category."""
    from medagent.bench.baselines import baseline_table, render_markdown
    from medagent.bench.policies import make_policy

    settings = get_settings()
    try:
        chosen = open_set(scenarios or set_dir(scenario_set))
        tasks = chosen.load("all", split, "all")
        content_hash = set_hash(chosen.folder)
        records: dict[str, list[Any]] = {}
        for name in [p.strip() for p in policies.split(",") if p.strip()]:
            solver = make_policy(name, chosen.folder)
            run_dir = out / name
            record_set(run_dir, chosen.name, content_hash, chosen.folder, suite="all", split=split, tier="all",
                       limit=None)
            asyncio.run(run_benchmark(tasks, solver, out_dir=run_dir, home=settings.home, concurrency=concurrency,
                                      resume=True, set_hash=content_hash, show_progress=False))
            wanted = {s.id for s in tasks}
            records[name] = [r for r in ResultsLog(run_dir / RESULTS_FILE).load() if r.scenario_id in wanted]
            console.print(f"{name}: {sum(r.passed for r in records[name])}/{len(records[name])} passed")
    except (ScenarioSetError, UserError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    table = baseline_table(records, tasks)
    title = f"Baselines on {chosen.name} ({content_hash[:16]}), split {split}"
    markdown = render_markdown(table, title)
    write_json_atomic(out / "baselines.json", {"set": chosen.name, "content_hash": content_hash, "split": split,
                                               "table": table})
    (out / "baselines.md").write_text(markdown + "\n", encoding="utf-8")
    console.print(markdown, markup=False, highlight=False)
    console.print(f"wrote {out / 'baselines.md'} and {out / 'baselines.json'}")


@bench_app.command("rescore")
def bench_rescore(run_dir: Annotated[Path, typer.Argument(help="A run folder with results.jsonl.")]) -> None:
    """Re-grade saved trajectories with the current graders (answers and diffs are saved per task)."""
    from medagent.bench.rescore import rescore_run

    try:
        summary, changed = rescore_run(run_dir, run_set_dir(run_dir))
    except (ScenarioSetError, RunDirError, FileNotFoundError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    print_summary(summary, f"rescored {run_dir}")
    console.print(f"{changed} verdict(s) changed; overall accuracy {summary['overall']['accuracy']:.1f}%")


@bench_app.command("report")
def bench_report(run_dir: Annotated[list[Path], typer.Argument(help="Run folder(s); several are shown side by side.")]) -> None:
    """Write a self-contained HTML report (no CDN) with plots and a trajectory viewer."""
    _write_report(*run_dir)


def _write_report(*run_dirs: Path) -> None:
    try:
        from medagent.bench.report import write_report
    except ImportError:
        return
    try:
        path = write_report(list(run_dirs))
    except (RunDirError, FileNotFoundError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"report: {path}")


def load_summary(run_dir: Path) -> dict[str, Any]:
    log = ResultsLog(run_dir / RESULTS_FILE)
    if not log.path.exists():
        raise RunDirError(f"{run_dir} holds no {RESULTS_FILE}")
    summary = summarize(log.load())
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    return summary


def _tool_set(spec: str) -> list[str]:
    """``--tools``: a named set or a list of tool names; a bad value is the user's mistake, named."""
    try:
        return tool_names(spec)
    except ValueError as exc:
        raise UserError(f"--tools: {exc}") from None
