"""private.document_chunk_texts (migration 0021): the packed copy of every chunk's fts and
document that hybrid search's text side reads. It must equal document_chunks after every kind of
write (insert, multi-row insert, COPY, update of the text, the language or the document, delete,
a document's deletion cascading), and no API role may read or write it."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from renum_db.errors import PermissionDenied
from tests.support import World, acting, claims_for

Conn = psycopg.Connection[Any]

DIFF = """
select count(*)
  from public.document_chunks as c
  full join private.document_chunk_texts as t on t.client_id = c.client_id and t.id = c.id
 where c.id is null or t.id is null
    or t.document_id is distinct from c.document_id
    or t.fts is distinct from c.fts
"""


def mismatches(conn: Conn) -> int:
    row = conn.execute(DIFF).fetchone()
    assert row is not None
    return int(row[0])


def texts_row(conn: Conn, chunk: uuid.UUID) -> tuple[Any, ...] | None:
    return conn.execute(
        "select document_id, fts::text from private.document_chunk_texts where id = %s", (chunk,)
    ).fetchone()


def a_document(conn: Conn, world: World, name: str) -> uuid.UUID:
    row = conn.execute(
        "insert into public.documents (client_id, collection_id, name) "
        "select d.client_id, d.collection_id, %s from public.documents as d "
        "where d.client_id = %s limit 1 returning id",
        (name, world.a.client_id),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def test_every_chunk_of_the_seeded_world_has_its_packed_text(conn: Conn, world: World) -> None:
    assert conn.execute("select count(*) from private.document_chunk_texts").fetchone() != (0,)
    assert mismatches(conn) == 0


def test_inserts_and_copy_write_the_packed_texts(conn: Conn, world: World) -> None:
    doc = a_document(conn, world, "texts.md")
    conn.execute(
        "insert into public.document_chunks (client_id, document_id, content, chunk_index) "
        "select %s, %s, 'contrato de prestação ' || i, i from generate_series(0, 9) as i",
        (world.a.client_id, doc),
    )
    with conn.cursor().copy(
        "copy public.document_chunks (client_id, document_id, content, chunk_index) from stdin"
    ) as copy:
        for i in range(10, 15):
            copy.write_row((world.a.client_id, doc, f"multa contratual {i}", i))
    row = conn.execute(
        "select count(*) from private.document_chunk_texts where document_id = %s", (doc,)
    ).fetchone()
    assert row == (15,)
    assert mismatches(conn) == 0


def test_updates_of_the_text_the_language_or_the_document_follow(conn: Conn, world: World) -> None:
    doc = a_document(conn, world, "moves.md")
    other = a_document(conn, world, "target.md")
    row = conn.execute(
        "insert into public.document_chunks (client_id, document_id, content, chunk_index) "
        "values (%s, %s, 'os contratos vencem', 0) returning id",
        (world.a.client_id, doc),
    ).fetchone()
    assert row is not None
    chunk = row[0]
    before = texts_row(conn, chunk)
    conn.execute(
        "update public.document_chunks set content = 'reajuste anual' where id = %s", (chunk,)
    )
    after_text = texts_row(conn, chunk)
    conn.execute(
        "update public.document_chunks set text_search_config = 'simple' where id = %s", (chunk,)
    )
    after_language = texts_row(conn, chunk)
    conn.execute("update public.document_chunks set document_id = %s where id = %s", (other, chunk))
    after_move = texts_row(conn, chunk)
    assert before is not None
    assert after_text is not None
    assert after_language is not None
    assert before[1] != after_text[1]
    assert after_text[1] != after_language[1]  # 'anual' is stemmed in Portuguese, not in simple
    assert after_move == (other, after_language[1])
    assert mismatches(conn) == 0


def test_deleting_a_chunk_or_its_document_removes_the_packed_text(conn: Conn, world: World) -> None:
    doc = a_document(conn, world, "gone.md")
    ids = [
        r[0]
        for r in conn.execute(
            "insert into public.document_chunks (client_id, document_id, content, chunk_index) "
            "select %s, %s, 'garantia ' || i, i from generate_series(0, 2) as i returning id",
            (world.a.client_id, doc),
        ).fetchall()
    ]
    conn.execute("delete from public.document_chunks where id = %s", (ids[0],))
    assert texts_row(conn, ids[0]) is None
    assert texts_row(conn, ids[1]) is not None
    conn.execute("delete from public.documents where id = %s", (doc,))
    assert [texts_row(conn, c) for c in ids] == [None, None, None]
    assert mismatches(conn) == 0


@pytest.mark.parametrize(
    "actor", ["anon", "other", "viewer", "member", "admin", "service", "custom", "nobody"]
)
@pytest.mark.parametrize(
    "statement",
    [
        "select count(*) from private.document_chunk_texts",
        "delete from private.document_chunk_texts",
        "update private.document_chunk_texts set fts = ''",
    ],
)
def test_no_api_role_may_touch_the_packed_texts(
    conn: Conn, world: World, actor: str, statement: str
) -> None:
    claims = claims_for(conn, world, actor)
    with pytest.raises(PermissionDenied), acting(conn, claims):
        conn.execute(statement)


def test_the_vector_stays_in_the_row_and_the_text_vector_out_of_it(conn: Conn) -> None:
    # A chunk's tsvector stored in the row next to its 6 KB vector would push a real chunk past
    # a page, and PostgreSQL would then move the vector itself to TOAST (docs/retrieval.md).
    rows = dict(
        conn.execute(
            "select attname, attstorage from pg_catalog.pg_attribute "
            "where attrelid = 'public.document_chunks'::regclass "
            "and attname in ('embedding', 'fts')"
        ).fetchall()
    )
    assert rows == {"embedding": "m", "fts": "x"}


def _toast_bytes(conn: Conn) -> int:
    row = conn.execute(
        "select pg_catalog.pg_relation_size(c.reltoastrelid) from pg_catalog.pg_class as c "
        "where c.oid = 'public.document_chunks'::regclass"
    ).fetchone()
    assert row is not None
    return int(row[0])


# copies of the seeded chunks with a 1536-d vector and a new text of ~400 poorly compressible
# bytes each (a row of about 7 KB with its text vector)
_COPY_CHUNKS = (
    "insert into public.document_chunks (client_id, document_id, content, chunk_index, metadata,"
    " embedding)"
    " select c.client_id, c.document_id,"
    " (select string_agg(md5(c.id::text || n::text || g::text || %s), ' ')"
    " from generate_series(1, 12) as g),"
    " c.chunk_index + %s + n * 1000, c.metadata,"
    " array_fill(0.03::real, array[1536])::extensions.vector"
    " from public.document_chunks as c, generate_series(1, 8) as n where c.chunk_index < 1000"
)


def test_a_chunks_texts_stay_in_its_row_when_the_row_fits_a_page(conn: Conn, world: World) -> None:
    """0035: toast_tuple_target 8160. With the default target every row (6 KB of vector) passed
    2 KB and its texts went to TOAST, one probe per column returned by a search."""
    row = conn.execute(
        "select c.reloptions from pg_catalog.pg_class as c "
        "where c.oid = 'public.document_chunks'::regclass"
    ).fetchone()
    assert row is not None
    assert "toast_tuple_target=8160" in (row[0] or [])
    before = _toast_bytes(conn)
    assert conn.execute(_COPY_CHUNKS, ("inline", 100_000)).rowcount >= 10
    assert _toast_bytes(conn) == before
    # the same rows under the default target do go out of line: the check above can fail
    conn.execute("alter table public.document_chunks reset (toast_tuple_target)")
    conn.execute(_COPY_CHUNKS, ("default", 200_000))
    assert _toast_bytes(conn) > before


def test_the_text_index_keeps_no_pending_list(conn: Conn) -> None:
    # With GIN's fastupdate, rows inserted since the last vacuum wait in a list that every text
    # search reads whole (1.4 ms for a word in no chunk after a live ingestion; 0024).
    row = conn.execute(
        "select c.reloptions from pg_catalog.pg_class as c "
        "where c.oid = 'public.document_chunks_fts_idx'::regclass"
    ).fetchone()
    assert row is not None
    assert "fastupdate=off" in (row[0] or [])
