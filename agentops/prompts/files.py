"""Prompts as files: one YAML document per prompt, so a team can keep prompts in git and have CI push.

``export`` writes each prompt's latest version (or a label's); ``push`` creates a new version only when
the file's content hash differs from the prompt's latest version, so an export pushed back is a no-op
and the hash is the same on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError

from agentops.prompts import selectors, services
from agentops.prompts.models import CONTENT_FIELDS, Prompt, PromptVersion, content_sha256
from tenants.models import Tenant


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, so a prompt's diff in git reads like the prompt."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def version_document(prompt: Prompt, version: PromptVersion) -> dict[str, Any]:
    return {"name": prompt.name, "path": prompt.path, "description": prompt.description, "version": version.number,
            "sha256": version.sha256, **version.content(), "changelog": version.changelog}


def dump(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def export(*, tenant: Tenant, directory: Path, label: str | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for prompt in Prompt.objects.for_tenant(tenant).order_by("name"):
        version = selectors.version_by_label(prompt=prompt, label=label) if label else prompt.versions.order_by("-number").first()
        if version is None:
            continue
        path = directory / f"{prompt.name}.yaml"
        path.write_text(dump(version_document(prompt, version)), encoding="utf-8")
        written.append(path)
    return written


@dataclass
class Pushed:
    path: Path
    prompt: str
    outcome: str  # created | unchanged | invalid
    version: int | None = None
    problems: dict[str, str] | None = None


def push(*, tenant: Tenant, directory: Path, actor: Any = None) -> list[Pushed]:
    results = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            results.append(Pushed(path, path.stem, "invalid", problems={"__all__": f"Not readable YAML: {exc}"[:300]}))
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            results.append(Pushed(path, path.stem, "invalid", problems={"name": "The file needs a top-level mapping with a name."}))
            continue
        content = {k: doc[k] for k in CONTENT_FIELDS if k in doc}
        prompt = Prompt.objects.for_tenant(tenant).filter(name=doc["name"]).first()
        latest = prompt.versions.order_by("-number").first() if prompt else None
        if latest is not None and latest.sha256 == content_sha256(content):
            results.append(Pushed(path, doc["name"], "unchanged", latest.number))
            continue
        checked = services.version_check(tenant=tenant, data=content)
        if checked.problems:
            results.append(Pushed(path, doc["name"], "invalid", problems=checked.problems))
            continue
        try:
            if prompt is None:
                prompt = services.prompt_create(tenant=tenant, actor=actor, name=doc["name"], description=str(doc.get("description") or ""),
                                                path=str(doc.get("path") or ""))
            version = services.version_create(tenant=tenant, actor=actor, prompt=prompt, data=content, changelog=str(doc.get("changelog") or ""))
        except services.VersionInvalid as exc:
            results.append(Pushed(path, doc["name"], "invalid", problems=exc.problems))
            continue
        except ValidationError as exc:
            results.append(Pushed(path, doc["name"], "invalid", problems={"name": " ".join(exc.messages)}))
            continue
        results.append(Pushed(path, prompt.name, "created", version.number))
    return results
