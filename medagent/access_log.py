"""The server's append-only access log: who, what, when — never record content.

One JSON line per request: time (UTC), client address, whether it carried the server's token,
method, path, the *names* of the query parameters (values can hold names or dates of birth, so
they are left out), status and duration. The file is opened in append mode for each server
process; lines are written whole (one ``write`` per line) and flushed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import orjson


def query_names(query: str) -> set[str]:
    """The parameter names of a query string, decoded as ``parse_qsl`` decodes them (values never looked at)."""
    names = set()
    for pair in query.split("&"):
        if pair:
            name = pair.partition("=")[0]
            names.add(unquote_plus(name) if "%" in name or "+" in name else name)
    return names


class AccessLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab", buffering=0)
        self._lock = threading.Lock()

    def write(
        self, scope: Mapping[str, Any], headers: dict[str, str], status: int, seconds: float, *, authenticated: bool
    ) -> None:
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        names = sorted(query_names(query))
        line = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "client": f"{client[0]}:{client[1]}" if client else None,
            "authenticated": authenticated,
            "user_agent": headers.get("user-agent", "")[:120],
            "method": scope.get("method"),
            "path": scope.get("path"),
            "params": names[:50],
            "status": status,
            "ms": round(seconds * 1000, 1),
        }
        with self._lock:
            self._file.write(orjson.dumps(line) + b"\n")

    def close(self) -> None:
        self._file.close()
