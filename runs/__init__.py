"""Floor 4 (an app on the harness), runs: agents, runs, messages, tool calls, grants, jobs, API, console.

May import the harness core (agentops.harness, llm, tools), budgets and tenants; never escalations or
the project wiring. Fills the harness's and budgets' interfaces in ``RunsConfig.ready()``.
"""
