"""Child processes that end with their parent, SIGKILL of the parent included.

A daemon thread polls ``os.getppid()``: when the parent dies the child is re-parented (to init or
a subreaper), the pid changes, and the child sends itself SIGTERM (a graceful shutdown: uvicorn
closes, the lifespan stops the validation workers), then exits hard if that has not ended it.
Polling is used rather than ``PR_SET_PDEATHSIG`` because that signal fires when the parent
*thread* that started the child exits (the runner starts servers from worker threads).
"""

from __future__ import annotations

import os
import signal
import threading
import time

POLL_SECONDS = 0.25
GRACE_SECONDS = 10.0


def end_with_parent(parent_pid: int) -> None:
    """Start the watch (idempotent per process); exits at once if the parent is already gone."""
    if getattr(end_with_parent, "started", False):
        return
    end_with_parent.started = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=_watch, args=(parent_pid,), name="parent-watch", daemon=True)
    thread.start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_SECONDS)
    os._exit(1)
