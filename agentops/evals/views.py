"""Evals pages: suites and their cases (create, edit, import/export JSONL), eval runs with live
progress, one run's case verdicts, comparing two runs, pass rate over time, and "add this run to a
suite". Prompt editors and admins write; every role reads. Objects are always fetched through the
URL's tenant, so another tenant's id is a 404."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import BadRequest, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agentops.evals import charts, selectors, services
from agentops.evals.definitions import parse_jsonl
from agentops.evals.forms import AddRunForm, CaseForm, ImportForm, StartForm, SuiteForm
from agentops.evals.models import EvalCase, EvalRun, EvalSuite, Trigger
from agentops.jsoninput import JsonInputError, loads
from runs import selectors as run_selectors
from runs.models import Run
from tenants.access import TenantContext, tenant_view
from tenants.models import ALL_ROLES, Role

WRITERS = (Role.ADMIN, Role.PROMPT_EDITOR)


def _suite_or_404(ctx: TenantContext, suite_id: str) -> EvalSuite:
    try:
        return selectors.suite_get(tenant=ctx.tenant, suite_id=suite_id)
    except EvalSuite.DoesNotExist:
        raise Http404("No such eval suite.")


def _eval_run_or_404(ctx: TenantContext, eval_run_id: object) -> EvalRun:
    try:
        return selectors.eval_run_get(tenant=ctx.tenant, eval_run_id=eval_run_id)
    except EvalRun.DoesNotExist:
        raise Http404("No such eval run.")


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@tenant_view(read=ALL_ROLES, write=WRITERS)
def overview(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = SuiteForm(request.POST or None, tenant=ctx.tenant)
    if request.method == "POST":
        if form.is_valid():
            try:
                suite = services.suite_save(tenant=ctx.tenant, actor=ctx.user, data=form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                return redirect("evals:suite", slug=ctx.tenant.slug, suite_id=suite.pk)
    runs = list(selectors.eval_runs(tenant=ctx.tenant)[:20])
    context = {
        "ctx": ctx, "suites": selectors.suites(tenant=ctx.tenant), "runs": runs, "form": form, "can_write": ctx.has(*WRITERS),
        "history_figure": charts.pass_rate_figure(selectors.pass_rate_history(tenant=ctx.tenant)),
        "alerts": selectors.alerts(tenant=ctx.tenant)[:5], "eval_spend": selectors.eval_spend(tenant=ctx.tenant),
    }
    return render(request, "evals/overview.html", context, status=400 if request.method == "POST" else 200)


@tenant_view(read=ALL_ROLES, write=WRITERS)
def suite(request: HttpRequest, ctx: TenantContext, suite_id: str) -> HttpResponse:
    s = _suite_or_404(ctx, suite_id)
    form = SuiteForm(request.POST or None, instance=s, tenant=ctx.tenant)
    case_form, start_form, import_form = CaseForm(), StartForm(suite=s), ImportForm()
    problems: list[str] = []
    status = 200
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "settings":
        if form.is_valid():
            services.suite_save(tenant=ctx.tenant, actor=ctx.user, data=form.cleaned_data, suite=s)
            return redirect("evals:suite", slug=ctx.tenant.slug, suite_id=s.pk)
        status = 400
    elif action == "case":
        case_form = CaseForm(request.POST)
        problems = _save_case(ctx, s, case_form)
        if not problems:
            return redirect("evals:suite", slug=ctx.tenant.slug, suite_id=s.pk)
        status = 400
    elif action == "import":
        import_form = ImportForm(request.POST, request.FILES)
        problems = _import(ctx, s, import_form, request)
        if not problems:
            return redirect("evals:suite", slug=ctx.tenant.slug, suite_id=s.pk)
        status = 400
    elif action == "start":
        start_form = StartForm(request.POST, suite=s)
        if start_form.is_valid():
            try:
                version, _ = services.resolve_version(suite=s, version=start_form.cleaned_data["version"])
                eval_run = services.eval_run_start(suite=s, version=version, actor=ctx.user, trigger=Trigger.MANUAL)
            except ValidationError as exc:
                problems = exc.messages
            else:
                return redirect("evals:run", slug=ctx.tenant.slug, eval_run_id=eval_run.pk)
        status = 400
    elif action is not None:
        raise BadRequest("Unknown action.")
    if request.method == "GET":
        form = SuiteForm(instance=s, tenant=ctx.tenant)
    cases = EvalCase.objects.for_tenant(ctx.tenant).filter(suite=s).order_by("name")
    context = {"ctx": ctx, "suite": s, "cases": cases, "form": form, "case_form": case_form, "start_form": start_form,
               "import_form": import_form, "problems": problems, "can_write": ctx.has(*WRITERS),
               "runs": selectors.eval_runs(tenant=ctx.tenant).filter(suite=s)[:10],
               "history_figure": charts.pass_rate_figure(selectors.pass_rate_history(tenant=ctx.tenant, suite=s))}
    return render(request, "evals/suite.html", context, status=status)


def _save_case(ctx: TenantContext, s: EvalSuite, form: CaseForm, case: EvalCase | None = None) -> list[str]:
    if not form.is_valid():
        return [str(e) for errors in form.errors.values() for e in errors]
    try:
        data = loads(form.cleaned_data["definition"])
    except JsonInputError as exc:
        return [f"invalid JSON: {exc.message}"]
    try:
        services.case_save(suite=s, actor=ctx.user, data=data, case=case)
    except services.EvalProblems as exc:
        return exc.problems
    return []


def _import(ctx: TenantContext, s: EvalSuite, form: ImportForm, request: HttpRequest) -> list[str]:
    if not form.is_valid():
        return [str(e) for errors in form.errors.values() for e in errors]
    text = form.cleaned_data["jsonl"] or ""
    upload = form.cleaned_data.get("file")
    if upload is not None:
        if upload.size > 5_000_000:
            return ["the file is larger than 5 MB"]
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            return ["the file is not UTF-8 text"]
    cases, problems = parse_jsonl(text, known_tools=services.known_tools(s.tenant_id))
    if problems:
        return problems
    counts = services.cases_import(suite=s, actor=ctx.user, cases=cases, replace=form.cleaned_data["replace"])
    messages.success(request, f"Imported: {counts['created']} new, {counts['updated']} updated, {counts['deleted']} deleted.")
    return []


@tenant_view(read=ALL_ROLES)
def suite_export(request: HttpRequest, ctx: TenantContext, suite_id: str) -> HttpResponse:
    s = _suite_or_404(ctx, suite_id)
    body = "".join(selectors.case_jsonl(c) + "\n" for c in EvalCase.objects.for_tenant(ctx.tenant).filter(suite=s).order_by("name"))
    resp = HttpResponse(body, content_type="application/x-ndjson; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="{s.name}.jsonl"'
    return resp


@tenant_view(read=ALL_ROLES, write=WRITERS)
def case(request: HttpRequest, ctx: TenantContext, case_id: str) -> HttpResponse:
    try:
        c = selectors.case_get(tenant=ctx.tenant, case_id=case_id)
    except EvalCase.DoesNotExist:
        raise Http404("No such case.")
    s = c.suite
    problems: list[str] = []
    form = CaseForm(initial={"definition": selectors.case_pretty(c)})
    if request.method == "POST":
        if request.POST.get("action") == "delete":
            services.case_delete(case=c, actor=ctx.user)
            return redirect("evals:suite", slug=ctx.tenant.slug, suite_id=s.pk)
        form = CaseForm(request.POST)
        problems = _save_case(ctx, s, form, c)
        if not problems:
            return redirect("evals:suite", slug=ctx.tenant.slug, suite_id=s.pk)
    results = c.results.select_related("eval_run", "eval_run__prompt_version").order_by("-id")[:20]
    return render(request, "evals/case.html", {"ctx": ctx, "suite": s, "case": c, "form": form, "problems": problems,
                                               "results": results, "can_write": ctx.has(*WRITERS)}, status=400 if problems else 200)


@tenant_view(read=ALL_ROLES)
def runs_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    runs = list(selectors.eval_runs(tenant=ctx.tenant)[:100])
    context = {"ctx": ctx, "runs": runs, "live": any(r.status in services.ACTIVE for r in runs)}
    if _is_htmx(request):
        return render(request, "evals/partials/runs_table.html", context)
    return render(request, "evals/runs.html", context)


@tenant_view(read=ALL_ROLES, write=WRITERS)
def run(request: HttpRequest, ctx: TenantContext, eval_run_id: str) -> HttpResponse:
    eval_run = _eval_run_or_404(ctx, eval_run_id)
    if request.method == "POST":
        if request.POST.get("action") != "cancel":
            raise BadRequest("Unknown action.")
        services.eval_run_cancel(eval_run=eval_run, actor=ctx.user)
        return redirect("evals:run", slug=ctx.tenant.slug, eval_run_id=eval_run.pk)
    context = {"ctx": ctx, "r": eval_run, "results": selectors.results(eval_run=eval_run).select_related("run"),
               "live": eval_run.status in services.ACTIVE, "can_write": ctx.has(*WRITERS),
               "others": selectors.eval_runs(tenant=ctx.tenant).filter(suite=eval_run.suite).exclude(pk=eval_run.pk)[:20]}
    if _is_htmx(request):
        return render(request, "evals/partials/run_body.html", context)
    return render(request, "evals/run.html", context)


@tenant_view(read=ALL_ROLES)
def compare(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    a_id, b_id = request.GET.get("a"), request.GET.get("b")
    context: dict[str, Any] = {"ctx": ctx, "choices": selectors.eval_runs(tenant=ctx.tenant)[:100]}
    if a_id or b_id:
        a, b = _eval_run_or_404(ctx, a_id), _eval_run_or_404(ctx, b_id)
        context.update(a=a, b=b, **selectors.compare(a=a, b=b))
    return render(request, "evals/compare.html", context)


@tenant_view(read=ALL_ROLES, write=WRITERS)
def add_run(request: HttpRequest, ctx: TenantContext, run_id: str) -> HttpResponse:
    """"Add this run to a suite": its input and its tool results become a case with fixtures."""
    try:
        source: Run = run_selectors.run_get(tenant=ctx.tenant, run_id=run_id)
    except Run.DoesNotExist:
        raise Http404("No such run.")
    form = AddRunForm(request.POST or None, tenant=ctx.tenant, initial={"name": f"run-{source.pk}"})
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        s = _suite_or_404(ctx, str(form.cleaned_data["suite"]))
        try:
            c = services.case_from_run(suite=s, actor=ctx.user, run=source, name=form.cleaned_data["name"])
        except services.EvalProblems as exc:
            problems = exc.problems
        else:
            messages.success(request, f"Run {source.pk} is now the case {c.name} of {s.name}.")
            return redirect("evals:case", slug=ctx.tenant.slug, case_id=c.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "evals/add_run.html", {"ctx": ctx, "source": source, "form": form, "problems": problems,
                                                  "can_write": ctx.has(*WRITERS)}, status=status)


@tenant_view(read=ALL_ROLES, write=WRITERS)
@require_POST
def alert_ack(request: HttpRequest, ctx: TenantContext, alert_id: str) -> HttpResponse:
    services.alert_acknowledge(tenant=ctx.tenant, alert_id=alert_id, actor=ctx.user)
    return redirect("evals:overview", slug=ctx.tenant.slug)
