"""schema.sql is the current-state schema: the committed file must equal the pg_dump of the
database the migration chain builds, so every schema change shows in its diff."""

from __future__ import annotations

import difflib
import os

import psycopg
import pytest

from renum_db import migrations, schema

ROOT = migrations.project_root()
PG_VERSION = int(os.environ.get("RENUM_PG_VERSION", "16"))


def test_the_suite_runs_on_the_postgres_version_it_was_asked_for(admin_url: str) -> None:
    with psycopg.connect(admin_url) as conn:
        assert conn.info.server_version // 10000 == PG_VERSION


@pytest.mark.skipif(
    PG_VERSION != schema.REFERENCE_PG_VERSION,
    reason=f"schema.sql is the PostgreSQL {schema.REFERENCE_PG_VERSION} dump",
)
def test_schema_sql_equals_the_dump_of_the_migrated_database(template_url: str) -> None:
    committed = (ROOT / "schema.sql").read_text(encoding="utf-8")
    migrated = schema.dump(template_url)
    diff = "".join(
        list(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                migrated.splitlines(keepends=True),
                fromfile="schema.sql",
                tofile="migrated",
            )
        )[:200]
    )
    assert committed == migrated, f"schema.sql drifted from the chain; run `make schema`:\n{diff}"


def test_normalise_drops_version_lines_and_restrict_keys() -> None:
    raw = (
        "--\n-- Dumped from database version 18.4\n-- Dumped by pg_dump version 18.4\n"
        "\\restrict AbC123\n\n\n\nCREATE TABLE public.t ();\n\\unrestrict AbC123\n"
    )
    assert schema.normalise(raw) == schema.HEADER + "\n--\n\nCREATE TABLE public.t ();\n"
