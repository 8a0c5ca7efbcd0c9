"""Console forms for evals. Tenant-dependent choices (prompts, agents, versions, suites) are filled
in ``__init__``, so another tenant's id is simply an invalid choice."""

from __future__ import annotations

from typing import Any

from django import forms

from agentops.evals.models import EvalSuite, Schedule
from agentops.prompts.models import Prompt, PromptVersion
from runs.models import Agent
from tenants.models import Tenant


class SuiteForm(forms.ModelForm):
    class Meta:
        model = EvalSuite
        fields = ["name", "description", "prompt", "agent", "schedule", "parallelism"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"schedule": "Scheduled runs test the prompt's production version: a 10-point drop flags a regression, 20 alerts."}

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt"].queryset = Prompt.objects.for_tenant(tenant)  # type: ignore[attr-defined]
        self.fields["agent"].queryset = Agent.objects.for_tenant(tenant)  # type: ignore[attr-defined]
        self.fields["schedule"].choices = Schedule.choices  # type: ignore[attr-defined]
        self.fields["schedule"].required = False


class CaseForm(forms.Form):
    definition = forms.CharField(widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}), max_length=500_000,
                                 help_text='JSON: {"name", "input", "checks": [...], "critical", "tags": [...], "fixtures": [...]}')


class ImportForm(forms.Form):
    jsonl = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}), required=False, max_length=5_000_000,
                            label="Cases as JSON lines")
    file = forms.FileField(required=False, label="or a .jsonl file")
    replace = forms.BooleanField(required=False, label="Delete cases not in the file")


class StartForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int, label="Prompt version")

    def __init__(self, *args: Any, suite: EvalSuite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        versions = PromptVersion.objects.for_tenant(suite.tenant_id).filter(prompt_id=suite.prompt_id).order_by("-number")
        labels: dict[int, list[str]] = {}
        for label in suite.prompt.labels.all():
            if label.version_id:
                labels.setdefault(label.version_id, []).append(label.name)
        self.fields["version"].choices = [  # type: ignore[attr-defined]
            (v.number, f"v{v.number}" + (f" ({', '.join(labels[v.pk])})" if v.pk in labels else "")) for v in versions]


class AddRunForm(forms.Form):
    suite = forms.TypedChoiceField(coerce=int)
    name = forms.CharField(max_length=200, label="Case name")

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["suite"].choices = [(s.pk, s.name) for s in EvalSuite.objects.for_tenant(tenant)]  # type: ignore[attr-defined]
