"""Forms for caps and estimates. Amount fields refuse negatives, non-numbers and absurd values;
the tier's limits are checked again in the services (the form is not the only way in)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from budgets.models import CAP_MAX


def money(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=False, min_value=Decimal("0"), max_value=CAP_MAX, max_digits=20, decimal_places=10,
        help_text="USD. Blank: inherit.", widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )


class TenantCapsForm(forms.Form):
    task_cost_cap = money("Per task (run)")
    user_day_cost_cap = money("Per user per day")
    user_month_cost_cap = money("Per user per month")
    tenant_month_cost_cap = money("Whole tenant per month")
    max_concurrent_runs = forms.IntegerField(required=False, min_value=1, max_value=100_000, label="Max concurrent runs")
    allowed_models = forms.CharField(
        required=False, max_length=2000, label="Allowed models",
        help_text="Comma-separated model ids or families. Blank: the tier's list.",
    )

    def clean_allowed_models(self) -> list[str] | None:
        raw = self.cleaned_data.get("allowed_models") or ""
        items = [m.strip() for m in raw.split(",") if m.strip()]
        if any(len(m) > 100 or not all(c.isalnum() or c in "-._" for c in m) for m in items):
            raise forms.ValidationError("Model ids may contain letters, digits, '-', '.', '_' only.")
        return items or None


class UserCapForm(forms.Form):
    user = forms.TypedChoiceField(coerce=int, label="Member")
    user_day_cost_cap = money("Per day")
    user_month_cost_cap = money("Per month")

    def __init__(self, *args: Any, members: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["user"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = members


class EstimateForm(forms.Form):
    agent = forms.TypedChoiceField(coerce=int)
    model = forms.CharField(required=False, max_length=100, help_text="Blank: the agent's model.")
    input_tokens = forms.IntegerField(min_value=0, max_value=2_000_000, label="Input tokens (first call)")
    output_tokens = forms.IntegerField(min_value=0, max_value=200_000, label="Output tokens per call")
    tool_calls = forms.IntegerField(min_value=0, max_value=500, initial=0, label="Tool calls per run")
    tool_result_tokens = forms.IntegerField(min_value=0, max_value=1_000_000, initial=0, label="Tokens per tool result")
    runs_per_day = forms.IntegerField(min_value=0, max_value=10_000_000, label="Runs per day")

    def __init__(self, *args: Any, agents: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["agent"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = agents
