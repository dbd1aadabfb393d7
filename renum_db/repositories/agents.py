"""The agent-execution workflow: thin typed wrappers over the SQL functions of migration 0009.

The state machine (pending -> running -> completed | failed | cancelled, pending -> cancelled |
failed), the timestamps, the never-decreasing tokens and the monthly token quota are enforced by
Postgres for every writer (see docs/agents.md); these wrappers only call the functions. One
method per SQL function, keyword arguments named exactly like the SQL parameters, rows as
frozen dataclasses through `class_row`, every statement inside `wrap_errors`, so callers catch
`IllegalTransition`, `QuotaExceeded`, `AgentNotActive`, `NotFound` or `PermissionDenied`.

Run them on a connection from `Database.as_user(...)` (members start and cancel) or
`Database.as_service_role()` (the worker: progress, complete, fail, cancel; pass `client_id`).
The repository never commits or switches roles: the block owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, LiteralString, TypeVar
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from renum_db.errors import wrap_errors

__all__ = [
    "AgentExecution",
    "AgentExecutionRepository",
    "AgentMonthlyTokenUsage",
    "ClientMonthlyTokenUsage",
]


@dataclass(frozen=True, slots=True)
class AgentExecution:
    """A row of public.agent_executions."""

    id: UUID
    client_id: UUID
    agent_id: UUID
    user_id: UUID | None
    status: str
    input: Any
    output: Any
    error: str | None
    tokens_used: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AgentMonthlyTokenUsage:
    """A row of public.agent_monthly_token_usage (month = first day of the UTC month)."""

    client_id: UUID
    agent_id: UUID
    month: date
    executions: int
    tokens_used: int


@dataclass(frozen=True, slots=True)
class ClientMonthlyTokenUsage:
    """A row of public.client_monthly_token_usage (month = first day of the UTC month)."""

    client_id: UUID
    month: date
    executions: int
    tokens_used: int


_COLUMNS: LiteralString = (
    "id, client_id, agent_id, user_id, status, input, output, error, tokens_used, "
    "created_at, started_at, completed_at"
)

RowT = TypeVar("RowT")


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


class AgentExecutionRepository:
    """The workflow RPCs of public.agent_executions and the monthly token usage views."""

    _START: LiteralString = (
        "select " + _COLUMNS + " from public.start_agent_execution("
        "agent_id => %(agent_id)s, input => %(input)s, client_id => %(client_id)s)"
    )
    _PROGRESS: LiteralString = (
        "select " + _COLUMNS + " from public.record_agent_execution_progress("
        "execution_id => %(execution_id)s, output => %(output)s, "
        "tokens_used => %(tokens_used)s, client_id => %(client_id)s)"
    )
    _COMPLETE: LiteralString = (
        "select " + _COLUMNS + " from public.complete_agent_execution("
        "execution_id => %(execution_id)s, output => %(output)s, "
        "tokens_used => %(tokens_used)s, client_id => %(client_id)s)"
    )
    _FAIL: LiteralString = (
        "select " + _COLUMNS + " from public.fail_agent_execution("
        "execution_id => %(execution_id)s, error => %(error)s, "
        "tokens_used => %(tokens_used)s, client_id => %(client_id)s)"
    )
    _CANCEL: LiteralString = (
        "select " + _COLUMNS + " from public.cancel_agent_execution("
        "execution_id => %(execution_id)s, tokens_used => %(tokens_used)s, "
        "client_id => %(client_id)s)"
    )
    _AGENT_USAGE: LiteralString = """
        select client_id, agent_id, month, executions, tokens_used
          from public.agent_monthly_token_usage
         where (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
           and (%(agent_id)s::uuid is null or agent_id = %(agent_id)s::uuid)
           and (%(month)s::date is null or month = %(month)s::date)
         order by month, client_id, agent_id
    """
    _CLIENT_USAGE: LiteralString = """
        select client_id, month, executions, tokens_used
          from public.client_monthly_token_usage
         where (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
           and (%(month)s::date is null or month = %(month)s::date)
         order by month, client_id
    """

    def __init__(self, conn: Connection[Any]) -> None:
        self._conn = conn

    def _one(self, query: LiteralString, params: Mapping[str, Any]) -> AgentExecution:
        with wrap_errors(), self._conn.cursor(row_factory=class_row(AgentExecution)) as cur:
            cur.execute(query, params)
            row = cur.fetchone()
        assert row is not None  # each function returns its row or raises
        return row

    def _all(
        self, row_type: type[RowT], query: LiteralString, params: Mapping[str, Any]
    ) -> list[RowT]:
        with wrap_errors(), self._conn.cursor(row_factory=class_row(row_type)) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def start(
        self, *, agent_id: UUID, input: Any = None, client_id: UUID | None = None
    ) -> AgentExecution:
        """public.start_agent_execution: a new pending execution started by the caller.

        `input` None sends `{}` (the SQL default). The backend must pass `client_id`.
        """
        params = {
            "agent_id": agent_id,
            "input": Jsonb({} if input is None else input),
            "client_id": client_id,
        }
        return self._one(self._START, params)

    def record_progress(
        self,
        *,
        execution_id: UUID,
        output: Any = None,
        tokens_used: int | None = None,
        client_id: UUID | None = None,
    ) -> AgentExecution:
        """public.record_agent_execution_progress (service_role): mark running, store output
        and the running token total (None keeps the stored value)."""
        params = {
            "execution_id": execution_id,
            "output": _json(output),
            "tokens_used": tokens_used,
            "client_id": client_id,
        }
        return self._one(self._PROGRESS, params)

    def complete(
        self,
        *,
        execution_id: UUID,
        output: Any = None,
        tokens_used: int | None = None,
        client_id: UUID | None = None,
    ) -> AgentExecution:
        """public.complete_agent_execution (service_role): running -> completed."""
        params = {
            "execution_id": execution_id,
            "output": _json(output),
            "tokens_used": tokens_used,
            "client_id": client_id,
        }
        return self._one(self._COMPLETE, params)

    def fail(
        self,
        *,
        execution_id: UUID,
        error: str,
        tokens_used: int | None = None,
        client_id: UUID | None = None,
    ) -> AgentExecution:
        """public.fail_agent_execution (service_role): pending or running -> failed."""
        params = {
            "execution_id": execution_id,
            "error": error,
            "tokens_used": tokens_used,
            "client_id": client_id,
        }
        return self._one(self._FAIL, params)

    def cancel(
        self,
        *,
        execution_id: UUID,
        tokens_used: int | None = None,
        client_id: UUID | None = None,
    ) -> AgentExecution:
        """public.cancel_agent_execution: its starter or an admin (users), or the backend
        (with `client_id`, optionally the final `tokens_used`)."""
        params = {"execution_id": execution_id, "tokens_used": tokens_used, "client_id": client_id}
        return self._one(self._CANCEL, params)

    def agent_monthly_token_usage(
        self,
        *,
        client_id: UUID | None = None,
        agent_id: UUID | None = None,
        month: date | None = None,
    ) -> list[AgentMonthlyTokenUsage]:
        """Rows of public.agent_monthly_token_usage visible to the caller (RLS), filtered.

        `month` is the first day of a UTC month. The backend sees every client: pass `client_id`.
        """
        params = {"client_id": client_id, "agent_id": agent_id, "month": month}
        return self._all(AgentMonthlyTokenUsage, self._AGENT_USAGE, params)

    def client_monthly_token_usage(
        self, *, client_id: UUID | None = None, month: date | None = None
    ) -> list[ClientMonthlyTokenUsage]:
        """Rows of public.client_monthly_token_usage visible to the caller (RLS), filtered."""
        params = {"client_id": client_id, "month": month}
        return self._all(ClientMonthlyTokenUsage, self._CLIENT_USAGE, params)
