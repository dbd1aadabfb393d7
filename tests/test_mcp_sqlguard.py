"""Layer 1 of the MCP `query` tool on its own: the pglast check, no database involved."""

from __future__ import annotations

import pytest

from renum_db.mcp.sqlguard import MAX_QUERY_LENGTH, QueryRefused, check_query

ACCEPTED = [
    "select id, name from documents",
    "SELECT d.name, count(c.id) FROM public.documents d"
    " LEFT JOIN document_chunks c ON c.document_id = d.id GROUP BY d.name ORDER BY 2 DESC",
    "with recent as (select * from documents order by created_at desc limit 5)"
    " select name from recent",
    "select name, row_number() over (order by created_at) from documents",
    "values (1, 'a'), (2, 'b')",
    "table documents",
    "select extract(year from created_at), date_trunc('month', created_at) from documents",
    "select lower(name), coalesce(error, '-'), greatest(1, 2) from documents",
    "select metadata ->> 'k', jsonb_typeof(metadata) from documents",
    "select content from document_chunks where fts @@ websearch_to_tsquery('simple', 'prazo')",
    "select extensions.cosine_distance(embedding, embedding) from document_chunks",
    "select id from documents where id = auth.uid()",
    "select 1 /* ; drop table documents */",
    "select ';' as semicolon, $$ ; delete from documents $$ as dollar",
    "with pg_settings as (select 1 as x) select x from pg_settings",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_a_plain_select_is_accepted(text: str) -> None:
    checked = check_query(text)
    assert checked.original == text
    assert checked.sql.upper().startswith(("SELECT", "WITH", "VALUES", "TABLE"))


def test_what_runs_is_the_deparsed_statement_without_comments() -> None:
    checked = check_query("select 1 -- trailing\n /* block */")
    assert "--" not in checked.sql
    assert "/*" not in checked.sql
    assert checked.sql == "SELECT 1"


REFUSED = [
    ("insert into documents (name) values ('x')", "only SELECT"),
    ("update documents set name = 'x'", "only SELECT"),
    ("delete from documents", "only SELECT"),
    ("merge into documents d using documents s on d.id = s.id when matched then delete", "SELECT"),
    ("select 1; select 2", "exactly one statement"),
    ("select 1; delete from documents", "exactly one statement"),
    ("", "empty"),
    ("   ", "empty"),
    ("-- only a comment", "no statement"),
    ("select * into new_table from documents", "SELECT ... INTO"),
    ("select * from documents for update", "locking"),
    ("select * from documents for share skip locked", "locking"),
    ("select * from (select * from documents for no key update) d", "locking"),
    ("with d as (delete from documents returning *) select * from d", "data-modifying"),
    ("with d as (update documents set name = 'x' returning *) select 1", "data-modifying"),
    ("select set_config('role', 'service_role', false)", "set_config"),
    ("select pg_catalog.set_config('request.jwt.claims', '{}', true)", "set_config"),
    ("select current_setting('app.settings.jwt_secret')", "current_setting"),
    ("select pg_sleep(10)", "pg_sleep"),
    ("select pg_read_file('/etc/passwd')", "pg_read_file"),
    ("select lo_import('/etc/passwd')", "lo_import"),
    ("select * from dblink('host=x', 'select 1') as t(a int)", "dblink"),
    ("select pg_terminate_backend(1)", "pg_terminate_backend"),
    ("select nextval('x')", "nextval"),
    ("select query_to_xml('select * from auth.users', true, true, '')", "query_to_xml"),
    ("select public.search_embeddings(null)", "public.search_embeddings"),
    ("select private.current_client_id('admin')", "private.current_client_id"),
    ('select "PG_SLEEP"(1)', "PG_SLEEP"),
    ("select * from pg_settings", "system catalogs"),
    ("select * from pg_catalog.pg_authid", "pg_catalog.pg_authid"),
    ("select * from information_schema.tables", "information_schema.tables"),
    ("select * from auth.users", "auth.users"),
    ("select * from private.anything", "private.anything"),
    ("select * from storage.objects", "storage.objects"),
    ("select encrypted_value from api_credentials", "encrypted_value"),
    ("select c.encrypted_value from api_credentials as c", "encrypted_value"),
    ("select xmlparse(document '<a/>')", "XML"),
    ("select $1", "parameters"),
    ("explain analyze delete from documents", "EXPLAIN"),
    ("explain select 1", "EXPLAIN"),
    ("copy documents to stdout", "COPY"),
    ("copy (select 1) to program 'id'", "COPY"),
    ("set role service_role", "SET / RESET"),
    ("reset role", "SET / RESET"),
    ("set session authorization postgres", "SET / RESET"),
    ("begin", "transaction control"),
    ("do $$ begin perform 1; end $$", "DO"),
    ("call some_procedure()", "CALL"),
    ("create table x (a int)", "CREATE"),
    ("drop table documents", "DROP"),
    ("grant all on documents to anon", "GRANT"),
    ("lock table documents", "LOCK"),
    ("select 1 from documents where 1 = 1) as x; delete from documents; select (1", "SQL"),
    ("select 'unterminated", "not valid SQL"),
    ("select 1 OPERATOR(public.+) 2", "operator"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_a_statement_outside_the_rules_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(QueryRefused) as caught:
        check_query(text)
    assert reason.lower() in str(caught.value).lower()


def test_a_query_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(QueryRefused, match="longer than"):
        check_query("select 1" + " " * MAX_QUERY_LENGTH)


def test_a_nul_character_is_refused() -> None:
    with pytest.raises(QueryRefused, match="NUL"):
        check_query("select 1\x00")


def test_every_problem_of_a_statement_is_named_once() -> None:
    with pytest.raises(QueryRefused) as caught:
        check_query("select pg_sleep(1), pg_sleep(2), set_config('a', 'b', true) from auth.users")
    message = str(caught.value)
    assert message.count("pg_sleep") == 1
    assert "set_config" in message
    assert "auth.users" in message
