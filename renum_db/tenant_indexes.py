"""Per-tenant HNSW indexes: promote a tenant to its own partial index, demote it, report status.

A search routes to a tenant's own index only once the registry (`private.tenant_chunk_indexes`)
says 'ready' (see docs/retrieval.md). Promotion therefore runs in three committed steps, none of
which blocks searches or writes:

1. register the tenant as 'building' (searches keep their current plan);
2. `create index concurrently ... where client_id = '<tenant>'::uuid`, and (since 0028) for a
   tenant holding less than `renum.search_shared_min_share` of the table a second graph of the
   same rows, `document_chunks_hnswh_<client hex>` (halfvec of the normalised embedding): one
   graph can leave a region its walk never reaches, two builds rarely the same one, and a search
   walks both (docs/retrieval.md, "Two graphs for every promoted tenant"). A majority tenant's
   second graph is the shared index (0025);
3. check that the indexes are valid, write the tenant's walk functions
   (private.create_tenant_chunk_walk: the walks with the tenant as a literal, their plans kept
   per session), check the graphs (check_graph: sampled chunks found by their own embedding,
   reported), then mark it 'ready' (searches use it from the next call).

Promoting a ready tenant again builds only what it lacks: the second graph of a tenant promoted
before 0028 (`status` advises it). Demotion mirrors promotion: 'retiring' (searches stop using the
indexes at once), `drop index concurrently` of both (which waits for every search that could
still route to them), the walk functions are dropped, then the registry row is deleted. Both are
idempotent: a step that stopped half-way (a failed or cancelled build leaves an invalid index) is
resumed by running the command again.

`create index concurrently` cannot run inside a transaction, so these functions need a connection
in autocommit mode, opened by the operator's login (the owner of document_chunks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from renum_db.errors import InvalidInput, NotFound, wrap_errors

__all__ = [
    "GraphCheck",
    "TenantIndexStatus",
    "build_settings",
    "check_graph",
    "demote",
    "demote_due",
    "index_name_for",
    "promote",
    "promote_due",
    "second_index_name_for",
    "status",
    "wants_second_graph",
]

DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 128
# The graph check (check_graph): how many of the tenant's chunks to probe, and the share found
# under which `renum-db tenant-index check` exits 1 (healthy builds of the benchmark's tenants:
# 99.85-100% of 2,000 probes).
GRAPH_PROBE_ROWS = 1000
MIN_REACHABLE = 0.995
# As many candidates as a search walks for its default 10 results (max(3 x match_count, 40)).
_PROBE_CANDIDATES = 40
# A probe is found when the walk returns a chunk this close to its embedding: itself, or an
# identical vector (duplicate chunks), allowing for single-precision rounding.
_SAME_POINT = 1e-4


@dataclass(frozen=True, slots=True)
class TenantIndexStatus:
    """One row of `private.tenant_chunk_index_status()`."""

    client_id: UUID
    chunk_rows: int
    share: float
    route: str
    index_name: str | None
    state: str | None
    index_valid: bool | None
    index_bytes: int | None
    second_index_name: str | None  # the second graph (0028), None when there is none
    second_index_bytes: int | None
    advice: str | None
    # The graph check the promotion ran before the index served searches (promote's result
    # only; None in status()'s rows).
    graph_check: GraphCheck | None = None


def index_name_for(client_id: UUID) -> str:
    """The name of a client's partial HNSW index (53 characters, under the 63-byte limit)."""
    return f"document_chunks_hnsw_{client_id.hex}"


def second_index_name_for(client_id: UUID) -> str:
    """The name of a client's second partial HNSW graph, halfvec (54 characters)."""
    return f"document_chunks_hnswh_{client_id.hex}"


_BUILD_SQL = {
    False: "using hnsw (embedding extensions.vector_cosine_ops) ",
    # Normalised before the cast: cosine order is unchanged, and unit components cannot overflow
    # halfvec's range (a bare cast would fail the insert of a component above 65504).
    True: "using hnsw ((extensions.l2_normalize(embedding)::extensions.halfvec(1536)) "
    "extensions.halfvec_cosine_ops) ",
}


def _build(
    conn: psycopg.Connection[Any],
    client_id: UUID,
    *,
    second: bool,
    m: int,
    ef_construction: int,
    say: Callable[[str], None],
) -> None:
    """Build the client's first or second graph concurrently unless a valid one exists (an
    invalid one, left by an interrupted build, is dropped first)."""
    name = second_index_name_for(client_id) if second else index_name_for(client_id)
    found = _index_state(conn, name)
    if found is not None and not found[0]:
        say(f"dropping the invalid index {name} left by an interrupted build")
        _drop_index(conn, name)
        found = None
    if found is None:
        kind = "second graph, halfvec" if second else "first graph"
        say(f"building {name} concurrently ({kind}, m={m}, ef_construction={ef_construction})")
        conn.execute(
            sql.SQL(
                "create index concurrently if not exists {name} on public.document_chunks "
                + _BUILD_SQL[second]
                + "with (m = {m}, ef_construction = {ef}) where client_id = {client}::uuid"
            ).format(
                name=sql.Identifier(name),
                m=sql.Literal(int(m)),
                ef=sql.Literal(int(ef_construction)),
                client=sql.Literal(str(client_id)),
            )
        )
    found = _index_state(conn, name)
    if found is None or not all(found):
        raise NotFound(f"index {name} is not valid after its build; run promote again")


def wants_second_graph(conn: psycopg.Connection[Any], client_id: UUID) -> bool:
    """Whether a promotion of `client_id` builds its second graph: when it holds less than
    `renum.search_shared_min_share` of document_chunks (counted). A majority tenant walks the
    shared index as its second graph (the 'tenant_and_shared_index' route)."""
    with wrap_errors():
        row = conn.execute(
            "select (pg_catalog.count(*) filter (where c.client_id = %s))::float8 "
            "/ greatest(pg_catalog.count(*), 1) "
            "< coalesce(nullif(pg_catalog.current_setting('renum.search_shared_min_share', true),"
            " '')::float8, 0.5) "
            "from public.document_chunks as c",
            (client_id,),
        ).fetchone()
    assert row is not None
    return bool(row[0])


def _require_autocommit(conn: psycopg.Connection[Any]) -> None:
    if not conn.autocommit:
        raise InvalidInput(
            "per-tenant index commands need a connection in autocommit mode "
            "(create/drop index concurrently cannot run inside a transaction)"
        )


def status(conn: psycopg.Connection[Any]) -> list[TenantIndexStatus]:
    """Every client with a per-tenant index or more chunks than the exact-scan limit."""
    with wrap_errors(), conn.cursor(row_factory=class_row(TenantIndexStatus)) as cur:
        return cur.execute("select * from private.tenant_chunk_index_status()").fetchall()


def build_settings(conn: psycopg.Connection[Any], client_id: UUID) -> tuple[int, int] | None:
    """(m, ef_construction) of `client_id`'s registered index, None when it is not promoted."""
    with wrap_errors():
        row = conn.execute(
            "select m, ef_construction from private.tenant_chunk_indexes where client_id = %s",
            (client_id,),
        ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


@dataclass(frozen=True, slots=True)
class GraphCheck:
    """How many sampled chunks of a tenant its own HNSW graph finds by their own embedding."""

    probed: int
    found: int

    @property
    def reachable(self) -> float:
        return self.found / self.probed if self.probed else 1.0

    def __str__(self) -> str:
        return f"{self.found} of {self.probed} sampled chunks found ({self.reachable:.1%})"


_PROBE_SQL = """
with picked as (
  select c.id
    from public.document_chunks as c
   where c.client_id = %(client)s
   order by pg_catalog.random()
   limit %(rows)s
)
select pg_catalog.count(*)::integer,
       (pg_catalog.count(*) filter (where p.found))::integer
  from picked
  join public.document_chunks as s on s.client_id = %(client)s and s.id = picked.id
 cross join lateral (
   select coalesce(pg_catalog.min(w.distance) <= %(same)s, false) as found
     from private.nearest_chunks_tenant_index(%(client)s, s.embedding, %(candidates)s) as w
 ) as p
 where s.embedding is not null
   and extensions.cosine_distance(s.embedding, s.embedding) <= %(same)s
"""


def check_graph(
    conn: psycopg.Connection[Any], client_id: UUID, *, rows: int = GRAPH_PROBE_ROWS
) -> GraphCheck:
    """Walk the tenant's own index (as its searches do: ef_search 64, 40 candidates) with the
    embeddings of `rows` of its chunks picked at random, and count those the walk returns.

    HNSW graphs can leave regions the greedy descent never reaches from the entry point: a query
    near one gets none of its true neighbours (recall 0, at any ef_search a search can afford).
    A chunk the walk cannot find by its own embedding lies in such a region, so the share found
    estimates the share of the tenant a search can reach. `rows` are picked among all the
    tenant's chunks (from its key index, without reading their rows); those without a usable
    embedding (null, zero norm) are then skipped, so `probed` may be lower."""
    with wrap_errors():
        row = conn.execute(
            _PROBE_SQL,
            {
                "client": client_id,
                "rows": rows,
                "same": _SAME_POINT,
                "candidates": _PROBE_CANDIDATES,
            },
        ).fetchone()
    assert row is not None
    return GraphCheck(probed=int(row[0]), found=int(row[1]))


def _index_state(conn: psycopg.Connection[Any], name: str) -> tuple[bool, bool] | None:
    """(valid, ready) of the index `public.<name>`, None when it does not exist."""
    row = conn.execute(
        "select i.indisvalid, i.indisready from pg_catalog.pg_index as i "
        "join pg_catalog.pg_class as c on c.oid = i.indexrelid "
        "where c.relname = %s and c.relnamespace = 'public'::pg_catalog.regnamespace",
        (name,),
    ).fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]))


def promote(
    conn: psycopg.Connection[Any],
    client_id: UUID,
    *,
    m: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    second_graph: bool | None = None,
    on_step: Callable[[str], None] | None = None,
) -> TenantIndexStatus:
    """Give `client_id` its own partial HNSW index and route its searches to it (idempotent).
    `second_graph` (default: wants_second_graph) also builds its second graph, walked with the
    first. The graphs are checked (check_graph) before searches use them: the check is reported
    through `on_step` and returned as the status's `graph_check`."""
    _require_autocommit(conn)
    say = on_step or (lambda _: None)
    name = index_name_for(client_id)
    with wrap_errors():
        known = conn.execute("select from public.clients where id = %s", (client_id,)).fetchone()
        if known is None:
            raise NotFound(f"no client {client_id}")
        conn.execute(
            "insert into private.tenant_chunk_indexes (client_id, index_name, m, ef_construction) "
            "values (%s, %s, %s, %s) "
            "on conflict (client_id) do update set state = 'building', m = excluded.m, "
            "ef_construction = excluded.ef_construction, requested_at = pg_catalog.now(), "
            "ready_at = null "
            "where private.tenant_chunk_indexes.state <> 'ready'",
            (client_id, name, m, ef_construction),
        )
        # A ready tenant's settings stay those of its first graph (the registry's).
        settings = build_settings(conn, client_id)
        if settings is not None:
            m, ef_construction = settings
        if second_graph is None:
            second_graph = wants_second_graph(conn, client_id)
        _build(conn, client_id, second=False, m=m, ef_construction=ef_construction, say=say)
        if second_graph:
            _build(conn, client_id, second=True, m=m, ef_construction=ef_construction, say=say)
        # The tenant's walk functions (their plans kept per session) exist before any search can
        # route to the index, or, for a ready tenant, walk its new second graph from the next
        # call; the graph check walks through them too.
        conn.execute("select private.create_tenant_chunk_walk(%s)", (client_id,))
        check = check_graph(conn, client_id)
        second = _index_state(conn, second_index_name_for(client_id))
        two = second is not None and all(second)  # also one built by an earlier promotion
        graphs = name + (" and its second graph" if two else "")
        say(
            f"graph check of {graphs}: {check}"
            + ("" if check.reachable >= MIN_REACHABLE else f" (under {MIN_REACHABLE:.1%})")
        )
        conn.execute(
            "update private.tenant_chunk_indexes set state = 'ready', "
            "ready_at = coalesce(ready_at, pg_catalog.now()) where client_id = %s",
            (client_id,),
        )
        say(f"{graphs} ready: searches of {client_id} walk {'both' if two else 'it'}")
    return replace(_status_of(conn, client_id), graph_check=check)


def _drop_index(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(
        sql.SQL("drop index concurrently if exists public.{}").format(sql.Identifier(name))
    )


def demote(
    conn: psycopg.Connection[Any],
    client_id: UUID,
    *,
    on_step: Callable[[str], None] | None = None,
) -> bool:
    """Route `client_id`'s searches back to the shared plan and drop its index (idempotent).

    Returns False when the client had no per-tenant index.
    """
    _require_autocommit(conn)
    say = on_step or (lambda _: None)
    name = index_name_for(client_id)
    with wrap_errors():
        row = conn.execute(
            "update private.tenant_chunk_indexes set state = 'retiring' where client_id = %s "
            "returning index_name",
            (client_id,),
        ).fetchone()
        present = [
            index
            for index in (name, second_index_name_for(client_id))
            if _index_state(conn, index) is not None
        ]
        if row is None and not present:
            return False
        for index in present:
            say(f"dropping {index} concurrently")
            _drop_index(conn, index)
        # After the concurrent drops, which waited for every transaction that could still have
        # read 'ready': no search calls the tenant's walk functions any more.
        conn.execute("select private.drop_tenant_chunk_walk(%s)", (client_id,))
        conn.execute("delete from private.tenant_chunk_indexes where client_id = %s", (client_id,))
    return True


def promote_due(
    conn: psycopg.Connection[Any],
    *,
    m: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    on_step: Callable[[str], None] | None = None,
) -> list[UUID]:
    """Promote every client that status() advises to promote or to resume; returns their ids."""
    due = [s for s in status(conn) if s.advice == "promote" or s.state == "building"]
    for row in due:
        promote(conn, row.client_id, m=m, ef_construction=ef_construction, on_step=on_step)
    return [row.client_id for row in due]


def demote_due(
    conn: psycopg.Connection[Any],
    *,
    on_step: Callable[[str], None] | None = None,
) -> list[UUID]:
    """Demote every client that status() advises to demote (an index for a client down to half
    the exact limit or less) or whose demotion stopped half-way ('retiring'); returns their ids."""
    due = [s for s in status(conn) if s.advice == "demote" or s.state == "retiring"]
    for row in due:
        demote(conn, row.client_id, on_step=on_step)
    return [row.client_id for row in due]


def _status_of(conn: psycopg.Connection[Any], client_id: UUID) -> TenantIndexStatus:
    for row in status(conn):
        if row.client_id == client_id:
            return row
    raise NotFound(f"client {client_id} has no per-tenant index")
