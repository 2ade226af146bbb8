"""The ONE adapter between the HTTP service and the agent layer: start, stream, decide, get, list runs.

Every call into ``medagent.agent`` made by ``medagent.serve`` is in this module, and trace steps
are read through :func:`step_view` only, so a change of the agent API is ported here alone.
Runs are driven as background tasks; their state lives in the agent's SQLite checkpointer, so a
restarted service lists, shows, approves and resumes the runs of the previous process.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from medagent.agent.graph import Agent, ApprovalPolicy
from medagent.agent.state import Limits
from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirNotFound
from medagent.models.base import ModelBackend
from medagent.serve.schemas import (
    NextAction,
    PendingWrite,
    RunState,
    RunSummary,
    RunView,
    StepView,
)
from medagent.tools.approval import ApprovalMode, WritePreview
from medagent.tools.registry import FINAL_ANSWER, Registry, default_registry

log = logging.getLogger("medagent.serve.runs")


class RunError(Exception):
    """A request about a run that cannot be served; ``code`` and ``status`` go to the HTTP answer."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunNotFound(RunError):
    status, code = 404, "unknown_run"


class UnknownPatient(RunError):
    status, code = 404, "unknown_patient"


class RunConflict(RunError):
    status, code = 409, "conflict"


class AlreadyDecided(RunConflict):
    code = "already_decided"


def step_field(step: Mapping[str, Any] | object, name: str, default: Any = None) -> Any:
    """One field of a trace step, whether the agent gives steps as mappings or as typed objects."""
    if isinstance(step, Mapping):
        value = step.get(name, default)
    else:
        value = getattr(step, name, default)
    return default if value is None else value


def step_view(step: Mapping[str, Any] | object) -> StepView:
    """The API's view of one trace step (the only place that knows the agent's step fields)."""
    tool = step_field(step, "tool")
    kind = "invalid" if not tool else "answer" if tool == FINAL_ANSWER else "tool"
    return StepView(
        step=step_field(step, "step"),
        kind=kind,
        tool=tool,
        arguments=step_field(step, "arguments"),
        model_output=step_field(step, "model_output"),
        result=step_field(step, "result"),
        error=step_field(step, "error"),
        references=list(step_field(step, "references", [])),
        wrote=list(step_field(step, "wrote", [])),
        approval=step_field(step, "approval"),
        note=step_field(step, "note"),
        model_s=step_field(step, "model_s"),
        tool_s=step_field(step, "tool_s"),
        prompt_tokens=step_field(step, "prompt_tokens"),
        completion_tokens=step_field(step, "completion_tokens"),
    )


class NotifyingSqliteSaver(AsyncSqliteSaver):
    """LangGraph's SQLite checkpointer that also reports each saved checkpoint (how steps are streamed)."""

    on_checkpoint: Callable[[str], None] | None = None

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        if self.on_checkpoint is not None:
            self.on_checkpoint(str(config["configurable"]["thread_id"]))
        return saved


@dataclass(frozen=True)
class RunEvent:
    """One server-sent event: ``step``, ``action``, ``approval``, ``status`` or ``done``."""

    event: str
    data: str
    id: str | None = None


@dataclass(frozen=True)
class _Launch:
    question: str
    patient: str | None
    now: str
    started_at: float


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds") if seconds else None


class RunManager:
    """Runs of one agent: started, streamed, decided and listed through the agent's checkpointer."""

    def __init__(self, agent: Agent, saver: NotifyingSqliteSaver, client: FhirClient, *, max_active: int = 4) -> None:
        self.agent = agent
        self.client = client
        self.registry: Registry = agent.registry
        self._saver = saver
        saver.on_checkpoint = self._changed
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._launched: dict[str, _Launch] = {}
        self._clients: dict[str, FhirClient] = {}  # run id -> the run's own FHIR client (SMART launches)
        self._failures: dict[str, str] = {}
        self._decided: dict[str, str] = {}
        self._signals: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(max_active)

    # commands -------------------------------------------------------------------------------
    async def start(
        self, question: str, *, patient: str | None, now: str | None, client: FhirClient | None = None
    ) -> RunView:
        """Check the patient exists, then run the agent in the background; returns at once. ``client``: the
        run's own FHIR client (a SMART launch's, with its token), kept for its approvals and resumes."""
        fhir = client or self.client
        if patient is not None:
            try:
                await fhir.read_json("Patient", patient)
            except FhirNotFound:
                raise UnknownPatient(f"unknown patient {patient!r}: the FHIR server has no Patient/{patient}") from None
        moment = now or datetime.now(UTC).isoformat(timespec="seconds")
        run_id = str(uuid.uuid4())
        self._launched[run_id] = _Launch(question, patient, moment, time.time())
        if client is not None:
            self._clients[run_id] = client
        self._spawn(run_id, lambda: self.agent.run(question, now=moment, patient=patient, run_id=run_id, client=client))
        log.info("run %s started", run_id)
        return await self.get(run_id)

    async def decide(self, run_id: str, *, pending_id: str, approve: bool, reason: str = "") -> RunView:
        """Approve or reject the write ``pending_id`` that ``run_id`` waits on, exactly once."""
        async with self._lock(run_id):
            if pending_id in self._decided:
                raise AlreadyDecided(
                    f"write {pending_id} of run {run_id} was already {self._decided[pending_id]}; "
                    "nothing was done again"
                )
            view = await self.get(run_id)
            if view.pending_write is None:
                raise RunConflict(f"run {run_id} has no write waiting for a decision (it is {view.state})")
            if view.pending_write.id != pending_id:
                raise RunConflict(f"run {run_id} waits on write {view.pending_write.id}, not {pending_id}")
            self._decided[pending_id] = "approved" if approve else "rejected"
            self._spawn(
                run_id,
                lambda: self.agent.resume(run_id, approve=approve, reason=reason, client=self._clients.get(run_id)),
            )
        log.info("run %s write %s %s", run_id, pending_id, self._decided[pending_id])
        return await self.get(run_id)

    async def resume(self, run_id: str) -> RunView:
        """Continue a run whose process stopped between steps (from its last checkpoint)."""
        async with self._lock(run_id):
            view = await self.get(run_id)
            if view.state != "interrupted":
                raise RunConflict(
                    f"run {run_id} is {view.state}; only an interrupted run can be resumed"
                    + (" (decide its pending write instead)" if view.state == "awaiting_approval" else "")
                )
            self._failures.pop(run_id, None)
            self._spawn(run_id, lambda: self.agent.resume(run_id, client=self._clients.get(run_id)))
        log.info("run %s resumed", run_id)
        return await self.get(run_id)

    # queries --------------------------------------------------------------------------------
    async def get(self, run_id: str) -> RunView:
        snapshot = await self.agent.graph.aget_state(self._config(run_id))
        values: dict[str, Any] = dict(snapshot.values or {})
        if not values:
            launch = self._launched.get(run_id)
            if launch is None:
                raise RunNotFound(f"no run {run_id!r} (not started here and not in the checkpoints)")
            running = run_id in self._tasks  # else it failed before its first checkpoint
            return RunView(
                run_id=run_id,
                question=launch.question,
                patient=launch.patient,
                now=launch.now,
                state="running" if running else "finished",
                status="running" if running else "failed",
                error=self._failures.get(run_id),
                started_at=_iso(launch.started_at),
            )
        state = self._state(run_id, snapshot)
        pending = values.get("pending") or None
        next_action = None
        if pending and state == "running":
            next_action = NextAction(
                step=step_field(pending.get("record") or {}, "step"),
                tool=pending["tool"],
                arguments=pending.get("arguments") or {},
                writes=self._writes(pending["tool"]),
            )
        return RunView(
            run_id=run_id,
            question=values.get("question", ""),
            patient=values.get("patient"),
            now=values.get("now", ""),
            state=state,
            status=values.get("status", "running"),
            answer=values.get("answer"),
            citations=list(values.get("citations") or []),
            error=values.get("error") or self._failures.get(run_id),
            steps=[step_view(s) for s in values.get("trace", [])],
            step_count=values.get("steps", 0),
            prompt_tokens=values.get("prompt_tokens", 0),
            completion_tokens=values.get("completion_tokens", 0),
            next_action=next_action,
            pending_write=self._pending_write(snapshot, values),
            started_at=_iso(values.get("started_at")),
        )

    async def list(self, limit: int = 20) -> list[RunSummary]:
        """Recent runs, newest first: this process's and those in the checkpointer from earlier ones."""
        run_ids = [r for r, launch in sorted(self._launched.items(), key=lambda kv: -kv[1].started_at)]
        async for item in self._saver.alist(None, filter={"step": -1}, limit=limit + len(run_ids)):
            run_id = str(item.config["configurable"]["thread_id"])
            if run_id not in run_ids:
                run_ids.append(run_id)
        views = [await self.get(run_id) for run_id in run_ids]
        views.sort(key=lambda v: v.started_at or "", reverse=True)
        return [
            RunSummary(
                run_id=v.run_id,
                question=v.question,
                patient=v.patient,
                now=v.now,
                state=v.state,
                status=v.status,
                step_count=v.step_count,
                started_at=v.started_at,
            )
            for v in views[:limit]
        ]

    async def events(self, run_id: str, *, after: int = 0, keepalive_s: float = 15.0) -> AsyncIterator[RunEvent]:
        """The run as events: each model action and finished step once, in order, then ``done``.

        Step event ids count finished steps, so a reconnect with Last-Event-ID skips those already sent.
        Actions come from every checkpoint since the last look, so none is missed however fast a tool runs.
        """
        sent, acted = after, after
        seen_checkpoint: str | None = None
        last_status = last_pending = None
        while True:
            signal = self._signals.setdefault(run_id, asyncio.Event())
            actions, seen_checkpoint = await self._actions_since(run_id, seen_checkpoint)
            view = await self.get(run_id)
            for index, step in enumerate(view.steps[sent:], start=sent + 1):
                if step.step is not None and step.step in actions and step.step > acted:
                    yield RunEvent("action", actions[step.step].model_dump_json())
                    acted = step.step
                yield RunEvent("step", step.model_dump_json(), id=str(index))
            sent = max(sent, len(view.steps))
            for number in sorted(n for n in actions if n > acted):
                yield RunEvent("action", actions[number].model_dump_json())
                acted = number
            status = (view.state, view.status, view.step_count, view.prompt_tokens, view.completion_tokens)
            if status != last_status:
                last_status = status
                yield RunEvent("status", _status_json(view))
            pending = view.pending_write.model_dump_json() if view.pending_write else None
            if pending and pending != last_pending:
                yield RunEvent("approval", pending)
            last_pending = pending
            if view.state in ("finished", "interrupted"):
                yield RunEvent("done", view.model_dump_json())
                return
            try:
                await asyncio.wait_for(signal.wait(), timeout=keepalive_s)
            except TimeoutError:
                pass

    async def _actions_since(self, run_id: str, seen: str | None) -> tuple[dict[int, NextAction], str | None]:
        """The tool calls the model chose in checkpoints newer than ``seen`` (by step), and the newest checkpoint id."""
        newer = []
        async for item in self._saver.alist(self._config(run_id), limit=200):
            checkpoint_id = item.config["configurable"]["checkpoint_id"]
            if checkpoint_id == seen:
                break
            newer.append((checkpoint_id, item.checkpoint.get("channel_values", {}).get("pending")))
        actions: dict[int, NextAction] = {}
        for _, pending in reversed(newer):
            if pending and pending.get("tool"):
                number = step_field(pending.get("record") or {}, "step")
                if number is not None:
                    actions.setdefault(
                        int(number),
                        NextAction(
                            step=int(number),
                            tool=pending["tool"],
                            arguments=pending.get("arguments") or {},
                            writes=self._writes(pending["tool"]),
                        ),
                    )
        return actions, newer[0][0] if newer else seen

    # lifecycle ------------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop driving runs (their checkpoints stay: a restarted service resumes them)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # internals ------------------------------------------------------------------------------
    def _spawn(self, run_id: str, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        async def drive() -> None:
            try:
                async with self._slots:
                    await make()
            except asyncio.CancelledError:
                log.info("run %s stopped with the service", run_id)
                raise
            except Exception as exc:
                log.exception("run %s failed", run_id)
                self._failures[run_id] = f"{type(exc).__name__}: {exc}"
            finally:
                self._tasks.pop(run_id, None)
                self._changed(run_id)

        self._tasks[run_id] = asyncio.create_task(drive(), name=f"run-{run_id}")

    def _changed(self, run_id: str) -> None:
        signal = self._signals.pop(run_id, None)
        if signal is not None:
            signal.set()

    def _lock(self, run_id: str) -> asyncio.Lock:
        return self._locks.setdefault(run_id, asyncio.Lock())

    def _state(self, run_id: str, snapshot: Any) -> RunState:
        if run_id in self._tasks:
            return "running"
        if snapshot.interrupts:
            return "awaiting_approval"
        if snapshot.next:
            return "interrupted"
        return "finished"

    def _writes(self, tool: str) -> bool:
        return tool in self.registry and self.registry[tool].writes

    def _pending_write(self, snapshot: Any, values: dict[str, Any]) -> PendingWrite | None:
        if not snapshot.interrupts:
            return None
        interrupt = snapshot.interrupts[0]
        asked: dict[str, Any] = dict(interrupt.value or {})
        tool_name = str(asked.get("tool"))
        arguments = dict(asked.get("arguments") or {})
        item = self.registry[tool_name] if tool_name in self.registry else None
        # the write's own patient, resolved by the registry (WriteRequest.patient): for a write that names no
        # patient argument (stopping an order) it is the order's subject, which may not be the run's patient
        patient_id = str(asked.get("patient") or arguments.get("patient") or values.get("patient") or "").removeprefix(
            "Patient/"
        )
        patient = f"Patient/{patient_id}" if patient_id else None
        preview = asked.get("preview")  # set by Registry.review when it asked a person (WriteRequest.preview)
        return PendingWrite(
            id=str(interrupt.id),
            tool=tool_name,
            title=item.summary if item else tool_name,
            arguments=arguments,
            patient=patient,
            destructive=bool(item and item.destructive),
            preview=WritePreview.model_validate(preview) if preview else None,
        )

    def _config(self, run_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": run_id}}


def _status_json(view: RunView) -> str:
    return view.model_dump_json(
        include={"run_id", "state", "status", "step_count", "prompt_tokens", "completion_tokens", "error"}
    )


@asynccontextmanager
async def open_run_manager(
    *,
    model: ModelBackend,
    client: FhirClient,
    checkpoints: Path,
    approval: ApprovalMode | ApprovalPolicy = "ask",
    limits: Limits | None = None,
    registry: Registry | None = None,
    max_active: int = 4,
) -> AsyncIterator[RunManager]:
    """A RunManager over a new Agent whose checkpoints live in the SQLite file ``checkpoints``."""
    checkpoints.parent.mkdir(parents=True, exist_ok=True)
    async with NotifyingSqliteSaver.from_conn_string(str(checkpoints)) as saver:
        assert isinstance(saver, NotifyingSqliteSaver)
        agent = Agent(
            model=model,
            registry=registry or default_registry(),
            client=client,
            limits=limits or Limits(),
            approval=approval,
            checkpointer=saver,
        )
        manager = RunManager(agent, saver, client, max_active=max_active)
        try:
            yield manager
        finally:
            await manager.close()
