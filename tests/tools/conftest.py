"""Tool-test fixtures: the shared embedded server (tests/conftest.py), a client, and ToolContexts at chosen clocks."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from medagent.fhir.client import FhirClient
from medagent.tools import ToolContext, ToolResult
from medagent.tools.registry import Registry

if os.environ.get("MEDAGENT_TOOLS_TEST_URL"):
    @pytest.fixture(scope="session")
    def fhir_url() -> str:
        """MEDAGENT_TOOLS_TEST_URL: an embedded server already running with the default patients and
        --allow-reset (saves the start-up while iterating on the tools)."""
        return os.environ["MEDAGENT_TOOLS_TEST_URL"].rstrip("/")


@pytest.fixture
def make_ctx(client: FhirClient) -> Callable[..., ToolContext]:
    def make(now: datetime, **options: Any) -> ToolContext:
        return ToolContext(client=client, now=now, **options)

    return make


@pytest.fixture
def run(registry: Registry, make_ctx: Callable[..., ToolContext]) -> Callable[..., Any]:
    """``await run(tool, now, **args)`` -> ToolResult (read-only context unless writes=True)."""

    async def call(tool_name: str, now: datetime, /, *, ctx: ToolContext | None = None, **arguments: Any) -> ToolResult:
        return await registry.call(tool_name, arguments, ctx or make_ctx(now))

    return call
