"""The typed retrieval API (renum_db.search.Retrieval) over pooled connections: named results,
any vector-like input, adapters present on every pooled connection, renum_db errors."""

from __future__ import annotations

import dataclasses
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from renum_db.admin import LocalUserProvisioner, TenantAdmin
from renum_db.db import Database
from renum_db.embeddings import LexicalHashingEmbeddings
from renum_db.errors import InvalidInput, PermissionDenied
from renum_db.ingest import Ingestor
from renum_db.repositories import KnowledgeBaseRepository, KnowledgeCollectionRepository
from renum_db.repositories.tenancy import AgentRepository
from renum_db.search import DocumentUsage, HybridSearchResult, Retrieval, SearchResult
from renum_db.vector import Vector

TEXTS = {
    "prazo": "O prazo do contrato de prestação de serviços vence em março de 2027.",
    "licitacao": "A licitação pública exige três orçamentos e parecer jurídico.",
    "viagens": "Relatório trimestral de despesas com viagens da diretoria.",
}


@dataclass(frozen=True)
class Tenant:
    client_id: uuid.UUID
    member: uuid.UUID
    admin: uuid.UUID
    documents: dict[str, uuid.UUID]


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=1, max_size=3) as database:
        yield database


@pytest.fixture(scope="module")
def embedder() -> LexicalHashingEmbeddings:
    return LexicalHashingEmbeddings()


@pytest.fixture(scope="module")
def tenant(db: Database, embedder: LexicalHashingEmbeddings) -> Tenant:
    admin = TenantAdmin(db, users=LocalUserProvisioner(db))
    client = admin.create_client(name="Acme")
    member = admin.create_user(client_id=client.id, email="ana@search.test", role="member")
    boss = admin.create_user(client_id=client.id, email="bia@search.test", role="admin")
    with db.as_user(member.id) as conn:
        kb = KnowledgeBaseRepository(conn).create(name="Jurídico")
        col = KnowledgeCollectionRepository(conn).create(knowledge_base_id=kb.id, name="Contratos")
    ingestor = Ingestor(db, embedder)
    claims = {"sub": str(member.id), "role": "authenticated", "aud": "authenticated"}
    docs = {
        key: ingestor.ingest_document(
            claims=claims, collection_id=col.id, name=key, text=text
        ).document_id
        for key, text in TEXTS.items()
    }
    return Tenant(client_id=client.id, member=member.id, admin=boss.id, documents=docs)


def query_vector(embedder: LexicalHashingEmbeddings, text: str) -> list[float]:
    return list(embedder.embed([text])[0])


def test_search_by_text_returns_named_frozen_results_best_first(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    with db.as_user(tenant.member) as conn:
        hits = Retrieval(conn, embedder).search("prazo do contrato", match_count=3)
    assert all(isinstance(h, SearchResult) for h in hits)
    assert hits[0].document_id == tenant.documents["prazo"]
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hits[0].similarity = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["list", "tuple", "numpy32", "numpy64", "array", "Vector"])
def test_any_vector_like_query_gives_the_same_results(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings, kind: str
) -> None:
    values = query_vector(embedder, "licitação pública")
    query = {
        "list": values,
        "tuple": tuple(values),
        "numpy32": np.asarray(values, dtype=np.float32),
        "numpy64": np.asarray(values, dtype=np.float64),
        "array": array("f", values),
        "Vector": Vector(values),
    }[kind]
    with db.as_user(tenant.member) as conn:
        retrieval = Retrieval(conn)
        expected = retrieval.search(values, match_count=3)
        assert retrieval.search(query, match_count=3) == expected  # type: ignore[arg-type]
    assert expected[0].document_id == tenant.documents["licitacao"]


def test_a_pooled_connection_sends_vectors_without_register_vector(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    values = query_vector(embedder, "viagens")
    for _ in range(3):  # several pooled connections, each configured once
        with db.as_user(tenant.member) as conn:
            row = conn.execute(
                "select document_id from public.search_embeddings(%s, 1)", (Vector(values),)
            ).fetchone()
            assert row is not None
            assert row[0] == tenant.documents["viagens"]


def test_hybrid_search_returns_every_component_score(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    with db.as_user(tenant.member) as conn:
        hits = Retrieval(conn, embedder).hybrid_search("prazo do contrato", match_count=2)
    assert all(isinstance(h, HybridSearchResult) for h in hits)
    top = hits[0]
    assert top.document_id == tenant.documents["prazo"]
    assert top.text_position == 1
    assert top.semantic_position == 1
    assert top.score > 0
    assert top.text_rank is not None
    assert top.text_rank > 0


def test_hybrid_search_accepts_an_explicit_embedding_without_an_embedder(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    values = np.asarray(query_vector(embedder, "prazo do contrato"))
    with db.as_user(tenant.member) as conn:
        hits = Retrieval(conn).hybrid_search("prazo do contrato", values, match_count=1)
    assert hits[0].document_id == tenant.documents["prazo"]


def test_recorded_usage_shows_in_most_used_documents(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    with db.as_user(tenant.admin) as conn:
        agent = AgentRepository(conn).create(name="Assistente")
    with db.as_service_role() as conn:
        retrieval = Retrieval(conn, embedder, client_id=tenant.client_id)
        hits = retrieval.search("licitação", match_count=1)
        assert retrieval.record_usage(agent_id=agent.id, chunk_ids=[h.id for h in hits]) == 1
        top = retrieval.most_used_documents(match_count=1, agent_id=agent.id)
    assert top == [dataclasses.replace(top[0], document_id=tenant.documents["licitacao"])]
    assert isinstance(top[0], DocumentUsage)
    assert top[0].usage_count == 1


def test_a_vector_of_the_wrong_length_raises_invalid_input_inside_the_block(
    db: Database, tenant: Tenant
) -> None:
    with pytest.raises(InvalidInput) as info, db.as_user(tenant.member) as conn:
        Retrieval(conn).search([0.1, 0.2, 0.3])
    assert info.value.sqlstate == "22023"  # search_embeddings: dimension mismatch


@pytest.mark.parametrize("bad", ["prazo", [[0.1, 0.2]], [], [float("nan")] * 1536])
def test_a_malformed_vector_raises_invalid_input(db: Database, tenant: Tenant, bad: object) -> None:
    with pytest.raises(InvalidInput), db.as_user(tenant.member) as conn:
        retrieval = Retrieval(conn)
        if isinstance(bad, list) and bad and isinstance(bad[0], list):
            retrieval.search(np.asarray(bad))
        else:
            retrieval.search(bad if not isinstance(bad, str) else [bad])  # type: ignore[arg-type,list-item]


def test_service_role_without_a_client_is_refused_the_users_entry_point(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    """Without client_id the call goes to the user's entry point (schema public), which the
    backend may not execute: it has no tenant of its own and must name one."""
    with pytest.raises(PermissionDenied), db.as_service_role() as conn:
        Retrieval(conn).search(query_vector(embedder, "prazo"))


def test_the_backend_naming_no_client_through_its_own_entry_point_gets_22004(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    with pytest.raises(InvalidInput) as info, db.as_service_role() as conn:
        conn.execute(
            "select * from backend.search_embeddings(%s::extensions.vector)",
            (str(query_vector(embedder, "prazo")),),
        )
    assert info.value.sqlstate == "22004"


def test_anon_cannot_search(db: Database, embedder: LexicalHashingEmbeddings) -> None:
    with pytest.raises(PermissionDenied), db.as_anon() as conn:
        Retrieval(conn).search(query_vector(embedder, "prazo"))


def test_another_tenant_finds_none_of_these_documents(
    db: Database, tenant: Tenant, embedder: LexicalHashingEmbeddings
) -> None:
    admin = TenantAdmin(db, users=LocalUserProvisioner(db))
    other = admin.create_client(name="Other")
    user = admin.create_user(client_id=other.id, email="zed@other.test", role="viewer")
    with db.as_user(user.id) as conn:
        assert Retrieval(conn, embedder).search("prazo do contrato", match_count=10) == []
