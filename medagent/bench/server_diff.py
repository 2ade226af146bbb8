"""How a scored task is set up, diffed and undone on its server, behind one interface.

- ``EmbeddedServerDiff``: the embedded server's fast path (``$reset`` to the clean snapshot, ``$snapshot``,
  ``$diff``), needing ``--allow-reset``; a task's diff and the reset after it are one request.
- ``StandardServerDiff``: any FHIR R4 server with system-level ``_history`` and ``_since`` (HAPI, a cloud
  FHIR store, the embedded server with its scoring operations off). Setup is one transaction; the diff
  comes from ``GET /_history?_since=`` after setup, keeping the versions tagged with the task's run id
  (``meta.tag`` ``urn:medagent:run``, written by every write tool) and deletions; reset restores the
  before-images (a PUT of the prior version, a DELETE of what was created).

Both assume the server runs one task at a time (the runner lends each server to one task).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Protocol

from medagent.fhir.client import FhirClient
from medagent.fhir.errors import FhirGone, FhirNotFound
from medagent.scenarios.models import Scenario
from medagent.vocabulary import RUN_SYSTEM, parse_instant

Key = tuple[str, str]


class ServerDiff(Protocol):
    async def reset(self) -> None:
        """Bring the server to the clean state (or note where it is, where ``end`` restores it)."""

    async def setup(self, scenario: Scenario) -> None:
        """Write the scenario's setup and mark the baseline its changes are measured from."""

    async def changes(self) -> list[dict[str, Any]]:
        """What the task changed since the baseline, as ``$diff`` ``changes`` entries."""

    async def end(self) -> None:
        """Undo what the task (and its setup) wrote, where the server has no reset of its own."""

    async def begin(self, scenario: Scenario) -> None:
        """Reset, then set up (the runner calls the two apart, to tell which one failed)."""
        await self.reset()
        await self.setup(scenario)


class EmbeddedServerDiff(ServerDiff):
    """The embedded server's own ``$reset``/``$snapshot``/``$diff``: a task ends with its diff and the reset to
    the clean snapshot in one request; ``end`` resets a task that did not get that far. One object per server
    (it serves one task at a time): a task after one that left the server clean starts without a reset."""

    def __init__(self, client: FhirClient, clean_snapshot: int, *, clean: bool = False) -> None:
        self.client = client
        self.clean_snapshot = clean_snapshot
        self.clean = clean  # the server is at the clean snapshot (known, not hoped: the last request said so)
        self.baseline: int | None = None

    async def reset(self) -> None:
        if not self.clean:
            await self.client.reset(snapshot=self.clean_snapshot)
            self.clean = True

    async def setup(self, scenario: Scenario) -> None:
        self.clean = False  # the setup writes, and so may the solver next
        if not scenario.setup:
            self.baseline = self.clean_snapshot  # nothing written since the reset
            return
        for resource in scenario.setup:
            await self.client.update_json(resource)
        self.baseline = await self.client.snapshot()

    async def changes(self) -> list[dict[str, Any]]:
        changes = await self.client.diff(snapshot=self.baseline, then_reset=self.clean_snapshot)
        self.clean = True
        return changes

    async def end(self) -> None:
        await self.reset()


def _version(entry: dict[str, Any]) -> int:
    resource = entry.get("resource") or {}
    raw = (resource.get("meta") or {}).get("versionId") or entry.get("response", {}).get("etag", "")
    return int(str(raw).removeprefix("W/").strip('"'))


def _key(entry: dict[str, Any]) -> Key:
    resource = entry.get("resource")
    if resource:
        return resource["resourceType"], resource["id"]
    kind, _, rid = entry["request"]["url"].split("?")[0].strip("/").partition("/")
    return kind, rid.split("/")[0]


def _modified(entry: dict[str, Any]) -> datetime:
    resource = entry.get("resource") or {}
    stamp = entry.get("response", {}).get("lastModified") or (resource.get("meta") or {}).get("lastUpdated")
    if not stamp:
        raise ValueError(f"history entry {entry.get('fullUrl')} has no lastModified or meta.lastUpdated")
    return parse_instant(stamp)


def _is_deletion(entry: dict[str, Any]) -> bool:
    return entry.get("request", {}).get("method") == "DELETE" or not entry.get("resource")


class StandardServerDiff(ServerDiff):
    """ServerDiff on a standard FHIR server through history and tags (see the module docstring)."""

    def __init__(self, client: FhirClient, run_id: str, *, page_size: int = 200) -> None:
        self.client = client
        self.run_id = run_id
        self.page_size = page_size
        self.setup_keys: set[Key] = set()
        self.before_setup: datetime | None = None
        self.after_setup: datetime | None = None

    async def reset(self) -> None:
        self.before_setup = await self._newest()  # the previous task's ``end`` restored the server

    async def setup(self, scenario: Scenario) -> None:
        self.setup_keys = {(r["resourceType"], r["id"]) for r in scenario.setup}
        if scenario.setup:
            await self.client.transaction(
                {
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [
                        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                        for r in scenario.setup
                    ],
                }
            )
        self.after_setup = await self._newest()

    async def changes(self) -> list[dict[str, Any]]:
        out = []
        for key, versions in (await self._since(self.after_setup)).items():
            if key in self.setup_keys and not any(self._tagged(v) for v in versions):
                continue
            if not any(self._tagged(v) or _is_deletion(v) for v in versions):
                continue  # written by someone else
            before = await self._before(key, versions)
            latest = versions[-1]
            after = None if _is_deletion(latest) else latest["resource"]
            if before is None and after is None:
                continue
            action = "create" if before is None else "delete" if after is None else "update"
            out.append({"resourceType": key[0], "id": key[1], "action": action, "before": before, "after": after})
        return out

    async def end(self) -> None:
        for key, versions in (await self._since(self.before_setup)).items():
            if key not in self.setup_keys and not any(self._tagged(v) or _is_deletion(v) for v in versions):
                continue
            before = await self._before(key, versions)
            if before is not None:
                meta = {k: v for k, v in (before.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
                await self.client.update_json({**before, "meta": meta})
            elif not _is_deletion(versions[-1]):
                await self.client.delete(*key)

    def _tagged(self, entry: dict[str, Any]) -> bool:
        tags = ((entry.get("resource") or {}).get("meta") or {}).get("tag", [])
        return any(t.get("system") == RUN_SYSTEM and t.get("code") == self.run_id for t in tags)

    async def _newest(self) -> datetime | None:
        """When the newest version on the server was written (None on an empty server)."""
        body, _ = await self.client.request_json("GET", "_history", params={"_count": "1"})
        entries = body.get("entry", [])
        return max((_modified(e) for e in entries), default=None)

    async def _since(self, mark: datetime | None) -> dict[Key, list[dict[str, Any]]]:
        """Versions written strictly after ``mark``, per resource, oldest first.

        A history lists the newest versions first (FHIR R4 http.html#history), so paging stops at the
        page holding a version at or before ``mark``: the rest is older. That also keeps the walk short on
        servers whose ``next`` links drop ``_since`` (sekmet-fhir 0.1.x), where later pages are unfiltered."""
        grouped: dict[Key, list[dict[str, Any]]] = defaultdict(list)
        since = mark.isoformat(timespec="milliseconds") if mark else None
        params = {"_count": str(self.page_size), **({"_since": since} if since else {})}
        body, _ = await self.client.request_json("GET", "_history", params=params)
        while True:
            reached_mark = False
            for entry in body.get("entry", []):
                if mark is None or _modified(entry) > mark:
                    grouped[_key(entry)].append(entry)
                else:
                    reached_mark = True
            next_url = next((link["url"] for link in body.get("link", []) if link.get("relation") == "next"), None)
            if not next_url or reached_mark:
                break
            body, _ = await self.client.request_json("GET", next_url)
        return {key: sorted(versions, key=_version) for key, versions in grouped.items()}

    async def _before(self, key: Key, versions: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The version before the first of ``versions`` (None: it did not exist)."""
        prior = _version(versions[0]) - 1
        if prior < 1:
            return None
        try:
            body, _ = await self.client.request_json("GET", f"{key[0]}/{key[1]}/_history/{prior}")
        except (FhirGone, FhirNotFound):
            return None
        return dict(body)
