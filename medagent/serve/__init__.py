"""``medagent serve``: the agent as an HTTP service (runs, step stream, write approvals) and its browser UI."""
