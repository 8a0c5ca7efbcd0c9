"""Model access: the gateway the harness calls (:mod:`agentops.llm.gateway`) and the scripted
Messages API that stands in for Anthropic in the demo and the tests (:mod:`agentops.llm.scripted`
serves it, :mod:`~agentops.llm.scenario` reads the scenario files, :mod:`~agentops.llm.replies` builds
the replies).
Harness core (floor 3): may import budgets and tenants, never the apps."""
