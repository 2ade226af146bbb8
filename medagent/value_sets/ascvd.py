"""Clinical atherosclerotic cardiovascular disease (the statin and CHA2DS2-VASc 'vascular disease' groups)."""

from medagent.value_sets import SNOMED, Concept, ValueSet

VALUE_SET = ValueSet(
    name="ascvd",
    title="Atherosclerotic cardiovascular disease",
    system=SNOMED,
    concepts=(
        Concept("53741008", "Coronary arteriosclerosis (coronary heart disease)"),
        Concept("22298006", "Myocardial infarction"),
        Concept("399211009", "History of myocardial infarction"),
        Concept("414545008", "Ischemic heart disease"),
        Concept("399957001", "Peripheral arterial occlusive disease"),
    ),
    source="SNOMED CT: coronary heart disease, myocardial infarction (and its history finding), ischemic heart disease "
    "and peripheral arterial disease, as ACC/AHA 2018 (clinical ASCVD) and CHA2DS2-VASc ('vascular disease': "
    "prior MI, peripheral artery disease, aortic plaque) define them; the codes of the Synthea charts first.",
)
