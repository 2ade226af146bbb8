"""FHIR resources -> one compact line each (plus the structured row behind it), per resource type."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from medagent.fhir.paths import values_at
from medagent.tools.compact import Line, clean, code_label, join, number
from medagent.tools.dates import ago, parse_fhir
from medagent.vocabulary import CLINICAL_DATES

BP_PANELS = {"85354-9", "55284-4"}
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


def reference(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def first_coding(concept: dict[str, Any] | None) -> tuple[str, str, str]:
    """(system, code, display) of a CodeableConcept's first coding; display falls back to the text."""
    if not concept:
        return "", "", ""
    coding = (concept.get("coding") or [{}])[0]
    display = coding.get("display") or concept.get("text") or ""
    return coding.get("system", ""), coding.get("code", ""), clean(display)


def concept_label(concept: dict[str, Any] | None) -> str:
    """'Hypertension (SNOMED 38341003)'."""
    return named(*first_coding(concept))


def named(system: str, code: str, display: str) -> str:
    """'Display (SYSTEM code)', without repeating a code the display already shows."""
    label = code_label(system, code)
    if not display or display == label or (code and display.endswith(code)):
        return display or label
    return f"{display} ({label})" if label else display


def id_of(ref: str | None) -> str:
    return (ref or "").split("/_history/")[0].rsplit("/", 1)[-1]


def date_of(resource: dict[str, Any]) -> str | None:
    """The clinically relevant date of a resource (effective, onset, authored, performed ...)."""
    dates = CLINICAL_DATES.get(resource.get("resourceType", ""))
    for path in dates.paths if dates else ():
        value = next(values_at(resource, path), None)
        if isinstance(value, str):
            return value
    return None


def moment_of(resource: dict[str, Any]) -> datetime | None:
    return parse_fhir(date_of(resource))


def day(value: str | None) -> str:
    return (value or "")[:10]


def minute(value: str | None) -> str:
    """'2019-05-01T02:43:19+00:00' -> '2019-05-01 02:43' (date-only values stay dates)."""
    if not value:
        return ""
    return value[:10] if len(value) <= 10 else f"{value[:10]} {value[11:16]}"


# ---------- Observation ----------


def quantity_text(quantity: dict[str, Any] | None) -> tuple[str, float | None, str]:
    if not quantity or not isinstance(quantity.get("value"), int | float):
        return "", None, ""
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{number(quantity['value'])} {unit}".strip(), float(quantity["value"]), unit


def observation_value(resource: dict[str, Any]) -> tuple[str, float | None, str]:
    """(text, number, unit) of an Observation's own value."""
    if "valueQuantity" in resource:
        return quantity_text(resource["valueQuantity"])
    if "valueCodeableConcept" in resource:
        return first_coding(resource["valueCodeableConcept"])[2], None, ""
    if "valueString" in resource:
        return clean(resource["valueString"], 80), None, ""
    for key in ("valueBoolean", "valueInteger"):
        if key in resource:
            value = resource[key]
            return str(value).lower(), float(value) if key == "valueInteger" else None, ""
    return "", None, ""


def components(resource: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for component in resource.get("component", []):
        system, code, display = first_coding(component.get("code"))
        text, value, unit = quantity_text(component.get("valueQuantity"))
        if not text and "valueCodeableConcept" in component:
            text = first_coding(component["valueCodeableConcept"])[2]
        out.append({"system": system, "code": code, "display": display, "value": value, "unit": unit, "text": text})
    return out


def observation_line(resource: dict[str, Any], now: datetime, focus: set[str] | None = None) -> Line:
    """One line per Observation; ``focus`` codes pick a component (e.g. systolic 8480-6 of a BP panel)."""
    system, code, display = first_coding(resource.get("code"))
    when = date_of(resource)
    moment = parse_fhir(when)
    text, value, unit = observation_value(resource)
    parts = components(resource)
    row: dict[str, Any] = {
        "ref": reference(resource),
        "date": when,
        "system": system,
        "code": code,
        "display": display,
        "value": value,
        "unit": unit,
        "status": resource.get("status"),
    }
    label = named(system, code, display)
    picked = [c for c in parts if focus and c["code"] in focus and (code not in focus)]
    if picked:
        part = picked[0]
        label = f"{part['display']} ({code_label(part['system'], part['code'])}, in panel {code})"
        row.update(value=part["value"], unit=part["unit"], component=part["code"])
        text = part["text"]
    elif parts:
        by_code = {c["code"]: c for c in parts}
        if SYSTOLIC in by_code and DIASTOLIC in by_code:
            sys_, dia = by_code[SYSTOLIC], by_code[DIASTOLIC]
            text = f"{number(sys_['value'])}/{number(dia['value'])} {sys_['unit']} (systolic/diastolic)"
        else:
            text = "; ".join(f"{c['display']} {c['text']}" for c in parts)
        row["components"] = parts
    if not text:
        text = "no value"
    row["text"] = text
    stamp = f"{minute(when)} ({ago(moment, now)})" if moment else ""
    return Line(join(stamp, label, text, _status(resource.get("status"), "final"), row["ref"]), row)


def _status(value: str | None, usual: str) -> str:
    """Statuses that are the norm for the type are left out to save tokens."""
    return "" if not value or value == usual else value


# ---------- Condition ----------


def condition_status_at(resource: dict[str, Any], now: datetime) -> tuple[str, str | None]:
    """Clinical status at now: ('active', None) or ('resolved', abatement date)."""
    abatement = resource.get("abatementDateTime") or (resource.get("abatementPeriod") or {}).get("end")
    moment = parse_fhir(abatement)
    if moment is not None and moment <= now:
        return "resolved", abatement
    recorded = first_coding(resource.get("clinicalStatus"))[1]
    if recorded in ("resolved", "inactive", "remission") and moment is None:
        return recorded, None
    return "active", None


UNCONFIRMED = ("refuted", "entered-in-error", "provisional", "differential", "unconfirmed")


def verification_of(resource: dict[str, Any]) -> str | None:
    """A Condition's or allergy's verification status when it is not 'confirmed' (refuted, entered-in-error ...)."""
    value = first_coding(resource.get("verificationStatus"))[1]
    return value if value in UNCONFIRMED else None


def condition_line(resource: dict[str, Any], now: datetime) -> Line:
    system, code, display = first_coding(resource.get("code"))
    onset = date_of(resource)
    status, abated = condition_status_at(resource, now)
    verification = verification_of(resource)
    row: dict[str, Any] = {
        "ref": reference(resource),
        "onset": onset,
        "system": system,
        "code": code,
        "display": display,
        "status": status,
        "abatement": abated,
        "verification": verification,
    }
    status_text = f"resolved {day(abated)}" if abated else status
    return Line(
        join(
            f"onset {minute(onset)}",
            named(system, code, display),
            status_text,
            f"verification {verification}" if verification else "",
            row["ref"],
        ),
        row,
    )


# ---------- MedicationRequest ----------


def dosage_text(resource: dict[str, Any]) -> str:
    parts = []
    for dosage in resource.get("dosageInstruction", [])[:1]:
        if dosage.get("text"):
            parts.append(clean(dosage["text"], 60))
        for rate in dosage.get("doseAndRate", [])[:1]:
            dose, _, _ = quantity_text(rate.get("doseQuantity"))
            if dose:
                parts.append(f"dose {dose}")
            speed, _, _ = quantity_text(rate.get("rateQuantity"))
            if speed:
                parts.append(f"rate {speed}")
        route = (dosage.get("route") or {}).get("text") or first_coding(dosage.get("route"))[2]
        if route:
            parts.append(f"route {route}")
        repeat = (dosage.get("timing") or {}).get("repeat") or {}
        if "duration" in repeat:
            parts.append(f"over {number(repeat['duration'])} {repeat.get('durationUnit', '')}".strip())
    return ", ".join(parts)


def medication_line(
    resource: dict[str, Any],
    now: datetime,
    prescribers: dict[str, str],
    reasons: dict[str, str],
    *,
    requester_reference: bool = False,
) -> Line:
    """One line per order; ``requester_reference`` adds the prescriber's Type/id (fhir_read: one citable call)."""
    concept = resource.get("medicationCodeableConcept")
    system, code, display = first_coding(concept)
    if not concept and resource.get("medicationReference"):
        display = clean(
            resource["medicationReference"].get("display") or resource["medicationReference"].get("reference")
        )
    requester = resource.get("requester") or {}
    requester_ref = requester.get("reference")
    prescriber = prescribers.get(requester_ref or "", "") or clean(requester.get("display"))
    prescriber_text = (
        f"{prescriber} ({requester_ref})" if prescriber and requester_ref and requester_reference else prescriber
    )
    reason_refs = [r.get("reference") for r in resource.get("reasonReference", []) if r.get("reference")]
    reason_texts = [f"{reasons[r]} ({r})" if reasons.get(r) else r for r in reason_refs]
    reason_codes = [first_coding(c)[2] for c in resource.get("reasonCode", []) if first_coding(c)[2]]
    reason_texts += reason_codes
    authored = resource.get("authoredOn")
    status_reason = first_coding(resource.get("statusReason"))[2] or clean(
        (resource.get("statusReason") or {}).get("text")
    )
    row: dict[str, Any] = {
        "ref": reference(resource),
        "authored": authored,
        "system": system,
        "code": code,
        "display": display,
        "status": resource.get("status"),
        "intent": resource.get("intent"),
        "requester": requester_ref,
        "prescriber": prescriber or None,
        "reasons": reason_refs,
        "reason_displays": [reasons.get(r) for r in reason_refs],
        "reason_names": [name for name in [*(reasons.get(r) for r in reason_refs), *reason_codes] if name],
        "dosage": dosage_text(resource) or None,
        "status_reason": status_reason or None,
    }
    return Line(
        join(
            minute(authored),
            named(system, code, display),
            f"{resource.get('status')} ({status_reason})" if status_reason else resource.get("status"),
            f"prescriber {prescriber_text}" if prescriber else "",
            f"reason {'; '.join(reason_texts)}" if reason_texts else "",
            row["dosage"] or "",
            row["ref"],
        ),
        row,
    )


# ---------- Immunization, Procedure, AllergyIntolerance ----------


def immunization_line(resource: dict[str, Any], now: datetime) -> Line:
    system, code, display = first_coding(resource.get("vaccineCode"))
    when = date_of(resource)
    row: dict[str, Any] = {
        "ref": reference(resource),
        "date": when,
        "system": system,
        "code": code,
        "display": display,
        "status": resource.get("status"),
    }
    return Line(join(minute(when), named(system, code, display), _status(row["status"], "completed"), row["ref"]), row)


def procedure_line(resource: dict[str, Any], now: datetime) -> Line:
    system, code, display = first_coding(resource.get("code"))
    when = date_of(resource)
    reasons = [first_coding(c)[2] for c in resource.get("reasonCode", [])]
    reasons += [clean(r.get("display") or r.get("reference")) for r in resource.get("reasonReference", [])]
    row: dict[str, Any] = {
        "ref": reference(resource),
        "date": when,
        "system": system,
        "code": code,
        "display": display,
        "status": resource.get("status"),
        "reasons": [r for r in reasons if r],
    }
    return Line(
        join(
            minute(when),
            named(system, code, display),
            _status(row["status"], "completed"),
            f"reason {'; '.join(row['reasons'])}" if row["reasons"] else "",
            row["ref"],
        ),
        row,
    )


def allergy_line(resource: dict[str, Any], now: datetime) -> Line:
    system, code, display = first_coding(resource.get("code"))
    when = date_of(resource)
    status = first_coding(resource.get("clinicalStatus"))[1]
    verification = first_coding(resource.get("verificationStatus"))[1]
    kind = " ".join(filter(None, [", ".join(resource.get("category", [])), resource.get("type")]))
    reactions = [
        m.get("text") or first_coding(m)[2] for r in resource.get("reaction", []) for m in r.get("manifestation", [])
    ]
    row: dict[str, Any] = {
        "ref": reference(resource),
        "date": when,
        "system": system,
        "code": code,
        "display": display,
        "status": status,
        "verification": verification,
        "type": resource.get("type"),
        "category": resource.get("category", []),
        "criticality": resource.get("criticality"),
        "reactions": [r for r in reactions if r],
    }
    crit = f"criticality {row['criticality']}" if row["criticality"] else ""
    checked = f"verification {verification}" if verification and verification != "confirmed" else ""
    reaction = f"reaction {'; '.join(row['reactions'])}" if row["reactions"] else ""
    return Line(
        join(f"recorded {day(when)}", named(system, code, display), kind, crit, status, checked, reaction, row["ref"]),
        row,
    )


# ---------- Encounter, DiagnosticReport ----------


def encounter_line(resource: dict[str, Any], now: datetime) -> Line:
    system, code, display = first_coding((resource.get("type") or [{}])[0])
    period = resource.get("period") or {}
    klass = (resource.get("class") or {}).get("code", "")
    reasons = [first_coding(c)[2] for c in resource.get("reasonCode", []) if first_coding(c)[2]]
    row: dict[str, Any] = {
        "ref": reference(resource),
        "start": period.get("start"),
        "end": period.get("end"),
        "class": klass,
        "system": system,
        "code": code,
        "display": display,
        "status": resource.get("status"),
        "reasons": reasons,
        "participants": [p.get("individual", {}).get("reference") for p in resource.get("participant", [])],
    }
    return Line(
        join(
            minute(period.get("start")),
            klass,
            named(system, code, display),
            f"reason {'; '.join(reasons)}" if reasons else "",
            _status(row["status"], "finished"),
            row["ref"],
        ),
        row,
    )


def report_line(resource: dict[str, Any], now: datetime, results: dict[str, Line] | None = None) -> Line:
    system, code, display = first_coding(resource.get("code"))
    when = date_of(resource)
    result_refs = [r.get("reference") for r in resource.get("result", []) if r.get("reference")]
    row: dict[str, Any] = {
        "ref": reference(resource),
        "date": when,
        "system": system,
        "code": code,
        "display": display,
        "status": resource.get("status"),
        "results": result_refs,
    }
    if results is not None:
        values = []
        for ref in result_refs:
            line = results.get(ref)
            if line is not None:
                values.append(f"{line.row['display']} {line.row['text']}")
        detail = f"{len(result_refs)} results: " + "; ".join(values)
    else:
        names = [clean(r.get("display"), 40) for r in resource.get("result", []) if r.get("display")]
        detail = f"{len(result_refs)} results: {', '.join(names)}" if names else f"{len(result_refs)} results"
    return Line(
        join(minute(when), named(system, code, display), _status(row["status"], "final"), detail, row["ref"]), row
    )


# ---------- Patient and everything else ----------


def person_name(resource: dict[str, Any]) -> str:
    """'Given Family' of the official (else first) name, without prefixes."""
    names = resource.get("name") or []
    if isinstance(names, str):
        return names
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    if chosen.get("text") and not chosen.get("family"):
        return clean(chosen["text"])
    return " ".join([*chosen.get("given", []), chosen.get("family", "")]).strip()


def mrn_of(patient: dict[str, Any]) -> str | None:
    for identifier in patient.get("identifier", []):
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding", [])}
        if "MR" in codes:
            return identifier.get("value")
    return None


def document_text(resource: dict[str, Any], limit: int = 200) -> str:
    for content in resource.get("content", []):
        attachment = content.get("attachment") or {}
        if attachment.get("data") and (attachment.get("contentType") or "").startswith("text/"):
            try:
                return clean(base64.b64decode(attachment["data"]).decode("utf-8", "replace"), limit)
            except (binascii.Error, ValueError):
                return ""
    return clean(resource.get("description"), limit)


def generic_line(resource: dict[str, Any], now: datetime) -> Line:
    """A line for any resource type (used by fhir_search and fhir_read)."""
    kind = resource.get("resourceType", "")
    if kind in LINE_BUILDERS:
        return LINE_BUILDERS[kind](resource, now)
    if kind == "MedicationRequest":
        return medication_line(resource, now, {}, {})
    if kind in ("Patient", "Practitioner"):
        row: dict[str, Any] = {
            "ref": reference(resource),
            "name": person_name(resource),
            "birthDate": resource.get("birthDate"),
            "gender": resource.get("gender"),
        }
        extra = f"born {resource['birthDate']}" if resource.get("birthDate") else ""
        return Line(join(row["name"], resource.get("gender"), extra, row["ref"]), row)
    if kind == "Organization":
        row = {"ref": reference(resource), "name": resource.get("name")}
        return Line(join(clean(resource.get("name")), row["ref"]), row)
    concept = None
    for key in ("code", "type", "category", "vaccineCode", "medicationCodeableConcept", "description"):
        value = resource.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            concept = value
            break
    when = date_of(resource)
    status = resource.get("status") or resource.get("lifecycleStatus") or ""
    label = concept_label(concept) if concept else ""
    row = {"ref": reference(resource), "date": when, "display": label, "status": status}
    detail = ""
    if kind == "DocumentReference":
        detail = document_text(resource)
        row["text"] = detail
    elif kind == "ServiceRequest":
        detail = ", ".join(
            filter(
                None,
                [
                    resource.get("intent"),
                    f"for {minute(resource.get('occurrenceDateTime'))}" if resource.get("occurrenceDateTime") else "",
                    "; ".join(clean(n.get("text"), 100) for n in resource.get("note", [])),
                ],
            )
        )
    return Line(join(day(when), label, status, detail, row["ref"]), row)


LINE_BUILDERS = {
    "Observation": observation_line,
    "Condition": condition_line,
    "Immunization": immunization_line,
    "Procedure": procedure_line,
    "AllergyIntolerance": allergy_line,
    "Encounter": encounter_line,
    "DiagnosticReport": report_line,
}
