"""Measuring: per tenant class, the project's search and its references run on the same query one
after the other (methods interleaved query by query, in an order shuffled for every query from the
run's seed), so every comparison is side by side under the same machine load. Shuffled, not
rotated: in a rotation every method always follows the same one, and a call's time depends on
what ran just before it (stop 22 measured the big tenant's walks at 3.1-3.4 ms first and 1.6-2.2
ms last in a fixed order), which made one method look faster than another of the same cost:

- search: public.search_embeddings as the tenant's viewer through RLS (what the API does);
- search_service: the same as service_role with client_id (the RLS overhead);
- naive: `order by embedding <=> q limit 10` as the viewer, RLS filtering (the common recipe);
- exact: the bare exact scan of the tenant's rows as the owner (the floor for small tenants,
  and the truth recall is measured against), timed in one process: with statistics that put
  a small tenant outside the most common values, the planner launched parallel workers for
  its 100 rows (stop 22's run: 5.9 ms against 0.25), which is no floor; and with a generic
  plan kept by the connection (until stop 23 the plan cache kept planning it anew for small
  tenants, 0.07 ms a call);
- exact_rows (tenants up to 1,000 rows): search's exact-route statement run bare by the owner
  the same way, returning whole rows: search over it is the API's cost, it over exact the rows';
- hnsw: the unfiltered HNSW query over the whole table (the floor for everyone else), with
  sorts disabled: the planner, which prices a 1536-d distance like any operator, otherwise
  prefers sorting the whole table when the heap is small (the vectors live in TOAST);
- filter variants (metadata ~10%, collection ~20%) and hybrid_search with a broad text
  (~12% of every tenant's chunks) and a narrow one (one chunk), as the viewer;
- search_switched: the viewer's search on a connection whose previous request was the
  backend's (service_role): what a PostgREST pool serving both roles pays (the kept plans of a
  function whose tables have RLS belong to one role and are re-planned for another).

Recall of search is measured on the timed queries and on `recall_queries` more per class
(untimed): an unreachable region of the shared graph shows in 1-2% of the big tenant's queries.

Each actor (viewer, service_role, owner) has its own connection, as a pool per role would: on a
shared connection every change of role re-plans the search functions' statements (measured
0.6-0.9 ms on a 0.7 ms search), which once inflated search_service and the filter variants.

Then the locks one search call takes (the concurrency sweep is bench.concurrency)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from bench.config import Scale
from bench.data import BROAD_WORD, F32, Space, narrow_token, query_vectors
from bench.load import BenchTenant
from renum_db.db import act_as, user_claims
from renum_db.vector import Vector, register_vector

__all__ = [
    "EXACT_JUDGED_MAX_ROWS",
    "ClassResult",
    "LockResult",
    "measure_classes",
    "measure_locks",
    "percentile",
]

Conn = psycopg.Connection[Any]
K: Final = 10
METADATA_FILTER: Final = {"bucket": 3}
# The user's entry point takes the embedding as real[] (what a frontend sends; migration 0015);
# the backend's (schema backend, service_role) takes a vector and names the client.
SEARCH_SQL: Final = (
    "select id from public.search_embeddings(query_embedding => %s::real[], match_count => %s, "
    "collection_ids => %s, metadata_filter => %s)"
)
SEARCH_BACKEND_SQL: Final = (
    "select id from backend.search_embeddings(query_embedding => %s, match_count => %s, "
    "collection_ids => %s, metadata_filter => %s, client_id => %s)"
)
HYBRID_SQL: Final = (
    "select id from public.hybrid_search(query_text => %s, query_embedding => %s::real[], "
    "match_count => %s)"
)
EXACT_SQL: Final = (
    "select c.id from public.document_chunks as c "
    "where c.client_id = %s and c.embedding is not null "
    "and (%s::uuid[] is null or c.document_id = any (%s::uuid[])) "
    "and (%s::jsonb is null or c.metadata @> %s::jsonb) "
    "order by extensions.cosine_distance(c.embedding, %s), c.id limit %s"
)
# The timed floor runs its own statement (its own prepared plan on the owner's connection), so a
# plan kept from the truths' runs, which may use parallel workers, never serves it; and without
# the filter guards, which a generic plan would evaluate on every row (the timed call has none).
EXACT_FLOOR_SQL: Final = (
    "/* the timed floor */ select c.id from public.document_chunks as c "
    "where c.client_id = %s and c.embedding is not null "
    "order by extensions.cosine_distance(c.embedding, %s), c.id limit %s"
)
# The same floor returning what search returns (each winner's chunk, its document's collection and
# knowledge base), as the owner in one process: the statement of search's exact route
# (private.search_embeddings since 0031: the ranked ids, document ids and distances joined to
# their rows by key), run bare. For tenants up to 1,000 rows, search over it is what the API adds
# (RLS, validation, the route, the function frames); it over the bare scan is what returning
# whole rows costs.
EXACT_ROWS_SQL: Final = (
    "/* the timed floor, whole rows */ "
    "select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata, "
    "c.chunk_index, 1 - r.distance as similarity "
    "from (select e.id, e.document_id, "
    "extensions.cosine_distance(e.embedding, %s) as distance "
    "from public.document_chunks as e "
    "where e.client_id = %s and e.embedding is not null "
    "order by 3, 1 limit %s) as r "
    "join public.document_chunks as c on c.client_id = %s and c.id = r.id "
    "join public.documents as d on d.client_id = %s and d.id = r.document_id "
    "join public.knowledge_collections as k "
    "on k.client_id = %s and k.id = d.collection_id "
    "order by r.distance, r.id"
)
# Tenants judged against the exact floor (issue 12: up to 1,000 rows; bench.report judges by it);
# the whole-rows floor is timed for them only (for the big tenant it would add an exact scan of
# 354,000 rows a query).
EXACT_JUDGED_MAX_ROWS: Final = 1000
NAIVE_SQL: Final = (
    "select c.id from public.document_chunks as c "
    "order by c.embedding operator(extensions.<=>) %s limit %s"
)


@dataclass(slots=True)
class ClassResult:
    label: str
    rows: int
    share: float
    route: str
    latencies: dict[str, list[float]] = field(default_factory=dict)  # method -> ms per call
    recalls: dict[str, list[float]] = field(default_factory=dict)  # method -> recall per query

    def p50(self, method: str) -> float:
        return percentile(self.latencies.get(method, []), 50)

    def recall(self, method: str) -> tuple[float, float]:
        values = self.recalls.get(method, [])
        return (statistics.fmean(values), min(values)) if values else (float("nan"),) * 2


@dataclass(slots=True)
class LockResult:
    label: str  # the tenant class
    route: str
    relation_locks: int  # warm: the session's plans kept (what a pooled connection sees)
    fast_path: int
    cold_locks: int  # the first call of a new session (every statement planned)


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def _ids(conn: Conn, query: str, params: Sequence[Any]) -> tuple[float, list[UUID]]:
    started = time.perf_counter()
    rows = conn.execute(query, params).fetchall()
    return (time.perf_counter() - started) * 1000, [r[0] for r in rows]


def _recall(found: Sequence[UUID], truth: Sequence[UUID]) -> float:
    return len(set(found) & set(truth)) / len(truth) if truth else 1.0


def _narrow_documents(conn: Conn, t: BenchTenant) -> list[UUID]:
    rows = conn.execute(
        "select id from public.documents where client_id = %s and collection_id = %s",
        (t.client_id, t.collections["narrow"]),
    ).fetchall()
    return [r[0] for r in rows]


def _route(conn: Conn, t: BenchTenant) -> tuple[str, int, float]:
    with act_as(conn, user_claims(t.viewer)):
        row = conn.execute(
            "select private.chunk_search_route(%s), "
            "(select count(*) from public.document_chunks where client_id = %s)",
            (t.client_id, t.client_id),
        ).fetchone()
    total = conn.execute("select count(*) from public.document_chunks").fetchone()
    assert row is not None
    assert total is not None
    return str(row[0]), int(row[1]), int(row[1]) / max(int(total[0]), 1)


@dataclass(slots=True)
class Conns:
    """One connection per actor (a pool per role), and one shared by the viewer and the backend
    (a PostgREST pool serving both)."""

    viewer: Conn
    service: Conn
    owner: Conn
    mixed: Conn

    def of(self, actor: str) -> Conn:
        if actor in ("owner", "owner_exact", "owner_index"):
            return self.owner
        return self.service if actor == "service" else self.viewer


def measure_class(
    conns: Conns, space: Space, scale: Scale, t: BenchTenant, salt: int
) -> ClassResult:
    conn = conns.owner
    route, rows, share = _route(conn, t)
    result = ClassResult(t.plan.label, rows, share, route)
    queries: F32 = query_vectors(space, t.plan, scale.queries, salt)
    narrow_docs = _narrow_documents(conn, t)
    rng = random.Random(salt)
    order = random.Random(salt + 1)  # its own stream: the texts stay what they were

    def call(actor: str, query: str, params: Sequence[Any]) -> tuple[float, list[UUID]]:
        if actor == "switched":  # the backend's request first, on the shared connection
            with act_as(conns.mixed, {"role": "service_role"}):
                conns.mixed.execute(SEARCH_BACKEND_SQL, (params[0], K, None, None, t.client_id))
            with act_as(conns.mixed, user_claims(t.viewer)):
                return _ids(conns.mixed, query, params)
        c = conns.of(actor)
        if actor in ("owner", "owner_exact", "owner_index"):
            with c.transaction():
                if actor == "owner_index":  # the unfiltered HNSW walk, never a sort of the table
                    c.execute("set local enable_sort = off")
                if actor == "owner_exact":  # the timed floors: one process (the truths may not)
                    c.execute("set local max_parallel_workers_per_gather = 0")
                    # and a generic plan, kept by the connection, as search's statements have:
                    # costed for an average tenant, a generic plan never wins the plan cache's
                    # comparison for a small one, which was planned again on every call
                    # (0.07 ms of a 0.3 ms floor, stop 23, the kept 424k database)
                    c.execute("set local plan_cache_mode = force_generic_plan")
                return _ids(c, query, params)
        claims = {"role": "service_role"} if actor == "service" else user_claims(t.viewer)
        with act_as(c, claims):
            return _ids(c, query, params)

    meta = Jsonb(METADATA_FILTER)
    # The true top 10 of every query and filter variant, computed once (exact scans of up to
    # 354,000 rows are most of the benchmark's time; the timed "exact" method runs every round).
    truths: list[tuple[list[UUID], list[UUID], list[UUID]]] = []
    for qi in range(len(queries)):
        q = Vector(queries[qi].tolist())
        _, truth = call("owner", EXACT_SQL, (t.client_id, None, None, None, None, q, K))
        _, truth_meta = call("owner", EXACT_SQL, (t.client_id, None, None, meta, meta, q, K))
        _, truth_col = call(
            "owner", EXACT_SQL, (t.client_id, narrow_docs, narrow_docs, None, None, q, K)
        )
        truths.append((truth, truth_meta, truth_col))
    for _ in range(scale.rounds):
        for qi in range(len(queries)):
            q = Vector(queries[qi].tolist())
            narrow_text = narrow_token(t.plan, rng.randrange(t.rows))
            truth, truth_meta, truth_col = truths[qi]
            narrow_col = [t.collections["narrow"]]
            # (method, actor, statement, parameters, truth for recall or None)
            methods: list[tuple[str, str, str, tuple[Any, ...], list[UUID] | None]] = [
                ("search", "viewer", SEARCH_SQL, (q, K, None, None), truth),
                (
                    "search_service",
                    "service",
                    SEARCH_BACKEND_SQL,
                    (q, K, None, None, t.client_id),
                    truth,
                ),
                ("naive", "viewer", NAIVE_SQL, (q, K), truth),
                ("exact", "owner_exact", EXACT_FLOOR_SQL, (t.client_id, q, K), truth),
                (
                    "exact_rows",
                    "owner_exact",
                    EXACT_ROWS_SQL,
                    (q, t.client_id, K, t.client_id, t.client_id, t.client_id),
                    truth,  # it must rank as the bare scan does (checked by the smoke test)
                ),
                ("hnsw", "owner_index", NAIVE_SQL, (q, K), None),
                ("search_metadata", "viewer", SEARCH_SQL, (q, K, None, meta), truth_meta),
                (
                    "search_collection",
                    "viewer",
                    SEARCH_SQL,
                    (q, K, narrow_col, None),
                    truth_col,
                ),
                ("hybrid_broad", "viewer", HYBRID_SQL, (BROAD_WORD, q, K), None),
                ("hybrid_narrow", "viewer", HYBRID_SQL, (narrow_text, q, K), None),
                ("search_switched", "switched", SEARCH_SQL, (q, K, None, None), None),
            ]
            if rows > EXACT_JUDGED_MAX_ROWS:
                methods = [m for m in methods if m[0] != "exact_rows"]
            order.shuffle(methods)
            for name, actor, query, params, expected in methods:
                ms, found = call(actor, query, params)
                result.latencies.setdefault(name, []).append(ms)
                if expected is not None:
                    result.recalls.setdefault(name, []).append(_recall(found, expected))
    # Recall only, on more queries (fresh ones, untimed): counted with the timed queries'.
    probes: F32 = query_vectors(space, t.plan, scale.recall_queries, salt + 1000)
    for qi in range(len(probes)):
        q = Vector(probes[qi].tolist())
        _, truth = call("owner", EXACT_SQL, (t.client_id, None, None, None, None, q, K))
        _, found = call("viewer", SEARCH_SQL, (q, K, None, None))
        result.recalls.setdefault("search", []).append(_recall(found, truth))
    return result


def measure_classes(
    url: str, space: Space, scale: Scale, tenants: list[BenchTenant], salt: int
) -> list[ClassResult]:
    opened = [psycopg.connect(url) for _ in range(4)]
    try:
        for c in opened:
            register_vector(c)
        conns = Conns(*opened)
        return [measure_class(conns, space, scale, t, salt) for t in tenants]
    finally:
        for c in opened:
            c.close()


def measure_locks(url: str, space: Space, tenants: list[BenchTenant]) -> list[LockResult]:
    """Relation locks one search call holds at its end, per tenant class (so per route): on the
    first call of a new session and warm (after 10 calls, past the 5 custom plans PostgreSQL
    makes of each kept statement), with how many of the warm ones the fast path took.
    A second session reads pg_locks: a query on pg_locks in the searching session would itself
    take one of that backend's 16 fast-path slots."""
    count = (
        "select count(*), count(*) filter (where fastpath) from pg_catalog.pg_locks "
        "where pid = %s and locktype = 'relation'"
    )
    results: list[LockResult] = []
    for t in tenants:
        q = Vector(query_vectors(space, t.plan, 1, 99)[0].tolist())
        with psycopg.connect(url) as conn:
            register_vector(conn)
            route = _route(conn, t)[0]
            conn.rollback()
        with (
            psycopg.connect(url, autocommit=True) as conn,
            psycopg.connect(url, autocommit=True) as watcher,
        ):
            register_vector(conn)
            pid = (conn.info.backend_pid,)
            measured: list[tuple[int, int]] = []
            for warmup in (0, 10):
                for _ in range(warmup):
                    with act_as(conn, user_claims(t.viewer)):
                        conn.execute(SEARCH_SQL, (q, K, None, None)).fetchall()
                with act_as(conn, user_claims(t.viewer)):
                    base = watcher.execute(count, pid).fetchone()
                    conn.execute(SEARCH_SQL, (q, K, None, None)).fetchall()
                    after = watcher.execute(count, pid).fetchone()
                assert base is not None
                assert after is not None
                measured.append((int(after[0]) - int(base[0]), int(after[1]) - int(base[1])))
        (cold, _), (warm, fast) = measured
        results.append(LockResult(t.plan.label, route, warm, fast, cold))
    return results
