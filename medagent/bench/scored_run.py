"""One scored run as ``medagent bench run`` (and ``medagent quickstart``) describe it: the set and its slice, the
solver, where the tasks run, the run folder. The CLI parses flags into a :class:`RunChoice` and calls
:func:`run_scored`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medagent.bench.executors import make_executor
from medagent.bench.model_check import check_model_reachable
from medagent.bench.run_folder import record_set
from medagent.bench.runner import DEFAULT_MAX_ERROR_SHARE, DEFAULT_MAX_MODEL_ERRORS, run_benchmark
from medagent.bench.scenario_sets import DEFAULT_SET, open_set, set_dir, set_hash
from medagent.bench.solvers import Solver
from medagent.bench.solvers.catalog import make_solver
from medagent.config import UserError
from medagent.tools.tool_sets import tool_names

__all__ = ["DEFAULT_MODEL_TIMEOUT_S", "RunChoice", "ScoredRun", "check_prompt_profile", "check_servers", "run_scored"]

DEFAULT_MODEL_TIMEOUT_S = 300.0  # seconds one model call may take, its retries included


@dataclass(frozen=True)
class RunChoice:
    """What to run (the options of ``medagent bench run``)."""

    out: Path
    model: str
    model_name: str | None = None
    suite: str = "all"
    split: str = "test"
    tier: str = "all"
    limit: int | None = None
    agent: str = "agent"
    concurrency: int = 1
    trials: int = 1
    max_steps: int | None = None
    resume: bool = False
    scenario_set: str = DEFAULT_SET
    scenarios: Path | None = None
    tools: str | None = None
    fhir_urls: list[str] | None = None
    executor: str = "local"
    address: str | None = None
    actor_slots: int | None = None
    prompt_profile: str | None = None
    max_model_errors: int = DEFAULT_MAX_MODEL_ERRORS
    model_timeout: float | None = DEFAULT_MODEL_TIMEOUT_S
    max_error_share: float = DEFAULT_MAX_ERROR_SHARE


@dataclass(frozen=True)
class ScoredRun:
    """The run's summary and the solver that ran it."""

    summary: dict[str, Any]
    solver: Solver


def check_prompt_profile(profile: str | None) -> None:
    """A prompt profile must be one of ``medagent.agent.prompts``' (UserError otherwise)."""
    from medagent.agent.prompts import PROMPT_PROFILES

    if profile is not None and profile not in PROMPT_PROFILES:
        raise UserError(f"--prompt-profile {profile!r}: choose one of {', '.join(PROMPT_PROFILES)}")


def chosen_tools(spec: str) -> list[str]:
    """``--tools``: a named set or a list of tool names; a bad value is the user's mistake, named."""
    try:
        return tool_names(spec)
    except ValueError as exc:
        raise UserError(f"--tools: {exc}") from None


async def check_servers(solver: Solver, fhir_urls: list[str] | None) -> None:
    """The run's model server and standard FHIR servers answer (UserError naming the option otherwise)."""
    from medagent.fhir.client import check_fhir_server
    from medagent.fhir.errors import FhirClientError

    await check_model_reachable(solver)
    for url in fhir_urls or []:
        try:
            await check_fhir_server(url)
        except FhirClientError as exc:
            raise UserError(f"--fhir-url {url}: the FHIR server does not answer ({exc}); nothing was run") from None


async def run_scored(choice: RunChoice, *, home: Path) -> ScoredRun:
    """Open the set, build the solver and executor, record the set in the run folder, run every task.

    Bad choices raise :class:`UserError` (or ``ScenarioSetError``) before anything is written; more tasks in
    error than ``max_error_share`` raise ``RunFailed`` (the summary is written, marked failed)."""
    check_prompt_profile(choice.prompt_profile)
    names = chosen_tools(choice.tools) if choice.tools is not None else None
    if choice.fhir_urls is not None and not choice.fhir_urls:
        raise UserError("--fhir-url is empty: give one or more comma-separated FHIR base URLs")
    chosen = open_set(choice.scenarios or set_dir(choice.scenario_set))
    tasks = chosen.load(choice.suite, choice.split, choice.tier, choice.limit)
    build = functools.partial(
        make_solver,
        choice.agent,
        choice.model,
        choice.model_name,
        choice.max_steps,
        chosen.folder,
        names,
        choice.prompt_profile,
        choice.model_timeout,
    )
    solver = build()
    await check_servers(solver, choice.fhir_urls)  # before anything is written
    runs_on = make_executor(
        choice.executor, address=choice.address, slots_per_actor=choice.actor_slots, solver_factory=build
    )
    content_hash = set_hash(chosen.folder)
    used = {"tools": choice.tools or "all", "tool_names": names or tool_names("all")} if choice.agent == "agent" else {}
    record_set(
        choice.out,
        chosen.name,
        content_hash,
        chosen.folder,
        suite=choice.suite,
        split=choice.split,
        tier=choice.tier,
        limit=choice.limit,
        **used,
    )
    summary = await run_benchmark(
        tasks,
        solver,
        out_dir=choice.out,
        home=home,
        concurrency=choice.concurrency,
        trials=choice.trials,
        resume=choice.resume,
        set_hash=content_hash,
        fhir_urls=choice.fhir_urls,
        executor=runs_on,
        max_model_errors=choice.max_model_errors,
        max_error_share=choice.max_error_share,
    )
    return ScoredRun(summary=summary, solver=solver)
