"""Judge evaluators on persisted turns: the job's side (the loop only queues them; see harness.online).

One model call per (turn, judge), priced and capped like the run's own calls; a score at or over the
judge's threshold adds its flag to the turn and to the run.
"""

from __future__ import annotations

import json

from django.db import transaction

from agentops.harness import evaluators, online
from runs.models import Message, Run


def judge_turn(*, run_id: int, seq: int, name: str) -> str:
    spec = evaluators.JUDGES.get(name)
    message = Message.unscoped.select_related("run__agent", "run__tenant").filter(run_id=run_id, seq=seq).first()
    if spec is None or message is None:
        return "missing"
    run = message.run
    parts = [b.get("content") if b.get("type") == "tool_result" else b.get("text") for b in message.content if isinstance(b, dict)]
    text = "\n".join(p if isinstance(p, str) else json.dumps(p) for p in parts if p)
    config = {"scenario": (run.metadata or {}).get("judge_scenario")} if isinstance(run.metadata, dict) else {}
    score, _reason = online.judge(run, spec.rubric, text, config)
    with transaction.atomic():
        message = Message.unscoped.select_for_update().get(pk=message.pk)
        message.scores = {**(message.scores or {}), name: round(score, 3)}
        flagged = score >= spec.threshold and spec.flag not in (message.flags or [])
        if flagged:
            message.flags = [*(message.flags or []), spec.flag]
        message.save(update_fields=["scores", "flags"])
        if flagged:
            fresh = Run.unscoped.select_for_update().get(pk=run.pk)
            online.RunFlags(fresh).add([spec.flag])
    return "flagged" if flagged else "clear"
