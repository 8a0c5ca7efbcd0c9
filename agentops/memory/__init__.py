"""Memory that outlives a run (issue 16): tenant-scoped facts about a subject (a customer, account
or user key the application passes in run metadata as ``subject``), and the failure journal — what
went wrong for an agent with a tool, read before the same mistake is repeated.

Harness core (floor 3, beside ``agentops.harness``, ``llm``, ``tools`` and ``toolbox``): it may
import ``tenants``, ``budgets``, ``agentops.llm`` and ``agentops.tools``; the harness imports it,
never the other way round (the acyclic contract holds that).
"""
