"""The public face: ``import medagent`` is light, its names are what users build with, and the README's ten-line
example runs against the embedded server (with the test model, ScriptedPolicy, in place of the embedded Gemma)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import medagent
from medagent import (
    Agent,
    EmbeddedServer,
    FhirClient,
    ScriptedPolicy,
    Tool,
    ToolArgs,
    ToolContext,
    ToolResult,
    tool,
)

PATIENT = "ba18818d-faef-44cd-9744-b12d8973d402"  # Adalberto Hartmann in the packaged Synthea data


def test_import_medagent_loads_no_heavy_layer() -> None:
    code = ("import sys, medagent; heavy = [m for m in ('torch', 'transformers', 'langgraph', 'langchain_core', "
            "'openai', 'fhir.resources', 'medagent.agent.graph', 'medagent.bench.runner') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_public_name_resolves_and_the_version_is_written_once() -> None:
    for name in medagent.__all__:
        assert getattr(medagent, name) is not None, name
    assert set(dir(medagent)) >= set(medagent.__all__)
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and f'"{medagent.__version__}"' not in pyproject
    assert (Path(medagent.__file__).parent / "py.typed").exists()


def readme_example() -> str:
    """The Python block of the top-level README."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 1, "the README holds one Python example"
    return blocks[0]


def test_the_readme_example_runs_on_the_embedded_server(synthea_db: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example, run as written: its only stand-ins are the test model for ``load_backend("embedded")``
    and a copy of the loaded database as the settings' database."""
    source = readme_example()
    assert len([line for line in source.splitlines() if line.strip()]) <= 12
    assert re.findall(r"^from medagent import (.+)$", source, re.M) and "medagent." not in source  # public names only
    assert textwrap.indent(source, "    ") in (medagent.__doc__ or "")  # the package docstring's copy says the same
    db = tmp_path / "synthea.sqlite"
    shutil.copyfile(synthea_db, db)
    monkeypatch.setenv("MEDAGENT_DB", str(db))
    model = ScriptedPolicy([
        {"tool": "search_observations", "arguments": {"patient": PATIENT, "code": "4548-4", "latest": 1}},
        {"tool": "final_answer", "arguments": {"answer": "5.87 %", "citations": []}},
    ])
    specs: list[str] = []

    def load_backend(spec: str, model_name: str | None = None) -> ScriptedPolicy:
        specs.append(spec)
        return model

    monkeypatch.setattr(medagent, "load_backend", load_backend)
    exec(compile(source, "README.md", "exec"), {"__name__": "readme_example"})
    assert specs == ["embedded"]
    assert capsys.readouterr().out.strip() == "5.87 % []"
    offered = str(model.requests[0].json_schema)
    assert "search_observations" in offered and "order_medication" in offered  # every medagent tool is offered
    assert PATIENT in model.requests[0].messages[-1].content or PATIENT in str(model.requests[0].messages)
    tool_result = str(model.requests[1].messages)
    assert "| 5.87 % |" in tool_result  # the read reached the server: the HbA1c of 2019-03-20


async def test_an_agent_takes_tools_directly(synthea_db: Path, tmp_path: Path) -> None:
    """``@tool`` makes a Tool with no global registry; ``Agent(model, tools=[...])`` offers exactly those."""

    class EchoArgs(ToolArgs):
        text: str
        """What to echo."""

    @tool(args=EchoArgs, example={"text": "hello"})
    async def echo(ctx: ToolContext, args: EchoArgs) -> ToolResult:
        """Echo the text back."""
        return ToolResult(text=f"echo: {args.text}")

    assert isinstance(echo, Tool)
    model = ScriptedPolicy([{"tool": "echo", "arguments": {"text": "hi"}},
                            {"tool": "final_answer", "arguments": {"answer": "hi", "citations": []}}])
    db = tmp_path / "synthea.sqlite"
    shutil.copyfile(synthea_db, db)
    with EmbeddedServer(db) as server:
        async with FhirClient(server.base_url) as client:
            agent = Agent(model, tools=[echo], client=client)  # type: ignore[arg-type]
            result = await agent.run("Say hi.", now="2019-06-01T09:00:00Z")
    assert agent.registry.names == ["echo"]
    assert [step.result for step in result.trace if step.tool == "echo"] == ["echo: hi"]
    schema = str(model.requests[0].json_schema) + model.requests[0].messages[0].content
    assert "echo" in schema and "search_observations" not in schema  # the model is offered no other tool
