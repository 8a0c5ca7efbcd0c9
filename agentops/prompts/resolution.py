"""The harness's prompt resolver (registered in PromptsConfig.ready()): a run reads its agent's label
once, pins the version on the run row, and from then on — in this worker or any later one after a
crash — loads the pinned version by id and never looks at the label again."""

from __future__ import annotations

from typing import Any

from agentops.harness.prompting import ResolvedPrompt
from agentops.prompts.models import PromptLabel, PromptVersion
from runs.models import Run


def as_resolved(version: PromptVersion) -> ResolvedPrompt:
    return ResolvedPrompt(
        system=version.system, version_id=version.pk, version_number=version.number, sha256=version.sha256,
        prompt_id=version.prompt_id, model=version.model or None, params=dict(version.params or {}),
        tools=tuple(version.tools) if version.tools is not None else None,
        validators=tuple(v for v in (version.validators or []) if isinstance(v, dict)),
        first_message=version.first_message or "", variables=tuple(version.variables or ()),
    )


# Versions never change, so a pinned version read once is good for the life of the process: a run's
# later model calls cost no query for their prompt. Bounded; keyed by tenant too, so a run can only
# ever read a version of its own tenant.
_PINNED: dict[tuple[int, int], ResolvedPrompt] = {}
_PINNED_MAX = 1024


def _pinned(tenant_id: int, version_id: int) -> ResolvedPrompt | None:
    key = (tenant_id, version_id)
    found = _PINNED.get(key)
    if found is None:
        version = PromptVersion.objects.for_tenant(tenant_id).filter(pk=version_id).first()
        if version is None:
            return None
        found = _remember(version)
    return found


def _remember(version: PromptVersion) -> ResolvedPrompt:
    if len(_PINNED) >= _PINNED_MAX:
        _PINNED.clear()
    resolved = _PINNED[(version.tenant_id, version.pk)] = as_resolved(version)
    return resolved


class VersionResolver:
    def resolve(self, *, agent: Any, run: Any | None) -> ResolvedPrompt | None:
        if run is not None and run.prompt_version_id:
            return _pinned(run.tenant_id, run.prompt_version_id)
        if not agent.prompt_id:
            return None
        label = (PromptLabel.objects.for_tenant(agent.tenant_id).select_related("version")
                 .filter(prompt_id=agent.prompt_id, name=agent.prompt_label).first())
        if label is None or label.version is None:
            return None
        version = label.version
        if run is None:
            return as_resolved(version)
        # Pin once. The condition keeps a version pinned earlier (by another attempt) in place.
        pinned = Run.unscoped.filter(pk=run.pk, prompt_version_id__isnull=True).update(
            prompt_version_id=version.pk, prompt_version_number=version.number, prompt_sha256=version.sha256)
        if not pinned:
            pinned_id = Run.unscoped.filter(pk=run.pk).values_list("prompt_version_id", flat=True).first()
            if pinned_id and pinned_id != version.pk:
                version = PromptVersion.objects.for_tenant(run.tenant_id).get(pk=pinned_id)
        run.prompt_version_id, run.prompt_version_number, run.prompt_sha256 = version.pk, version.number, version.sha256
        return _remember(version)
