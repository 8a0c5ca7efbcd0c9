"""The agent harness: plain Python around the Django models that store a run.

``loop.drive_run`` is the whole contract with the job system: lease a run, advance it until it
finishes, must wait (approval, cap, outage), or is handed back, and persist every step before
the next one starts.
"""
