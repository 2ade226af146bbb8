"""--tools: named tool sets and lists of names, on the CLI surfaces, recorded with a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from typer.testing import CliRunner

from medagent.bench.run_folder import record_set
from medagent.bench.runner import RunDirError
from medagent.cli import app
from medagent.tools.registry import default_registry
from medagent.tools.tool_sets import tool_names

WRITES = {"record_vital_sign", "record_observation", "order_medication", "order_service", "add_note",
          "discontinue_medication", "add_structured_note"}


def test_named_sets() -> None:
    everything = set(tool_names("all"))
    assert len(everything) == len(default_registry())
    assert set(tool_names("generic")) == {"fhir_search", "fhir_read"} | WRITES
    assert set(tool_names("typed")) == everything - {"fhir_search", "fhir_read"}
    assert tool_names(" fhir_read , find_patients") == ["find_patients", "fhir_read"], "the registry's order"
    for bad in ("bogus", "fhir_read,nope", " , "):
        with pytest.raises(ValueError, match="unknown tool set or tool name"):
            tool_names(bad)


def test_bad_tools_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["ask", "q", "--tools", "nope"])
    assert result.exit_code == 2 and "--tools" in result.output
    policy = CliRunner().invoke(app, ["bench", "run", "--agent", "oracle", "--tools", "typed", "--limit", "1",
                                      "--out", "/tmp/never-written-tools-test"])
    assert policy.exit_code == 2 and "--tools applies to --agent agent only" in policy.output


def test_the_tool_set_is_recorded_and_a_resume_may_not_change_it(tmp_path: Path) -> None:
    record_set(tmp_path, "v2", "abc", tmp_path, tools="generic", tool_names=tool_names("generic"))
    info = json.loads((tmp_path / "scenario_set.json").read_text())
    assert info["tools"] == "generic" and info["tool_names"] == tool_names("generic")
    with pytest.raises(RunDirError, match="--tools generic, not typed"):
        record_set(tmp_path, "v2", "abc", tmp_path, tools="typed", tool_names=tool_names("typed"))


async def test_mcp_server_serves_only_the_chosen_tools(fhir_url: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "medagent", "mcp", "--fhir-url", fhir_url,
                                                                 "--now", "2019-05-02", "--tools", "generic"])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = [t.name for t in (await session.list_tools()).tools]
        assert listed == tool_names("generic")
        refused = await session.call_tool("find_patients", {"name": "Hartmann"})
        assert "unknown tool 'find_patients'" in refused.content[0].text
