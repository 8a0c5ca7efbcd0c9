"""Console forms. A version's fields arrive as text (lists comma-separated, objects as JSON) and are
turned into the content dict that ``services.version_check`` judges; the form itself checks only shape."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

from django import forms

from agentops.jsoninput import JsonInputError, loads
from agentops.prompts.models import PromptVersion


def _no_nul(value: str) -> None:
    if "\x00" in (value or ""):
        raise forms.ValidationError("Text may not contain NUL bytes.")


def _json(value: str, empty: Any) -> Any:
    if not (value or "").strip():
        return empty
    try:
        return loads(value)
    except JsonInputError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc.message}") from exc


def _names(value: str) -> list[str]:
    return [v.strip() for v in (value or "").replace("\n", ",").split(",") if v.strip()]


class PromptForm(forms.Form):
    name = forms.CharField(max_length=100, validators=[_no_nul], help_text="Lower-case letters, digits, '.', '_' and '-'.")
    path = forms.CharField(max_length=200, required=False, validators=[_no_nul], help_text="A folder to group it under, e.g. support/billing.")
    description = forms.CharField(max_length=2000, required=False, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 2}))


class VersionForm(forms.Form):
    system = forms.CharField(strip=False, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}))
    first_message = forms.CharField(required=False, strip=False, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
                                    help_text="Optional first user message; {{name}} inserts a variable.")
    variables = forms.CharField(required=False, max_length=2000, validators=[_no_nul], help_text="Declared variables, comma-separated.")
    model = forms.CharField(max_length=100, validators=[_no_nul])
    params = forms.CharField(required=False, max_length=5000, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
                             help_text='JSON, e.g. {"max_tokens": 1024, "temperature": 0.2}.')
    tools = forms.CharField(required=False, max_length=5000, validators=[_no_nul], help_text="Tool names, comma-separated.")
    validators_ = forms.CharField(label="Validators", required=False, max_length=20000, validators=[_no_nul],
                                  widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}), help_text="JSON list of validator objects.")
    changelog = forms.CharField(required=False, max_length=5000, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 2}))

    def clean_params(self) -> Any:
        return _json(self.cleaned_data["params"], {})

    def clean_validators_(self) -> Any:
        return _json(self.cleaned_data["validators_"], [])

    def content(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {"system": d["system"], "first_message": d.get("first_message") or "", "variables": _names(d.get("variables", "")),
                "model": d["model"], "params": d.get("params") or {}, "tools": _names(d.get("tools", "")), "validators": d.get("validators_") or []}


def version_initial(version: PromptVersion) -> dict[str, Any]:
    return {"system": version.system, "first_message": version.first_message, "variables": ", ".join(version.variables or []),
            "model": version.model, "params": json.dumps(version.params or {}), "tools": ", ".join(version.tools or []),
            "validators_": json.dumps(version.validators or []) if version.validators else ""}


class LabelMoveForm(forms.Form):
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    reason = forms.CharField(required=False, max_length=2000, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 2}))
    override = forms.BooleanField(required=False)


class RollbackForm(forms.Form):
    reason = forms.CharField(max_length=2000, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 2}))


class PolicyForm(forms.Form):
    gate_margin_points = forms.DecimalField(min_value=Decimal(0), max_value=Decimal(100), max_digits=5, decimal_places=2)


class TryForm(forms.Form):
    agent = forms.TypedChoiceField(coerce=int, choices=())
    input = forms.CharField(max_length=100_000, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 3}))
    scenario = forms.ChoiceField(required=False, choices=())

    def __init__(self, *args: Any, agents: list[Any], scenarios: list[tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["agent"]).choices = [(a.pk, a.name) for a in agents]
        cast(forms.ChoiceField, self.fields["scenario"]).choices = scenarios or [("", "—")]
        if not scenarios:
            del self.fields["scenario"]
