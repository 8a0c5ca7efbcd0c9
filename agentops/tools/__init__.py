"""The tool registry (plain Python). Harness core: may import tenants and budgets, never the apps.

``agentops.tools.registry`` holds the contract the harness calls: specs, validation, allow-list
enforcement, approval thresholds and execution. ``agentops.toolbox.builtin`` registers the demo
tools; it needs Django's app registry, so the ``toolbox`` app's ``ready()`` imports it (with
``AGENTOPS_TOOL_MODULES``). The registry never imports a toolset back.
"""
