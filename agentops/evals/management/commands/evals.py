"""``manage.py evals run --tenant T --suite S (--label L | --version N) --fail-under 0.9``.

Starts an eval run (trigger ``cli``) and waits for it: its cases run on the workers like any run
(``--in-process`` drives them here instead, through the same harness, for a CI job without
workers). Prints progress and the failing cases; exits 1 when the pass rate is below
``--fail-under`` (or a critical case fails), 2 when it could not run, so CI can gate a prompt change.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agentops.evals import selectors, services
from agentops.evals.models import EvalResult, EvalRun, EvalRunStatus, EvalSuite, ResultStatus, Trigger
from agentops.harness.loop import drive_run
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Run an eval suite against a prompt version; exit non-zero below --fail-under."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="start an eval run and wait for its verdict")
        run.add_argument("--tenant", required=True, help="tenant slug")
        run.add_argument("--suite", required=True, help="suite name or id")
        which = run.add_mutually_exclusive_group()
        which.add_argument("--label", help="test the version this label points at (default production)")
        which.add_argument("--version", type=int, help="test this version number")
        run.add_argument("--fail-under", default="0", help="minimum pass rate, 0 to 1 (e.g. 0.9)")
        run.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the workers")
        run.add_argument("--in-process", action="store_true", help="drive the cases here instead of on the workers")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            threshold = Decimal(str(opts["fail_under"]))
        except InvalidOperation:
            raise CommandError("--fail-under must be a number from 0 to 1")
        if not 0 <= threshold <= 1:
            raise CommandError("--fail-under must be a number from 0 to 1")
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {opts['tenant']!r}")
        suite = selectors.suites(tenant=tenant).filter(name=opts["suite"]).first()
        if suite is None and str(opts["suite"]).isdigit():
            suite = selectors.suites(tenant=tenant).filter(pk=int(opts["suite"])).first()
        if suite is None:
            raise CommandError(f"no eval suite {opts['suite']!r} in {tenant.slug}")
        try:
            version, label = services.resolve_version(suite=suite, label=opts["label"], version=opts["version"])
            eval_run = services.eval_run_start(suite=suite, version=version, trigger=Trigger.CLI, label=label)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        self.stdout.write(f"eval run {eval_run.pk}: {suite.name} on {suite.prompt.name} v{version.number}, {eval_run.total} cases")
        eval_run = self._wait(eval_run, suite, opts["timeout"], opts["in_process"])
        if eval_run.status != EvalRunStatus.FINISHED:
            self.stderr.write(f"eval run {eval_run.pk} did not finish ({eval_run.done}/{eval_run.total} done)")
            raise SystemExit(2)
        evidence = selectors.evidence_of(eval_run)
        for result in selectors.results(eval_run=eval_run).filter(passed=False):
            reasons = "; ".join(v["reason"] for v in result.verdicts if not v.get("passed"))
            self.stdout.write(f"  FAIL{' (critical)' if result.critical else ''} {result.case_name}: {reasons}")
        self.stdout.write(f"pass rate {eval_run.pass_rate} ({eval_run.passed}/{eval_run.total}), cost ${eval_run.cost.normalize():f}")
        if eval_run.pass_rate is None or eval_run.pass_rate < threshold or evidence.failing_critical:
            self.stderr.write(f"below --fail-under {threshold}" if not evidence.failing_critical else "a critical case failed")
            raise SystemExit(1)

    def _wait(self, eval_run: EvalRun, suite: EvalSuite, timeout: float, in_process: bool) -> EvalRun:
        deadline = time.monotonic() + timeout
        shown = -1
        while time.monotonic() < deadline:
            eval_run.refresh_from_db()
            if eval_run.done != shown:
                shown = eval_run.done
                self.stdout.write(f"  {eval_run.done}/{eval_run.total} done, {eval_run.passed} passed")
            if eval_run.status not in services.ACTIVE:
                return eval_run
            if in_process:
                for run_id in EvalResult.objects.filter(eval_run=eval_run, status=ResultStatus.RUNNING).values_list("run_id", flat=True):
                    drive_run(run_id, worker_id="evals-cli")
                services.finish_if_done(eval_run_id=eval_run.pk)
            else:
                time.sleep(0.5)
        return eval_run
