"""Loading: a fresh database migrated by the real command, one tenant per planned class (client,
viewer user, knowledge base, two collections, documents), chunks streamed by binary COPY, and the
bulk-load procedure around it (shared indexes dropped before, rebuilt after, timed), then
VACUUM (ANALYZE) and the automatic promotion (`renum_db.tenant_indexes.promote_due`, what an
operator's `renum-db tenant-index promote --auto` does)."""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import psycopg

from bench.config import Scale
from bench.data import (
    DIMS,
    F32,
    Space,
    TenantPlan,
    chunk_collection,
    chunk_metadata,
    chunk_text,
    tenant_vectors,
)
from renum_db import migrations, tenant_indexes
from renum_db.bulk_load import vacuum_loaded_tables

__all__ = [
    "COPY_HEADER",
    "VECTOR_HEAD",
    "BenchTenant",
    "LoadReport",
    "create_database",
    "drop_database",
    "grow",
    "load",
    "seed_tenant",
    "url_for",
]

Conn = psycopg.Connection[Any]
BATCH: Final = 5_000
ROWS_PER_DOCUMENT: Final = 500
BUILD_MEMORY: Final = "4GB"
SHARED_INDEXES: Final = ("document_chunks_embedding_hnsw_idx", "document_chunks_fts_idx")
COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
VECTOR_HEAD: Final = struct.pack(">hh", DIMS, 0)


@dataclass(slots=True)
class BenchTenant:
    plan: TenantPlan
    client_id: uuid.UUID
    viewer: uuid.UUID
    knowledge_base: uuid.UUID
    collections: dict[str, uuid.UUID]
    documents: dict[tuple[str, int], uuid.UUID] = field(default_factory=dict)
    rows: int = 0  # chunks loaded so far


@dataclass(slots=True)
class LoadReport:
    table_rows: int
    load_seconds: float
    index_seconds: dict[str, float]
    promoted: dict[str, float]  # tenant label -> seconds to build its index
    # tenant label -> the promotion's graph check (tenant_indexes.check_graph)
    graphs: dict[str, str] = field(default_factory=dict)


def url_for(base_url: str, dbname: str) -> str:
    head, sep, query = base_url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{dbname}{sep}{query}"


def create_database(admin_url: str, name: str, scale: Scale) -> str:
    """A fresh database, migrated with the shim; the URL carries the scale's route settings as
    connection options (a non-superuser may not `alter database ... set` a custom parameter)."""
    drop_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("create database {}").format(psycopg.sql.Identifier(name)))
    url = url_for(admin_url, name)
    migrations.apply(url, shim="always")
    if scale.exact_max_rows is not None:
        options = quote(f"-c renum.search_exact_max_rows={scale.exact_max_rows}")
        url += ("&" if "?" in url else "?") + f"options={options}"
    return url


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("drop database if exists {} with (force)").format(
                psycopg.sql.Identifier(name)
            )
        )


def _one(conn: Conn, query: str, params: tuple[Any, ...]) -> uuid.UUID:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def seed_tenant(conn: Conn, plan: TenantPlan) -> BenchTenant:
    client = _one(
        conn, "insert into public.clients (name) values (%s) returning id", (f"t{plan.number}",)
    )
    viewer = uuid.uuid4()
    meta = {"provider": "email", "client_id": str(client), "role": "viewer"}
    conn.execute(
        "insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data, "
        "raw_user_meta_data, created_at, updated_at) values "
        "('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s, %s, "
        "'{}'::jsonb, now(), now())",
        (viewer, f"viewer{plan.number}@bench.example", json.dumps(meta)),
    )
    kb = _one(
        conn,
        "insert into public.knowledge_bases (client_id, name, text_search_config) "
        "values (%s, 'kb', 'portuguese') returning id",
        (client,),
    )
    cols = {
        name: _one(
            conn,
            "insert into public.knowledge_collections (client_id, knowledge_base_id, name) "
            "values (%s, %s, %s) returning id",
            (client, kb, name),
        )
        for name in ("main", "narrow")
    }
    return BenchTenant(plan, client, viewer, kb, cols)


def _documents(conn: Conn, t: BenchTenant, start: int, end: int) -> None:
    """Create the documents rows start..end fall into (one per collection per 500 rows)."""
    for block in range(start // ROWS_PER_DOCUMENT, (end - 1) // ROWS_PER_DOCUMENT + 1):
        for name, col in t.collections.items():
            if (name, block) not in t.documents:
                t.documents[(name, block)] = _one(
                    conn,
                    "insert into public.documents (client_id, collection_id, name) "
                    "values (%s, %s, %s) returning id",
                    (t.client_id, col, f"{name}-{block}"),
                )


def _copy_rows(t: BenchTenant, start: int, vectors: F32) -> Iterator[bytes]:
    client = t.client_id.bytes
    big_endian = vectors.astype(">f4")
    for i in range(len(vectors)):
        row = start + i
        doc = t.documents[(chunk_collection(row), row // ROWS_PER_DOCUMENT)].bytes
        text = chunk_text(t.plan, row).encode()
        meta = b"\x01" + chunk_metadata(row).encode()
        vec = VECTOR_HEAD + big_endian[i].tobytes()
        yield b"".join(
            (
                struct.pack(">h", 6),
                struct.pack(">i", 16),
                client,
                struct.pack(">i", 16),
                doc,
                struct.pack(">ii", 4, row),
                struct.pack(">i", len(text)),
                text,
                struct.pack(">i", len(meta)),
                meta,
                struct.pack(">i", len(vec)),
                vec,
            )
        )


def _load_rows(conn: Conn, space: Space, t: BenchTenant, end: int) -> None:
    """Append rows t.rows..end of tenant t by binary COPY, in batches."""
    while t.rows < end:
        n = min(BATCH, end - t.rows)
        _documents(conn, t, t.rows, t.rows + n)
        vectors = tenant_vectors(space, t.plan, t.rows, n)
        with conn.cursor().copy(
            "copy public.document_chunks (client_id, document_id, chunk_index, content, "
            "metadata, embedding) from stdin (format binary)"
        ) as copy:
            copy.write(COPY_HEADER)
            for chunk in _copy_rows(t, t.rows, vectors):
                copy.write(chunk)
            copy.write(struct.pack(">h", -1))
        conn.commit()
        t.rows += n


def _without_shared_indexes(conn: Conn, work: Callable[[], None], report: dict[str, float]) -> None:
    """The bulk-load procedure: drop the shared indexes, load, rebuild them (timed)."""
    defs = dict(
        conn.execute(
            "select indexname, indexdef from pg_catalog.pg_indexes "
            "where schemaname = 'public' and indexname = any (%s)",
            (list(SHARED_INDEXES),),
        ).fetchall()
    )
    for name in defs:
        conn.execute(psycopg.sql.SQL("drop index public.{}").format(psycopg.sql.Identifier(name)))
    conn.commit()
    work()
    # The whole graph in memory (400,000 1536-d rows take ~2.6 GB; past maintenance_work_mem
    # pgvector's build goes on inserting on disk, several times slower) and one parallel worker:
    # the build settings docs/operations.md gives for a bulk load.
    conn.execute(f"set maintenance_work_mem = '{BUILD_MEMORY}'")
    conn.execute("set max_parallel_maintenance_workers = 1")
    for name, definition in defs.items():
        started = time.perf_counter()
        conn.execute(definition)  # the catalog's own text of the dropped index
        conn.commit()
        report[name] = time.perf_counter() - started
    conn.execute("reset maintenance_work_mem")
    conn.execute("reset max_parallel_maintenance_workers")


def _analyze_and_promote(
    url: str, scale: Scale, tenants: list[BenchTenant]
) -> tuple[dict[str, float], dict[str, str]]:
    promoted: dict[str, float] = {}
    graphs: dict[str, str] = {}
    labels = {t.client_id: t.plan.label for t in tenants}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"set maintenance_work_mem = '{BUILD_MEMORY}'")
        conn.execute("set max_parallel_maintenance_workers = 1")
        # As renum-db bulk-load ends (autovacuum passed over the table three times while stop
        # 19's first run measured, when the load only analyzed).
        vacuum_loaded_tables(conn)
        for row in tenant_indexes.status(conn):
            if row.advice == "promote":
                started = time.perf_counter()
                promotion = tenant_indexes.promote(
                    conn, row.client_id, ef_construction=scale.ef_construction
                )
                label = labels.get(row.client_id, str(row.client_id))
                promoted[label] = time.perf_counter() - started
                check = promotion.graph_check
                graphs[label] = (
                    "not checked"
                    if check is None
                    else str(check)
                    + (
                        ""
                        if check.reachable >= tenant_indexes.MIN_REACHABLE
                        else f" (under {tenant_indexes.MIN_REACHABLE:.1%})"
                    )
                )
        conn.execute("analyze public.document_chunks")
    return promoted, graphs


def load(
    url: str, space: Space, scale: Scale, plans: list[TenantPlan]
) -> tuple[list[BenchTenant], LoadReport]:
    started = time.perf_counter()
    index_seconds: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        tenants = [seed_tenant(conn, p) for p in plans]
        conn.commit()

        def work() -> None:
            for t in tenants:
                _load_rows(conn, space, t, t.plan.rows)

        _without_shared_indexes(conn, work, index_seconds)
    load_seconds = time.perf_counter() - started - sum(index_seconds.values())
    promoted, graphs = _analyze_and_promote(url, scale, tenants)
    total = sum(t.rows for t in tenants)
    return tenants, LoadReport(total, load_seconds, index_seconds, promoted, graphs)


def grow(url: str, space: Space, scale: Scale, tenants: list[BenchTenant]) -> LoadReport:
    """The growth probe: the big tenant grows until the table holds growth x table_rows."""
    started = time.perf_counter()
    index_seconds: dict[str, float] = {}
    big = tenants[0]
    target = big.rows + int(scale.table_rows * (scale.growth - 1))
    # A promoted big tenant (its second graph, 0025) is demoted first, as the bulk-load procedure
    # does for the tenants it loads: inserting into its partial HNSW index row by row is slower
    # than rebuilding it; _analyze_and_promote builds it again (timed).
    with psycopg.connect(url, autocommit=True) as conn:
        tenant_indexes.demote(conn, big.client_id)
    with psycopg.connect(url) as conn:
        _without_shared_indexes(conn, lambda: _load_rows(conn, space, big, target), index_seconds)
    load_seconds = time.perf_counter() - started - sum(index_seconds.values())
    promoted, graphs = _analyze_and_promote(url, scale, tenants)
    return LoadReport(sum(t.rows for t in tenants), load_seconds, index_seconds, promoted, graphs)
