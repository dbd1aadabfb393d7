"""The schema stays distributable by client_id (Citus, or declarative partitioning by client_id):
the rules Citus enforces on tables distributed by a column, held here on the catalog so that a new
table or constraint that breaks them fails at once. docs/scale-out.md is the plan these checks
follow; the test also keeps its table list true."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

Conn = psycopg.Connection[Any]

ROOT = Path(__file__).resolve().parent.parent
# Small tables every shard needs whole (Citus reference tables), each for a reason given in
# docs/scale-out.md. Every other table in public/private is distributed by client_id.
REFERENCE_TABLES = {"public.clients", "public.users", "private.tenant_chunk_indexes"}
# Foreign keys from a distributed table to a table outside the distributed schema (Supabase's
# auth.users): Citus needs auth.users as a reference table or the key dropped (docs/scale-out.md).
FOREIGN_KEYS_TO_SUPABASE = {"public.document_versions.document_versions_changed_by_fkey"}


def tables(conn: Conn) -> set[str]:
    rows = conn.execute(
        "select n.nspname || '.' || c.relname from pg_catalog.pg_class as c "
        "join pg_catalog.pg_namespace as n on n.oid = c.relnamespace "
        "where c.relkind in ('r', 'p') and n.nspname in ('public', 'private')"
    ).fetchall()
    return {r[0] for r in rows}


def distributed(conn: Conn) -> set[str]:
    return tables(conn) - REFERENCE_TABLES


def test_every_distributed_table_has_a_not_null_client_id(conn: Conn) -> None:
    rows = conn.execute(
        "select c.oid::regclass::text from pg_catalog.pg_class as c "
        "join pg_catalog.pg_attribute as a on a.attrelid = c.oid and a.attname = 'client_id' "
        "where a.attnotnull and c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)"
    ).fetchall()
    with_client = {r[0] if "." in r[0] else f"public.{r[0]}" for r in rows}
    assert distributed(conn) - with_client == set()


def test_every_distributed_table_is_keyed_by_client_id_then_id(conn: Conn) -> None:
    keys = {}
    for table in sorted(distributed(conn)):
        row = conn.execute(
            "select pg_catalog.pg_get_constraintdef(oid) from pg_catalog.pg_constraint "
            "where conrelid = %s::regclass and contype = 'p'",
            (table,),
        ).fetchone()
        keys[table] = row[0] if row else None
    assert keys
    assert {t: k for t, k in keys.items() if k != "PRIMARY KEY (client_id, id)"} == {}


def unique_indexes(conn: Conn) -> list[tuple[str, str, str, list[str]]]:
    """(table, index, constraint name or '', columns) of every unique index in public/private."""
    rows = conn.execute(
        "select i.indrelid::regclass::text, i.indexrelid::regclass::text, "
        "coalesce(con.conname, ''), "
        "array(select a.attname::text from unnest(i.indkey) with ordinality as k (attnum, ord) "
        "      join pg_catalog.pg_attribute as a "
        "        on a.attrelid = i.indrelid and a.attnum = k.attnum "
        "      order by k.ord) "
        "from pg_catalog.pg_index as i "
        "join pg_catalog.pg_class as c on c.oid = i.indrelid "
        "left join pg_catalog.pg_constraint as con on con.conindid = i.indexrelid "
        "where i.indisunique "
        "and c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)"
    ).fetchall()
    return [(r[0] if "." in r[0] else f"public.{r[0]}", r[1], r[2], list(r[3])) for r in rows]


def test_every_unique_index_of_a_distributed_table_includes_client_id_but_the_id_guards(
    conn: Conn,
) -> None:
    """Citus refuses a unique index without the distribution column. The one exception is the
    single-node guard `<table>_id_key` unique (id) that keeps PostgREST's `id` filters, upserts
    and one-to-one embeds working; docs/scale-out.md drops it as the first step of distribution."""
    dist = distributed(conn)
    checked = [u for u in unique_indexes(conn) if u[0] in dist]
    offenders = [
        u
        for u in checked
        if "client_id" not in u[3]
        and not (u[3] == ["id"] and u[2] == f"{u[0].split('.')[1]}_id_key")
    ]
    assert checked
    assert offenders == []


def test_every_distributed_table_keeps_id_unique_for_postgrest(conn: Conn) -> None:
    """Only for the tables PostgREST exposes (schema public): a private table is never filtered
    by id over the API (private.document_chunk_texts shares document_chunks' ids)."""
    guarded = {u[0] for u in unique_indexes(conn) if u[3] == ["id"]}
    exposed = {t for t in distributed(conn) if t.startswith("public.")}
    assert exposed - guarded == set()


def foreign_keys(conn: Conn) -> list[tuple[str, str, str, list[str], list[str]]]:
    rows = conn.execute(
        "select c.conrelid::regclass::text, c.conname, "
        "fn.nspname || '.' || fc.relname, "
        "array(select a.attname::text from unnest(c.conkey) with ordinality as k (n, o) "
        "      join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.n "
        "      order by k.o), "
        "array(select a.attname::text from unnest(c.confkey) with ordinality as k (n, o) "
        "      join pg_catalog.pg_attribute as a on a.attrelid = c.confrelid and a.attnum = k.n "
        "      order by k.o) "
        "from pg_catalog.pg_constraint as c "
        "join pg_catalog.pg_class as fc on fc.oid = c.confrelid "
        "join pg_catalog.pg_namespace as fn on fn.oid = fc.relnamespace "
        "where c.contype = 'f' "
        "and c.connamespace in ('public'::regnamespace, 'private'::regnamespace)"
    ).fetchall()
    return [(r[0] if "." in r[0] else f"public.{r[0]}", r[1], r[2], r[3], r[4]) for r in rows]


def test_foreign_keys_between_distributed_tables_pair_client_id_with_client_id(
    conn: Conn,
) -> None:
    dist = distributed(conn)
    between = [fk for fk in foreign_keys(conn) if fk[0] in dist and fk[2] in dist]
    offenders = [
        fk[1] for fk in between if ("client_id", "client_id") not in zip(fk[3], fk[4], strict=True)
    ]
    assert between
    assert offenders == []


def test_no_reference_table_points_at_a_distributed_table(conn: Conn) -> None:
    dist = distributed(conn)
    assert [fk[1] for fk in foreign_keys(conn) if fk[0] in REFERENCE_TABLES and fk[2] in dist] == []


def test_distributed_tables_reference_outside_tables_only_where_documented(conn: Conn) -> None:
    ours = tables(conn)
    dist = distributed(conn)
    outside = {
        f"{fk[0]}.{fk[1]}" for fk in foreign_keys(conn) if fk[0] in dist and fk[2] not in ours
    }
    assert outside == FOREIGN_KEYS_TO_SUPABASE


@pytest.mark.parametrize("kind", ["distributed", "reference"])
def test_docs_scale_out_lists_every_table_under_its_kind(conn: Conn, kind: str) -> None:
    text = (ROOT / "docs" / "scale-out.md").read_text(encoding="utf-8")
    listed = set(re.findall(rf"^\| `([a-z_]+\.[a-z_]+)` \| {kind} \|", text, flags=re.M))
    expected = distributed(conn) if kind == "distributed" else REFERENCE_TABLES
    assert listed == expected
