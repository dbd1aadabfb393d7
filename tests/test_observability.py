"""Monitoring: timed operations log structured INFO records, JSON lines on request, and the
pool, cache and size figures are exposed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from renum_db.db import Database
from renum_db.embeddings import CachedEmbeddings, LexicalHashingEmbeddings
from renum_db.observability import JsonFormatter, database_sizes
from renum_db.search import Retrieval
from tests.support import World
from tests.test_db_open import returned_to_pool


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=1, max_size=2) as database:
        yield database


def test_a_search_logs_its_duration_and_row_count_at_info(
    db: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="renum_db.search")
    with db.as_user(world.a.users["viewer"]) as conn:
        hits = Retrieval(conn, LexicalHashingEmbeddings()).search("text", match_count=2)
    record = next(r for r in caplog.records if getattr(r, "operation", "") == "search_embeddings")
    assert record.levelno == logging.INFO
    assert record.rows == len(hits)  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]


def test_json_formatter_writes_the_extra_fields_as_one_object() -> None:
    record = logging.LogRecord("renum_db.search", logging.INFO, __file__, 1, "done", None, None)
    record.operation = "search_embeddings"
    record.duration_ms = 1.5
    data = json.loads(JsonFormatter().format(record))
    assert data["operation"] == "search_embeddings"
    assert data["duration_ms"] == 1.5
    assert (data["level"], data["logger"], data["message"]) == ("INFO", "renum_db.search", "done")


def test_the_cli_logs_json_lines_when_asked(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url, "RENUM_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "renum_db", "-v", "tenant", "create", "Logged"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    opened = next(line for line in lines if line["message"] == "database pool open")
    assert opened["source"] == "DATABASE_URL"
    assert opened["duration_ms"] >= 0


def test_pool_statistics_count_connections_in_use(db: Database) -> None:
    with db.connection():
        assert db.stats().in_use == 1
    assert returned_to_pool(db)


def test_cache_statistics_count_hits_and_misses(db: Database, world: World) -> None:
    before = CachedEmbeddings.statistics()
    with db.as_service_role() as conn:  # the backend: the only writer of the cache
        provider = LexicalHashingEmbeddings(model_name="stats-model")
        cache = CachedEmbeddings(provider, conn, client_id=world.a.client_id)
        cache.embed(["um texto novo para o cache"])
        cache.embed(["um texto novo para o cache"])
    after = CachedEmbeddings.statistics()
    assert after["cache_misses"] - before["cache_misses"] == 1
    assert after["cache_hits"] - before["cache_hits"] == 1
    assert 0 < after["cache_hit_rate"] <= 1


def test_database_sizes_cover_every_public_table(db: Database) -> None:
    with db.connection() as conn:
        sizes = database_sizes(conn)
        tables = {
            r[0]
            for r in conn.execute(
                "select tablename::text from pg_catalog.pg_tables where schemaname = 'public'"
            )
        }
    assert set(sizes.tables) == tables
    assert sizes.database_bytes >= sum(sizes.tables.values()) > 0
