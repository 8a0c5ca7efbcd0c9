"""Console forms. Each declares exactly the fields a user may set: nothing else in a POST body is read."""

from django import forms

from tenants.models import ApiScope, Role


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "existing username"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleChangeForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. billing-service"}))
    scopes = forms.MultipleChoiceField(choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple)
    acts_as_role = forms.ChoiceField(
        label="Acts as role",
        choices=[c for c in Role.choices if c[0] != Role.ADMIN],
        initial=Role.OPERATOR,
        help_text="Tool grants are checked against this role for runs the key submits.",
    )


class WebhookEndpointForm(forms.Form):
    # A plain field: the SSRF guard in the service decides what is acceptable and says why.
    url = forms.CharField(
        label="URL", max_length=2048,
        widget=forms.TextInput(attrs={"placeholder": "https://hooks.example.com/agentops", "autocomplete": "off", "spellcheck": "false"}),
    )
