"""The garbage collector and long-lived processes: what startup allocated is kept out of its passes.

A full collection scans every tracked object. In a server or a benchmark run most of them (modules, pydantic
models and schemas, routes, the compiled agent, the scenarios) live as long as the process, so each full pass
costs the whole heap, not what is garbage: measured on the runner, 180-350 ms per pass with the event loop, and
every task in flight, held for all of it. ``gc.freeze()`` moves what exists now to a generation the collector
never scans; objects allocated later are collected as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["freeze_startup_objects", "startup_frozen"]


def freeze_startup_objects() -> None:
    """What startup allocated (models, routes) lives as long as the server: keep it out of the collector's
    passes, so full collections during requests stay short (tail latency)."""
    gc.collect()
    gc.freeze()


@contextmanager
def startup_frozen() -> Iterator[None]:
    """A phase (a benchmark run's tasks) with everything allocated before it frozen (:func:`freeze_startup_objects`);
    thawed at the end, so what was frozen can be collected again."""
    freeze_startup_objects()
    try:
        yield
    finally:
        gc.unfreeze()
