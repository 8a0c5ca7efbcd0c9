"""Console forms for runs, agents and tool grants.

Each declares exactly the fields a user may set; choices that depend on the tenant (agents) or the
tool registry are filled in ``__init__`` so a posted id of another tenant's agent is simply invalid.
JSON fields are parsed and checked here so a malformed body re-renders the form with a 400.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator

from agentops import jsoninput
from agentops.harness.evaluators import all_flags
from agentops.harness.evaluators import policy as flag_policy
from agentops.tools.registry import all_tools, allow_problems
from budgets.models import ModelPrice, cap_problems
from runs.models import Agent, RunStatus, agent_prompt_model
from runs.services import MAX_INPUT_CHARS
from tenants.models import MONEY, Role, Tenant

MODEL_ID = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,99}$", "Enter a model id such as claude-sonnet-4-5.")
JSON_MAX_CHARS = 10_000


def _choice(form: forms.Form, name: str) -> forms.ChoiceField:
    return cast(forms.ChoiceField, form.fields[name])


def _model_field(name: str) -> Any:
    return Agent._meta.get_field(name)


def _no_nul(value: str) -> None:
    # The middleware refuses raw NUL bytes; a JSON "\u0000" escape would still reach Postgres.
    if "\x00" in value:
        raise ValidationError("NUL characters are not allowed.")


def _parse_json_object(raw: str, what: str) -> dict[str, Any]:
    raw = (raw or "").strip()
    if not raw:
        return {}
    if len(raw) > JSON_MAX_CHARS:
        raise ValidationError(f"{what} is longer than {JSON_MAX_CHARS} characters.")
    try:
        # Depth, NaN, lone surrogates and NUL are refused here, not at the database.
        value = jsoninput.loads(raw, parse_float=Decimal)
    except jsoninput.JsonInputError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc.message[:120]}")
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, e.g. {{\"key\": \"value\"}}.")
    return value


def _jsonable(value: Any) -> Any:
    """Decimals from ``parse_float`` back to JSON-safe values (money stays an exact string)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def known_models(tenant: Tenant) -> list[str]:
    """Models offered in the agent editor: the tier's allowed list, else every priced model."""
    allowed = [m for m in (tenant.tier.allowed_models or []) if isinstance(m, str)]
    if allowed:
        return sorted(set(allowed))
    return sorted(set(ModelPrice.objects.values_list("model", flat=True)))


def scenario_choices() -> list[tuple[str, str]]:
    """Scripted scenarios to pick from, only when runs go to the scripted Messages API."""
    # Here, not at the top: the model gateway imports the anthropic SDK (0.3-0.9 s), which web
    # processes load only when a form offers scenarios or checks a routing.
    from agentops.llm import gateway, scenario

    if not gateway.scripted_mode():
        return []
    return [("", "Default scenario")] + [(name, name) for name in scenario.scenario_names()]


# -- runs ------------------------------------------------------------------------------------


RUN_FLAGS = all_flags()


# The shortest text the run list searches for (a trigram).
MIN_SEARCH_CHARS = 3


class RunFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RunStatus.choices])
    agent = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    outcome = forms.CharField(required=False, max_length=64)
    flag = forms.ChoiceField(required=False, choices=[("", "Any flag"), *((f, f) for f in RUN_FLAGS), ("gated", "gated")])
    # Playground runs (a prompt's try-it panel) are left out unless asked for: operators watch production.
    kind = forms.ChoiceField(required=False, label="Kind", choices=[("", "Production runs"), ("playground", "Playground runs"), ("all", "All runs")])
    q = forms.CharField(required=False, max_length=200, label="Search",
                        widget=forms.TextInput(attrs={"placeholder": "Run id or input text", "type": "search"}))
    model = forms.CharField(required=False, max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. claude-sonnet-4-5"}))
    cost_min = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=10, label="Cost from $",
                                  widget=forms.NumberInput(attrs={"step": "any", "min": "0"}))
    cost_max = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=10, label="to $",
                                  widget=forms.NumberInput(attrs={"step": "any", "min": "0"}))
    created_from = forms.DateField(required=False, label="Created from", widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, agents: list[Agent], **kwargs: Any):
        super().__init__(*args, **kwargs)
        _choice(self, "agent").choices = [("", "Any agent")] + [(str(a.pk), a.name) for a in agents]

    def clean_q(self) -> str:
        """Text search reads the trigram indexes, which need three characters: a shorter term would read
        every run of the tenant (hundreds of ms at 1M runs). A run number (``123`` or ``#123``) is always fine."""
        q = str(self.cleaned_data.get("q") or "").strip()
        ident = q.lstrip("#")
        if q and len(q) < MIN_SEARCH_CHARS and not (ident.isascii() and ident.isdigit()):
            raise ValidationError(f"Search for at least {MIN_SEARCH_CHARS} characters, or a run number.")
        return q

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("cost_min") is not None and data.get("cost_max") is not None and data["cost_min"] > data["cost_max"]:
            raise ValidationError("The lowest cost is above the highest.")
        if data.get("created_from") and data.get("created_to") and data["created_from"] > data["created_to"]:
            raise ValidationError("The start date is after the end date.")
        return data


class RunStartForm(forms.Form):
    agent = forms.TypedChoiceField(coerce=int)
    input = forms.CharField(max_length=MAX_INPUT_CHARS, validators=[_no_nul], required=False,
                            widget=forms.Textarea(attrs={"rows": 8, "placeholder": "What should the agent do?"}))
    variables = forms.CharField(
        required=False, max_length=MAX_INPUT_CHARS, validators=[_no_nul], label="Variables (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "placeholder": '{"customer_name": "Ada"}'}),
        help_text="For an agent whose prompt version has a first-message template: its variables' values; "
                  "the rendered template becomes the input (leave Input empty).")
    scenario = forms.ChoiceField(required=False, help_text="Scripted mode: which recorded conversation the model API plays back.")

    def __init__(self, *args: Any, agents: list[Agent], scenarios: list[tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.agents = {a.pk: a for a in agents}
        _choice(self, "agent").choices = [
            (str(a.pk), a.name + (" (kill switch on)" if a.runs_disabled else "")) for a in agents
        ]
        if scenarios:
            _choice(self, "scenario").choices = scenarios
        else:
            del self.fields["scenario"]

    def clean_variables(self) -> dict[str, Any] | None:
        raw = self.cleaned_data["variables"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValidationError("Variables must be a JSON object, e.g. {\"name\": \"Ada\"}.")
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValidationError("Variables must be a JSON object of names to strings.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "input" in data and data.get("variables") is None and not data["input"].strip():
            self.add_error("input", "Give the agent something to do.")
        return data

    def clean_agent(self) -> Agent:
        return self.agents[self.cleaned_data["agent"]]


# -- agents ----------------------------------------------------------------------------------


def _bounded_int(label: str, field: str, help_text: str = "") -> forms.IntegerField:
    validators = [v for v in _model_field(field).validators if isinstance(v, MinValueValidator | MaxValueValidator)]
    lo = next((v.limit_value for v in validators if isinstance(v, MinValueValidator)), 0)
    hi = next((v.limit_value for v in validators if isinstance(v, MaxValueValidator)), None)
    return forms.IntegerField(label=label, min_value=lo, max_value=hi, help_text=help_text)


class AgentForm(forms.Form):
    """Every field of ``AGENT_FIELDS`` except the kill switch, which has its own audited action."""
    name = forms.CharField(max_length=100, validators=[_no_nul])
    description = forms.CharField(required=False, max_length=2000, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 2}))
    system_prompt = forms.CharField(max_length=100_000, validators=[_no_nul], widget=forms.Textarea(attrs={"rows": 10, "class": "mono"}))
    model = forms.CharField(max_length=100, validators=[MODEL_ID], widget=forms.TextInput(attrs={"list": "known-models"}))
    routing = forms.CharField(
        required=False, label="Routing (JSON)", widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
        help_text='Optional. {"simple": model, "complex": model, "complex_min_chars": 400, "complex_keywords": ["refund"], "simple_max_chars": 200}',
    )
    fallback_model = forms.CharField(required=False, max_length=100, validators=[MODEL_ID], label="Fallback model",
                                     widget=forms.TextInput(attrs={"list": "known-models"}), help_text="Used once when the primary model is overloaded.")
    max_tokens = _bounded_int("Max tokens per response", "max_tokens")
    cache_ttl = forms.ChoiceField(required=False, choices=[("5m", "5 minutes"), ("1h", "1 hour")], initial="5m", label="Prompt cache lifetime",
                                  help_text="Tools, system prompt and the conversation so far are cached. 1 hour: writes cost 2x base input (5 minutes: 1.25x); reads 0.1x.")
    tools = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    iteration_cap = _bounded_int("Iteration cap", "iteration_cap", "Model calls before the run stops with max_iterations.")
    repetition_threshold = _bounded_int("Repetition threshold", "repetition_threshold", "Same tool, same arguments this many times stops the run.")
    wall_clock_limit_s = _bounded_int("Wall-clock limit (seconds)", "wall_clock_limit_s")
    memory_token_budget = _bounded_int("Memory token budget", "memory_token_budget",
                                       "Facts about the run's subject (metadata.subject) placed in its context at the start; 0 turns recall off. "
                                       "Empty keeps the current value (500 for a new agent).")
    memory_token_budget.required = False
    task_cost_cap = forms.DecimalField(required=False, min_value=Decimal(0), max_digits=MONEY["max_digits"], decimal_places=MONEY["decimal_places"],
                                       label="Task cost cap (USD)", help_text="Empty: the tenant's task cap applies.")
    prompt_id = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Versioned prompt",
                                       help_text="Follow a prompt by label; a run pins the version at its first model call. "
                                                 "Empty: the inline prompt above.")
    prompt_label = forms.RegexField(regex=r"^[a-z0-9][a-z0-9_.-]{0,49}$", required=False, max_length=50, label="Label",
                                    help_text="production, staging or a custom label.")

    def __init__(self, *args: Any, tenant: Tenant, agent: Agent | None = None, **kwargs: Any):
        if agent is not None and "initial" not in kwargs and not args:
            kwargs["initial"] = {
                "name": agent.name, "description": agent.description, "system_prompt": agent.system_prompt,
                "model": agent.model, "routing": json.dumps(agent.routing, indent=2) if agent.routing else "",
                "fallback_model": agent.fallback_model, "max_tokens": agent.max_tokens, "cache_ttl": agent.cache_ttl, "tools": list(agent.tools or []),
                "iteration_cap": agent.iteration_cap, "repetition_threshold": agent.repetition_threshold,
                "wall_clock_limit_s": agent.wall_clock_limit_s, "memory_token_budget": agent.memory_token_budget,
                "task_cost_cap": f"{agent.task_cost_cap.normalize():f}" if agent.task_cost_cap is not None else None,
                "prompt_id": agent.prompt_id, "prompt_label": agent.prompt_label,
            }
        elif agent is None and "initial" not in kwargs and not args:
            defaults = {f: _model_field(f).default for f in ("model", "max_tokens", "cache_ttl", "iteration_cap", "repetition_threshold", "wall_clock_limit_s",
                                                           "memory_token_budget")}
            kwargs["initial"] = defaults
        super().__init__(*args, **kwargs)
        self.tenant, self.agent = tenant, agent
        # One choice per online evaluator flag: what it does for this agent (blank: the default).
        current = (agent.flag_policy or {}) if agent is not None else {}
        self.policy_fields = []
        for flag in all_flags():
            name = f"policy_{flag}"
            self.fields[name] = forms.ChoiceField(
                required=False, label=flag, initial=current.get(flag, ""),
                choices=[("", f"default ({flag_policy.action(None, flag)})"), *((a, a) for a in flag_policy.ACTIONS)],
            )
            self.policy_fields.append(self[name])
        specs = all_tools(tenant)
        self.tool_specs = specs
        _choice(self, "tools").choices = [(name, name) for name in sorted(specs)]
        # The prompts app sits above runs: its model is reached through the FK, never imported.
        prompts = agent_prompt_model().objects.for_tenant(tenant).order_by("name").values_list("pk", "name")
        _choice(self, "prompt_id").choices = [("", "— none: the inline prompt —"), *prompts]
        self.known_models = known_models(tenant)

    def _check_model(self, model: str) -> str:
        allowed = self.tenant.tier.allowed_models or []
        if model and allowed and model not in allowed:
            raise ValidationError(f"{model} is not allowed on the {self.tenant.tier.name} tier.")
        return model

    def clean_model(self) -> str:
        return self._check_model(self.cleaned_data["model"])

    def clean_task_cost_cap(self) -> Decimal | None:
        value = self.cleaned_data.get("task_cost_cap")
        problem = cap_problems(tier=self.tenant.tier, values={"task_cost_cap": value}).get("task_cost_cap")
        if problem:
            raise ValidationError(problem)
        return value

    def clean_fallback_model(self) -> str:
        return self._check_model(self.cleaned_data.get("fallback_model") or "")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = Agent.objects.for_tenant(self.tenant).filter(name=name)
        if self.agent is not None:
            clash = clash.exclude(pk=self.agent.pk)
        if clash.exists():
            raise ValidationError("Another agent of this tenant has this name.")
        return name

    def clean_routing(self) -> dict[str, Any]:
        routing = _jsonable(_parse_json_object(self.cleaned_data.get("routing", ""), "Routing"))
        from agentops.llm.gateway import validate_routing  # the anthropic SDK: see scenario_choices

        problems = validate_routing(routing)
        if problems:
            raise ValidationError("; ".join(problems))
        for key in ("simple", "complex"):
            if key in routing:
                MODEL_ID(routing[key])
                self._check_model(routing[key])
        return routing

    def as_data(self) -> dict[str, Any]:
        """The cleaned values keyed as ``services.agent_save`` expects them."""
        data = {k: v for k, v in self.cleaned_data.items() if not k.startswith("policy_")}
        data["tools"] = list(data.get("tools") or [])
        data["prompt_label"] = data.get("prompt_label") or "production"
        data["flag_policy"] = {f: self.cleaned_data[f"policy_{f}"] for f in all_flags() if self.cleaned_data.get(f"policy_{f}")}
        data["cache_ttl"] = data.get("cache_ttl") or "5m"
        if data.get("memory_token_budget") is None:
            data.pop("memory_token_budget", None)  # not sent: the agent keeps its value
        return data


# -- grants ----------------------------------------------------------------------------------


class GrantForm(forms.Form):
    tool_name = forms.ChoiceField(label="Tool")
    agent = forms.ChoiceField(required=False, label="Agent")
    role = forms.ChoiceField(required=False, choices=[("", "All roles"), *Role.choices])
    requires_approval = forms.BooleanField(required=False, label="Every call needs approval")
    allow = forms.CharField(required=False, label="Allow-lists (JSON)", widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
                            help_text='e.g. {"domains": ["docs.example.com"]}, {"recipient_domains": ["example.com"]}, {"max_amount": "500.00"}, MCP tools: {"values": {"order_id": ["ORD-1"]}}')
    approval_over = forms.CharField(required=False, label="Approval thresholds (JSON)", widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
                                    help_text='Gate calls whose argument is over a limit, e.g. {"amount": "100.00"}')

    def __init__(self, *args: Any, agents: list[Agent], tenant: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.specs = all_tools(tenant)  # built-ins, and the tenant's own MCP tools
        self.agents = {str(a.pk): a for a in agents}
        _choice(self, "tool_name").choices = [
            (name, f"{name} · {spec.side_effect}") for name, spec in sorted(self.specs.items()) if not spec.handoff
        ]
        _choice(self, "agent").choices = [("", "All agents")] + [(str(a.pk), a.name) for a in agents]

    def clean_agent(self) -> Agent | None:
        value = self.cleaned_data.get("agent") or ""
        return self.agents[value] if value else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        spec = self.specs.get(data.get("tool_name", ""))
        if spec is None:
            return data
        try:
            allow = _jsonable(_parse_json_object(self.data.get("allow", ""), "Allow-lists"))
            problems = allow_problems(spec, allow)
            if problems:
                raise ValidationError("; ".join(problems))
            data["allow"] = allow
        except ValidationError as exc:
            self.add_error("allow", exc)
        try:
            data["approval_over"] = self._clean_thresholds(spec, _parse_json_object(self.data.get("approval_over", ""), "Approval thresholds"))
        except ValidationError as exc:
            self.add_error("approval_over", exc)
        return data

    @staticmethod
    def _clean_thresholds(spec: Any, raw: dict[str, Any]) -> dict[str, str]:
        thresholds: dict[str, str] = {}
        for arg, value in raw.items():
            if arg not in spec.threshold_args:
                offered = ", ".join(spec.threshold_args) or "no arguments"
                raise ValidationError(f"{spec.name} cannot be gated on {str(arg)[:64]!r} (it offers {offered}).")
            if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
                raise ValidationError(f"The threshold for {arg} must be a decimal such as \"100.00\".")
            try:
                number = Decimal(str(value).strip())
            except (InvalidOperation, ValueError):
                raise ValidationError(f"The threshold for {arg} must be a decimal such as \"100.00\".")
            if not number.is_finite() or number < 0:
                raise ValidationError(f"The threshold for {arg} must be a non-negative decimal.")
            exponent = number.as_tuple().exponent
            if (isinstance(exponent, int) and exponent < -10) or number >= 10**10:
                raise ValidationError(f"The threshold for {arg} is out of range (at most 10 decimal places, under 10^10).")
            thresholds[str(arg)] = str(number)
        return thresholds


def grant_form_initial(grant: Any) -> dict[str, Any]:
    return {
        "tool_name": grant.tool_name, "agent": str(grant.agent_id or ""), "role": grant.role,
        "requires_approval": grant.requires_approval,
        "allow": json.dumps(grant.allow) if grant.allow else "",
        "approval_over": json.dumps(grant.approval_over) if grant.approval_over else "",
    }

