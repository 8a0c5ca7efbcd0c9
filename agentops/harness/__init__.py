"""The agent harness (floor 3): the loop, leases, grants and tracing, in plain Python.

May import the rest of the harness core (llm, tools, toolbox), budgets and tenants; never an app.
What it needs from the apps above (store a run: :mod:`agentops.harness.store`; enqueue it; keep
escalations) goes through interfaces it owns, filled at start-up via :mod:`agentops.harness.hooks`.

``loop.drive_run`` is the whole contract with the job system: lease a run, advance it until it
finishes, must wait (approval, cap, outage), or is handed back, and persist every step before
the next one starts.
"""
