"""The injection suite: statements an LLM could be talked into sending, through the real
`renum-db mcp` over stdio (the SDK's client), as an ADMIN of tenant A (the strongest user).
Every one is refused, cut, cancelled or harmless; afterwards nothing in the database has changed
and the server still acts as the same user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from renum_db.mcp.server import mcp_database_url
from tests.support import World
from tests.test_mcp_server import Run, run_stdio

REFUSED, HARMLESS, CUT, CANCELLED = "refused", "harmless", "cut", "cancelled"

INJECTIONS: list[tuple[str, str]] = [
    # writes
    (
        "insert into documents (collection_id, name) select collection_id, 'x' from documents",
        REFUSED,
    ),
    ("update documents set name = 'pwned'", REFUSED),
    ("delete from document_chunks", REFUSED),
    ("with gone as (delete from documents returning id) select count(*) from gone", REFUSED),
    ("select * into stolen from documents", REFUSED),
    ("merge into documents d using documents s on d.id = s.id when matched then delete", REFUSED),
    ("truncate documents", REFUSED),
    ("create table public.copy_of_docs as select * from documents", REFUSED),
    ("drop table documents", REFUSED),
    ("alter table documents disable row level security", REFUSED),
    ("grant select on documents to anon", REFUSED),
    ("select public.create_investigation('q', 'contracts')", REFUSED),
    # settings and roles
    ("select set_config('role', 'service_role', false)", REFUSED),
    (
        "select set_config('request.jwt.claims',"
        ' \'{"sub":"00000000-0000-0000-0000-000000000001","role":"authenticated"}\', true)',
        REFUSED,
    ),
    ("set role service_role", REFUSED),
    ("reset role", REFUSED),
    ("set session authorization postgres", REFUSED),
    ("select current_setting('request.jwt.claims')", REFUSED),
    ("SeLeCt PG_CATALOG.SET_CONFIG('role', 'service_role', false)", REFUSED),
    ("select (select set_config('role', 'service_role', false))", REFUSED),
    ("select/**/set_config('role','service_role',false)", REFUSED),
    # several statements
    ("select 1; set role service_role; select * from documents", REFUSED),
    ("select 1; delete from documents", REFUSED),
    ("commit; set role service_role", REFUSED),
    # comments and quoting
    ("select 1 as one /* ; delete from documents */", HARMLESS),
    ("select 1 as one -- ; delete from documents", HARMLESS),
    ("select 'x''; delete from documents; --' as s", HARMLESS),
    ("select $$; delete from documents; $$ as s", HARMLESS),
    ("select E'\\'; delete from documents; --' as s", HARMLESS),
    ("select 1 /* unterminated ; delete from documents", REFUSED),
    ("select name from documents where name = '' or 1 = 1 --'", HARMLESS),
    ('select * from "pg_catalog"."pg_authid"', REFUSED),
    ('select * from "auth"."users"', REFUSED),
    # dangerous functions and places
    ("select pg_sleep(5)", REFUSED),
    ("select pg_read_file('/etc/passwd')", REFUSED),
    ("select lo_import('/etc/passwd')", REFUSED),
    ("select * from dblink('dbname=postgres', 'select 1') as t(a int)", REFUSED),
    ("select pg_terminate_backend(pg_backend_pid())", REFUSED),
    ("select pg_reload_conf()", REFUSED),
    ("select query_to_xml('select * from auth.users', true, true, '')", REFUSED),
    ("select private.current_client_id('admin')", REFUSED),
    ("select * from pg_settings", REFUSED),
    ("select * from information_schema.role_table_grants", REFUSED),
    ("select encrypted_value from api_credentials", REFUSED),
    ("select * from private.nearest_chunks_hnsw(null, null, 1, null, null)", REFUSED),
    # explain and copy
    ("explain analyze delete from documents", REFUSED),
    ("explain (analyze) update documents set name = 'x'", REFUSED),
    ("copy documents to stdout", REFUSED),
    ("copy (select * from documents) to '/tmp/renum-stolen'", REFUSED),
    ("copy documents from program 'id'", REFUSED),
    # locking reads
    ("select * from documents for update", REFUSED),
    ("select * from documents for share nowait", REFUSED),
    ("select * from (select * from documents for key share) as d", REFUSED),
    # huge results
    ("select generate_series(1, 100000000) as g", CUT),
    ("select repeat('x', 200000) as big", CUT),
    ("select a.id, generate_series(1, 100000) from document_chunks a, document_chunks b", CUT),
    # slow queries
    ("select count(*) from generate_series(1, 2000000000)", CANCELLED),
    (
        "with recursive r(n) as (select 1 union all select n + 1 from r) select count(*) from r",
        CANCELLED,
    ),
    (
        "select count(*) from generate_series(1, 100000) as a, generate_series(1, 100000) as b",
        CANCELLED,
    ),
]

IDENTITY = ("identity", "query", {"sql": "select current_user as role, auth.uid() as uid"})


def snapshot(db_url: str) -> dict[str, Any]:
    """Every public table's row count and content digest, the roles, and the MCP role's grants."""
    out: dict[str, Any] = {}
    with psycopg.connect(db_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select relname from pg_catalog.pg_class where relnamespace ="
                " 'public'::regnamespace and relkind in ('r', 'p') order by 1"
            )
        ]
        for table in tables:
            out[table] = conn.execute(
                f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
                f" from public.{table} as t"
            ).fetchone()
        out["roles"] = conn.execute(
            "select array_agg(rolname::text order by rolname) from pg_catalog.pg_roles"
        ).fetchone()
        out["mcp_memberships"] = conn.execute(
            "select array_agg(roleid::regrole::text order by 1) from pg_catalog.pg_auth_members"
            " where member = 'renum_mcp'::regrole"
        ).fetchone()
        out["public_relations"] = conn.execute(
            "select count(*) from pg_catalog.pg_class where relnamespace = 'public'::regnamespace"
        ).fetchone()
    return out


@pytest.fixture(scope="module")
def suite(
    db_url: str, world: World, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Run, dict[str, Any], dict[str, Any]]:
    before = snapshot(db_url)
    script = [(sql, "query", {"sql": sql}) for sql, _ in INJECTIONS] + [IDENTITY]
    errlog: Path = tmp_path_factory.mktemp("mcp-injection") / "stderr.log"
    run = run_stdio(
        mcp_database_url(db_url),
        [
            "--user",
            "admin@a.example",
            "--statement-timeout-ms",
            "2000",
            "--max-rows",
            "50",
            "--max-result-chars",
            "20000",
        ],
        script,
        errlog,
    )
    return run, before, snapshot(db_url)


def test_the_suite_has_at_least_thirty_statements() -> None:
    assert len(INJECTIONS) >= 30
    assert len({sql for sql, _ in INJECTIONS}) == len(INJECTIONS)


@pytest.mark.parametrize(("sql", "expected"), INJECTIONS, ids=[s[:50] for s, _ in INJECTIONS])
def test_an_injected_statement_is_refused_or_harmless(
    suite: tuple[Run, dict[str, Any], dict[str, Any]], world: World, sql: str, expected: str
) -> None:
    run, _, _ = suite
    out = run.outcomes[sql]
    if expected == REFUSED:
        assert out.is_error, out.text
        assert "refused:" in out.text
    elif expected == CANCELLED:
        assert out.is_error, out.text
        assert "cancelled after 2000 ms" in out.text
    elif expected == CUT:
        assert not out.is_error, out.text
        assert out.data is not None
        assert out.data["truncated"] is True
        assert out.data["row_count"] <= 50
        assert len(out.text) < 200_000
    else:
        assert not out.is_error, out.text
    assert "Traceback" not in out.text
    assert str(world.b.client_id) not in out.text
    for doc in world.b.rows["documents"]:
        assert str(doc) not in out.text


def test_harmless_tricks_return_only_their_literal_values(
    suite: tuple[Run, dict[str, Any], dict[str, Any]], world: World
) -> None:
    run, _, _ = suite
    assert run.data("select 1 as one /* ; delete from documents */")["rows"] == [[1]]
    assert run.data("select $$; delete from documents; $$ as s")["rows"] == [
        ["; delete from documents; "]
    ]
    rows = run.data("select name from documents where name = '' or 1 = 1 --'")["rows"]
    assert len(rows) == len(world.a.rows["documents"])


def test_nothing_was_written_by_the_suite(
    suite: tuple[Run, dict[str, Any], dict[str, Any]],
) -> None:
    _, before, after = suite
    assert json.dumps(after, default=str) == json.dumps(before, default=str)


def test_the_server_still_acts_as_the_same_user_after_the_suite(
    suite: tuple[Run, dict[str, Any], dict[str, Any]], world: World
) -> None:
    run, _, _ = suite
    assert run.data("identity")["rows"] == [["authenticated", str(world.a.users["admin"])]]
