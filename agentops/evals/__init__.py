"""Floor 4 (an app on the harness, beside runs and prompts), evals: offline eval suites and cases,
eval runs driven through the same harness and workers as production runs, their per-case verdicts,
drift, and the eval results the prompts app's promotion gate reads.

May import runs, prompts, escalations and every floor below; nothing imports it but the wiring.
Registers the prompts gate's eval source and the harness's run-finished listener in ``EvalsConfig.ready()``.
"""
