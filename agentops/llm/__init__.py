"""Model access: the gateway the harness calls (:mod:`agentops.llm.gateway`) and the scripted
Messages API that stands in for Anthropic in the demo and the tests (:mod:`agentops.llm.scripted`).
Harness core (floor 3): may import budgets and tenants, never the apps."""
