"""Data the built-in tools read and write, every row scoped to a tenant.

``Refund`` and ``SentEmail`` are keyed ``(run_id, tool_use_id)`` by a unique constraint: the
harness's ToolCall ledger is the first line of the exactly-once guarantee, this constraint the
second, so a tool executed twice for the same call returns the first row instead of acting twice.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned

# Customer money (not model spend): max_digits=14, decimal_places=2 on every money field.


class KBArticle(TenantOwned):
    slug = models.SlugField(max_length=100)
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=50_000)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="kbarticle_slug_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return self.title


class CustomerAccount(TenantOwned):
    account_id = models.CharField(max_length=20, validators=[RegexValidator(r"^ACC-\d{4,8}$")])
    name = models.CharField(max_length=200)
    email = models.EmailField()
    plan = models.CharField(max_length=50)
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account_id"], name="account_id_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.name}"


class Transaction(TenantOwned):
    """A charge on a customer account; ``refunded_amount`` only grows, through ``Refund`` rows."""

    account = models.ForeignKey(CustomerAccount, on_delete=models.CASCADE, related_name="transactions")
    tx_id = models.CharField(max_length=20, validators=[RegexValidator(r"^TX-\d+$")])
    amount = models.DecimalField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    description = models.CharField(max_length=300)
    at = models.DateTimeField(default=timezone.now)
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))

    class Meta:
        ordering = ["-at", "tx_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tx_id"], name="tx_id_unique_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0)
                & models.Q(refunded_amount__lte=models.F("amount")),
                name="tx_refund_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tx_id} {self.amount}"

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.refunded_amount


class Policy(TenantOwned):
    name = models.CharField(max_length=50)
    text = models.TextField(max_length=20_000)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="policy_name_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return self.name


class Refund(TenantOwned):
    run_id = models.BigIntegerField()
    tool_use_id = models.CharField(max_length=100)
    account = models.ForeignKey(CustomerAccount, on_delete=models.PROTECT, related_name="refunds")
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    reason = models.TextField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["run_id", "tool_use_id"], name="refund_once_per_tool_use")
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} on {self.transaction_id}"


class SentEmail(TenantOwned):
    run_id = models.BigIntegerField()
    tool_use_id = models.CharField(max_length=100)
    to = models.EmailField(max_length=254)
    subject = models.CharField(max_length=200)
    body = models.TextField(max_length=10_000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["run_id", "tool_use_id"], name="email_once_per_tool_use")
        ]

    def __str__(self) -> str:
        return f"e-mail {self.subject[:40]}"
