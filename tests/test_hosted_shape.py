"""The local cluster is hosted Supabase as far as Postgres can tell: the suite migrates and runs as
a non-superuser `postgres` with hosted attributes, memberships and default privileges; the shim
recreates Supabase's storage delete protection and API role settings; an extension's parameter
in a function's SET clause is preceded by the step that loads its library; the embedded server
starts safely when several commands race on a fresh data folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_postgresql.executors import NoopExecutor

from renum_db import migrations
from renum_db.embedded import MARKER, server_for
from renum_db.errors import ConfigurationError, PermissionDenied, wrap_errors
from tests.support import CUSTOM_API_ROLE

ROOT = Path(__file__).resolve().parent.parent
Conn = psycopg.Connection[Any]

# Dotted parameter prefixes of the extensions our SQL may name in a SET clause -> extension.
EXTENSION_GUCS = {"hnsw": "vector", "ivfflat": "vector"}
SET_CLAUSE = re.compile(r"^\s*set\s+([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\s*(=|to)\s", re.I | re.M)
LOAD_STEP = re.compile(r"^.*extensions\.\w+\(.*-- loads (\w+)\s*$", re.M)


# --- the role everything runs as -----------------------------------------------------------------


def test_the_suite_runs_on_the_requested_major_version(pg_noproc: NoopExecutor) -> None:
    wanted = int(os.environ.get("RENUM_PG_VERSION", "16"))
    assert pg_noproc.version.major == wanted
    with psycopg.connect(
        host=pg_noproc.host, port=pg_noproc.port, user=pg_noproc.user, dbname="postgres"
    ) as conn:
        row = conn.execute("select current_setting('server_version_num')::int / 10000").fetchone()
    assert row == (wanted,)


def test_tests_and_migrations_connect_as_a_non_superuser_postgres(
    conn: Conn, template_url: str
) -> None:
    with psycopg.connect(template_url) as template:
        owner = template.execute(
            "select pg_catalog.pg_get_userbyid(datdba) from pg_catalog.pg_database "
            "where datname = current_database()"
        ).fetchone()
        migrated_by = template.execute(
            "select distinct pg_catalog.pg_get_userbyid(c.relowner) from pg_catalog.pg_class c "
            "join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname in ('public', 'private', 'renum_migrations') and c.relkind = 'r'"
        ).fetchall()
    assert owner == ("postgres",)
    assert migrated_by == [("postgres",)]
    row = conn.execute(
        "select current_user, rolsuper from pg_catalog.pg_roles where rolname = current_user"
    ).fetchone()
    assert row == ("postgres", False)


def test_postgres_has_exactly_the_hosted_attributes(conn: Conn) -> None:
    row = conn.execute(
        "select rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, "
        "rolbypassrls from pg_catalog.pg_roles where rolname = 'postgres'"
    ).fetchone()
    assert row == (False, True, True, True, True, True, True)


def test_the_cluster_superuser_is_supabase_admin(conn: Conn) -> None:
    rows = conn.execute("select rolname from pg_catalog.pg_roles where rolsuper").fetchall()
    assert rows == [("supabase_admin",)]


def test_postgres_has_the_hosted_search_path(conn: Conn) -> None:
    row = conn.execute(
        "select s.setconfig from pg_catalog.pg_db_role_setting s "
        "join pg_catalog.pg_roles r on r.oid = s.setrole "
        "where r.rolname = 'postgres' and s.setdatabase = 0"
    ).fetchone()
    assert row == (['search_path="$user", public, extensions'],)


def memberships(conn: Conn, member: str) -> dict[str, tuple[bool, bool, bool]]:
    """role -> (admin, inherit, set) for each role `member` belongs to."""
    rows = conn.execute(
        "select r.rolname, m.admin_option, m.inherit_option, m.set_option "
        "from pg_catalog.pg_auth_members m "
        "join pg_catalog.pg_roles r on r.oid = m.roleid "
        "join pg_catalog.pg_roles u on u.oid = m.member where u.rolname = %s",
        (member,),
    ).fetchall()
    return {name: (admin, inherit, set_) for name, admin, inherit, set_ in rows}


def test_postgres_holds_the_hosted_memberships_with_admin_option(conn: Conn) -> None:
    got = memberships(conn, "postgres")
    for role in (
        "anon",
        "authenticated",
        "service_role",
        "authenticator",
        "pg_monitor",
        "pg_read_all_data",
        "pg_signal_backend",
        "pg_create_subscription",
    ):
        assert got.pop(role) == (True, True, True), role
    # The custom API role the tests create as postgres (tests.support.create_custom_api_role):
    # its creator holds ADMIN on it and nothing else, as on a hosted project.
    assert got.pop(CUSTOM_API_ROLE) == (True, False, False)
    # The supautils stand-ins: privileges of the owner, never the role itself, never admin.
    assert got == {
        "supabase_storage_admin": (False, True, False),
        "supabase_auth_admin": (False, True, False),
    }


def test_postgres_cannot_become_the_storage_or_auth_admin(conn: Conn) -> None:
    for role in ("supabase_storage_admin", "supabase_auth_admin", "supabase_admin"):
        with pytest.raises(PermissionDenied), wrap_errors(), conn.transaction():
            conn.execute(f"set local role {role}")


def test_api_roles_carry_supabase_timeouts(conn: Conn) -> None:
    rows = conn.execute(
        "select r.rolname, s.setconfig from pg_catalog.pg_db_role_setting s "
        "join pg_catalog.pg_roles r on r.oid = s.setrole "
        "where r.rolname in ('anon', 'authenticated', 'authenticator') and s.setdatabase = 0"
    ).fetchall()
    assert {name: sorted(config) for name, config in rows} == {
        "anon": ["statement_timeout=3s"],
        "authenticated": ["statement_timeout=8s"],
        "authenticator": ["lock_timeout=8s", "statement_timeout=8s"],
    }


def test_a_new_public_table_is_fully_granted_to_the_api_roles(conn: Conn) -> None:
    """Hosted default privileges: whatever postgres creates in public is granted to the API
    roles, so only RLS (and explicit revokes) protect our tables."""
    conn.execute("create table public.hosted_shape_probe (id int)")
    conn.execute(
        "create function public.hosted_shape_probe_fn() returns int language sql as 'select 1'"
    )
    for role in ("anon", "authenticated", "service_role"):
        row = conn.execute(
            "select has_table_privilege(%s, 'public.hosted_shape_probe', "
            "'select, insert, update, delete, truncate, references, trigger'), "
            "has_function_privilege(%s, 'public.hosted_shape_probe_fn()', 'execute')",
            (role, role),
        ).fetchone()
        assert row == (True, True), role


def test_every_public_table_is_protected_by_forced_rls(conn: Conn) -> None:
    rows = conn.execute(
        "select c.relname from pg_catalog.pg_class c "
        "join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p') "
        "and not (c.relrowsecurity and c.relforcerowsecurity)"
    ).fetchall()
    assert rows == []


def test_storage_deletes_are_protected_by_statement_triggers(conn: Conn) -> None:
    rows = conn.execute(
        "select tgrelid::regclass::text, tgname, tgfoid::regprocedure::text, tgtype "
        "from pg_catalog.pg_trigger where tgname like 'protect\\_%%delete' order by 1"
    ).fetchall()
    # tgtype 10 = BEFORE (2) | DELETE (8), statement level.
    assert rows == [
        ("storage.buckets", "protect_buckets_delete", "storage.protect_delete()", 10),
        ("storage.objects", "protect_objects_delete", "storage.protect_delete()", 10),
    ]


def test_migrating_and_rolling_back_the_whole_chain_as_postgres(scratch_url: str) -> None:
    with psycopg.connect(scratch_url) as probe:
        row = probe.execute(
            "select current_user, rolsuper from pg_catalog.pg_roles where rolname = current_user"
        ).fetchone()
    assert row == ("postgres", False)
    ids = migrations.apply(scratch_url, shim="always")
    assert ids == sorted(
        path.name.removesuffix(".sql")
        for path in (ROOT / "migrations").glob("*.sql")
        if not path.name.endswith(".rollback.sql")
    )
    assert migrations.rollback(scratch_url, count=None) == ids[::-1]
    with psycopg.connect(scratch_url) as check:
        left = check.execute(
            "select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n "
            "on n.oid = c.relnamespace where n.nspname = 'public'"
        ).fetchone()
    assert left == (0,)


# --- extension parameters in SET clauses ---------------------------------------------------------


def sql_sources() -> list[Path]:
    return sorted(ROOT.glob("migrations/*.sql")) + sorted(ROOT.glob("sql/**/*.sql"))


def test_every_extension_parameter_in_a_set_clause_is_known() -> None:
    unknown = {
        f"{path.relative_to(ROOT)}: {m.group(1)}.{m.group(2)}"
        for path in sql_sources()
        for m in SET_CLAUSE.finditer(path.read_text(encoding="utf-8"))
        if m.group(1).lower() not in EXTENSION_GUCS
    }
    assert not unknown, "map the prefix to its extension in EXTENSION_GUCS and load it first"


def test_a_migration_loads_the_extension_library_before_naming_its_parameter() -> None:
    """A non-superuser (hosted Supabase's postgres) may name an extension's parameter in a
    function's SET clause only once the library is loaded in the session; yoyo opens a new
    connection per migration. Each such migration must load it first (`-- loads <extension>`)."""
    missing = []
    for path in sorted(ROOT.glob("migrations/*.sql")):
        text = path.read_text(encoding="utf-8")
        for m in SET_CLAUSE.finditer(text):
            ext = EXTENSION_GUCS.get(m.group(1).lower())
            loaded = {s.group(1) for s in LOAD_STEP.finditer(text[: m.start()])}
            if ext not in loaded:
                missing.append(f"{path.name}: set {m.group(1)}.{m.group(2)} needs `-- loads {ext}`")
    assert not missing


@pytest.mark.parametrize("extension", sorted(set(EXTENSION_GUCS.values())))
def test_the_load_step_is_what_lets_postgres_name_the_parameter(
    db_url: str, extension: str
) -> None:
    """Proven on fresh sessions as postgres: without the load step 42501, with it the function
    is created."""
    step = next(
        m.group(0).split("--")[0]
        for path in sorted(ROOT.glob("migrations/*.sql"))
        for m in LOAD_STEP.finditer(path.read_text(encoding="utf-8"))
        if m.group(1) == extension
    )
    prefix = next(p for p, e in EXTENSION_GUCS.items() if e == extension)
    name = {"hnsw": "ef_search", "ivfflat": "probes"}[prefix]
    create = (
        f"create function pg_temp.probe() returns int language sql "
        f"set {prefix}.{name} = '10' as 'select 1'"
    )
    with psycopg.connect(db_url) as fresh, pytest.raises(PermissionDenied), wrap_errors():
        fresh.execute(create)
    with psycopg.connect(db_url) as fresh:
        fresh.execute(step)
        fresh.execute(create)


# --- the embedded server ------------------------------------------------------------------------


def test_an_old_shape_data_folder_is_refused_with_a_way_out(tmp_path: Path) -> None:
    old = tmp_path / "pg16"
    old.mkdir()
    (old / "PG_VERSION").write_text("16\n")
    server = server_for(tmp_path, 16)
    assert server.old_shape()
    with pytest.raises(ConfigurationError, match=r"older renum-db.*mv .*pg16\.old"):
        server.start()
    assert not (old / MARKER).exists()


def test_db_url_never_starts_a_server(tmp_path: Path) -> None:
    env = {**os.environ, "RENUM_DATA_DIR": str(tmp_path / "data"), "RENUM_PG_VERSION": "16"}
    env.pop("DATABASE_URL", None)
    env.pop("SUPABASE_DB_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "renum_db", "db", "url"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "no embedded PostgreSQL 16 runs on" in done.stderr
    assert not (tmp_path / "data" / "pg16").exists()


def test_two_first_runs_on_a_fresh_data_folder_both_succeed(tmp_path: Path) -> None:
    """Both wait on the file lock around initdb/start; one initialises, both get the server."""
    env = {**os.environ, "RENUM_DATA_DIR": str(tmp_path), "RENUM_PG_VERSION": "16"}
    env.pop("DATABASE_URL", None)
    env.pop("SUPABASE_DB_URL", None)
    cmd = [sys.executable, "-m", "renum_db", "db", "up"]
    runs = [
        subprocess.Popen(  # noqa: S603
            cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        results = [(p.wait(120), p.stderr.read() if p.stderr else b"") for p in runs]
        assert [code for code, _ in results] == [0, 0], results
        server = server_for(tmp_path, 16)
        url = server.running_url()
        assert url is not None
        with psycopg.connect(url) as conn:
            row = conn.execute("select current_user, current_setting('is_superuser')").fetchone()
        assert row == ("postgres", "off")
    finally:
        server_for(tmp_path, 16).stop()
