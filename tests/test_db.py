"""`act_as` and `Database` run work exactly as PostgREST runs a request; `load_settings` reads the
environment."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from renum_db.config import load_settings
from renum_db.db import Database, act_as, user_claims
from renum_db.errors import (
    ConfigurationError,
    DatabaseError,
    InvalidInput,
    PermissionDenied,
    RenumDBError,
)
from tests.support import CUSTOM_API_ROLE, USER_ROLE, World

Conn = psycopg.Connection[Any]


def one(conn: Conn, query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def state(conn: Conn) -> tuple[str, str | None]:
    """The current role and the `request.jwt.claims` setting. Once a session has set a custom
    setting, Postgres keeps it defined with '' as its reset value, even after a rollback, so
    "unset" and '' are the same state here (auth.uid() and auth.jwt() read both as null)."""
    row = conn.execute(
        "select current_user::text, nullif(current_setting('request.jwt.claims', true), '')"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=2) as database:
        yield database


# --- act_as ---------------------------------------------------------------------------------


def test_user_claims_are_the_payload_supabase_issues() -> None:
    uid = uuid.uuid4()
    claims = user_claims(uid, email="a@example.com", extra={"app_metadata": {"x": 1}})
    assert claims == {
        "sub": str(uid),
        "role": "authenticated",
        "aud": "authenticated",
        "email": "a@example.com",
        "app_metadata": {"x": 1},
    }


def test_act_as_runs_the_block_as_the_claimed_role_with_the_claims(
    conn: Conn, world: World
) -> None:
    uid = world.a.users["member"]
    claims = user_claims(uid, email="member@a.example")
    with act_as(conn, claims):
        assert one(conn, "select current_user::text") == USER_ROLE
        assert one(conn, "select auth.uid()") == uid
        assert one(conn, "select auth.jwt()") == json.loads(
            json.dumps({**claims, "role": USER_ROLE})
        )
        assert one(conn, "select auth.role()") == USER_ROLE


def test_act_as_service_role_runs_as_service_role(conn: Conn) -> None:
    with act_as(conn, {"role": "service_role"}):
        assert one(conn, "select current_user::text") == "service_role"
        assert one(conn, "select auth.uid()") is None


def test_act_as_none_is_anon(conn: Conn) -> None:
    with act_as(conn, None):
        assert one(conn, "select current_user::text") == "anon"
        assert one(conn, "select auth.uid()") is None
        assert one(conn, "select auth.role()") == "anon"  # as with Supabase's anon key


def test_act_as_restores_the_role_and_claims_of_the_enclosing_transaction(
    conn: Conn, world: World
) -> None:
    conn.execute("select set_config('request.jwt.claims', '{\"outer\":true}', true)")
    before = state(conn)
    with act_as(conn, user_claims(world.a.users["admin"])):
        assert state(conn) != before
    assert state(conn) == before
    assert one(conn, "select current_setting('role')") == "none"


def test_act_as_leaves_no_identity_behind(conn: Conn, world: World) -> None:
    with act_as(conn, user_claims(world.a.users["admin"])):
        pass
    assert one(conn, "select auth.uid()") is None
    assert one(conn, "select auth.jwt()") is None


def test_nested_act_as_restores_the_enclosing_request(conn: Conn, world: World) -> None:
    uid = world.a.users["viewer"]
    with act_as(conn, {"role": "service_role"}):
        outer = state(conn)
        with act_as(conn, user_claims(uid)):
            assert one(conn, "select auth.uid()") == uid
        assert state(conn) == outer
        assert outer[0] == "service_role"


def test_error_in_the_block_rolls_back_its_savepoint_and_the_outer_transaction_continues(
    conn: Conn, world: World
) -> None:
    before = state(conn)
    conn.execute(
        "insert into public.knowledge_bases (client_id, name) values (%s, 'outer kb')",
        (world.a.client_id,),
    )
    with pytest.raises(PermissionDenied), act_as(conn, user_claims(world.a.users["member"])):
        conn.execute("insert into public.knowledge_bases (name) values ('inner kb')")
        conn.execute("insert into public.clients (name) values ('not allowed')")
    assert state(conn) == before
    names = {r[0] for r in conn.execute("select name from public.knowledge_bases")}
    assert "outer kb" in names
    assert "inner kb" not in names


@pytest.mark.parametrize("role", ["postgres", "supabase_admin", "authenticator", "Anon"])
def test_an_unknown_role_in_the_claims_raises_configuration_error(conn: Conn, role: str) -> None:
    before = state(conn)
    with pytest.raises(ConfigurationError), act_as(conn, {"role": role, "sub": str(uuid.uuid4())}):
        pytest.fail("the block must not run")
    assert state(conn) == before


# --- Database ---------------------------------------------------------------------------------


def test_database_requires_a_url() -> None:
    with pytest.raises(ConfigurationError):
        Database("")


def test_as_user_runs_as_that_user_end_to_end(db: Database, world: World) -> None:
    uid = world.a.users["member"]
    with db.as_user(uid, email="member@a.example") as conn:
        assert one(conn, "select current_user::text") == USER_ROLE
        assert one(conn, "select auth.uid()") == uid
        assert one(conn, "select auth.jwt() ->> 'email'") == "member@a.example"
        tenants = {r[0] for r in conn.execute("select id from public.clients")}
    assert tenants == {world.a.client_id}


def test_as_service_role_runs_as_service_role_end_to_end(db: Database, world: World) -> None:
    with db.as_service_role() as conn:
        assert one(conn, "select current_user::text") == "service_role"
        tenants = {r[0] for r in conn.execute("select id from public.clients")}
    assert tenants >= {world.a.client_id, world.b.client_id}


def test_as_anon_runs_as_anon_end_to_end(db: Database) -> None:
    with db.as_anon() as conn:
        assert one(conn, "select current_user::text") == "anon"
        assert one(conn, "select auth.uid()") is None


def test_as_user_commits_when_the_block_succeeds(db: Database, world: World) -> None:
    name = f"committed {uuid.uuid4()}"
    with db.as_user(world.a.users["member"]) as conn:
        conn.execute("insert into public.knowledge_bases (name) values (%s)", (name,))
    with db.as_user(world.a.users["viewer"]) as conn:
        found = conn.execute("select 1 from public.knowledge_bases where name = %s", (name,))
        assert found.fetchone() is not None


def test_as_user_rolls_back_when_the_block_raises(db: Database, world: World) -> None:
    name = f"rolled back {uuid.uuid4()}"
    with pytest.raises(ZeroDivisionError), db.as_user(world.a.users["member"]) as conn:
        conn.execute("insert into public.knowledge_bases (name) values (%s)", (name,))
        _ = 1 / 0
    with db.as_service_role() as conn:
        found = conn.execute("select 1 from public.knowledge_bases where name = %s", (name,))
        assert found.fetchone() is None


def test_a_block_that_swallows_a_database_error_does_not_end_as_if_it_saved(
    db: Database, world: World
) -> None:
    name = f"lost {uuid.uuid4()}"
    with pytest.raises(DatabaseError, match="aborted"), db.as_user(world.a.users["member"]) as conn:
        conn.execute("insert into public.knowledge_bases (name) values (%s)", (name,))
        with contextlib.suppress(psycopg.Error):  # swallowed: the transaction is aborted anyway
            conn.execute("select 1 / 0")
    with db.as_service_role() as conn:
        found = conn.execute("select 1 from public.knowledge_bases where name = %s", (name,))
        assert found.fetchone() is None


def test_a_pooled_connection_returns_to_the_connecting_role_after_a_block(
    db_url: str, world: World
) -> None:
    with Database(db_url, min_size=0, max_size=1) as single:
        with single.connection() as conn:
            connecting = state(conn)[0]
        with single.as_user(world.a.users["admin"]) as conn:
            assert state(conn)[0] == USER_ROLE
        with single.connection() as conn:
            assert state(conn)[0] == connecting
            assert one(conn, "select auth.uid()") is None


SESSION_LEAKS = {
    "set role": "set role authenticated",
    "set": "set statement_timeout = '1234ms'",
    "set_config(..., false)": "select set_config('request.jwt.claims', %(claims)s, false)",
    "set_config of a role": "select set_config('role', 'service_role', false)",
    "temporary table": "create temporary table leak (x int)",
    "advisory lock": "select pg_advisory_lock(8)",
}


@pytest.mark.parametrize("leak", sorted(SESSION_LEAKS))
def test_a_session_level_setting_never_reaches_the_next_checkout(
    db_url: str, world: World, leak: str
) -> None:
    """One pooled connection (max_size 1): whatever a block does at session level, the next
    checkout of the same backend starts clean, auth.uid() included."""
    claims = json.dumps(user_claims(world.a.users["admin"]))
    with Database(db_url, min_size=0, max_size=1) as single:
        with single.connection() as conn:
            pid = conn.info.backend_pid
            clean = (
                state(conn),
                one(conn, "show statement_timeout"),
                one(conn, "select count(*) from pg_locks where locktype = 'advisory'"),
            )
            conn.execute(SESSION_LEAKS[leak], {"claims": claims})
        with single.connection() as conn:
            assert conn.info.backend_pid == pid  # the same connection, reset
            after = (
                state(conn),
                one(conn, "show statement_timeout"),
                one(conn, "select count(*) from pg_locks where locktype = 'advisory'"),
            )
            assert after == clean
            assert one(conn, "select auth.uid()") is None
            assert one(conn, "select to_regclass('pg_temp.leak')") is None


def test_the_pool_resets_connections_that_ran_user_requests(db_url: str, world: World) -> None:
    with Database(db_url, min_size=0, max_size=1) as single:
        with single.as_user(world.a.users["admin"]) as conn:
            conn.execute(
                "select set_config('request.jwt.claims', %s, false)",
                (json.dumps(user_claims(world.b.users["admin"])),),
            )
        with single.connection() as conn:
            assert one(conn, "select auth.uid()") is None
            assert one(conn, "select count(*) from public.knowledge_bases") > 0  # the login role


def test_act_as_accepts_a_custom_role_the_authenticator_may_become(
    conn: Conn, world: World
) -> None:
    with act_as(conn, user_claims(world.a.users["member"], role=CUSTOM_API_ROLE)):
        assert state(conn)[0] == CUSTOM_API_ROLE


def test_a_query_error_inside_as_user_surfaces_as_a_renum_db_exception(
    db: Database, world: World
) -> None:
    with pytest.raises(RenumDBError) as info, db.as_user(world.a.users["member"]) as conn:
        conn.execute("select 'not a uuid'::uuid")
    exc = info.value
    assert isinstance(exc, InvalidInput)
    assert not isinstance(exc, psycopg.Error)
    assert exc.sqlstate == "22P02"
    assert isinstance(exc.__cause__, psycopg.errors.InvalidTextRepresentation)


def test_a_query_error_inside_connection_surfaces_as_a_renum_db_exception(db: Database) -> None:
    with pytest.raises(InvalidInput) as info, db.connection() as conn:
        conn.execute("select 1 / 0")
    assert info.value.sqlstate == "22012"


# --- load_settings ---------------------------------------------------------------------------

ENV = (
    "DATABASE_URL",
    "SUPABASE_DB_URL",
    "RENUM_PG_VERSION",
    "RENUM_DATA_DIR",
    "RENUM_POOL_MIN",
    "RENUM_POOL_MAX",
    "RENUM_SUPABASE_SHIM",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment (none of the renum variables set), run from an empty folder."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_load_settings_prefers_database_url_over_supabase_db_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", "postgresql://db/one")
    env.setenv("SUPABASE_DB_URL", "postgresql://db/two")
    settings = load_settings(dotenv=False)
    assert settings.database_url == "postgresql://db/one"
    assert not settings.embedded


def test_load_settings_falls_back_to_supabase_db_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("SUPABASE_DB_URL", "postgresql://db/two")
    assert load_settings(dotenv=False).database_url == "postgresql://db/two"


def test_load_settings_without_a_url_uses_the_embedded_server_with_defaults(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = load_settings(dotenv=False)
    assert settings.database_url is None
    assert settings.embedded
    assert (settings.pg_version, settings.pool_min, settings.pool_max) == (16, 1, 10)
    assert settings.shim == "auto"
    assert settings.data_dir == (tmp_path / ".renum").resolve()


def test_load_settings_reads_valid_overrides(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("RENUM_PG_VERSION", "18")
    env.setenv("RENUM_POOL_MIN", "0")
    env.setenv("RENUM_POOL_MAX", "3")
    env.setenv("RENUM_SUPABASE_SHIM", "never")
    env.setenv("RENUM_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(dotenv=False)
    assert (settings.pg_version, settings.pool_min, settings.pool_max) == (18, 0, 3)
    assert settings.shim == "never"
    assert settings.data_dir == tmp_path / "data"


@pytest.mark.parametrize("value", ["17", "15", "sixteen", "16.0"])
def test_load_settings_rejects_an_unsupported_pg_version(
    env: pytest.MonkeyPatch, value: str
) -> None:
    env.setenv("RENUM_PG_VERSION", value)
    with pytest.raises(ConfigurationError, match="RENUM_PG_VERSION"):
        load_settings(dotenv=False)


@pytest.mark.parametrize(
    ("pool_min", "pool_max"),
    [("5", "2"), ("0", "0"), ("-1", "10"), ("1", "1001"), ("x", "10"), ("1", "ten")],
)
def test_load_settings_rejects_bad_pool_sizes(
    env: pytest.MonkeyPatch, pool_min: str, pool_max: str
) -> None:
    env.setenv("RENUM_POOL_MIN", pool_min)
    env.setenv("RENUM_POOL_MAX", pool_max)
    with pytest.raises(ConfigurationError, match="RENUM_POOL"):
        load_settings(dotenv=False)


def test_load_settings_rejects_an_unknown_shim_mode(env: pytest.MonkeyPatch) -> None:
    env.setenv("RENUM_SUPABASE_SHIM", "sometimes")
    with pytest.raises(ConfigurationError, match="RENUM_SUPABASE_SHIM"):
        load_settings(dotenv=False)
