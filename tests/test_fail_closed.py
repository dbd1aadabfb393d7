"""Security that fails closed (issue 8): each test is named after the attack it stops.

- every role not known to be the backend is a user (custom PostgREST roles included);
- revoked users (banned, soft-deleted, suspended profile) lose all access at once;
- storage object names are validated as a whole, identically in SQL and in Python;
- degenerate query embeddings are refused and similarity is never NaN;
- finished executions stay finished whoever started them;
- concurrent cancel / complete / progress end in one legal state, decided by row locks;
- a knowledge base's language change re-parses its chunks.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from renum_db.db import act_as, user_claims
from renum_db.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RenumDBError,
)
from renum_db.storage import check_object_name
from tests.support import (
    CUSTOM_API_ROLE,
    REVOKED,
    RLS,
    Background,
    World,
    acting,
    add_auth_user,
    classify,
    revoke,
    wait_until_blocked,
)

Conn = psycopg.Connection[Any]
ROOT = Path(__file__).resolve().parent.parent
SERVICE: dict[str, Any] = {"role": "service_role"}
DIMS = 1536


def one(conn: Conn, query: str | sql.Composed, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def usage_of(conn: Conn, client_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select chunk_id, agent_id, usage_count from public.document_usage_stats "
        "where client_id = %s order by 1, 2",
        (client_id,),
    ).fetchall()


# ------------------------------------------------------------------ 1. one fail-closed rule


def custom(world: World) -> dict[str, Any]:
    """Tenant A's member, through the custom API role."""
    return user_claims(world.a.users["member"], role=CUSTOM_API_ROLE)


def test_a_custom_api_role_cannot_record_usage_in_another_tenant(conn: Conn, world: World) -> None:
    b = world.b
    before = usage_of(conn, b.client_id)
    for query in (
        "select backend.record_chunk_usage(%s, %s, null, %s)",
        "select private.record_chunk_usage(%s::uuid, %s::uuid, %s::uuid[])",
    ):
        params: tuple[Any, ...] = (b.rows["agents"][0], b.rows["document_chunks"], b.client_id)
        if query.startswith("select private"):
            params = (b.client_id, b.rows["agents"][0], b.rows["document_chunks"])
        with pytest.raises(PermissionDenied), acting(conn, custom(world)):
            conn.execute(query, params)
    # The user's own entry point has no client_id: it acts in A, where B's agent does not exist.
    with pytest.raises(NotFound), acting(conn, custom(world)):
        conn.execute(
            "select public.record_chunk_usage(%s, %s)",
            (b.rows["agents"][0], b.rows["document_chunks"]),
        )
    assert usage_of(conn, b.client_id) == before


def test_a_custom_api_role_cannot_cancel_another_tenants_investigation(
    conn: Conn, world: World
) -> None:
    target = world.b.rows["investigations"][0]
    with pytest.raises(NotFound), acting(conn, custom(world)):
        conn.execute("select public.cancel_investigation(%s)", (target,))
    assert one(conn, "select status from public.investigations where id = %s", target) == "pending"


def test_a_custom_api_role_learns_nothing_of_another_tenants_quota(
    conn: Conn, world: World
) -> None:
    """B has used its quota; inserting an execution for B's agent must fail on B's isolation
    (RLS), never with RNE05 naming B's usage."""
    b = world.b
    conn.execute(
        "update public.clients set settings = '{\"monthly_token_limit\": 0}' where id = %s",
        (b.client_id,),
    )
    with pytest.raises(RenumDBError) as info, acting(conn, custom(world)):
        conn.execute(
            "insert into public.agent_executions (client_id, agent_id, input) "
            "values (%s, %s, '{}')",
            (b.client_id, b.rows["agents"][0]),
        )
    assert classify(info.value) == RLS
    assert str(b.client_id) not in str(info.value)
    with pytest.raises(PermissionDenied), acting(conn, custom(world)):
        conn.execute(
            "select backend.start_agent_execution(%s, client_id => %s)",
            (b.rows["agents"][0], b.client_id),
        )
    with pytest.raises(NotFound), acting(conn, custom(world)):
        conn.execute("select public.start_agent_execution(%s)", (b.rows["agents"][0],))


@pytest.mark.parametrize(
    "function",
    ["complete_agent_execution", "fail_agent_execution", "report_agent_execution_progress"],
)
def test_a_custom_api_role_cannot_call_the_worker_rpcs(
    conn: Conn, world: World, function: str
) -> None:
    execution = world.a.rows["agent_executions"][0]
    args = "%s, 'boom'" if function == "fail_agent_execution" else "%s"
    query = sql.SQL("select backend.{}(" + args + ", client_id => %s)").format(
        sql.Identifier(function)
    )
    with pytest.raises(PermissionDenied), acting(conn, custom(world)):
        conn.execute(query, (execution, world.a.client_id))


def is_backend(conn: Conn) -> bool:
    return bool(one(conn, "select private.request_is_backend()"))


def test_only_roles_that_bypass_rls_are_the_backend(conn: Conn, world: World) -> None:
    seen: dict[str, object] = {}
    for name, claims in {
        "anon": None,
        "authenticated": user_claims(world.a.users["admin"]),
        "custom": custom(world),
        "service_role": SERVICE,
    }.items():
        try:
            with acting(conn, claims):
                seen[name] = is_backend(conn)
        except PermissionDenied:
            seen[name] = "no usage on schema private"
    seen["login role"] = is_backend(conn)  # the test's own superuser connection
    assert seen == {
        "anon": "no usage on schema private",
        "authenticated": False,
        "custom": False,
        "service_role": True,
        "login role": True,
    }


def test_a_role_that_inherits_service_role_grants_is_still_a_user(conn: Conn) -> None:
    """BYPASSRLS is an attribute, not inherited: such a role cannot bypass RLS itself, so it is
    not trusted to name a client either."""
    role = f"renum_heir_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("create role {} nologin inherit").format(sql.Identifier(role)))
    conn.execute(sql.SQL("grant service_role to {}").format(sql.Identifier(role)))
    conn.execute(sql.SQL("grant {} to current_user").format(sql.Identifier(role)))  # to set it
    conn.execute("savepoint s")
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    try:
        assert is_backend(conn) is False
        for query in (
            "select private.request_client_id(gen_random_uuid())",
            "select private.backend_client_id(gen_random_uuid())",
        ):
            conn.execute("savepoint q")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
            conn.execute("rollback to savepoint q")
    finally:
        conn.execute("rollback to savepoint s")


ROLE_NAME_TESTS = re.compile(
    r"current_user\s+(?:not\s+)?in\b"
    r"|current_user\s*(?:=|<>|!=)"
    r"|current_setting\(\s*'role'"
    r"|in\s*\(\s*'anon'"
    r"|(?:=|<>|!=)\s*'(?:anon|authenticated|service_role)'",
    re.I,
)
# The one place that reads the request's role, to look up its capabilities (never its name).
ROLE_READERS = {"private.request_is_backend", "private.request_client_id"}


def test_nothing_in_sql_decides_trust_by_comparing_a_role_name(conn: Conn) -> None:
    offenders = []
    for path in sorted((ROOT / "sql").glob("functions/*.sql")) + sorted(
        (ROOT / "sql").glob("policies/*.j2")
    ):
        body = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        if path.stem not in ROLE_READERS and ROLE_NAME_TESTS.search(body):
            offenders.append(path.name)
    rows = conn.execute(
        "select n.nspname || '.' || p.proname, p.prosrc from pg_catalog.pg_proc as p "
        "join pg_catalog.pg_namespace as n on n.oid = p.pronamespace "
        "where n.nspname in ('public', 'private')"
    ).fetchall()
    offenders += [
        name for name, src in rows if name not in ROLE_READERS and ROLE_NAME_TESTS.search(src)
    ]
    assert len(rows) > 20
    assert offenders == []


def test_the_role_name_detector_flags_the_old_rule() -> None:
    for bad in (
        "if current_user in ('anon', 'authenticated') then",
        "request_role not in ('anon', 'authenticated')",
        "pg_catalog.current_setting('role', true)",
        "where current_user = 'authenticated'",
    ):
        assert ROLE_NAME_TESTS.search(bad), bad


# ------------------------------------------------------------------------- 6. revocation


def admin_of_a(conn: Conn, world: World) -> uuid.UUID:
    return add_auth_user(
        conn, email=f"{uuid.uuid4()}@a.example", client_id=world.a.client_id, role="admin"
    )


def what_they_get(conn: Conn, world: World, uid: uuid.UUID) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with acting(conn, user_claims(uid)):
        out["knowledge_bases"] = one(conn, "select count(*) from public.knowledge_bases")
        out["own profile"] = one(conn, "select count(*) from public.users where id = %s", uid)
        out["client"] = one(conn, "select count(*) from public.clients")
        out["files"] = one(
            conn,
            "select count(*) from storage.objects where bucket_id = 'documents' and name = %s",
            f"{world.a.client_id}/{uuid.UUID(int=1)}/a.txt",
        )
    try:
        with acting(conn, user_claims(uid)):
            out["rpc"] = one(conn, "select count(*) from public.most_used_documents()")
    except RenumDBError as exc:
        out["rpc"] = type(exc).__name__
    return out


@pytest.mark.parametrize("how", REVOKED)
def test_a_revoked_user_loses_all_access_at_once_whatever_their_jwt_says(
    conn: Conn, world: World, how: str
) -> None:
    conn.execute(
        "insert into storage.objects (bucket_id, name) values ('documents', %s)",
        (f"{world.a.client_id}/{uuid.UUID(int=1)}/a.txt",),
    )
    uid = admin_of_a(conn, world)
    assert what_they_get(conn, world, uid) == {
        "knowledge_bases": len(world.a.rows["knowledge_bases"]),
        "own profile": 1,
        "client": 1,
        "files": 1,
        "rpc": 2,
    }
    revoke(conn, uid, how)
    assert what_they_get(conn, world, uid) == {
        "knowledge_bases": 0,
        "own profile": 0,
        "client": 0,
        "files": 0,
        "rpc": "PermissionDenied",
    }


def test_access_returns_when_a_ban_ends(conn: Conn, world: World) -> None:
    uid = admin_of_a(conn, world)
    conn.execute(
        "update auth.users set banned_until = now() - interval '1 second' where id = %s", (uid,)
    )
    assert what_they_get(conn, world, uid)["knowledge_bases"] == len(
        world.a.rows["knowledge_bases"]
    )


def test_an_admin_suspends_another_user_of_their_tenant_but_not_themselves(
    conn: Conn, world: World
) -> None:
    viewer, admin = world.a.users["viewer"], world.a.users["admin"]
    with acting(conn, user_claims(admin)):
        suspended = conn.execute(
            "update public.users set status = 'suspended' where id = any(%s)", ([viewer, admin],)
        ).rowcount
    assert suspended == 1
    assert what_they_get(conn, world, viewer)["knowledge_bases"] == 0
    assert what_they_get(conn, world, admin)["knowledge_bases"] > 0


def test_another_tenants_admin_cannot_suspend_a_user(conn: Conn, world: World) -> None:
    with acting(conn, user_claims(world.b.users["admin"])):
        changed = conn.execute(
            "update public.users set status = 'suspended' where id = %s",
            (world.a.users["viewer"],),
        ).rowcount
    assert changed == 0


def test_revocation_is_one_initplan_per_statement_not_a_per_row_check(
    conn: Conn, world: World
) -> None:
    with acting(conn, user_claims(world.a.users["viewer"])):
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain (costs off) select id from public.document_chunks"
            ).fetchall()
        )
    assert "InitPlan" in plan
    assert "SubPlan" not in plan


# ---------------------------------------------------------------------- 3. storage names

A_ID = uuid.UUID("0b7f3c4e-1a2b-4c3d-8e9f-a0b1c2d3e4f5")
U_ID = uuid.UUID("1c8e4d5f-2b3c-4d4e-9f0a-b1c2d3e4f5a6")
NAMES: list[tuple[str, bool]] = [
    (f"{A_ID}/{U_ID}/contract.pdf", True),
    (f"{A_ID}/{U_ID}/Contrato de prestação 2026.pdf", True),
    (f"{A_ID}/{U_ID}/.hidden", True),
    (f"{A_ID}/{U_ID}/{'x' * 255}", True),
    (f"{A_ID}/../{U_ID}/evil.pdf", False),
    (f"{A_ID}/{U_ID}/..", False),
    (f"{A_ID}/{U_ID}/.", False),
    (f"{A_ID}/{U_ID}/", False),
    (f"{A_ID}//{U_ID}/x.pdf", False),
    (f"/{A_ID}/{U_ID}/x.pdf", False),
    (f"{A_ID}/{U_ID}/sub/x.pdf", False),
    (f"{A_ID}/x.pdf", False),
    (f"{str(A_ID).upper()}/{U_ID}/x.pdf", False),
    (f"{A_ID}/{str(U_ID).upper()}/x.pdf", False),
    (f"{A_ID.hex}/{U_ID}/x.pdf", False),
    (f"{A_ID}/{U_ID}/a\\b.pdf", False),
    (f"{A_ID}/{U_ID}/a\nb.pdf", False),
    (f"{A_ID}/{U_ID}/a\x7fb.pdf", False),
    (f"{A_ID}/{U_ID}/ x.pdf", False),
    (f"{A_ID}/{U_ID}/x.pdf ", False),
    (f"{A_ID}/{U_ID}/{'x' * 256}", False),
    (f"{A_ID}/./{U_ID}/x.pdf", False),
]


@pytest.mark.parametrize(("name", "valid"), NAMES, ids=[f"name{i}" for i in range(len(NAMES))])
def test_the_storage_policies_and_the_upload_service_agree_on_every_object_name(
    conn: Conn, name: str, valid: bool
) -> None:
    in_sql = one(conn, "select private.storage_object_client_id(%s)", name)
    try:
        in_python: uuid.UUID | None = check_object_name(name)
    except InvalidInput:
        in_python = None
    assert in_sql == in_python == (A_ID if valid else None)


@pytest.mark.parametrize(
    "template",
    [
        "{own}/../{other}/evil.pdf",
        "{own}/{u}/../../{other}/{u}/evil.pdf",
        "{own}//evil.pdf",
        "/{own}/{u}/evil.pdf",
        "{own}/./{u}/evil.pdf",
        "{OWN}/{u}/evil.pdf",
    ],
)
def test_a_member_cannot_upload_under_a_path_that_escapes_their_folder(
    conn: Conn, world: World, template: str
) -> None:
    name = template.format(
        own=world.a.client_id,
        OWN=str(world.a.client_id).upper(),
        other=world.b.client_id,
        u=uuid.uuid4(),
    )
    with pytest.raises(PermissionDenied), acting(conn, world.claims("member")):
        conn.execute(
            "insert into storage.objects (bucket_id, name) values ('documents', %s)", (name,)
        )


# --------------------------------------------------------------------------- 5. vectors


def vector_literal(value: str) -> str:
    return "[" + ",".join([value] * DIMS) + "]"


@pytest.mark.parametrize(
    "component",
    ["1e-45", "1e-23", "1e20", "0"],
    ids=["denormal-squares-to-zero", "underflow", "overflow", "zero"],
)
def test_a_query_embedding_without_a_float4_norm_is_refused_not_answered_with_nan(
    conn: Conn, world: World, component: str
) -> None:
    with pytest.raises(InvalidInput) as info, acting(conn, world.claims("member")):
        conn.execute(
            "select * from public.search_embeddings(%s::extensions.vector)",
            (vector_literal(component),),
        )
    assert info.value.sqlstate == "22023"
    assert "single precision" in str(info.value)


def test_a_chunk_with_a_degenerate_embedding_never_yields_a_nan_similarity(
    conn: Conn, world: World
) -> None:
    a = world.a
    good = vector_literal("0.02")
    conn.execute(
        "update public.document_chunks set embedding = %s::extensions.vector where id = %s",
        (good, a.rows["document_chunks"][0]),
    )
    conn.execute(
        "update public.document_chunks set embedding = %s::extensions.vector, "
        "content = 'degenerate text' where id = %s",
        (vector_literal("1e-45"), a.rows["document_chunks"][1]),
    )
    with acting(conn, world.claims("member")):
        semantic = conn.execute(
            "select id, similarity from public.search_embeddings(%s::extensions.vector, 200)",
            (good,),
        ).fetchall()
        fused = conn.execute(
            "select id, similarity from public.hybrid_search('degenerate', "
            "%s::extensions.vector, 200)",
            (good,),
        ).fetchall()
    assert semantic == [(a.rows["document_chunks"][0], pytest.approx(1.0))]
    assert fused, "the lexical side must still find the degenerate chunk"
    for _, similarity in semantic + fused:
        assert similarity is None or similarity == similarity  # NaN != NaN


# ---------------------------------------------------------------- 8. finality, whoever starts


@pytest.mark.parametrize("starter", ["backend", "member"])
@pytest.mark.parametrize(
    "reopen",
    [
        "status = 'running'",
        "status = 'pending', tokens_used = 0",
        "tokens_used = 0",
        "user_id = null, tokens_used = 0",
        "user_id = null, status = 'running'",
    ],
)
def test_a_finished_execution_cannot_be_reopened_to_evade_the_quota(
    conn: Conn, world: World, starter: str, reopen: str
) -> None:
    a = world.a
    if starter == "backend":
        with acting(conn, SERVICE):
            execution = one(
                conn,
                "select id from backend.start_agent_execution(%s, client_id => %s)",
                a.rows["agents"][0],
                a.client_id,
            )
    else:
        with acting(conn, world.claims("member")):
            execution = one(
                conn, "select id from public.start_agent_execution(%s)", a.rows["agents"][0]
            )
    with acting(conn, SERVICE):
        conn.execute(
            "select backend.report_agent_execution_progress("
            "%s, tokens_used => 50, client_id => %s)",
            (execution, a.client_id),
        )
        conn.execute(
            "select backend.complete_agent_execution(%s, client_id => %s)",
            (execution, a.client_id),
        )
    with pytest.raises(IllegalTransition) as info, acting(conn, SERVICE):
        conn.execute(
            sql.SQL("update public.agent_executions set {} where id = %s").format(
                sql.SQL(reopen)  # a fixed literal of this test, not input
            ),
            (execution,),
        )
    assert info.value.sqlstate == "RNE02"
    assert (
        one(
            conn,
            "select (status, tokens_used)::text from public.agent_executions where id = %s",
            execution,
        )
        == "(completed,50)"
    )


# ------------------------------------------------------------ 8. concurrency through locks


def committed_execution(db_url: str, world: World, status: str) -> uuid.UUID:
    with psycopg.connect(db_url) as c:
        eid = one(
            c,
            "insert into public.agent_executions (client_id, agent_id, user_id) "
            "values (%s, %s, %s) returning id",
            world.a.client_id,
            world.a.rows["agents"][0],
            world.a.users["member"],
        )
        if status == "running":
            c.execute("update public.agent_executions set status = 'running' where id = %s", (eid,))
        c.commit()
    return uuid.UUID(str(eid))


def final_state(db_url: str, execution: uuid.UUID) -> tuple[str, int]:
    with psycopg.connect(db_url) as c:
        row = c.execute(
            "select status, tokens_used from public.agent_executions where id = %s", (execution,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


Call = Callable[[Conn, uuid.UUID], Any]


def cancel(world: World) -> Call:
    def call(c: Conn, eid: uuid.UUID) -> Any:
        with act_as(c, world.claims("member")):
            return one(c, "select status from public.cancel_agent_execution(%s)", eid)

    return call


def worker(world: World, function: str) -> Call:
    def call(c: Conn, eid: uuid.UUID) -> Any:
        with act_as(c, SERVICE):
            return one(
                c,
                sql.SQL(
                    "select status from backend.{}(%s, tokens_used => 70, client_id => %s)"
                ).format(sql.Identifier(function)),
                eid,
                world.a.client_id,
            )

    return call


def race(db_url: str, execution: uuid.UUID, first: Call, second: Call) -> tuple[Any, Any]:
    """`first` runs and holds its row lock; `second` starts on another connection and blocks on
    it; only then does `first` commit. Returns both outcomes (an exception class name or the
    status); the order is decided by the lock, never by timing."""
    with psycopg.connect(db_url) as c1, psycopg.connect(db_url) as c2:
        pid = c2.info.backend_pid
        with c1.transaction():
            got_first = first(c1, execution)
            pending = Background(lambda: second(c2, execution))
            wait_until_blocked(db_url, pid)
        try:
            got_second = pending.result()
        except RenumDBError as exc:
            got_second = f"{type(exc).__name__} {exc.sqlstate}"
    return got_first, got_second


def test_a_cancel_waiting_on_a_completion_fails_and_the_completion_stands(
    db_url: str, world: World
) -> None:
    execution = committed_execution(db_url, world, "running")
    outcomes = race(db_url, execution, worker(world, "complete_agent_execution"), cancel(world))
    assert outcomes == ("completed", "IllegalTransition RNE02")
    assert final_state(db_url, execution) == ("completed", 70)


def test_a_completion_waiting_on_a_cancel_fails_and_the_cancel_stands(
    db_url: str, world: World
) -> None:
    execution = committed_execution(db_url, world, "running")
    outcomes = race(db_url, execution, cancel(world), worker(world, "complete_agent_execution"))
    assert outcomes == ("cancelled", "IllegalTransition RNE02")
    assert final_state(db_url, execution) == ("cancelled", 0)


def test_progress_waiting_on_a_cancel_fails_and_records_no_tokens(
    db_url: str, world: World
) -> None:
    execution = committed_execution(db_url, world, "running")
    outcomes = race(
        db_url, execution, cancel(world), worker(world, "report_agent_execution_progress")
    )
    assert outcomes == ("cancelled", "IllegalTransition RNE02")
    assert final_state(db_url, execution) == ("cancelled", 0)


def test_a_cancel_waiting_on_progress_then_cancels_the_running_execution(
    db_url: str, world: World
) -> None:
    execution = committed_execution(db_url, world, "pending")
    outcomes = race(
        db_url, execution, worker(world, "report_agent_execution_progress"), cancel(world)
    )
    assert outcomes == ("running", "cancelled")
    assert final_state(db_url, execution) == ("cancelled", 70)


# ------------------------------------------------------- 8. the language change re-parses chunks


def test_changing_a_knowledge_bases_language_reparses_its_chunks(conn: Conn, world: World) -> None:
    a = world.a
    kb, other_kb = a.rows["knowledge_bases"]
    text = "Os contratos foram renovados"
    conn.execute(
        "update public.document_chunks set content = %s where client_id = %s", (text, a.client_id)
    )

    def parsed() -> dict[Any, tuple[str, str]]:
        rows = conn.execute(
            "select k.knowledge_base_id, c.text_search_config::text, c.fts::text "
            "from public.document_chunks as c "
            "join public.documents as d on d.client_id = c.client_id and d.id = c.document_id "
            "join public.knowledge_collections as k "
            "  on k.client_id = d.client_id and k.id = d.collection_id "
            "where c.client_id = %s",
            (a.client_id,),
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def tsv(config: str) -> str:
        return str(one(conn, "select to_tsvector(%s::regconfig, %s)::text", config, text))

    before = parsed()
    assert before[kb] == ("portuguese", tsv("portuguese"))
    with acting(conn, world.claims("member")):
        conn.execute(
            "update public.knowledge_bases set text_search_config = 'english' where id = %s",
            (kb,),
        )
    after = parsed()
    assert after[kb] == ("english", tsv("english"))
    assert tsv("english") != tsv("portuguese")
    assert after[other_kb] == before[other_kb]


# ------------------------------------------------------- the caller memo (migration 0022)
# private.current_client_id keeps its answer for the rest of the statement in the
# transaction-local setting renum.caller, stamped with the caller's id and the statement's start.


def test_a_caller_memo_forged_in_an_earlier_statement_is_ignored(conn: Conn, world: World) -> None:
    viewer = world.a.users["viewer"]
    with acting(conn, user_claims(viewer)):
        conn.execute(
            "select set_config('renum.caller', "
            "auth.uid()::text || '@' || statement_timestamp()::text || '/' || %s || '/admin', "
            "true)",
            (str(world.b.client_id),),
        )
        assert one(conn, "select private.current_client_id('viewer')") == world.a.client_id
        assert one(conn, "select private.current_client_id('admin')") is None


def test_a_claims_change_inside_one_statement_is_a_different_caller(
    conn: Conn, world: World
) -> None:
    a_viewer, b_viewer = world.a.users["viewer"], world.b.users["viewer"]
    with acting(conn, user_claims(a_viewer)):
        row = conn.execute(
            "select private.current_client_id('viewer'), "
            "set_config('request.jwt.claims', %s, true), "
            "private.current_client_id('viewer')",
            (json.dumps(user_claims(b_viewer)),),
        ).fetchone()
    assert row is not None
    assert (row[0], row[2]) == (world.a.client_id, world.b.client_id)


def test_a_memoised_viewer_is_still_refused_what_needs_a_higher_role(
    conn: Conn, world: World
) -> None:
    with acting(conn, user_claims(world.a.users["viewer"])):
        row = conn.execute(
            "select private.current_client_id('viewer'), private.current_client_id('member'), "
            "private.current_client_id('admin'), private.current_client_id('viewer')"
        ).fetchone()
    assert row == (world.a.client_id, None, None, world.a.client_id)


def test_a_ban_between_two_statements_of_one_transaction_applies_to_the_second(
    conn: Conn, world: World
) -> None:
    uid = admin_of_a(conn, world)
    with acting(conn, user_claims(uid)):
        assert one(conn, "select private.current_client_id('admin')") == world.a.client_id
    revoke(conn, uid, "banned")
    with acting(conn, user_claims(uid)):
        assert one(conn, "select private.current_client_id('viewer')") is None
