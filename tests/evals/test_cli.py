"""``manage.py evals run`` exits non-zero below --fail-under, so CI can gate a prompt change."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from agentops.evals import services
from agentops.evals.models import EvalRun, Trigger
from tests.evals.helpers import greeting_cases

pytestmark = pytest.mark.django_db


def _cli(suite, *extra):  # type: ignore[no-untyped-def]
    return call_command("evals", "run", "--tenant", suite.tenant.slug, "--suite", suite.name, "--in-process", *extra)


def test_it_passes_at_or_above_the_threshold_and_fails_below(suite, admin_user, capsys):
    for data in greeting_cases(9, 1):
        services.case_save(suite=suite, actor=admin_user, data=data)
    _cli(suite, "--version", "2", "--fail-under", "0.9")
    out = capsys.readouterr().out
    assert "pass rate 0.9000 (9/10)" in out and "FAIL fail-0: the output does not contain 'refund'" in out
    with pytest.raises(SystemExit) as exc:
        _cli(suite, "--label", "staging", "--fail-under", "0.95")
    assert exc.value.code == 1
    assert list(EvalRun.objects.values_list("trigger", "label", "prompt_version__number")) == [
        (Trigger.CLI, "staging", 2), (Trigger.CLI, "", 2)]


def test_bad_arguments_are_clear(suite, admin_user):
    services.case_save(suite=suite, actor=admin_user, data=greeting_cases(1, 0)[0])
    for extra, word in [(("--fail-under", "1.5"), "from 0 to 1"), (("--version", "7"), "no version 7")]:
        with pytest.raises(CommandError, match=word):
            _cli(suite, *extra)
