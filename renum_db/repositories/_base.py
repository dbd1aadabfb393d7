"""What every repository shares: the connection it runs on, rows as dataclasses, JSON parameters,
and one place where driver errors become `renum_db.errors` (`wrap_errors`).

Constructed over `renum_db.repositories.plan.PLANNER` instead of a connection, the helpers return
the statement as a `Plan`: the async repositories (renum_db.aio) run the same methods that way.

A repository never commits, opens transactions or switches roles: the block that created the
connection (`Database.as_user(...)`, `Database.as_service_role()`, `act_as`) owns all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString, TypeVar, cast

from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from renum_db.errors import DatabaseError, wrap_errors
from renum_db.repositories.plan import Plan, Planner

__all__ = ["Repository", "json_param"]

RowT = TypeVar("RowT")


def json_param(value: Any) -> Jsonb | None:
    """`value` as a jsonb parameter; None stays SQL null (which the functions read as "keep")."""
    return None if value is None else Jsonb(value)


class Repository:
    """Base of the repositories: typed single-row, optional-row and list queries."""

    def __init__(self, conn: Connection[Any] | Planner) -> None:
        self._conn = conn

    @property
    def conn(self) -> Connection[Any]:
        if isinstance(self._conn, Planner):
            raise TypeError("a planning repository has no connection")
        return self._conn

    def _maybe(
        self, row_type: type[RowT], query: LiteralString, params: Mapping[str, Any]
    ) -> RowT | None:
        if isinstance(self._conn, Planner):
            return cast(RowT, Plan("one", row_type, query, dict(params)))
        with wrap_errors(), self._conn.cursor(row_factory=class_row(row_type)) as cur:
            cur.execute(query, params)
            return cur.fetchone()

    def _one(self, row_type: type[RowT], query: LiteralString, params: Mapping[str, Any]) -> RowT:
        """The row a function returns; functions return their row or raise."""
        missing = f"{row_type.__name__}: the statement returned no row"
        if isinstance(self._conn, Planner):
            return cast(RowT, Plan("required", row_type, query, dict(params), missing))
        row = self._maybe(row_type, query, params)
        if row is None:
            raise DatabaseError(missing)
        return row

    def _all(
        self, row_type: type[RowT], query: LiteralString, params: Mapping[str, Any]
    ) -> list[RowT]:
        if isinstance(self._conn, Planner):
            return cast(list[RowT], Plan("all", row_type, query, dict(params)))
        with wrap_errors(), self._conn.cursor(row_factory=class_row(row_type)) as cur:
            cur.execute(query, params)
            return cur.fetchall()
