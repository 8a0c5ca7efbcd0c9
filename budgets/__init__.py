"""Floor 2, budgets: prices, caps, the spend ledger, reserve/settle/release and cost alerts.

May import tenants only. Runs and agents are plain id columns (no foreign keys); what budgets must
know about them goes through ``budgets.subjects``, which the runs app fills at start-up.
"""
