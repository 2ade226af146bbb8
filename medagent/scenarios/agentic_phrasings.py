"""The task sentences of every agentic task type: at least five phrasings each, the last one test-only.

The rules, codes, dosing and answer format of a task stay in its context and format lines (one wording,
shared by every phrasing, so the grader and the text never disagree); only the request itself varies.
Placeholders: ``{patient}`` ("the patient with MRN ..."), ``{mrn}`` and the task's own words.
"""

from __future__ import annotations

import random

TEST_ONLY_PHRASINGS = 1

AGENTIC_PHRASES: dict[str, list[str]] = {
    "find_mrn": [
        "What is the MRN of the patient named {name}, born {born}?",
        "Find the medical record number of {name} (date of birth {born}).",
        "Look up {name}, born on {born}, and tell me the patient's MRN.",
        "I need the MRN for {name}, DOB {born}.",
        "Which MRN belongs to the patient {name} with birth date {born}?",
        "Can you pull up the chart of {name} (born {born}) and give me the MRN?",
    ],
    "age": [
        "What is the age of {patient}?",
        "How old is {patient}?",
        "Tell me the current age of {patient}.",
        "What age is {patient} today?",
        "Give the age in years of {patient}.",
        "For a form I need the age of {patient}: how old is the patient now?",
    ],
    "record_bp": [
        "I just measured the blood pressure of {patient}: {sys}/{dia} mmHg. Record it in the chart.",
        "Please chart a blood pressure of {sys}/{dia} mmHg for {patient}, measured just now.",
        "The blood pressure of {patient}, taken now, is {sys}/{dia} mmHg. Document it.",
        "Record this vital sign for {patient}: blood pressure {sys}/{dia} mmHg, measured a moment ago.",
        "Enter the blood pressure I just took on {patient}, {sys} over {dia} mmHg, into the record.",
        "The blood pressure of {patient} is {sys}/{dia} mmHg right now; please file it as a vital sign.",
    ],
    "recent_lab": [
        "What is the most recent {label} value (LOINC {code}) of {patient} within the last 24 hours?",
        "Has {patient} had a {label} (LOINC {code}) in the last 24 hours? If so, what was the latest value?",
        "Give the latest {label} result (LOINC {code}) of {patient} from the past 24 hours.",
        "What {label} (LOINC {code}) was most recently measured for {patient} in the last 24 hours?",
        "Look up the {label} (LOINC {code}) of {patient} from the last 24 hours and report the most recent value.",
        "Within the past 24 hours, what is the last {label} (LOINC {code}) recorded for {patient}?",
    ],
    "magnesium_replacement": [
        "Check the last serum magnesium level of {patient} within the last 24 hours. If it is low, order "
        "replacement IV magnesium according to the dosing instructions. If no magnesium level was recorded in the "
        "last 24 hours, do not order anything.",
        "Review the serum magnesium of {patient} from the last 24 hours and, if it is low, order IV magnesium "
        "replacement per the dosing instructions; with no magnesium result in the last 24 hours, order nothing.",
        "Does {patient} need magnesium replacement? Look at the latest serum magnesium within the last 24 hours: if "
        "it is low, order IV magnesium as instructed below; if there is none in that time, do not order.",
        "For {patient}: if the most recent serum magnesium from the last 24 hours is low, place an IV magnesium "
        "replacement order following the dosing instructions. Without a result in the last 24 hours, place no order.",
        "Look up the last 24 hours of serum magnesium results of {patient}. Replace IV magnesium per the dosing "
        "instructions if the latest is low; order nothing if it is normal or if none was measured in that period.",
        "Magnesium check for {patient}: take the newest serum magnesium of the last 24 hours; when it is low, order "
        "IV magnesium by the dosing instructions, otherwise (normal, or nothing in 24 hours) order nothing.",
    ],
    "average_glucose": [
        "What is the average blood glucose (LOINC {code}) of {patient} over the last 730 days (2 years)? Include "
        "every glucose result from the 730 days before now.",
        "Compute the mean blood glucose (LOINC {code}) of {patient} over the 730 days (2 years) before now, using "
        "every glucose result in that period.",
        "Average all blood glucose results (LOINC {code}) of {patient} from the last 730 days (2 years): what is the "
        "mean?",
        "Over the past 2 years (730 days), what was the mean of the glucose results (LOINC {code}) of {patient}? "
        "Count every result in that window.",
        "Give the 730-day (2-year) average glucose (LOINC {code}) of {patient}, over every glucose result dated in "
        "the 730 days before now.",
        "Taking every blood glucose (LOINC {code}) of {patient} recorded in the 730 days (2 years) up to now, what "
        "is their average?",
    ],
    "latest_glucose": [
        "What is the most recent blood glucose value (LOINC {code}) of {patient}?",
        "Give the latest glucose result (LOINC {code}) of {patient}.",
        "What was the last blood glucose (LOINC {code}) measured for {patient}?",
        "Report the newest blood glucose value (LOINC {code}) on record for {patient}.",
        "Look up the chart of {patient} and tell me the latest recorded glucose (LOINC {code}).",
        "As of now, what is the most recently recorded blood glucose (LOINC {code}) of {patient}?",
    ],
    "referral": [
        "Order a {service} referral for {patient}. Write within the free text of the referral: \"{note}\"",
        "Please refer {patient} to the {service} service. Put this text in the referral's free text: \"{note}\"",
        "Place a referral to {service} for {patient}, with this free text in the referral: \"{note}\"",
        "Send {patient} to {service} with a referral order; its free text must read: \"{note}\"",
        "Create a {service} referral for {patient} and include in its free text: \"{note}\"",
        "A {service} consult is needed for {patient}: order the referral and write in its free text: \"{note}\"",
    ],
    "potassium_replacement": [
        "Check the most recent potassium level of {patient}. If it is low, order replacement potassium according to "
        "the dosing instructions, and pair this order with a serum potassium lab to be collected at 08:00 the next "
        "morning. If it is not low, order nothing.",
        "Look at the latest potassium result of {patient}. When it is low, order oral potassium replacement per the "
        "dosing instructions together with a serum potassium lab for 08:00 the next morning; when it is not low, "
        "order nothing.",
        "Does {patient} need potassium replacement? If the most recent potassium is low, order replacement as "
        "instructed and a serum potassium lab at 08:00 the next morning; otherwise order nothing.",
        "Review the newest potassium level of {patient}: if low, place an oral potassium replacement order "
        "following the dosing instructions plus a serum potassium lab to be drawn at 08:00 the next morning. If it "
        "is not low, place no orders.",
        "For {patient}, replace potassium if the most recent level is low (dose per the instructions) and order a "
        "repeat serum potassium for 08:00 the next morning; order nothing if the level is not low.",
        "Potassium check for {patient}: a low latest potassium means an oral replacement order per the dosing "
        "instructions and a serum potassium lab at 08:00 the following morning; a level that is not low means no "
        "orders.",
    ],
    "hba1c_reorder": [
        "What is the last hemoglobin A1c (HbA1c) value in the chart of {patient}, and when was it recorded? If the "
        "last result is more than 1 year old, or there is none, order a new HbA1c lab test.",
        "Find the most recent HbA1c of {patient} and its date. Order a new HbA1c test if that result is more than "
        "1 year old or if there is no HbA1c on record.",
        "Report the latest hemoglobin A1c (HbA1c) of {patient} with the date it was recorded; if it is more than 1 "
        "year old or missing, order a repeat HbA1c.",
        "When was HbA1c last measured for {patient}, and what was it? If more than 1 year ago (or never), order a "
        "new HbA1c lab.",
        "Look up the newest HbA1c result of {patient}, giving value and date, and order an HbA1c lab test when the "
        "last one is more than 1 year old or absent.",
        "HbA1c monitoring for {patient}: state the last HbA1c value and its date, and if it is more than 1 year old "
        "or there is none, put in an order for a new HbA1c.",
    ],
    "medication_reconciliation": [
        "The patient with MRN {mrn} is at a visit for medication reconciliation and reports currently taking: "
        "{listed}. Compare this list with the patient's active medication orders (MedicationRequest with status "
        "active).",
        "Medication reconciliation for the patient with MRN {mrn}: the patient says they currently take: {listed}. "
        "Compare what they report with their active medication orders (MedicationRequest with status active).",
        "At today's visit the patient with MRN {mrn} lists these current medications: {listed}. Reconcile this list "
        "against the active medication orders (MedicationRequest with status active).",
        "Reconcile the medications of the patient with MRN {mrn}. Reported by the patient as currently taken: "
        "{listed}. Compare with the active orders (MedicationRequest with status active).",
        "The patient with MRN {mrn} reports taking: {listed}. Check this against the chart's active medication "
        "orders (MedicationRequest with status active).",
        "Here is what the patient with MRN {mrn} told me they take now: {listed}. How does that compare with their "
        "active medication orders (MedicationRequest with status active)?",
    ],
    "influenza_vaccine_due": [
        "Is {patient} due for the seasonal influenza vaccine? The patient is due if no influenza vaccination was "
        "given since the current influenza season began on {start}. If due, order the vaccine; if not, order "
        "nothing.",
        "Check whether {patient} has had this season's influenza vaccine (the current season began on {start}). If "
        "no influenza vaccination was given since then, order the vaccine; otherwise order nothing.",
        "Does {patient} need an influenza vaccine this season? The season began on {start}: without an influenza "
        "vaccination on or after that date the patient is due and you should order it; if vaccinated since, order "
        "nothing.",
        "Influenza vaccine check for {patient}: if there is no influenza vaccination since the start of the current "
        "season ({start}), order one; if there is, do not order.",
        "Review the influenza immunizations of {patient}. The current season started on {start}; order the seasonal "
        "influenza vaccine only if none was given since then.",
        "Has {patient} been vaccinated against influenza since this season began on {start}? If not, order the "
        "seasonal influenza vaccine; if so, order nothing.",
    ],
    "lab_trend": [
        "Summarise the trend of the {label} (LOINC {code}) of {patient} over its last three results before now, for "
        "the clinician.",
        "How has the {label} (LOINC {code}) of {patient} changed over its last three results before now? Summarise "
        "the trend for the clinician.",
        "Describe the trend in the last three {label} results (LOINC {code}) of {patient} before now.",
        "Look at the three most recent {label} values (LOINC {code}) of {patient} before now and summarise the "
        "direction for the care team.",
        "Give the clinician a trend summary of the last three {label} (LOINC {code}) results of {patient} before "
        "now.",
        "Over the latest three {label} measurements (LOINC {code}) of {patient} before now, is it going up, down or "
        "staying stable? Summarise.",
    ],
    "discontinue_medication": [
        "The care team has decided to stop {drug} for {patient}. If the patient has an active order for {drug}, "
        "discontinue it by setting its status to stopped; if there is no active order, change nothing.",
        "Please discontinue {drug} for {patient}: set every active order for it to status stopped. If there is no "
        "active order for {drug}, change nothing.",
        "Stop {drug} for {patient}: any active order for it should get status stopped; with no active order, change "
        "nothing.",
        "The clinician wants {patient} off {drug}. Set its active order(s) to stopped; if none is active, leave the "
        "chart unchanged.",
        "Discontinue the active order(s) for {drug} of {patient} by setting the status to stopped; if no order for "
        "{drug} is active, change nothing.",
        "We are taking {patient} off {drug}. If an order for {drug} is still active, mark it stopped; if not, do not "
        "change anything.",
    ],
}


def pick_phrasing(rng: random.Random, category: str, test: bool) -> tuple[int, str]:
    """(index, template): any phrasing in the test split, all but the test-only ones in dev."""
    every = AGENTIC_PHRASES[category]
    allowed = every if test else every[:-TEST_ONLY_PHRASINGS]
    index = rng.randrange(len(allowed))
    return index, allowed[index]
