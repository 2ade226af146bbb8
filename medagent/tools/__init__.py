"""What the agent may do: typed EHR tools over the one FHIR client, with compact results.

``default_registry()`` holds every tool; ``Registry.call(name, args, ctx)`` runs one; the same
registry exports LangChain tools, OpenAI tool schemas, one JSON schema for constrained decoding,
and an MCP server (``medagent mcp``).
"""

from medagent.tools.context import AuditEntry, ToolCall, ToolContext
from medagent.tools.registry import (
    FINAL_ANSWER,
    REGISTRY,
    Registry,
    Tool,
    ToolArgs,
    ToolError,
    ToolResult,
    default_registry,
    tool,
)

__all__ = [
    "FINAL_ANSWER", "REGISTRY", "AuditEntry", "Registry", "Tool", "ToolArgs", "ToolCall", "ToolContext",
    "ToolError", "ToolResult", "default_registry", "tool",
]
