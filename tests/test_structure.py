"""Catalog-driven structure checks on the migrated database.

Every check reads the system catalogs, so a table, policy, function or foreign key added by a
later migration is covered without touching this file. Each test first asserts that it found
something to check, so an empty query can never pass for a clean schema.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]

# Schemas owned by PostgreSQL, Supabase services or extensions: never created by our migrations.
FOREIGN_SCHEMAS = ["pg_catalog", "information_schema", "pg_toast", "auth", "storage", "extensions"]
YOYO_TABLES = {"_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock"}


def public_tables(conn: Conn) -> list[str]:
    rows = conn.execute(
        """
        select c.relname from pg_catalog.pg_class as c
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
        order by 1
        """
    ).fetchall()
    names = [str(r[0]) for r in rows]
    assert names, "no table in public: the checks would be vacuous"
    return names


def tables_with_column(conn: Conn, column: str) -> list[str]:
    rows = conn.execute(
        """
        select c.relname from pg_catalog.pg_class as c
        join pg_catalog.pg_attribute as a on a.attrelid = c.oid
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
          and a.attname = %s and a.attnum > 0 and not a.attisdropped
        order by 1
        """,
        (column,),
    ).fetchall()
    names = [str(r[0]) for r in rows]
    assert names, f"no table in public has a {column} column"
    return names


def policies(conn: Conn) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        """
        select tablename, policyname, roles::text[], permissive, cmd, qual, with_check
        from pg_catalog.pg_policies where schemaname = 'public' order by 1, 2
        """
    ).fetchall()
    assert rows, "no policy in public"
    return rows


def definer_functions(conn: Conn) -> list[tuple[Any, ...]]:
    """(signature, schema, proconfig, oid, owner) of every security definer function that is
    neither PostgreSQL's, a Supabase service's nor an extension's."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text, n.nspname, p.proconfig, p.oid, p.proowner
        from pg_catalog.pg_proc as p
        join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
        where p.prosecdef
          and n.nspname <> all(%s) and n.nspname !~ '^pg_'
          and not exists (
            select from pg_catalog.pg_depend as d
            where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid
              and d.deptype = 'e')
        order by 1
        """,
        (FOREIGN_SCHEMAS,),
    ).fetchall()
    assert rows, "no security definer function found"
    return rows


_HELPER_CALL = re.compile(
    r"(?:\b(?:auth|private)\.\w+\()|(?:(?<![\w.])(?:current_client_id|uid|jwt)\()"
)


def unwrapped_helper_calls(expression: str | None) -> list[str]:
    """Helper calls in a deparsed policy expression that are not the whole of a subselect
    (`( SELECT private.current_client_id(...) AS ...)`), so would run once per row."""
    if not expression:
        return []
    return [
        m.group(0)
        for m in _HELPER_CALL.finditer(expression)
        if not expression[: m.start()].endswith("SELECT ") and m.group(0) not in ROW_FUNCTIONS
    ]


# Immutable functions of the row's own columns: they must run per row, by definition.
ROW_FUNCTIONS = frozenset({"private.storage_object_client_id("})


def triggers_calling(conn: Conn, function: str) -> dict[str, list[tuple[int, list[int]]]]:
    """table -> [(tgtype, tgattr)] for the user triggers on public tables calling `function`."""
    rows = conn.execute(
        """
        select c.relname, t.tgtype, t.tgattr::int2[]
        from pg_catalog.pg_trigger as t
        join pg_catalog.pg_class as c on c.oid = t.tgrelid
        where not t.tgisinternal and c.relnamespace = 'public'::regnamespace
          and t.tgfoid = %s::regprocedure
        """,
        (function,),
    ).fetchall()
    found: dict[str, list[tuple[int, list[int]]]] = {}
    for table, tgtype, tgattr in rows:
        found.setdefault(str(table), []).append((int(tgtype), list(tgattr)))
    return found


TG_ROW, TG_BEFORE, TG_UPDATE = 1, 2, 16


def is_before_update_row_trigger(tgtype: int) -> bool:
    return all(tgtype & bit for bit in (TG_ROW, TG_BEFORE, TG_UPDATE))


# --- row level security -------------------------------------------------------------------------


def test_every_public_table_has_row_level_security_enabled(conn: Conn) -> None:
    rows = conn.execute(
        "select relname from pg_catalog.pg_class where relnamespace = 'public'::regnamespace "
        "and relkind in ('r', 'p') and not relrowsecurity"
    ).fetchall()
    assert public_tables(conn)
    assert rows == []


def test_every_public_table_has_row_level_security_forced(conn: Conn) -> None:
    rows = conn.execute(
        "select relname from pg_catalog.pg_class where relnamespace = 'public'::regnamespace "
        "and relkind in ('r', 'p') and not relforcerowsecurity"
    ).fetchall()
    assert public_tables(conn)
    assert rows == []


# --- policies -----------------------------------------------------------------------------------


def test_no_public_policy_applies_to_the_public_role(conn: Conn) -> None:
    offenders = [(t, p, roles) for t, p, roles, *_ in policies(conn) if "public" in roles]
    assert offenders == []


def test_every_public_policy_is_permissive(conn: Conn) -> None:
    offenders = [(t, p, perm) for t, p, _, perm, *_ in policies(conn) if perm != "PERMISSIVE"]
    assert offenders == []


def test_every_public_policy_covers_exactly_one_command(conn: Conn) -> None:
    offenders = [(t, p, cmd) for t, p, _, _, cmd, *_ in policies(conn) if cmd == "ALL"]
    assert offenders == []


def test_every_helper_call_in_a_policy_is_wrapped_in_a_subselect(conn: Conn) -> None:
    offenders = [
        (t, p, call)
        for t, p, *_, qual, with_check in policies(conn)
        for call in unwrapped_helper_calls(qual) + unwrapped_helper_calls(with_check)
    ]
    assert offenders == []


def test_the_unwrapped_call_detector_flags_bare_helper_calls() -> None:
    wrapped = (
        "((client_id = ( SELECT private.current_client_id('admin'::text) AS current_client_id)) "
        "AND (id <> ( SELECT auth.uid() AS uid)))"
    )
    bare = "((client_id = private.current_client_id('admin'::text)) AND (id <> auth.uid()))"
    assert unwrapped_helper_calls(wrapped) == []
    assert unwrapped_helper_calls(bare) == ["private.current_client_id(", "auth.uid("]


# --- security definer functions -----------------------------------------------------------------


def test_every_security_definer_function_lives_in_schema_private(conn: Conn) -> None:
    offenders = [sig for sig, schema, *_ in definer_functions(conn) if schema != "private"]
    assert offenders == []


def test_every_security_definer_function_pins_an_empty_search_path(conn: Conn) -> None:
    offenders = [
        (sig, config)
        for sig, _, config, *_ in definer_functions(conn)
        if 'search_path=""' not in (config or [])
    ]
    assert offenders == []


def test_no_security_definer_function_is_executable_by_anon(conn: Conn) -> None:
    offenders = [
        sig
        for sig, _, _, oid, _ in definer_functions(conn)
        if conn.execute(
            "select pg_catalog.has_function_privilege('anon', %s, 'EXECUTE')", (oid,)
        ).fetchone()
        != (False,)
    ]
    assert offenders == []


def test_no_security_definer_function_is_executable_by_public(conn: Conn) -> None:
    offenders = [
        sig
        for sig, _, _, oid, _ in definer_functions(conn)
        if conn.execute(
            """
            select exists (
              select from pg_catalog.pg_proc as p,
                pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)))
                  as a
              where p.oid = %s and a.grantee = 0 and a.privilege_type = 'EXECUTE')
            """,
            (oid,),
        ).fetchone()
        != (False,)
    ]
    assert offenders == []


def test_every_security_definer_function_is_owned_by_a_role_that_bypasses_rls(
    conn: Conn,
) -> None:
    offenders = [
        sig
        for sig, _, _, _, owner in definer_functions(conn)
        if conn.execute(
            "select rolsuper or rolbypassrls from pg_catalog.pg_roles where oid = %s", (owner,)
        ).fetchone()
        != (True,)
    ]
    assert offenders == []


def test_no_function_in_public_is_security_definer(conn: Conn) -> None:
    rows = conn.execute(
        """
        select p.oid::regprocedure::text from pg_catalog.pg_proc as p
        where p.pronamespace = 'public'::regnamespace and p.prosecdef
        """
    ).fetchall()
    assert rows == []


# --- privileges ---------------------------------------------------------------------------------


COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")


def holds(conn: Conn, role: str, table: str, privilege: str) -> bool:
    """Whether `role` holds `privilege` on public.`table`, on the table or on any column."""
    target = f"public.{table}"
    row = conn.execute(
        "select pg_catalog.has_table_privilege(%s, %s, %s)", (role, target, privilege)
    ).fetchone()
    if row != (False,):
        return True
    if privilege in COLUMN_PRIVILEGES:
        row = conn.execute(
            "select pg_catalog.has_any_column_privilege(%s, %s, %s)", (role, target, privilege)
        ).fetchone()
        return row != (False,)
    return False


def test_api_roles_hold_no_truncate_references_or_trigger_privilege_on_public_tables(
    conn: Conn,
) -> None:
    offenders = [
        (role, table, privilege)
        for table in public_tables(conn)
        for role in ("anon", "authenticated")
        for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER")
        if holds(conn, role, table, privilege)
    ]
    assert offenders == []


def test_anon_holds_no_privilege_on_any_public_table(conn: Conn) -> None:
    version = conn.execute("select current_setting('server_version_num')::int").fetchone()
    assert version is not None
    privileges = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
    if version[0] >= 170000:
        privileges.append("MAINTAIN")
    offenders = [
        (table, privilege)
        for table in public_tables(conn)
        for privilege in privileges
        if holds(conn, "anon", table, privilege)
    ]
    assert offenders == []


def test_authenticated_cannot_select_api_credentials_encrypted_value(conn: Conn) -> None:
    row = conn.execute(
        "select pg_catalog.has_column_privilege('authenticated', 'public.api_credentials', "
        "'encrypted_value', 'SELECT')"
    ).fetchone()
    assert row == (False,)


# --- foreign keys and indexes -------------------------------------------------------------------


def public_foreign_keys(conn: Conn) -> list[tuple[Any, ...]]:
    """(name, table oid, table, columns, referenced oid, referenced schema, referenced columns)."""
    rows = conn.execute(
        """
        select c.conname, c.conrelid, t.relname, c.conkey,
               c.confrelid, f.relnamespace::regnamespace::text, c.confkey
        from pg_catalog.pg_constraint as c
        join pg_catalog.pg_class as t on t.oid = c.conrelid
        join pg_catalog.pg_class as f on f.oid = c.confrelid
        where c.contype = 'f' and t.relnamespace = 'public'::regnamespace
        order by 1
        """
    ).fetchall()
    assert rows, "no foreign key in public"
    return rows


def client_id_attnum(conn: Conn, relid: int) -> int | None:
    row = conn.execute(
        "select attnum from pg_catalog.pg_attribute "
        "where attrelid = %s and attname = 'client_id' and not attisdropped",
        (relid,),
    ).fetchone()
    return int(row[0]) if row else None


def test_every_foreign_key_between_tenant_tables_includes_client_id(conn: Conn) -> None:
    checked, offenders = 0, []
    for name, relid, _, conkey, frelid, fschema, confkey in public_foreign_keys(conn):
        if fschema != "public":
            continue
        own, referenced = client_id_attnum(conn, relid), client_id_attnum(conn, frelid)
        if own is None or referenced is None:
            continue
        checked += 1
        pairs = list(zip(conkey, confkey, strict=True))
        if (own, referenced) not in pairs:
            offenders.append(name)
    assert checked, "no foreign key between two tenant tables"
    assert offenders == []


def test_every_public_foreign_key_is_backed_by_an_index_on_its_columns(conn: Conn) -> None:
    offenders = []
    for name, relid, table, conkey, *_ in public_foreign_keys(conn):
        indexes = conn.execute(
            "select indkey::int2[] from pg_catalog.pg_index "
            "where indrelid = %s and indpred is null and indisvalid",
            (relid,),
        ).fetchall()
        wanted = set(conkey)
        if not any(set(cols[: len(conkey)]) == wanted for (cols,) in indexes):
            offenders.append((table, name))
    assert offenders == []


# --- tenant tables ------------------------------------------------------------------------------


def test_every_tenant_table_except_users_has_a_not_null_client_id(conn: Conn) -> None:
    nullable = conn.execute(
        """
        select c.relname from pg_catalog.pg_class as c
        join pg_catalog.pg_attribute as a on a.attrelid = c.oid
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
          and a.attname = 'client_id' and not a.attnotnull
        order by 1
        """
    ).fetchall()
    assert len(tables_with_column(conn, "client_id")) > 1
    assert [r[0] for r in nullable] == ["users"]


def test_every_table_with_updated_at_sets_it_in_a_before_update_trigger(conn: Conn) -> None:
    found = triggers_calling(conn, "private.tg__set_updated_at()")
    offenders = [
        table
        for table in tables_with_column(conn, "updated_at")
        if not any(
            is_before_update_row_trigger(tgtype) and not tgattr  # fires on every update
            for tgtype, tgattr in found.get(table, [])
        )
    ]
    assert offenders == []


def test_every_tenant_table_except_users_forbids_client_id_changes_by_trigger(
    conn: Conn,
) -> None:
    found = triggers_calling(conn, "private.tg__forbid_client_id_change()")
    offenders = [
        table
        for table in tables_with_column(conn, "client_id")
        if table != "users"
        and not any(is_before_update_row_trigger(tgtype) for tgtype, _ in found.get(table, []))
    ]
    assert offenders == []


# --- realtime and comments ----------------------------------------------------------------------


def test_investigations_is_published_to_supabase_realtime(conn: Conn) -> None:
    row = conn.execute(
        "select exists (select from pg_catalog.pg_publication_tables where pubname = "
        "'supabase_realtime' and schemaname = 'public' and tablename = 'investigations')"
    ).fetchone()
    assert row == (True,)


def test_every_function_in_private_has_a_comment(conn: Conn) -> None:
    rows = conn.execute(
        "select p.oid::regprocedure::text, pg_catalog.obj_description(p.oid, 'pg_proc') "
        "from pg_catalog.pg_proc as p where p.pronamespace = 'private'::regnamespace"
    ).fetchall()
    assert rows, "no function in private"
    assert [sig for sig, comment in rows if not comment] == []


def test_every_public_table_has_a_comment(conn: Conn) -> None:
    offenders = [
        table
        for table in public_tables(conn)
        if conn.execute(
            "select pg_catalog.obj_description(%s::regclass, 'pg_class')", (f"public.{table}",)
        ).fetchone()
        in (None, (None,), ("",))
    ]
    assert offenders == []


# --- yoyo bookkeeping ---------------------------------------------------------------------------


def test_yoyo_keeps_its_tables_in_the_renum_migrations_schema(conn: Conn) -> None:
    rows = conn.execute(
        "select relname from pg_catalog.pg_class "
        "where relnamespace = 'renum_migrations'::regnamespace and relkind = 'r'"
    ).fetchall()
    assert {r[0] for r in rows} >= YOYO_TABLES


def test_nothing_of_yoyo_is_in_public(conn: Conn) -> None:
    rows = conn.execute(
        "select relname from pg_catalog.pg_class "
        "where relnamespace = 'public'::regnamespace and relname ~* 'yoyo'"
    ).fetchall()
    assert rows == []
