"""SMART scopes as grants: which interactions (c, r, u, d, s) on which resource types an access token allows.

SMART v2 (``patient/Observation.rs``, ``user/*.cruds``, ``system/*.rs``) and v1 (``.read`` = rs, ``.write`` =
cud, ``.*`` = cruds). A v2 scope with a query restriction (``patient/Observation.rs?category=laboratory``)
grants nothing here: this server does not enforce such restrictions, so it does not pretend to (fail closed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Context = Literal["patient", "user", "system"]
Permission = Literal["c", "r", "u", "d", "s"]
PERMISSIONS = "cruds"
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(c?r?u?d?s?|read|write|\*)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class Grant:
    """One resource scope: a context, a resource type (``*``: all) and the interactions it allows."""

    context: Context
    resource_type: str
    permissions: frozenset[str]

    def covers(self, permission: Permission, resource_type: str) -> bool:
        return permission in self.permissions and self.resource_type in ("*", resource_type)


def parse_scopes(scope: str) -> list[Grant]:
    """The resource grants in a space-separated ``scope`` (``openid``, ``launch`` and the like grant none)."""
    grants = []
    for item in scope.split():
        match = _SCOPE.match(item)
        if match is None or not match.group(3):
            continue
        context, resource_type, permissions = match.groups()
        grants.append(Grant(context, resource_type, frozenset(_V1.get(permissions, permissions))))  # type: ignore[arg-type]
    return grants


def scope_name(context: Context, permission: Permission, resource_type: str) -> str:
    """The narrowest v2 scope that allows one interaction (for ``WWW-Authenticate``'s ``scope``)."""
    return f"{context}/{resource_type}.{permission}"
