"""The agent-execution workflow (migration 0009): the state machine enforced by triggers for
every writer, the timestamps owned by the database, the workflow RPCs and who may call them,
the monthly token quota (exact limit, month boundary, concurrency) and token accounting."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from renum_db.db import act_as, user_claims
from renum_db.errors import (
    AgentNotActive,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RenumDBError,
    for_sqlstate,
    wrap_errors,
)
from renum_db.repositories.agents import (
    AgentExecution,
    AgentExecutionRepository,
    AgentMonthlyTokenUsage,
    ClientMonthlyTokenUsage,
)
from tests.support import RLS, World, acting, add_auth_user, claims_for, classify, column_of

Conn = psycopg.Connection[Any]
SERVICE: dict[str, Any] = {"role": "service_role"}
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
FINAL = ("completed", "failed", "cancelled")
ALLOWED = {
    ("pending", "running"),
    ("pending", "cancelled"),
    ("pending", "failed"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
}


# ---------------------------------------------------------------------------- helpers


def snapshot(conn: Conn, execution_id: uuid.UUID) -> dict[str, Any]:
    row = conn.execute(
        "select to_jsonb(e) from public.agent_executions as e where e.id = %s", (execution_id,)
    ).fetchone()
    assert row is not None
    return dict(row[0])


def tx_now(conn: Conn) -> datetime:
    row = conn.execute("select now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def new_execution(
    conn: Conn, world: World, status: str = "pending", *, tokens_used: int = 0
) -> uuid.UUID:
    """An execution of tenant A's first agent, started by A's member, brought to `status`
    through legal transitions (as the superuser, i.e. direct SQL)."""
    row = conn.execute(
        "insert into public.agent_executions (client_id, agent_id, user_id) "
        "values (%s, %s, %s) returning id",
        (world.a.client_id, world.a.rows["agents"][0], world.a.users["member"]),
    ).fetchone()
    assert row is not None
    execution_id = uuid.UUID(str(row[0]))
    path = {
        "pending": [],
        "running": ["running"],
        "completed": ["running", "completed"],
        "failed": ["running", "failed"],
        "cancelled": ["running", "cancelled"],
    }[status]
    for step in path:
        conn.execute(
            "update public.agent_executions set status = %s, tokens_used = %s where id = %s",
            (step, tokens_used, execution_id),
        )
    return execution_id


@contextmanager
def superuser(conn: Conn) -> Iterator[None]:
    """Direct SQL as the connecting superuser, in a savepoint, errors mapped like the API."""
    with wrap_errors(), conn.transaction():
        yield


def repo(conn: Conn) -> AgentExecutionRepository:
    return AgentExecutionRepository(conn)


def month_start(conn: Conn) -> datetime:
    row = conn.execute(
        "select timezone('UTC', date_trunc('month', timezone('UTC', now())))"
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def set_limit(conn: Conn, client_id: uuid.UUID, limit: Any) -> None:
    conn.execute(
        "update public.clients set settings = settings || jsonb_build_object("
        "'monthly_token_limit', %s::jsonb) where id = %s",
        (json.dumps(limit), client_id),
    )


def add_usage(
    conn: Conn, client_id: uuid.UUID, agent_id: uuid.UUID, tokens: int, created_at: datetime
) -> None:
    """Usage as the backend would backfill it: an execution created at `created_at`."""
    conn.execute(
        "insert into public.agent_executions (client_id, agent_id, tokens_used, created_at) "
        "values (%s, %s, %s, %s)",
        (client_id, agent_id, tokens, created_at),
    )


def count_executions(conn: Conn, client_id: uuid.UUID) -> int:
    row = conn.execute(
        "select count(*) from public.agent_executions where client_id = %s", (client_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


# ---------------------------------------------------------------------------- transitions


@pytest.mark.parametrize(("old", "new"), sorted(ALLOWED))
def test_every_allowed_transition_succeeds_for_direct_sql_by_the_backend(
    conn: Conn, world: World, old: str, new: str
) -> None:
    execution_id = new_execution(conn, world, old)
    with acting(conn, SERVICE):
        conn.execute(
            "update public.agent_executions set status = %s where id = %s", (new, execution_id)
        )
    assert snapshot(conn, execution_id)["status"] == new


ILLEGAL = [
    (old, new)
    for old in STATUSES
    for new in STATUSES
    if old != new and (old, new) not in ALLOWED and old not in FINAL
]


@pytest.mark.parametrize(("old", "new"), ILLEGAL)
@pytest.mark.parametrize("writer", ["service", "superuser"])
def test_an_illegal_transition_is_rne01_and_writes_nothing(
    conn: Conn, world: World, old: str, new: str, writer: str
) -> None:
    execution_id = new_execution(conn, world, old)
    before = snapshot(conn, execution_id)
    ctx = acting(conn, SERVICE) if writer == "service" else superuser(conn)
    with pytest.raises(IllegalTransition) as err, ctx:
        conn.execute(
            "update public.agent_executions set status = %s where id = %s", (new, execution_id)
        )
    assert err.value.sqlstate == "RNE01"
    assert snapshot(conn, execution_id) == before


@pytest.mark.parametrize("old", FINAL)
@pytest.mark.parametrize(
    "change",
    [
        *(f"status = '{s}'" for s in STATUSES),  # leaving, and even re-setting, a final state
        "output = '{\"late\": true}'::jsonb",
        "error = 'late'",
        "tokens_used = tokens_used + 1",
        "input = '{\"x\": 1}'::jsonb",
        "completed_at = now() + interval '1 day'",
    ],
)
def test_a_final_execution_is_frozen_rne02(conn: Conn, world: World, old: str, change: str) -> None:
    execution_id = new_execution(conn, world, old, tokens_used=5)
    before = snapshot(conn, execution_id)
    query = sql.SQL("update public.agent_executions set {} where id = %s").format(sql.SQL(change))
    with pytest.raises(IllegalTransition) as err, acting(conn, SERVICE):
        conn.execute(query, (execution_id,))
    assert err.value.sqlstate == "RNE02"
    assert snapshot(conn, execution_id) == before


def test_deleting_the_user_who_started_a_finished_execution_clears_user_id(
    conn: Conn, world: World
) -> None:
    """The one change a final row admits: the FK's `on delete set null (user_id)`."""
    execution_id = new_execution(conn, world, "completed", tokens_used=7)
    before = snapshot(conn, execution_id)
    conn.execute("delete from auth.users where id = %s", (world.a.users["member"],))
    after = snapshot(conn, execution_id)
    assert after["user_id"] is None
    assert {**after, "user_id": before["user_id"]} == before


def test_an_execution_must_be_inserted_pending(conn: Conn, world: World) -> None:
    with pytest.raises(IllegalTransition) as err, acting(conn, SERVICE):
        conn.execute(
            "insert into public.agent_executions (client_id, agent_id, status) "
            "values (%s, %s, 'running')",
            (world.a.client_id, world.a.rows["agents"][0]),
        )
    assert err.value.sqlstate == "RNE01"


@pytest.mark.parametrize("status", ["pending", "running"])
def test_tokens_used_never_decreases_rne03(conn: Conn, world: World, status: str) -> None:
    execution_id = new_execution(conn, world, status, tokens_used=10)
    if status == "pending":
        conn.execute(
            "update public.agent_executions set tokens_used = 10 where id = %s", (execution_id,)
        )
    before = snapshot(conn, execution_id)
    with pytest.raises(IllegalTransition) as err, acting(conn, SERVICE):
        conn.execute(
            "update public.agent_executions set tokens_used = 9 where id = %s", (execution_id,)
        )
    assert err.value.sqlstate == "RNE03"
    assert snapshot(conn, execution_id) == before


def test_tokens_used_may_stay_or_grow(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running", tokens_used=10)
    with acting(conn, SERVICE):
        conn.execute(
            "update public.agent_executions set tokens_used = 10 where id = %s", (execution_id,)
        )
        conn.execute(
            "update public.agent_executions set tokens_used = 11 where id = %s", (execution_id,)
        )
    assert snapshot(conn, execution_id)["tokens_used"] == 11


def test_negative_tokens_are_rejected_by_the_worker_functions(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running")
    with pytest.raises(InvalidInput) as err, acting(conn, SERVICE):
        repo(conn).report_progress(
            execution_id=execution_id, tokens_used=-1, client_id=world.a.client_id
        )
    assert err.value.sqlstate == "22023"


# ---------------------------------------------------------------------------- timestamps


def test_started_and_completed_at_are_set_by_the_database(conn: Conn, world: World) -> None:
    now = tx_now(conn)
    execution_id = new_execution(conn, world)
    pending = snapshot(conn, execution_id)
    assert pending["started_at"] is None
    assert pending["completed_at"] is None
    with acting(conn, SERVICE):
        running = repo(conn).report_progress(execution_id=execution_id, client_id=world.a.client_id)
        assert running.started_at == now
        assert running.completed_at is None
        done = repo(conn).complete(execution_id=execution_id, client_id=world.a.client_id)
    assert done.started_at == now
    assert done.completed_at == now


def test_cancelling_a_pending_execution_leaves_started_at_empty(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world)
    with acting(conn, world.claims("member")):
        row = repo(conn).cancel(execution_id=execution_id)
    assert row.status == "cancelled"
    assert row.started_at is None
    assert row.completed_at == tx_now(conn)


def test_timestamps_supplied_on_insert_are_ignored(conn: Conn, world: World) -> None:
    with acting(conn, SERVICE):
        row = conn.execute(
            "insert into public.agent_executions "
            "(client_id, agent_id, started_at, completed_at) "
            "values (%s, %s, now() - interval '1 day', now()) returning started_at, completed_at",
            (world.a.client_id, world.a.rows["agents"][0]),
        ).fetchone()
    assert row == (None, None)


def test_timestamps_supplied_on_update_are_ignored(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world)
    with acting(conn, SERVICE):
        conn.execute(
            "update public.agent_executions set started_at = now() - interval '1 day', "
            "completed_at = now() - interval '1 hour' where id = %s",
            (execution_id,),
        )
        assert snapshot(conn, execution_id)["started_at"] is None
        conn.execute(
            "update public.agent_executions set status = 'running', "
            "started_at = now() - interval '1 day' where id = %s",
            (execution_id,),
        )
    row = snapshot(conn, execution_id)
    assert row["completed_at"] is None
    assert datetime.fromisoformat(row["started_at"]) == tx_now(conn)


# ---------------------------------------------------------------------------- start


def test_a_member_starts_a_pending_execution_as_themselves(conn: Conn, world: World) -> None:
    with acting(conn, world.claims("member")):
        row = repo(conn).start(agent_id=world.a.rows["agents"][0], input={"q": "hello"})
    assert isinstance(row, AgentExecution)
    assert (row.client_id, row.user_id, row.status) == (
        world.a.client_id,
        world.a.users["member"],
        "pending",
    )
    assert row.input == {"q": "hello"}
    assert row.tokens_used == 0


def test_input_defaults_to_an_empty_object(conn: Conn, world: World) -> None:
    with acting(conn, world.claims("admin")):
        row = conn.execute(
            "select input from public.start_agent_execution(%s)", (world.a.rows["agents"][0],)
        ).fetchone()
    assert row == ({},)


def test_a_viewer_cannot_start_an_execution(conn: Conn, world: World) -> None:
    before = count_executions(conn, world.a.client_id)
    with pytest.raises(PermissionDenied), acting(conn, world.claims("viewer")):
        repo(conn).start(agent_id=world.a.rows["agents"][0])
    assert count_executions(conn, world.a.client_id) == before


@pytest.mark.parametrize("status", ["inactive", "archived"])
def test_only_active_agents_can_be_executed_rne04(conn: Conn, world: World, status: str) -> None:
    agent = world.a.rows["agents"][0]
    conn.execute("update public.agents set status = %s where id = %s", (status, agent))
    before = count_executions(conn, world.a.client_id)
    with pytest.raises(AgentNotActive) as err, acting(conn, world.claims("member")):
        repo(conn).start(agent_id=agent)
    assert err.value.sqlstate == "RNE04"
    with pytest.raises(AgentNotActive), acting(conn, world.claims("member")):
        conn.execute("insert into public.agent_executions (agent_id) values (%s)", (agent,))
    with pytest.raises(AgentNotActive), acting(conn, SERVICE):
        repo(conn).start(agent_id=agent, client_id=world.a.client_id)
    assert count_executions(conn, world.a.client_id) == before


def test_an_agent_of_another_tenant_is_not_found(conn: Conn, world: World) -> None:
    with pytest.raises(NotFound) as err, acting(conn, world.claims("member")):
        repo(conn).start(agent_id=world.b.rows["agents"][0])
    assert err.value.sqlstate == "PT404"


def test_a_user_cannot_start_in_another_client(conn: Conn, world: World) -> None:
    with pytest.raises(PermissionDenied), acting(conn, world.claims("member")):
        repo(conn).start(agent_id=world.b.rows["agents"][0], client_id=world.b.client_id)


def test_the_backend_must_name_the_client_and_starts_without_a_user(
    conn: Conn, world: World
) -> None:
    with pytest.raises(InvalidInput) as err, acting(conn, SERVICE):
        conn.execute("select backend.start_agent_execution(%s)", (world.a.rows["agents"][0],))
    assert err.value.sqlstate == "22004"
    with pytest.raises(PermissionDenied), acting(conn, SERVICE):
        repo(conn).start(agent_id=world.a.rows["agents"][0])  # the browser's function
    with acting(conn, SERVICE):
        row = repo(conn).start(agent_id=world.a.rows["agents"][0], client_id=world.a.client_id)
    assert row.user_id is None
    assert row.client_id == world.a.client_id


# ---------------------------------------------------------------------------- worker


def test_the_worker_runs_an_execution_to_completion(conn: Conn, world: World) -> None:
    c = world.a.client_id
    with acting(conn, world.claims("member")):
        started = repo(conn).start(agent_id=world.a.rows["agents"][0])
    with acting(conn, SERVICE):
        r = repo(conn)
        first = r.report_progress(
            execution_id=started.id, output={"step": 1}, tokens_used=10, client_id=c
        )
        second = r.report_progress(execution_id=started.id, client_id=c)  # keeps output, tokens
        done = r.complete(
            execution_id=started.id, output={"answer": 42}, tokens_used=25, client_id=c
        )
    assert (first.status, first.output, first.tokens_used) == ("running", {"step": 1}, 10)
    assert (second.status, second.output, second.tokens_used) == ("running", {"step": 1}, 10)
    assert (done.status, done.output, done.tokens_used) == ("completed", {"answer": 42}, 25)


def test_completing_a_pending_execution_is_illegal(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world)
    before = snapshot(conn, execution_id)
    with pytest.raises(IllegalTransition) as err, acting(conn, SERVICE):
        repo(conn).complete(execution_id=execution_id, client_id=world.a.client_id)
    assert err.value.sqlstate == "RNE01"
    assert snapshot(conn, execution_id) == before


@pytest.mark.parametrize("status", ["pending", "running"])
def test_the_worker_fails_a_pending_or_running_execution_with_its_error(
    conn: Conn, world: World, status: str
) -> None:
    execution_id = new_execution(conn, world, status)
    with acting(conn, SERVICE):
        row = repo(conn).fail(
            execution_id=execution_id,
            error="LLM timeout",
            tokens_used=3,
            client_id=world.a.client_id,
        )
    assert (row.status, row.error, row.tokens_used) == ("failed", "LLM timeout", 3)
    assert row.completed_at == tx_now(conn)


@pytest.mark.parametrize("error", [None, "  "])
def test_failing_requires_an_error_text(conn: Conn, world: World, error: str | None) -> None:
    execution_id = new_execution(conn, world, "running")
    with pytest.raises(InvalidInput) as err, acting(conn, SERVICE):
        conn.execute(
            "select backend.fail_agent_execution(%s, %s, client_id => %s)",
            (execution_id, error, world.a.client_id),
        )
    assert err.value.sqlstate == "22004"


@pytest.mark.parametrize("old", FINAL)
@pytest.mark.parametrize("call", ["progress", "complete", "fail", "cancel"])
def test_the_worker_cannot_touch_a_finished_execution(
    conn: Conn, world: World, old: str, call: str
) -> None:
    execution_id = new_execution(conn, world, old)
    before = snapshot(conn, execution_id)
    c = world.a.client_id
    with pytest.raises(IllegalTransition) as err, acting(conn, SERVICE):
        r = repo(conn)
        if call == "progress":
            r.report_progress(execution_id=execution_id, client_id=c)
        elif call == "complete":
            r.complete(execution_id=execution_id, client_id=c)
        elif call == "fail":
            r.fail(execution_id=execution_id, error="late", client_id=c)
        else:
            r.cancel(execution_id=execution_id, client_id=c)
    assert err.value.sqlstate == "RNE02"
    assert snapshot(conn, execution_id) == before


def test_the_worker_cannot_reach_an_execution_through_the_wrong_client(
    conn: Conn, world: World
) -> None:
    execution_id = new_execution(conn, world, "running")
    before = snapshot(conn, execution_id)
    with pytest.raises(NotFound) as err, acting(conn, SERVICE):
        repo(conn).complete(execution_id=execution_id, client_id=world.b.client_id)
    assert err.value.sqlstate == "PT404"
    assert snapshot(conn, execution_id) == before


@pytest.mark.parametrize(
    "function",
    ["report_agent_execution_progress", "complete_agent_execution", "cancel_agent_execution"],
)
def test_the_worker_functions_need_a_client(conn: Conn, world: World, function: str) -> None:
    execution_id = new_execution(conn, world, "running")
    before = snapshot(conn, execution_id)
    with pytest.raises(InvalidInput) as err, acting(conn, SERVICE):
        conn.execute(
            sql.SQL("select backend.{}(%s)").format(sql.Identifier(function)), (execution_id,)
        )
    assert err.value.sqlstate == "22004"
    assert snapshot(conn, execution_id) == before


# ---------------------------------------------------------------------------- cancel


def test_the_starter_cancels_their_execution(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running")
    with acting(conn, world.claims("member")):
        row = repo(conn).cancel(execution_id=execution_id)
    assert row.status == "cancelled"


def test_an_admin_cancels_another_users_execution(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running")
    with acting(conn, world.claims("admin")):
        row = repo(conn).cancel(execution_id=execution_id)
    assert row.status == "cancelled"


def test_another_member_of_the_tenant_cannot_cancel(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running")
    before = snapshot(conn, execution_id)
    colleague = add_auth_user(
        conn, email="colleague@a.example", client_id=world.a.client_id, role="member"
    )
    with pytest.raises(PermissionDenied), acting(conn, user_claims(colleague)):
        repo(conn).cancel(execution_id=execution_id)
    assert snapshot(conn, execution_id) == before


def test_a_starter_demoted_to_viewer_can_no_longer_cancel(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running")
    conn.execute(
        "update public.users set role = 'viewer' where id = %s", (world.a.users["member"],)
    )
    with pytest.raises(PermissionDenied), acting(conn, world.claims("member")):
        repo(conn).cancel(execution_id=execution_id)


def test_another_tenant_cannot_see_or_cancel_an_execution(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running")
    before = snapshot(conn, execution_id)
    with pytest.raises(NotFound), acting(conn, world.claims("other")):
        repo(conn).cancel(execution_id=execution_id)
    with pytest.raises(PermissionDenied), acting(conn, world.claims("other")):
        repo(conn).cancel(execution_id=execution_id, client_id=world.a.client_id)
    with acting(conn, world.claims("other")):
        seen = conn.execute(
            "select count(*) from public.agent_executions where id = %s", (execution_id,)
        ).fetchone()
    assert seen == (0,)
    assert snapshot(conn, execution_id) == before


def test_users_cannot_report_tokens_when_cancelling(conn: Conn, world: World) -> None:
    """Only backend.cancel_agent_execution takes tokens_used; the browser's function has none."""
    execution_id = new_execution(conn, world, "running")
    before = snapshot(conn, execution_id)
    with pytest.raises(InvalidInput), acting(conn, world.claims("admin")):
        repo(conn).cancel(execution_id=execution_id, tokens_used=5)
    with pytest.raises(PermissionDenied), acting(conn, world.claims("admin")):
        repo(conn).cancel(execution_id=execution_id, tokens_used=5, client_id=world.a.client_id)
    assert snapshot(conn, execution_id) == before


def test_the_backend_cancels_with_the_final_token_count(conn: Conn, world: World) -> None:
    execution_id = new_execution(conn, world, "running", tokens_used=4)
    with acting(conn, SERVICE):
        row = repo(conn).cancel(
            execution_id=execution_id, tokens_used=9, client_id=world.a.client_id
        )
    assert (row.status, row.tokens_used) == ("cancelled", 9)


def test_a_users_direct_update_can_only_cancel(conn: Conn, world: World) -> None:
    """PostgREST PATCH obeys the same rule as the RPC: status = cancelled, nothing else."""
    execution_id = new_execution(conn, world, "running")
    before = snapshot(conn, execution_id)
    with pytest.raises(RenumDBError) as err, acting(conn, world.claims("admin")):
        conn.execute(
            "update public.agent_executions set status = 'completed' where id = %s",
            (execution_id,),
        )
    assert classify(err.value) == RLS
    with pytest.raises(PermissionDenied), acting(conn, world.claims("admin")):
        conn.execute(
            "update public.agent_executions set tokens_used = 0 where id = %s", (execution_id,)
        )
    assert snapshot(conn, execution_id) == before
    with acting(conn, world.claims("member")):
        conn.execute(
            "update public.agent_executions set status = 'cancelled' where id = %s",
            (execution_id,),
        )
    assert snapshot(conn, execution_id)["status"] == "cancelled"


# ---------------------------------------------------------------------------- quota


@dataclass
class Quota:
    client_id: uuid.UUID
    agent_id: uuid.UUID
    month_start: datetime


@pytest.fixture
def quota(conn: Conn, world: World) -> Quota:
    return Quota(world.a.client_id, world.a.rows["agents"][0], month_start(conn))


def start_as_member(conn: Conn, world: World) -> AgentExecution:
    with acting(conn, world.claims("member")):
        return repo(conn).start(agent_id=world.a.rows["agents"][0])


def test_a_start_below_the_limit_succeeds(conn: Conn, world: World, quota: Quota) -> None:
    add_usage(conn, quota.client_id, quota.agent_id, 99, quota.month_start)
    set_limit(conn, quota.client_id, 100)
    assert start_as_member(conn, world).status == "pending"


def test_a_start_exactly_at_the_limit_is_rne05_and_writes_nothing(
    conn: Conn, world: World, quota: Quota
) -> None:
    add_usage(conn, quota.client_id, quota.agent_id, 60, quota.month_start)
    add_usage(conn, quota.client_id, world.a.rows["agents"][1], 40, quota.month_start)
    set_limit(conn, quota.client_id, 100)
    before = count_executions(conn, quota.client_id)
    with pytest.raises(QuotaExceeded) as err:
        start_as_member(conn, world)
    assert err.value.sqlstate == "RNE05"
    assert "100 of 100" in str(err.value)
    assert count_executions(conn, quota.client_id) == before


def test_a_start_over_the_limit_is_refused_for_every_writer(
    conn: Conn, world: World, quota: Quota
) -> None:
    add_usage(conn, quota.client_id, quota.agent_id, 150, quota.month_start)
    set_limit(conn, quota.client_id, 100)
    before = count_executions(conn, quota.client_id)
    with pytest.raises(QuotaExceeded), acting(conn, world.claims("member")):
        conn.execute(
            "insert into public.agent_executions (agent_id) values (%s)", (quota.agent_id,)
        )
    with pytest.raises(QuotaExceeded), acting(conn, SERVICE):
        repo(conn).start(agent_id=quota.agent_id, client_id=quota.client_id)
    with pytest.raises(QuotaExceeded), superuser(conn):
        add_usage(conn, quota.client_id, quota.agent_id, 0, quota.month_start)
    assert count_executions(conn, quota.client_id) == before


def test_a_limit_of_zero_forbids_every_start(conn: Conn, world: World, quota: Quota) -> None:
    set_limit(conn, quota.client_id, 0)
    with pytest.raises(QuotaExceeded):
        start_as_member(conn, world)


@pytest.mark.parametrize("limit", [None, 10**12])
def test_no_limit_or_a_high_one_lets_starts_through(
    conn: Conn, world: World, quota: Quota, limit: int | None
) -> None:
    add_usage(conn, quota.client_id, quota.agent_id, 10**9, quota.month_start)
    set_limit(conn, quota.client_id, limit)
    assert start_as_member(conn, world).status == "pending"


@pytest.mark.parametrize("limit", ["1000", -1, 1.5, [1], {"n": 1}, True])
def test_a_malformed_limit_is_rne06(conn: Conn, world: World, quota: Quota, limit: Any) -> None:
    set_limit(conn, quota.client_id, limit)
    with pytest.raises(InvalidInput) as err:
        start_as_member(conn, world)
    assert err.value.sqlstate == "RNE06"


def test_tokens_of_last_month_do_not_count(conn: Conn, world: World, quota: Quota) -> None:
    just_before = quota.month_start - timedelta(microseconds=1)
    add_usage(conn, quota.client_id, quota.agent_id, 1000, just_before)
    add_usage(conn, quota.client_id, quota.agent_id, 99, quota.month_start)
    set_limit(conn, quota.client_id, 100)
    assert start_as_member(conn, world).status == "pending"


def test_tokens_at_the_first_instant_of_the_month_count(
    conn: Conn, world: World, quota: Quota
) -> None:
    add_usage(conn, quota.client_id, quota.agent_id, 100, quota.month_start)
    set_limit(conn, quota.client_id, 100)
    with pytest.raises(QuotaExceeded):
        start_as_member(conn, world)


def test_the_month_is_the_utc_month_whatever_the_session_time_zone(
    conn: Conn, world: World, quota: Quota
) -> None:
    """12:00 on the last day of last month in UTC is 'this month' nowhere near UTC+12."""
    add_usage(conn, quota.client_id, quota.agent_id, 100, quota.month_start - timedelta(hours=1))
    set_limit(conn, quota.client_id, 100)
    conn.execute("set local timezone = 'Pacific/Kiritimati'")  # UTC+14
    assert start_as_member(conn, world).status == "pending"


def test_another_tenants_usage_does_not_count(conn: Conn, world: World, quota: Quota) -> None:
    add_usage(conn, world.b.client_id, world.b.rows["agents"][0], 500, quota.month_start)
    set_limit(conn, quota.client_id, 100)
    assert start_as_member(conn, world).status == "pending"


def test_tokens_reported_by_running_executions_count(
    conn: Conn, world: World, quota: Quota
) -> None:
    execution_id = new_execution(conn, world, "running")
    set_limit(conn, quota.client_id, 100)
    with acting(conn, SERVICE):
        repo(conn).report_progress(
            execution_id=execution_id, tokens_used=100, client_id=quota.client_id
        )
    with pytest.raises(QuotaExceeded):
        start_as_member(conn, world)


# ---------------------------------------------------------------------------- concurrency


@dataclass
class Tenant:
    client_id: uuid.UUID
    agent_id: uuid.UUID
    member: uuid.UUID


@pytest.fixture
def committed_tenant(db_url: str) -> Iterator[Tenant]:
    """A committed tenant of its own (concurrency needs several connections), removed after."""
    with psycopg.connect(db_url) as c:
        row = c.execute(
            "insert into public.clients (name) values ('Concurrent') returning id"
        ).fetchone()
        assert row is not None
        client_id = row[0]
        member = add_auth_user(
            c, email=f"m-{uuid.uuid4().hex[:8]}@c.example", client_id=client_id, role="member"
        )
        row = c.execute(
            "insert into public.agents (client_id, name) values (%s, 'agent') returning id",
            (client_id,),
        ).fetchone()
        assert row is not None
        tenant = Tenant(client_id, row[0], member)
    yield tenant
    with psycopg.connect(db_url) as c:
        c.execute("delete from public.clients where id = %s", (tenant.client_id,))
        c.execute("delete from auth.users where id = %s", (tenant.member,))


def test_concurrent_starts_below_the_limit_do_not_wait_for_each_other(
    db_url: str, committed_tenant: Tenant
) -> None:
    t = committed_tenant
    with psycopg.connect(db_url) as c:
        add_usage(c, t.client_id, t.agent_id, 99, month_start(c))
        set_limit(c, t.client_id, 100)
    with psycopg.connect(db_url) as c1, psycopg.connect(db_url) as c2:
        c2.execute("set lock_timeout = '2s'")
        with act_as(c1, user_claims(t.member)):
            first = repo(c1).start(agent_id=t.agent_id)  # open, holding its lock
            with act_as(c2, user_claims(t.member)):
                second = repo(c2).start(agent_id=t.agent_id)  # no 55P03: shared lock
        c1.commit()
        c2.commit()
    assert first.id != second.id


def test_concurrent_starts_at_the_limit_are_all_refused(
    db_url: str, committed_tenant: Tenant
) -> None:
    t = committed_tenant
    with psycopg.connect(db_url) as c:
        add_usage(c, t.client_id, t.agent_id, 100, month_start(c))
        set_limit(c, t.client_id, 100)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def starter() -> None:
        with psycopg.connect(db_url) as c:
            barrier.wait()
            try:
                with act_as(c, user_claims(t.member)):
                    repo(c).start(agent_id=t.agent_id)
                outcomes.append("started")
            except RenumDBError as exc:
                outcomes.append(str(exc.sqlstate))

    threads = [threading.Thread(target=starter) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert outcomes == ["RNE05"] * 4
    with psycopg.connect(db_url) as c:
        assert count_executions(c, t.client_id) == 1


def test_a_start_waits_for_a_concurrent_limit_change_and_obeys_it(
    db_url: str, committed_tenant: Tenant
) -> None:
    """The client row is locked while checking: a start cannot slip in under the old limit
    while an admin's change is uncommitted; it waits and then reads the new limit."""
    t = committed_tenant
    with psycopg.connect(db_url) as c:
        add_usage(c, t.client_id, t.agent_id, 50, month_start(c))
        set_limit(c, t.client_id, 100)
    outcome: list[str] = []
    with psycopg.connect(db_url) as admin:
        set_limit(admin, t.client_id, 50)  # uncommitted: holds the client row

        def starter() -> None:
            with psycopg.connect(db_url) as c:
                try:
                    with act_as(c, user_claims(t.member)):
                        repo(c).start(agent_id=t.agent_id)
                    outcome.append("started")
                except RenumDBError as exc:
                    outcome.append(str(exc.sqlstate))

        th = threading.Thread(target=starter)
        th.start()
        with psycopg.connect(db_url, autocommit=True) as probe:
            waiting = False
            for _ in range(100):
                row = probe.execute(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and wait_event_type = 'Lock'"
                ).fetchone()
                if row and row[0] > 0:
                    waiting = True
                    break
                threading.Event().wait(0.05)
        assert waiting, "the start did not wait for the client row"
        assert outcome == []
        admin.commit()
    th.join(30)
    assert outcome == ["RNE05"]


# ---------------------------------------------------------------------------- accounting


def test_token_usage_is_accounted_per_client_agent_and_month(
    conn: Conn, world: World, quota: Quota
) -> None:
    a1, a2 = world.a.rows["agents"]
    this_month = quota.month_start.date()
    last_month = (quota.month_start - timedelta(days=1)).replace(day=1).date()
    add_usage(conn, quota.client_id, a1, 10, quota.month_start)
    add_usage(conn, quota.client_id, a1, 5, quota.month_start + timedelta(days=3))
    add_usage(conn, quota.client_id, a2, 7, quota.month_start)
    add_usage(conn, quota.client_id, a1, 100, quota.month_start - timedelta(microseconds=1))
    with acting(conn, world.claims("viewer")):
        r = repo(conn)
        per_agent = r.agent_monthly_token_usage(month=this_month)
        per_client = r.client_monthly_token_usage()
    seeded = 2  # the world's two pending executions of tenant A, 0 tokens
    assert sorted(per_agent, key=lambda u: u.tokens_used) == [
        AgentMonthlyTokenUsage(quota.client_id, a2, this_month, 2, 7),
        AgentMonthlyTokenUsage(quota.client_id, a1, this_month, 3, 15),
    ]
    assert per_client == [
        ClientMonthlyTokenUsage(quota.client_id, last_month, 1, 100),
        ClientMonthlyTokenUsage(quota.client_id, this_month, 3 + seeded, 22),
    ]


@pytest.mark.parametrize("view", ["agent_monthly_token_usage", "client_monthly_token_usage"])
def test_another_tenant_sees_nothing_through_the_usage_views(
    conn: Conn, world: World, quota: Quota, view: str
) -> None:
    add_usage(conn, quota.client_id, quota.agent_id, 10, quota.month_start)
    query = sql.SQL("select client_id from public.{}").format(sql.Identifier(view))
    with acting(conn, world.claims("other")):
        seen_by_other = {r[0] for r in conn.execute(query)}
    with acting(conn, world.claims("nobody")):
        seen_by_nobody = {r[0] for r in conn.execute(query)}
    with acting(conn, world.claims("viewer")):
        seen_by_viewer = {r[0] for r in conn.execute(query)}
    with acting(conn, SERVICE):
        seen_by_service = {r[0] for r in conn.execute(query)}
    assert quota.client_id not in seen_by_other
    assert seen_by_other <= {world.b.client_id}
    assert seen_by_nobody == set()
    assert seen_by_viewer == {quota.client_id}
    assert {world.a.client_id, world.b.client_id} <= seen_by_service
    with pytest.raises(PermissionDenied), acting(conn, None):
        conn.execute(query)


def test_every_view_in_public_is_security_invoker_and_closed_to_anon(conn: Conn) -> None:
    rows = conn.execute(
        "select c.relname, coalesce('security_invoker=true' = any(c.reloptions), false), "
        "has_table_privilege('anon', c.oid, 'select') "
        "from pg_class as c where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'"
    ).fetchall()
    assert rows, "no view in public: the check would be vacuous"
    assert [r for r in rows if not r[1] or r[2]] == []


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("RNE01", IllegalTransition),
        ("RNE02", IllegalTransition),
        ("RNE03", IllegalTransition),
        ("RNE04", AgentNotActive),
        ("RNE05", QuotaExceeded),
        ("RNE06", InvalidInput),
    ],
)
def test_workflow_sqlstates_map_to_their_exceptions(code: str, cls: type[RenumDBError]) -> None:
    assert for_sqlstate(code) is cls


# ---------------------------------------------------------------------------- actor matrix

# Every function of schema public (what browsers may call) and of schema backend (the worker's),
# for tests/test_function_catalog.py. The backend passes the client it acts for.
EXPOSED_FUNCTIONS = {
    "start_agent_execution": "select status from public.start_agent_execution(%(agent)s)",
    "cancel_agent_execution": "select status from public.cancel_agent_execution(%(e)s)",
}
BACKEND_FUNCTIONS = {
    "start_agent_execution": "select status from backend.start_agent_execution(%(agent)s, "
    "client_id => %(c)s)",
    "report_agent_execution_progress": "select status from "
    "backend.report_agent_execution_progress(%(e)s, client_id => %(c)s)",
    "complete_agent_execution": "select status from backend.complete_agent_execution(%(e)s, "
    "client_id => %(c)s)",
    "fail_agent_execution": "select status from backend.fail_agent_execution(%(e)s, 'boom', "
    "client_id => %(c)s)",
    "cancel_agent_execution": "select status from backend.cancel_agent_execution(%(e)s, "
    "client_id => %(c)s)",
}

RESULT = {
    "start_agent_execution": "pending",
    "report_agent_execution_progress": "running",
    "complete_agent_execution": "completed",
    "fail_agent_execution": "failed",
    "cancel_agent_execution": "cancelled",
}
#                         anon  other  viewer  member  admin  service
MATRIX: dict[str, tuple[str, ...]] = {
    "public.start_agent_execution": ("P", "N", "P", "ok", "ok", "P"),
    "public.cancel_agent_execution": ("P", "N", "P", "ok", "ok", "P"),
    "backend.start_agent_execution": ("P", "P", "P", "P", "P", "ok"),
    "backend.report_agent_execution_progress": ("P", "P", "P", "P", "P", "ok"),
    "backend.complete_agent_execution": ("P", "P", "P", "P", "P", "ok"),
    "backend.fail_agent_execution": ("P", "P", "P", "P", "P", "ok"),
    "backend.cancel_agent_execution": ("P", "P", "P", "P", "P", "ok"),
}
ACTOR_ORDER = ("anon", "other", "viewer", "member", "admin", "service")


@pytest.mark.parametrize("function", sorted(MATRIX))
@pytest.mark.parametrize("actor", [*ACTOR_ORDER, "custom"])
def test_exposed_and_backend_functions_by_actor(
    conn: Conn, world: World, function: str, actor: str
) -> None:
    """A's member started a running execution; each actor calls each function on it. Browsers
    reach schema public only; the backend reaches schema backend only, naming tenant A. `custom`
    is A's member through a custom API role: exactly a member, never the backend."""
    execution_id = new_execution(conn, world, "running")
    before = snapshot(conn, execution_id)
    schema, name = function.split(".")
    query = (EXPOSED_FUNCTIONS if schema == "public" else BACKEND_FUNCTIONS)[name]
    params = {"agent": world.a.rows["agents"][0], "e": execution_id, "c": world.a.client_id}
    expected = MATRIX[function][ACTOR_ORDER.index(column_of(actor))]
    claims = claims_for(conn, world, actor)
    try:
        with acting(conn, claims):
            row = conn.execute(query, params).fetchone()
        outcome = row[0] if row else None
    except RenumDBError as exc:
        outcome = type(exc).__name__
    if expected == "ok":
        assert outcome == RESULT[name]
        if name == "start_agent_execution":
            started = conn.execute(
                "select client_id from public.agent_executions where id <> %s "
                "order by created_at desc limit 1",
                (execution_id,),
            ).fetchone()
            assert started == (world.a.client_id,)
    else:
        assert outcome == {"P": "PermissionDenied", "N": "NotFound"}[expected]
        assert snapshot(conn, execution_id) == before


def test_the_usage_views_by_actor(conn: Conn, world: World) -> None:
    """Views are not functions, but get the same actor matrix (tenant A's rows seen)."""
    seen: dict[str, object] = {}
    for actor in ACTOR_ORDER:
        try:
            with acting(conn, world.claims(actor)):
                row = conn.execute(
                    "select count(*) from public.client_monthly_token_usage where client_id = %s",
                    (world.a.client_id,),
                ).fetchone()
            seen[actor] = row[0] if row else None
        except RenumDBError as exc:
            seen[actor] = type(exc).__name__
    assert seen == {
        "anon": "PermissionDenied",
        "other": 0,
        "viewer": 1,
        "member": 1,
        "admin": 1,
        "service": 1,
    }


def test_the_repository_rows_are_dataclasses(conn: Conn, world: World) -> None:
    with acting(conn, world.claims("member")):
        row = repo(conn).start(agent_id=world.a.rows["agents"][0], input=[1, 2])
    assert isinstance(row, AgentExecution)
    assert row.input == [1, 2]
    assert isinstance(row.created_at, datetime)
