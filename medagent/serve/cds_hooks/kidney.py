"""The patient's current kidney function: the latest eGFR, or one computed from a newer serum creatinine with
the CKD-EPI 2021 creatinine equation (race-free; Inker et al., N Engl J Med 2021;385:1737-49)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from medagent.serve.cds_hooks.chart import Chart, Reading, age_on, latest, number

EGFR_CODES = ("33914-3", "48642-3", "48643-1", "62238-1", "98979-8")  # LOINC estimated GFR (MDRD, CKD-EPI)
CREATININE_CODES = ("2160-0", "38483-4")  # LOINC creatinine, serum/plasma and blood (mass/volume)
UMOL_PER_MG_DL = 88.4  # creatinine: 1 mg/dL = 88.4 umol/L


@dataclass(frozen=True)
class KidneyFunction:
    egfr: float  # mL/min/1.73 m2
    reading: Reading  # the Observation it comes from (eGFR, or the creatinine it was computed from)
    computed: bool  # True: CKD-EPI 2021 from creatinine, age and sex

    @property
    def when(self) -> datetime:
        return self.reading.when

    def describe(self) -> str:
        """'eGFR 24 mL/min/1.73 m2 on 2024-05-02 (Observation/x)', saying how it was obtained."""
        date = self.reading.when.date().isoformat()
        if self.computed:
            return (
                f"eGFR {self.egfr:.0f} mL/min/1.73 m2 (CKD-EPI 2021 from creatinine {number(self.reading.value)} "
                f"{self.reading.unit} on {date}, {self.reading.reference})"
            )
        return f"eGFR {self.egfr:.0f} mL/min/1.73 m2 on {date} ({self.reading.reference})"


def ckd_epi_2021(creatinine_mg_dl: float, age: int, female: bool) -> float:
    """eGFR = 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [female];
    k = 0.7 (female) or 0.9 (male), a = -0.241 (female) or -0.302 (male)."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    return 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age * (1.012 if female else 1.0)


def creatinine_mg_dl(reading: Reading) -> float | None:
    unit = reading.unit.replace("µ", "u").lower()
    if unit in ("mg/dl", "mg/100ml"):
        return reading.value
    if unit in ("umol/l", "micromol/l"):
        return reading.value / UMOL_PER_MG_DL
    return None


def kidney_function(chart: Chart) -> KidneyFunction | None:
    """The newest of: the latest eGFR result, and the eGFR computed from the latest creatinine (an adult with a
    recorded sex: CKD-EPI is for adults); None when the chart has neither."""
    egfr = latest(chart.observations, EGFR_CODES)
    creatinine = latest(chart.observations, CREATININE_CODES)
    if creatinine is not None and (egfr is None or creatinine.when > egfr.when):
        computed = _from_creatinine(chart, creatinine)
        if computed is not None:
            return computed
    return KidneyFunction(egfr.value, egfr, computed=False) if egfr is not None else None


def _from_creatinine(chart: Chart, reading: Reading) -> KidneyFunction | None:
    value = creatinine_mg_dl(reading)
    gender = (chart.patient or {}).get("gender")
    age = age_on(chart.patient, reading.when)
    if value is None or value <= 0 or gender not in ("male", "female") or age is None or age < 18:
        return None
    return KidneyFunction(ckd_epi_2021(value, age, gender == "female"), reading, computed=True)
