"""Reads: prompts with where their labels point, versions, label history, and the diff of two versions."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from agentops.prompts.models import CONTENT_FIELDS, LabelMove, Prompt, PromptLabel, PromptVersion
from tenants.access import parse_id
from tenants.models import Tenant


def prompt_list(*, tenant: Tenant) -> QuerySet[Prompt]:
    labels = PromptLabel.objects.for_tenant(tenant).select_related("version").order_by("name")
    return (Prompt.objects.for_tenant(tenant).annotate(version_count=Count("versions", distinct=True))
            .prefetch_related(Prefetch("labels", queryset=labels)).order_by("path", "name"))


def prompt_get(*, tenant: Tenant, name: str) -> Prompt:
    """The tenant's prompt by name; another tenant's is simply not found."""
    prompt = Prompt.objects.for_tenant(tenant).filter(name=name).first()
    if prompt is None:
        raise Http404("No such prompt.")
    return prompt


def version_get(*, prompt: Prompt, number: Any) -> PromptVersion:
    n = parse_id(number)
    version = PromptVersion.objects.for_tenant(prompt.tenant_id).filter(prompt=prompt, number=n).first() if n else None
    if version is None:
        raise Http404("No such version.")
    version.prompt = prompt
    return version


def versions_of(*, prompt: Prompt) -> list[PromptVersion]:
    versions = list(PromptVersion.objects.for_tenant(prompt.tenant_id).filter(prompt=prompt).select_related("author").order_by("-number"))
    for v in versions:
        v.prompt = prompt
    return versions


def labels_of(*, prompt: Prompt) -> list[PromptLabel]:
    return list(PromptLabel.objects.for_tenant(prompt.tenant_id).filter(prompt=prompt).select_related("version").order_by("name"))


def label_get(*, prompt: Prompt, name: str) -> PromptLabel:
    label = PromptLabel.objects.for_tenant(prompt.tenant_id).filter(prompt=prompt, name=name).select_related("version").first()
    if label is None:
        raise Http404("No such label.")
    label.prompt = prompt
    return label


def label_history(*, prompt: Prompt, label: PromptLabel | None = None, limit: int = 200) -> list[LabelMove]:
    qs = LabelMove.objects.for_tenant(prompt.tenant_id).filter(prompt=prompt)
    if label is not None:
        qs = qs.filter(label=label)
    return list(qs.select_related("label", "from_version", "to_version", "actor").order_by("-at", "-id")[:limit])


def version_by_label(*, prompt: Prompt, label: str) -> PromptVersion | None:
    found = PromptLabel.objects.for_tenant(prompt.tenant_id).filter(prompt=prompt, name=label).select_related("version").first()
    return found.version if found else None


def version_names(*, ids: set[Any]) -> dict[Any, str]:
    """``{version id: "support v3"}`` for the finance page's "by prompt version" chart."""
    rows = PromptVersion.objects.filter(pk__in=[i for i in ids if i]).values_list("pk", "prompt__name", "number")
    return {pk: f"{name} v{number}" for pk, name, number in rows}


# -- diff ---------------------------------------------------------------------------------------------

@dataclass
class Row:
    tag: str  # equal | replace | delete | insert
    left_no: int | None
    left: str
    right_no: int | None
    right: str


@dataclass
class FieldDiff:
    name: str
    changed: bool
    rows: list[Row] = field(default_factory=list)
    unified: list[str] = field(default_factory=list)


def _lines(name: str, value: Any) -> list[str]:
    if name in ("system", "first_message"):
        return (value or "").splitlines()
    if name == "model":
        return [value or ""]
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _side_by_side(a: list[str], b: list[str]) -> list[Row]:
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            li, rj = i1 + k, j1 + k
            rows.append(Row(tag, li + 1 if li < i2 else None, a[li] if li < i2 else "", rj + 1 if rj < j2 else None, b[rj] if rj < j2 else ""))
    return rows


def version_diff(*, a: PromptVersion, b: PromptVersion) -> list[FieldDiff]:
    """Per content field: side-by-side rows and a unified diff (difflib) of ``a`` → ``b``."""
    out = []
    for name in CONTENT_FIELDS:
        left, right = _lines(name, getattr(a, name)), _lines(name, getattr(b, name))
        changed = left != right
        unified = list(difflib.unified_diff(left, right, f"v{a.number} {name}", f"v{b.number} {name}", lineterm="", n=3)) if changed else []
        out.append(FieldDiff(name=name, changed=changed, rows=_side_by_side(left, right), unified=unified))
    return out
