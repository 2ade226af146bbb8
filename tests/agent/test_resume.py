"""A run killed mid-way (the whole process dies) resumes from its SQLite checkpoint without redoing steps."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from medagent.agent.graph import Agent
from medagent.fhir.client import FhirClient
from medagent.models.scripted import ScriptedPolicy
from medagent.tools.registry import Registry
from tests.agent.conftest import NOW, PATIENT, final

CRASHING_RUN = textwrap.dedent('''
    import asyncio, os, sys
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from medagent.agent.graph import Agent
    from medagent.fhir.client import FhirClient
    from medagent.models.scripted import ScriptedPolicy
    from medagent.tools.registry import default_registry

    fhir_url, checkpoints, patient, now = sys.argv[1:5]
    replies = [{"tool": "get_patient", "arguments": {"patient": patient}}]

    def script(request):
        if replies:
            return replies.pop(0)
        os._exit(17)  # the process dies while the model "thinks" about step 2

    async def main():
        async with FhirClient(fhir_url) as client, AsyncSqliteSaver.from_conn_string(checkpoints) as saver:
            agent = Agent(model=ScriptedPolicy(script), registry=default_registry(), client=client, checkpointer=saver)
            await agent.run("When was the patient born?", now=now, patient=patient, run_id="crash-1")

    asyncio.run(main())
''')


async def test_killed_run_resumes_from_checkpoint(tmp_path: Path, fhir_url: str, registry: Registry) -> None:
    checkpoints = str(tmp_path / "checkpoints.sqlite")
    crashed = subprocess.run([sys.executable, "-c", CRASHING_RUN, fhir_url, checkpoints, PATIENT, NOW],
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 17, crashed.stderr[-2000:]

    resumed_policy = ScriptedPolicy([final("1949-11-29", f"Patient/{PATIENT}")])
    async with FhirClient(fhir_url) as client, AsyncSqliteSaver.from_conn_string(checkpoints) as saver:
        agent = Agent(model=resumed_policy, registry=registry, client=client, checkpointer=saver)  # type: ignore[arg-type]
        result = await agent.resume("crash-1")
    assert result.status == "answered" and result.answer == "1949-11-29"
    assert [s.tool for s in result.trace] == ["get_patient", "final_answer"]
    assert result.steps == 1
    # the resumed model call sees the tool result from before the crash, not a fresh start
    assert "1949-11-29" in resumed_policy.requests[0].messages[-1].content
    assert len(resumed_policy.requests) == 1
