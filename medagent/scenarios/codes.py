"""Code systems, the labs we ask about, and a small hand-curated concept hierarchy.

Everything a scenario states in its text (LOINC, SNOMED, NDC, CVX codes, units, thresholds)
comes from here, so the task text and the grader can never disagree. The hierarchy is only as
deep as the Synthea v2.4 data needs: it names which condition codes imply which others
(ancestors and "history of"), so a "no" question is never asked about a concept the patient has
under a more specific code, and groups conditions under parent concepts for transitive questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# code systems come from the one vocabulary (re-exported here for the generators and graders)
from medagent.vocabulary import CVX, LOINC, NDC, OBSERVATION_CATEGORY, RXNORM, SNOMED, UCUM  # noqa: F401


@dataclass(frozen=True)
class LabInfo:
    """How we name, round and convert one observation code in questions and answers."""

    code: str
    label: str
    unit: str
    decimals: int
    unit_factors: dict[str, float] = field(default_factory=dict)
    component_of: str | None = None  # panel code when the value sits in Observation.component


_MMOL = {"mmol/L": 1.0, "mEq/L": 1.0}
_MMHG = {"mmHg": 1.0, "mm Hg": 1.0}

LABS: dict[str, LabInfo] = {
    info.code: info
    for info in [
        LabInfo("2339-0", "glucose", "mg/dL", 0, {"mmol/L": 18.0182}),
        LabInfo("6298-4", "potassium", "mmol/L", 1, dict(_MMOL)),
        LabInfo("2947-0", "sodium", "mmol/L", 0, dict(_MMOL)),
        LabInfo("2069-3", "chloride", "mmol/L", 0, dict(_MMOL)),
        LabInfo("20565-8", "carbon dioxide (bicarbonate)", "mmol/L", 0, dict(_MMOL)),
        LabInfo("49765-1", "calcium", "mg/dL", 1, {"mmol/L": 4.008}),
        LabInfo("38483-4", "creatinine", "mg/dL", 2, {"umol/L": 1 / 88.42, "µmol/L": 1 / 88.42}),
        LabInfo("6299-2", "urea nitrogen (BUN)", "mg/dL", 0),
        LabInfo("4548-4", "hemoglobin A1c", "%", 1),
        LabInfo("2093-3", "total cholesterol", "mg/dL", 0, {"mmol/L": 38.67}),
        LabInfo("2571-8", "triglycerides", "mg/dL", 0, {"mmol/L": 88.57}),
        LabInfo("18262-6", "LDL cholesterol", "mg/dL", 0, {"mmol/L": 38.67}),
        LabInfo("2085-9", "HDL cholesterol", "mg/dL", 0, {"mmol/L": 38.67}),
        LabInfo("718-7", "hemoglobin", "g/dL", 1, {"g/L": 0.1}),
        LabInfo(
            "33914-3",
            "estimated glomerular filtration rate (eGFR)",
            "mL/min/{1.73_m2}",
            0,
            {"mL/min": 1.0, "mL/min/1.73m2": 1.0, "mL/min/1.73 m2": 1.0},
        ),
        LabInfo("29463-7", "body weight", "kg", 1, {"lb": 0.45359237, "lbs": 0.45359237, "g": 0.001}),
        LabInfo("8302-2", "body height", "cm", 1, {"m": 100.0, "in": 2.54}),
        LabInfo("39156-5", "body mass index (BMI)", "kg/m2", 1, {"kg/m^2": 1.0}),
        LabInfo("8480-6", "systolic blood pressure", "mm[Hg]", 0, dict(_MMHG), component_of="55284-4"),
        LabInfo("8462-4", "diastolic blood pressure", "mm[Hg]", 0, dict(_MMHG), component_of="55284-4"),
        LabInfo("8331-1", "oral temperature", "Cel", 1, {"°C": 1.0, "C": 1.0, "degC": 1.0}),
        LabInfo("2885-2", "total protein", "g/dL", 1, {"g/L": 0.1}),
        LabInfo("1751-7", "albumin", "g/dL", 1, {"g/L": 0.1}),
        LabInfo("1742-6", "alanine aminotransferase (ALT)", "U/L", 0),
        LabInfo("1920-8", "aspartate aminotransferase (AST)", "U/L", 0),
        LabInfo("6690-2", "leukocyte count", "10*3/uL", 1, {"10^3/uL": 1.0, "x10^9/L": 1.0, "10*9/L": 1.0}),
        LabInfo("777-3", "platelet count", "10*3/uL", 0, {"10^3/uL": 1.0, "x10^9/L": 1.0, "10*9/L": 1.0}),
    ]
}

# Labs we ask "latest value within 24 h" about (present in Synthea's metabolic panel).
RECENT_LAB_CODES = ["38483-4", "2947-0", "49765-1", "6299-2", "2069-3", "20565-8"]
# Labs and vitals with several measurements over years, for trend questions.
TREND_CODES = ["4548-4", "38483-4", "18262-6", "29463-7", "39156-5", "2339-0"]
# Measures asked "at the time of" another event (observation-dependent questions).
DEPENDENT_CODES = ["29463-7", "39156-5", "8480-6", "2339-0", "4548-4", "38483-4", "18262-6"]

BP_PANEL_CODES = ["85354-9", "55284-4"]  # LOINC panel of the task text; the one Synthea uses
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
GLUCOSE = "2339-0"
POTASSIUM = "6298-4"
POTASSIUM_SERUM_ORDER = "2823-3"  # MedAgentBench's LOINC for the follow-up serum potassium
HBA1C = "4548-4"
MAGNESIUM = "19123-9"  # Magnesium [Mass/volume] in Serum or Plasma; absent from Synthea v2.4
MAGNESIUM_INFO = LabInfo(MAGNESIUM, "serum magnesium", "mg/dL", 1, {"mmol/L": 2.431})
POTASSIUM_DISPLAY = "Potassium"
MAGNESIUM_DISPLAY = "Magnesium [Mass/volume] in Serum or Plasma"

POTASSIUM_THRESHOLD = 3.5  # mmol/L
MAGNESIUM_THRESHOLD = 1.9  # mg/dL; <= 1.9 is low (MedAgentBench)


def magnesium_dose(value: float) -> float:
    """Grams of IV magnesium sulfate (= hours of infusion) for a low magnesium, by the tasks' dosing table: severe
    (< 1.0 mg/dL) 4 g over 4 h, moderate (1.0 to < 1.5) 2 g over 2 h, mild (1.5 to 1.9) 1 g over 1 h."""
    if value < 1.0:
        return 4.0
    if value < 1.5:
        return 2.0
    return 1.0


def magnesium_order_arguments(patient: str, grams: float, reason: str) -> dict[str, Any]:
    """The ``order_medication`` arguments of IV magnesium sulfate: ``grams`` g over ``grams`` hours (the tasks'
    dosing table, :func:`magnesium_dose`), by the NDC the tasks state."""
    return {
        "patient": patient,
        "code": NDC_MAGNESIUM_IV,
        "system": "ndc",
        "dose_value": grams,
        "dose_unit": "g",
        "route": "iv",
        "duration_value": grams,
        "duration_unit": "h",
        "reason": reason,
    }


NDC_POTASSIUM_ORAL = "40032-917-01"  # MedAgentBench's NDC for oral potassium chloride replacement
NDC_MAGNESIUM_IV = "0338-1715-40"  # MedAgentBench's NDC for IV magnesium sulfate

ORAL_ROUTE = ["oral", "po", "by mouth", "oral route", "26643006", "per os"]
IV_ROUTE = ["iv", "intravenous", "intravenous route", "47625008", "intravenously"]

CVX_INFLUENZA = "140"
CVX_TD = ["113", "115", "09", "138", "139"]  # Td adult, Tdap, and other tetanus-diphtheria codes

ORTHOPEDIC_REFERRAL = ("183545006", "Referral to orthopedic service")
ORTHOPEDIC_REFERRAL_ALT = ("306181000000106", "Referral to orthopaedic surgery service")
CARDIOLOGY_REFERRAL = ("183519002", "Referral to cardiology service")

# Conditions that justify each referral (SNOMED codes present in the data).
ORTHOPEDIC_REASONS = {
    "239873007",
    "239872002",
    "201834006",
    "58150001",
    "65966004",
    "16114001",
    "263102004",
    "444470001",
    "444448004",
    "30832001",
    "307731004",
}
CARDIOLOGY_REASONS = {"53741008", "22298006", "399211009", "49436004", "88805009", "410429000"}

# code -> codes it implies (ancestors in SNOMED, or the "history of" a past event).
# Used only to keep "no" questions away from concepts a patient has; erring wide is safe.
IMPLIES: dict[str, set[str]] = {
    "444814009": {"36971009"},  # viral sinusitis -> sinusitis
    "40055000": {"36971009"},  # chronic sinusitis -> sinusitis
    "75498004": {"36971009"},  # acute bacterial sinusitis -> sinusitis
    "368581000119106": {"44054006"},  # neuropathy due to type 2 diabetes -> diabetes
    "422034002": {"44054006"},  # diabetic retinopathy -> diabetes
    "127013003": {"44054006"},  # diabetic renal disease -> diabetes
    "93761005": {"363406005"},  # primary malignant neoplasm of colon -> malignant tumor of colon
    "109838007": {"363406005"},  # overlapping malignant neoplasm of colon -> malignant tumor of colon
    "424132000": {"254637007"},  # NSCLC stage 1 -> NSCLC
    "92691004": {"126906006"},  # carcinoma in situ of prostate -> neoplasm of prostate
    "230265002": {"26929004"},  # familial early-onset Alzheimer's -> Alzheimer's disease
    "232353008": {"446096008", "367498001"},  # perennial with seasonal variation -> both rhinitis kinds
    "84757009": {"128613002"},  # epilepsy -> seizure disorder
    "62106007": {"127295002"},  # concussion -> traumatic brain injury
    "62564004": {"127295002"},
    "275272006": {"127295002"},  # traumatic brain damage -> traumatic brain injury
    "22298006": {"399211009"},  # myocardial infarction -> history of MI
    "410429000": {"429007001"},  # cardiac arrest -> history of cardiac arrest
    "74400008": {"428251008"},  # appendicitis (operated) -> history of appendectomy
    "47693006": {"74400008", "428251008"},  # rupture of appendix -> appendicitis
    "128613002": {"703151001"},  # seizure disorder -> history of single seizure
}


@dataclass(frozen=True)
class ConditionGroup:
    """A parent concept for transitive questions: members answer yes, ambiguous codes are skipped."""

    key: str
    label: str
    members: frozenset[str]
    ambiguous: frozenset[str] = frozenset()


CONDITION_GROUPS: list[ConditionGroup] = [
    ConditionGroup(
        "diabetes",
        "diabetes mellitus (including its complications)",
        frozenset({"44054006", "368581000119106", "422034002", "127013003"}),
        frozenset({"15777000", "80394007", "237602007"}),
    ),
    ConditionGroup(
        "heart",
        "heart disease",
        frozenset({"53741008", "22298006", "399211009", "49436004", "88805009", "410429000", "429007001"}),
        frozenset({"38341003", "230690007"}),
    ),
    ConditionGroup(
        "cancer",
        "cancer (malignant neoplasm)",
        frozenset({"363406005", "93761005", "109838007", "254637007", "424132000"}),
        frozenset({"126906006", "92691004", "162573006", "68496003", "713197008"}),
    ),
    ConditionGroup("sinusitis", "sinusitis", frozenset({"444814009", "40055000", "36971009", "75498004"})),
    ConditionGroup("fracture", "bone fracture", frozenset({"58150001", "65966004", "16114001", "263102004"})),
    ConditionGroup("sprain", "sprain", frozenset({"44465007", "70704007"})),
    ConditionGroup(
        "laceration", "laceration (cut wound)", frozenset({"370247008", "283385000", "284549007", "284551006"})
    ),
    ConditionGroup(
        "tbi",
        "concussion or other traumatic brain injury",
        frozenset({"62106007", "62564004", "275272006", "127295002"}),
    ),
    ConditionGroup(
        "osteoarthritis",
        "osteoarthritis",
        frozenset({"239873007", "239872002", "201834006"}),
        frozenset({"69896004", "90560007"}),
    ),
    ConditionGroup("rhinitis", "allergic rhinitis", frozenset({"232353008", "446096008", "367498001"})),
    ConditionGroup("dementia", "Alzheimer's disease", frozenset({"26929004", "230265002"})),
    ConditionGroup(
        "seizure", "seizure disorder or epilepsy", frozenset({"128613002", "84757009"}), frozenset({"703151001"})
    ),
    ConditionGroup(
        "pregnancy_loss",
        "pregnancy loss or complication of pregnancy",
        frozenset({"19169002", "79586000", "398254007", "198992004", "35999006", "156073000"}),
    ),
    ConditionGroup("burn", "burn injury", frozenset({"403191005", "403190006", "48333001"})),
    ConditionGroup(
        "polyp",
        "colorectal polyp",
        frozenset({"68496003", "713197008"}),
        frozenset({"363406005", "93761005", "109838007"}),
    ),
    ConditionGroup("uti", "urinary tract infection", frozenset({"301011002", "38822007"})),
    ConditionGroup("knee_injury", "knee ligament or tendon injury", frozenset({"444470001", "444448004", "30832001"})),
    ConditionGroup(
        "respiratory_infection",
        "acute respiratory tract infection",
        frozenset({"444814009", "195662009", "10509002", "43878008", "75498004"}),
        frozenset({"36971009", "40055000", "65363002"}),
    ),
]


def implied_codes(codes: set[str]) -> set[str]:
    """The codes plus everything they imply, transitively."""
    result = set(codes)
    frontier = list(codes)
    while frontier:
        for parent in IMPLIES.get(frontier.pop(), set()):
            if parent not in result:
                result.add(parent)
                frontier.append(parent)
    return result


# LOINC document types of clinical notes: kind -> (code, display)
NOTE_TYPES = {
    "progress": ("11506-3", "Progress note"),
    "nursing": ("34746-8", "Nurse Note"),
    "telephone": ("34748-4", "Telephone encounter Note"),
}

# problem-list codes the quality measures (cohort worklists) name
PREDIABETES = "15777000"
DIABETES = "44054006"
HYPERTENSION = "38341003"
