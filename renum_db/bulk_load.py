"""The bulk-load procedure as one call (`renum-db bulk-load`): load many documents of one tenant
through the Ingestor with the shared indexes of document_chunks dropped, then rebuild them
concurrently, analyze, and promote the tenants that now need their own HNSW index.

Why: on a live table every chunk also updates the shared HNSW graph, which dominates the cost at
1536 dimensions; building the graph once at the end is several times faster. The price: while
the shared indexes are gone, searches of tenants on the shared-index route fall back to sorting
their rows (right, slow), and full-text matching scans. So this is for initial loads and
maintenance windows; `drop_indexes=False` (`--keep-indexes`) loads into the live, indexed table.

The indexes are rebuilt even when the load fails (from the definitions the catalog held before
the drop), so the table is never left without them; a failed rebuild is raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from renum_db import tenant_indexes
from renum_db.db import Database
from renum_db.embeddings import EmbeddingProvider
from renum_db.errors import wrap_errors
from renum_db.ingest import DocumentInput, Ingestor

__all__ = ["SHARED_INDEXES", "BulkLoadReport", "bulk_load"]

SHARED_INDEXES = ("document_chunks_embedding_hnsw_idx", "document_chunks_fts_idx")


@dataclass(frozen=True, slots=True)
class BulkLoadReport:
    documents: int
    chunks: int
    rebuilt: tuple[str, ...]  # shared indexes dropped and built again
    promoted: tuple[UUID, ...]  # tenants given their own HNSW index afterwards
    seconds: float


def _definitions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute(
        "select indexname, indexdef from pg_catalog.pg_indexes "
        "where schemaname = 'public' and tablename = 'document_chunks' and indexname = any (%s)",
        (list(SHARED_INDEXES),),
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def _concurrent(definition: str) -> str:
    """The catalog's own `CREATE INDEX name ON ...` text, built concurrently and idempotently."""
    prefix = "CREATE INDEX "
    if not definition.startswith(prefix):
        raise ValueError(f"unexpected index definition: {definition[:60]}")
    return "CREATE INDEX CONCURRENTLY IF NOT EXISTS " + definition[len(prefix) :]


def bulk_load(
    url: str,
    documents: Sequence[DocumentInput],
    *,
    client_id: UUID,
    embedder: EmbeddingProvider,
    chunk_size: int = 1000,
    overlap: int = 200,
    drop_indexes: bool = True,
    progress: Callable[[int, int, int], None] | None = None,
) -> BulkLoadReport:
    """Ingest `documents` for `client_id` (as service_role), the shared indexes dropped around
    the load unless `drop_indexes` is False. `progress(documents_done, documents_total,
    chunks_written)` is called after each document. Run as the owner of document_chunks."""
    started = time.perf_counter()
    report = progress or (lambda _done, _total, _chunks: None)
    done = chunks = 0
    with wrap_errors(), psycopg.connect(url, autocommit=True) as admin:
        saved = _definitions(admin) if drop_indexes else {}
        for name in saved:
            admin.execute(
                sql.SQL("drop index concurrently if exists public.{}").format(sql.Identifier(name))
            )
        try:
            with Database(url, min_size=1, max_size=1) as db:
                results = Ingestor(db, embedder).ingest_documents(
                    documents,
                    claims={"role": "service_role"},
                    client_id=client_id,
                    chunk_size=chunk_size,
                    overlap=overlap,
                )
                for result in results:
                    done += 1
                    chunks += result.chunks
                    report(done, len(documents), chunks)
        finally:
            for definition in saved.values():
                admin.execute(_concurrent(definition))
        admin.execute("analyze public.document_chunks")
        promoted = tuple(tenant_indexes.promote_due(admin))
    return BulkLoadReport(done, chunks, tuple(saved), promoted, time.perf_counter() - started)
