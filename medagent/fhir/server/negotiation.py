"""Content negotiation: the server produces FHIR JSON only, so ``_format``/``Accept`` asking for
anything else (XML, Turtle, HTML) is a 406 rather than JSON the client cannot read."""

from __future__ import annotations

from starlette.requests import Request

from medagent.fhir.server.outcome import FhirError

JSON_FORMATS = ("json", "application/json", "application/fhir+json", "application/json+fhir")
_JSON_RANGES = ("*/*", "application/*", *JSON_FORMATS[1:])


def check_can_produce(request: Request) -> None:
    """Raise 406 when ``_format`` or ``Accept`` rules out JSON."""
    for value in request.query_params.getlist("_format"):
        if value.split(";")[0].strip().lower() not in JSON_FORMATS:
            raise FhirError(
                406,
                f"_format={value!r} is not supported: this server produces JSON only "
                f"(_format=json or application/fhir+json)",
                code="not-supported",
            )
    accept = request.headers.get("accept", "").strip()
    if accept and not _accepts_json(accept):
        raise FhirError(
            406,
            f"cannot produce any of Accept: {accept!r}; this server produces application/fhir+json",
            code="not-supported",
        )


def _accepts_json(accept: str) -> bool:
    for item in accept.split(","):
        media, *options = (part.strip() for part in item.split(";"))
        quality = next((o[2:] for o in options if o.startswith("q=")), "1")
        try:
            if float(quality) <= 0:
                continue
        except ValueError:
            pass
        if media.lower() in _JSON_RANGES:
            return True
    return False


RETURN_PREFERENCES = ("minimal", "representation", "OperationOutcome")


def return_preference(request: Request) -> str:
    """What a write answers with, from ``Prefer: return=...`` (RFC 7240; FHIR R4 http.html#ops): ``minimal``
    (no body), ``representation`` (the resource; also the default) or ``OperationOutcome``. A value this
    server does not know is ignored, as a preference may be."""
    for header in request.headers.getlist("prefer"):
        for item in header.replace(";", ",").split(","):
            name, _, value = item.strip().partition("=")
            if name.strip().lower() == "return" and value.strip().strip('"') in RETURN_PREFERENCES:
                return value.strip().strip('"')
    return "representation"
