"""Named tool sets (``--tools typed|generic|all`` or a comma-separated list of tool names) for ask, bench run and mcp.

``typed``: the per-type read tools and the write tools; ``generic``: only ``fhir_search`` + ``fhir_read`` (plus the
write tools, so write tasks stay possible); ``all``: the whole catalog. Which is better is measured per model
(``medagent bench run --tools ...``), not assumed: every turn pays for the catalog's description in the prompt.
"""

from __future__ import annotations

from medagent.tools.registry import Registry, default_registry

GENERIC_READS = ("fhir_search", "fhir_read")
TOOL_SETS = ("all", "typed", "generic")
TOOLS_HELP = (
    "Tool set: all (the whole catalog), typed (per-type tools, no fhir_search/fhir_read), generic "
    "(fhir_search + fhir_read + the write tools), or a comma-separated list of tool names."
)


def tool_names(spec: str | None, registry: Registry | None = None) -> list[str]:
    """The tool names a set means, in the registry's order; ValueError naming what is unknown."""
    registry = registry or default_registry()
    text = (spec or "all").strip()
    if text == "all":
        return registry.names
    if text == "typed":
        return [t.name for t in registry if t.name not in GENERIC_READS]
    if text == "generic":
        return [t.name for t in registry if t.name in GENERIC_READS or t.writes]
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in registry]
    if unknown or not names:
        raise ValueError(
            f"unknown tool set or tool name(s) {', '.join(unknown) or repr(text)}; use one of "
            f"{', '.join(TOOL_SETS)} or names from: {', '.join(registry.names)}"
        )
    return [t.name for t in registry if t.name in names]
