"""Keyset pagination shared by every repository `list`.

Every list is ordered by `(created_at, id)`, the same order an index on those columns would give,
and the next page starts strictly after the last row of the previous one:

    page = repo.list(limit=100)
    while page:
        ...
        page = repo.list(limit=100, after=page[-1])

`after` takes the last row itself (any object with `created_at` and `id`) or a `Keyset`. Unlike an
offset, a keyset page neither skips nor repeats rows when rows are inserted or deleted between
pages, and costs the same on page 1 and page 10 000.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol
from uuid import UUID

from renum_db.errors import InvalidInput

__all__ = ["KEYSET_SQL", "MAX_PAGE", "Keyed", "Keyset", "keyset_params"]

MAX_PAGE: Final = 1000
"""The largest page a `list` returns; a larger limit is refused rather than silently cut."""

KEYSET_SQL: Final = """(%(after_created_at)s::timestamptz is null
            or (created_at, id) > (%(after_created_at)s::timestamptz, %(after_id)s::uuid))"""
"""The page condition of every list (with `order by created_at, id limit %(limit)s`)."""


class Keyed(Protocol):
    """Anything with the two columns every page is ordered by."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> UUID: ...


@dataclass(frozen=True, slots=True)
class Keyset:
    """The position after which the next page starts."""

    created_at: datetime
    id: UUID

    @classmethod
    def of(cls, row: Keyed) -> Keyset:
        return cls(created_at=row.created_at, id=row.id)


def keyset_params(limit: int, after: Keyed | None) -> dict[str, Any]:
    """Validated query parameters `limit`, `after_created_at`, `after_id` (bool is refused)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_PAGE}, got {limit!r}")
    if after is None:
        return {"limit": limit, "after_created_at": None, "after_id": None}
    try:
        created_at, ident = after.created_at, after.id
    except AttributeError:
        raise InvalidInput("after must be a row (with created_at and id) or a Keyset") from None
    if not isinstance(created_at, datetime) or not isinstance(ident, UUID):
        raise InvalidInput("after must carry a datetime created_at and a UUID id")
    return {"limit": limit, "after_created_at": created_at, "after_id": ident}
