"""A prompt version cannot change once created: the model refuses, and PostgreSQL refuses too."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from agentops.prompts.models import ImmutableVersion, Prompt, PromptVersion, content_sha256


@pytest.fixture
def version(tenant):  # type: ignore[no-untyped-def]
    prompt = Prompt.objects.create(tenant=tenant, name="support")
    return PromptVersion.objects.create(tenant=tenant, prompt=prompt, number=1, system="Be kind.", model="claude-haiku-4-5",
                                        params={"max_tokens": 256}, tools=["lookup_order"])


def test_it_hashes_the_canonical_content_only(version):  # type: ignore[no-untyped-def]
    assert version.sha256 == content_sha256({"system": "Be kind.", "model": "claude-haiku-4-5", "params": {"max_tokens": 256},
                                             "tools": ["lookup_order"]})
    other = PromptVersion(tenant=version.tenant, prompt=version.prompt, number=2, system="Be kind.", model="claude-haiku-4-5",
                          params={"max_tokens": 256}, tools=["lookup_order"], changelog="same content, new note")
    other.save()
    assert other.sha256 == version.sha256


def test_it_refuses_to_save_a_changed_version(version):  # type: ignore[no-untyped-def]
    version.system = "Be rude."
    with pytest.raises(ImmutableVersion):
        version.save()
    assert PromptVersion.objects.get(pk=version.pk).system == "Be kind."


def test_the_database_refuses_an_update(version):  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        PromptVersion.objects.filter(pk=version.pk).update(system="Be rude.")
    assert PromptVersion.objects.get(pk=version.pk).system == "Be kind."


def test_the_admin_shows_versions_read_only(version, client_for, db):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from tests.factories import PASSWORD

    staff = get_user_model().objects.create_user("staff", password=PASSWORD, is_staff=True, is_superuser=True)
    client = client_for(staff)
    url = f"/admin/prompts/promptversion/{version.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="system"' not in page.content  # shown, not editable
    assert client.post(url, {"system": "Be rude."}).status_code == 403
    assert client.get("/admin/prompts/promptversion/add/").status_code == 403
    assert PromptVersion.objects.get(pk=version.pk).system == "Be kind."
