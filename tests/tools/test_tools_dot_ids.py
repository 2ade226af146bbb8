"""Issue 25, item 3 at the tools and MCP: an id or reference argument of ``.``/``..`` is a tool error naming
the argument (the model can fix it), never a request the client resolves into a search or the server root.

The reproduction: MCP ``get_patient {"patient": "."}`` answered with a Bundle (a search of all patients)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from tools_expect import PATIENT

from medagent.tools.approval import APPROVE_WRITES
from medagent.tools.registry import Registry

NOW = datetime(2020, 6, 1, tzinfo=UTC)
CALLS: list[tuple[str, dict[str, Any], str]] = [  # tool, arguments, the argument the error must name
    ("get_patient", {"patient": "."}, "patient"),
    ("get_patient", {"patient": "Patient/.."}, "patient"),
    ("search_observations", {"patient": "..", "code": "4548-4"}, "patient"),
    ("record_manifest", {"patient": "."}, "patient"),
    ("fhir_read", {"reference": "Observation/."}, "reference"),
    ("fhir_read", {"reference": "Patient/.."}, "reference"),
    ("search_medications", {"patient": PATIENT, "since": "Encounter/.."}, "since"),
    ("discontinue_medication", {"medication_request": "MedicationRequest/."}, "medication_request"),
    ("discontinue_medication", {"medication_request": ".."}, "medication_request"),
    ("order_medication", {"patient": PATIENT, "code": "316049", "reason_reference": "Condition/.."},
     "reason_reference"),
    ("order_service", {"patient": PATIENT, "code": "2823-3", "reason_reference": "Observation/."},
     "reason_reference"),
    ("record_vital_sign", {"patient": ".", "vital": "heart_rate", "value": 70}, "patient"),
    ("search_notes", {"patient": ".."}, "patient"),
    ("add_structured_note", {"patient": PATIENT, "title": "Plan", "sections": [
        {"section": "plan", "text": "Recheck.", "entries": ["Observation/.."]}]}, "sections"),
]


@pytest.mark.parametrize(("tool_name", "arguments", "argument"), CALLS)
async def test_dot_ids_are_argument_errors(tool_name: str, arguments: dict[str, Any], argument: str,
                                           registry: Registry, make_ctx: Any, clean_fhir: str) -> None:
    result = await registry.call(tool_name, arguments, make_ctx(NOW, approval=APPROVE_WRITES, patient=PATIENT))
    assert result.error is not None and result.error.startswith(f"bad arguments for {tool_name}: {argument}"), \
        result.text
    assert result.references == [] and result.rows == [] and result.wrote == []


async def test_mcp_dot_ids_and_control_character_filters_are_errors(fhir_url: str) -> None:
    mcp = pytest.importorskip("mcp")
    from mcp.client.stdio import stdio_client

    params = mcp.StdioServerParameters(command=sys.executable, args=["-m", "medagent", "mcp", "--fhir-url", fhir_url,
                                                                     "--now", "2020-06-01"])
    async with stdio_client(params) as (read, write), mcp.ClientSession(read, write) as session:
        await session.initialize()
        for bad in (".", "..", "Patient/."):
            result = await session.call_tool("get_patient", {"patient": bad})
            text = result.content[0].text
            assert getattr(result, "is_error", None) or getattr(result, "isError", None), text
            assert "patient" in text and "not a FHIR id" in text and "Bundle" not in text, text
        control = await session.call_tool("search_conditions", {"patient": PATIENT, "text": "\x00\x01"})
        assert getattr(control, "is_error", None) or getattr(control, "isError", None), control.content[0].text
        assert "text" in control.content[0].text and "Condition/" not in control.content[0].text


# --- issue 25, item 5: a text filter of control characters is an argument error, not "no filter" ---------

@pytest.mark.parametrize("text", ["\x00\x01", "\x07\x08\x1b", "\u200b\u200d", "\x00 \x01 \x02"])
async def test_a_text_filter_without_letters_is_an_argument_error(text: str, registry: Registry, make_ctx: Any) -> None:
    result = await registry.call("search_conditions", {"patient": PATIENT, "text": text}, make_ctx(NOW))
    assert result.error is not None and result.error.startswith("bad arguments for search_conditions: text"), \
        result.text
    assert result.rows == [] and result.references == []
