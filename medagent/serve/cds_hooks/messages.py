"""The CDS Hooks 2.0 messages as typed models: the hook request and its contexts (in), cards (out), feedback (in).

Requests are checked by these models, so a missing or malformed field is named in a 400; the response is
built from the card models and then checked against the specification's JSON schema (schema.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medagent.fhir.ids import is_fhir_id

Indicator = Literal["info", "warning", "critical"]
INDICATOR_ORDER: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


class Message(BaseModel):
    """A CDS Hooks JSON object (fields named as on the wire): unknown fields are allowed (extensions), optional
    ones left out when empty."""

    model_config = ConfigDict(extra="allow")

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# ---------------------------------------------------------------------------------------------
# the request
# ---------------------------------------------------------------------------------------------


class FhirAuthorization(Message):
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int
    scope: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    patient: str | None = None

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError(f"token_type must be Bearer, got {value!r}")
        return value


def check_fhir_server(value: str) -> str:
    """The base URL of the CDS client's FHIR server: absolute http(s), a host, no credentials or fragment."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"fhirServer must be an absolute http(s) URL such as https://ehr.example.org/fhir, got {value[:120]!r}"
        )
    if parts.username or parts.password or parts.fragment or parts.query:
        raise ValueError(
            f"fhirServer must be a plain base URL (no credentials, query or fragment), got {value[:120]!r}"
        )
    return value.rstrip("/")


class HookRequest(Message):
    """The body of ``POST /cds-services/{id}`` (Calling a CDS Service)."""

    hook: str = Field(min_length=1)
    hookInstance: str
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @field_validator("hookInstance")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError(f"hookInstance must be a UUID, got {value[:60]!r}") from None
        return value

    @field_validator("fhirServer")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        return None if value is None else check_fhir_server(value)

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirAuthorization is given without fhirServer (the specification requires both)")
        return self


class PatientContext(Message):
    """What every hook here has: the user and the patient whose chart is open."""

    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1)
    encounterId: str | None = None

    @field_validator("userId")
    @classmethod
    def _user(cls, value: str) -> str:
        kind, _, rid = value.partition("/")
        if kind not in ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson") or not rid:
            raise ValueError(
                f"userId must be [ResourceType]/[id] of a Practitioner, PractitionerRole, Patient or "
                f"RelatedPerson, got {value[:80]!r}"
            )
        return value

    @field_validator("patientId", "encounterId")
    @classmethod
    def _fhir_id(cls, value: str | None) -> str | None:
        if value is not None and not is_fhir_id(value):
            raise ValueError(
                f"must be a FHIR id (1-64 of A-Z a-z 0-9 - ., not only dots), not a reference or URL; "
                f"got {value[:80]!r}"
            )
        return value


class OrderSignContext(PatientContext):
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle" or not isinstance(value.get("entry", []), list):
            raise ValueError("draftOrders must be a FHIR Bundle of the draft orders (resourceType Bundle, entry list)")
        return value


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)


# ---------------------------------------------------------------------------------------------
# the response
# ---------------------------------------------------------------------------------------------


class Coding(Message):
    system: str | None = None
    code: str
    display: str | None = None


class Source(Message):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Action(Message):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(Message):
    label: str
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(Message):
    label: str
    url: str
    type: Literal["absolute", "smart"]


class Card(Message):
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    summary: str = Field(max_length=139)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None


# ---------------------------------------------------------------------------------------------
# feedback
# ---------------------------------------------------------------------------------------------


class AcceptedSuggestion(Message):
    id: str = Field(min_length=1)


class OverrideReason(Message):
    reason: Coding | None = None
    userComment: str | None = None


class Feedback(Message):
    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> Feedback:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError(f"feedback on card {self.card}: outcome accepted needs acceptedSuggestions")
        if self.outcomeTimestamp.tzinfo is None:
            raise ValueError(f"feedback on card {self.card}: outcomeTimestamp needs a time zone (UTC, ...Z)")
        return self


class FeedbackRequest(Message):
    feedback: list[Feedback] = Field(min_length=1)
