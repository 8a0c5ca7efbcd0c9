"""Notifications about escalations (webhooks). Extended by the escalations capability."""

from __future__ import annotations

from runs.models import Escalation


def escalation_created(escalation: Escalation) -> None:
    """Hook called once when an escalation opens."""
