"""Floor 1, tenants: identity, membership, roles, API keys, audit, webhooks and the tenant-scoping base.

Imports nothing of ours above it (only the small agentops helpers such as netguard and redact).
"""
