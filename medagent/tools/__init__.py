"""What the agent may do: typed EHR tools over the one FHIR client, with compact results.

``@tool`` makes a :class:`Tool` from a typed async function; ``default_registry()`` holds every medagent tool;
``Registry(tools)`` holds the ones given; ``Registry.call(name, args, ctx)`` runs one; the same
registry exports LangChain tools, OpenAI tool schemas and an MCP server (``medagent mcp``).
"""

from medagent.tools.approval import (
    APPROVE_WRITES,
    ESCALATE_WRITES,
    REFUSE_WRITES,
    ApprovalDecision,
    ApprovalPolicy,
    ReviewerCallback,
    WriteRequest,
    approval_policy,
)
from medagent.tools.context import AuditEntry, ToolContext
from medagent.tools.registry import (
    FINAL_ANSWER,
    Registry,
    Tool,
    ToolArgs,
    ToolError,
    ToolResult,
    default_registry,
    tool,
)

__all__ = [
    "APPROVE_WRITES",
    "ESCALATE_WRITES",
    "FINAL_ANSWER",
    "REFUSE_WRITES",
    "ApprovalDecision",
    "ApprovalPolicy",
    "AuditEntry",
    "Registry",
    "ReviewerCallback",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "WriteRequest",
    "approval_policy",
    "default_registry",
    "tool",
]
