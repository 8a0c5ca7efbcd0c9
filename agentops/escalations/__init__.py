"""Floor 4 (an app on the harness, above runs), escalations: human decisions on gated tool calls,
hand-offs and unknown outcomes; inbox, API, expiry jobs and notifications.

May import runs and every floor below; nothing imports it but the wiring. Registers the harness's
escalation store in ``EscalationsConfig.ready()``.
"""
