"""CDS Hooks 2.0 services of ``medagent serve``: patient-view, order-select and order-sign, as deterministic rules
over the chart (README.md beside this file)."""

DEFAULT_BUDGET_SECONDS = 4.0  # a hook call answers within this (``medagent serve --cds-budget``) or with no card
