"""Retrieval in Postgres: search_embeddings, hybrid_search, record_chunk_usage,
most_used_documents. Results are compared with an exact search computed here in Python."""

from __future__ import annotations

import math
import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from renum_db.errors import (
    DatabaseError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RenumDBError,
)
from renum_db.vector import Vector, register_vector
from tests.support import World, acting, claims_for, column_of

DIMS = 1536
Conn = psycopg.Connection[Any]

PT_TEXTS = [
    "O contrato de prestação de serviços vence em março.",
    "Os contratos de fornecimento foram renovados pela diretoria.",
    "A licitação pública exige três orçamentos.",
    "Relatório trimestral de despesas com viagens.",
]
EN_TEXTS = [
    "The supplier agreement renews every year.",
    "Quarterly travel expenses report for the board.",
    "Running shoes for marathon training.",
]


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIMS)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def near(v: list[float], rng: random.Random, noise: float = 0.05) -> list[float]:
    w = [x + rng.gauss(0, noise / math.sqrt(DIMS)) for x in v]
    n = math.sqrt(sum(x * x for x in w))
    return [x / n for x in w]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


@dataclass
class Corpus:
    tenant: uuid.UUID
    kb_pt: uuid.UUID
    kb_en: uuid.UUID
    col_pt: uuid.UUID
    col_en: uuid.UUID
    agent: uuid.UUID
    execution: uuid.UUID
    chunks: dict[uuid.UUID, tuple[list[float], str, uuid.UUID, dict[str, Any]]]  # vec, text, col


def _load(conn: Conn, tenant: uuid.UUID, rng: random.Random, n_random: int) -> Corpus:
    def one(q: str, *p: Any) -> uuid.UUID:
        row = conn.execute(q, p).fetchone()
        assert row is not None
        return uuid.UUID(str(row[0]))

    kb_pt = one(
        "insert into public.knowledge_bases (client_id, name, text_search_config) "
        "values (%s, 'pt', 'portuguese') returning id",
        tenant,
    )
    kb_en = one(
        "insert into public.knowledge_bases (client_id, name, text_search_config) "
        "values (%s, 'en', 'english') returning id",
        tenant,
    )
    cols = {}
    for kb in (kb_pt, kb_en):
        cols[kb] = one(
            "insert into public.knowledge_collections (client_id, knowledge_base_id, name) "
            "values (%s, %s, 'c') returning id",
            tenant,
            kb,
        )
    agent = one(
        "insert into public.agents (client_id, name) values (%s, 'searcher') returning id", tenant
    )
    execution = one(
        "insert into public.agent_executions (client_id, agent_id) values (%s, %s) returning id",
        tenant,
        agent,
    )
    chunks: dict[uuid.UUID, tuple[list[float], str, uuid.UUID, dict[str, Any]]] = {}
    texts = [(kb_pt, t) for t in PT_TEXTS] + [(kb_en, t) for t in EN_TEXTS]
    texts += [(rng.choice([kb_pt, kb_en]), f"filler {i}") for i in range(n_random)]
    for i, (kb, text) in enumerate(texts):
        col = cols[kb]
        doc = one(
            "insert into public.documents (client_id, collection_id, name) "
            "values (%s, %s, %s) returning id",
            tenant,
            col,
            f"doc {i}",
        )
        vec = unit(rng)
        meta = {"lang": "pt" if kb == kb_pt else "en", "parity": i % 2}
        cid = one(
            "insert into public.document_chunks (client_id, document_id, content, chunk_index, "
            "metadata, embedding) values (%s, %s, %s, 0, %s, %s) returning id",
            tenant,
            doc,
            text,
            Jsonb(meta),
            Vector(vec),
        )
        chunks[cid] = (vec, text, col, meta)
    return Corpus(tenant, kb_pt, kb_en, cols[kb_pt], cols[kb_en], agent, execution, chunks)


@dataclass
class Data:
    world: World
    a: Corpus
    b: Corpus


@pytest.fixture(scope="module")
def data(db_url: str, world: World) -> Data:
    rng = random.Random(1536)
    with psycopg.connect(db_url) as conn:
        register_vector(conn)
        a = _load(conn, world.a.client_id, rng, 40)
        b = _load(conn, world.b.client_id, rng, 20)
        conn.commit()
    return Data(world, a, b)


@pytest.fixture
def vconn(conn: Conn) -> Conn:
    register_vector(conn)
    return conn


def exact(corpus: Corpus, query: list[float], k: int, **f: Any) -> list[uuid.UUID]:
    rows = [
        (cid, cosine(vec, query))
        for cid, (vec, _, col, meta) in corpus.chunks.items()
        if (f.get("collections") is None or col in f["collections"])
        and all(meta.get(key) == value for key, value in (f.get("meta") or {}).items())
    ]
    rows.sort(key=lambda r: (-r[1], str(r[0])))
    return [r[0] for r in rows[:k]]


def search(
    conn: Conn, query: list[float], *, schema: str = "public", **params: Any
) -> list[tuple[Any, ...]]:
    """public.search_embeddings (browsers), or backend.search_embeddings (the backend)."""
    names = ", ".join(f"{k} => %({k})s" for k in params)
    sql = f"select * from {schema}.search_embeddings(%(q)s{', ' if names else ''}{names})"
    return conn.execute(sql, {"q": Vector(query), **params}).fetchall()


# --- correctness ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5, 20])
def test_results_match_an_exact_search_of_the_callers_tenant(
    vconn: Conn, data: Data, k: int
) -> None:
    q = unit(random.Random(k))
    with acting(vconn, data.world.claims("viewer")):
        rows = search(vconn, q, match_count=k)
    assert [r[0] for r in rows] == exact(data.a, q, k)
    for r in rows:
        assert r[7] == pytest.approx(cosine(data.a.chunks[r[0]][0], q), abs=1e-5)
    assert [r[7] for r in rows] == sorted((r[7] for r in rows), reverse=True)


def test_the_default_returns_five_rows_with_every_documented_column(
    vconn: Conn, data: Data
) -> None:
    with acting(vconn, data.world.claims("member")):
        cur = vconn.execute(
            "select * from public.search_embeddings(%s)", (Vector(unit(random.Random(7))),)
        )
        rows = cur.fetchall()
        names = [c.name for c in cur.description or []]
    assert len(rows) == 5
    assert names == [
        "id", "document_id", "collection_id", "knowledge_base_id", "content", "metadata",
        "chunk_index", "similarity",
    ]  # fmt: skip


def hnsw_scans(conn: Conn) -> int:
    row = conn.execute(
        "select pg_stat_get_xact_numscans('public.document_chunks_embedding_hnsw_idx'::regclass)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_above_the_exact_limit_the_hnsw_index_is_used_and_results_stay_exact(
    vconn: Conn, data: Data
) -> None:
    q = near(next(iter(data.a.chunks.values()))[0], random.Random(3))
    vconn.execute("set local renum.search_exact_max_rows = 5")
    # Even on this 70-row table, where sorting everything is cheaper, the HNSW branch must walk
    # the index: private.nearest_chunks_hnsw holds the planner to it.
    before = hnsw_scans(vconn)
    with acting(vconn, data.world.claims("member")):
        rows = search(vconn, q, match_count=10)
    assert hnsw_scans(vconn) > before
    assert [r[0] for r in rows] == exact(data.a, q, 10)


def test_the_hnsw_path_over_fetches_candidates_before_ranking_them_exactly(
    vconn: Conn, data: Data
) -> None:
    """Relaxed-order iterative scans return rows only roughly nearest-first, so the HNSW branch
    must take max(4 x match_count, 40) candidates and re-rank them; asking the index for just
    match_count rows would lose recall. Count the entries the index hands out."""

    def returned() -> int:
        row = vconn.execute(
            "select pg_stat_get_xact_tuples_returned("
            "'public.document_chunks_embedding_hnsw_idx'::regclass)"
        ).fetchone()
        assert row is not None
        return int(row[0])

    vconn.execute("set local renum.search_exact_max_rows = 5")
    before = returned()
    with acting(vconn, data.world.claims("member")):
        rows = search(vconn, unit(random.Random(8)), match_count=3)
    assert len(rows) == 3
    assert returned() - before >= 40


def test_small_candidate_sets_are_ranked_exactly_without_the_hnsw_index(
    vconn: Conn, data: Data
) -> None:
    before = hnsw_scans(vconn)
    with acting(vconn, data.world.claims("member")):
        search(vconn, unit(random.Random(4)), match_count=10)
    assert hnsw_scans(vconn) == before


def test_a_selective_filter_above_the_exact_limit_falls_back_to_an_exact_scan(
    vconn: Conn, data: Data
) -> None:
    q = unit(random.Random(5))
    vconn.execute("set local renum.search_exact_max_rows = 2")
    vconn.execute("set local hnsw.max_scan_tuples = 3")  # starve the index scan
    with acting(vconn, data.world.claims("member")):
        rows = search(vconn, q, match_count=8, collection_ids=[data.a.col_en])
    assert [r[0] for r in rows] == exact(data.a, q, 8, collections={data.a.col_en})


def test_collection_knowledge_base_and_metadata_filters_narrow_the_scope(
    vconn: Conn, data: Data
) -> None:
    q = unit(random.Random(6))
    with acting(vconn, data.world.claims("viewer")):
        by_col = search(vconn, q, match_count=50, collection_ids=[data.a.col_pt])
        by_kb = search(vconn, q, match_count=50, knowledge_base_ids=[data.a.kb_pt])
        by_meta = search(vconn, q, match_count=50, metadata_filter=Jsonb(
            {"lang": "en", "parity": 1}))  # fmt: skip
    assert [r[0] for r in by_col] == exact(data.a, q, 50, collections={data.a.col_pt})
    assert [r[0] for r in by_kb] == [r[0] for r in by_col]
    assert [r[0] for r in by_meta] == exact(data.a, q, 50, meta={"lang": "en", "parity": 1})
    assert by_meta


def test_min_similarity_drops_weaker_matches(vconn: Conn, data: Data) -> None:
    target, (vec, _, _, _) = next(iter(data.a.chunks.items()))
    with acting(vconn, data.world.claims("viewer")):
        rows = search(vconn, near(vec, random.Random(8)), match_count=10, min_similarity=0.9)
    assert [r[0] for r in rows] == [target]


# --- tenants -------------------------------------------------------------------------------


def test_a_user_of_another_tenant_only_ever_gets_their_own_chunks(vconn: Conn, data: Data) -> None:
    vec = next(iter(data.a.chunks.values()))[0]  # a query aimed at tenant A's chunk
    with acting(vconn, data.world.claims("other")):
        rows = search(vconn, vec, match_count=50)
    assert {r[0] for r in rows} <= set(data.b.chunks)
    assert len(rows) == len(data.b.chunks)


def test_another_tenants_collection_ids_match_nothing(vconn: Conn, data: Data) -> None:
    with acting(vconn, data.world.claims("member")):
        rows = search(vconn, unit(random.Random(9)), collection_ids=[data.b.col_pt])
    assert rows == []


def test_a_user_cannot_name_another_client(vconn: Conn, data: Data) -> None:
    """The browser's search has no client_id; the backend's, which has one, is out of reach."""
    with pytest.raises(DatabaseError) as err, acting(vconn, data.world.claims("member")):
        search(vconn, unit(random.Random(1)), client_id=data.b.tenant)
    assert err.value.sqlstate == "42883"  # no such function: PostgREST answers PGRST202
    with pytest.raises(PermissionDenied), acting(vconn, data.world.claims("member")):
        search(vconn, unit(random.Random(1)), schema="backend", client_id=data.b.tenant)


def test_the_backend_must_name_a_client_and_gets_only_that_clients_chunks(
    vconn: Conn, data: Data
) -> None:
    q = next(iter(data.a.chunks.values()))[0]
    with (
        pytest.raises(InvalidInput, match="client_id is required"),
        acting(vconn, data.world.claims("service")),
    ):
        search(vconn, q, schema="backend")
    with pytest.raises(PermissionDenied), acting(vconn, data.world.claims("service")):
        search(vconn, q)  # the browser's function: the backend has no tenant of its own
    with acting(vconn, data.world.claims("service")):
        rows = search(vconn, q, schema="backend", match_count=200, client_id=data.b.tenant)
    assert {r[0] for r in rows} == set(data.b.chunks)


def test_a_user_without_a_client_is_refused(vconn: Conn, data: Data) -> None:
    with (
        pytest.raises(PermissionDenied, match="no active client"),
        acting(vconn, data.world.claims("nobody")),
    ):
        search(vconn, unit(random.Random(1)))


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "sqlstate", "message"),
    [
        ({"match_count": 0}, "22023", "match_count must be between 1 and 200"),
        ({"match_count": 201}, "22023", "match_count must be between 1 and 200"),
        ({"match_count": None}, "22023", "match_count"),
        ({"min_similarity": 1.5}, "22023", "min_similarity"),
        ({"min_similarity": float("nan")}, "22023", "min_similarity"),
        ({"metadata_filter": Jsonb([1])}, "22023", "JSON object"),
    ],
)
def test_bad_parameters_fail_clearly(
    vconn: Conn, data: Data, params: dict[str, Any], sqlstate: str, message: str
) -> None:
    with (
        pytest.raises(InvalidInput, match=message) as err,
        acting(vconn, data.world.claims("member")),
    ):
        search(vconn, unit(random.Random(1)), **params)
    assert err.value.sqlstate == sqlstate


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("[1,2,3]", "has 3 dimensions"),
        ("[" + ",".join(["0"] * DIMS) + "]", "non-zero, finite norm"),
        ("[" + ",".join(["NaN"] * DIMS) + "]", "NaN not allowed"),
        ("[" + ",".join(["Infinity"] * DIMS) + "]", "infinite value not allowed"),
    ],
)
def test_bad_query_embeddings_fail_clearly(
    vconn: Conn, data: Data, literal: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message), acting(vconn, data.world.claims("member")):
        vconn.execute("select * from public.search_embeddings(%s::extensions.vector)", (literal,))


def test_a_null_embedding_fails_clearly(vconn: Conn, data: Data) -> None:
    with (
        pytest.raises(InvalidInput, match="query_embedding is required") as err,
        acting(vconn, data.world.claims("member")),
    ):
        vconn.execute("select * from public.search_embeddings(null)")
    assert err.value.sqlstate == "22004"


# --- hybrid --------------------------------------------------------------------------------


def hybrid(conn: Conn, text: str, query: list[float], **params: Any) -> list[dict[str, Any]]:
    names = "".join(f", {k} => %({k})s" for k in params)
    cur = conn.execute(
        f"select * from public.hybrid_search(%(t)s, %(q)s{names})",
        {"t": text, "q": Vector(query), **params},
    )
    cols = [c.name for c in cur.description or []]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def chunk_with(corpus: Corpus, text: str) -> uuid.UUID:
    return next(cid for cid, (_, t, _, _) in corpus.chunks.items() if t == text)


def test_hybrid_search_finds_portuguese_words_through_stemming(vconn: Conn, data: Data) -> None:
    with acting(vconn, data.world.claims("viewer")):
        rows = hybrid(vconn, "contratos", unit(random.Random(11)), match_count=5)
    hits = [r for r in rows if r["text_position"] is not None]
    assert {r["id"] for r in hits} >= {
        chunk_with(data.a, PT_TEXTS[0]),  # "contrato" and "contratos" share a Portuguese stem
        chunk_with(data.a, PT_TEXTS[1]),
    }
    assert all(r["text_rank"] > 0 for r in hits)


def test_hybrid_search_parses_each_knowledge_base_in_its_language(vconn: Conn, data: Data) -> None:
    with acting(vconn, data.world.claims("viewer")):
        rows = hybrid(
            vconn, "renewing agreements", unit(random.Random(12)), match_count=5,
            semantic_weight=0.5,
        )  # fmt: skip
    top = rows[0]
    assert top["id"] == chunk_with(data.a, EN_TEXTS[0])  # english stems: renew, agreement
    assert top["text_position"] == 1


def test_hybrid_scores_are_the_reciprocal_rank_fusion_of_both_lists(
    vconn: Conn, data: Data
) -> None:
    target = chunk_with(data.a, PT_TEXTS[2])
    q = near(data.a.chunks[target][0], random.Random(13))
    with acting(vconn, data.world.claims("viewer")):
        rows = hybrid(
            vconn, "licitação", q, match_count=10, full_text_weight=2.0, semantic_weight=0.5,
            rrf_k=10,
        )  # fmt: skip
    assert rows[0]["id"] == target
    assert rows[0]["semantic_position"] == 1
    assert rows[0]["text_position"] == 1
    for r in rows:
        expected = (2.0 / (10 + r["text_position"]) if r["text_position"] else 0.0) + (
            0.5 / (10 + r["semantic_position"]) if r["semantic_position"] else 0.0
        )
        assert r["score"] == pytest.approx(expected)
        assert r["similarity"] == pytest.approx(cosine(data.a.chunks[r["id"]][0], q), abs=1e-5)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_hybrid_search_with_only_stop_words_falls_back_to_semantic_ranking(
    vconn: Conn, data: Data
) -> None:
    q = unit(random.Random(14))
    with acting(vconn, data.world.claims("viewer")):
        rows = hybrid(vconn, "de a o", q, match_count=5)
    assert [r["id"] for r in rows] == exact(data.a, q, 5)
    assert all(r["text_position"] is None for r in rows)


@pytest.mark.parametrize(
    ("text", "params", "message"),
    [
        ("", {}, "query_text is required"),
        ("x", {"full_text_weight": -1.0}, "must be >= 0"),
        ("x", {"full_text_weight": 0.0, "semantic_weight": 0.0}, "not both 0"),
        ("x", {"rrf_k": 0}, "rrf_k must be >= 1"),
        ("x", {"match_count": 0}, "match_count"),
    ],
)
def test_hybrid_search_rejects_bad_parameters(
    vconn: Conn, data: Data, text: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message), acting(vconn, data.world.claims("viewer")):
        hybrid(vconn, text, unit(random.Random(1)), **params)


def test_hybrid_search_never_crosses_tenants(vconn: Conn, data: Data) -> None:
    with acting(vconn, data.world.claims("other")):
        rows = hybrid(vconn, "contratos", unit(random.Random(2)), match_count=50)
    assert {r["id"] for r in rows} <= set(data.b.chunks)


# --- usage statistics ----------------------------------------------------------------------


def usage(conn: Conn, corpus: Corpus) -> dict[uuid.UUID, int]:
    rows = conn.execute(
        "select chunk_id, usage_count from public.document_usage_stats "
        "where client_id = %s and agent_id = %s",
        (corpus.tenant, corpus.agent),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def test_searching_with_an_agent_records_the_returned_chunks_once_each(
    vconn: Conn, data: Data
) -> None:
    with acting(vconn, data.world.claims("member")):
        rows = search(
            vconn, unit(random.Random(20)), match_count=4, usage_agent_id=data.a.agent,
            usage_execution_id=data.a.execution,
        )  # fmt: skip
        rows += search(vconn, unit(random.Random(20)), match_count=2, usage_agent_id=data.a.agent)
    counts = usage(vconn, data.a)
    assert counts == {r[0]: (2 if i < 2 else 1) for i, r in enumerate(rows[:4])}
    last = vconn.execute(
        "select distinct last_execution_id from public.document_usage_stats where agent_id = %s",
        (data.a.agent,),
    ).fetchall()
    assert last == [(data.a.execution,)]  # a later call without execution keeps the last one


def test_record_chunk_usage_counts_repeats_and_skips_foreign_chunks(
    vconn: Conn, data: Data
) -> None:
    mine = list(data.a.chunks)[:2]
    foreign = next(iter(data.b.chunks))
    with acting(vconn, data.world.claims("viewer")):
        recorded = vconn.execute(
            "select public.record_chunk_usage(%s, %s)",
            (data.a.agent, [mine[0], mine[0], mine[1], foreign]),
        ).fetchone()
    assert recorded == (2,)
    assert usage(vconn, data.a) == {mine[0]: 2, mine[1]: 1}


def test_recording_for_another_tenants_agent_is_not_found(vconn: Conn, data: Data) -> None:
    with pytest.raises(NotFound) as err, acting(vconn, data.world.claims("member")):
        vconn.execute(
            "select public.record_chunk_usage(%s, %s)", (data.b.agent, list(data.a.chunks)[:1])
        )
    assert err.value.sqlstate == "PT404"


def test_the_private_writer_rechecks_the_tenant_for_api_callers(vconn: Conn, data: Data) -> None:
    with (
        pytest.raises(PermissionDenied, match="own client"),
        acting(vconn, data.world.claims("member")),
    ):
        vconn.execute(
            "select private.record_chunk_usage(%s, %s, %s)",
            (data.b.tenant, data.b.agent, list(data.b.chunks)[:1]),
        )


def test_eight_concurrent_writers_lose_no_increment_and_never_deadlock(
    db_url: str, data: Data
) -> None:
    chunks = list(data.a.chunks)[:12]
    rounds = 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            # deadlock_timeout stays at its default: setting it needs a superuser (the suite runs
            # as hosted Supabase's postgres), and a deadlock still fails the test after 1 s.
            with psycopg.connect(db_url) as conn:
                barrier.wait()
                for _ in range(rounds):
                    ids = chunks[:]
                    rng.shuffle(ids)  # overlapping sets, in different orders
                    with acting(conn, data.world.claims("member")):
                        conn.execute(
                            "select public.record_chunk_usage(%s, %s)", (data.a.agent, ids[:8])
                        )
                    conn.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    with psycopg.connect(db_url) as conn:
        before = usage(conn, data.a)
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with psycopg.connect(db_url) as conn:
        after = usage(conn, data.a)
    added = sum(after.values()) - sum(before.values())
    assert added == 8 * rounds * 8


def test_most_used_documents_ranks_by_total_uses_per_client_and_agent(
    vconn: Conn, data: Data
) -> None:
    c = list(data.a.chunks)
    with acting(vconn, data.world.claims("member")):
        vconn.execute("select public.record_chunk_usage(%s, %s)", (data.a.agent, [c[3]] * 5))
        vconn.execute("select public.record_chunk_usage(%s, %s)", (data.a.agent, [c[4]] * 2))
        top = vconn.execute(
            "select document_id, usage_count from public.most_used_documents(2, %s)",
            (data.a.agent,),
        ).fetchall()
    docs = dict(
        vconn.execute(
            "select id, document_id from public.document_chunks where id = any(%s)", ([c[3], c[4]],)
        ).fetchall()
    )
    assert top[0][0] == docs[c[3]]
    assert top[0][1] >= 5
    with acting(vconn, data.world.claims("other")):
        theirs = vconn.execute("select document_id from public.most_used_documents(100)").fetchall()
    assert not {r[0] for r in theirs} & set(docs.values())


# --- every exposed function x every actor -----------------------------------------------------

# Functions of this module and how to call them (tests/test_function_catalog.py checks that every
# function in schemas public and backend appears in some module's mapping).
EXPOSED_FUNCTIONS = {
    "search_embeddings": "select count(*) from public.search_embeddings(%(q)s)",
    "hybrid_search": "select count(*) from public.hybrid_search('contrato', %(q)s)",
    "record_chunk_usage": "select public.record_chunk_usage(%(agent)s, %(chunks)s)",
    "most_used_documents": "select count(*) from public.most_used_documents()",
}
BACKEND_FUNCTIONS = {
    "search_embeddings": "select count(*) from backend.search_embeddings(%(q)s, "
    "client_id => %(c)s)",
    "hybrid_search": "select count(*) from backend.hybrid_search('contrato', %(q)s, "
    "client_id => %(c)s)",
    "record_chunk_usage": "select backend.record_chunk_usage(%(agent)s, %(chunks)s, "
    "client_id => %(c)s)",
    "most_used_documents": "select count(*) from backend.most_used_documents(client_id => %(c)s)",
}


@pytest.mark.parametrize("function", sorted(BACKEND_FUNCTIONS))
@pytest.mark.parametrize("actor", ["anon", "other", "viewer", "member", "admin", "service"])
def test_backend_functions_by_actor(vconn: Conn, data: Data, function: str, actor: str) -> None:
    """Only service_role reaches schema backend; naming tenant A it gets A's rows only."""
    params = {
        "q": Vector(unit(random.Random(30))),
        "c": data.a.tenant,
        "agent": data.a.agent,
        "chunks": list(data.a.chunks)[:3],
    }
    outcome: object
    try:
        with acting(vconn, data.world.claims(actor)):
            row = vconn.execute(BACKEND_FUNCTIONS[function], params).fetchone()
            outcome = row[0] if row else None
    except RenumDBError as exc:
        outcome = type(exc).__name__
    if actor != "service":
        assert outcome == "PermissionDenied"
    else:
        assert isinstance(outcome, int)
        assert outcome > 0 or function == "most_used_documents"


@pytest.mark.parametrize("function", sorted(EXPOSED_FUNCTIONS))
@pytest.mark.parametrize(
    "actor", ["anon", "other", "viewer", "member", "admin", "service", "custom"]
)
def test_exposed_functions_by_actor(vconn: Conn, data: Data, function: str, actor: str) -> None:
    """`custom` is A's member through a custom API role: exactly a member, never the backend."""
    params = {
        "q": Vector(unit(random.Random(30))),
        "agent": data.a.agent,
        "chunks": list(data.a.chunks)[:3],
    }
    outcome: object
    claims = claims_for(vconn, data.world, actor)
    try:
        with acting(vconn, claims):
            row = vconn.execute(EXPOSED_FUNCTIONS[function], params).fetchone()
            outcome = row[0] if row else None
    except RenumDBError as exc:
        outcome = type(exc).__name__
    column = column_of(actor)
    if column in ("anon", "service"):
        assert outcome == "PermissionDenied"  # browser functions: EXECUTE for authenticated only
    elif column == "other" and function == "record_chunk_usage":
        assert outcome == "NotFound"  # tenant A's agent does not exist in tenant B
    else:
        assert isinstance(outcome, int)
        assert outcome > 0 or function == "most_used_documents"


# Exactly which tenant's rows come back: the backend naming a client gets that client's rows,
# the same ones that client's member gets, and none of the other's.
TENANT_ROWS = {
    "search_embeddings": (
        "select id from backend.search_embeddings(%(q)s, 200, client_id => %(c)s)",
        "select id from public.search_embeddings(%(q)s::real[], 200)",
    ),
    "hybrid_search": (
        "select id from backend.hybrid_search('contrato filler report', %(q)s, 200, "
        "client_id => %(c)s)",
        "select id from public.hybrid_search('contrato filler report', %(q)s::real[], 200)",
    ),
    "most_used_documents": (
        "select document_id from backend.most_used_documents(1000, client_id => %(c)s)",
        "select document_id from public.most_used_documents(1000)",
    ),
}


@pytest.mark.parametrize("function", sorted(TENANT_ROWS))
@pytest.mark.parametrize("named", ["a", "b"])
def test_the_backend_naming_a_client_gets_exactly_that_clients_rows(
    vconn: Conn, data: Data, function: str, named: str
) -> None:
    corpus, other = (data.a, data.b) if named == "a" else (data.b, data.a)
    for c in (data.a, data.b):  # usage in both tenants, for most_used_documents
        with acting(vconn, {"role": "service_role"}):
            vconn.execute(
                "select backend.record_chunk_usage(%s, %s, client_id => %s)",
                (c.agent, list(c.chunks)[:5], c.tenant),
            )
    docs_of = {
        c.tenant: {
            r[0]
            for r in vconn.execute(
                "select id from public.documents where client_id = %s", (c.tenant,)
            )
        }
        for c in (data.a, data.b)
    }
    params = {"q": Vector(unit(random.Random(31))), "c": corpus.tenant}
    with acting(vconn, {"role": "service_role"}):
        backend = [r[0] for r in vconn.execute(TENANT_ROWS[function][0], params)]
    member_claims = claims_for(vconn, data.world, "member" if named == "a" else "other_member")
    with acting(vconn, member_claims):
        member = [r[0] for r in vconn.execute(TENANT_ROWS[function][1], params)]
    mine = docs_of[corpus.tenant] if function == "most_used_documents" else set(corpus.chunks)
    theirs = docs_of[other.tenant] if function == "most_used_documents" else set(other.chunks)
    assert backend, "the check would be vacuous"
    assert backend == member
    assert set(backend) <= mine
    assert not set(backend) & theirs
    if function == "most_used_documents":
        assert set(backend) == {
            r[0]
            for r in vconn.execute(
                "select document_id from public.document_usage_stats where client_id = %s",
                (corpus.tenant,),
            )
        }


def test_the_exact_route_returns_each_chunks_own_row_document_and_collection(
    vconn: Conn, data: Data
) -> None:
    """0029 ranks and joins in one statement: every returned row is its chunk's own (document,
    collection, knowledge base, content, metadata, index) and its similarity the exact one."""
    q = near(next(iter(data.a.chunks.values()))[0], random.Random(29))
    with acting(vconn, data.world.claims("member")):
        rows = search(vconn, q, match_count=20, min_similarity=-1)
        truth = vconn.execute(
            "select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, "
            "c.metadata, c.chunk_index, 1 - extensions.cosine_distance(c.embedding, %s) "
            "from public.document_chunks as c "
            "join public.documents as d on d.id = c.document_id "
            "join public.knowledge_collections as k on k.id = d.collection_id "
            "where c.id = any (%s)",
            (Vector(q), [r[0] for r in rows]),
        ).fetchall()
    assert [r[0] for r in rows] == exact(data.a, q, 20)
    expected = {r[0]: r for r in truth}
    for row in rows:
        assert row[:7] == expected[row[0]][:7]
        assert row[7] == pytest.approx(expected[row[0]][7], abs=1e-9)


@pytest.mark.parametrize("function", ["private.search_embeddings", "private.hybrid_search"])
def test_the_search_functions_plan_in_one_process_without_jit(vconn: Conn, function: str) -> None:
    """0032: their plans are generic, costed for an average tenant, so the planner must not
    decide parallel workers or JIT from them (measured: a 100-row tenant's exact scan with two
    workers, 6.8 ms against 0.47; the majority tenant's shared walk a parallel scan of the whole
    table, 90 ms against 8). Every statement they run is planned under these settings."""
    row = vconn.execute(
        "select proconfig from pg_catalog.pg_proc where oid = %s::regproc", (function,)
    ).fetchone()
    assert row is not None
    assert {"max_parallel_workers_per_gather=0", "jit=off"} <= set(row[0])


# Every helper a search, a hybrid search or the backend's entry points call on each request.
SEARCH_PATH_HELPERS = [
    "private.request_is_backend",
    "private.backend_client_id",
    "private.require_client_id",
    "private.current_client_id",
    "private.scoped_document_ids",
    "private.text_search_regconfig",
    "private.chunk_search_route",
    "private.text_search_matches",
]


@pytest.mark.parametrize("function", SEARCH_PATH_HELPERS)
def test_search_helpers_keep_their_plans_for_the_session(vconn: Conn, function: str) -> None:
    """0033: a SQL-language function with a SET clause is never inlined, and PostgreSQL before 18
    parses and plans its body again on every call (request_is_backend, reading the pg_roles
    view, cost a 100-row tenant's backend search 0.2 of its 0.5 ms). The helpers called on every
    search are PL/pgSQL, whose plans are kept for the session."""
    rows = vconn.execute(
        "select l.lanname, p.proconfig from pg_catalog.pg_proc as p "
        "join pg_catalog.pg_language as l on l.oid = p.prolang "
        "where p.oid = %s::regproc",
        (function,),
    ).fetchall()
    assert len(rows) == 1
    language, config = rows[0]
    assert config is not None
    assert 'search_path=""' in config
    assert language == "plpgsql"
