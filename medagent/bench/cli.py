"""``medagent bench run|rescore|report|compare``: scored runs, re-grading saved runs, the HTML report, two runs
compared task by task."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medagent.bench.baseline_table import BASELINES
from medagent.bench.results import ResultsLog
from medagent.bench.run_folder import record_set, run_set_dir
from medagent.bench.runner import (
    DEFAULT_MAX_ERROR_SHARE,
    DEFAULT_MAX_MODEL_ERRORS,
    RESULTS_FILE,
    SUMMARY_FILE,
    RunDirError,
    RunFailed,
    run_async,
    run_benchmark,
    write_json_atomic,
)
from medagent.bench.scenario_sets import DEFAULT_SET, ScenarioSetError, open_set, set_dir, set_hash
from medagent.bench.scored_run import DEFAULT_MODEL_TIMEOUT_S, RunChoice, ScoredRun, run_scored
from medagent.bench.solvers.catalog import CODE_SOLVER_NAMES, make_code_solver
from medagent.bench.summary import (
    checkpoint_cell,
    has_checkpoints,
    pass_at_1_cell,
    pass_hat_k_cell,
)
from medagent.config import UserError, get_settings
from medagent.tools.tool_sets import TOOLS_HELP

bench_app = typer.Typer(help="Scored benchmark runs: run, rescore, report, compare.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

RUN_STOPPED_EXIT = 3  # the run stopped because its model failed (2: bad input)
SET_HELP = "Frozen scenario set under scenarios/: v1, v2 or v3."


def print_summary(summary: dict[str, Any], title: str) -> None:
    checkpoints = has_checkpoints(summary)
    columns = (
        "category",
        "n",
        "pass@1 [95% CI]",
        "pass^k [95% CI]",
        *(("checkpoints",) if checkpoints else ()),
        "steps",
        "tools",
        "tok in",
        "tok out",
        "p50 s",
        "p95 s",
        "failures",
    )
    table = Table(title=title)
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("category", "failures") else "right", no_wrap=column != "failures"
        )

    def row(name: str, group: dict[str, Any], style: str | None = None) -> None:
        table.add_row(
            name,
            str(group["n"]),
            escape(pass_at_1_cell(group)),
            escape(pass_hat_k_cell(group)),
            *((escape(checkpoint_cell(group)),) if checkpoints else ()),
            f"{group['mean_steps']:.1f}",
            f"{group['mean_tool_calls']:.1f}",
            f"{group['prompt_tokens']:,}",
            f"{group['completion_tokens']:,}",
            f"{group['latency_p50_s']:.2f}",
            f"{group['latency_p95_s']:.2f}",
            ", ".join(f"{c} {n}" for c, n in sorted(group["failures"].items())) or "-",
            style=style,
        )

    for name, group in summary["by_category"].items():
        row(name, group)
    row("overall", summary["overall"], style="bold")
    console.print(table)
    if "uncertainty" in summary:
        method = summary["uncertainty"]
        console.print(
            f"[dim]95% intervals: bootstrap over tasks clustered by patient, {method['resamples']:,} "
            f"resamples, seed {method['seed']} (medagent/bench/README.md)[/]"
        )


@bench_app.command("run")
def bench_run(
    suite: Annotated[str, typer.Option(help="ehrqa, agentic or all.")] = "all",
    split: Annotated[str, typer.Option(help="dev, test or all.")] = "test",
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most N tasks, taken round-robin across categories.")
    ] = None,
    agent: Annotated[
        str, typer.Option(help="agent, whole-record, or a code solver: " + ", ".join(CODE_SOLVER_NAMES))
    ] = "agent",
    model: Annotated[
        str | None,
        typer.Option(
            help="'embedded' or an OpenAI-compatible base URL (vLLM); several "
            "comma-separated URLs are replicas of one model, sharing the load "
            "(each call to the one with the fewest in flight)."
        ),
    ] = None,
    model_name: Annotated[str | None, typer.Option(help="Model name served at --model (e.g. medgemma-27b).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks in flight, each on its own FHIR server.")] = 1,
    trials: Annotated[int, typer.Option(min=1, help="Repeats per task (pass^k).")] = 1,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Tool calls per task before status step_limit.")] = None,
    out: Annotated[Path, typer.Option(help="Run folder: results.jsonl, summary.json, report.html.")] = Path(
        "runs/latest"
    ),
    resume: Annotated[bool, typer.Option("--resume", help="Finish a killed run, skipping finished tasks.")] = False,
    scenario_set: Annotated[str, typer.Option("--set", help=SET_HELP)] = DEFAULT_SET,
    tier: Annotated[str, typer.Option(help="core, hard, workflow or all (v1 has only core).")] = "all",
    scenarios: Annotated[Path | None, typer.Option(help="A scenario set folder (overrides --set).")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html at the end.")] = True,
    tools: Annotated[str | None, typer.Option(help=TOOLS_HELP + " Default: all.")] = None,
    fhir_url: Annotated[
        str | None,
        typer.Option(
            "--fhir-url",
            help="Score on standard FHIR server(s) instead of embedded ones: comma-separated base URLs, "
            "one task at a time each, diff from _history and run tags, reset by before-images.",
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            help="Where tasks run: local (this process) or ray (actors over the "
            "cluster, each with its own solver and FHIR server)."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="--executor ray: a running Ray cluster ('auto' or host:port); default: start a local one."),
    ] = None,
    actor_slots: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="--executor ray: tasks in flight per actor (task "
            "databases of its FHIR server; default 16); 1: one "
            "actor per task in flight.",
        ),
    ] = None,
    prompt_profile: Annotated[
        str | None,
        typer.Option(
            help="System prompt: full or compact (default: the model's own, e.g. a trained adapter's; else full)."
        ),
    ] = None,
    max_model_errors: Annotated[
        int,
        typer.Option(
            min=1,
            help="Consecutive tasks ended by a model error that stop the run (the rest are not run, not scored; "
            "--resume continues).",
        ),
    ] = DEFAULT_MAX_MODEL_ERRORS,
    model_timeout: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Seconds one model call may take, its retries included; a call with no answer by then stops the run.",
        ),
    ] = DEFAULT_MODEL_TIMEOUT_S,
    max_error_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="More tasks than this share ending in error fails the run (exit 1, summary.json "
            "marked failed, no score).",
        ),
    ] = DEFAULT_MAX_ERROR_SHARE,
) -> None:
    """Run scored tasks: each on a freshly reset FHIR server, graded by answer and server diff."""
    settings = get_settings(model=model, model_name=model_name)
    fhir_urls = [u.strip() for u in fhir_url.split(",") if u.strip()] if fhir_url is not None else None
    choice = RunChoice(
        out=out,
        model=settings.model,
        model_name=settings.model_name,
        suite=suite,
        split=split,
        tier=tier,
        limit=limit,
        agent=agent,
        concurrency=concurrency,
        trials=trials,
        max_steps=max_steps,
        resume=resume,
        scenario_set=scenario_set,
        scenarios=scenarios,
        tools=tools,
        fhir_urls=fhir_urls,
        executor=executor,
        address=address,
        actor_slots=actor_slots,
        prompt_profile=prompt_profile,
        max_model_errors=max_model_errors,
        model_timeout=model_timeout,
        max_error_share=max_error_share,
    )
    try:
        run = run_scored_or_exit(choice, settings.home)
    except (ScenarioSetError, UserError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    show_run(run, out, f"{suite}/{split}", report=report)


def run_scored_or_exit(choice: RunChoice, home: Path) -> ScoredRun:
    """Run ``choice``; a run with too many tasks in error says why and exits 1 (no score printed)."""
    try:
        return run_async(run_scored(choice, home=home))
    except RunFailed as exc:
        err_console.print(f"[bold red]run failed, no score:[/] {escape(str(exc))}")
        err_console.print(f"errors by type: {exc.failed['by_type']}; summary: {choice.out / SUMMARY_FILE}")
        raise typer.Exit(1) from None


def show_run(run: ScoredRun, out: Path, scope: str, *, report: bool) -> None:
    """Print a finished run's table and files (and write its report)."""
    print_summary(run.summary, f"{run.solver.name} ({run.solver.model or 'code solver'}) on {scope}")
    console.print(
        f"overall accuracy: {escape(pass_at_1_cell(run.summary['overall']))} (n={run.summary['overall']['n']})"
    )
    console.print(f"results: {out / RESULTS_FILE}\nsummary: {out / SUMMARY_FILE}")
    if report:
        write_report_or_exit(out)
    stopped = run.summary.get("stopped")
    if stopped:
        err_console.print(
            f"[bold red]run stopped:[/] {escape(stopped['reason'])}; {stopped['not_run']} of "
            f"{stopped['tasks']} tasks not run (not scored). Fix the model, then continue with "
            "--resume (the same command).",
            soft_wrap=True,
        )
        raise typer.Exit(RUN_STOPPED_EXIT)


@bench_app.command("baselines")
def bench_baselines(
    scenario_set: Annotated[str, typer.Option("--set", help=SET_HELP)] = DEFAULT_SET,
    split: Annotated[str, typer.Option(help="dev, test or all (the chart-blind prior learns from dev).")] = "test",
    out: Annotated[Path, typer.Option(help="Folder: one run folder per policy, baselines.json, baselines.md.")] = Path(
        "runs/baselines"
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks in flight, each on its own FHIR server.")] = 2,
    policies: Annotated[str, typer.Option(help="Comma-separated baselines to run.")] = ",".join(BASELINES),
    scenarios: Annotated[Path | None, typer.Option(help="A scenario set folder (overrides --set).")] = None,
    tier: Annotated[str, typer.Option(help="core, hard, workflow or all (v1 has only core).")] = "all",
    categories: Annotated[
        str | None, typer.Option(help="Comma-separated categories to run (default: every one); the tables cover them.")
    ] = None,
) -> None:
    """Run the null baselines (oracle, do-nothing, always-act, chart-blind prior, none-answerer) and one policy per
    measured shortcut (each on the categories it targets) through the real runner; print the table per suite x tier
    x category and the table of items passed / binary decisions right."""
    from medagent.bench.baseline_table import baseline_table, render_markdown
    from medagent.bench.decision_table import decision_summary, render_decision_table

    settings = get_settings()
    try:
        chosen = open_set(scenarios or set_dir(scenario_set))
        tasks = chosen.load("all", split, tier)
        if categories is not None:
            wanted_categories = {c.strip() for c in categories.split(",") if c.strip()}
            unknown = wanted_categories - {s.category for s in tasks}
            if unknown:
                raise UserError(f"no {split} task of category {', '.join(sorted(unknown))} in {chosen.name}")
            tasks = [s for s in tasks if s.category in wanted_categories]
        content_hash = set_hash(chosen.folder)
        records: dict[str, list[Any]] = {}
        for name in [p.strip() for p in policies.split(",") if p.strip()]:
            solver = make_code_solver(name, chosen.folder)
            applies = getattr(solver, "applies", None)  # a shortcut policy runs on the categories it targets
            mine = [s for s in tasks if applies is None or applies(s)]
            run_dir = out / name
            record_set(
                run_dir, chosen.name, content_hash, chosen.folder, suite="all", split=split, tier=tier, limit=None
            )
            run_async(
                run_benchmark(
                    mine,
                    solver,
                    out_dir=run_dir,
                    home=settings.home,
                    concurrency=concurrency,
                    resume=True,
                    set_hash=content_hash,
                    show_progress=False,
                )
            )
            wanted = {s.id for s in mine}
            records[name] = [r for r in ResultsLog(run_dir / RESULTS_FILE).load() if r.scenario_id in wanted]
            console.print(f"{name}: {sum(r.passed for r in records[name])}/{len(records[name])} passed")
    except (ScenarioSetError, UserError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except RunFailed as exc:
        err_console.print(f"[bold red]run failed, no table:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    table = baseline_table(records, tasks)
    title = f"Baselines on {chosen.name} ({content_hash[:16]}), split {split}" + (
        "" if tier == "all" else f", tier {tier}"
    )
    markdown = render_markdown(table, title)
    decided = decision_summary(records, tasks)
    by_decision = render_decision_table(
        decided, f"Baselines by decision on {chosen.name} ({content_hash[:16]}), split {split}"
    )
    write_json_atomic(
        out / "baselines.json",
        {"set": chosen.name, "content_hash": content_hash, "split": split, "table": table, "decisions": decided},
    )
    (out / "baselines.md").write_text(markdown + "\n\n" + by_decision + "\n", encoding="utf-8")
    console.print(markdown, markup=False, highlight=False)
    console.print(by_decision, markup=False, highlight=False)
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
    console.print(f"{changed} verdict(s) changed; overall accuracy {escape(pass_at_1_cell(summary['overall']))}")


@bench_app.command("report")
def bench_report(
    run_dir: Annotated[list[Path], typer.Argument(help="Run folder(s); several are shown side by side.")],
) -> None:
    """Write a self-contained HTML report (no CDN) with plots and a trajectory viewer."""
    write_report_or_exit(*run_dir)


@bench_app.command("compare")
def bench_compare(
    run_a: Annotated[Path, typer.Argument(help="Run folder A.")],
    run_b: Annotated[Path, typer.Argument(help="Run folder B (the same scenarios, matched by id and trial).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare two runs task by task: both right, only A, only B, both wrong; A - B with a 95% interval
    (bootstrap clustered by patient) and McNemar's exact p."""
    from medagent.bench.comparison import PAIRED_COLUMNS, compare_runs, paired_cells
    from medagent.bench.report import load_run

    try:
        (label_a, records_a), (label_b, records_b) = load_run(run_a), load_run(run_b)
        comparison = compare_runs(records_a, records_b, run_a=label_a, run_b=label_b)
    except UserError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print(comparison.model_dump_json(indent=2))
        return
    table = Table(title=f"A = {label_a} · B = {label_b}")
    for column in ("category", *PAIRED_COLUMNS):
        table.add_column(column, justify="left" if column == "category" else "right", no_wrap=True)
    for name, score in [*comparison.by_category.items(), ("overall", comparison.overall)]:
        table.add_row(name, *map(escape, paired_cells(score)), style="bold" if name == "overall" else None)
    console.print(table)
    console.print(f"{comparison.shared_line()} (--json lists them)")


def write_report_or_exit(*run_dirs: Path) -> None:
    """Write the HTML report of these run folders (nothing without the report's dependencies; exit 2 on a bad
    folder)."""
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
