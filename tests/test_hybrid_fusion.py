"""hybrid_search's fusion, checked row by row against a reference computed here: the semantic
list is the exact cosine top-depth (Python), the text list the tenant's matching chunks ranked by
ts_rank_cd (computed by the database, as the table owner, over every match), fused by reciprocal
rank fusion in Python. Also the bounded text list of a broad text (private.text_search_matches,
migration 0020) and its tenant check, for every kind of caller."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from renum_db.errors import PermissionDenied
from renum_db.vector import Vector, register_vector
from tests.support import World, acting, claims_for, column_of

DIMS = 1536
WORD = "contrato"  # in every chunk of tenant A whose index is not a multiple of 4
FILLER = ["prazo", "cliente", "pagamento", "entrega", "serviço", "multa", "reajuste", "garantia"]
Conn = psycopg.Connection[Any]


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIMS)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


@dataclass
class Corpus:
    tenant: uuid.UUID
    vectors: dict[uuid.UUID, list[float]]
    texts: dict[uuid.UUID, str]


def _load(conn: Conn, tenant: uuid.UUID, rng: random.Random, n: int, tag: str) -> Corpus:
    def one(q: str, *p: Any) -> uuid.UUID:
        row = conn.execute(q, p).fetchone()
        assert row is not None
        return uuid.UUID(str(row[0]))

    kb = one(
        "insert into public.knowledge_bases (client_id, name, text_search_config) "
        "values (%s, %s, 'portuguese') returning id",
        tenant,
        f"fusion {tag}",
    )
    col = one(
        "insert into public.knowledge_collections (client_id, knowledge_base_id, name) "
        "values (%s, %s, 'fusion') returning id",
        tenant,
        kb,
    )
    doc = one(
        "insert into public.documents (client_id, collection_id, name) "
        "values (%s, %s, 'fusion.md') returning id",
        tenant,
        col,
    )
    vectors: dict[uuid.UUID, list[float]] = {}
    texts: dict[uuid.UUID, str] = {}
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(6 + i % 5)]
        for _ in range(0 if i % 4 == 0 else 1 + i % 3):  # 0-3 occurrences: distinct ranks
            words.insert(rng.randrange(len(words) + 1), WORD)
        text = " ".join(words) + f" {tag}{i}x"
        vec = unit(rng)
        cid = one(
            "insert into public.document_chunks (client_id, document_id, content, chunk_index, "
            "embedding) values (%s, %s, %s, %s, %s) returning id",
            tenant,
            doc,
            text,
            i,
            Vector(vec),
        )
        vectors[cid], texts[cid] = vec, text
    # The tenant's other chunks (the shared test world's) take part in every search as well.
    for cid, emb, text in conn.execute(
        "select id, embedding, content from public.document_chunks where client_id = %s",
        (tenant,),
    ).fetchall():
        texts[cid] = text
        if emb is not None:
            vectors[cid] = [float(x) for x in emb]
    return Corpus(tenant, vectors, texts)


@dataclass
class Data:
    world: World
    a: Corpus
    b: Corpus


@pytest.fixture(scope="module")
def data(db_url: str, world: World) -> Data:
    rng = random.Random(2020)
    with psycopg.connect(db_url) as conn:
        register_vector(conn)
        a = _load(conn, world.a.client_id, rng, 60, "a")
        b = _load(conn, world.b.client_id, rng, 30, "b")
        conn.commit()
    return Data(world, a, b)


@pytest.fixture
def vconn(conn: Conn) -> Conn:
    register_vector(conn)
    return conn


def text_ranks(conn: Conn, corpus: Corpus, text: str) -> dict[uuid.UUID, float]:
    """ts_rank_cd of every chunk of the corpus matching text (as the owner: no RLS, no bound)."""
    rows = conn.execute(
        "select c.id, pg_catalog.ts_rank_cd(c.fts, q) from public.document_chunks as c, "
        "pg_catalog.websearch_to_tsquery('portuguese', %s) as q "
        "where c.client_id = %s and c.fts @@ q",
        (text, corpus.tenant),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def reference(
    conn: Conn,
    corpus: Corpus,
    text: str,
    query: list[float],
    k: int,
    ftw: float,
    sw: float,
    rrf_k: int,
) -> list[tuple[uuid.UUID, int | None, int | None, float]]:
    """(id, semantic_position, text_position, score) of the expected fusion, best first."""
    depth = min(200, 2 * k)
    semantic = sorted(corpus.vectors, key=lambda c: (-cosine(corpus.vectors[c], query), str(c)))
    ranks = text_ranks(conn, corpus, text)
    lexical = sorted(ranks, key=lambda c: (-ranks[c], str(c)))
    s_pos = {c: i + 1 for i, c in enumerate(semantic[:depth])}
    t_pos = {c: i + 1 for i, c in enumerate(lexical[:depth])}
    fused = []
    for c in set(s_pos) | set(t_pos):
        score = (ftw / (rrf_k + t_pos[c]) if c in t_pos else 0.0) + (
            sw / (rrf_k + s_pos[c]) if c in s_pos else 0.0
        )
        fused.append((c, s_pos.get(c), t_pos.get(c), score))
    fused.sort(key=lambda r: (-r[3], str(r[0])))
    return fused[:k]


def hybrid(conn: Conn, text: str, query: list[float], **params: Any) -> list[dict[str, Any]]:
    names = "".join(f", {k} => %({k})s" for k in params)
    cur = conn.execute(
        f"select * from public.hybrid_search(%(t)s, %(q)s::real[]{names})",
        {"t": text, "q": query, **params},
    )
    cols = [c.name for c in cur.description or []]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def analyze(conn: Conn, analyzed: bool) -> None:
    """With statistics, a small tenant's text search reads its own rows (primary key); without,
    the planner's choice (GIN): both paths of private.text_search_matches."""
    if analyzed:
        conn.execute("analyze public.document_chunks")


@pytest.mark.parametrize("analyzed", [False, True])
@pytest.mark.parametrize(
    ("k", "ftw", "sw", "rrf_k"),
    [(5, 1.0, 1.0, 50), (10, 2.0, 0.5, 10), (3, 0.0, 1.0, 1), (20, 1.0, 0.0, 60), (7, 3.0, 1.0, 2)],
)
def test_hybrid_search_returns_exactly_the_reference_fusion(
    vconn: Conn, data: Data, analyzed: bool, k: int, ftw: float, sw: float, rrf_k: int
) -> None:
    analyze(vconn, analyzed)
    q = unit(random.Random(k * 31 + rrf_k))
    expected = reference(vconn, data.a, WORD, q, k, ftw, sw, rrf_k)
    ranks = text_ranks(vconn, data.a, WORD)
    with acting(vconn, data.world.claims("viewer")):
        rows = hybrid(
            vconn, WORD, q, match_count=k, full_text_weight=ftw, semantic_weight=sw, rrf_k=rrf_k
        )
    got = [(r["id"], r["semantic_position"], r["text_position"]) for r in rows]
    assert got == [(c, s, t) for c, s, t, _ in expected]
    for r, (_, _, _, score) in zip(rows, expected, strict=True):
        assert r["score"] == pytest.approx(score)
        if r["id"] in data.a.vectors:
            assert r["similarity"] == pytest.approx(cosine(data.a.vectors[r["id"]], q), abs=1e-5)
        else:  # a chunk without an embedding, found by its text only
            assert r["similarity"] is None
        assert r["text_rank"] == (ranks[r["id"]] if r["text_position"] is not None else None)


def test_a_narrow_text_puts_its_only_match_first_in_the_text_list(vconn: Conn, data: Data) -> None:
    target = next(c for c, t in data.a.texts.items() if t.endswith(" a17x"))
    q = unit(random.Random(5))
    with acting(vconn, data.world.claims("member")):
        rows = hybrid(vconn, "a17x", q, match_count=10, semantic_weight=0.1)
    assert rows[0]["id"] == target
    assert rows[0]["text_position"] == 1
    assert [r["id"] for r in rows if r["text_position"] is not None] == [target]


def matches(
    conn: Conn, tenant: uuid.UUID, text: str, depth: int, pool: int, semantic: list[uuid.UUID]
) -> list[tuple[uuid.UUID, float]]:
    rows = conn.execute(
        "select id, rank from private.text_search_matches(%s, "
        "pg_catalog.websearch_to_tsquery('portuguese', %s), %s, %s, %s)",
        (tenant, text, depth, pool, semantic),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def sized(conn: Conn, scope: str) -> None:
    """'small': the tenant is within renum.search_exact_max_rows (its rows are read through the
    key); 'large': the limit is set below the tenant's size, so private.text_search_matches takes
    its larger path (a key walk for a word common in the semantic sample, else the GIN index)."""
    if scope == "large":
        conn.execute("select pg_catalog.set_config('renum.search_exact_max_rows', '10', true)")


@pytest.mark.parametrize("scope", ["small", "large"])
@pytest.mark.parametrize("analyzed", [False, True])
def test_a_broad_text_ranks_a_bounded_pool_plus_every_matching_semantic_candidate(
    vconn: Conn, data: Data, analyzed: bool, scope: str
) -> None:
    analyze(vconn, analyzed)
    sized(vconn, scope)
    ranks = text_ranks(vconn, data.a, WORD)
    assert len(ranks) >= 45  # a broad text: 3 of every 4 chunks
    semantic = sorted(data.a.vectors, key=str)[:12]
    with acting(vconn, data.world.claims("viewer")):
        got = matches(vconn, data.a.tenant, WORD, 40, 5, semantic)
    ids = [c for c, _ in got]
    assert len(ids) == len(set(ids))
    assert {c for c in semantic if c in ranks} <= set(ids)  # every matching semantic candidate
    assert len(set(ids) - set(semantic)) <= 5  # and at most pool_size others
    assert all(rank == ranks[c] for c, rank in got)  # true ranks
    assert got == sorted(got, key=lambda r: (-r[1], str(r[0])))  # best first, ties by id


@pytest.mark.parametrize("sample", ["none", "matching"])
@pytest.mark.parametrize("scope", ["small", "large"])
@pytest.mark.parametrize("analyzed", [False, True])
def test_a_pool_holding_every_match_gives_the_exact_text_list(
    vconn: Conn, data: Data, analyzed: bool, scope: str, sample: str
) -> None:
    """With a pool larger than the tenant's matches the text list is exact, whichever path
    serves it (a semantic sample full of matches sends the larger path to the key walk first,
    which ends short and falls back to the GIN index)."""
    analyze(vconn, analyzed)
    sized(vconn, scope)
    ranks = text_ranks(vconn, data.a, WORD)
    exact = sorted(ranks.items(), key=lambda r: (-r[1], str(r[0])))[:20]
    semantic = sorted(ranks, key=str)[:10] if sample == "matching" else []
    with acting(vconn, data.world.claims("viewer")):
        got = matches(vconn, data.a.tenant, WORD, 20, 1000, semantic)
    assert got == exact


@pytest.mark.parametrize("scope", ["small", "large"])
def test_a_narrow_text_finds_its_only_match_on_every_path(
    vconn: Conn, data: Data, scope: str
) -> None:
    sized(vconn, scope)
    target = next(c for c, t in data.a.texts.items() if t.endswith(" a23x"))
    others = sorted((c for c in data.a.texts if c != target), key=str)[:10]
    with acting(vconn, data.world.claims("viewer")):
        got = matches(vconn, data.a.tenant, "a23x", 20, 200, others)
        absent = matches(vconn, data.a.tenant, "b3x", 20, 200, others)  # tenant B's word
    assert [c for c, _ in got] == [target]
    assert absent == []


def test_hybrid_search_with_a_small_text_pool_still_fuses_consistently(
    vconn: Conn, data: Data
) -> None:
    q = unit(random.Random(77))
    vconn.execute("select pg_catalog.set_config('renum.hybrid_text_pool', '3', true)")
    ranks = text_ranks(vconn, data.a, WORD)
    with acting(vconn, data.world.claims("viewer")):
        rows = hybrid(vconn, WORD, q, match_count=10, rrf_k=5)
    semantic = sorted(data.a.vectors, key=lambda c: (-cosine(data.a.vectors[c], q), str(c)))
    for r in rows:  # the semantic list is exact whatever the text pool
        if r["semantic_position"] is not None:
            assert r["semantic_position"] == semantic.index(r["id"]) + 1
    texted = sorted((r for r in rows if r["text_position"]), key=lambda r: r["text_position"])
    assert [r["text_rank"] for r in texted] == sorted(
        (r["text_rank"] for r in texted), reverse=True
    )
    for r in rows:
        assert r["id"] in data.a.texts
        if r["text_position"] is not None:
            assert r["text_rank"] == ranks[r["id"]]
        expected = (1 / (5 + r["text_position"]) if r["text_position"] else 0.0) + (
            1 / (5 + r["semantic_position"]) if r["semantic_position"] else 0.0
        )
        assert r["score"] == pytest.approx(expected)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


@pytest.mark.parametrize(
    "actor", ["anon", "other", "viewer", "member", "admin", "service", "custom", "nobody"]
)
def test_text_search_matches_serves_only_the_callers_own_client(
    vconn: Conn, data: Data, actor: str
) -> None:
    """Bypassing RLS, the function re-checks the tenant: a user gets their own client's chunks
    only (42501 for tenant A otherwise), the backend any client's; anon may not execute it."""
    claims = claims_for(vconn, data.world, actor)
    if column_of(actor) in ("anon", "other"):
        with pytest.raises(PermissionDenied), acting(vconn, claims):
            matches(vconn, data.a.tenant, WORD, 200, 1000, [])
        return
    with acting(vconn, claims):
        got = matches(vconn, data.a.tenant, WORD, 200, 1000, [])
    assert {c for c, _ in got} == set(text_ranks(vconn, data.a, WORD))


def test_hybrid_search_of_each_tenant_returns_only_its_own_chunks(vconn: Conn, data: Data) -> None:
    q = unit(random.Random(9))
    with acting(vconn, data.world.claims("other")):
        theirs = hybrid(vconn, WORD, q, match_count=200)
    with acting(vconn, data.world.claims("viewer")):
        ours = hybrid(vconn, WORD, q, match_count=200)
    with acting(vconn, data.world.claims("service")):
        backend = vconn.execute(
            "select id from backend.hybrid_search(%s, %s, 200, client_id => %s)",
            (WORD, Vector(q), data.b.tenant),
        ).fetchall()
    assert {r["id"] for r in theirs} >= set(data.b.vectors)
    assert {r["id"] for r in theirs} <= set(data.b.texts)
    assert {r["id"] for r in ours} <= set(data.a.texts)
    assert {r[0] for r in backend} == {r["id"] for r in theirs}


@pytest.mark.parametrize("pool", [5, 1000])
@pytest.mark.parametrize("scope", ["small", "large"])
def test_a_document_scope_ranks_only_that_documents_matches(
    vconn: Conn, data: Data, scope: str, pool: int
) -> None:
    """A document scope on every path (a small tenant's packed texts; a larger tenant's document
    key when the scope is small against the pool, else the GIN index): only the scope's
    matches, true ranks, exact when the pool holds them all."""
    sized(vconn, scope)
    target = next(c for c, t in data.a.texts.items() if t.endswith(" a17x"))
    row = vconn.execute(
        "select document_id from public.document_chunks where id = %s", (target,)
    ).fetchone()
    assert row is not None
    in_doc = {
        r[0]
        for r in vconn.execute(
            "select id from public.document_chunks where document_id = %s", (row[0],)
        ).fetchall()
    }
    ranks = {c: r for c, r in text_ranks(vconn, data.a, WORD).items() if c in in_doc}
    with acting(vconn, data.world.claims("viewer")):
        got = vconn.execute(
            "select id, rank from private.text_search_matches(%s, "
            "pg_catalog.websearch_to_tsquery('portuguese', %s), 20, %s, null, %s)",
            (data.a.tenant, WORD, pool, [row[0]]),
        ).fetchall()
    assert got
    assert all(c in ranks and r == ranks[c] for c, r in got)
    assert len(got) <= min(pool, 20)
    if pool == 1000:
        assert got == sorted(ranks.items(), key=lambda r: (-r[1], str(r[0])))[:20]


def promoted(conn: Conn, tenant: uuid.UUID) -> None:
    """The registry says the tenant has its own index (ready): its route is answered from the
    registry alone, so the session keeps no bounded count of its rows."""
    conn.execute(
        "insert into private.tenant_chunk_indexes (client_id, index_name, state) "
        "values (%s, 'document_chunks_hnsw_' || pg_catalog.replace(%s::text, '-', ''), 'ready')",
        (tenant, tenant),
    )


@pytest.mark.parametrize("sample", ["none", "without_matches"])
@pytest.mark.parametrize("scope", ["large", "promoted"])
def test_a_broad_text_of_a_larger_tenant_is_walked_in_insert_order(
    vconn: Conn, data: Data, scope: str, sample: str
) -> None:
    """A word in 3 of 4 chunks, with a semantic sample that holds none of its matches: the larger
    path reads the tenant's first rows, finds the word common and walks them (0023) in insert
    order (0027: the side table's (client_id, seq) index, so rows written together share pages),
    so the pool is the tenant's first pool_size matches as written, neither the first by id (the
    key walk of 0021-0026, a page per row) nor the GIN index's order. A promoted tenant takes the
    same path: its route keeps no count, and it was taken for neither small nor large (every
    text went to GIN)."""
    if scope == "large":
        sized(vconn, "large")
    else:
        promoted(vconn, data.a.tenant)
    ranks = text_ranks(vconn, data.a, WORD)
    written = [
        r[0]
        for r in vconn.execute(
            "select id from private.document_chunk_texts where client_id = %s order by seq",
            (data.a.tenant,),
        ).fetchall()
    ]
    first_written = [c for c in written if c in ranks][:5]
    assert sorted(first_written, key=str) != sorted(ranks, key=str)[:5]  # the orders differ here
    semantic = [] if sample == "none" else sorted(c for c in data.a.texts if c not in ranks)[:10]
    with acting(vconn, data.world.claims("viewer")):
        got = matches(vconn, data.a.tenant, WORD, 40, 5, semantic)
    assert sorted(c for c, _ in got) == sorted(first_written, key=str)
    assert all(rank == ranks[c] for c, rank in got)
    assert got == sorted(got, key=lambda r: (-r[1], str(r[0])))


def test_the_semantic_list_of_hybrid_search_ranks_exactly_as_search_embeddings(
    vconn: Conn, data: Data
) -> None:
    """ranked_only (0023) returns the same ids and similarities in the same order as the full
    call, without the chunk's other columns."""
    q = unit(random.Random(404))
    call = (
        "select * from private.search_embeddings(%s, %s::extensions.vector, 20, ranked_only => %s)"
    )
    with acting(vconn, data.world.claims("viewer")):
        full = vconn.execute(call, (data.a.tenant, Vector(q), False)).fetchall()
        ranked = vconn.execute(call, (data.a.tenant, Vector(q), True)).fetchall()
    assert len(full) == 20
    assert [(r[0], r[7]) for r in ranked] == [(r[0], r[7]) for r in full]
    assert all(r[1:7] == (None,) * 6 for r in ranked)
    assert all(r[1] is not None and r[4] is not None for r in full)
