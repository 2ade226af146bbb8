"""Agent graph fixtures: the real tool registry over the real embedded server, driven by ScriptedPolicy."""

from __future__ import annotations




PATIENT = "ba18818d-faef-44cd-9744-b12d8973d402"  # Adalberto Hartmann in the packaged Synthea data
NOW = "2020-01-01T00:00:00+00:00"


def call(tool: str, **arguments: object) -> dict[str, object]:
    return {"tool": tool, "arguments": arguments}


def final(answer: str, *citations: str) -> dict[str, object]:
    return {"tool": "final_answer", "arguments": {"answer": answer, "citations": list(citations)}}
