"""GET /api/v1/spend: exact daily totals from the rollups, scoped to the key's tenant."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import DailyRollup
from tenants.services import api_key_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]  # "today" and the default range


def test_spend_totals_are_exact_and_scoped(client, tenant, other_tenant):
    today = timezone.now().date()
    DailyRollup.objects.create(tenant=tenant, day=today, model="claude-haiku-4-5", calls=2, cost=Decimal("0.0000010001"))
    DailyRollup.objects.create(tenant=tenant, day=today, model="claude-sonnet-4-6", calls=1, cost=Decimal("0.0024048"))
    DailyRollup.objects.create(tenant=other_tenant, day=today, model="claude-haiku-4-5", calls=9, cost=Decimal("9"))
    key = api_key_create(tenant=tenant, actor=None, name="fin", scopes=["spend"])[1]
    body = client.get("/api/v1/spend", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert body["total_usd"] == "0.0024058001"
    [day] = body["days"]
    assert day["calls"] == 3 and set(day["groups"]) == {"claude-haiku-4-5", "claude-sonnet-4-6"}


@pytest.mark.parametrize("query", ["?group=nope", "?start=yesterday", "?start=2026-13-01"])
def test_bad_parameters_are_400(client, tenant, query):
    key = api_key_create(tenant=tenant, actor=None, name="fin", scopes=["spend"])[1]
    resp = client.get(f"/api/v1/spend{query}", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request"


def test_money_is_written_as_normalised_decimal_strings(client, tenant):
    today = timezone.now().date()
    DailyRollup.objects.create(tenant=tenant, day=today, model="claude-haiku-4-5", calls=1, cost=Decimal("0E-10"))
    DailyRollup.objects.create(tenant=tenant, day=today, model="claude-sonnet-4-6", calls=1, cost=Decimal("8.1065056000"))
    key = api_key_create(tenant=tenant, actor=None, name="fin", scopes=["spend"])[1]
    body = client.get("/api/v1/spend", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert body["total_usd"] == "8.1065056"
    [day] = body["days"]
    assert day["cost_usd"] == "8.1065056"
    assert day["groups"]["claude-haiku-4-5"]["cost_usd"] == "0.00"
    assert day["groups"]["claude-sonnet-4-6"]["cost_usd"] == "8.1065056"
    # Caps (stored with 10 decimals) come out as cents: "50.00", not "50.0000000000".
    caps = [v for v in body["caps_usd"].values() if v is not None]
    assert caps and all(re.fullmatch(r"\d+\.\d\d", v) for v in caps), body["caps_usd"]
