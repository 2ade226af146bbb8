"""Set v3's rebuilt hard tier: v2's hard categories with their measured shortcuts closed (issue #27).

Each module generates one category from the bundles (ground truth by the generators; no client, no tools) and
keeps v2's shape (``HardBuilder`` with the v3 id tag). ``medagent.scenarios.v3.build`` writes the whole set.
"""
