"""The agent harness (floor 3): plain Python around the Django models that store a run.

May import the rest of the harness core (llm, tools), budgets and tenants, and for now runs.models
(its store: the one exception listed in .importlinter). What it needs from the
apps above (enqueue a run, keep escalations) goes through :mod:`agentops.harness.hooks`.

``loop.drive_run`` is the whole contract with the job system: lease a run, advance it until it
finishes, must wait (approval, cap, outage), or is handed back, and persist every step before
the next one starts.
"""
