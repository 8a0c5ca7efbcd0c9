"""Model access: the gateway the harness calls (:mod:`agentops.llm.gateway`) and the scripted
Messages API that stands in for Anthropic in the demo and the tests (:mod:`agentops.llm.scripted`)."""
