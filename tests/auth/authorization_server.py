"""The real authorization server of the SMART tests (the npm package oidc-provider, configured in
oidc_provider/provider.mjs): its install (cached, offline once cached), its process, and a user who signs in
and consents through its own login and consent pages over plain HTTP (the Chromium test uses the same pages)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.fhir.fhir_support import stop, wait_ready
from tests.required import skip_or_fail

SOURCE = Path(__file__).parent / "oidc_provider"
NODE = shutil.which("node")
NPM = shutil.which("npm")
_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_PROMPT = re.compile(r'name="prompt" value="(\w+)"')


def install_oidc_provider(cache_dir: Path) -> Path:
    """A folder holding provider.mjs and node_modules (oidc-provider as pinned in package-lock.json), installed
    once per lock file under ``cache_dir``; npm tries its own cache first (``--offline``), then the registry.
    Without node/npm or an install, the test is skipped locally and fails under MEDAGENT_REQUIRE_ALL=1."""
    if NODE is None or NPM is None:
        skip_or_fail("node and npm are needed to run the authorization server (oidc-provider) of the SMART tests")
    lock = (SOURCE / "package-lock.json").read_bytes()
    target = cache_dir / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
        staging = cache_dir / f"{target.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SOURCE / name, staging / name)
        errors = []
        for mode in (["--offline"], []):
            done = subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts", *mode], cwd=staging,
                                  capture_output=True, text=True, timeout=600, check=False)
            if done.returncode == 0:
                break
            errors.append(done.stderr.strip().splitlines()[-1:] or ["(no output)"])
        else:
            shutil.rmtree(staging, ignore_errors=True)
            skip_or_fail(f"could not install oidc-provider with npm ci (offline, then from the registry): {errors}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    shutil.copyfile(SOURCE / "provider.mjs", target / "provider.mjs")
    return target


class AuthorizationServer:
    """``with AuthorizationServer(folder, config) as server: server.issuer`` — oidc-provider in its own process."""

    def __init__(self, folder: Path, config: dict[str, Any], log_path: Path) -> None:
        self.folder = folder
        self.config = config
        self.issuer: str = config["issuer"]
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        assert NODE is not None
        log = self.log_path.open("wb")
        self.process = subprocess.Popen([NODE, "provider.mjs"], cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "MEDAGENT_OIDC_CONFIG": json.dumps(self.config)})
        try:
            wait_ready(f"{self.issuer}/.well-known/openid-configuration", self.process, self.log_path, timeout=60)
        except RuntimeError:
            stop(self.process)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop(self.process)


def sign_in_and_consent(http: httpx.Client, url: str, *, stop_at: str, login: str = "dr-lee") -> httpx.URL:
    """Follow a launch from ``url`` through the authorization server's own login and consent forms (any login,
    any password) until a redirect reaches ``stop_at`` (the redirect URI, or the app's callback); that URL."""
    for _ in range(20):
        response = http.get(url)
        while response.is_redirect:
            url = urljoin(str(response.url), response.headers["location"])
            if url.startswith(stop_at):
                return httpx.URL(url)
            response = http.get(url)
        if response.status_code != 200:
            raise AssertionError(f"the launch stopped at {response.url} with HTTP {response.status_code}: "
                                 f"{response.text[:300]}")
        action, prompt = _FORM_ACTION.search(response.text), _PROMPT.search(response.text)
        if action is None or prompt is None:
            raise AssertionError(f"no login or consent form at {response.url}: {response.text[:300]}")
        form = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            form |= {"login": login, "password": "any password"}
        posted = http.post(urljoin(str(response.url), action.group(1)), data=form)
        assert posted.is_redirect, f"the {prompt.group(1)} form answered HTTP {posted.status_code}: {posted.text[:300]}"
        url = urljoin(str(posted.url), posted.headers["location"])
        if url.startswith(stop_at):
            return httpx.URL(url)
    raise AssertionError("the launch did not come back after 20 pages")


def query_of(url: httpx.URL) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(url)).query).items()}
