"""Stable scenario ids, fixture ids and seeded random streams.

Ids hash what a scenario is about (suite, category, patient, fact), not the seed, so the same
fact keeps its id across builds. Each random stream is seeded from the build seed plus a key,
so adding a patient or a category never reshuffles the others (and --patients N builds the
same scenarios for those N patients as the full build). ``random.Random(str)`` hashes the
string with SHA-512: independent of PYTHONHASHSEED and of the platform.
"""

from __future__ import annotations

import hashlib
import random
import uuid


def short_hash(*parts: object, length: int = 10) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:length]


SET_TAG = "v2"  # the set the generator builds; v1's ids (frozen in scenarios/v1) carry no tag


def scenario_id(suite: str, category: str, patient: str, *key: object, tag: str = SET_TAG) -> str:
    """``<tag>-<suite>-<category>-<patient>-<hash>`` (tag v2 or v3): never equal to a v1 id, so a result names its
    set."""
    return f"{tag}-{suite}-{category}-{patient[:8]}-{short_hash(tag, suite, category, patient, *key, length=8)}"


def rng_for(seed: int, *key: object) -> random.Random:
    return random.Random("\x1f".join([str(seed), *(str(k) for k in key)]))


def fixture_id(scenario: str, index: int) -> str:
    """A UUID-shaped id for a setup resource, derived from its scenario id."""
    digest = hashlib.sha256(f"{scenario}:{index}".encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=4))
