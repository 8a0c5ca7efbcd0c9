"""Console forms. Each declares exactly the fields a user may set: nothing else in a POST body is read."""

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordMixin

from tenants.models import ApiScope, Role


class InvitationForm(forms.Form):
    # 150: the address becomes the username of an account created by accepting (User.username's length).
    email = forms.EmailField(max_length=150, widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class InvitationSignupForm(SetPasswordMixin, forms.Form):
    """A new account for the invited address: only a password. The username is the address itself.

    A username of one's choosing would have to be refused when taken, and anyone holding an
    invitation (a tenant admin can invite a mailbox of their own) could then probe which usernames
    exist. The account is created by ``tenants.services.invitation_accept_new_user``.
    """

    password1, password2 = SetPasswordMixin.create_password_fields(label2="Password again")

    def __init__(self, email: str, *args: Any, **kwargs: Any):
        # Unsaved: lets the password validators compare the password with the username and address.
        self.user = get_user_model()(username=email, email=email)
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        self.validate_passwords()
        self.validate_password_for_user(self.user)
        return super().clean() or self.cleaned_data


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
