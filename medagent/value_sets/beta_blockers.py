"""Beta-adrenergic blocking agents."""

from medagent.value_sets import RXNORM, Concept, ValueSet

VALUE_SET = ValueSet(
    name="beta_blockers",
    title="Beta blockers",
    system=RXNORM,
    concepts=(
        Concept("6918", "metoprolol"),
        Concept("1202", "atenolol"),
        Concept("19484", "bisoprolol"),
        Concept("20352", "carvedilol"),
        Concept("8787", "propranolol"),
        Concept("31555", "nebivolol"),
        Concept("6185", "labetalol"),
        Concept("866414", "24 HR metoprolol succinate 100 MG Extended Release Oral Tablet [Toprol]"),
        Concept("197380", "Atenolol 25 MG Oral Tablet"),
    ),
    excludes=(Concept("11170", "verapamil"),),
    source="ATC C07AA (non-selective), C07AB (beta-1 selective) and C07AG (alpha and beta blocking agents): the "
    "RxNorm ingredients, the metoprolol product of the Synthea charts and the atenolol tablet a discharge list "
    "starts. Verapamil (a calcium-channel blocker, C08DA) also slows the heart and is not one.",
)
