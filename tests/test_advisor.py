"""Supabase's database advisor (splinter) on the migrated database: no ERROR and no WARN.

Each test is this project's own catalog query for one advisor lint (named after it), so the
suite fails the day a migration would make the dashboard's advisor complain, on a new table or
function without edits here. Scope as in the advisor: the API schema is `public` (PostgREST's
`db_schemas`); schemas owned by Supabase itself (auth, storage, extensions, realtime...) and
objects owned by extensions are out of scope.

Not checked here, and why:
- 0004 no_primary_key, 0005 unused_index, 0008 rls_enabled_no_policy, 0020 table_bloat: INFO
  about data or usage, not about the schema (every table has a primary key: test_structure).
- 0019 insecure_queue_exposed_in_api: needs pgmq, which renum-db does not use.
- 0026/0027 pg_graphql_*_table_exposed: fire on every table `authenticated` may read whenever the
  pg_graphql extension is enabled; renum-db serves its API through PostgREST only, and
  docs/operations.md tells operators to disable pg_graphql. The chain never installs it.
"""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
import pytest

# Schemas Supabase (or PostgreSQL) owns; splinter skips them too.
SUPABASE_SCHEMAS = [
    "pg_catalog", "information_schema", "pg_toast", "auth", "storage", "extensions", "realtime",
    "graphql", "graphql_public", "vault", "pgsodium", "pgsodium_masks", "supabase_functions",
    "supabase_migrations", "net", "cron", "pgbouncer",
]  # fmt: skip
API_SCHEMAS = ["public"]
ALWAYS_TRUE = ["true", "(true)", "1=1", "(1=1)"]


@pytest.fixture(scope="module")
def cat(db_url: str) -> Any:
    conn = psycopg.connect(db_url, autocommit=True)
    yield conn
    conn.close()


def findings(conn: psycopg.Connection[Any], query: LiteralString) -> list[tuple[Any, ...]]:
    params = {"supabase": SUPABASE_SCHEMAS, "api": API_SCHEMAS, "true_": ALWAYS_TRUE}
    return conn.execute(query, params).fetchall()


# --- ERROR level --------------------------------------------------------------------------------


def test_rls_disabled_in_public_finds_no_readable_table_without_rls(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select c.oid::regclass::text from pg_class as c
         where c.relkind in ('r', 'p') and not c.relrowsecurity
           and c.relnamespace::regnamespace::text = any (%(api)s)
           and (has_table_privilege('anon', c.oid, 'select')
                or has_table_privilege('authenticated', c.oid, 'select'))
    """,
        )
        == []
    )


def test_policy_exists_rls_disabled_finds_no_policy_on_a_table_without_rls(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select distinct c.oid::regclass::text from pg_policy as p
          join pg_class as c on c.oid = p.polrelid
         where not c.relrowsecurity and c.relnamespace::regnamespace::text <> all (%(supabase)s)
    """,
        )
        == []
    )


def test_security_definer_view_finds_no_exposed_view_without_security_invoker(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select c.oid::regclass::text from pg_class as c
         where c.relkind = 'v' and c.relnamespace::regnamespace::text = any (%(api)s)
           and (has_table_privilege('anon', c.oid, 'select')
                or has_table_privilege('authenticated', c.oid, 'select'))
           and not exists (select from pg_depend as d where d.objid = c.oid and d.deptype = 'e')
           and not coalesce(lower(c.reloptions::text)::text[], '{}') && array[
                 'security_invoker=1', 'security_invoker=true', 'security_invoker=yes',
                 'security_invoker=on']
    """,
        )
        == []
    )


def test_auth_users_exposed_finds_no_exposed_view_over_auth_users(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select distinct c.oid::regclass::text from pg_depend as d
          join pg_rewrite as r on r.oid = d.objid
          join pg_class as c on c.oid = r.ev_class
         where d.refobjid = 'auth.users'::regclass and c.oid <> 'auth.users'::regclass
           and c.relnamespace::regnamespace::text = any (%(api)s)
           and (has_table_privilege('anon', c.oid, 'select')
                or has_table_privilege('authenticated', c.oid, 'select'))
           and (c.relkind = 'm'
                or not coalesce(lower(c.reloptions::text)::text[], '{}') && array[
                     'security_invoker=1', 'security_invoker=true', 'security_invoker=yes',
                     'security_invoker=on'])
    """,
        )
        == []
    )


def test_rls_references_user_metadata_finds_no_policy_reading_user_metadata(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select schemaname, tablename, policyname from pg_policies
         where schemaname <> all (%(supabase)s)
           and (coalesce(qual, '') || ' ' || coalesce(with_check, ''))
               ~* 'user_metadata|raw_user_meta_data'
    """,
        )
        == []
    )


def test_fkey_to_auth_unique_finds_no_foreign_key_to_a_non_primary_auth_key(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select c.conrelid::regclass::text, c.conname from pg_constraint as c
          join pg_class as ref on ref.oid = c.confrelid
          join pg_index as i on i.indexrelid = c.conindid
         where c.contype = 'f' and ref.relnamespace = 'auth'::regnamespace
           and i.indisunique and not i.indisprimary
    """,
        )
        == []
    )


# --- WARN level ---------------------------------------------------------------------------------


def test_unsupported_reg_types_finds_no_column_pg_upgrade_would_refuse(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select a.attrelid::regclass::text, a.attname, a.atttypid::regtype::text
          from pg_attribute as a join pg_class as c on c.oid = a.attrelid
         where a.attnum > 0 and not a.attisdropped
           and c.relnamespace::regnamespace::text not in ('pg_catalog', 'information_schema')
           and a.atttypid in ('regcollation'::regtype, 'regconfig'::regtype,
                              'regdictionary'::regtype, 'regnamespace'::regtype,
                              'regoper'::regtype, 'regoperator'::regtype, 'regproc'::regtype,
                              'regprocedure'::regtype)
    """,
        )
        == []
    )


def test_function_search_path_mutable_finds_no_function_without_a_pinned_search_path(
    cat: Any,
) -> None:
    assert (
        findings(
            cat,
            """
        select p.oid::regprocedure::text from pg_proc as p
         where p.pronamespace::regnamespace::text <> all (%(supabase)s)
           and not exists (select from pg_depend as d where d.objid = p.oid and d.deptype = 'e')
           and not exists (select from unnest(coalesce(p.proconfig, '{}')) as s (setting)
                            where s.setting like 'search\\_path=%%')
    """,
        )
        == []
    )


def test_extension_in_public_finds_no_extension_in_schema_public(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select extname from pg_extension
         where extnamespace = 'public'::regnamespace and extname <> 'plpgsql'
    """,
        )
        == []
    )


def test_multiple_permissive_policies_finds_one_policy_per_role_and_action(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select c.oid::regclass::text, r.rolname, a.cmd, array_agg(p.polname order by p.polname)
          from pg_policy as p
          join pg_class as c on c.oid = p.polrelid
          join pg_roles as r on p.polroles @> array[r.oid] or p.polroles = '{0}'::oid[]
          cross join lateral unnest(case p.polcmd when 'r' then '{select}'::text[]
                                                  when 'a' then '{insert}'
                                                  when 'w' then '{update}'
                                                  when 'd' then '{delete}'
                                                  else '{select,insert,update,delete}' end)
                     as a (cmd)
         where c.relkind = 'r' and p.polpermissive
           and c.relnamespace::regnamespace::text <> all (%(supabase)s)
           and r.rolname !~ '^pg_' and r.rolname !~ '^supabase.*admin$' and not r.rolbypassrls
         group by 1, 2, 3
        having count(*) > 1
    """,
        )
        == []
    )


def test_auth_rls_initplan_finds_every_auth_call_in_policies_wrapped_in_a_select(
    cat: Any,
) -> None:
    rows = findings(cat, """
        select schemaname, tablename, policyname,
               coalesce(qual, '') || ' ' || coalesce(with_check, '')
          from pg_policies where schemaname <> all (%(supabase)s)
    """)  # fmt: skip
    calls = ("auth.uid()", "auth.jwt()", "auth.role()", "auth.email()", "current_setting(")
    unwrapped = [
        (schema, table, policy, call)
        for schema, table, policy, text in rows
        for call in calls
        if call in text and f"select {call}" not in text.lower()
    ]
    assert unwrapped == []


def test_duplicate_index_finds_no_two_identical_indexes(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select schemaname, tablename, array_agg(indexname order by indexname)
          from pg_indexes where schemaname <> all (%(supabase)s)
         group by schemaname, tablename, replace(indexdef, indexname, '')
        having count(*) > 1
    """,
        )
        == []
    )


def test_materialized_view_in_api_finds_no_readable_materialized_view(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select c.oid::regclass::text from pg_class as c
         where c.relkind = 'm' and c.relnamespace::regnamespace::text = any (%(api)s)
           and (has_table_privilege('anon', c.oid, 'select')
                or has_table_privilege('authenticated', c.oid, 'select'))
    """,
        )
        == []
    )


def test_foreign_table_in_api_finds_no_readable_foreign_table(cat: Any) -> None:
    assert (
        findings(
            cat,
            """
        select c.oid::regclass::text from pg_class as c
         where c.relkind = 'f' and c.relnamespace::regnamespace::text = any (%(api)s)
           and (has_table_privilege('anon', c.oid, 'select')
                or has_table_privilege('authenticated', c.oid, 'select'))
    """,
        )
        == []
    )


def test_rls_policy_always_true_finds_no_policy_that_lets_everything_through(cat: Any) -> None:
    assert findings(cat, """
        select p.schemaname, p.tablename, p.policyname from pg_policies as p
          join pg_class as c on c.oid = format('%%I.%%I', p.schemaname, p.tablename)::regclass
         where c.relkind = 'r' and c.relrowsecurity and p.permissive = 'PERMISSIVE'
           and p.schemaname <> all (%(supabase)s)
           and p.roles && '{public,anon,authenticated}'::name[]
           and ((p.cmd in ('UPDATE', 'DELETE', 'ALL')
                 and (p.qual is null
                      or regexp_replace(lower(p.qual), '\\s', '', 'g') = any (%(true_)s)))
                or regexp_replace(lower(coalesce(p.with_check, '')), '\\s', '', 'g')
                   = any (%(true_)s)
                or (p.cmd = 'INSERT' and p.with_check is null))
    """) == []  # fmt: skip


def test_public_bucket_allows_listing_finds_no_public_bucket(cat: Any) -> None:
    assert findings(cat, "select id from storage.buckets where public") == []


def test_no_security_definer_function_in_the_api_is_executable_by_anon_or_authenticated(
    cat: Any,
) -> None:
    assert (
        findings(
            cat,
            """
        select p.oid::regprocedure::text from pg_proc as p
         where p.prosecdef and p.pronamespace::regnamespace::text = any (%(api)s)
           and (has_function_privilege('anon', p.oid, 'execute')
                or has_function_privilege('authenticated', p.oid, 'execute'))
    """,
        )
        == []
    )


def test_extension_versions_outdated_finds_every_extension_at_its_default_version(
    cat: Any,
) -> None:
    assert (
        findings(
            cat,
            """
        select name, installed_version, default_version from pg_available_extensions
         where installed_version is not null and installed_version <> default_version
    """,
        )
        == []
    )


def test_the_chain_does_not_install_pg_graphql(cat: Any) -> None:
    assert findings(cat, "select extname from pg_extension where extname = 'pg_graphql'") == []


# --- INFO level kept at zero ----------------------------------------------------------------------


def test_unindexed_foreign_keys_finds_every_foreign_key_covered_by_an_index(cat: Any) -> None:
    assert findings(cat, """
        select c.conrelid::regclass::text, c.conname from pg_constraint as c
         where c.contype = 'f'
           and c.connamespace::regnamespace::text <> all (%(supabase)s)
           and not exists (
                 select from pg_index as i
                  where i.indrelid = c.conrelid and i.indisvalid
                    and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(c.conkey)]
                        @> c.conkey
                    and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(c.conkey)]
                        <@ c.conkey)
    """) == []  # fmt: skip
