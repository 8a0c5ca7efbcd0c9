"""One way to read untrusted JSON: bounded nesting, finite numbers, valid Unicode, no NUL.

Python's ``json`` accepts more than the rest of the stack can hold: nesting deep enough to raise
``RecursionError``; ``NaN``/``Infinity`` and ``1e400`` (not JSON, and ``jsonb`` refuses them);
``"\\ud800"`` escapes that decode to lone surrogates (not encodable as UTF-8, so psycopg raises);
``"\\u0000"`` (text columns refuse NUL). Every API body and every JSON form field is read through
:func:`loads`, so such input is a 400 at the door instead of a 500 at the database.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonInputError(ValueError):
    """``kind`` is the API error type: ``invalid_json`` (not usable JSON) or ``invalid_request`` (NUL)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


def _constant(name: str) -> Any:
    raise JsonInputError("invalid_json", f"{name} is not a JSON number.")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError("invalid_json", "Numbers must be finite.")
    return value


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise JsonInputError("invalid_request", "NUL characters are not allowed.")
    if _SURROGATE.search(text):
        raise JsonInputError("invalid_json", "Strings must be valid Unicode (a lone surrogate such as \\ud800 is not).")


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Walk a decoded value without recursion: depth, keys and strings."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JsonInputError("invalid_json", f"JSON nested deeper than {max_depth} levels.")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH, parse_float: Callable[[str], Any] | None = None) -> Any:
    """Decode ``raw`` (bytes must be UTF-8) or raise :class:`JsonInputError`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_constant, parse_float=parse_float or _finite)
    except JsonInputError:
        raise
    except RecursionError:
        raise JsonInputError("invalid_json", f"JSON nested deeper than {max_depth} levels.")
    except UnicodeDecodeError:
        raise JsonInputError("invalid_json", "The body is not UTF-8.")
    except ValueError as exc:  # JSONDecodeError, and integers over Python's digit limit
        raise JsonInputError("invalid_json", f"Malformed JSON: {str(exc)[:120]}")
    check(value, max_depth=max_depth)
    return value
