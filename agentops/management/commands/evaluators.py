"""``manage.py evaluators check --evaluator NAME``: any online evaluator on any text, from the shell.

Reads JSON lines ``{"text": "..."}`` on stdin and writes one JSON line per input,
``{"flags": [...], "score": <0..1>}`` (plus ``"error"`` for a line that is not such an object),
so anyone can measure a detector on their own corpus. ``manage.py evaluators list`` names them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agentops.harness import evaluators
from agentops.tools.registry import all_tools


class Command(BaseCommand):
    help = "Run an online evaluator on JSON lines {\"text\": ...} from stdin; list the evaluators."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="Score JSON lines from stdin.")
        check.add_argument("--evaluator", required=True, help="An evaluator name (see `evaluators list`).")
        sub.add_parser("list", help="Name every evaluator, what it reads, its kind and its flags.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for e in evaluators.all_evaluators():
                self.stdout.write(f"{e.name:20} reads {e.reads:15} {e.kind:6} flags {', '.join(e.raises)}  {e.description}")
            return
        name = options["evaluator"]
        evaluator = evaluators.get(name)
        if evaluator is None:
            raise CommandError(f"Unknown evaluator {name!r}; known: {', '.join(e.name for e in evaluators.all_evaluators())}")
        if evaluator.kind != "cheap":
            raise CommandError(f"{name} is a judge evaluator (a model call); only cheap evaluators run from the shell.")
        # Requests to call a tool are read against every registered tool's name.
        tool_names = tuple(all_tools())
        for lineno, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                text = item["text"] if isinstance(item, dict) else None
                if not isinstance(text, str):
                    raise ValueError("expected an object with a string 'text'")
            except (ValueError, KeyError) as exc:
                self.stdout.write(json.dumps({"flags": [], "score": 0.0, "error": f"line {lineno}: {exc}"}))
                continue
            verdict = evaluators.check_text(name, text, tool_names=tool_names)
            self.stdout.write(json.dumps({"flags": list(verdict.flags), "score": round(verdict.score, 3)}, ensure_ascii=False))
