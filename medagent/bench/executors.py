"""Where a scored run's tasks execute, behind one interface (:class:`Executor`).

- :class:`LocalExecutor`: this process; one worker per concurrent task, each with its own task database
  (a slot of one embedded ``medagent fhir serve --slots N`` process) or one of the ``--fhir-url`` standard
  servers.
- :class:`RayExecutor`: a Ray cluster (``bench run --executor ray [--address ADDR]``); actors spread over
  its nodes, each with its own solver and ``--actor-slots`` tasks in flight (the slots of one embedded
  server on its node, or its share of the standard server URLs).

Either way every finished task comes back to this process as a :class:`TaskRecord` through ``deliver``,
which the runner appends to the one results log: resume, the summary and the report do not know which
executor ran the tasks.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from medagent.bench.results import TaskRecord
from medagent.bench.servers import (
    ClientLending,
    ExternalServers,
    ServerPool,
    template_db,
)
from medagent.bench.solvers import Solver
from medagent.bench.task_run import ScoringChoice, run_task
from medagent.config import UserError
from medagent.heap import freeze_startup_objects, startup_frozen
from medagent.scenarios.models import Scenario

EXECUTORS = ("local", "ray")
DEFAULT_ACTOR_SLOTS = 16  # tasks in flight per Ray actor (its one FHIR server's task databases)
RAY_MISSING = "--executor ray needs Ray, which is not installed: pip install 'medagent[ray]'"

Deliver = Callable[[TaskRecord], None]
SolverFactory = Callable[[], Solver]


@dataclass(frozen=True)
class RunPlan:
    """The tasks still to run and what runs them (the same for every executor)."""

    todo: list[tuple[Scenario, int]]
    solver: Solver
    set_hash: str | None
    concurrency: int
    workdir: Path  # where embedded servers keep their database copies (this machine)
    home: Path  # MEDAGENT_HOME: the cached loaded database
    fhir_urls: list[str] | None = None  # standard FHIR servers instead of embedded ones
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set: start no further task (the model failed)
    on_phase: Callable[[str], None] | None = None  # told "tasks" (servers up) and "done" (servers still up)

    def enter_phase(self, name: str) -> None:
        if self.on_phase is not None:
            self.on_phase(name)

    @property
    def workers(self) -> int:
        """Tasks in flight: one per standard server, else ``concurrency``; never more than the tasks."""
        return max(1, min(len(self.fhir_urls) if self.fhir_urls else self.concurrency, len(self.todo)))


class Executor(Protocol):
    name: str

    async def run(self, plan: RunPlan, deliver: Deliver, timing: dict[str, Any]) -> None:
        """Run every task of ``plan``, calling ``deliver(record)`` in this process as each one finishes, and
        starting none once ``plan.stop`` is set; sets ``timing["servers_start_s"]`` and ``timing["tasks_wall_s"]``."""


class LocalExecutor:
    """Tasks in this process: ``plan.workers`` asyncio workers, each lent one server at a time."""

    name = "local"

    async def run(self, plan: RunPlan, deliver: Deliver, timing: dict[str, Any]) -> None:
        queue: asyncio.Queue[tuple[Scenario, int]] = asyncio.Queue()
        for item in plan.todo:
            queue.put_nowait(item)
        choice = ScoringChoice(standard=bool(plan.fhir_urls))

        async def worker(pool: ClientLending) -> None:
            while not queue.empty() and not plan.stop.is_set():
                scenario, trial = queue.get_nowait()
                async with pool.acquire() as client:
                    record = await run_task(
                        scenario,
                        trial,
                        plan.solver,
                        client,
                        plan.set_hash,
                        scoring=await choice.scoring_for(client, scenario, trial),
                    )
                deliver(record)

        started = time.perf_counter()
        servers = (
            ExternalServers(plan.fhir_urls) if plan.fhir_urls else ServerPool(plan.workers, plan.workdir, plan.home)
        )
        async with servers as pool:
            await choice.prepare(pool.clients)
            timing["servers_start_s"] = round(time.perf_counter() - started, 2)
            with startup_frozen():
                plan.enter_phase("tasks")
                started = time.perf_counter()
                await asyncio.gather(*(worker(pool) for _ in range(plan.workers)))
                timing["tasks_wall_s"] = round(time.perf_counter() - started, 3)
                plan.enter_phase("done")


def import_ray() -> Any:
    """The ``ray`` module, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


class TaskActor:
    """A Ray actor (the body of a ``ray.remote`` class): its own solver and ``slots`` FHIR servers (the task
    databases of one embedded server, or its share of the standard servers), one task at a time on each.

    The embedded server keeps its task databases in a private temporary folder on the actor's node; the
    loaded template comes from ``home`` there (built on first use)."""

    def __init__(self, make_solver: SolverFactory, home: str, fhir_urls: list[str] | None, slots: int = 1) -> None:
        self.solver = make_solver()
        self.home = Path(home)
        self.fhir_urls = fhir_urls
        self.slots = slots
        self.folder: Path | None = None
        self.servers: ClientLending | None = None
        self.choice = ScoringChoice(standard=fhir_urls is not None)

    async def start(self) -> None:
        if self.fhir_urls is not None:
            servers: ExternalServers | ServerPool = ExternalServers(self.fhir_urls)
        else:
            self.folder = new_work_folder()
            servers = ServerPool(self.slots, self.folder, self.home)
        await servers.__aenter__()
        self.servers = servers
        await self.choice.prepare(servers.clients)
        freeze_startup_objects()  # the actor's process lives for the run (medagent.heap)

    async def run(self, scenario_json: str, trial: int, set_hash: str | None) -> str:
        """One task; the record as JSON (the same record the local executor writes)."""
        assert self.servers is not None, "start() first"
        scenario = Scenario.model_validate_json(scenario_json)
        async with self.servers.acquire() as client:
            record = await run_task(
                scenario,
                trial,
                self.solver,
                client,
                set_hash,
                scoring=await self.choice.scoring_for(client, scenario, trial),
            )
        return record.model_dump_json()

    async def stop(self) -> None:
        if self.servers is not None:
            await self.servers.__aexit__(None, None, None)  # type: ignore[attr-defined]
            self.servers = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


WORK_FOLDER_PREFIX = "medagent-ray-"
OWNER_FILE = "owner.pid"


def new_work_folder() -> Path:
    """A private temporary folder for an actor's database copies, naming its owning process (``owner.pid``).
    Folders left by processes that are gone (a SIGKILLed run: nothing removed them) are removed first, so a
    new or resumed run on the node cleans up after a killed one."""
    remove_orphaned_work_folders()
    folder = Path(tempfile.mkdtemp(prefix=WORK_FOLDER_PREFIX))
    (folder / OWNER_FILE).write_text(str(os.getpid()))
    return folder


def remove_orphaned_work_folders() -> list[Path]:
    """Remove the work folders (in this node's temporary folder) whose owning process no longer runs; a folder
    without an owner file yet (being created) or owned by a live process is left alone."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_FOLDER_PREFIX}*"):
        try:
            owner = int((folder / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _process_alive(owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _same_solver(solver: Solver) -> SolverFactory:
    return lambda: solver


class RayExecutor:
    """Tasks as calls on Ray actors spread over the cluster's nodes (``plan.workers`` FHIR servers in all);
    results stream back as each task finishes.

    ``address``: a running cluster (``ray start --head`` / ``auto``); None starts a local one with
    ``num_cpus`` (stopped at the end). A Ray already initialised in this process is used as it is.
    ``solver_factory``: builds each actor's solver on its node (``bench run`` passes the ``--agent``/``--model``
    choice, so every actor opens its own model connections); None ships the run's solver itself (code solvers).
    ``slots_per_actor``: tasks in flight per actor (task databases of its one FHIR server); 1 is one actor
    (and one server process) per task in flight.
    Actors reserve no CPU (they wait on the model and their server), so concurrency is not capped by cores.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        solver_factory: SolverFactory | None = None,
        num_cpus: int | None = None,
        slots_per_actor: int = DEFAULT_ACTOR_SLOTS,
    ) -> None:
        if slots_per_actor < 1:
            raise ValueError("slots_per_actor must be at least 1")
        self.slots_per_actor = slots_per_actor
        self.address = address
        self.solver_factory = solver_factory
        self.num_cpus = num_cpus

    async def run(self, plan: RunPlan, deliver: Deliver, timing: dict[str, Any]) -> None:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None and self.num_cpus is not None:
                options["num_cpus"] = self.num_cpus
            try:
                ray.init(address=self.address, **options)
            except ConnectionError as exc:
                raise UserError(f"--address {self.address}: cannot connect to a Ray cluster ({exc})") from None
        try:
            await self._run_on_actors(ray, plan, deliver, timing)
        finally:
            if started_here:
                ray.shutdown()

    async def _run_on_actors(self, ray: Any, plan: RunPlan, deliver: Deliver, timing: dict[str, Any]) -> None:
        make_solver = self.solver_factory or _same_solver(plan.solver)
        if not plan.fhir_urls:
            await asyncio.to_thread(template_db, plan.home)  # built once here, not raced by the actors of this node
        actor_class = ray.remote(TaskActor).options(num_cpus=0, scheduling_strategy="SPREAD")
        slots = [
            list(range(first, min(first + self.slots_per_actor, plan.workers)))
            for first in range(0, plan.workers, self.slots_per_actor)
        ]
        started = time.perf_counter()
        actors = [
            actor_class.remote(
                make_solver,
                str(plan.home),
                [plan.fhir_urls[i] for i in indexes] if plan.fhir_urls else None,
                len(indexes),
            )
            for indexes in slots
        ]
        try:
            await asyncio.gather(*(actor.start.remote() for actor in actors))
            timing["servers_start_s"] = round(time.perf_counter() - started, 2)
            queue: asyncio.Queue[tuple[Scenario, int]] = asyncio.Queue()
            for item in plan.todo:
                queue.put_nowait(item)

            async def feed(actor: Any) -> None:
                while not queue.empty() and not plan.stop.is_set():
                    scenario, trial = queue.get_nowait()
                    raw = await actor.run.remote(scenario.model_dump_json(), trial, plan.set_hash)
                    deliver(TaskRecord.model_validate_json(raw))

            plan.enter_phase("tasks")
            started = time.perf_counter()
            await asyncio.gather(*(feed(actor) for actor, indexes in zip(actors, slots, strict=True) for _ in indexes))
            timing["tasks_wall_s"] = round(time.perf_counter() - started, 3)
            plan.enter_phase("done")
        finally:
            await asyncio.gather(*(actor.stop.remote() for actor in actors), return_exceptions=True)
            for actor in actors:
                ray.kill(actor)


def make_executor(
    name: str,
    *,
    address: str | None = None,
    solver_factory: SolverFactory | None = None,
    slots_per_actor: int | None = None,
) -> Executor:
    """The executor for ``bench run --executor NAME``; a bad name or an ``--address`` without Ray is a UserError."""
    if name == "local":
        if address is not None or slots_per_actor is not None:
            raise UserError("--address and --actor-slots apply to --executor ray only")
        return LocalExecutor()
    if name == "ray":
        import_ray()
        return RayExecutor(
            address=address, solver_factory=solver_factory, slots_per_actor=slots_per_actor or DEFAULT_ACTOR_SLOTS
        )
    raise UserError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
