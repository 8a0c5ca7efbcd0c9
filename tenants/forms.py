"""Console forms. Each declares exactly the fields a user may set: nothing else in a POST body is read."""

from django import forms
from django.contrib.auth.forms import UserCreationForm

from tenants.models import ApiScope, Role


class InvitationForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class InvitationSignupForm(UserCreationForm):
    """A new account for the invited address: a username and a password, nothing else.

    Only validates (username rules and availability, password validators); the account is created
    by ``tenants.services.invitation_accept_new_user`` together with the membership.
    """

    class Meta(UserCreationForm.Meta):
        fields = ("username",)


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
