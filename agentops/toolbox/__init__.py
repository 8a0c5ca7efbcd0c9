"""The built-in toolset's data: a tenant's knowledge base, customer accounts, charges and policies,
and the rows the side-effecting tools leave behind (refunds, e-mails). Harness core (floor 3):
``builtin`` registers the tools with ``agentops.tools`` from ``ToolboxConfig.ready()``.
"""
