"""Benchmark scales: what to load and how long to measure. `full` is the issue-12 sweep
(`make bench`); `small` stays under 30k rows (a what-if on a shared machine); `smoke` runs in the
test suite in seconds and exercises every code path of the benchmark and every search route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["SCALES", "Scale"]


@dataclass(frozen=True, slots=True)
class Scale:
    name: str
    table_rows: int  # chunks in the first measured table (the class tenants + one big tenant)
    class_sizes: tuple[int, ...]  # rows of each measured tenant besides the big one
    growth: float  # the table is grown to growth x table_rows and measured again (0: not)
    queries: int  # queries per tenant class
    rounds: int  # timed passes over the queries (methods interleaved query by query)
    clusters: int  # Gaussian clusters of the vector space
    clusters_per_tenant: int  # each class tenant draws from this many clusters
    concurrency: tuple[int, ...]  # client counts of the concurrency sweep
    concurrency_seconds: float  # per client count
    ef_construction: int  # HNSW ef_construction of the per-tenant indexes
    ingest_rows: int = 1_000  # rows written by the Ingestor and by raw COPY (bench.ingest)
    exact_max_rows: int | None = None  # renum.search_exact_max_rows for the run (None: default)
    # More queries per class for recall only (search as the viewer, untimed): a region of the
    # shared graph the descent does not reach shows in 1-2% of queries, which 30 queries miss.
    recall_queries: int = 0
    # Each concurrency level runs this much longer; transactions ending in it are not counted
    # (fresh connections plan every route on their first calls).
    concurrency_warm_seconds: float = 8.0
    # ... plus this much per client (fresh backends fault in the shared buffers they touch:
    # bench.concurrency.warm_seconds_for).
    concurrency_warm_per_client: float = 0.0
    # Passes over the client counts (ascending, then descending, ...): each level's throughput is
    # its median pass, so a slow spell of the machine during one pass does not decide a verdict.
    concurrency_rounds: int = 1


SCALES: Final = {
    "full": Scale(
        name="full",
        table_rows=200_000,
        class_sizes=(100, 1_000, 4_000, 6_000, 10_000, 25_000),
        growth=2.0,
        queries=30,
        rounds=2,
        clusters=100,
        clusters_per_tenant=4,
        concurrency=(1, 2, 4, 8, 16, 32),
        concurrency_seconds=8.0,
        ef_construction=128,
        ingest_rows=3_000,
        recall_queries=200,
        concurrency_warm_seconds=5.0,
        concurrency_warm_per_client=1.25,
        concurrency_rounds=3,
    ),
    "small": Scale(
        name="small",
        table_rows=30_000,
        class_sizes=(100, 1_000, 2_000, 4_000),
        growth=0.0,
        queries=20,
        rounds=1,
        clusters=50,
        clusters_per_tenant=4,
        concurrency=(1, 2, 4, 8),
        concurrency_seconds=3.0,
        ef_construction=128,
        concurrency_warm_seconds=3.0,
    ),
    "smoke": Scale(
        name="smoke",
        table_rows=400,
        class_sizes=(10, 40, 80),
        growth=2.0,
        queries=3,
        rounds=1,
        clusters=8,
        clusters_per_tenant=2,
        concurrency=(1, 2),
        concurrency_seconds=0.3,
        ef_construction=32,
        ingest_rows=100,
        exact_max_rows=50,
        recall_queries=3,
        concurrency_warm_seconds=0.5,
        concurrency_rounds=2,
    ),
}
