"""Reads behind the read-only built-in tools. Every query starts from ``for_tenant``."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q
from django.utils import timezone

from agentops.toolbox.models import CustomerAccount, KBArticle, Policy, Transaction

_STOPWORDS = frozenset(
    "a an and are can do does for from how i in is it my of on or the to what when where which who why with you your".split()
)
EXCERPT_CHARS = 600
MAX_CANDIDATES = 200


def search_terms(query: str, *, max_terms: int = 10) -> list[str]:
    terms: list[str] = []
    for word in re.findall(r"[\w-]{2,}", query.lower()):
        if word not in _STOPWORDS and word not in terms:
            terms.append(word[:50])
    return terms[:max_terms]


def _excerpt(body: str, terms: list[str]) -> str:
    if len(body) <= EXCERPT_CHARS:
        return body
    lowered = body.lower()
    hits = [i for i in (lowered.find(t) for t in terms) if i >= 0]
    start = max(0, min(hits) - 100) if hits else 0
    text = body[start : start + EXCERPT_CHARS]
    return ("…" if start else "") + text + ("…" if start + EXCERPT_CHARS < len(body) else "")


def kb_search(*, tenant_id: int, query: str, limit: int = 5) -> list[dict[str, str]]:
    """Articles whose title or body contains any query term, best first (title hits weigh more)."""
    terms = search_terms(query)
    if not terms:
        return []
    condition = reduce(or_, (Q(title__icontains=t) | Q(body__icontains=t) for t in terms))
    candidates = list(
        KBArticle.objects.for_tenant(tenant_id).filter(condition).order_by("slug")[:MAX_CANDIDATES]
    )

    def score(article: KBArticle) -> int:
        title, body = article.title.lower(), article.body.lower()
        return sum(3 * (t in title) + (t in body) + (t in article.slug) for t in terms)

    ranked = sorted(candidates, key=lambda a: (-score(a), a.slug))[:limit]
    return [{"slug": a.slug, "title": a.title, "excerpt": _excerpt(a.body, terms)} for a in ranked]


def account_get(*, tenant_id: int, account_id: str) -> CustomerAccount | None:
    return CustomerAccount.objects.for_tenant(tenant_id).filter(account_id=account_id).first()


def account_transactions(
    *,
    tenant_id: int,
    account: CustomerAccount,
    since_days: int | None = None,
    min_amount: Decimal | None = None,
    limit: int = 50,
) -> list[Transaction]:
    qs = Transaction.objects.for_tenant(tenant_id).filter(account=account)
    if since_days is not None:
        qs = qs.filter(at__gte=timezone.now() - dt.timedelta(days=since_days))
    if min_amount is not None:
        qs = qs.filter(amount__gte=min_amount)
    return list(qs.order_by("-at", "tx_id")[:limit])


def policy_get(*, tenant_id: int, name: str) -> Policy | None:
    return Policy.objects.for_tenant(tenant_id).filter(name=name).first()


def transaction_as_dict(tx: Transaction) -> dict[str, Any]:
    return {
        "transaction_id": tx.tx_id,
        "amount": tx.amount,
        "refunded_amount": tx.refunded_amount,
        "refundable": tx.refundable,
        "description": tx.description,
        "at": tx.at,
    }
