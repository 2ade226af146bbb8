"""Names of the standard R4 search parameters (hl7.org/fhir/R4/searchparameter-registry.html) of
the types this server indexes. Used only to refuse, even in lenient mode, a standard parameter
that is not implemented here: ignoring it would return unfiltered, wrong results."""

from __future__ import annotations

_ADDRESS = "address address-city address-country address-postalcode address-state address-use"

_NAMES = {
    "Patient": f"active {_ADDRESS} birthdate death-date deceased email family gender general-practitioner given "
    "identifier language link name organization phone phonetic telecom",
    "Observation": "based-on category code code-value-concept code-value-date code-value-quantity code-value-string "
    "combo-code combo-code-value-concept combo-code-value-quantity combo-data-absent-reason "
    "combo-value-concept combo-value-quantity component-code component-code-value-concept "
    "component-code-value-quantity component-data-absent-reason component-value-concept "
    "component-value-quantity data-absent-reason date derived-from device encounter focus has-member "
    "identifier method part-of patient performer specimen status subject value-concept value-date "
    "value-quantity value-string",
    "Condition": "abatement-age abatement-date abatement-string asserter body-site category clinical-status code "
    "encounter evidence evidence-detail identifier onset-age onset-date onset-info patient recorded-date "
    "severity stage subject verification-status",
    "MedicationRequest": "authoredon category code date encounter identifier intended-dispenser intended-performer "
    "intended-performertype intent medication patient priority requester status subject",
    "Medication": "code expiration-date form identifier ingredient ingredient-code lot-number manufacturer status",
    "MedicationAdministration": "code context device effective-time identifier medication patient performer "
    "reason-given reason-not-given request status subject",
    "Immunization": "date identifier location lot-number manufacturer patient performer reaction reaction-date "
    "reason-code reason-reference series status status-reason target-disease vaccine-code",
    "Procedure": "based-on category code date encounter identifier instantiates-canonical instantiates-uri location "
    "part-of patient performer reason-code reason-reference status subject",
    "Encounter": "account appointment based-on class date diagnosis episode-of-care identifier length location "
    "location-period part-of participant participant-type patient practitioner reason-code "
    "reason-reference service-provider special-arrangement status subject type",
    "DiagnosticReport": "based-on category code conclusion date encounter identifier issued media patient performer "
    "result results-interpreter specimen status subject",
    "AllergyIntolerance": "asserter category clinical-status code criticality date identifier last-date manifestation "
    "onset patient recorder route severity type verification-status",
    "CarePlan": "activity-code activity-date activity-reference based-on care-team category condition date encounter "
    "goal identifier instantiates-canonical instantiates-uri intent part-of patient performer replaces "
    "status subject",
    "ServiceRequest": "authored based-on body-site category code encounter identifier instantiates-canonical "
    "instantiates-uri intent occurrence patient performer performer-type priority replaces "
    "requester requisition specimen status subject",
    "DocumentReference": "authenticator author category contenttype custodian date description encounter event "
    "facility format identifier language location patient period related relatesto relation "
    "relationship security-label setting status subject type",
    "Practitioner": f"active {_ADDRESS} communication email family gender given identifier name phone phonetic telecom",
    "Organization": f"active {_ADDRESS} endpoint identifier name partof phonetic type",
    "Goal": "achievement-status category identifier lifecycle-status patient start-date subject target-date",
    "ImagingStudy": "basedon bodysite dicom-class encounter endpoint identifier instance interpreter modality patient "
    "performer reason referrer series started status subject",
    "Claim": "care-team created detail-udi encounter enterer facility identifier item-udi insurer patient payee "
    "priority procedure-udi provider status subdetail-udi use",
    "ExplanationOfBenefit": "care-team claim coverage created detail-udi disposition encounter enterer facility "
    "identifier item-udi patient payee procedure-udi provider status subdetail-udi",
}

R4_SEARCH_NAMES: dict[str, frozenset[str]] = {rtype: frozenset(names.split()) for rtype, names in _NAMES.items()}
