"""The MCP server's database side: layer 2 (the read-only runner) and layer 3 (the login role)
each on its own, with statements layer 1 would refuse; the catalog tools; migration 0016's
functions private.resolve_mcp_user and private.record_mcp_call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from renum_db.db import act_as, user_claims
from renum_db.errors import ConfigurationError, NotFound, RenumDBError
from renum_db.mcp import catalog
from renum_db.mcp.executor import Limits, check_login_role, inspect_login_role, run_read_only
from renum_db.mcp.server import MCP_ROLE, mcp_database_url
from tests.support import World

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def mcp_url(db_url: str) -> str:
    return mcp_database_url(db_url)


@pytest.fixture
def mcp_conn(mcp_url: str) -> Iterator[Conn]:
    """A connection as the MCP login role, like the server's pool."""
    with psycopg.connect(mcp_url) as c:
        yield c


def count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as c:
        row = c.execute(f"select count(*) from public.{table}").fetchone()
    assert row is not None
    return int(row[0])


# --- layer 2: the read-only runner, without layer 1 -----------------------------------------------


def test_a_write_reached_through_a_function_fails_because_the_transaction_is_read_only(
    mcp_conn: Conn, world: World, db_url: str
) -> None:
    before = count(db_url, "investigations")
    with pytest.raises(RenumDBError) as caught:
        run_read_only(
            mcp_conn,
            "select * from public.create_investigation('q', 'contracts')",
            claims=user_claims(world.a.users["member"]),
            limits=Limits(),
        )
    assert caught.value.sqlstate == "25006"
    assert count(db_url, "investigations") == before


def test_a_second_command_smuggled_past_the_parser_is_a_syntax_error_not_a_command(
    mcp_conn: Conn, world: World, db_url: str
) -> None:
    before = count(db_url, "documents")
    with pytest.raises(RenumDBError) as caught:
        run_read_only(
            mcp_conn,
            # Closes the wrapper so that all three commands are valid SQL on their own.
            "select 1 as a) as renum_mcp_row; delete from public.documents;"
            " select * from (select 1",
            claims=user_claims(world.a.users["admin"]),
            limits=Limits(),
        )
    assert caught.value.sqlstate == "42601"
    assert "cannot insert multiple commands" in str(caught.value)
    assert count(db_url, "documents") == before


def test_a_slow_statement_is_cancelled_by_the_statement_timeout(
    mcp_conn: Conn, world: World
) -> None:
    with pytest.raises(RenumDBError) as caught:
        run_read_only(
            mcp_conn,
            "select pg_sleep(30)",
            claims=user_claims(world.a.users["viewer"]),
            limits=Limits(statement_timeout_ms=100),
        )
    assert caught.value.sqlstate == "57014"


def test_the_row_cap_cuts_a_huge_result_and_says_so(mcp_conn: Conn, world: World) -> None:
    result = run_read_only(
        mcp_conn,
        "select generate_series(1, 10000000) as g",
        claims=user_claims(world.a.users["viewer"]),
        limits=Limits(max_rows=25),
    )
    assert result.row_count == 25
    assert result.rows[:2] == [[1], [2]]
    assert result.truncated
    assert result.truncated_reason == "more than 25 rows"


def test_the_size_cap_cuts_a_result_larger_than_the_limit(mcp_conn: Conn, world: World) -> None:
    result = run_read_only(
        mcp_conn,
        "select repeat('x', 200000) as big union all select 'small'",
        claims=user_claims(world.a.users["viewer"]),
        limits=Limits(max_chars=1000),
    )
    assert result.truncated
    assert result.truncated_reason == "result larger than 1000 characters"
    assert all(len(json.dumps(r)) < 1000 for r in result.rows)


def test_a_setting_changed_by_a_statement_does_not_outlive_it(mcp_conn: Conn, world: World) -> None:
    other = json.dumps(user_claims(world.b.users["admin"]))
    run_read_only(
        mcp_conn,
        f"select pg_catalog.set_config('request.jwt.claims', '{other}', false),"
        " pg_catalog.set_config('statement_timeout', '0', false)",
        claims=user_claims(world.a.users["viewer"]),
        limits=Limits(),
    )
    row = mcp_conn.execute(
        "select current_user, current_setting('request.jwt.claims', true),"
        " current_setting('statement_timeout')"
    ).fetchone()
    assert row == (MCP_ROLE, "", "0")
    with psycopg.connect(mcp_conn.info.dsn) as fresh:
        default_timeout = fresh.execute("show statement_timeout").fetchone()
    assert default_timeout == ("0",)


def test_a_statement_runs_as_the_user_so_rls_shows_only_their_tenant(
    mcp_conn: Conn, world: World
) -> None:
    result = run_read_only(
        mcp_conn,
        "select id from public.documents",
        claims=user_claims(world.a.users["viewer"]),
        limits=Limits(),
    )
    seen = {uuid.UUID(r[0]) for r in result.rows}
    assert seen == set(world.a.rows["documents"])


def test_an_empty_result_still_names_its_columns(mcp_conn: Conn, world: World) -> None:
    result = run_read_only(
        mcp_conn,
        "SELECT id, name AS title FROM public.documents WHERE false",
        claims=user_claims(world.a.users["viewer"]),
        limits=Limits(),
    )
    assert result.columns == ["id", "title"]
    assert result.rows == []
    assert not result.truncated


def test_repeated_column_names_are_kept_in_order(mcp_conn: Conn, world: World) -> None:
    result = run_read_only(
        mcp_conn,
        "select 1 as a, 2 as a, jsonb_build_object('k', 3) as j",
        claims=user_claims(world.a.users["viewer"]),
        limits=Limits(),
    )
    assert result.columns == ["a", "a", "j"]
    assert result.rows == [[1, 2, {"k": 3}]]


def test_limits_outside_their_ranges_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Limits(max_rows=0)
    with pytest.raises(ConfigurationError):
        Limits(statement_timeout_ms=0)
    with pytest.raises(ConfigurationError):
        Limits(max_chars=10)


# --- layer 3: the login role, with no parser and no read-only transaction -------------------------

FORBIDDEN_AS_LOGIN_ROLE = [
    "select * from public.documents",
    "select * from public.mcp_audit_log",
    "select * from auth.users",
    "select private.current_client_id('viewer')",
    "set role service_role",
    "set role postgres",
    "set session authorization postgres",
    "reset role; select * from public.clients",
    "set role authenticated; set role service_role",
    "set role anon; reset role; set role service_role",
    "insert into public.mcp_audit_log (client_id, user_id, transport, tool, duration_ms, outcome)"
    " select id, id, 'stdio', 'query', 1, 'ok' from public.clients",
    "delete from public.documents",
    "alter role renum_mcp bypassrls",
    "grant service_role to renum_mcp",
    "create role escaped superuser",
]


@pytest.mark.parametrize("statement", FORBIDDEN_AS_LOGIN_ROLE)
def test_the_login_role_itself_cannot_read_write_or_become_a_stronger_role(
    mcp_url: str, statement: str
) -> None:
    with psycopg.connect(mcp_url, autocommit=True) as c, pytest.raises(psycopg.Error) as caught:
        c.execute(statement)
    assert caught.value.sqlstate == "42501"


def test_the_login_role_can_become_only_anon_and_authenticated(mcp_conn: Conn) -> None:
    row = mcp_conn.execute(
        """
        select r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
               r.rolinherit,
               array(select g.rolname::text from pg_catalog.pg_auth_members m
                       join pg_catalog.pg_roles g on g.oid = m.roleid
                      where m.member = r.oid order by 1),
               pg_catalog.pg_has_role(r.oid, 'service_role', 'MEMBER'),
               pg_catalog.pg_has_role(r.oid, 'postgres', 'MEMBER')
          from pg_catalog.pg_roles r where r.rolname = current_user
        """
    ).fetchone()
    assert row == (
        False,
        False,
        False,
        False,
        False,
        False,
        ["anon", "authenticated"],
        False,
        False,
    )


def test_the_login_role_check_accepts_the_mcp_role(mcp_conn: Conn) -> None:
    assert check_login_role(mcp_conn) == MCP_ROLE


def test_the_login_role_check_refuses_a_role_with_more_rights(db_url: str) -> None:
    with psycopg.connect(db_url) as c:
        problems = inspect_login_role(c).problems
        with pytest.raises(ConfigurationError, match="can only become anon and authenticated"):
            check_login_role(c)
    assert problems  # the test superuser (or hosted-like postgres) is far stronger


def test_the_login_role_check_refuses_a_role_that_cannot_act_as_a_user(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute("drop role if exists renum_mcp_test_weak")
        c.execute("create role renum_mcp_test_weak login")
    weak = mcp_database_url(db_url).replace(MCP_ROLE, "renum_mcp_test_weak")
    try:
        with psycopg.connect(weak) as c:
            assert "not a member of authenticated (cannot act as a user)" in (
                inspect_login_role(c).problems
            )
    finally:
        with psycopg.connect(db_url, autocommit=True) as c:
            c.execute("drop role renum_mcp_test_weak")


# --- catalog tools --------------------------------------------------------------------------------


def tables_for(conn: Conn, claims: dict[str, Any] | None, kind: str = "table") -> set[str]:
    with act_as(conn, claims):
        return {t.name for t in catalog.list_tables(conn) if t.kind == kind}


def test_a_viewer_is_shown_the_tenant_tables_but_not_admin_only_ones(
    conn: Conn, world: World
) -> None:
    names = tables_for(conn, world.claims("viewer"))
    assert {"documents", "document_chunks", "knowledge_bases", "agents"} <= names
    assert "api_credentials" not in names
    assert "mcp_audit_log" not in names


def test_an_admin_is_shown_the_admin_only_tables_too(conn: Conn, world: World) -> None:
    names = tables_for(conn, world.claims("admin"))
    assert {"api_credentials", "mcp_audit_log", "documents"} <= names


def test_a_user_without_a_tenant_is_shown_only_their_profile(conn: Conn, world: World) -> None:
    assert tables_for(conn, world.claims("nobody")) == {"users"}


def test_security_invoker_views_are_listed_by_privilege(conn: Conn, world: World) -> None:
    # Their rows come from tables under RLS, so listing them discloses nothing.
    assert "agent_monthly_token_usage" in tables_for(conn, world.claims("viewer"), "view")


def test_the_catalog_never_lists_a_relation_outside_public(conn: Conn, world: World) -> None:
    with act_as(conn, world.claims("admin")):
        tables = catalog.list_tables(conn)
    in_public = {
        r[0]
        for r in conn.execute(
            "select relname from pg_catalog.pg_class where relnamespace = 'public'::regnamespace"
        )
    }
    assert tables
    assert {t.name for t in tables} <= in_public


def test_columns_come_with_their_comments_and_never_encrypted_value(
    conn: Conn, world: World
) -> None:
    with act_as(conn, world.claims("admin")):
        info, columns = catalog.list_columns(conn, "public.api_credentials")
    names = [c.name for c in columns]
    assert info.name == "api_credentials"
    assert "encrypted_value" not in names
    assert names[:2] == ["id", "client_id"]
    assert info.comment is not None
    assert "Encrypted third-party credentials" in info.comment


def test_columns_of_a_table_the_user_cannot_read_are_not_found(conn: Conn, world: World) -> None:
    with act_as(conn, world.claims("viewer")), pytest.raises(NotFound):
        catalog.list_columns(conn, "api_credentials")


def test_columns_of_a_private_relation_are_not_found(conn: Conn, world: World) -> None:
    with act_as(conn, world.claims("admin")), pytest.raises(NotFound):
        catalog.list_columns(conn, "pg_authid")


# --- private.resolve_mcp_user ---------------------------------------------------------------------


def resolve(mcp_conn: Conn, identifier: str) -> Any:
    row = mcp_conn.execute("select private.resolve_mcp_user(%s)", (identifier,)).fetchone()
    assert row is not None
    return row[0]


def test_the_mcp_role_resolves_a_user_by_email_in_any_case(mcp_conn: Conn, world: World) -> None:
    assert resolve(mcp_conn, " Viewer@A.example ") == world.a.users["viewer"]


def test_the_mcp_role_resolves_a_user_by_id(mcp_conn: Conn, world: World) -> None:
    assert resolve(mcp_conn, str(world.b.users["admin"])) == world.b.users["admin"]


def test_an_unknown_email_resolves_to_nothing(mcp_conn: Conn) -> None:
    assert resolve(mcp_conn, "nobody-at-all@example.com") is None


def test_an_auth_user_without_a_profile_resolves_to_nothing(mcp_conn: Conn, world: World) -> None:
    assert resolve(mcp_conn, str(world.orphan_auth_user)) is None


def test_a_banned_user_resolves_to_nothing(mcp_url: str, db_url: str, world: World) -> None:
    user = world.a.users["member"]
    with psycopg.connect(db_url) as c:
        c.execute(
            "update auth.users set banned_until = now() + interval '1 day' where id = %s", (user,)
        )
        c.commit()
    try:
        with psycopg.connect(mcp_url) as m:
            assert resolve(m, str(user)) is None
    finally:
        with psycopg.connect(db_url) as c:
            c.execute("update auth.users set banned_until = null where id = %s", (user,))
            c.commit()


def test_a_suspended_user_resolves_to_nothing(mcp_url: str, db_url: str, world: World) -> None:
    user = world.b.users["member"]
    with psycopg.connect(db_url) as c:
        c.execute("update public.users set status = 'suspended' where id = %s", (user,))
        c.commit()
    try:
        with psycopg.connect(mcp_url) as m:
            assert resolve(m, str(user)) is None
    finally:
        with psycopg.connect(db_url) as c:
            c.execute("update public.users set status = 'active' where id = %s", (user,))
            c.commit()


@pytest.mark.parametrize("actor", ["anon", "viewer", "admin", "service"])
def test_no_api_role_may_resolve_users(conn: Conn, world: World, actor: str) -> None:
    with pytest.raises(RenumDBError) as caught, act_as(conn, world.claims(actor)):
        conn.execute("select private.resolve_mcp_user('viewer@a.example')")
    assert caught.value.sqlstate == "42501"


# --- private.record_mcp_call and the audit table --------------------------------------------------


def test_an_audit_row_is_filed_under_the_users_own_tenant(
    mcp_conn: Conn, db_url: str, world: World
) -> None:
    marker = f"select 'audit {uuid.uuid4()}'"
    mcp_conn.execute(
        "select private.record_mcp_call(%s, 'http', 'query', %s, 1, 7, 'ok', null, %s)",
        (world.b.users["viewer"], marker, world.b.rows["agents"][0]),
    )
    mcp_conn.commit()
    with psycopg.connect(db_url) as c:
        row = c.execute(
            "select client_id, user_id, agent_id, transport, row_count, duration_ms, outcome"
            " from public.mcp_audit_log where statement = %s",
            (marker,),
        ).fetchone()
    assert row == (
        world.b.client_id,
        world.b.users["viewer"],
        world.b.rows["agents"][0],
        "http",
        1,
        7,
        "ok",
    )


def test_a_user_without_a_tenant_gets_no_audit_row(
    mcp_conn: Conn, db_url: str, world: World
) -> None:
    before = count(db_url, "mcp_audit_log")
    mcp_conn.execute(
        "select private.record_mcp_call(%s, 'stdio', 'list_tables', null, 3, 1, 'ok')",
        (world.no_client_user,),
    )
    mcp_conn.commit()
    assert count(db_url, "mcp_audit_log") == before


def test_audit_texts_are_cut_to_ten_thousand_characters(
    mcp_conn: Conn, db_url: str, world: World
) -> None:
    marker = str(uuid.uuid4())
    mcp_conn.execute(
        "select private.record_mcp_call(%s, 'stdio', 'query', %s, null, 1, 'error', %s)",
        (world.a.users["viewer"], marker + "x" * 20000, marker + "y" * 20000),
    )
    mcp_conn.commit()
    with psycopg.connect(db_url) as c:
        row = c.execute(
            "select length(statement), length(message) from public.mcp_audit_log"
            " where statement like %s",
            (marker + "%",),
        ).fetchone()
    assert row == (10000, 10000)


def test_an_audit_row_with_an_unknown_tool_is_rejected(mcp_conn: Conn, world: World) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        mcp_conn.execute(
            "select private.record_mcp_call(%s, 'stdio', 'drop_everything', null, null, 1, 'ok')",
            (world.a.users["viewer"],),
        )


@pytest.mark.parametrize("actor", ["anon", "viewer", "admin", "service"])
def test_no_api_role_may_write_audit_rows(conn: Conn, world: World, actor: str) -> None:
    with pytest.raises(RenumDBError) as caught, act_as(conn, world.claims(actor)):
        conn.execute(
            "select private.record_mcp_call(%s, 'stdio', 'query', null, null, 1, 'ok')",
            (world.a.users["viewer"],),
        )
    assert caught.value.sqlstate == "42501"
