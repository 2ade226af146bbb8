"""The tool registry as an MCP server (stdio or streamable HTTP), so other agents can use medagent's EHR tools.

``medagent mcp --fhir-url URL`` (stdio) or ``medagent mcp --transport http --port 8765`` (endpoint
``/mcp``). Each tool carries the MCP annotations readOnlyHint/destructiveHint/idempotentHint; write
tools are refused unless the server is started with ``--allow-writes``. A tool error is an MCP
result with ``isError`` true and the short message; structured rows go in ``structuredContent``.
Works with the official ``mcp`` SDK 2.x (low-level server) and, best effort, 1.x.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from medagent.config import Settings
from medagent.fhir.client import FhirClient
from medagent.fhir.ids import check_fhir_id
from medagent.request_guard import RequestGuard, ServerSecurity, check_bind
from medagent.tools.approval import APPROVE_WRITES, REFUSE_WRITES
from medagent.tools.context import ToolContext
from medagent.tools.registry import Registry, Tool, ToolResult, default_registry
from medagent.tools.tool_sets import TOOLS_HELP, tool_names
from medagent.vocabulary import parse_instant

log = logging.getLogger("medagent.tools.mcp")

INSTRUCTIONS = (
    "EHR tools over a FHIR R4 server. Find the patient first (find_patients), then read narrowly: "
    "record_manifest shows what exists, lookup_codes maps words to codes, the search_* tools return one "
    "line per resource with its reference (Type/id) for citations. Dates after the server's 'now' are hidden."
)


MCP_BIND: dict[str, Any] = {"service": "the MCP server", "token_source": "--token or set MEDAGENT_MCP_TOKEN"}
"""How the bind rule names this server and its token (``medagent mcp --token`` / ``MEDAGENT_MCP_TOKEN``)."""


class ContextSource:
    """Creates the ToolContext lazily inside the serving event loop (the HTTP client belongs to that loop)."""

    def __init__(
        self,
        settings: Settings,
        *,
        now: datetime,
        actor: str = "mcp-client",
        run_id: str | None = None,
        token_budget: int = 800,
        patient: str | None = None,
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.settings = settings
        self.patient = check_fhir_id(patient, "--patient") if patient is not None else None
        self.now = now
        self.actor = actor
        self.run_id = run_id or f"mcp-{now.strftime('%Y%m%dT%H%M%S')}"
        self.token_budget = token_budget
        self._ctx: ToolContext | None = None

    def get(self) -> ToolContext:
        if self._ctx is None:
            client = FhirClient.from_settings(self.settings)
            approval = REFUSE_WRITES if self.settings.read_only else APPROVE_WRITES  # --allow-writes
            self._ctx = ToolContext(
                client=client,
                now=self.now,
                approval=approval,
                actor=self.actor,
                run_id=self.run_id,
                token_budget=self.token_budget,
                patient=self.patient,
            )
        return self._ctx

    async def aclose(self) -> None:
        if self._ctx is not None:
            await self._ctx.client.aclose()
            self._ctx = None


def mcp_tool(item: Tool) -> Any:
    import mcp.types as types

    hints = item.annotations()
    annotations = types.ToolAnnotations(
        title=item.name.replace("_", " "),
        readOnlyHint=hints["readOnlyHint"],
        destructiveHint=hints["destructiveHint"],
        idempotentHint=hints["idempotentHint"],
        openWorldHint=hints["openWorldHint"],
    )
    return types.Tool(
        name=item.name, description=item.description, inputSchema=item.parameters(), annotations=annotations
    )


def structured(result: ToolResult) -> dict[str, Any]:
    return {
        "rows": result.rows,
        "references": result.references,
        "truncated": result.truncated,
        "wrote": result.wrote,
        "error": result.error,
    }


def build_server(registry: Registry, source: ContextSource, names: Iterable[str] | None = None) -> Any:
    """A low-level MCP ``Server`` exposing the registry's tools (SDK 2.x constructor handlers, or 1.x decorators)."""
    import mcp.types as types
    from mcp.server.lowlevel import Server

    from medagent.version import __version__

    chosen = registry.select(names)
    allowed = {item.name for item in chosen}

    def listing() -> list[Any]:
        return [mcp_tool(item) for item in chosen]

    async def run_tool(name: str, arguments: dict[str, Any] | None) -> ToolResult:
        if name not in allowed:
            return ToolResult.failure(f"unknown tool {name!r}; available tools: {', '.join(sorted(allowed))}")
        return await registry.call(name, arguments or {}, source.get())

    def as_result(result: ToolResult) -> Any:
        text = f"ERROR: {result.error}" if result.error else result.text
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structuredContent=structured(result),
            isError=result.error is not None,
        )

    if "on_list_tools" in inspect.signature(Server.__init__).parameters:  # SDK 2.x

        async def on_list_tools(_ctx: Any, _params: Any) -> Any:
            return types.ListToolsResult(tools=listing())

        async def on_call_tool(_ctx: Any, params: Any) -> Any:
            return as_result(await run_tool(params.name, params.arguments))

        return Server(
            "medagent",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=on_list_tools,
            on_call_tool=on_call_tool,
        )

    server = Server("medagent", version=__version__, instructions=INSTRUCTIONS)  # SDK 1.x

    @server.list_tools()
    async def _list() -> list[Any]:
        return listing()

    @server.call_tool(validate_input=False)
    async def _call(name: str, arguments: dict[str, Any]) -> Any:
        result = await run_tool(name, arguments)
        if result.error:
            raise RuntimeError(f"ERROR: {result.error}")
        return [types.TextContent(type="text", text=result.text)], structured(result)

    return server


async def serve_stdio(registry: Registry, source: ContextSource, names: Iterable[str] | None = None) -> None:
    from mcp.server.stdio import stdio_server

    server = build_server(registry, source, names)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await source.aclose()


def http_app(
    registry: Registry,
    source: ContextSource,
    names: Iterable[str] | None = None,
    *,
    host: str = "127.0.0.1",
    path: str = "/mcp",
    token: str | None = None,
) -> Any:
    """A Starlette app serving MCP streamable HTTP at ``path``, behind the same guard as the FHIR server on
    any bind: loopback Host names only (unless a token is set), an Origin only when it is this very
    origin (scheme, host and port), the bearer token on every request when one is set."""
    return RequestGuard(_mcp_app(registry, source, names, host=host, path=path), ServerSecurity(token=token))


def _mcp_app(registry: Registry, source: ContextSource, names: Iterable[str] | None, *, host: str, path: str) -> Any:
    server = build_server(registry, source, names)
    if hasattr(server, "streamable_http_app"):  # SDK 2.x
        return server.streamable_http_app(streamable_http_path=path, host=host)
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Mount

    manager = StreamableHTTPSessionManager(app=server)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with manager.run():
            yield
        await source.aclose()

    return Starlette(routes=[Mount(path, app=manager.handle_request)], lifespan=lifespan)


def serve_mcp(
    settings: Settings,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    now: datetime | None = None,
    actor: str = "mcp-client",
    run_id: str | None = None,
    token_budget: int = 800,
    names: Iterable[str] | None = None,
    token: str | None = None,
    patient: str | None = None,
) -> None:
    """Run the MCP server until stopped. ``now`` is the clock the tools use (default: the time of the start);
    ``patient``: the patient in context (as an EHR launch context: with ``--allow-writes`` a write about any
    other patient is refused, since no reviewer is attached). Over HTTP, binding beyond loopback needs a
    bearer ``token`` (ValueError otherwise)."""
    import anyio

    if transport == "http":
        check_bind(host, token, **MCP_BIND)

    moment = now or datetime.now(UTC).replace(microsecond=0)
    source = ContextSource(settings, now=moment, actor=actor, run_id=run_id, token_budget=token_budget, patient=patient)
    registry = default_registry()
    if transport == "stdio":
        anyio.run(serve_stdio, registry, source, names)
    elif transport == "http":
        import uvicorn

        uvicorn.run(
            http_app(registry, source, names, host=host, token=token), host=host, port=port, log_level="warning"
        )
    else:
        raise ValueError(f"unknown transport {transport!r}; use stdio or http")


def main(argv: list[str] | None = None) -> None:
    """``python -m medagent.tools.mcp_server`` (the same as ``medagent mcp``)."""
    import argparse

    from medagent.config import get_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--fhir-url")
    parser.add_argument("--transport", default="stdio", choices=["stdio", "http"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--now", help="ISO date-time the tools treat as now (default: the start time)")
    parser.add_argument("--allow-writes", action="store_true")
    parser.add_argument("--actor", default="mcp-client")
    parser.add_argument("--tools", default="all", help=TOOLS_HELP)
    parser.add_argument("--token", help="bearer token for --transport http (required beyond loopback)")
    parser.add_argument("--patient", help="Patient.id in context: writes about any other patient are refused")
    args = parser.parse_args(argv)
    settings = get_settings(fhir_url=args.fhir_url, read_only=False if args.allow_writes else None)
    try:
        names = tool_names(args.tools)
    except ValueError as exc:
        parser.error(f"--tools: {exc}")
    serve_mcp(
        settings,
        transport=args.transport,
        host=args.host,
        port=args.port,
        now=parse_now(args.now),
        actor=args.actor,
        names=names,
        token=args.token,
        patient=args.patient,
    )


def parse_now(value: str | None) -> datetime | None:
    """The clock given on the command line (an ISO date or date-time; naive values are UTC), or None."""
    return parse_instant(value) if value else None


if __name__ == "__main__":
    main()
