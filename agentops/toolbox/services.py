"""Writes behind the side-effecting built-in tools, each exactly once per ``(run_id, tool_use_id)``.

The key is enforced twice: the harness's ToolCall ledger reuses a finished call's result, and the
unique constraints on ``Refund`` / ``SentEmail`` make a second execution of the same call return the
first row (even when two workers race) instead of acting again.
"""

from __future__ import annotations

import logging
import smtplib
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F

from agentops.toolbox.models import Refund, SentEmail, Transaction
from agentops.tools.errors import ToolError, ToolNotFoundError, ToolValidationError, TransientToolError
from tenants.models import Tenant
from tenants.services import audit_record

logger = logging.getLogger(__name__)


def _refund_by_key(*, tenant_id: int, run_id: int, tool_use_id: str) -> Refund | None:
    return (
        Refund.objects.for_tenant(tenant_id)
        .select_related("account", "transaction")
        .filter(run_id=run_id, tool_use_id=tool_use_id)
        .first()
    )


def refund_issue(
    *,
    tenant_id: int,
    run_id: int,
    tool_use_id: str,
    account_id: str,
    transaction_id: str,
    amount: Decimal,
    reason: str,
) -> tuple[Refund, bool]:
    """Refund ``amount`` of a charge. Returns ``(refund, created)``; a replay returns the first refund.

    Raises ToolNotFoundError (no such charge in the tenant), ToolValidationError (charge of another
    account, amount not positive or above what is left to refund).
    """
    if amount <= 0:
        raise ToolValidationError("amount must be greater than 0")
    existing = _refund_by_key(tenant_id=tenant_id, run_id=run_id, tool_use_id=tool_use_id)
    if existing is not None:
        return existing, False
    with transaction.atomic():
        charge = (
            Transaction.objects.for_tenant(tenant_id)
            .select_for_update(of=("self",))
            .select_related("account")
            .filter(tx_id=transaction_id)
            .first()
        )
        if charge is None:
            raise ToolNotFoundError(f"no transaction {transaction_id} in this workspace")
        # Checked again under the row lock: a concurrent execution of the same call has committed by now.
        existing = _refund_by_key(tenant_id=tenant_id, run_id=run_id, tool_use_id=tool_use_id)
        if existing is not None:
            return existing, False
        if charge.account.account_id != account_id:
            raise ToolValidationError(f"transaction {transaction_id} does not belong to account {account_id}")
        remaining = charge.amount - charge.refunded_amount
        if amount > remaining:
            raise ToolValidationError(
                f"amount {amount} is more than the {remaining} left to refund on {transaction_id} "
                f"(charged {charge.amount}, already refunded {charge.refunded_amount})"
            )
        try:
            with transaction.atomic():
                refund = Refund.objects.create(
                    tenant_id=tenant_id,
                    run_id=run_id,
                    tool_use_id=tool_use_id,
                    account=charge.account,
                    transaction=charge,
                    amount=amount,
                    reason=reason,
                )
        except IntegrityError:
            # Same key on a different charge, committed by a racing execution: that one is the refund.
            existing = _refund_by_key(tenant_id=tenant_id, run_id=run_id, tool_use_id=tool_use_id)
            if existing is not None:
                return existing, False
            raise ToolError("this tool call's idempotency key is already used elsewhere; refusing")
        Transaction.objects.filter(pk=charge.pk).update(refunded_amount=F("refunded_amount") + amount)
        audit_record(
            tenant=Tenant.objects.get(pk=tenant_id),
            actor=None,
            action="toolbox.refund_issued",
            target=refund,
            after={
                "transaction": transaction_id,
                "amount": str(amount),
                "run_id": run_id,
                "tool_use_id": tool_use_id,
            },
        )
    return refund, True


def email_send(
    *, tenant_id: int, run_id: int, tool_use_id: str, to: str, subject: str, body: str
) -> tuple[SentEmail, bool]:
    """Record and send an e-mail once per key. Returns ``(row, created)``.

    The message goes through Django's e-mail framework (``EMAIL_BACKEND``: SMTP, a provider's
    backend, or locmem in tests) inside the transaction that creates the row, so the row exists only
    if the backend accepted the message; a backend failure rolls the row back and is retried.
    """
    existing = SentEmail.objects.for_tenant(tenant_id).filter(run_id=run_id, tool_use_id=tool_use_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            row = SentEmail.objects.create(
                tenant_id=tenant_id, run_id=run_id, tool_use_id=tool_use_id, to=to, subject=subject, body=body
            )
            try:
                send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
            except (smtplib.SMTPException, OSError) as exc:
                raise TransientToolError(f"the mail server did not accept the message ({type(exc).__name__})")
            audit_record(
                tenant=Tenant.objects.get(pk=tenant_id),
                actor=None,
                action="toolbox.email_sent",
                target=row,
                after={"run_id": run_id, "tool_use_id": tool_use_id},
            )
    except IntegrityError:
        existing = (
            SentEmail.objects.for_tenant(tenant_id).filter(run_id=run_id, tool_use_id=tool_use_id).first()
        )
        if existing is not None:
            return existing, False
        raise ToolError("this tool call's idempotency key is already used elsewhere; refusing")
    return row, True
