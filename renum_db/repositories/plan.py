"""How the async repositories reuse the sync ones: same methods, same SQL, another executor.

A repository method validates its arguments, picks its SQL constant and builds its parameters,
then hands the statement to one of four helpers of the base class (`_fetch_one`, `_fetch_all`,
`_updated`, `_affected`). Constructed over a `PLANNER` instead of a connection, those helpers
return a `Plan` (the statement and what to do with its result) instead of running it; the async
repositories (renum_db.aio) run the plan on an `AsyncConnection`. So each statement, its
parameters and its checks exist once, whichever driver runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["PLANNER", "Plan", "Planner"]

Kind = Literal["one", "all", "updated", "affected", "required"]


@dataclass(frozen=True, slots=True)
class Plan:
    """A statement to run: `one` row or None, `all` rows, `updated` (one row, else NotFound
    with `not_found`), `required` (one row, else DatabaseError with `not_found`: a function
    that returns its row or raises), or `affected` (True if any row was)."""

    kind: Kind
    row_type: type[Any]
    query: str
    params: dict[str, Any]
    not_found: str = ""


class Planner:
    """Stands in for a connection: repositories built over it return Plans."""

    def __repr__(self) -> str:
        return "PLANNER"


PLANNER: Final = Planner()
