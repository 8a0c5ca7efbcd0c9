"""Floor 4 (an app on the harness, beside runs), prompts: versioned prompts, labels and their history,
the promotion gate, diff, rollback, the try-it playground, API and YAML import/export.

May import runs, budgets, tenants and the harness core; runs never imports it (runs follows a prompt by
string FK and resolves it through the hook registered in ``PromptsConfig.ready()``).
"""
