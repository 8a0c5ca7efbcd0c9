"""The tool registry (plain Python) and the built-in toolset.

``agentops.tools.registry`` holds the contract the harness calls: specs, validation, allow-list
enforcement, approval thresholds and execution. ``agentops.tools.builtin`` registers the demo
tools; it needs Django's app registry, so it is imported by the ``toolbox`` app's ``ready()`` (and
lazily by :func:`agentops.tools.registry.all_tools`), never at import time of this package.
"""
