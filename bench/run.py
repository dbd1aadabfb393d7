"""Retrieval benchmark for renum-db (issue 12): `make bench` (scale `full`), or
`python -m bench.run --scale small|smoke`. Not a test: timings are reported, never asserted.

One run, on its own embedded PostgreSQL (`.renum/bench-pg<version>`, RENUM_PG_VERSION) or the
server given by --admin-url, in a database created for the run:

1. data (bench.data): clustered 1536-d vectors per tenant: the class tenants (100, 1k, 4k, 6k,
   10k, 25k rows at full scale) and one big tenant holding the rest of the table;
2. load (bench.load): binary COPY with the shared indexes dropped and rebuilt (the bulk-load
   procedure), VACUUM (ANALYZE), automatic promotion of the tenants the status advises;
3. measure (bench.measure): every class with the methods interleaved query by query; then the
   growth probe (the table grown to twice its size, vacuumed, re-promoted, measured again);
   the locks of one call, the concurrency sweep and the ingestion comparison (bench.ingest) on
   the grown table;
4. report (bench.report): every target PASS/MISS with its numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

from bench.concurrency import measure_concurrency
from bench.config import SCALES, Scale
from bench.data import Space, plan_tenants
from bench.ingest import measure_ingest
from bench.load import create_database, drop_database, grow, load
from bench.measure import measure_classes, measure_locks
from bench.report import Run, TableRun, render
from renum_db.embedded import EmbeddedServer, server_for

__all__ = ["main", "run"]

ROOT: Final = Path(__file__).resolve().parent.parent
DB_NAME: Final = "renum_bench"
_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def _machine_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def size_shared_buffers(server: EmbeddedServer) -> str:
    """Give the bench's own server the shared_buffers of a database host:
    RENUM_BENCH_SHARED_BUFFERS, else a quarter of the machine's memory (the usual sizing rule,
    and Supabase's per compute size), restarting it when the setting changes. The embedded
    default (256MB) is a development server's: with the 400k-row table's HNSW graphs (6.5 GB)
    every walk evicts pages, and at 32 clients half the backends waited on
    LWLock:BufferMapping (measured in stop 18)."""
    wanted = os.environ.get("RENUM_BENCH_SHARED_BUFFERS") or f"{_machine_bytes() // 4 // 2**20}MB"
    with psycopg.connect(server.admin_url("postgres"), autocommit=True) as conn:
        row = conn.execute(
            "select pg_catalog.pg_size_bytes(pg_catalog.current_setting('shared_buffers')) "
            "= pg_catalog.pg_size_bytes(%s)",
            (wanted,),
        ).fetchone()
        if row and row[0]:
            return wanted
        conn.execute(sql.SQL("alter system set shared_buffers = {}").format(sql.Literal(wanted)))
    server.stop()
    server.start()
    return wanted


def run(
    admin_url: str,
    scale: Scale,
    *,
    db_name: str = DB_NAME,
    keep: bool = False,
    checkpoint_url: str | None = None,
) -> Run:
    """Load, measure and return the results of one scale (the database is dropped unless keep).
    checkpoint_url: a role that may CHECKPOINT (superuser or pg_checkpoint), used before each
    timed ingestion run; without it the ingestion runs are not separated by checkpoints."""
    started = dt.datetime.now(dt.UTC)
    space = Space.create(scale.clusters)
    plans = plan_tenants(scale)
    url = create_database(admin_url, db_name, scale)
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("show server_version").fetchone()
            buffers = conn.execute("show shared_buffers").fetchone()
        header = {
            "scale": scale.name,
            "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "postgres": str(row[0]) if row else "?",
            "shared_buffers": str(buffers[0]) if buffers else "?",
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}",
            "queries per class x rounds": f"{scale.queries} x {scale.rounds}",
            "recall of search measured on": f"those {scale.queries} queries and "
            f"{scale.recall_queries} more per class (untimed)",
        }
        log(f"loading {scale.table_rows:,} rows for {len(plans)} tenants")
        tenants, first = load(url, space, scale, plans)
        log(f"measuring {len(tenants)} classes on {first.table_rows:,} rows")
        result = Run(
            scale.name, header, [TableRun(first, measure_classes(url, space, scale, tenants, 1))]
        )
        if scale.growth > 1:
            log(f"growth probe to {scale.growth}x")
            second = grow(url, space, scale, tenants)
            result.tables.append(TableRun(second, measure_classes(url, space, scale, tenants, 2)))
        result.locks = measure_locks(url, space, tenants)
        log("concurrency sweep " + ", ".join(map(str, scale.concurrency)))
        result.concurrency = measure_concurrency(url, space, scale, tenants)
        log(f"ingestion: Ingestor and raw COPY, {scale.ingest_rows:,} rows each")
        result.ingest = measure_ingest(url, space, scale.ingest_rows, admin_url=checkpoint_url)
        header["duration"] = f"{(dt.datetime.now(dt.UTC) - started).total_seconds():.0f} s"
        return result
    finally:
        if not keep:
            drop_database(admin_url, db_name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--admin-url", help="a server to use instead of the embedded one")
    parser.add_argument("--output", type=Path, help="report path (default: by scale)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    output = args.output or ROOT / (
        "bench/results.md" if scale.name == "full" else f"bench/.data/results-{scale.name}.md"
    )
    try:
        admin_url = args.admin_url
        checkpoint_url = args.admin_url
        server = None
        if admin_url is None:
            version = int(os.environ.get("RENUM_PG_VERSION", "16"))
            server = server_for(ROOT / ".renum", version, name="bench-pg")
            log(f"shared_buffers {size_shared_buffers(server)}")
            admin_url = server.url("postgres")
            checkpoint_url = server.admin_url("postgres")
        try:
            result = run(admin_url, scale, keep=args.keep, checkpoint_url=checkpoint_url)
        finally:
            if server is not None and not args.keep:
                server.stop()
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(result), encoding="utf-8")
        log(f"wrote {output}")
        return 0
    except Exception:
        traceback.print_exc()
        log("benchmark failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
