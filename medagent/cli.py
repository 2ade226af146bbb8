"""The ``medagent`` command line (typer + rich)."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medagent.config import Settings, UserError, get_settings
from medagent.data import BundleSourceError, iter_bundles
from medagent.fhir.bundles import as_upsert_transaction, count_resources
from medagent.fhir.client import FhirClient, check_fhir_server
from medagent.fhir.errors import FhirClientError, FhirNotFound
from medagent.fhir.ids import check_fhir_id
from medagent.models.base import ModelError
from medagent.serve.cds_hooks import DEFAULT_BUDGET_SECONDS
from medagent.tools.approval import APPROVAL_MODES
from medagent.tools.tool_sets import TOOLS_HELP
from medagent.vocabulary import parse_instant

app = typer.Typer(
    help="medagent: build, serve and score EHR agents on FHIR.", no_args_is_help=True, pretty_exceptions_enable=False
)
fhir_app = typer.Typer(help="The embedded FHIR R4 server and FHIR data loading.", no_args_is_help=True)
app.add_typer(fhir_app, name="fhir")

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn expected failures (bad paths or options, unreachable or refusing servers, a model address that
    does not work) into one clear line, exit 2. Other exceptions (a ValueError from a bug included) keep
    their traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, BundleSourceError, FhirClientError, OSError) as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except ModelError as exc:
            if exc.kind != "config":
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


FhirUrlOption = Annotated[
    str | None,
    typer.Option("--fhir-url", "--server", help="FHIR base URL (default: MEDAGENT_FHIR_URL or the embedded server)."),
]


@fhir_app.command("serve")
@user_errors
def fhir_serve(
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port on 127.0.0.1 (default 8321).")] = None,
    db: Annotated[Path | None, typer.Option(help="SQLite file (default ~/.medagent/fhir.sqlite).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Reject unknown search parameters with 400.")] = False,
    allow_reset: Annotated[
        bool, typer.Option("--allow-reset", help="Enable /$snapshot, /$reset, /$diff (scoring).")
    ] = False,
    no_load: Annotated[
        bool, typer.Option("--no-load", help="Do not load the default patients into an empty database.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MEDAGENT_FHIR_SERVER_TOKEN",
            show_default=False,
            help="Bearer token every request must carry (required beyond loopback; at least 16 characters).",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option("--allowed-host", help="Host header accepted besides loopback names (repeatable; '*': any)."),
    ] = None,
    exit_with_parent: Annotated[
        bool, typer.Option("--exit-with-parent", help="Exit when the process that started this one dies.")
    ] = False,
    query_seconds: Annotated[
        float | None,
        typer.Option("--query-seconds", min=0.001, help="Time limit of one database query (default 10 s)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="Server processes accepting on the one port, over the same database."),
    ] = 1,
    slots: Annotated[
        int,
        typer.Option("--slots", min=0, help="Serve this many task databases over --db (read-only), at /slots/0 ..."),
    ] = 0,
    slots_dir: Annotated[
        Path | None, typer.Option("--slots-dir", help="Where the task databases are kept (default: beside --db).")
    ] = None,
    smart_issuer: Annotated[
        str | None,
        typer.Option(
            help="Protect the server: require SMART JWT access tokens from this OAuth issuer (MEDAGENT_FHIR_SERVER_ISSUER)."
        ),
    ] = None,
    smart_audience: Annotated[
        str | None,
        typer.Option(help="The tokens' audience: this server's base URL as clients use it (default http://HOST:PORT)."),
    ] = None,
    smart_jwks_url: Annotated[
        str | None, typer.Option(help="The issuer's JWKS URL (default: from its OpenID discovery).")
    ] = None,
    smart_leeway: Annotated[
        float | None, typer.Option(min=0, max=300, help="Clock skew allowed on token expiry, seconds (default 10).")
    ] = None,
) -> None:
    """Start the embedded FHIR R4 server; an empty database is loaded with the 100 default patients."""
    from medagent.fhir.server.serve import access_token_policy, serve
    from medagent.request_guard import check_bind

    settings = get_settings(
        port=port,
        db=db,
        host=host,
        strict_search=strict or None,
        allow_reset=allow_reset or None,
        fhir_server_issuer=smart_issuer,
        fhir_server_audience=smart_audience,
        fhir_server_jwks_url=smart_jwks_url,
        fhir_server_leeway=smart_leeway,
    )
    bind_or_refuse(check_bind, settings.host, token)
    if db is not None:
        check_database_path(db)
    serve(
        settings.db_path,
        host=settings.host,
        port=settings.port,
        strict=settings.strict_search,
        allow_reset=settings.allow_reset,
        load_default=not no_load,
        report=lambda m: err_console.print(m),
        token=token,
        allowed_hosts=allowed_host,
        exit_with_parent=exit_with_parent,
        query_seconds=query_seconds,
        workers=workers,
        access_tokens=access_token_policy(settings),
        slots=slots,
        slots_dir=slots_dir,
    )


@fhir_app.command("jwks")
@user_errors
def fhir_jwks(
    key_file: Annotated[
        Path | None, typer.Option(help="The private key (PEM or JWK); default MEDAGENT_FHIR_KEY_FILE.")
    ] = None,
    key_id: Annotated[
        str | None, typer.Option(help="Its kid (default MEDAGENT_FHIR_KEY_ID, the JWK's kid or its thumbprint).")
    ] = None,
) -> None:
    """Print the public JWKS of a backend-services key: what you register with the authorization server."""
    from medagent.fhir.auth.keys import load_signing_key

    settings = get_settings(fhir_key_file=key_file, fhir_key_id=key_id)
    if settings.fhir_key_file is None:
        raise UserError("no key file: pass --key-file or set MEDAGENT_FHIR_KEY_FILE")
    print(json.dumps(load_signing_key(settings.fhir_key_file, kid=settings.fhir_key_id).public_jwks(), indent=2))


@fhir_app.command("load")
@user_errors
def fhir_load(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Bundle files, folders or ZIPs (default: the packaged patients).")
    ] = None,
    fhir_url: FhirUrlOption = None,
) -> None:
    """Load Synthea transaction bundles into a FHIR server (ids kept: entries become PUT Type/id)."""
    settings = get_settings(fhir_url=fhir_url)
    bundles = list(iter_bundles(paths or None))
    asyncio.run(_load(settings, bundles))


async def _load(settings: Settings, bundles: list[tuple[str, dict[str, Any]]]) -> None:
    started = time.perf_counter()
    total = 0
    async with FhirClient.from_settings(settings, timeout=max(settings.fhir_timeout, 120)) as client:
        for name, bundle in bundles:
            try:
                await client.transaction(as_upsert_transaction(bundle))
            except FhirClientError as exc:
                raise FhirClientError(f"{name}: {exc}") from exc
            total += count_resources(bundle)
    seconds = time.perf_counter() - started
    console.print(
        f"loaded {len(bundles)} bundles, {total} resources into {settings.effective_fhir_url} "
        f"in {seconds:.1f} s ({total / seconds:,.0f} resources/s)"
    )


@fhir_app.command("info")
@user_errors
def fhir_info(fhir_url: FhirUrlOption = None) -> None:
    """Show what a FHIR server holds: software, FHIR version, resource counts."""
    settings = get_settings(fhir_url=fhir_url)
    asyncio.run(_info(settings))


async def _info(settings: Settings) -> None:
    async with FhirClient.from_settings(settings) as client:
        capability = await client.capabilities()
        table = Table(
            title=f"{settings.effective_fhir_url} — {capability.get('software', {}).get('name', '?')}, "
            f"FHIR {capability.get('fhirVersion', '?')}"
        )
        table.add_column("resource type")
        table.add_column("count", justify="right")
        for resource in capability.get("rest", [{}])[0].get("resource", []):
            count = await client.count(resource["type"])
            if count:
                table.add_row(resource["type"], f"{count:,}")
        console.print(table)


@app.command("quickstart")
@user_errors
def quickstart(
    limit: Annotated[int, typer.Option(min=1, help="Tasks to run (round-robin across EHRQA categories).")] = 3,
    model: Annotated[str | None, typer.Option(help="'embedded' (default) or an OpenAI-compatible base URL.")] = None,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/quickstart"),
) -> None:
    """A small scored agent run on the embedded defaults: embedded FHIR server + embedded Gemma model.

    Template questions of the test split and one of them asked as a user would ask it (no answer format: a free
    answer). Same code path as `medagent bench run`; prints the table, each question and answer, and the report path.
    """
    from medagent.bench.cli import run_scored_or_exit, show_run
    from medagent.bench.quickstart import quickstart_set
    from medagent.bench.results import ResultsLog
    from medagent.bench.scored_run import RunChoice
    from medagent.scenarios.scenario_files import open_set

    if out.exists():
        shutil.rmtree(out)
    questions = quickstart_set(out / "questions", limit)
    settings = get_settings(model=model)
    choice = RunChoice(
        out=out, model=settings.model, suite="ehrqa", split="test", agent="agent", max_steps=3, scenarios=questions
    )
    show_run(run_scored_or_exit(choice, settings.home), out, "ehrqa/test", report=True)
    asked = {s.id: s for s in open_set(questions).load("ehrqa", "test", "all", None)}
    for record in ResultsLog(out / "results.jsonl").load():
        scenario = asked[record.scenario_id]
        question = scenario.question.split("Question: ")[-1].replace("\n", " ")
        asked_as = "asked as a user" if "rephrased_from" in scenario.meta else record.category
        console.print(
            f"[bold]{'PASS' if record.passed else 'FAIL'}[/] {asked_as}: {escape(question)}\n"
            f"  -> {escape(str(record.outcome.answer))}"
        )


@app.command("ask")
@user_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question or task, in plain words.")],
    patient: Annotated[str | None, typer.Option(help="Patient.id in context.")] = None,
    now: Annotated[str | None, typer.Option(help="The clock for the question (ISO date/time); default: now.")] = None,
    model: Annotated[str | None, typer.Option(help="'embedded' or an OpenAI-compatible base URL (vLLM).")] = None,
    model_name: Annotated[str | None, typer.Option(help="Model name at --model, e.g. medgemma-27b.")] = None,
    fhir_url: FhirUrlOption = None,
    approve: Annotated[str, typer.Option(help="Writes: refuse (read-only), ask (confirm each), auto.")] = "refuse",
    max_steps: Annotated[int, typer.Option(min=1, help="Tool calls before the run stops.")] = 12,
    resume: Annotated[str | None, typer.Option(help="Resume an interrupted run by its run id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")] = False,
    tools: Annotated[str, typer.Option(help=TOOLS_HELP)] = "all",
    prompt_profile: Annotated[
        str | None,
        typer.Option(
            help="System prompt: full or compact (default: the model's own, e.g. a trained adapter's; else full)."
        ),
    ] = None,
) -> None:
    """Ask the agent one question about a patient; prints the answer, its citations and a compact trace."""
    from medagent.bench.scored_run import check_prompt_profile

    check_prompt_profile(prompt_profile)
    if approve not in APPROVAL_MODES:
        raise typer.BadParameter(f"--approve must be one of {', '.join(APPROVAL_MODES)}")
    if patient is not None:
        patient = check_fhir_id(patient.removeprefix("Patient/"), "--patient")
    settings = get_settings(model=model, model_name=model_name, fhir_url=fhir_url)
    moment = now or datetime.now(UTC).isoformat(timespec="seconds")
    try:
        parse_instant(moment)
    except ValueError as exc:
        raise typer.BadParameter(f"--now: {exc}") from None
    names = _tool_set(tools)
    result = asyncio.run(_ask(settings, question, patient, moment, approve, max_steps, resume, names, prompt_profile))
    if as_json:
        print(
            json.dumps(
                {
                    "run_id": result.run_id,
                    "tools": tools,
                    "answer": result.answer,
                    "citations": result.citations,
                    "status": result.status,
                    "steps": result.steps,
                    "usage": result.usage,
                    "error": result.error,
                    "trace": [s.model_dump(mode="json") for s in result.trace],
                    "audit": [a.model_dump(mode="json") for a in result.audit],
                },
                default=str,
            )
        )
        return
    for step in result.trace:
        call = f"{step.tool}({json.dumps(step.arguments)[:120]})" if step.tool else "(no action)"
        outcome = step.error or (step.result or "").split("\n")[0][:100]
        console.print(f"[dim]{step.step}.[/] {call} -> {outcome}")
    console.print(
        f"[bold]status:[/] {result.status}  steps: {result.steps}  tokens: "
        f"{result.prompt_tokens}+{result.completion_tokens}  run id: {result.run_id}"
    )
    if result.error:
        console.print(f"[red]{result.error}[/]")
    console.print(f"[bold]answer:[/] {result.answer}")
    if result.citations:
        console.print(f"[bold]citations:[/] {', '.join(result.citations)}")


def show_pending_write(pending: Any) -> None:
    """The terminal reviewer's view of a write (a WriteRequest): the call, then what approving writes."""
    console.print(f"[yellow]The agent wants to write:[/] {pending.tool} {escape(json.dumps(pending.arguments))}")
    if pending.preview is not None:  # Registry.review's preview: the resource the tool would send
        console.print(
            f"[bold]{pending.preview.action}:[/] {escape(pending.preview.error or pending.preview.summary)}",
            highlight=False,
        )
        if pending.preview.resource is not None:
            console.print_json(data=pending.preview.resource)


async def _ask(
    settings: Settings,
    question: str,
    patient: str | None,
    now: str,
    approve: str,
    max_steps: int,
    resume: str | None,
    names: list[str] | None = None,
    prompt_profile: str | None = None,
) -> Any:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from medagent.agent.graph import Agent
    from medagent.agent.state import Limits
    from medagent.bench.model_check import check_backend_reachable
    from medagent.tools.registry import default_registry

    backend = model_backend(settings)
    await check_backend_reachable(backend)  # a dead --model is named before anything runs
    checkpoints = settings.home / "checkpoints.sqlite"
    if resume and not checkpoints.exists():
        raise UserError(f"--resume {resume}: no run with this id (no checkpoints at {checkpoints})")
    async with _fhir_for(settings) as base_url, FhirClient.from_settings(settings, base_url=base_url) as client:
        if patient is not None:
            await require_patient(client, patient, base_url)
        settings.home.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(checkpoints)) as saver:
            agent = Agent(
                model=backend,
                registry=default_registry(),
                client=client,
                limits=Limits(max_steps=max_steps),
                approval=approve,  # type: ignore[arg-type]
                checkpointer=saver,
                tool_names=names,
                prompt_profile=prompt_profile,  # type: ignore[arg-type]
            )
            result = await _run_or_resume(agent, question, now, patient, resume)
            while result.pending_approval is not None:
                pending = result.pending_approval
                show_pending_write(pending)
                decision = typer.confirm("Approve this write?", default=False)
                result = await agent.resume(result.run_id, approve=decision)
    await backend.aclose()
    return result


async def _run_or_resume(agent: Any, question: str, now: str, patient: str | None, resume: str | None) -> Any:
    if not resume:
        return await agent.run(question, now=now, patient=patient)
    try:
        return await agent.resume(resume)
    except KeyError:
        raise UserError(f"--resume {resume}: no run with this id in the checkpoints") from None


async def require_patient(client: FhirClient, patient: str, base_url: str) -> None:
    """``--patient`` names a Patient the FHIR server has (checked before a run starts or anything is written)."""
    try:
        await client.read_json("Patient", patient)
    except FhirNotFound:
        raise UserError(f"--patient {patient}: the FHIR server at {base_url} has no Patient/{patient}") from None


def model_backend(settings: Settings) -> Any:
    """The backend for ``--model`` (a spec it cannot use is the user's mistake, named)."""
    from medagent.models import load_backend

    try:
        return load_backend(settings.model, settings.model_name)
    except ModelError as exc:
        if exc.kind != "config":
            raise
        raise UserError(f"--model {settings.model}: {exc}") from None


def bind_or_refuse(check: Callable[..., None], host: str, token: str | None, **names: str) -> None:
    """The bind rule (loopback, or a bearer token) checked before anything starts: a refusal is a UserError."""
    try:
        check(host, token, **names)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def check_database_path(db: Path) -> None:
    """``--db`` is a file in a folder that exists: nothing is created for a path that cannot be right."""
    if db.is_dir():
        raise UserError(f"--db {db}: is a folder; give the path of a SQLite file (e.g. {db / 'fhir.sqlite'})")
    if not db.parent.is_dir():
        raise UserError(f"--db {db}: the folder {db.parent} does not exist; create it first")


@asynccontextmanager
async def _fhir_for(settings: Settings) -> AsyncIterator[str]:
    """The configured FHIR server, or the embedded one (reused if running, else started for this command)."""
    from medagent.fhir.server.process import EmbeddedServer

    if settings.fhir_url:
        try:
            await check_fhir_server(
                settings.effective_fhir_url, client=FhirClient.from_settings(settings, retries=0, timeout=10)
            )
        except FhirClientError as exc:
            raise UserError(f"--fhir-url {settings.fhir_url}: the FHIR server does not answer ({exc})") from None
        yield settings.effective_fhir_url
        return
    try:
        async with FhirClient(settings.embedded_url, retries=0, timeout=2) as probe:
            await probe.capabilities()
        yield settings.embedded_url
        return
    except FhirClientError:
        pass
    err_console.print(f"starting the embedded FHIR server on {settings.db_path} ...")
    server = EmbeddedServer(settings.db_path, port=settings.port)
    await asyncio.to_thread(server.start)
    try:
        yield server.base_url
    finally:
        server.stop()


@app.command("serve")
@user_errors
def serve_agent(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the service (API + browser UI).")] = 8330,
    host: Annotated[str, typer.Option(help="Interface to bind; beyond loopback a --token is required.")] = "127.0.0.1",
    fhir_url: FhirUrlOption = None,
    model: Annotated[
        str | None, typer.Option(help="'embedded' (default) or an OpenAI-compatible base URL (vLLM).")
    ] = None,
    model_name: Annotated[str | None, typer.Option(help="Model name at --model, e.g. medgemma-27b.")] = None,
    approve: Annotated[
        str, typer.Option(help="Writes: ask (approve/reject each in the UI or API), refuse, auto.")
    ] = "ask",
    max_steps: Annotated[int, typer.Option(min=1, help="Tool calls before a run stops.")] = 12,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MEDAGENT_SERVE_TOKEN",
            show_default=False,
            help="Bearer token the API requires (at least 16 characters).",
        ),
    ] = None,
    smart_client_id: Annotated[
        str | None,
        typer.Option(help="Be a SMART app (EHR and standalone launch at /launch) registered under this client id."),
    ] = None,
    smart_issuer: Annotated[
        list[str] | None,
        typer.Option(
            "--smart-issuer",
            help="FHIR base URL (iss) the app may be launched from (repeatable; default: the FHIR URL).",
        ),
    ] = None,
    smart_scopes: Annotated[
        str | None,
        typer.Option(
            help="Scopes the app asks for (default: launch launch/patient patient/*.rs openid fhirUser offline_access)."
        ),
    ] = None,
    smart_redirect_uri: Annotated[
        str | None, typer.Option(help="The registered redirect URI (default: http://HOST:PORT/launch/callback).")
    ] = None,
    cds_budget: Annotated[
        float, typer.Option(min=0.1, max=60, help="Seconds a CDS Hooks call may take; past it the answer is no card.")
    ] = DEFAULT_BUDGET_SECONDS,
) -> None:
    """Serve the agent over HTTP: a JSON API with streamed steps and write approvals, a browser UI, and CDS Hooks
    services at /cds-services."""
    from medagent.serve.auth import check_bind

    if approve not in ("refuse", "ask", "auto"):
        raise typer.BadParameter("--approve must be ask, refuse or auto")
    bind_or_refuse(check_bind, host, token)
    settings = get_settings(
        model=model,
        model_name=model_name,
        fhir_url=fhir_url,
        smart_client_id=smart_client_id,
        smart_issuers=" ".join(smart_issuer) if smart_issuer else None,
        smart_scopes=smart_scopes,
        smart_redirect_uri=smart_redirect_uri,
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    asyncio.run(
        _serve_agent(
            settings, host=host, port=port, approve=approve, max_steps=max_steps, token=token, cds_budget=cds_budget
        )
    )


async def _serve_agent(
    settings: Settings, *, host: str, port: int, approve: str, max_steps: int, token: str | None, cds_budget: float
) -> None:
    from medagent.fhir.auth.client_auth import backend_services_config
    from medagent.serve.server import (
        AgentService,
        ServiceConfig,
        log_requests_to_stderr,
    )
    from medagent.serve.smart_launch import smart_app_config

    log_requests_to_stderr()
    backend = model_backend(settings)
    label = settings.model if not settings.model_name else f"{settings.model_name} at {settings.model}"
    try:
        async with _fhir_for(settings) as base_url:
            config = ServiceConfig(
                fhir_url=base_url,
                fhir_token=settings.fhir_token,
                backend_services=backend_services_config(settings, base_url),
                host=host,
                port=port,
                checkpoints=settings.home / "checkpoints.sqlite",
                approval=approve,
                token=token,
                max_steps=max_steps,
                model_label=label,
                smart=smart_app_config(settings, base_url),
                cds_budget_seconds=cds_budget,
            )
            err_console.print(f"medagent serve: open http://{host}:{port}/ (approval: {approve}, model: {label})")
            await AgentService(config, backend).serve()
    finally:
        await backend.aclose()


@app.command("mcp")
@user_errors
def mcp(
    fhir_url: FhirUrlOption = None,
    transport: Annotated[str, typer.Option(help="stdio, or http (streamable HTTP at /mcp).")] = "stdio",
    host: Annotated[str, typer.Option(help="Interface for --transport http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for --transport http.")] = 8765,
    now: Annotated[
        str | None, typer.Option(help="The clock the tools use (ISO date/time); default: the start time.")
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="Allow the write tools (default: read-only).")
    ] = False,
    actor: Annotated[str, typer.Option(help="Who writes, recorded in the audit trail.")] = "mcp-client",
    tools: Annotated[str, typer.Option(help=TOOLS_HELP)] = "all",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MEDAGENT_MCP_TOKEN",
            show_default=False,
            help="Bearer token for --transport http (required beyond loopback).",
        ),
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option(help="Patient.id in context: with --allow-writes, a write about any other patient is refused."),
    ] = None,
) -> None:
    """Serve medagent's EHR tools over MCP (stdio or streamable HTTP) for other agents."""
    from medagent.request_guard import check_bind
    from medagent.tools.mcp_server import MCP_BIND, parse_now, serve_mcp

    names = _tool_set(tools)
    if transport not in ("stdio", "http"):
        raise typer.BadParameter("--transport must be stdio or http")
    if transport == "http":
        bind_or_refuse(check_bind, host, token, **MCP_BIND)
    if patient is not None:
        patient = check_fhir_id(patient.removeprefix("Patient/"), "--patient")
    try:
        moment = parse_now(now)
    except ValueError as exc:
        raise typer.BadParameter(f"--now: {exc}") from None
    settings = get_settings(fhir_url=fhir_url, read_only=False if allow_writes else None)
    serve_mcp(
        settings,
        transport=transport,
        host=host,
        port=port,
        now=moment,
        actor=actor,
        names=names,
        token=token,
        patient=patient,
    )


def _tool_set(spec: str) -> list[str]:
    """``--tools``: a named set or a list of tool names (a bad value is a usage error naming it)."""
    from medagent.tools.tool_sets import tool_names

    try:
        return tool_names(spec)
    except ValueError as exc:
        raise typer.BadParameter(f"--tools: {exc}") from None


def _mount_sub_apps() -> None:
    """Sub-apps of other layers, mounted here so the CLI stays one entry point."""
    from medagent.bench.cli import bench_app
    from medagent.scenarios.cli import scenarios_app
    from medagent.train.cli import train_app

    app.add_typer(scenarios_app, name="scenarios")
    app.add_typer(bench_app, name="bench")
    app.add_typer(train_app, name="train")


_mount_sub_apps()
