"""The runtime fixtures (agent with the demo toolset, scripted model) for the evaluator tests."""

from tests.runtime.conftest import _scripted, agent, demo_data, tier_generous  # noqa: F401 - fixtures
