"""Migration 0013: text_search_config is text (checked against the supported languages) mapped to
regconfig by private.text_search_regconfig, for the generated fts column and hybrid_search."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support import World

LANGUAGES = ("simple", "portuguese", "english", "spanish")


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_supported_language_maps_to_its_text_search_configuration(
    conn: psycopg.Connection[Any], language: str
) -> None:
    row = conn.execute(
        "select private.text_search_regconfig(%s) = %s::regconfig", (language, language)
    ).fetchone()
    assert row == (True,)


def test_an_unsupported_language_maps_to_null(conn: psycopg.Connection[Any]) -> None:
    assert conn.execute("select private.text_search_regconfig('german')").fetchone() == (None,)


def test_the_mapping_is_immutable_so_a_generated_column_may_use_it(
    conn: psycopg.Connection[Any],
) -> None:
    row = conn.execute(
        "select provolatile from pg_proc where oid = 'private.text_search_regconfig'::regproc"
    ).fetchone()
    assert row == ("i",)


def test_both_columns_are_text(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select attrelid::regclass::text, atttypid::regtype::text from pg_attribute "
        "where attname = 'text_search_config' and attrelid in "
        "('public.knowledge_bases'::regclass, 'public.document_chunks'::regclass) order by 1"
    ).fetchall()
    assert rows == [("document_chunks", "text"), ("knowledge_bases", "text")]


@pytest.mark.parametrize("table", ["knowledge_bases", "document_chunks"])
def test_an_unsupported_language_is_refused_by_the_check_constraint(
    conn: psycopg.Connection[Any], world: World, table: str
) -> None:
    del world  # seeds rows in both tables
    query = sql.SQL(
        "update public.{t} set text_search_config = 'german' "
        "where id = (select id from public.{t} limit 1)"
    ).format(t=sql.Identifier(table))
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        conn.execute(query)
    expected = {
        "knowledge_bases": "knowledge_bases_text_search_config_chk",
        "document_chunks": "document_chunks_text_search_config_language_chk",
    }
    assert caught.value.diag.constraint_name == expected[table]


def test_every_chunk_fts_is_its_content_parsed_in_its_language(
    conn: psycopg.Connection[Any], world: World
) -> None:
    del world
    row = conn.execute(
        "select count(*), count(*) filter (where fts = to_tsvector("
        "text_search_config::regconfig, content)) from public.document_chunks"
    ).fetchone()
    assert row is not None
    assert row[0] > 0
    assert row[0] == row[1]
