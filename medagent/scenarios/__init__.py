"""Scenario generators and graders: EHRQA questions and agentic tasks on the Synthea patients.

Ground truth comes from the bundle JSON (``chart``), never from the FHIR server or the agent's
tools, so the graders can prove a solver right or wrong independently of the code under test.
"""

from medagent.scenarios.models import (
    Change,
    Check,
    ExpectedAnswer,
    Manifest,
    Scenario,
    Verdict,
    WriteSpec,
)

__all__ = ["Change", "Check", "ExpectedAnswer", "Manifest", "Scenario", "Verdict", "WriteSpec"]
