"""The investigation workflow (migration 0010, docs/investigations.md): status transitions,
progress, completion, timestamps, the question frozen after pending, owner-only access, the
column grants that keep owners from bypassing the functions, and the function x actor matrix.

Every test runs in the `conn` fixture's transaction (rolled back). Refused changes are checked
to write nothing by comparing the whole row before and after."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from renum_db.errors import (
    CheckViolation,
    InvalidInput,
    InvestigationDefinitionFrozen,
    InvestigationNotProcessing,
    InvestigationProgressRegression,
    InvestigationTransitionRefused,
    InvestigationWorkflowError,
    NotFound,
    PermissionDenied,
    RenumDBError,
    for_sqlstate,
    wrap_errors,
)
from renum_db.repositories import Investigation, InvestigationRepository
from tests.support import PRIVILEGE, World, acting, claims_for, classify, column_of

Conn = psycopg.Connection[Any]

STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
ALLOWED = {
    ("pending", "processing"),
    ("pending", "cancelled"),
    ("pending", "failed"),
    ("processing", "completed"),
    ("processing", "failed"),
    ("processing", "cancelled"),
}
ILLEGAL = sorted(
    (old, new) for old in STATUSES for new in STATUSES if old != new and (old, new) not in ALLOWED
)
# How the superuser (the workflow trigger applies to it too) brings a pending row to a status.
PATH = {
    "pending": [],
    "processing": ["processing"],
    "completed": ["processing", "completed"],
    "failed": ["failed"],
    "cancelled": ["cancelled"],
}


# --- helpers ------------------------------------------------------------------------------------


def create(conn: Conn, world: World, owner: str = "member", **kwargs: Any) -> uuid.UUID:
    """A new investigation created by `owner` through create_investigation."""
    with acting(conn, world.claims(owner)):
        inv = InvestigationRepository(conn).create(
            query=kwargs.pop("query", "Contratos acima de R$ 1 milhão em 2024"),
            data_source=kwargs.pop("data_source", "contracts"),
            **kwargs,
        )
    return inv.id


def snapshot(conn: Conn, inv_id: uuid.UUID) -> dict[str, Any]:
    """The whole row, read as the superuser."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from public.investigations where id = %s", (inv_id,)).fetchone()
    assert row is not None
    return row


def bring_to(conn: Conn, inv_id: uuid.UUID, status: str) -> None:
    for step in PATH[status]:
        conn.execute(
            "update public.investigations set status = %s,"
            " error = case when %s = 'failed' then 'setup' end where id = %s",
            (step, step, inv_id),
        )
    assert snapshot(conn, inv_id)["status"] == status


@contextmanager
def service(conn: Conn, world: World) -> Iterator[InvestigationRepository]:
    with acting(conn, world.claims("service")):
        yield InvestigationRepository(conn)


def refused(
    conn: Conn, claims: dict[str, Any] | None, query: str, params: tuple[Any, ...] = ()
) -> RenumDBError:
    """Run `query` as `claims`, expect a renum_db error, and return it."""
    with pytest.raises(RenumDBError) as info, acting(conn, claims):
        conn.execute(query, params)
    return info.value


def now(conn: Conn) -> Any:
    row = conn.execute("select now()").fetchone()
    assert row is not None
    return row[0]


# --- status transitions -------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), sorted(ALLOWED))
def test_an_allowed_transition_is_accepted_from_any_writer(
    conn: Conn, world: World, old: str, new: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, old)
    with acting(conn, world.claims("service")):
        assert (
            conn.execute(
                "update public.investigations set status = %s where id = %s", (new, inv)
            ).rowcount
            == 1
        )
    assert snapshot(conn, inv)["status"] == new


@pytest.mark.parametrize(("old", "new"), ILLEGAL)
def test_an_illegal_transition_raises_rni01_and_writes_nothing(
    conn: Conn, world: World, old: str, new: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, old)
    before = snapshot(conn, inv)
    err = refused(
        conn,
        world.claims("service"),
        "update public.investigations set status = %s where id = %s",
        (new, inv),
    )
    assert err.sqlstate == "RNI01"
    assert isinstance(err, InvestigationTransitionRefused)
    assert f"from {old} to {new}" in str(err)
    assert snapshot(conn, inv) == before


@pytest.mark.parametrize(("old", "new"), ILLEGAL)
def test_the_superuser_is_held_to_the_same_transitions(
    conn: Conn, world: World, old: str, new: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, old)
    with pytest.raises(psycopg.Error) as info, conn.transaction():
        conn.execute("update public.investigations set status = %s where id = %s", (new, inv))
    assert info.value.sqlstate == "RNI01"


def test_a_new_investigation_must_start_pending(conn: Conn, world: World) -> None:
    err = refused(
        conn,
        world.claims("service"),
        "insert into public.investigations (client_id, user_id, query, data_source, status) "
        "values (%s, %s, 'q', 'contracts', 'processing')",
        (world.a.client_id, world.a.users["member"]),
    )
    assert err.sqlstate == "RNI01"


@pytest.mark.parametrize(
    ("column", "value", "sqlstate"),
    [
        ("progress", 0.5, "RNI03"),
        ("current_phase", "analysis", "RNI03"),
        ("results", Jsonb([{"anomaly_id": 1}]), "RNI03"),
        ("summary", "done", "RNI03"),
        ("anomalies_found", 3, "RNI03"),
        ("error", "boom", "RNI05"),
    ],
)
def test_a_new_investigation_has_no_progress_results_or_error(
    conn: Conn, world: World, column: str, value: Any, sqlstate: str
) -> None:
    err = refused(
        conn,
        world.claims("service"),
        f"insert into public.investigations (client_id, user_id, query, data_source, {column}) "
        "values (%s, %s, 'q', 'contracts', %s)",
        (world.a.client_id, world.a.users["member"], value),
    )
    assert err.sqlstate == sqlstate


# --- the workflow functions by starting status --------------------------------------------------

# function -> (statuses it accepts, resulting status, code for the others)
FUNCTIONS: dict[str, tuple[set[str], str, str]] = {
    "start": ({"pending"}, "processing", "RNI01"),
    "report_progress": ({"processing"}, "processing", "RNI03"),
    "complete": ({"processing"}, "completed", "RNI01"),
    "fail": ({"pending", "processing"}, "failed", "RNI01"),
    "cancel": ({"pending", "processing"}, "cancelled", "RNI01"),
}


def call(repo: InvestigationRepository, function: str, inv: uuid.UUID) -> Investigation:
    if function == "report_progress":
        return repo.report_progress(inv, progress=0.5, current_phase="analysis")
    if function == "complete":
        return repo.complete(inv, summary="3 contratos suspeitos", confidence_score=0.8)
    if function == "fail":
        return repo.fail(inv, error="timeout talking to the data source")
    if function == "cancel":
        # the owner cancels through public, the backend (service_role) through backend
        role = repo.conn.execute("select current_user").fetchone()
        return repo.cancel(inv, backend=role == ("service_role",))
    method = getattr(repo, function)
    result: Investigation = method(inv)
    return result


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_function_moves_only_from_the_statuses_it_accepts(
    conn: Conn, world: World, function: str, old: str
) -> None:
    accepts, result, code = FUNCTIONS[function]
    inv = create(conn, world)
    bring_to(conn, inv, old)
    before = snapshot(conn, inv)
    actor = "member" if function == "cancel" else "service"  # the owner cancels
    if old in accepts:
        with acting(conn, world.claims(actor)):
            row = call(InvestigationRepository(conn), function, inv)
        assert row.status == result
        assert snapshot(conn, inv)["status"] == result
    else:
        with pytest.raises(RenumDBError) as info, acting(conn, world.claims(actor)):
            call(InvestigationRepository(conn), function, inv)
        assert info.value.sqlstate == code
        assert snapshot(conn, inv) == before


@pytest.mark.parametrize("function", ["start", "report_progress", "complete", "fail", "cancel"])
def test_an_unknown_investigation_is_not_found(conn: Conn, world: World, function: str) -> None:
    with pytest.raises(NotFound) as info, service(conn, world) as repo:
        call(repo, function, uuid.uuid4())
    assert info.value.sqlstate == "PT404"


def test_the_same_investigation_cannot_be_started_twice(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
    with pytest.raises(InvestigationTransitionRefused), service(conn, world) as repo:
        repo.start(inv)


def test_a_cancelled_investigation_refuses_further_progress(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
    with acting(conn, world.claims("member")):
        InvestigationRepository(conn).cancel(inv)
    with pytest.raises(InvestigationNotProcessing) as info, service(conn, world) as repo:
        repo.report_progress(inv, progress=0.9)
    assert "cancelled" in str(info.value)


def test_failing_requires_an_error_text(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with pytest.raises(InvalidInput) as info, service(conn, world):
        conn.execute("select backend.fail_investigation(%s, null)", (inv,))
    assert info.value.sqlstate == "22004"
    with pytest.raises(InvalidInput) as info, service(conn, world) as repo:
        repo.fail(inv, error="   ")
    assert info.value.sqlstate == "22023"
    with pytest.raises(CheckViolation), service(conn, world) as repo:
        repo.fail(inv, error="x" * 10001)
    assert snapshot(conn, inv)["status"] == "pending"


def test_a_failed_investigation_keeps_its_error(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
        row = repo.fail(inv, error="the data source answered 503")
    assert (row.status, row.error) == ("failed", "the data source answered 503")
    assert row.is_final


@pytest.mark.parametrize("status", ["processing", "completed", "cancelled"])
def test_error_is_written_only_when_the_investigation_fails(
    conn: Conn, world: World, status: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, status)
    before = snapshot(conn, inv)
    err = refused(
        conn,
        world.claims("service"),
        "update public.investigations set error = 'boom' where id = %s",
        (inv,),
    )
    assert err.sqlstate == "RNI05"
    assert type(err) is InvestigationWorkflowError
    assert snapshot(conn, inv) == before


def test_a_cancel_wins_over_a_later_completion(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
    with acting(conn, world.claims("member")):
        InvestigationRepository(conn).cancel(inv)
    with pytest.raises(InvestigationTransitionRefused), service(conn, world) as repo:
        repo.complete(inv, summary="too late")
    assert snapshot(conn, inv)["status"] == "cancelled"


def test_the_owner_of_a_suspended_client_cannot_cancel(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    conn.execute(
        "update public.clients set status = 'suspended' where id = %s", (world.a.client_id,)
    )
    with pytest.raises(NotFound), acting(conn, world.claims("member")):
        InvestigationRepository(conn).cancel(inv)
    assert snapshot(conn, inv)["status"] == "pending"


def test_two_workers_starting_at_once_cannot_both_win(db_url: str, world: World) -> None:
    """The functions lock the row before reading its status: the second start waits for the
    first to commit, then sees processing and fails."""
    with psycopg.connect(db_url) as setup:
        with acting(setup, world.claims("member")):
            inv = InvestigationRepository(setup).create(query="q", data_source="contracts").id
        setup.commit()
    outcome: list[object] = []
    with psycopg.connect(db_url) as first, psycopg.connect(db_url) as second:
        with acting(first, world.claims("service")):
            InvestigationRepository(first).start(inv)

            def start_second() -> None:
                try:
                    with acting(second, world.claims("service")):
                        InvestigationRepository(second).start(inv)
                    outcome.append("started")
                except RenumDBError as exc:
                    outcome.append(exc.sqlstate)

            thread = threading.Thread(target=start_second)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive(), "the second start should wait for the row lock"
        first.commit()
        thread.join(10)
        second.rollback()
    assert outcome == ["RNI01"]
    with psycopg.connect(db_url) as check:
        check.execute("delete from public.investigations where id = %s", (inv,))
        check.commit()


# --- progress -----------------------------------------------------------------------------------


def test_progress_increases_and_may_repeat(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
        repo.report_progress(inv, progress=0.2, current_phase="data_retrieval")
        repo.report_progress(inv, progress=0.2)
        row = repo.report_progress(inv, progress=0.6, current_phase="analysis")
    assert (row.progress, row.current_phase) == (0.6, "analysis")


def test_progress_never_decreases_through_the_function(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
        repo.report_progress(inv, progress=0.5)
    before = snapshot(conn, inv)
    with pytest.raises(InvestigationProgressRegression) as info, service(conn, world) as repo:
        repo.report_progress(inv, progress=0.4, current_phase="rewind", anomalies_found=9)
    assert info.value.sqlstate == "RNI02"
    assert snapshot(conn, inv) == before


@pytest.mark.parametrize("new_status", ["processing", "failed", "cancelled"])
def test_progress_never_decreases_through_a_direct_update(
    conn: Conn, world: World, new_status: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, "processing")
    conn.execute("update public.investigations set progress = 0.7 where id = %s", (inv,))
    before = snapshot(conn, inv)
    err = refused(
        conn,
        world.claims("service"),
        "update public.investigations set progress = 0.1, status = %s,"
        " error = case when %s = 'failed' then 'x' end where id = %s",
        (new_status, new_status, inv),
    )
    assert err.sqlstate == "RNI02"
    assert snapshot(conn, inv) == before


@pytest.mark.parametrize(
    ("progress", "sqlstate"),
    [(1.5, "23514"), (-0.1, "RNI02")],  # below 0 is a decrease from 0, caught first
)
def test_progress_stays_between_zero_and_one(
    conn: Conn, world: World, progress: float, sqlstate: str
) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
    with pytest.raises(RenumDBError) as info, service(conn, world) as repo:
        repo.report_progress(inv, progress=progress)
    assert info.value.sqlstate == sqlstate
    assert snapshot(conn, inv)["progress"] == 0


def test_progress_is_required(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with pytest.raises(InvalidInput) as info, service(conn, world):
        conn.execute("select backend.report_investigation_progress(%s, null)", (inv,))
    assert info.value.sqlstate == "22004"


@pytest.mark.parametrize("status", ["pending", "completed", "failed", "cancelled"])
def test_progress_and_results_change_only_while_processing(
    conn: Conn, world: World, status: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, status)
    before = snapshot(conn, inv)
    err = refused(
        conn,
        world.claims("service"),
        "update public.investigations set results = '[{\"anomaly_id\": 1}]' where id = %s",
        (inv,),
    )
    assert err.sqlstate == "RNI03"
    assert snapshot(conn, inv) == before


def test_partial_results_replace_the_stored_ones_and_null_keeps_them(
    conn: Conn, world: World
) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
        repo.report_progress(
            inv,
            progress=0.3,
            results=[{"anomaly_id": "a1"}],
            anomalies_found=1,
            total_records_analyzed=1000,
        )
        repo.report_progress(
            inv, progress=0.5, results=[{"anomaly_id": "a1"}, {"anomaly_id": "a2"}]
        )
        row = repo.report_progress(inv, progress=0.6)
    assert row.results == [{"anomaly_id": "a1"}, {"anomaly_id": "a2"}]
    assert (row.anomalies_found, row.total_records_analyzed) == (1, 1000)


# --- completion ---------------------------------------------------------------------------------


def test_completion_sets_progress_to_one(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
        repo.report_progress(inv, progress=0.4)
        row = repo.complete(inv, summary="nada suspeito", confidence_score=0.95)
    assert (row.status, row.progress, row.summary, row.confidence_score) == (
        "completed",
        1.0,
        "nada suspeito",
        0.95,
    )


def test_completion_by_a_direct_update_also_sets_progress_to_one(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, "processing")
    with acting(conn, world.claims("service")):
        conn.execute(
            "update public.investigations set status = 'completed', progress = 0.3 where id = %s",
            (inv,),
        )
    assert snapshot(conn, inv)["progress"] == 1.0


@pytest.mark.parametrize("function", ["fail", "cancel"])
def test_ending_otherwise_keeps_the_progress_reached(
    conn: Conn, world: World, function: str
) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
        repo.report_progress(inv, progress=0.4)
        row = call(repo, function, inv)
    assert row.progress == 0.4


def test_a_confidence_score_outside_zero_and_one_is_refused(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        repo.start(inv)
    with pytest.raises(CheckViolation), service(conn, world) as repo:
        repo.complete(inv, confidence_score=1.2)
    assert snapshot(conn, inv)["status"] == "processing"


# --- timestamps ---------------------------------------------------------------------------------


def test_the_database_stamps_started_and_completed(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    created = snapshot(conn, inv)
    assert (created["started_at"], created["completed_at"]) == (None, None)
    with service(conn, world) as repo:
        started = repo.start(inv)
        completed = repo.complete(inv)
    assert started.started_at == now(conn)
    assert started.completed_at is None
    assert completed.started_at == started.started_at
    assert completed.completed_at == now(conn)


@pytest.mark.parametrize("function", ["fail", "cancel"])
def test_ending_before_starting_stamps_only_completed_at(
    conn: Conn, world: World, function: str
) -> None:
    inv = create(conn, world)
    with service(conn, world) as repo:
        row = call(repo, function, inv)
    assert row.started_at is None
    assert row.completed_at == now(conn)


@pytest.mark.parametrize("status", STATUSES)
def test_written_timestamps_are_replaced_by_the_database(
    conn: Conn, world: World, status: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, status)
    before = snapshot(conn, inv)
    with acting(conn, world.claims("service")):
        conn.execute(
            "update public.investigations set started_at = '2000-01-01', "
            "completed_at = '2000-01-02' where id = %s",
            (inv,),
        )
    after = snapshot(conn, inv)
    assert (after["started_at"], after["completed_at"]) == (
        before["started_at"],
        before["completed_at"],
    )


def test_an_inserted_row_gets_no_timestamps_from_the_writer(conn: Conn, world: World) -> None:
    with acting(conn, world.claims("service")):
        row = conn.execute(
            "insert into public.investigations (client_id, user_id, query, data_source, "
            "started_at, completed_at) values (%s, %s, 'q', 'contracts', now(), now()) "
            "returning started_at, completed_at",
            (world.a.client_id, world.a.users["member"]),
        ).fetchone()
    assert row == (None, None)


# --- the question is frozen once the investigation leaves pending ------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("query", "outra pergunta"),
        ("data_source", "expenses"),
        ("filters", Jsonb({"year": 2023})),
        ("anomaly_types", Jsonb(["price"])),
    ],
)
@pytest.mark.parametrize("actor", ["member", "service"])
def test_the_question_cannot_change_after_pending(
    conn: Conn, world: World, column: str, value: Any, actor: str
) -> None:
    inv = create(conn, world)
    bring_to(conn, inv, "processing")
    before = snapshot(conn, inv)
    err = refused(
        conn,
        world.claims(actor),
        f"update public.investigations set {column} = %s where id = %s",
        (value, inv),
    )
    assert isinstance(err, InvestigationDefinitionFrozen)
    assert err.sqlstate == "RNI04"
    assert snapshot(conn, inv) == before


def test_the_owner_may_edit_the_question_while_pending_and_the_session_at_any_time(
    conn: Conn, world: World
) -> None:
    inv = create(conn, world)
    with acting(conn, world.claims("member")):
        conn.execute(
            "update public.investigations set query = 'nova', filters = '{\"year\": 2024}', "
            "session_id = 's1' where id = %s",
            (inv,),
        )
    bring_to(conn, inv, "completed")
    with acting(conn, world.claims("member")):
        conn.execute("update public.investigations set session_id = 's2' where id = %s", (inv,))
    row = snapshot(conn, inv)
    assert (row["query"], row["filters"], row["session_id"]) == ("nova", {"year": 2024}, "s2")


# --- owners cannot bypass the workflow ----------------------------------------------------------

OWNER_UPDATABLE = {"session_id", "query", "data_source", "filters", "anomaly_types"}


def test_owners_may_update_only_the_session_and_the_question(conn: Conn) -> None:
    rows = conn.execute(
        "select a.attname from pg_catalog.pg_attribute as a "
        "where a.attrelid = 'public.investigations'::regclass and a.attnum > 0 "
        "and not a.attisdropped and pg_catalog.has_column_privilege("
        "'authenticated', a.attrelid, a.attnum, 'UPDATE')"
    ).fetchall()
    assert {r[0] for r in rows} == OWNER_UPDATABLE


WORKFLOW_COLUMNS = [
    "status",
    "progress",
    "current_phase",
    "results",
    "summary",
    "confidence_score",
    "anomalies_found",
    "total_records_analyzed",
    "error",
    "started_at",
    "completed_at",
    "user_id",
    "client_id",
    "created_at",
    "updated_at",
]


@pytest.mark.parametrize("column", WORKFLOW_COLUMNS)
def test_owners_cannot_patch_workflow_columns_directly(
    conn: Conn, world: World, column: str
) -> None:
    inv = create(conn, world)
    before = snapshot(conn, inv)
    err = refused(
        conn,
        world.claims("member"),
        f"update public.investigations set {column} = {column} where id = %s",
        (inv,),
    )
    assert classify(err) == PRIVILEGE
    assert snapshot(conn, inv) == before


@pytest.mark.parametrize(
    ("column", "value"), [("status", "completed"), ("progress", 1), ("error", "x")]
)
def test_owners_cannot_insert_workflow_columns(
    conn: Conn, world: World, column: str, value: Any
) -> None:
    err = refused(
        conn,
        world.claims("member"),
        f"insert into public.investigations (query, data_source, {column}) "
        "values ('q', 'contracts', %s)",
        (value,),
    )
    assert classify(err) == PRIVILEGE


def test_owners_cannot_call_the_worker_functions(conn: Conn, world: World) -> None:
    inv = create(conn, world)
    for function in ("start", "report_progress", "complete", "fail"):
        with pytest.raises(PermissionDenied), acting(conn, world.claims("member")):
            call(InvestigationRepository(conn), function, inv)
    assert snapshot(conn, inv)["status"] == "pending"


def test_the_backend_cannot_create_through_the_owner_function(conn: Conn, world: World) -> None:
    with pytest.raises(PermissionDenied), service(conn, world) as repo:
        repo.create(query="q", data_source="contracts")


# --- owner-only visibility ----------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["viewer", "admin", "other", "nobody"])
def test_nobody_but_the_owner_sees_or_changes_an_investigation(
    conn: Conn, world: World, actor: str
) -> None:
    inv = create(conn, world, owner="member")
    before = snapshot(conn, inv)
    with acting(conn, world.claims(actor)):
        repo = InvestigationRepository(conn)
        assert repo.get(inv) is None
        assert (
            conn.execute(
                "update public.investigations set session_id = 'x' where id = %s", (inv,)
            ).rowcount
            == 0
        )
        assert conn.execute("delete from public.investigations where id = %s", (inv,)).rowcount == 0
    with pytest.raises(NotFound), acting(conn, world.claims(actor)):
        InvestigationRepository(conn).cancel(inv)
    assert snapshot(conn, inv) == before


def test_the_owner_sees_the_workers_progress(conn: Conn, world: World) -> None:
    inv = create(conn, world, owner="viewer", filters={"year": 2024}, anomaly_types=["price"])
    with service(conn, world) as repo:
        repo.start(inv)
        repo.report_progress(inv, progress=0.25, current_phase="analysis")
    with acting(conn, world.claims("viewer")):
        row = InvestigationRepository(conn).get(inv)
    assert row is not None
    assert (row.status, row.progress, row.current_phase) == ("processing", 0.25, "analysis")
    assert (row.filters, row.anomaly_types, row.user_id) == (
        {"year": 2024},
        ["price"],
        world.a.users["viewer"],
    )


def test_a_user_without_an_active_client_cannot_create(conn: Conn, world: World) -> None:
    with pytest.raises(PermissionDenied), acting(conn, world.claims("nobody")):
        InvestigationRepository(conn).create(query="q", data_source="contracts")


@pytest.mark.parametrize(
    ("kwargs", "constraint"),
    [
        ({"query": "  "}, "investigations_query_chk"),
        ({"data_source": ""}, "investigations_data_source_chk"),
    ],
)
def test_create_validates_its_input(
    conn: Conn, world: World, kwargs: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(CheckViolation) as info:
        create(conn, world, **kwargs)
    assert info.value.constraint == constraint


def test_create_refuses_filters_that_are_not_an_object(conn: Conn, world: World) -> None:
    with pytest.raises(CheckViolation) as info, acting(conn, world.claims("member")):
        conn.execute("select public.create_investigation('q', 'contracts', '[1]'::jsonb)")
    assert info.value.constraint == "investigations_filters_chk"


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("RNI01", InvestigationTransitionRefused),
        ("RNI02", InvestigationProgressRegression),
        ("RNI03", InvestigationNotProcessing),
        ("RNI04", InvestigationDefinitionFrozen),
        ("RNI05", InvestigationWorkflowError),
    ],
)
def test_the_workflow_sqlstates_map_to_workflow_errors(
    conn: Conn, sqlstate: str, expected: type[RenumDBError]
) -> None:
    assert for_sqlstate(sqlstate) is expected
    with pytest.raises(expected), wrap_errors(), conn.transaction():
        conn.execute(
            f"do $$ begin raise exception using errcode = '{sqlstate}', message = 'x'; end $$"
        )


# --- every new RPC x every actor (tests/test_function_catalog.py requires it) -------------------

EXPOSED_FUNCTIONS = {
    "create_investigation": "select status from public.create_investigation('q', 'contracts')",
    "cancel_investigation": "select status from public.cancel_investigation(%(own)s)",
}
BACKEND_FUNCTIONS = {
    "start_investigation": "select status from backend.start_investigation(%(pending)s)",
    "report_investigation_progress": "select status "
    "from backend.report_investigation_progress(%(processing)s, 0.5)",
    "complete_investigation": "select status "
    "from backend.complete_investigation(%(processing)s, 'ok', 0.9)",
    "fail_investigation": "select status from backend.fail_investigation(%(processing)s, 'boom')",
    "cancel_investigation": "select status from backend.cancel_investigation(%(own)s)",
}
WORKER_RESULT = {
    "start_investigation": "processing",
    "report_investigation_progress": "processing",
    "complete_investigation": "completed",
    "fail_investigation": "failed",
    "cancel_investigation": "cancelled",
}


def expected_outcome(function: str, actor: str) -> str:
    schema, name = function.split(".")
    if schema == "backend":  # no usage on schema backend but for service_role
        return WORKER_RESULT[name] if actor == "service" else "PermissionDenied"
    if actor in ("anon", "service"):
        return "PermissionDenied"  # browser functions: EXECUTE for authenticated only
    if name == "create_investigation":
        return "pending"
    return "NotFound" if actor == "other" else "cancelled"


FUNCTIONS_BY_ACTOR = sorted(
    [f"public.{name}" for name in EXPOSED_FUNCTIONS]
    + [f"backend.{name}" for name in BACKEND_FUNCTIONS]
)


@pytest.mark.parametrize("function", FUNCTIONS_BY_ACTOR)
@pytest.mark.parametrize(
    "actor", ["anon", "other", "viewer", "member", "admin", "service", "custom"]
)
def test_exposed_and_backend_functions_by_actor(
    conn: Conn, world: World, function: str, actor: str
) -> None:
    """`custom` is A's member through a custom API role: exactly a member, never the backend."""
    viewer_inv, member_inv, admin_inv = world.a.rows["investigations"]
    own = {"viewer": viewer_inv, "admin": admin_inv}.get(actor, member_inv)
    if actor == "other":
        own = admin_inv  # tenant A's admin's investigation, seen from tenant B
    processing = create(conn, world)
    bring_to(conn, processing, "processing")
    params = {"pending": member_inv, "processing": processing, "own": own}
    outcome: object
    claims = claims_for(conn, world, actor)
    try:
        with acting(conn, claims):
            schema, name = function.split(".")
            query = (EXPOSED_FUNCTIONS if schema == "public" else BACKEND_FUNCTIONS)[name]
            row = conn.execute(query, params).fetchone()
            outcome = row[0] if row else None
    except RenumDBError as exc:
        outcome = type(exc).__name__
    assert outcome == expected_outcome(function, column_of(actor))
