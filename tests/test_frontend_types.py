"""The frontend contract (docs/frontend.md): the committed types/database.types.ts is exactly what
`supabase gen types typescript` (postgres-meta's generator, pinned in package-lock.json) prints for
the migrated database, and frontend code typed with it compiles when right and fails when wrong.
Needs node and `npm ci` (make test does it)."""

from __future__ import annotations

import difflib
import re
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Json

from renum_db.errors import DatabaseError, NotFound, PermissionDenied
from tests.support import World, acting
from tests.typegen import ROOT, TYPES_FILE, generate, tsc_errors

CHECKS = ROOT / "types" / "check"
EXPECTED_ERROR = re.compile(r"// error: (TS\d+)\s*$")


@pytest.fixture(scope="module")
def generated(db_url: str) -> str:
    return generate(db_url)


def test_the_committed_types_are_what_the_generator_prints_for_the_migrated_database(
    generated: str,
) -> None:
    committed = TYPES_FILE.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            generated.splitlines(keepends=True),
            "types/database.types.ts (committed)",
            "generated",
        )
    )
    assert not diff, f"regenerate with `make types` and commit:\n{diff[:6000]}"


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_no_worker_or_backend_function_appears_in_the_generated_public_api(generated: str) -> None:
    functions = _section(generated, "    Functions: {", "    Enums: {")
    names = set(re.findall(r"^      ([a-z_]+): \{", functions, re.MULTILINE))
    assert names == {
        "cancel_agent_execution",
        "cancel_investigation",
        "create_investigation",
        "hybrid_search",
        "most_used_documents",
        "record_chunk_usage",
        "search_embeddings",
        "start_agent_execution",
    }
    assert "client_id?: string" not in functions


def test_query_embeddings_are_typed_as_number_arrays(generated: str) -> None:
    functions = _section(generated, "    Functions: {", "    Enums: {")
    assert functions.count("query_embedding: number[]") == 2


def test_every_enumerated_column_is_a_union_type(generated: str) -> None:
    tables = _section(generated, "    Tables: {", "    Views: {")
    for column in ("status", "role", "credential_type", "source_type", "change_type"):
        for line in re.findall(rf"^          {column}\??: (.*)$", tables, re.MULTILINE):
            assert line.startswith('Database["public"]["Enums"]'), (column, line)


def test_hybrid_search_one_sided_columns_are_typed_nullable(generated: str) -> None:
    composite = _section(generated, "      hybrid_search_match: {", "      }")
    for column in ("text_rank", "semantic_position", "text_position"):
        assert f"{column}: number | null" in composite


def test_trigger_filled_and_generated_chunk_columns_are_optional_on_insert(generated: str) -> None:
    chunks = _section(generated, "      document_chunks: {", "Relationships")
    insert = _section(chunks, "Insert: {", "}")
    assert "text_search_config?: string | null" in insert
    assert "fts?: never" in insert


def test_the_credentials_view_has_no_ciphertext(generated: str) -> None:
    view = _section(generated, "      api_credentials_metadata: {", "Relationships")
    assert "encrypted_value" not in view
    assert "Insert" not in view


def test_frontend_calls_compile_and_mistakes_fail_with_the_expected_errors() -> None:
    errors = tsc_errors(ROOT / "types" / "tsconfig.json")
    assert [e for e in errors if e.file != "negative.ts"] == []
    expected = {
        (number, m.group(1))
        for number, line in enumerate(
            (CHECKS / "negative.ts").read_text(encoding="utf-8").splitlines(), start=1
        )
        if (m := EXPECTED_ERROR.search(line))
    }
    assert len(expected) >= 10
    assert {(e.line, e.code) for e in errors} == expected


def test_search_embeddings_takes_a_json_number_array_at_run_time(
    conn: psycopg.Connection[Any], world: World
) -> None:
    """PostgREST passes RPC arguments as JSON; a number[] becomes the real[] parameter."""
    embedding = [0.0] * 1536
    embedding[0] = 1.0
    chunk = world.a.rows["document_chunks"][0]
    conn.execute(
        "update public.document_chunks set embedding = %s::real[]::extensions.vector where id = %s",
        (embedding, chunk),
    )
    with acting(conn, world.claims("viewer")):
        rows = conn.execute(
            "select r.id, r.similarity "
            "from json_to_record(%s::json) as a (query_embedding real[], match_count integer), "
            "lateral public.search_embeddings(a.query_embedding, a.match_count) as r",
            (Json({"query_embedding": embedding, "match_count": 3}),),
        ).fetchall()
    assert rows[0][0] == chunk
    assert rows[0][1] == pytest.approx(1.0)


def test_browsers_cannot_reach_the_backend_schema(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with pytest.raises(PermissionDenied), acting(conn, world.claims("admin")):
        conn.execute("select backend.start_investigation(gen_random_uuid())")


def test_the_backend_reaches_its_schema(conn: psycopg.Connection[Any], world: World) -> None:
    with pytest.raises(NotFound), acting(conn, world.claims("service")):
        conn.execute("select backend.start_investigation(gen_random_uuid())")


@pytest.mark.parametrize(
    ("actor", "expected"),
    [("anon", "PermissionDenied"), ("other", "B"), ("viewer", 0), ("member", 0), ("admin", "A")],
)
def test_the_credentials_metadata_view_follows_the_tables_admin_only_rules(
    conn: psycopg.Connection[Any], world: World, actor: str, expected: object
) -> None:
    """Admins see their own tenant's credentials (tenant B's admin: B's), nobody else any."""
    tenants = {world.a.client_id: "A", world.b.client_id: "B"}
    outcome: object
    try:
        with acting(conn, world.claims(actor)):
            rows = conn.execute(
                "select id, client_id, service_name, credential_type "
                "from public.api_credentials_metadata"
            ).fetchall()
        seen = {tenants.get(r[1], "?") for r in rows}
        outcome = len(rows) if not rows else seen.pop() if len(seen) == 1 else seen
    except PermissionDenied:
        outcome = "PermissionDenied"
    assert outcome == expected


def test_the_credentials_metadata_view_is_read_only(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with pytest.raises(DatabaseError) as err, acting(conn, world.claims("admin")):
        conn.execute("update public.api_credentials_metadata set service_name = 'x'")
    assert err.value.sqlstate == "55000"  # not automatically updatable
