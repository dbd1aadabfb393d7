"""The bulk-load procedure as one call (`renum-db bulk-load`): load many documents of one tenant
through the Ingestor with the shared indexes of document_chunks dropped, then rebuild them
concurrently, vacuum and analyze, and promote the tenants that now need their own HNSW index. A
loaded tenant that already had its own index loses it for the load and gets it back, rebuilt,
after.

Why: on a live table every chunk also updates the shared HNSW graph, which dominates the cost at
1536 dimensions; building the graph once at the end is several times faster. The price: while
the shared indexes are gone, searches of tenants on the shared-index route fall back to sorting
their rows (right, slow), and full-text matching scans. So this is for initial loads and
maintenance windows; `drop_indexes=False` (`--keep-indexes`) loads into the live, indexed table.

The indexes are rebuilt even when the load fails (from the definitions the catalog held before
the drop), so the table is never left without them; a failed rebuild is raised.

Progress: every step reports `BulkLoadProgress` events (stage, done, total, unit, detail), so a
caller can draw one bar per stage: 'load' after each document and within a document as its
chunks are embedded and written, 'index' while each shared index is rebuilt (polled from
`pg_stat_progress_create_index` on a second connection: the rebuild of the HNSW graph is the
longest step of a big load), then 'vacuum' (VACUUM (ANALYZE) of the chunks and their packed
texts) and 'promote'.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg import sql

from renum_db import tenant_indexes
from renum_db.chunking import validate_chunking
from renum_db.db import Database
from renum_db.embeddings import EmbeddingProvider
from renum_db.errors import wrap_errors
from renum_db.ingest import DocumentInput, Ingestor, IngestProgress

__all__ = [
    "SHARED_INDEXES",
    "BulkLoadProgress",
    "BulkLoadReport",
    "bulk_load",
]

SHARED_INDEXES = ("document_chunks_embedding_hnsw_idx", "document_chunks_fts_idx")

# the tables a bulk load writes, vacuumed and analyzed at its end (vacuum_loaded_tables)
VACUUMED_TABLES: Final = ("public.document_chunks", "private.document_chunk_texts")
POLL_SECONDS: Final = 0.5
"""How often the index rebuild's progress is read."""


@dataclass(frozen=True, slots=True)
class BulkLoadReport:
    documents: int
    chunks: int
    rebuilt: tuple[str, ...]  # shared indexes dropped and built again
    promoted: tuple[UUID, ...]  # tenants given their own HNSW index afterwards
    seconds: float


@dataclass(frozen=True, slots=True)
class BulkLoadProgress:
    """One step of a bulk load. `stage` is 'load' (done/total documents; `chunks` written so
    far; `detail` names the document in progress and its stage), 'index' (`detail` = index name
    and its build phase; done/total in `unit`: 'blocks' or 'tuples', 0/0 while a phase reports
    no count), 'vacuum' or 'promote' (0/1 when it starts, 1/1 when done)."""

    stage: str
    done: int
    total: int
    unit: str = ""
    chunks: int = 0
    detail: str = ""


BulkProgressCallback = Callable[[BulkLoadProgress], None]

_PROGRESS = """
    select p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total
      from pg_catalog.pg_stat_progress_create_index as p
     where p.pid = %s
"""


def _definitions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute(
        "select indexname, indexdef from pg_catalog.pg_indexes "
        "where schemaname = 'public' and tablename = 'document_chunks' and indexname = any (%s) "
        "order by indexname",
        (list(SHARED_INDEXES),),
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def _concurrent(definition: str) -> str:
    """The catalog's own `CREATE INDEX name ON ...` text, built concurrently and idempotently."""
    prefix = "CREATE INDEX "
    if not definition.startswith(prefix):
        raise ValueError(f"unexpected index definition: {definition[:60]}")
    return "CREATE INDEX CONCURRENTLY IF NOT EXISTS " + definition[len(prefix) :]


@contextmanager
def _watch_index_build(
    url: str, pid: int, name: str, report: BulkProgressCallback
) -> Iterator[None]:
    """Report the progress of the index build run by backend `pid` until the block exits."""
    stop = threading.Event()

    def poll() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as watcher:
                while not stop.wait(POLL_SECONDS):
                    row = watcher.execute(_PROGRESS, (pid,)).fetchone()
                    if row is None:
                        continue
                    phase, blocks_done, blocks_total, tuples_done, tuples_total = row
                    if tuples_total:
                        done, total, unit = tuples_done, tuples_total, "tuples"
                    elif blocks_total:
                        done, total, unit = blocks_done, blocks_total, "blocks"
                    else:
                        done, total, unit = 0, 0, ""
                    report(BulkLoadProgress("index", done, total, unit, detail=f"{name}: {phase}"))
        except psycopg.Error:
            return  # progress is best effort: the build itself reports its own errors

    thread = threading.Thread(target=poll, name=f"progress {name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _rebuild(
    admin: psycopg.Connection[Any],
    url: str,
    saved: dict[str, str],
    maintenance_work_mem: str | None,
    report: BulkProgressCallback,
) -> None:
    if maintenance_work_mem is not None:
        admin.execute(
            "select pg_catalog.set_config('maintenance_work_mem', %s, false)",
            (maintenance_work_mem,),
        )
    try:
        for name, definition in saved.items():
            report(BulkLoadProgress("index", 0, 0, detail=f"{name}: starting"))
            with _watch_index_build(url, admin.info.backend_pid, name, report):
                admin.execute(_concurrent(definition))
            report(BulkLoadProgress("index", 1, 1, detail=f"{name}: built"))
    finally:
        if maintenance_work_mem is not None:
            admin.execute("reset maintenance_work_mem")


def vacuum_loaded_tables(conn: psycopg.Connection[Any]) -> None:
    """VACUUM (ANALYZE) of the chunks and their packed texts, the last step of a bulk load
    (`conn` in autocommit). Not ANALYZE alone: VACUUM sets the visibility map of the pages just
    written, so autovacuum does not start its own pass over the whole table under traffic (stop
    19's benchmark run: three on document_chunks while it measured), and index-only scans (the
    route's bounded count of a tenant's rows) stop visiting the heap."""
    with wrap_errors():
        for table in VACUUMED_TABLES:
            conn.execute(f"vacuum (analyze) {table}")


def bulk_load(
    url: str,
    documents: Sequence[DocumentInput],
    *,
    client_id: UUID,
    embedder: EmbeddingProvider,
    chunk_size: int = 1000,
    overlap: int = 200,
    drop_indexes: bool = True,
    maintenance_work_mem: str | None = None,
    progress: BulkProgressCallback | None = None,
) -> BulkLoadReport:
    """Ingest `documents` for `client_id` (as service_role), the shared indexes dropped around
    the load unless `drop_indexes` is False, and rebuilt with `maintenance_work_mem` if given
    (an HNSW graph that fits in it builds several times faster; a parallel build allocates it
    as shared memory, so it must fit in /dev/shm; None keeps the server's setting).
    `progress` receives a BulkLoadProgress at every step. Run as the owner of document_chunks.
    `documents` is read one at a time (a lazy Sequence keeps only one text in memory)."""
    validate_chunking(chunk_size, overlap)  # before any index is dropped
    started = time.perf_counter()
    report = progress or (lambda _: None)
    total = len(documents)
    done = chunks = 0

    def on_chunks(event: IngestProgress) -> None:
        detail = f"{event.stage} {event.done}/{event.total} chunks"
        report(BulkLoadProgress("load", done, total, "documents", chunks, detail))

    with wrap_errors(), psycopg.connect(url, autocommit=True) as admin:
        saved = _definitions(admin) if drop_indexes else {}
        for name in saved:
            admin.execute(
                sql.SQL("drop index concurrently if exists public.{}").format(sql.Identifier(name))
            )
        loaded = False
        # (m, ef_construction) of the tenant's own index when it is dropped for the load: it
        # would otherwise take every chunk row by row, as the shared graph would.
        rebuild: tuple[int, int] | None = None

        def restore() -> None:
            if rebuild is not None:
                tenant_indexes.promote(admin, client_id, m=rebuild[0], ef_construction=rebuild[1])

        try:
            settings = tenant_indexes.build_settings(admin, client_id) if saved else None
            if settings is not None and tenant_indexes.demote(admin, client_id):
                rebuild = settings
            report(BulkLoadProgress("load", 0, total, "documents"))
            with Database(url, min_size=1, max_size=1) as db:
                ingestor = Ingestor(db, embedder)
                for doc in documents:
                    result = ingestor.ingest_document(
                        claims={"role": "service_role"},
                        client_id=client_id,
                        collection_id=doc.collection_id,
                        name=doc.name,
                        text=doc.text,
                        metadata=doc.metadata,
                        source_type=doc.source_type,
                        source_url=doc.source_url,
                        file_type=doc.file_type,
                        document_id=doc.document_id,
                        chunk_size=chunk_size,
                        overlap=overlap,
                        progress=on_chunks,
                    )
                    done += 1
                    chunks += result.chunks
                    report(BulkLoadProgress("load", done, total, "documents", chunks))
            loaded = True
        finally:
            _rebuild(admin, url, saved, maintenance_work_mem, report)
            if not loaded:  # a failed load leaves the tenant promoted, as it was
                restore()
        report(BulkLoadProgress("vacuum", 0, 1))
        vacuum_loaded_tables(admin)
        report(BulkLoadProgress("vacuum", 1, 1))
        report(BulkLoadProgress("promote", 0, 1))
        promoted = tuple(tenant_indexes.promote_due(admin))
        if rebuild is not None and client_id not in promoted:
            restore()  # promoted by hand before the load: so it stays, built as it was
            promoted += (client_id,)
        report(BulkLoadProgress("promote", 1, 1, detail=f"{len(promoted)} tenant(s) promoted"))
    return BulkLoadReport(done, chunks, tuple(saved), promoted, time.perf_counter() - started)
