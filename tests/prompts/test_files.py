"""Prompts as YAML files: export then push is a no-op with the same hash; an edited file makes one version."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from agentops.prompts.models import PromptVersion
from tenants.models import Role
from tests.prompts.conftest import new_version

AWKWARD = "Line one.\n  indented line\ntrailing spaces   \n\nunicode: café — 日本\n# not a comment\nkey: value\n"


def test_export_push_round_trip_keeps_the_hash(tenant, members, prompt, tmp_path):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, system=AWKWARD, first_message="Hi {{name}}", variables=["name"],
                     params={"max_tokens": 300, "temperature": 0.5, "stop_sequences": ["\n\nHuman:"]})
    call_command("prompts", "export", str(tmp_path), tenant="acme")
    text = (tmp_path / "support.yaml").read_text()
    assert v1.sha256 in text  # (trailing spaces make PyYAML quote the text instead of a literal block; both load back exactly)
    call_command("prompts", "push", str(tmp_path), tenant="acme")
    assert list(PromptVersion.objects.values_list("number", "sha256")) == [(1, v1.sha256)]
    (tmp_path / "support.yaml").write_text(text.replace("Line one.", "Line uno."))
    call_command("prompts", "push", str(tmp_path), tenant="acme")
    v2 = PromptVersion.objects.get(number=2)
    assert v2.system == AWKWARD.replace("Line one.", "Line uno.") and v2.first_message == "Hi {{name}}"


def test_push_creates_new_prompts_and_refuses_bad_files(tenant, members, tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "a.yaml").write_text("name: billing\nsystem: Be exact.\nmodel: claude-haiku-4-5\n")
    (tmp_path / "b.yaml").write_text("name: broken\nsystem: Hi {{x}}\nmodel: claude-haiku-4-5\n")
    (tmp_path / "c.yaml").write_text("name: [unclosed\n")
    with pytest.raises(CommandError, match="2 of 3 files"):
        call_command("prompts", "push", str(tmp_path), tenant="acme")
    assert list(PromptVersion.objects.values_list("prompt__name", "number")) == [("billing", 1)]
