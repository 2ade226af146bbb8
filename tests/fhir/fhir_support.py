"""HTTP helpers for the FHIR server tests: a server under test, paging, OperationOutcome checks,
and the sekmet-fhir reference server in a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.required import skip_or_fail

# --------------------------------------------------------------------------------------------
# a server under test, spoken to with a plain synchronous httpx client
# --------------------------------------------------------------------------------------------

@dataclass
class Page:
    url: str
    bundle: dict[str, Any]


@dataclass
class SearchResult:
    resources: list[dict[str, Any]]  # search.mode == match, in server order, across all pages
    pages: list[Page]
    included: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.resources]

    @property
    def total(self) -> int | None:
        return self.pages[0].bundle.get("total") if self.pages else None


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item.get("relation") == relation:
            return item.get("url")
    return None


def link_params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def entries(bundle: dict[str, Any], rtype: str | None = None, mode: str = "match") -> list[dict[str, Any]]:
    """Resources of a searchset by search mode (entries without one count as matches of ``rtype``)."""
    out = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        entry_mode = (entry.get("search") or {}).get("mode")
        if entry_mode == mode or (entry_mode is None and mode == "match" and resource.get("resourceType") == rtype):
            out.append(resource)
    return out


class FhirTarget:
    """One FHIR server under test."""

    def __init__(self, name: str, base_url: str, *, headers: dict[str, str] | None = None,
                 can_reset: bool = False) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.can_reset = can_reset
        self.client = httpx.Client(base_url=self.base_url, timeout=120,
                                   headers={"Accept": "application/fhir+json", **(headers or {})})

    def __repr__(self) -> str:
        return f"FhirTarget({self.name}, {self.base_url})"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        target = path if path.startswith(("http://", "https://")) else self.url(path)
        return self.client.request(method, target, **kwargs)

    def get(self, path: str, params: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, params=params, **kwargs)

    def search(self, rtype: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        response = self.get(rtype, params=params, **kwargs)
        assert response.status_code == 200, (
            f"GET {response.request.url} -> {response.status_code}: {response.text[:800]}")
        bundle = response.json()
        assert bundle.get("resourceType") == "Bundle" and bundle.get("type") == "searchset", bundle
        return bundle

    def search_all(self, rtype: str, params: Any = None, *, max_pages: int = 500, **kwargs: Any) -> SearchResult:
        """Follow ``next`` links to the end; every page must be a searchset that answers 200."""
        first = self.search(rtype, params, **kwargs)
        pages = [Page(str(self.client.build_request("GET", self.url(rtype), params=params).url), first)]
        while (nxt := link(pages[-1].bundle, "next")) is not None:
            assert len(pages) < max_pages, f"more than {max_pages} pages for {rtype} {params}"
            response = self.request("GET", nxt, **kwargs)
            assert response.status_code == 200, f"next link {nxt} -> {response.status_code}: {response.text[:500]}"
            pages.append(Page(nxt, response.json()))
        resources = [r for page in pages for r in entries(page.bundle, rtype)]
        included = [r for page in pages for r in entries(page.bundle, rtype, mode="include")]
        return SearchResult(resources, pages, included)

    def count(self, rtype: str, params: Any = None) -> int:
        query = list(params.items()) if isinstance(params, dict) else list(params or [])
        bundle = self.search(rtype, [*query, ("_summary", "count")])
        assert isinstance(bundle.get("total"), int), f"no Bundle.total for {rtype} {query}: {bundle}"
        return bundle["total"]

    def create(self, resource: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.request("POST", resource["resourceType"], json=resource, **kwargs)

    def close(self) -> None:
        self.client.close()


def outcome_text(response: httpx.Response) -> str:
    """All diagnostics/details/expressions of an OperationOutcome response, for assertions."""
    body = response.json()
    assert body.get("resourceType") == "OperationOutcome", f"expected OperationOutcome, got {body}"
    parts = []
    for issue in body.get("issue", []):
        parts.append(issue.get("diagnostics") or "")
        parts.append((issue.get("details") or {}).get("text") or "")
        parts.extend(issue.get("expression") or [])
        parts.extend(issue.get("location") or [])
    return " ".join(p for p in parts if p)


def assert_outcome(response: httpx.Response, statuses: tuple[int, ...], *mentions: str | tuple[str, ...]) -> str:
    """An error answer: one of ``statuses``, an OperationOutcome with an error issue and a message
    naming each of ``mentions`` (case-insensitive; a tuple: any one of its strings)."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url}: expected {statuses}, got {response.status_code}: "
        f"{response.text[:800]}")
    body = response.json()
    assert body.get("resourceType") == "OperationOutcome", body
    severities = {issue.get("severity") for issue in body.get("issue", [])}
    assert severities & {"error", "fatal"}, f"no error issue in {body}"
    text = outcome_text(response)
    assert text.strip(), f"OperationOutcome without diagnostics: {body}"
    for mention in mentions:
        options = mention if isinstance(mention, tuple) else (mention,)
        assert any(o.lower() in text.lower() for o in options), (
            f"{' or '.join(map(repr, options))} not named in the OperationOutcome: {text!r}")
    return text


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}): {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s; log {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, even while a server has it open."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


SEKMET_ENV = "MEDAGENT_TEST_SEKMET"


def sekmet_enabled() -> bool:
    """Tests against sekmet-fhir run with ``MEDAGENT_TEST_SEKMET=1`` or in CI (``CI=true``)."""
    return os.environ.get(SEKMET_ENV) == "1" or os.environ.get("CI", "").lower() == "true"


SEKMET_SETTINGS = """\
simulator:
  enabled: false
log_inbound: false
data_dir: {data}
validation:
  inbound: strict
"""


class SekmetServer:
    """``sekmet serve`` in a subprocess with its own settings, database and port."""

    def __init__(self, workdir: Path, db: Path) -> None:
        self.workdir = workdir
        self.db = db
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "sekmet.log"

    def __enter__(self) -> SekmetServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "settings.yaml").write_text(SEKMET_SETTINGS.format(data=self.workdir / "data"))
        env = {**os.environ, "SEKMET_CONFIG": str(self.workdir / "settings.yaml"), "SEKMET_DB": str(self.db),
               "SEKMET_BASE_URL": self.base_url}
        sekmet = shutil.which("sekmet", path=str(Path(sys.executable).parent)) or shutil.which("sekmet")
        if sekmet is None:
            skip_or_fail("sekmet-fhir is not installed (pip install sekmet-fhir)")
        self.process = subprocess.Popen([sekmet, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                        cwd=self.workdir, env=env, stdout=self.log.open("wb"),
                                        stderr=subprocess.STDOUT)
        wait_ready(f"{self.base_url}/metadata", self.process, self.log, timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop(self.process)


def load_bundles(base_url: str, headers: dict[str, str] | None = None) -> int:
    """POST every default bundle as a transaction that keeps the bundle's ids (PUT Type/id)."""
    from medagent.data import iter_bundles
    from medagent.fhir.bundles import as_upsert_transaction

    loaded = 0
    with httpx.Client(timeout=600, headers=headers) as client:
        for name, bundle in iter_bundles():
            response = client.post(base_url, json=as_upsert_transaction(bundle),
                                   headers={"Content-Type": "application/fhir+json"})
            assert response.status_code == 200, f"loading {name}: {response.status_code} {response.text[:1000]}"
            loaded += len(bundle.get("entry", []))
    return loaded


# --------------------------------------------------------------------------------------------
# writes: whatever a test creates is deleted afterwards (servers without $reset too)
# --------------------------------------------------------------------------------------------

class Cleanup:
    def __init__(self, target: FhirTarget) -> None:
        self.target = target
        self.keys: list[tuple[str, str]] = []

    def add(self, rtype: str, rid: str) -> None:
        self.keys.append((rtype, rid))

    def created(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201), f"create failed: {response.status_code} {response.text[:800]}"
        body = response.json()
        self.add(body["resourceType"], body["id"])
        return body

    def run(self) -> None:
        for rtype, rid in reversed(self.keys):
            self.target.request("DELETE", f"{rtype}/{rid}")


def track_if_created(cleanup: Cleanup, response: httpx.Response) -> None:
    """A server that wrongly accepted a bad create: remove what it stored."""
    if response.status_code in (200, 201):
        body = response.json()
        if body.get("id") and body.get("resourceType") not in ("Bundle", "OperationOutcome"):
            cleanup.add(body["resourceType"], body["id"])
        for entry in body.get("entry", []) if body.get("resourceType") == "Bundle" else []:
            location = (entry.get("response") or {}).get("location", "")
            if (entry.get("response") or {}).get("status", "").startswith("201") and location:
                parts = location.split("/_history/")[0].split("/")
                cleanup.add(parts[-2], parts[-1])
