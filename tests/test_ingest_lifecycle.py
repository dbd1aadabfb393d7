"""Ingestion over time: progress and timings, the embedding cache, re-ingests that keep the usage
statistics of unchanged chunks, and documents left in 'processing' by a killed ingestion."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from renum_db.admin import LocalUserProvisioner, TenantAdmin
from renum_db.db import Database, user_claims
from renum_db.embeddings import CachedEmbeddings, LexicalHashingEmbeddings
from renum_db.ingest import Ingestor, IngestProgress
from renum_db.repositories import KnowledgeBaseRepository, KnowledgeCollectionRepository
from renum_db.repositories.tenancy import AgentRepository
from renum_db.search import Retrieval

# One chunk per paragraph at chunk_size 400.
PARAGRAPHS = [
    f"Cláusula {i}: o prazo de pagamento é de {i + 10} dias úteis. " * 5 for i in range(6)
]


class CountingEmbedder(LexicalHashingEmbeddings):
    def __init__(self) -> None:
        super().__init__(model_name=f"counting-{uuid.uuid4().hex[:8]}")
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.texts.extend(texts)
        return super().embed(texts)


@dataclass(frozen=True)
class Setup:
    client_id: uuid.UUID
    member: uuid.UUID
    admin: uuid.UUID
    collection_id: uuid.UUID


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=3) as database:
        yield database


@pytest.fixture(scope="module")
def setup(db: Database) -> Setup:
    admin = TenantAdmin(db, users=LocalUserProvisioner(db))
    client = admin.create_client(name="Lifecycle")
    member = admin.create_user(client_id=client.id, email="m@life.test", role="member")
    boss = admin.create_user(client_id=client.id, email="a@life.test", role="admin")
    with db.as_user(member.id) as conn:
        kb = KnowledgeBaseRepository(conn).create(name="kb")
        col = KnowledgeCollectionRepository(conn).create(knowledge_base_id=kb.id, name="c")
    return Setup(client.id, member.id, boss.id, col.id)


def ingest(db: Database, s: Setup, embedder: LexicalHashingEmbeddings, text: str, **kw: Any) -> Any:
    return Ingestor(db, embedder, embed_batch_size=2).ingest_document(
        claims=user_claims(s.member),
        collection_id=s.collection_id,
        name=kw.pop("name", "doc"),
        text=text,
        chunk_size=kw.pop("chunk_size", 400),
        overlap=kw.pop("overlap", 0),
        **kw,
    )


def test_progress_reports_chunking_each_embedded_batch_and_the_write(
    db: Database, setup: Setup
) -> None:
    events: list[IngestProgress] = []
    result = ingest(db, setup, CountingEmbedder(), "\n\n".join(PARAGRAPHS), progress=events.append)
    total = result.chunks
    assert events[0] == IngestProgress(result.document_id, "chunked", 0, total)
    embedding = [e.done for e in events if e.stage == "embedding"]
    assert embedding == sorted(embedding)
    assert embedding[-1] == total
    assert len(embedding) == -(-total // 2)  # one event per batch of 2
    assert events[-2] == IngestProgress(result.document_id, "writing", total, total)
    assert events[-1] == IngestProgress(result.document_id, "written", total, total)


def test_each_stage_is_timed_in_the_result_and_an_info_log(
    db: Database, setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="renum_db.ingest")
    result = ingest(db, setup, CountingEmbedder(), PARAGRAPHS[0])
    assert set(result.timings) == {"chunk", "embed", "write"}
    record = next(r for r in caplog.records if getattr(r, "operation", "") == "ingest_document")
    assert record.levelno == logging.INFO
    assert record.document_id == str(result.document_id)  # type: ignore[attr-defined]
    for stage in ("chunk_ms", "embed_ms", "write_ms"):
        assert getattr(record, stage) >= 0


def test_reingesting_the_same_text_asks_the_provider_nothing(db: Database, setup: Setup) -> None:
    embedder = CountingEmbedder()
    first = ingest(db, setup, embedder, "\n\n".join(PARAGRAPHS))
    asked = len(embedder.texts)
    before = CachedEmbeddings.statistics()["cache_hits"]
    ingest(db, setup, embedder, "\n\n".join(PARAGRAPHS), document_id=first.document_id)
    assert len(embedder.texts) == asked
    assert CachedEmbeddings.statistics()["cache_hits"] - before == first.chunks


def test_a_reingest_keeps_the_usage_statistics_of_unchanged_chunks(
    db: Database, setup: Setup, db_url: str
) -> None:
    embedder = CountingEmbedder()
    first = ingest(db, setup, embedder, "\n\n".join(PARAGRAPHS))
    with db.as_user(setup.admin) as conn:
        agent = AgentRepository(conn).create(name=f"agent {uuid.uuid4().hex[:6]}")
    with psycopg.connect(db_url) as su:
        chunks: dict[str, uuid.UUID] = dict(
            su.execute(
                "select content, id from public.document_chunks where document_id = %s",
                (first.document_id,),
            ).fetchall()
        )
    with db.as_service_role() as conn:
        Retrieval(conn, client_id=setup.client_id).record_usage(
            agent_id=agent.id, chunk_ids=list(chunks.values())
        )
    # A new first paragraph shifts every chunk by one position; the last one is removed.
    revised = "\n\n".join(["Um parágrafo novo sobre multas contratuais. " * 5, *PARAGRAPHS[:-1]])
    second = ingest(db, setup, embedder, revised, document_id=first.document_id)
    with psycopg.connect(db_url) as su:
        after = su.execute(
            "select c.content, c.id, c.chunk_index, s.usage_count"
            "  from public.document_chunks as c"
            "  left join public.document_usage_stats as s on s.chunk_id = c.id"
            " where c.document_id = %s order by c.chunk_index",
            (first.document_id,),
        ).fetchall()
    assert len(after) == second.chunks
    assert [r[2] for r in after] == list(range(second.chunks))
    kept = [r for r in after if r[0] in chunks]
    assert len(kept) == len(PARAGRAPHS) - 1
    assert all(r[1] == chunks[r[0]] and r[3] == 1 for r in kept)  # same row, stats kept
    assert [r[3] for r in after if r[0] not in chunks] == [None]  # the new paragraph


def stuck_document(db_url: str, s: Setup, minutes: int) -> uuid.UUID:
    with psycopg.connect(db_url) as su:
        su.execute("alter table public.documents disable trigger documents_set_updated_at")
        row = su.execute(
            "insert into public.documents (client_id, collection_id, name, status, updated_at)"
            " values (%s, %s, %s, 'processing', now() - %s) returning id",
            (
                s.client_id,
                s.collection_id,
                f"stuck {uuid.uuid4().hex[:6]}",
                timedelta(minutes=minutes),
            ),
        ).fetchone()
        su.execute("alter table public.documents enable trigger documents_set_updated_at")
    assert row is not None
    return uuid.UUID(str(row[0]))


def test_a_document_left_processing_past_the_timeout_is_found_failed_and_retried(
    db: Database, setup: Setup, db_url: str
) -> None:
    old = stuck_document(db_url, setup, minutes=90)
    recent = stuck_document(db_url, setup, minutes=1)
    ingestor = Ingestor(db, CountingEmbedder())
    claims = user_claims(setup.member)
    assert [d.id for d in ingestor.stuck_documents(claims=claims)] == [old]
    assert ingestor.fail_stuck(claims=claims) == [old]
    with db.as_user(setup.member) as conn:
        failed = conn.execute(
            "select status, error from public.documents where id = %s", (old,)
        ).fetchone()
        running = conn.execute("select status from public.documents where id = %s", (recent,))
        assert running.fetchone() == ("processing",)
    assert failed is not None
    assert failed[0] == "failed"
    assert "interrupted" in failed[1]
    retried = ingestor.ingest_document(
        claims=claims, collection_id=setup.collection_id, document_id=old, name="x", text="texto"
    )
    assert retried.status == "ready"
    assert ingestor.stuck_documents(claims=claims) == []


def test_stuck_documents_of_another_tenant_are_invisible(
    db: Database, setup: Setup, db_url: str
) -> None:
    stuck_document(db_url, setup, minutes=90)
    admin = TenantAdmin(db, users=LocalUserProvisioner(db))
    other = admin.create_client(name="Other")
    user = admin.create_user(client_id=other.id, email="o@other.test", role="member")
    ingestor = Ingestor(db, CountingEmbedder())
    assert ingestor.stuck_documents(claims=user_claims(user.id)) == []
    assert ingestor.fail_stuck(claims=user_claims(user.id)) == []
    ingestor.fail_stuck(claims=user_claims(setup.member))
