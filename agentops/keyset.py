"""Keyset ("seek") pagination for the console's long lists: newest first on (a time, id).

A page is the ``size`` rows after a cursor, read from an index, so page 200 costs what page 1 does
and no request counts the whole tenant. The cursor is the last row's ``<microseconds>.<id>``;
a malformed one is a ``BadCursor`` (the views answer 400).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


class BadCursor(ValueError):
    pass


def encode(value: datetime, pk: int) -> str:
    return f"{(value - EPOCH) // ONE_US}.{pk}"


def decode(cursor: str) -> tuple[datetime, int]:
    micros, sep, pk = cursor.partition(".")
    digits = micros.lstrip("-")
    if not sep or len(cursor) > 40 or not (digits.isascii() and digits.isdigit() and pk.isascii() and pk.isdigit()):
        raise BadCursor("The 'after' cursor is not one this list gave out; start from the newest.")
    try:
        return EPOCH + int(micros) * ONE_US, int(pk)
    except OverflowError as exc:
        raise BadCursor("The 'after' cursor is out of range.") from exc


@dataclass
class KeysetPage:
    items: list[Any]
    next_cursor: str  # "" on the last page
    is_first: bool

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def keyset_page(qs: QuerySet[Any], *, field: str, after: str = "", size: int = 50) -> KeysetPage:
    """The ``size`` rows of ``qs`` after ``after``, newest ``field`` first (ties by id)."""
    if after:
        value, pk = decode(after)
        # The plain ``<=`` bound lets the index scan start at the cursor; the OR breaks ties.
        qs = qs.filter(Q(**{f"{field}__lt": value}) | Q(**{field: value, "pk__lt": pk}), **{f"{field}__lte": value})
    rows = list(qs.order_by(f"-{field}", "-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(items=rows, next_cursor=encode(getattr(rows[-1], field), rows[-1].pk) if more else "", is_first=not after)
