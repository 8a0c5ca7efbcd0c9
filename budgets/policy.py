"""Which caps apply to a call: tier defaults ← tenant overrides ← user overrides / the agent's task cap.

The PL/pgSQL reserve (budgets_reserve4, migration 0009) computes the same in its one statement;
this is the portable path's and the console's reading of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection

from budgets.models import CapScope, TenantCaps, UserCap
from budgets.pricing import model_matches
from tenants.models import Tenant


@dataclass(frozen=True)
class CapPolicy:
    caps: dict[str, Decimal]
    max_concurrent_runs: int
    allowed_models: list[str] = field(default_factory=list)
    user_id: int | None = None  # the user charged (user caps apply only when there is one)
    # The tier's list bounds the tenant's: a model must pass both (empty means "every model").
    tier_models: list[str] = field(default_factory=list)

    def allows(self, model: str) -> bool:
        return all(not models_ or any(model_matches(model, m) for m in models_) for models_ in (self.allowed_models, self.tier_models))


def _json_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else None


def decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


_POLICY_SQL = f"""
SELECT tr.task_cost_cap, tr.user_day_cost_cap, tr.user_month_cost_cap, tr.tenant_month_cost_cap,
       tr.max_concurrent_runs, tr.allowed_models,
       tc.task_cost_cap, tc.user_day_cost_cap, tc.user_month_cost_cap, tc.tenant_month_cost_cap,
       tc.max_concurrent_runs, tc.allowed_models,
       uc.user_day_cost_cap, uc.user_month_cost_cap, ag.task_cost_cap, u.id
FROM tenants_tenant tn
JOIN tenants_tier tr ON tr.id = tn.tier_id
LEFT JOIN tenants_apikey k ON k.id = %s AND k.tenant_id = tn.id
LEFT JOIN auth_user u ON u.id = COALESCE(%s, k.created_by_id)
LEFT JOIN {TenantCaps._meta.db_table} tc ON tc.tenant_id = tn.id
LEFT JOIN {UserCap._meta.db_table} uc ON uc.tenant_id = tn.id AND uc.user_id = u.id
LEFT JOIN runs_agent ag ON ag.id = %s AND ag.tenant_id = tn.id
WHERE tn.id = %s
"""  # noqa: S608 - table names come from model Meta, values are bound parameters


def cap_policy(tenant_id: int, user_id: int | None, agent_id: int | None, api_key_id: int | None = None) -> CapPolicy:
    """Tier defaults ← tenant overrides ← user overrides / agent task cap, in one query.

    The user is ``user_id``, else the creator of ``api_key_id`` (runs submitted with a key).
    """
    with connection.cursor() as cur:
        cur.execute(_POLICY_SQL, [api_key_id or 0, user_id, agent_id or 0, tenant_id])
        row = cur.fetchone()
    if row is None:
        raise Tenant.DoesNotExist
    (t_task, t_uday, t_umonth, t_tmonth, t_conc, t_models,
     c_task, c_uday, c_umonth, c_tmonth, c_conc, c_models, u_day, u_month, a_task, resolved_user) = row

    def pick(*values: Any) -> Decimal:
        # The first override that is set, never above the tier's limit (the last value): an old
        # row written before the bounds were enforced cannot lift a cap past the tier.
        tier = Decimal(str(values[-1]))
        return min(next(Decimal(str(v)) for v in values if v is not None), tier)

    allowed = _json_list(c_models)
    tier_models = _json_list(t_models) or []
    return CapPolicy(
        caps={
            CapScope.TASK: pick(a_task, c_task, t_task),
            CapScope.USER_DAY: pick(u_day, c_uday, t_uday),
            CapScope.USER_MONTH: pick(u_month, c_umonth, t_umonth),
            CapScope.TENANT_MONTH: pick(c_tmonth, t_tmonth),
        },
        max_concurrent_runs=min(int(c_conc if c_conc is not None else t_conc), int(t_conc)),
        allowed_models=allowed if allowed is not None else tier_models,
        user_id=resolved_user,
        tier_models=tier_models,
    )


def effective_policy(*, tenant: Tenant, user: Any = None, agent: Any = None) -> CapPolicy:
    return cap_policy(tenant.pk, getattr(user, "pk", None), getattr(agent, "pk", None))


def effective_caps(*, tenant: Tenant, user: Any = None, agent: Any = None) -> dict[str, Decimal]:
    """The cap of every scope for this tenant / user / agent: ``{"task", "user_day", "user_month", "tenant_month"}``."""
    return dict(effective_policy(tenant=tenant, user=user, agent=agent).caps)
