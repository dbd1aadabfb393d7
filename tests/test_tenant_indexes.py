"""Per-tenant HNSW indexes and the search route (docs/retrieval.md): every path a search can take
(exact scan, the tenant's own index, the shared index) returns what an exact search computed here
returns, promotion and demotion move a tenant between paths, and promotion never blocks searches.
The data is committed in this module's own database; the routes are forced with the two settings
(renum.search_exact_max_rows, renum.search_shared_min_share) so that a few dozen rows suffice."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from renum_db import tenant_indexes
from renum_db.cli import main
from renum_db.errors import InvalidInput, NotFound, PermissionDenied
from renum_db.vector import register_vector
from tests.support import World, acting
from tests.test_search import Corpus, _load, exact, near, search

Conn = psycopg.Connection[Any]


class Data:
    def __init__(self, world: World, a: Corpus, b: Corpus) -> None:
        self.world, self.a, self.b = world, a, b


@pytest.fixture(scope="module")
def data(db_url: str, world: World) -> Data:
    rng = random.Random(4242)
    with psycopg.connect(db_url) as conn:
        register_vector(conn)
        a = _load(conn, world.a.client_id, rng, 50)  # about 57 rows: a 3/4 share
        b = _load(conn, world.b.client_id, rng, 12)  # about 19 rows: a 1/4 share
        conn.commit()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("analyze public.document_chunks")
    return Data(world, a, b)


@pytest.fixture
def admin(db_url: str) -> Iterator[Conn]:
    """An autocommit connection as the owner, for promotion; demotes whatever it promoted."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn
        for row in tenant_indexes.status(conn):
            if row.state is not None:
                tenant_indexes.demote(conn, row.client_id)


@pytest.fixture
def vconn(conn: Conn) -> Conn:
    register_vector(conn)
    return conn


def route(conn: Conn, client_id: uuid.UUID, **filters: Any) -> str:
    row = conn.execute(
        "select private.chunk_search_route(%s, %s, %s)",
        (client_id, filters.get("document_ids"), filters.get("metadata_filter")),
    ).fetchone()
    assert row is not None
    return str(row[0])


def scans(conn: Conn, index: str) -> int:
    row = conn.execute(
        "select pg_stat_get_xact_numscans(to_regclass(%s))", (f"public.{index}",)
    ).fetchone()
    assert row is not None
    return int(row[0] or 0)


SHARED = "document_chunks_embedding_hnsw_idx"


def query_of(corpus: Corpus, seed: int) -> list[float]:
    rng = random.Random(seed)
    return near(rng.choice(list(corpus.chunks.values()))[0], rng)


# --- the route ---------------------------------------------------------------------------------


def test_a_tenant_below_the_exact_limit_is_routed_to_the_exact_scan(
    vconn: Conn, data: Data
) -> None:
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant) == "exact"


def test_the_viewer_gets_the_estimate_of_their_own_tenant_only(vconn: Conn, data: Data) -> None:
    with acting(vconn, data.world.claims("viewer")):
        row = vconn.execute(
            "select tenant_rows, share from private.chunk_tenant_estimate(%s)", (data.a.tenant,)
        ).fetchone()
        other = vconn.execute(
            "select * from private.chunk_tenant_estimate(%s)", (data.b.tenant,)
        ).fetchall()
    truth = vconn.execute(
        "select avg((client_id = %s)::int) from public.document_chunks", (data.a.tenant,)
    ).fetchone()
    assert row is not None
    assert truth is not None
    assert row[1] == pytest.approx(float(truth[0]), rel=1e-4)
    assert other == []


def test_a_large_share_above_the_exact_limit_is_routed_to_the_shared_index(
    vconn: Conn, data: Data
) -> None:
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant) == "shared_index"


def test_a_small_share_above_the_exact_limit_is_searched_exactly_until_promoted(
    vconn: Conn, data: Data
) -> None:
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("other")):
        assert route(vconn, data.b.tenant) == "exact"


def test_the_share_threshold_is_a_setting(vconn: Conn, data: Data) -> None:
    vconn.execute("set local renum.search_exact_max_rows = 5")
    vconn.execute("set local renum.search_shared_min_share = 0.9")
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant) == "exact"


def test_a_small_document_scope_of_a_big_tenant_is_routed_to_the_exact_scan(
    vconn: Conn, data: Data
) -> None:
    row = vconn.execute(
        "select document_id from public.document_chunks where client_id = %s limit 1",
        (data.a.tenant,),
    ).fetchone()
    assert row is not None
    one_document = [row[0]]
    vconn.execute("set local renum.search_exact_max_rows = 30")
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant, document_ids=one_document) == "exact"
        assert route(vconn, data.a.tenant) == "shared_index"


def test_a_metadata_filter_of_a_big_tenant_walks_and_a_selective_one_still_gets_the_exact_answer(
    vconn: Conn, data: Data
) -> None:
    # 0019: a metadata filter is not counted (a heap page per row); the walk runs with it and
    # falls back to the exact scan when it yields fewer than match_count rows.
    vconn.execute("set local renum.search_exact_max_rows = 30")
    q = query_of(data.a, 11)
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant, metadata_filter='{"lang": "xx"}') == "shared_index"
        rows = search(vconn, q, match_count=5, metadata_filter=Jsonb({"parity": 1}))
        none = search(vconn, q, match_count=5, metadata_filter=Jsonb({"lang": "xx"}))
    assert [r[0] for r in rows] == exact(data.a, q, 5, meta={"parity": 1})
    assert none == []


# --- each path returns the exact answer ----------------------------------------------------------


@pytest.mark.parametrize("actor", ["viewer", "service"])
def test_the_exact_path_returns_the_exact_nearest_chunks_without_an_index(
    vconn: Conn, data: Data, actor: str
) -> None:
    q = query_of(data.a, 1)
    before = scans(vconn, SHARED)
    params: dict[str, Any] = {"match_count": 10}
    schema = "public"
    if actor == "service":  # the backend's own entry point names the client
        schema, params["client_id"] = "backend", data.a.tenant
    with acting(vconn, data.world.claims(actor)):
        rows = search(vconn, q, schema=schema, **params)
    assert [r[0] for r in rows] == exact(data.a, q, 10)
    assert scans(vconn, SHARED) == before


@pytest.mark.parametrize("actor", ["viewer", "service"])
def test_the_shared_index_path_walks_the_shared_index_and_returns_the_exact_answer(
    vconn: Conn, data: Data, actor: str
) -> None:
    q = query_of(data.a, 2)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    before = scans(vconn, SHARED)
    params: dict[str, Any] = {"match_count": 10}
    schema = "public"
    if actor == "service":  # the backend's own entry point names the client
        schema, params["client_id"] = "backend", data.a.tenant
    with acting(vconn, data.world.claims(actor)):
        rows = search(vconn, q, schema=schema, **params)
    assert scans(vconn, SHARED) > before
    assert [r[0] for r in rows] == exact(data.a, q, 10)


def test_promotion_routes_the_tenant_to_its_own_index(admin: Conn, vconn: Conn, data: Data) -> None:
    result = tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("other")):
        assert route(vconn, data.b.tenant) == "tenant_index"
    assert (result.state, result.index_valid) == ("ready", True)


@pytest.mark.parametrize("actor", ["other", "service"])
def test_the_tenant_index_path_walks_the_tenants_index_and_returns_the_exact_answer(
    admin: Conn, vconn: Conn, data: Data, actor: str
) -> None:
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    own = tenant_indexes.index_name_for(data.b.tenant)
    second = tenant_indexes.second_index_name_for(data.b.tenant)
    q = query_of(data.b, 3)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    before = scans(vconn, own), scans(vconn, second), scans(vconn, SHARED)
    params: dict[str, Any] = {"match_count": 10}
    schema = "public"
    if actor == "service":  # the backend's own entry point names the client
        schema, params["client_id"] = "backend", data.b.tenant
    with acting(vconn, data.world.claims(actor)):
        rows = search(vconn, q, schema=schema, **params)
    assert scans(vconn, own) > before[0]
    assert scans(vconn, second) > before[1]  # its second graph (0028)
    assert scans(vconn, SHARED) == before[2]
    assert [r[0] for r in rows] == exact(data.b, q, 10)


def test_the_tenant_index_path_applies_a_metadata_filter(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    q = query_of(data.b, 4)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("other")):
        assert route(vconn, data.b.tenant, metadata_filter='{"parity": 0}') == "tenant_index"
        rows = search(vconn, q, match_count=4, metadata_filter=Jsonb({"parity": 0}))
    assert [r[0] for r in rows] == exact(data.b, q, 4, meta={"parity": 0})


# --- both graphs for a promoted majority tenant (0025) -------------------------------------------


def test_a_promoted_tenant_holding_the_shared_share_walks_both_graphs(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=64)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant) == "tenant_and_shared_index"
        assert route(vconn, data.a.tenant, metadata_filter='{"parity": 0}') == (
            "tenant_and_shared_index"
        )
    vconn.execute("set local renum.search_shared_min_share = 0.9")
    with acting(vconn, data.world.claims("viewer")):
        # the share is cached with the count; the threshold is read on every call
        assert route(vconn, data.a.tenant) == "tenant_index"


@pytest.mark.parametrize("actor", ["viewer", "service"])
def test_the_merged_path_walks_both_indexes_and_returns_the_exact_answer(
    admin: Conn, vconn: Conn, data: Data, actor: str
) -> None:
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=64)
    own = tenant_indexes.index_name_for(data.a.tenant)
    q = query_of(data.a, 5)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    before_own, before_shared = scans(vconn, own), scans(vconn, SHARED)
    params: dict[str, Any] = {"match_count": 10}
    schema = "public"
    if actor == "service":
        schema, params["client_id"] = "backend", data.a.tenant
    with acting(vconn, data.world.claims(actor)):
        rows = search(vconn, q, schema=schema, **params)
    assert scans(vconn, own) > before_own
    assert scans(vconn, SHARED) > before_shared
    assert [r[0] for r in rows] == exact(data.a, q, 10)


@pytest.mark.parametrize("candidates", [12, 45])
def test_the_merged_walk_is_the_union_of_both_walks_each_chunk_once(
    admin: Conn, vconn: Conn, data: Data, candidates: int
) -> None:
    """0034: the shared walk is the second walk, at ef_search 32 and at most 32 candidates."""
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=64)
    q = str(query_of(data.a, 6)).replace(" ", "")
    walk_sql = "select id, distance from private.nearest_chunks(%s, %s, %s::extensions.vector, %s)"
    shared_sql = (
        "select id, distance from private.nearest_chunks_hnsw(%s, %s::extensions.vector, %s,"
        " ef_search => 32)"
    )
    with acting(vconn, data.world.claims("viewer")):
        walks = {
            name: vconn.execute(walk_sql, (name, data.a.tenant, q, candidates)).fetchall()
            for name in ("tenant_index", "tenant_and_shared_index")
        }
        shared = vconn.execute(shared_sql, (data.a.tenant, q, min(candidates, 32))).fetchall()
    merged = walks["tenant_and_shared_index"]
    assert len(shared) == min(candidates, 32)
    assert len({r[0] for r in merged}) == len(merged)  # each chunk once
    assert dict(merged) == dict(walks["tenant_index"]) | dict(shared)
    assert len(merged) >= candidates


def test_a_majority_tenant_with_a_second_graph_of_its_own_walks_only_its_two_graphs(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    """0034: promoted with a second graph (while it held less than the share), then holding the
    share, a tenant walks its own two graphs; the shared graph would be a third walk."""
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=64, second_graph=True)
    own = tenant_indexes.index_name_for(data.a.tenant)
    second = tenant_indexes.second_index_name_for(data.a.tenant)
    q = query_of(data.a, 5)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    before = scans(vconn, own), scans(vconn, second), scans(vconn, SHARED)
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant) == "tenant_and_shared_index"
        rows = search(vconn, q, match_count=10)
    assert scans(vconn, own) > before[0]
    assert scans(vconn, second) > before[1]
    assert scans(vconn, SHARED) == before[2]
    assert [r[0] for r in rows] == exact(data.a, q, 10)


def test_the_shared_walk_takes_its_ef_search_and_restores_the_callers(
    vconn: Conn, data: Data
) -> None:
    """0026: the merged route passes its ef_search to the shared walk (32 since 0034); the value
    set inside the walk never leaks into the caller's transaction, and the default stays 200."""
    q = str(query_of(data.a, 7)).replace(" ", "")
    walk = "select count(*) from private.nearest_chunks_hnsw(%s, %s::extensions.vector, 12{})"
    with acting(vconn, data.world.claims("viewer")):
        vconn.execute("set local hnsw.ef_search = 17")
        for extra in ("", ", ef_search => 64", ", ef_search => 1"):
            row = vconn.execute(walk.format(extra), (data.a.tenant, q)).fetchone()
            assert row is not None
            assert row[0] == 12, extra  # the iterative scan still returns every candidate asked
            setting = vconn.execute("select current_setting('hnsw.ef_search')").fetchone()
            assert setting == ("17",), extra
        body = vconn.execute(
            "select pg_get_functiondef('private.nearest_chunks'::regproc)"
        ).fetchone()
    assert body is not None
    assert "ef_search => 32" in body[0]


def test_the_shared_walk_of_a_promoted_tenant_walks_the_shared_graph_from_its_first_call(
    admin: Conn, db_url: str, data: Data
) -> None:
    # A custom plan (the first calls of a session) sees the tenant's id and would walk its
    # partial index instead: the merged route would then walk one graph twice.
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=64)
    own = tenant_indexes.index_name_for(data.a.tenant)
    q = str(query_of(data.a, 7)).replace(" ", "")
    with psycopg.connect(db_url) as fresh, acting(fresh, data.world.claims("viewer")):
        before_own, before_shared = scans(fresh, own), scans(fresh, SHARED)
        rows = fresh.execute(
            "select id from private.nearest_chunks_hnsw(%s, %s::extensions.vector, 12)",
            (data.a.tenant, q),
        ).fetchall()
        after_own, after_shared = scans(fresh, own), scans(fresh, SHARED)
    assert len(rows) == 12
    assert after_shared > before_shared
    assert after_own == before_own


def test_the_merged_walk_through_another_tenant_finds_nothing(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=64)
    q = str(query_of(data.a, 6)).replace(" ", "")
    with acting(vconn, data.world.claims("other")):  # a user of tenant b names tenant a
        rows = vconn.execute(
            "select id from private.nearest_chunks('tenant_and_shared_index', %s,"
            " %s::extensions.vector, 12)",
            (data.a.tenant, q),
        ).fetchall()
    assert rows == []


def test_status_advises_a_second_graph_for_a_tenant_of_the_set_size_whatever_its_share(
    admin: Conn, data: Data
) -> None:
    admin.execute("set renum.search_exact_max_rows = 5")
    try:
        default = {r.client_id: r.advice for r in tenant_indexes.status(admin)}
        admin.execute("set renum.search_second_graph_min_rows = 40")
        lowered = {r.client_id: r.advice for r in tenant_indexes.status(admin)}
    finally:
        admin.execute("reset renum.search_exact_max_rows")
        admin.execute("reset renum.search_second_graph_min_rows")
    assert default[data.a.tenant] is None  # ~57 rows, far below 100,000
    assert lowered == {data.a.tenant: "promote", data.b.tenant: "promote"}


def test_a_tenant_sees_only_its_own_registry_row(admin: Conn, vconn: Conn, data: Data) -> None:
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=64)
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    with acting(vconn, data.world.claims("viewer")):
        rows = vconn.execute("select client_id from private.tenant_chunk_indexes").fetchall()
    assert [r[0] for r in rows] == [data.a.tenant]


# --- promotion and demotion ---------------------------------------------------------------------


def test_promoting_twice_keeps_one_ready_index(admin: Conn, data: Data) -> None:
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    again = tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    row = admin.execute(
        "select count(*) from pg_catalog.pg_indexes where indexname = %s",
        (tenant_indexes.index_name_for(data.b.tenant),),
    ).fetchone()
    assert (again.state, row) == ("ready", (1,))


def test_promotion_resumes_a_registration_left_building(admin: Conn, data: Data) -> None:
    admin.execute(
        "insert into private.tenant_chunk_indexes (client_id, index_name) values (%s, %s)",
        (data.b.tenant, tenant_indexes.index_name_for(data.b.tenant)),
    )
    assert [r.advice for r in tenant_indexes.status(admin) if r.client_id == data.b.tenant] == [
        "resume"
    ]
    assert tenant_indexes.promote_due(admin) == [data.b.tenant]
    assert tenant_indexes.status(admin)[-1].state == "ready"


def test_status_advises_promoting_a_mid_size_tenant_with_a_small_share(
    admin: Conn, data: Data
) -> None:
    admin.execute("set renum.search_exact_max_rows = 5")
    try:
        advice = {r.client_id: r.advice for r in tenant_indexes.status(admin)}
    finally:
        admin.execute("reset renum.search_exact_max_rows")
    assert advice == {data.a.tenant: None, data.b.tenant: "promote"}


def test_demotion_drops_the_index_and_routes_the_tenant_back(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    assert tenant_indexes.demote(admin, data.b.tenant) is True
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("other")):
        assert route(vconn, data.b.tenant) == "exact"
    found = vconn.execute(
        "select to_regclass(%s)", (f"public.{tenant_indexes.index_name_for(data.b.tenant)}",)
    ).fetchone()
    assert found == (None,)


def test_demoting_a_tenant_without_an_index_reports_it(admin: Conn, data: Data) -> None:
    assert tenant_indexes.demote(admin, data.b.tenant) is False


def test_promoting_an_unknown_client_is_not_found(admin: Conn) -> None:
    with pytest.raises(NotFound):
        tenant_indexes.promote(admin, uuid.uuid4())


def test_promotion_refuses_a_connection_inside_a_transaction(conn: Conn, data: Data) -> None:
    with pytest.raises(InvalidInput, match="autocommit"):
        tenant_indexes.promote(conn, data.b.tenant)


def test_api_roles_cannot_write_the_registry(vconn: Conn, data: Data) -> None:
    with (
        pytest.raises(PermissionDenied, match="permission denied"),
        acting(vconn, data.world.claims("admin")),
    ):
        vconn.execute(
            "insert into private.tenant_chunk_indexes (client_id, index_name) values (%s, %s)",
            (data.a.tenant, tenant_indexes.index_name_for(data.a.tenant)),
        )


def test_searches_run_and_stay_exact_while_a_promotion_waits_for_them(
    db_url: str, admin: Conn, data: Data
) -> None:
    """A search transaction is open when the promotion starts: the concurrent build must wait for
    it, and the searches inside it go on (not blocked), answering exactly through the old route;
    once that transaction ends the build finishes and the next search walks the new index."""
    q = query_of(data.b, 5)
    expected = exact(data.b, q, 10)
    own = tenant_indexes.index_name_for(data.b.tenant)
    with psycopg.connect(db_url) as searcher:
        register_vector(searcher)
        searcher.execute("set renum.search_exact_max_rows = 5")
        with acting(searcher, data.world.claims("other")):
            first = search(searcher, q, match_count=10)
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            worker = threading.Thread(target=run)
            worker.start()
            waiting = False
            for _ in range(600):  # until the build waits for this transaction (<= 60 s)
                with psycopg.connect(db_url, autocommit=True) as probe:
                    row = probe.execute(
                        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                        "and query ilike 'create index concurrently%%' "
                        "and datname = current_database()"
                    ).fetchone()
                if row and row[0]:
                    waiting = True
                    break
                worker.join(0.1)
            during = [search(searcher, q, match_count=10) for _ in range(3)]
            routed = route(searcher, data.b.tenant)
        searcher.commit()
        worker.join(60)
        assert not worker.is_alive()
        assert errors == []
        with acting(searcher, data.world.claims("other")):
            before = scans(searcher, own)
            after = search(searcher, q, match_count=10)
            used = scans(searcher, own) > before
        searcher.rollback()
    assert waiting
    assert routed == "exact"
    assert [[r[0] for r in rows] for rows in [first, *during, after]] == [expected] * 5
    assert used


# --- the command line ---------------------------------------------------------------------------


def test_the_cli_promotes_reports_and_demotes_a_tenant(
    admin: Conn,
    db_url: str,
    data: Data,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    # b's ~20 rows are above this exact limit: its searches walk its index once promoted
    # (below the limit a promoted tenant is still ranked exactly, the cheaper plan).
    monkeypatch.setenv("PGOPTIONS", "-c renum.search_exact_max_rows=5")
    client = str(data.b.tenant)
    assert main(["tenant-index", "promote", client, "--ef-construction", "32"]) == 0
    assert main(["tenant-index", "status"]) == 0
    promoted = capsys.readouterr().out
    assert main(["tenant-index", "demote", client]) == 0
    assert main(["tenant-index", "status"]) == 0
    demoted = capsys.readouterr().out
    row = next(line for line in promoted.splitlines() if line.startswith(client))
    assert "tenant_index" in row
    assert row.split()[-2:] == ["ready", "2"]  # b's quarter share: two graphs of its own
    assert f"dropping {tenant_indexes.index_name_for(data.b.tenant)}" in demoted
    assert f"dropping {tenant_indexes.second_index_name_for(data.b.tenant)}" in demoted
    after = demoted.rsplit("concurrently", 1)[1].splitlines()
    row = next(line for line in after if line.startswith(client))
    assert "ready" not in row  # no index any more: advised for promotion again
    assert row.split()[-3:] == ["-", "0", "promote"]


def test_the_cli_needs_a_client_to_demote(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["tenant-index", "demote"]) == 2
    assert "needs a client id" in capsys.readouterr().err


# --- 0019: what one call touches, the route cache, the storage ---------------------------------

LOCKS_SQL = (
    "select pg_catalog.count(*), pg_catalog.bool_or(relation = 'pg_catalog.pg_statistic'::regclass)"
    " from pg_catalog.pg_locks"
    " where pid = pg_catalog.pg_backend_pid() and locktype = 'relation'"
    " and relation <> 'pg_catalog.pg_locks'::regclass"
)


def _relation_locks(
    db_url: str, claims: dict[str, Any] | None, sql: str, args: Any, exact_max: int = 1000
) -> tuple[int, bool]:
    """Relation locks held at the end of one warm call (its plans cached by earlier calls)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(f"set renum.search_exact_max_rows = {int(exact_max)}")
        for _ in range(10):  # past the 5 custom plans of each kept statement: steady state
            with acting(conn, claims):
                conn.execute(sql, args).fetchall()
        with acting(conn, claims):
            # What the test's own request setup locked (a custom API role is checked against
            # the catalog first, which PostgREST does not do per request) is not the call's.
            base = conn.execute(LOCKS_SQL).fetchone()
            conn.execute(sql, args).fetchall()
            row = conn.execute(LOCKS_SQL).fetchone()
    assert base is not None
    assert row is not None
    return int(row[0]) - int(base[0]), bool(row[1]) and not bool(base[1])


SEARCH_SQL = (
    "select id from public.search_embeddings("
    "query_embedding => %s::extensions.vector::real[], match_count => 5)"
)


def test_a_warm_exact_search_locks_fewer_relations_than_the_fast_path_holds(
    db_url: str, data: Data
) -> None:
    q = str(query_of(data.a, 7)).replace(" ", "")
    count, statistics = _relation_locks(db_url, data.world.claims("viewer"), SEARCH_SQL, (q,))
    # 13 since 0022 (no registry probe for a tenant the route knows to be small; the winners
    # joined by key); the fast path holds 16 per backend before PostgreSQL 18
    # (FP_LOCK_SLOTS_PER_BACKEND).
    assert count <= 13
    assert not statistics  # the route does not read pg_stats below the exact limit


def test_a_warm_shared_index_search_reads_the_statistics_once_per_minute_not_per_call(
    db_url: str, data: Data
) -> None:
    q = str(query_of(data.a, 8)).replace(" ", "")
    claims = data.world.claims("viewer")
    count, statistics = _relation_locks(db_url, claims, SEARCH_SQL, (q,), exact_max=5)
    assert not statistics
    # b's two graphs (0028): the table and two indexes, as the merged route: the fast path's 16
    assert count <= 16


def test_the_route_cache_follows_a_changed_exact_limit_at_once(vconn: Conn, data: Data) -> None:
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant) == "exact"  # caches the count bounded by 1001
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("viewer")):
        assert route(vconn, data.a.tenant) == "shared_index"
        cached = vconn.execute(
            "select current_setting(%s, true)",
            ("renum.chunk_route_" + str(data.a.tenant).replace("-", ""),),
        ).fetchone()
    assert cached is not None
    rows, bound, share, _expiry = str(cached[0]).split("@")
    assert (int(rows), int(bound)) == (6, 6)  # counted again, up to the new limit + 1
    assert float(share) > 0.5


def test_a_promotion_applies_to_the_next_search_whatever_the_cache_holds(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("other")):
        assert route(vconn, data.b.tenant) == "exact"  # small share, not promoted: cached
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    with acting(vconn, data.world.claims("other")):
        assert route(vconn, data.b.tenant) == "tenant_index"


def test_embeddings_are_stored_in_the_row_and_the_shared_graph_is_built_at_128(conn: Conn) -> None:
    row = conn.execute(
        "select a.attstorage, i.reloptions from pg_catalog.pg_attribute as a,"
        " pg_catalog.pg_class as i"
        " where a.attrelid = 'public.document_chunks'::regclass and a.attname = 'embedding'"
        " and i.oid = 'public.document_chunks_embedding_hnsw_idx'::regclass"
    ).fetchone()
    assert row is not None
    assert row[0] == "m"
    assert sorted(row[1]) == ["ef_construction=128", "m=16"]


def _walk_exists(conn: Conn, client_id: uuid.UUID, graph: str = "t") -> bool:
    row = conn.execute(
        "select to_regprocedure(%s) is not null",
        (
            f"private.nearest_chunks_{graph}_{client_id.hex}"
            "(extensions.vector, integer, uuid[], jsonb)",
        ),
    ).fetchone()
    assert row is not None
    return bool(row[0])


def test_promotion_writes_the_tenants_walk_function_and_demotion_drops_it(
    admin: Conn, data: Data
) -> None:
    assert not _walk_exists(admin, data.b.tenant)
    assert not _walk_exists(admin, data.b.tenant, "h")
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    assert _walk_exists(admin, data.b.tenant)
    assert _walk_exists(admin, data.b.tenant, "h")
    tenant_indexes.demote(admin, data.b.tenant)
    assert not _walk_exists(admin, data.b.tenant)
    assert not _walk_exists(admin, data.b.tenant, "h")
    assert _index_state(admin, tenant_indexes.second_index_name_for(data.b.tenant)) is None


def test_the_walk_function_is_not_for_api_roles_to_write(vconn: Conn, data: Data) -> None:
    with pytest.raises(PermissionDenied), acting(vconn, data.world.claims("admin")):
        vconn.execute("select private.create_tenant_chunk_walk(%s)", (data.a.tenant,))


def test_a_warm_tenant_index_search_locks_fewer_relations_than_the_fast_path_holds(
    admin: Conn, db_url: str, data: Data
) -> None:
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=32)  # one more index on the table
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    q = str(query_of(data.b, 9)).replace(" ", "")
    claims = data.world.claims("other")
    count, statistics = _relation_locks(db_url, claims, SEARCH_SQL, (q,), exact_max=5)
    assert not statistics
    # b's two graphs (0028): the table and two indexes, as the merged route: the fast path's 16
    assert count <= 16


def test_a_warm_merged_search_locks_no_more_relations_than_the_fast_path_holds(
    admin: Conn, db_url: str, data: Data
) -> None:
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=32)
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    q = str(query_of(data.a, 9)).replace(" ", "")
    claims = data.world.claims("viewer")
    count, statistics = _relation_locks(db_url, claims, SEARCH_SQL, (q,), exact_max=5)
    assert not statistics
    assert count <= 16  # one index more than the tenant_index route: the fast path's 16


def test_a_tenant_without_its_walk_function_is_still_walked_through_its_index(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    admin.execute("select private.drop_tenant_chunk_walk(%s)", (data.b.tenant,))
    own = tenant_indexes.index_name_for(data.b.tenant)
    q = query_of(data.b, 3)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    before = scans(vconn, own)
    with acting(vconn, data.world.claims("other")):
        rows = search(vconn, q, match_count=10)
    assert scans(vconn, own) > before
    assert [r[0] for r in rows] == exact(data.b, q, 10)


def test_automatic_demotion_drops_the_index_of_a_tenant_that_shrank(
    admin: Conn, data: Data
) -> None:
    # b holds ~19 chunks: far below half the exact limit (1000), so its index is advised away.
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    advice = {r.client_id: r.advice for r in tenant_indexes.status(admin)}
    assert advice[data.b.tenant] == "demote"
    assert tenant_indexes.demote_due(admin) == [data.b.tenant]
    assert data.b.tenant not in {r.client_id for r in tenant_indexes.status(admin)}
    assert not _walk_exists(admin, data.b.tenant)


def test_the_cli_demotes_automatically(
    admin: Conn,
    db_url: str,
    data: Data,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    assert main(["tenant-index", "demote", "--auto"]) == 0
    assert "1 tenant(s) demoted" in capsys.readouterr().out


# --- the graph check after a build (stop 18) ----------------------------------------------------


def _probeable(conn: Conn, client_id: uuid.UUID) -> int:
    """The tenant's chunks with a usable embedding (not null, a norm cosine can use)."""
    row = conn.execute(
        "select count(*) from public.document_chunks where client_id = %s "
        "and embedding is not null "
        "and extensions.cosine_distance(embedding, embedding) <= 1e-4",
        (client_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _index_oid(conn: Conn, client_id: uuid.UUID) -> int:
    row = conn.execute(
        "select to_regclass(%s)::oid", (f"public.{tenant_indexes.index_name_for(client_id)}",)
    ).fetchone()
    assert row is not None
    assert row[0] is not None
    return int(row[0])


def _blind_walk(conn: Conn, client_id: uuid.UUID, graphs: tuple[str, ...] = ("t", "h")) -> None:
    """Replace the tenant's walk functions (t: its first graph's, h: its second's) with ones
    that return nothing."""
    for graph in graphs:
        conn.execute(
            f"create or replace function private.nearest_chunks_{graph}_{client_id.hex}("
            "query_embedding extensions.vector, candidate_count integer, "
            "document_ids uuid[] default null, metadata_filter jsonb default null) "
            "returns table (id uuid, distance double precision) language sql stable "
            "set search_path = '' as $$ select null::uuid, null::float8 where false $$"
        )


def test_promotion_checks_the_new_graph_and_reports_every_chunk_found(
    admin: Conn, data: Data
) -> None:
    steps: list[str] = []
    result = tenant_indexes.promote(admin, data.b.tenant, ef_construction=32, on_step=steps.append)
    n = _probeable(admin, data.b.tenant)
    assert n > 10
    check = tenant_indexes.check_graph(admin, data.b.tenant)
    assert (check.probed, check.found) == (n, n)
    assert f"{n} of {n} sampled chunks found (100.0%)" in " ".join(steps)
    # The promotion returns its check with the status; status()'s rows carry none.
    assert result.graph_check == check
    assert all(row.graph_check is None for row in tenant_indexes.status(admin))
    # `rows` are picked among all the tenant's chunks; those without a usable embedding skipped
    assert 0 < tenant_indexes.check_graph(admin, data.b.tenant, rows=5).probed <= 5


def test_the_graph_check_counts_the_chunks_the_walk_does_not_return(
    admin: Conn, data: Data
) -> None:
    """Against the real probe statement: a walk that returns nothing finds no chunk."""
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    _blind_walk(admin, data.b.tenant)
    check = tenant_indexes.check_graph(admin, data.b.tenant)
    assert check.probed == _probeable(admin, data.b.tenant)
    assert check.found == 0
    assert check.reachable == 0.0


def test_promotion_reports_a_graph_under_the_reachable_share(
    admin: Conn, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        tenant_indexes,
        "check_graph",
        lambda conn, client_id, rows=0: tenant_indexes.GraphCheck(probed=1000, found=990),
    )
    steps: list[str] = []
    result = tenant_indexes.promote(admin, data.b.tenant, ef_construction=32, on_step=steps.append)
    assert any("990 of 1000" in s and "(under 99.5%)" in s for s in steps), steps
    assert result.state == "ready"  # the tenant's own graph still beats the shared one


def test_the_cli_checks_a_promoted_tenants_graph(
    admin: Conn,
    db_url: str,
    data: Data,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    client = str(data.b.tenant)
    assert main(["tenant-index", "check", client]) == 2  # not promoted: nothing to check
    assert "no per-tenant index" in capsys.readouterr().err
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    assert main(["tenant-index", "check", client]) == 0
    out = capsys.readouterr().out
    n = _probeable(admin, data.b.tenant)
    assert f"{n} of {n} sampled chunks found (100.0%)" in out
    # a walk that returns nothing: the check fails (exit 1)
    _blind_walk(admin, data.b.tenant)
    assert main(["tenant-index", "check", client]) == 1
    assert f"0 of {n} sampled chunks found (0.0%)" in capsys.readouterr().out


# --- two graphs for every promoted tenant (0028) ------------------------------------------------


def _index_state(conn: Conn, name: str) -> tuple[bool, str] | None:
    """(valid, definition) of public.<name>, None when it does not exist."""
    row = conn.execute(
        "select i.indisvalid, pg_get_indexdef(i.indexrelid) from pg_index as i "
        "where i.indexrelid = to_regclass(%s)",
        (f"public.{name}",),
    ).fetchone()
    return None if row is None else (bool(row[0]), str(row[1]))


def test_promotion_builds_a_second_graph_for_a_small_share_only(admin: Conn, data: Data) -> None:
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)  # a quarter of the rows
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=32)  # three quarters
    second = _index_state(admin, tenant_indexes.second_index_name_for(data.b.tenant))
    assert second is not None
    valid, definition = second
    assert valid
    assert "halfvec_cosine_ops" in definition
    assert "l2_normalize(embedding)" in definition
    assert f"client_id = '{data.b.tenant}'::uuid" in definition
    assert "m='16', ef_construction='32'" in definition.replace('"', "'")
    # the majority tenant's second graph is the shared index (0025)
    assert _index_state(admin, tenant_indexes.second_index_name_for(data.a.tenant)) is None
    assert not _walk_exists(admin, data.a.tenant, "h")
    rows = {r.client_id: r for r in tenant_indexes.status(admin)}
    assert rows[data.b.tenant].second_index_name == tenant_indexes.second_index_name_for(
        data.b.tenant
    )
    assert (rows[data.b.tenant].second_index_bytes or 0) > 0
    assert rows[data.a.tenant].second_index_name is None


def test_the_two_graph_walk_is_the_union_of_both_walks_each_chunk_once(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    q = str(query_of(data.b, 11)).replace(" ", "")
    hexid = data.b.tenant.hex
    with acting(vconn, data.world.claims("other")):
        first, second, both = (
            vconn.execute(
                f"select id, distance from {fn} %s::extensions.vector, 6)", args
            ).fetchall()
            for fn, args in (
                (f"private.nearest_chunks_t_{hexid}(", (q,)),
                (f"private.nearest_chunks_h_{hexid}(", (q,)),
                ("private.nearest_chunks_tenant_index(%s,", (data.b.tenant, q)),
            )
        )
    assert len(first) == len(second) == 6
    assert len({r[0] for r in both}) == len(both)  # each chunk once
    assert dict(both) == dict(first) | dict(second)  # the same exact distance from either walk


def test_the_second_graph_finds_what_the_first_walk_does_not(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    """With its first graph's walk returning nothing, a search still gets the exact answer."""
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=64)
    _blind_walk(admin, data.b.tenant, ("t",))
    q = query_of(data.b, 12)
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("other")):
        rows = search(vconn, q, match_count=5)
    assert [r[0] for r in rows] == exact(data.b, q, 5)


def test_promoting_again_gives_a_tenant_promoted_with_one_graph_its_second(
    admin: Conn, data: Data
) -> None:
    """The path of a tenant promoted before 0028: status advises it, promote builds only it."""
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32, second_graph=False)
    admin.execute("set renum.search_exact_max_rows = 5")
    try:
        first_oid = _index_oid(admin, data.b.tenant)
        assert not _walk_exists(admin, data.b.tenant, "h")
        advice = {r.client_id: r.advice for r in tenant_indexes.status(admin)}
        assert advice[data.b.tenant] == "promote"
        steps: list[str] = []
        assert tenant_indexes.promote_due(admin, on_step=steps.append) == [data.b.tenant]
        assert _index_oid(admin, data.b.tenant) == first_oid  # the first graph kept
        assert _walk_exists(admin, data.b.tenant, "h")
        second = tenant_indexes.second_index_name_for(data.b.tenant)
        assert any(f"building {second}" in s and "ef_construction=32" in s for s in steps), steps
        advice = {r.client_id: r.advice for r in tenant_indexes.status(admin)}
        assert advice[data.b.tenant] is None
    finally:
        admin.execute("reset renum.search_exact_max_rows")


def test_a_component_beyond_halfvec_range_is_written_and_searched_with_two_graphs(
    admin: Conn, vconn: Conn, data: Data
) -> None:
    """The second graph indexes the normalised vector: a component of 1e6 (halfvec's largest is
    65504) neither fails the write nor hides the chunk from its searches."""
    tenant_indexes.promote(admin, data.b.tenant, ef_construction=32)
    chunk, (vec, *_rest) = next(iter(data.b.chunks.items()))
    scaled = [x * 1e6 / max(abs(v) for v in vec) for x in vec]
    q = near(vec, random.Random(13))
    vconn.execute(
        "update public.document_chunks set embedding = %s::extensions.vector where id = %s",
        (str(scaled).replace(" ", ""), chunk),
    )
    vconn.execute("set local renum.search_exact_max_rows = 5")
    with acting(vconn, data.world.claims("other")):
        rows = search(vconn, q, match_count=3)
    assert rows[0][0] == chunk  # same direction: still the nearest by cosine


def test_the_second_walk_is_cheaper_than_the_first(admin: Conn, vconn: Conn, data: Data) -> None:
    """0030: the second walk runs at ef_search 32 and returns at most 32 candidates (more would
    make the iterative scan walk on); the first keeps ef_search 64 and the caller's count."""
    tenant_indexes.promote(admin, data.a.tenant, ef_construction=32, second_graph=True)
    hexid = data.a.tenant.hex
    configs = dict(
        admin.execute(
            "select p.proname, p.proconfig from pg_proc as p "
            "where p.pronamespace = 'private'::regnamespace and p.proname = any (%s)",
            ([f"nearest_chunks_t_{hexid}", f"nearest_chunks_h_{hexid}"],),
        ).fetchall()
    )
    assert "hnsw.ef_search=64" in configs[f"nearest_chunks_t_{hexid}"]
    assert "hnsw.ef_search=32" in configs[f"nearest_chunks_h_{hexid}"]
    q = str(query_of(data.a, 21)).replace(" ", "")
    with acting(vconn, data.world.claims("viewer")):
        counts = [
            len(vconn.execute(f"select * from {fn}(%s::extensions.vector, 50)", (q,)).fetchall())
            for fn in (f"private.nearest_chunks_t_{hexid}", f"private.nearest_chunks_h_{hexid}")
        ]
    assert len(data.a.chunks) > 50
    assert counts == [50, 32]
