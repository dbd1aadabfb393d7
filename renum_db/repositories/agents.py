"""The agent-execution workflow: thin typed wrappers over the SQL functions (0009, moved in 0015).

The state machine (pending -> running -> completed | failed | cancelled, pending -> cancelled |
failed), the timestamps, the never-decreasing tokens and the monthly token quota are enforced by
Postgres for every writer (see docs/agents.md); these wrappers only call the functions. One
method per SQL function, keyword arguments named exactly like the SQL parameters, rows as
frozen dataclasses through `class_row`, every statement inside `wrap_errors`, so callers catch
`IllegalTransition`, `QuotaExceeded`, `AgentNotActive`, `NotFound` or `PermissionDenied`.

Run them on a connection from `Database.as_user(...)` (members start and cancel: schema public) or
`Database.as_service_role()` (the worker: report_progress, complete, fail, start and cancel with
`client_id`: schema backend, which browsers cannot reach).
The repository never commits or switches roles: the block owns the transaction.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from renum_db.errors import InvalidInput
from renum_db.repositories._base import Repository, json_param
from renum_db.repositories.keyset import KEYSET_SQL, Keyed, keyset_params

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


def _call(schema: LiteralString, function: LiteralString, args: LiteralString) -> LiteralString:
    return "select " + _COLUMNS + " from " + schema + "." + function + "(" + args + ")"


class AgentExecutionRepository(Repository):
    """The workflow RPCs of public.agent_executions and the monthly token usage views.

    Users (members, admins) call `start` and `cancel` without `client_id`: the public functions
    act in their own client. The backend (service_role) passes `client_id` and reaches the
    functions of schema `backend`; `report_progress`, `complete` and `fail` exist only there.
    """

    _GET: LiteralString = "select " + _COLUMNS + " from public.agent_executions where id = %(id)s"
    _LIST: LiteralString = (
        "select "
        + _COLUMNS
        + """
          from public.agent_executions
         where (%(agent_id)s::uuid is null or agent_id = %(agent_id)s::uuid)
           and (%(status)s::text is null
                or status = %(status)s::text::public.agent_execution_status)
           and (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
           and """
        + KEYSET_SQL
        + """
         order by created_at, id
         limit %(limit)s
    """
    )
    _START: LiteralString = _call(
        "public", "start_agent_execution", "agent_id => %(agent_id)s, input => %(input)s"
    )
    _BACKEND_START: LiteralString = _call(
        "backend",
        "start_agent_execution",
        "agent_id => %(agent_id)s, input => %(input)s, client_id => %(client_id)s",
    )
    _PROGRESS: LiteralString = _call(
        "backend",
        "report_agent_execution_progress",
        "execution_id => %(execution_id)s, output => %(output)s, "
        "tokens_used => %(tokens_used)s, client_id => %(client_id)s",
    )
    _COMPLETE: LiteralString = _call(
        "backend",
        "complete_agent_execution",
        "execution_id => %(execution_id)s, output => %(output)s, "
        "tokens_used => %(tokens_used)s, client_id => %(client_id)s",
    )
    _FAIL: LiteralString = _call(
        "backend",
        "fail_agent_execution",
        "execution_id => %(execution_id)s, error => %(error)s, "
        "tokens_used => %(tokens_used)s, client_id => %(client_id)s",
    )
    _CANCEL: LiteralString = _call(
        "public", "cancel_agent_execution", "execution_id => %(execution_id)s"
    )
    _BACKEND_CANCEL: LiteralString = _call(
        "backend",
        "cancel_agent_execution",
        "execution_id => %(execution_id)s, tokens_used => %(tokens_used)s, "
        "client_id => %(client_id)s",
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

    def get(self, id: UUID) -> AgentExecution | None:
        """The execution, or None if it does not exist or is not visible to the caller (RLS:
        every role of its client reads it)."""
        return self._maybe(AgentExecution, self._GET, {"id": id})

    def list(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        agent_id: UUID | None = None,
        status: str | None = None,
        client_id: UUID | None = None,
    ) -> builtins.list[AgentExecution]:
        """Visible executions (of one agent, with one status, of one client if given), oldest
        first, one keyset page (`after` = the last row of the previous page)."""
        params = {
            **keyset_params(limit, after),
            "agent_id": agent_id,
            "status": status,
            "client_id": client_id,
        }
        return self._all(AgentExecution, self._LIST, params)

    def start(
        self, *, agent_id: UUID, input: Any = None, client_id: UUID | None = None
    ) -> AgentExecution:
        """A new pending execution: public.start_agent_execution (a member, as themselves, in
        their own client), or backend.start_agent_execution when `client_id` is given (the
        backend: a system run with no user). `input` None sends `{}` (the SQL default)."""
        params = {
            "agent_id": agent_id,
            "input": Jsonb({} if input is None else input),
            "client_id": client_id,
        }
        query = self._START if client_id is None else self._BACKEND_START
        return self._one(AgentExecution, query, params)

    def report_progress(
        self,
        *,
        execution_id: UUID,
        client_id: UUID,
        output: Any = None,
        tokens_used: int | None = None,
    ) -> AgentExecution:
        """backend.report_agent_execution_progress (service_role): mark running, store output
        and the running token total (None keeps the stored value)."""
        params = {
            "execution_id": execution_id,
            "output": json_param(output),
            "tokens_used": tokens_used,
            "client_id": client_id,
        }
        return self._one(AgentExecution, self._PROGRESS, params)

    def complete(
        self,
        *,
        execution_id: UUID,
        client_id: UUID,
        output: Any = None,
        tokens_used: int | None = None,
    ) -> AgentExecution:
        """backend.complete_agent_execution (service_role): running -> completed."""
        params = {
            "execution_id": execution_id,
            "output": json_param(output),
            "tokens_used": tokens_used,
            "client_id": client_id,
        }
        return self._one(AgentExecution, self._COMPLETE, params)

    def fail(
        self,
        *,
        execution_id: UUID,
        client_id: UUID,
        error: str,
        tokens_used: int | None = None,
    ) -> AgentExecution:
        """backend.fail_agent_execution (service_role): pending or running -> failed."""
        params = {
            "execution_id": execution_id,
            "error": error,
            "tokens_used": tokens_used,
            "client_id": client_id,
        }
        return self._one(AgentExecution, self._FAIL, params)

    def cancel(
        self,
        *,
        execution_id: UUID,
        tokens_used: int | None = None,
        client_id: UUID | None = None,
    ) -> AgentExecution:
        """public.cancel_agent_execution (its starter or an admin), or, with `client_id`,
        backend.cancel_agent_execution (optionally with the final `tokens_used`)."""
        if client_id is None:
            if tokens_used is not None:
                raise InvalidInput("only the backend reports tokens_used: pass client_id")
            return self._one(AgentExecution, self._CANCEL, {"execution_id": execution_id})
        params = {"execution_id": execution_id, "tokens_used": tokens_used, "client_id": client_id}
        return self._one(AgentExecution, self._BACKEND_CANCEL, params)

    def agent_monthly_token_usage(
        self,
        *,
        client_id: UUID | None = None,
        agent_id: UUID | None = None,
        month: date | None = None,
    ) -> builtins.list[AgentMonthlyTokenUsage]:
        """Rows of public.agent_monthly_token_usage visible to the caller (RLS), filtered.

        `month` is the first day of a UTC month. The backend sees every client: pass `client_id`.
        """
        params = {"client_id": client_id, "agent_id": agent_id, "month": month}
        return self._all(AgentMonthlyTokenUsage, self._AGENT_USAGE, params)

    def client_monthly_token_usage(
        self, *, client_id: UUID | None = None, month: date | None = None
    ) -> builtins.list[ClientMonthlyTokenUsage]:
        """Rows of public.client_monthly_token_usage visible to the caller (RLS), filtered."""
        params = {"client_id": client_id, "month": month}
        return self._all(ClientMonthlyTokenUsage, self._CLIENT_USAGE, params)
