"""The tool registry: typed async tools with pydantic argument models, exported to LangGraph, OpenAI schemas and MCP.

A tool is ``async def name(ctx: ToolContext, args: SomeArgs) -> ToolResult`` decorated with
:func:`tool`, which makes it a :class:`Tool` (no global registry: a :class:`Registry` is built from the tools
it is given; :func:`default_registry` holds every medagent tool). Its description is the docstring; its argument
schema comes from the pydantic model (field types plus the docstring under each field). :meth:`Registry.call` validates the
arguments and turns every mistake a model can make (bad arguments, unknown patient, a FHIR
server's OperationOutcome, a write its approval policy did not approve) into a ``ToolResult`` with
``error`` set: a call never raises for model input. Every write is decided in one place
(:meth:`Registry._decide`, the run context's :mod:`medagent.tools.approval` policy) before it runs;
:meth:`Registry.preview` shows what a write would send without sending it (a reviewer sees it).

Every write names its patient: a write tool's arguments are marked :class:`RecordOf` (a Patient id, or a
reference to one of a patient's records); before the policy decides, :meth:`Registry._write_request` resolves
each of them to its Patient.id (reading the record), refuses a write whose arguments name two patients, and
puts the one patient in the :class:`WriteRequest`; the tool then runs with ``ctx.write_patient`` set, and the
write path (``write_clinical.create`` / ``update``) refuses a resource of any other patient. A write tool whose
arguments name no patient cannot be registered.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medagent.fhir.errors import (
    FhirClientError,
    FhirConflict,
    FhirForbidden,
    FhirInvalid,
    FhirNotFound,
    FhirOperationError,
    FhirTransportError,
)
from medagent.fhir.ids import patient_of
from medagent.tools.approval import (
    ApprovalDecision,
    FixedVerdict,
    WritePreview,
    WriteRequest,
)
from medagent.tools.context import AuditEntry, PreparedWrite, ToolContext

log = logging.getLogger("medagent.tools")

__all__ = [
    "FINAL_ANSWER",
    "AuditEntry",
    "RecordOf",
    "Registry",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "default_registry",
    "tool",
]

FINAL_ANSWER = "final_answer"  # reserved: the agent's last action (medagent.agent.actions)
_TAIL_ARGUMENTS = ("since", "until", "order", "latest", "limit", "reason")


class ToolArgs(BaseModel):
    """Base of every argument model: unknown arguments are errors; field docstrings become descriptions."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, str_strip_whitespace=True)


class ToolResult(BaseModel):
    """What a tool returns: text for the model, structured rows for code, the references read or written."""

    text: str = ""
    rows: list[dict[str, Any]] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    truncated: int = Field(0, description="Rows that matched but were left out (limit or token budget).")
    error: str | None = None
    wrote: list[str] = Field(default_factory=list, description="References created or changed.")

    @classmethod
    def failure(cls, message: str) -> ToolResult:
        return cls(text=f"ERROR: {message}", error=message)

    @property
    def ok(self) -> bool:
        return self.error is None


class ToolError(Exception):
    """A mistake the model can fix (unknown patient, impossible date, unknown code system ...)."""

    def __init__(self, message: str, *, example: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.example = "e.g." not in message if example is None else example


ToolFn = Callable[[ToolContext, Any], Awaitable[ToolResult]]


@dataclass(frozen=True)
class RecordOf:
    """``Annotated`` marker of an argument that names a patient: ``kind="patient"`` a Patient id, ``"record"``
    a reference to one of a patient's records (``'Type/id'``, or a bare id of ``resource_type``).

    A write tool needs at least one; the registry resolves each to its Patient.id before the write is decided."""

    kind: Literal["patient", "record"] = "record"
    resource_type: str | None = None

    def reference(self, value: str) -> str:
        return value if "/" in value or self.resource_type is None else f"{self.resource_type}/{value}"


def record_arguments(args_model: type[BaseModel]) -> list[tuple[str, RecordOf]]:
    """The arguments of a model marked :class:`RecordOf`, in declaration order."""
    return [
        (name, marker)
        for name, info in args_model.model_fields.items()
        for marker in info.metadata
        if isinstance(marker, RecordOf)
    ]


@dataclass
class Tool:
    """One registered tool."""

    name: str
    description: str
    args_model: type[ToolArgs]
    fn: ToolFn
    writes: bool = False
    destructive: bool = False
    idempotent: bool = True
    example: dict[str, Any] = field(default_factory=dict)

    async def __call__(self, ctx: ToolContext, args: ToolArgs) -> ToolResult:
        """Run the tool's function directly (no validation, no approval: :meth:`Registry.call` does those)."""
        return await self.fn(ctx, args)

    @property
    def read_only(self) -> bool:
        return not self.writes

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.strip().split("\n")[0]

    def parameters(self) -> dict[str, Any]:
        """The arguments' JSON schema, inlined (no $ref), no titles, additionalProperties false.

        Properties are ordered for a reader: the subject and the tool's own arguments first, then the
        shared window/limit arguments, then the audit reason.
        """
        schema = copy.deepcopy(_schema_of(self.args_model))
        properties = schema.get("properties", {})
        head = [k for k in properties if k not in _TAIL_ARGUMENTS]
        schema["properties"] = {k: properties[k] for k in [*head, *[t for t in _TAIL_ARGUMENTS if t in properties]]}
        return schema

    def annotations(self) -> dict[str, Any]:
        """MCP tool annotations (hosts use them to gate writes)."""
        return {
            "readOnlyHint": not self.writes,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": False,
        }

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters()},
        }

    def example_text(self) -> str:
        """The example as shown to a model: placeholder ids (``<id from find_patients>``), never a real one."""
        if not self.example:
            return "{}"
        return placeholder_ids(json.dumps(self.example, separators=(", ", ": ")))


@functools.cache
def _schema_of(args_model: type[ToolArgs]) -> dict[str, Any]:
    """Argument schemas are static; generating one costs milliseconds, so it is done once per model."""
    return simplify_schema(args_model.model_json_schema())


class Registry:
    """An ordered set of tools; ``call`` is the one entry point agents, LangGraph and MCP go through."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, item: Tool) -> Tool:
        if item.name in self._tools or item.name == FINAL_ANSWER:
            raise ValueError(f"tool name {item.name!r} is already taken")
        self._tools[item.name] = item
        return item

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def select(self, names: Iterable[str] | None = None) -> list[Tool]:
        if names is None:
            return list(self._tools.values())
        chosen = []
        for name in names:
            if name not in self._tools:
                raise KeyError(f"unknown tool {name!r}; known: {', '.join(self._tools)}")
            chosen.append(self._tools[name])
        return chosen

    def subset(self, names: Iterable[str]) -> Registry:
        """A registry holding only some tools (to compare tool sets in benchmarks)."""
        return Registry(self.select(names))

    # calling -----------------------------------------------------------------------------
    async def call(
        self,
        name: str,
        raw_args: dict[str, Any] | str | None,
        ctx: ToolContext,
        *,
        decision: ApprovalDecision | None = None,
    ) -> ToolResult:
        """Validate and run one tool call; model mistakes come back as ``ToolResult.error``, never raised.

        A write runs only if approved: by ``decision`` when a reviewer already decided this call (the
        agent's escalation), else by the context's approval policy (:meth:`review`).
        """
        checked = self._validated(name, raw_args)
        if isinstance(checked, ToolResult):
            return checked
        item, args = checked
        if not item.writes:
            return await self._run(item, args, ctx)
        if decision is None and isinstance(ctx.approval, FixedVerdict) and ctx.approval.decision.verdict == "reject":
            return ToolResult.failure(refusal_message(name, ctx.approval.decision) or "refused")  # read-only: no read
        request = await self._write_request(item, args, ctx)
        if isinstance(request, ToolResult):
            return request
        if decision is None:
            decision = await self._decide(request, ctx)
        refusal = refusal_message(name, decision)
        if refusal is not None:
            return ToolResult.failure(refusal)
        return await self._run(item, args, dataclasses.replace(ctx, write_patient=request.patient))

    async def preview(self, ctx: ToolContext, name: str, raw_args: dict[str, Any] | str | None) -> WritePreview:
        """What the write call would send, prepared by the tool's own code in a preview context (never sent).

        The tool runs with ``ctx.preview`` set: its reads and lookups run, and the write path
        (``write_clinical.create`` / ``update``) returns the prepared resource instead of sending it. A call
        that would fail gives ``action='error'`` with the error text :meth:`call` would give. No approval is
        asked: a preview writes nothing.
        """
        checked = self._validated(name, raw_args)
        if isinstance(checked, ToolResult):
            return WritePreview(action="error", summary=checked.text, error=checked.error)
        item, args = checked
        if not item.writes:
            raise ValueError(f"{name} does not write; only write tools have a preview")
        request = await self._write_request(item, args, ctx)
        if isinstance(request, ToolResult):
            return WritePreview(action="error", summary=request.text, error=request.error)
        return await self._preview(item, args, ctx, request)

    async def _preview(self, item: Tool, args: ToolArgs, ctx: ToolContext, request: WriteRequest) -> WritePreview:
        dry = dataclasses.replace(
            ctx,
            preview=True,
            audit=[],  # same client, clock, actor, run and cache
            write_patient=request.patient,
        )
        try:
            result = await self._run(item, args, dry)
        except PreparedWrite as prepared:
            return prepared.preview
        if result.error is not None:
            return WritePreview(action="error", summary=result.text, error=result.error)
        if result.wrote:  # a write that bypassed create/update: a bug, never shown as a preview
            log.error("tool %s wrote %s outside the write path during a preview", item.name, result.wrote)
            message = f"internal error in {item.name}: it wrote outside the write path"
            return WritePreview(action="error", summary=f"ERROR: {message}", error=message)
        return WritePreview(
            action="none", summary=result.text, reference=result.references[0] if result.references else None
        )

    async def _run(self, item: Tool, args: ToolArgs, ctx: ToolContext) -> ToolResult:
        """Run one validated call; every failure becomes ``ToolResult.error`` (a preview's prepared write passes)."""
        try:
            result = await item.fn(ctx, args)
        except PreparedWrite:
            raise
        except Exception as exc:  # noqa: BLE001 - a tool bug must not end the agent's run
            return failure_of(exc, item)
        return enforce_budget(result, ctx)

    async def review(
        self, name: str, raw_args: dict[str, Any] | str | None, ctx: ToolContext
    ) -> tuple[WriteRequest, ApprovalDecision] | None:
        """A write call as its reviewer sees it and the context's decision on it (None: not a write, or its
        arguments are invalid, which :meth:`call` reports). An escalated write carries its preview
        (:meth:`preview`): the person deciding sees what would be written."""
        checked = self._validated(name, raw_args)
        if isinstance(checked, ToolResult) or not checked[0].writes:
            return None
        request = await self._write_request(*checked, ctx)
        if isinstance(request, ToolResult):
            return None  # the write cannot be made (e.g. its order does not exist): call() reports why
        decision = await self._decide(request, ctx)
        if decision.verdict == "escalate":
            request = request.model_copy(update={"preview": await self._preview(*checked, ctx, request)})
        return request, decision

    @staticmethod
    async def _write_request(item: Tool, args: ToolArgs, ctx: ToolContext) -> WriteRequest | ToolResult:
        """The write as its policy sees it, naming the one patient it is about (or why it cannot be made)."""
        try:
            patient = await patient_of_write(item, args, ctx)
        except Exception as exc:  # noqa: BLE001 - a record that cannot be read is the model's to fix
            return failure_of(exc, item)
        return WriteRequest(
            tool=item.name,
            arguments=args.model_dump(mode="json", exclude_none=True),
            destructive=item.destructive,
            patient=patient,
            context_patient=ctx.patient,
            run_id=ctx.run_id,
        )

    @staticmethod
    async def _decide(request: WriteRequest, ctx: ToolContext) -> ApprovalDecision:
        """The one place a write is decided: the run context's approval policy."""
        try:
            return await ctx.approval.decide(request)
        except Exception as exc:  # noqa: BLE001 - an approval failure must not end the run
            log.exception("approval policy %s failed for %s", getattr(ctx.approval, "name", "?"), request.tool)
            return ApprovalDecision(verdict="reject", by="approval step", reason=f"it failed ({type(exc).__name__})")

    def _validated(self, name: str, raw_args: dict[str, Any] | str | None) -> tuple[Tool, ToolArgs] | ToolResult:
        item = self._tools.get(name)
        if item is None:
            return ToolResult.failure(f"unknown tool {name!r}; available tools: {', '.join(self._tools)}")
        if isinstance(raw_args, str):
            try:
                raw_args = json.loads(raw_args) if raw_args.strip() else {}
            except json.JSONDecodeError as exc:
                return ToolResult.failure(
                    f"arguments of {name} are not valid JSON ({exc.msg}); example: {item.example_text()}"
                )
        if raw_args is None:
            raw_args = {}
        if not isinstance(raw_args, dict):
            return ToolResult.failure(f"arguments of {name} must be a JSON object; example: {item.example_text()}")
        try:
            return item, item.args_model.model_validate(raw_args)
        except ValidationError as exc:
            return ToolResult.failure(
                f"bad arguments for {name}: {describe_validation(exc)}. Example: {item.example_text()}"
            )

    # exports ---------------------------------------------------------------------------
    def openai_schemas(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """OpenAI-style ``tools`` entries (vLLM accepts the same)."""
        return [item.openai_schema() for item in self.select(names)]

    def langchain_tools(self, ctx: ToolContext, names: Iterable[str] | None = None) -> list[Any]:
        """LangChain ``StructuredTool``s bound to a context; they return (text, ToolResult)."""
        from langchain_core.tools import StructuredTool

        def bind(item: Tool) -> Any:
            async def run(**kwargs: Any) -> tuple[str, ToolResult]:
                result = await self.call(item.name, kwargs, ctx)
                return (f"ERROR: {result.error}" if result.error else result.text), result

            def invalid(exc: Any) -> str:  # LangChain validates first: answer like Registry.call would
                detail = describe_validation(exc) if isinstance(exc, ValidationError) else str(exc)
                return f"ERROR: bad arguments for {item.name}: {detail}. Example: {item.example_text()}"

            return StructuredTool.from_function(
                coroutine=run,
                name=item.name,
                description=item.description,
                args_schema=item.args_model,
                response_format="content_and_artifact",
                infer_schema=False,
                handle_validation_error=invalid,
            )

        return [bind(item) for item in self.select(names)]

    def describe(self, names: Iterable[str] | None = None) -> str:
        """One line per tool: name(args) - summary (for prompts and docs)."""
        lines = []
        for item in self.select(names):
            params = item.parameters()
            required = set(params.get("required", []))
            args = ", ".join(f"{key}{'' if key in required else '?'}" for key in params.get("properties", {}))
            lines.append(f"- {item.name}({args}): {item.summary}")
        return "\n".join(lines)


def tool(
    fn: ToolFn | None = None,
    *,
    writes: bool = False,
    destructive: bool = False,
    idempotent: bool = True,
    example: dict[str, Any] | None = None,
    name: str | None = None,
    args: type[ToolArgs] | None = None,
    registry: Registry | None = None,
) -> Any:
    """Make a :class:`Tool` from ``async def fn(ctx: ToolContext, args: Model) -> ToolResult``.

    Used bare (``@tool``) or with options (``@tool(writes=True, example={...})``); the name is the function's,
    the description its docstring, the argument schema the ``ToolArgs`` model its second parameter is annotated
    with (``args=`` gives the model where the annotation cannot be resolved from the module, e.g. a model defined
    inside a function). The result is the ``Tool`` itself, usable in ``Agent(model, tools=[...])`` or a
    :class:`Registry`; nothing is registered anywhere unless ``registry`` is given.
    """

    def decorate(function: ToolFn) -> Tool:
        params = list(inspect.signature(function).parameters)
        if len(params) != 2:
            raise TypeError(f"tool {function.__name__} must take (ctx, args)")
        model = args if args is not None else _argument_model(function, params[1])
        if not (isinstance(model, type) and issubclass(model, ToolArgs)):
            raise TypeError(f"tool {function.__name__}: its second parameter must be annotated with a ToolArgs model")
        description = inspect.cleandoc(function.__doc__ or "").strip()
        if not description:
            raise TypeError(f"tool {function.__name__} needs a docstring: it is the description the model reads")
        if writes and not record_arguments(model):
            raise TypeError(
                f"write tool {name or function.__name__} must name its patient: an argument typed "
                "PatientRef or a reference marked RecordOf (medagent.tools.registry)"
            )
        if example is not None:
            model.model_validate(example)  # examples shown to models must themselves be valid
        item = Tool(
            name=name or function.__name__,
            description=description,
            args_model=model,
            fn=function,
            writes=writes,
            destructive=destructive,
            idempotent=idempotent,
            example=dict(example or {}),
        )
        if registry is not None:
            registry.add(item)
        return item

    return decorate(fn) if fn is not None else decorate


def _argument_model(function: ToolFn, parameter: str) -> Any:
    """The annotation of the tool's argument parameter, resolved in the function's module."""
    try:
        return get_type_hints(function).get(parameter)
    except NameError as exc:
        raise TypeError(
            f"tool {function.__name__}: cannot resolve the annotation of {parameter!r} ({exc}); "
            "pass the model with @tool(args=...)"
        ) from None


TOOL_MODULES = ("read_patients", "read_clinical", "manifest", "search_generic", "write_clinical", "notes")


@functools.cache
def default_registry() -> Registry:
    """Every medagent tool: the :class:`Tool` objects of the tool modules, in module then definition order."""
    import importlib

    found: list[Tool] = []
    for module_name in TOOL_MODULES:
        module = importlib.import_module(f"medagent.tools.{module_name}")
        found += sorted(
            (
                value
                for value in vars(module).values()
                if isinstance(value, Tool) and value.fn.__module__ == module.__name__
            ),
            key=lambda t: t.fn.__code__.co_firstlineno,
        )
    return Registry(found)


# helpers ---------------------------------------------------------------------------------

_EXAMPLE_ID = re.compile(r"example-([a-z]+)-0")


def placeholder_ids(text: str) -> str:
    """'example-patient-0' -> '<id from find_patients>', 'example-condition-0' -> '<id from a row>'."""
    return _EXAMPLE_ID.sub(lambda m: "<id from find_patients>" if m[1] == "patient" else "<id from a row>", text)


def describe_validation(exc: ValidationError, limit: int = 3) -> str:
    """Pydantic errors as one short line: 'limit: must be <= 100; since: not a date ...'."""
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "__root__") or "arguments"
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown argument"
        elif error.get("type") == "missing":
            message = "required"
        parts.append(f"{where}: {message}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


async def patient_of_write(item: Tool, args: ToolArgs, ctx: ToolContext) -> str:
    """The Patient.id a write is about, from its :class:`RecordOf` arguments: a Patient id as given, a record
    read from the server (its subject). Raises :class:`ToolError` when they name two patients or none."""
    named: list[tuple[str, str, str]] = []  # (argument, what it names, patient)
    for argument, marker in record_arguments(item.args_model):
        value = getattr(args, argument, None)
        if not isinstance(value, str) or not value:
            continue
        if marker.kind == "patient":
            named.append((argument, f"Patient/{value.removeprefix('Patient/')}", value.removeprefix("Patient/")))
            continue
        reference = marker.reference(value)
        owner = patient_of(await ctx.client.resolve(reference))
        if owner is None:
            raise ToolError(
                f"{argument}: {reference} is not a record of a patient; medagent writes only to a patient's record",
                example=False,
            )
        named.append((argument, reference, owner))
    if not named:
        raise ToolError(f"{item.name} names no patient: give the patient or the record it is about")
    first_argument, _, patient = named[0]
    for argument, reference, owner in named[1:]:
        if owner != patient:
            raise ToolError(
                f"{argument}: {reference} belongs to Patient/{owner}, not to Patient/{patient} "
                f"({first_argument}); a write is about one patient",
                example=False,
            )
    return patient


def failure_of(exc: BaseException, item: Tool) -> ToolResult:
    """What the model reads when a tool call (or the reads that decide a write) raised."""
    if isinstance(exc, ToolError):
        suffix = f" Example: {item.example_text()}" if exc.example else ""
        return ToolResult.failure(exc.message + suffix)
    if isinstance(exc, FhirOperationError):
        return ToolResult.failure(fhir_error_message(item.name, exc, item))
    if isinstance(exc, FhirTransportError):
        return ToolResult.failure(f"the FHIR server could not be reached ({exc}); try again later")
    if isinstance(exc, FhirClientError):
        return ToolResult.failure(f"FHIR client error: {exc}")
    log.error("tool %s failed", item.name, exc_info=exc)
    return ToolResult.failure(f"internal error in {item.name}: {type(exc).__name__}: {exc}")


def refusal_message(name: str, decision: ApprovalDecision) -> str | None:
    """What the model reads when a write is not approved (None: approved)."""
    if decision.verdict == "approve":
        return None
    if decision.by == "read-only":
        return (
            f"refused: read-only mode; {name} would write to the EHR and writes are disabled for this run. "
            "Answer from what you can read, or say the write could not be made."
        )
    if decision.verdict == "escalate":
        why = f" ({decision.reason})" if decision.reason else ""
        return f"refused: {name} needs a reviewer's approval{why} and no reviewer is attached to this run"
    return f"refused: {name} was not approved ({decision.label}); do not retry it"


def fhir_error_message(name: str, exc: FhirOperationError, item: Tool) -> str:
    if isinstance(exc, FhirNotFound):
        return f"not found: {exc.message}. Check the id (find_patients gives patient ids; rows give Type/id)."
    if isinstance(exc, FhirInvalid):
        return f"the FHIR server rejected {name}'s request: {exc.message}. Example: {item.example_text()}"
    if isinstance(exc, FhirConflict):
        return f"conflict: {exc.message}; read the resource again and retry"
    if isinstance(exc, FhirForbidden):
        return f"not allowed by the FHIR server: {exc.message}"
    return f"FHIR server error {exc.status}: {exc.message}"


def enforce_budget(result: ToolResult, ctx: ToolContext) -> ToolResult:
    """Last line of defence: a text over twice the budget is cut with an explicit marker."""
    limit = ctx.char_budget * 2
    if len(result.text) > limit:
        cut = result.text[:limit].rsplit("\n", 1)[0]
        result.text = cut + f"\n... output cut at the token budget ({ctx.token_budget} tokens); narrow the request"
    return result


def simplify_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline $defs, drop titles, collapse optional ``anyOf [X, null]`` to X, forbid extra properties."""
    defs = schema.get("$defs", {})

    def walk(node: Any, *, optional: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = defs[node["$ref"].split("/")[-1]]
            merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged, optional=optional)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "$defs"):
                continue
            if key == "properties":
                required = set(node.get("required", []))
                out[key] = {k: walk(v, optional=k not in required) for k, v in value.items()}
            else:
                out[key] = walk(value)
        if optional and "anyOf" in out:
            kept = [o for o in out["anyOf"] if o.get("type") != "null"]
            if len(kept) == 1:
                rest = {k: v for k, v in out.items() if k != "anyOf"}
                out = {**kept[0], **rest}
        if optional and out.get("default", 0) is None:
            out.pop("default")
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out

    return walk(schema)
