"""Ingestion into the live, indexed table: the Ingestor (as service_role with client_id, one
document of 100 paragraphs at a time, chunk_size 200 so one paragraph is one chunk) against raw
binary COPY of the same rows in one transaction, each into a fresh tenant. Both write through the
same shared HNSW and GIN indexes; the embeddings are precomputed (no model call is timed)."""

from __future__ import annotations

import random
import statistics
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import psycopg

from bench.data import DIMS, WORDS, Space, TenantPlan, tenant_vectors
from bench.load import COPY_HEADER, VECTOR_HEAD, BenchTenant, seed_tenant
from renum_db.db import Database
from renum_db.ingest import Ingestor

__all__ = ["IngestResult", "measure_ingest"]

PARAGRAPHS_PER_DOCUMENT: Final = 100


@dataclass(frozen=True, slots=True)
class IngestResult:
    rows: int
    ingestor_seconds: tuple[float, ...]  # one per round, in round order
    copy_seconds: tuple[float, ...]
    checkpointed: bool  # a CHECKPOINT ran before every timed run

    @property
    def ingestor_rows_per_s(self) -> float:
        return self.rows / statistics.median(self.ingestor_seconds)

    @property
    def copy_rows_per_s(self) -> float:
        return self.rows / statistics.median(self.copy_seconds)

    @property
    def ratio(self) -> float:
        """Ingestor throughput over COPY's, from each method's median round."""
        return self.ingestor_rows_per_s / self.copy_rows_per_s if self.copy_rows_per_s else 0.0

    @property
    def round_ratios(self) -> list[float]:
        """COPY time over Ingestor time within each round (the two runs side by side)."""
        return [c / i for c, i in zip(self.copy_seconds, self.ingestor_seconds, strict=True)]


class _Precomputed:
    """An EmbeddingProvider answering from a text -> vector table (each paragraph is unique)."""

    model = "bench-precomputed"
    dimensions = DIMS

    def __init__(self, table: dict[str, tuple[float, ...]]) -> None:
        self._table = table

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        return [self._table[t] for t in texts]


def _paragraph(r: random.Random, n: int, salt: str) -> str:
    """A unique 125..~145-character paragraph (two never fit in one 200-character chunk)."""
    tail = f" p{salt}n{n}."
    words: list[str] = []
    while len(" ".join(words)) + len(tail) < 125:
        words.append(r.choice(WORDS))
    return " ".join(words) + tail


def _fresh(url: str, number: int, rows: int) -> BenchTenant:
    with psycopg.connect(url) as conn:
        t = seed_tenant(conn, TenantPlan(number, "ingest", rows, (0,)))
        conn.commit()
    return t


def _copy(url: str, t: BenchTenant, paragraphs: list[str], vectors: list[bytes]) -> None:
    with psycopg.connect(url) as conn, conn.transaction():
        docs = []
        for d in range(0, len(paragraphs), PARAGRAPHS_PER_DOCUMENT):
            row = conn.execute(
                "insert into public.documents (client_id, collection_id, name) "
                "values (%s, %s, %s) returning id",
                (t.client_id, t.collections["main"], f"copy {d}"),
            ).fetchone()
            assert row is not None
            docs.append(row[0].bytes)
        with conn.cursor().copy(
            "copy public.document_chunks (client_id, document_id, chunk_index, content, "
            "embedding) from stdin (format binary)"
        ) as copy:
            copy.write(COPY_HEADER)
            for i, (text, vec) in enumerate(zip(paragraphs, vectors, strict=True)):
                body = text.encode()
                copy.write(
                    struct.pack(">hi", 5, 16)
                    + t.client_id.bytes
                    + struct.pack(">i", 16)
                    + docs[i // PARAGRAPHS_PER_DOCUMENT]
                    + struct.pack(">ii", 4, i % PARAGRAPHS_PER_DOCUMENT)
                    + struct.pack(">i", len(body))
                    + body
                    + struct.pack(">i", len(vec))
                    + vec
                )
            copy.write(struct.pack(">h", -1))


def _ingestor(url: str, t: BenchTenant, paragraphs: list[str], provider: _Precomputed) -> None:
    with Database(url, min_size=1, max_size=1) as db:
        ingestor = Ingestor(db, provider)
        for d in range(0, len(paragraphs), PARAGRAPHS_PER_DOCUMENT):
            part = paragraphs[d : d + PARAGRAPHS_PER_DOCUMENT]
            result = ingestor.ingest_document(
                claims={"role": "service_role"},
                client_id=t.client_id,
                collection_id=t.collections["main"],
                name=f"ingestor {d}",
                text="\n\n".join(part),
                chunk_size=200,
                overlap=0,
            )
            if result.chunks != len(part):
                raise RuntimeError(f"Ingestor wrote {result.chunks} chunks for {len(part)}")


def _count(url: str, t: BenchTenant) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) from public.document_chunks where client_id = %s", (t.client_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def _checkpoint(admin_url: str | None) -> bool:
    """Flush dirty buffers before a timed run, so that neither method pays for a checkpoint of
    the earlier load's pages (the spread between full runs was 0.80x-0.99x on the same code).
    Needs a superuser or pg_checkpoint: the bench's admin URL; False when it cannot."""
    if admin_url is None:
        return False
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("checkpoint")
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def measure_ingest(
    url: str, space: Space, rows: int, rounds: int = 4, admin_url: str | None = None
) -> IngestResult:
    """`rounds` rounds, methods alternating (which goes first alternates too), each run into a
    fresh tenant with vectors and paragraphs of its own: a vector already in the HNSW graph is
    added to the existing element (pgvector's duplicate shortcut) at a fraction of the cost of
    a new one, so re-inserting one run's vectors in the next would time that shortcut instead
    of ingestion. A CHECKPOINT (through admin_url) precedes every timed run. Each method's
    median round counts; every round's times are kept for the report."""
    timings: dict[str, list[float]] = {"copy": [], "ingestor": []}
    checkpointed = admin_url is not None
    number = 900
    plan = TenantPlan(900, "ingest", rows, (0, 1))
    for round_ in range(rounds):
        for method in ("copy", "ingestor") if round_ % 2 == 0 else ("ingestor", "copy"):
            number += 1
            r = random.Random(number)
            salt = uuid.uuid4().hex[:6]  # paragraphs differ from any earlier run in the database
            paragraphs = [_paragraph(r, n, salt) for n in range(rows)]
            vectors = tenant_vectors(space, plan, number * rows, rows)
            raw = [VECTOR_HEAD + v.astype(">f4").tobytes() for v in vectors]
            provider = _Precomputed(
                {p: tuple(v.tolist()) for p, v in zip(paragraphs, vectors, strict=True)}
            )
            t = _fresh(url, number, rows)
            checkpointed = _checkpoint(admin_url) and checkpointed
            started = time.perf_counter()  # the vectors are ready: no conversion is timed
            if method == "copy":
                _copy(url, t, paragraphs, raw)
            else:
                _ingestor(url, t, paragraphs, provider)
            timings[method].append(time.perf_counter() - started)
            written = _count(url, t)
            if written != rows:
                raise RuntimeError(f"{method} wrote {written} rows, expected {rows}")
    return IngestResult(rows, tuple(timings["ingestor"]), tuple(timings["copy"]), checkpointed)
