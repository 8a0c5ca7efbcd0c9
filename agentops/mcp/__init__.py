"""MCP tool servers under grants: a tenant's registered MCP servers and the tools they list, offered
to its agents through the tool registry (``mcp__<server>__<tool>``) and granted, allow-listed, gated
and audited like the built-in tools. Harness floor, beside agentops.tools."""
