"""Retrieval as typed Python: one method per SQL function, rows as frozen dataclasses.

    with db.as_user(user_id) as conn:
        hits = Retrieval(conn, embedder).search("prazo do contrato", match_count=5)
        for hit in hits:
            print(hit.similarity, hit.content)

`Retrieval` wraps a connection from `Database.as_user(...)`, `as_service_role()` or `act_as(...)`
(the block owns the transaction; RLS and `private.request_client_id` choose the tenant). A query
embedding may be a `Vector`, a list or tuple of floats, an `array('f')` or a numpy array; with an
`embedder`, a string is embedded first (through `public.embedding_cache`).

The SQL text of every call lives in the constants below, and the embedding parameter is adapted
in exactly one function (`embedding_param`), so a change of the SQL signature (say
`query_embedding real[]`) is a change here only. Both the sync `Retrieval` and the async
`AsyncRetrieval` (renum_db.aio) use these constants and row types.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, LiteralString
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from renum_db.embeddings import CachedEmbeddings, EmbeddingProvider
from renum_db.errors import ConfigurationError, InvalidInput, wrap_errors
from renum_db.vector import Vector, VectorLike, as_vector, ensure_vector_adapters

__all__ = [
    "HYBRID_SEARCH_SQL",
    "MOST_USED_DOCUMENTS_SQL",
    "RECORD_USAGE_SQL",
    "SEARCH_SQL",
    "DocumentUsage",
    "HybridSearchResult",
    "Retrieval",
    "SearchResult",
    "embedding_param",
    "hybrid_params",
    "search_params",
    "statement",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A row of public.search_embeddings: a chunk and its cosine similarity to the query."""

    id: UUID
    document_id: UUID
    collection_id: UUID
    knowledge_base_id: UUID
    content: str
    metadata: dict[str, Any]
    chunk_index: int
    similarity: float


@dataclass(frozen=True, slots=True)
class HybridSearchResult:
    """A row of public.hybrid_search: every component score of the reciprocal rank fusion."""

    id: UUID
    document_id: UUID
    collection_id: UUID
    knowledge_base_id: UUID
    content: str
    metadata: dict[str, Any]
    chunk_index: int
    similarity: float | None
    text_rank: float | None
    semantic_position: int | None
    text_position: int | None
    score: float


@dataclass(frozen=True, slots=True)
class DocumentUsage:
    """A row of public.most_used_documents."""

    document_id: UUID
    name: str
    collection_id: UUID
    usage_count: int
    chunks_used: int
    agents: int
    first_used_at: datetime
    last_used_at: datetime


# Each operation has two entry points (migration 0015): the user's in schema public (the tenant is
# the caller's own; the embedding is a real[], what a frontend holds) and the backend's in schema
# backend (service_role, naming the client it acts for). `statement` picks one per call.
SEARCH_SQL: Final[tuple[LiteralString, LiteralString]] = (
    """
    select id, document_id, collection_id, knowledge_base_id, content, metadata, chunk_index,
           similarity
      from public.search_embeddings(
             query_embedding => %(query_embedding)s::real[],
             match_count => %(match_count)s,
             collection_ids => %(collection_ids)s,
             knowledge_base_ids => %(knowledge_base_ids)s,
             metadata_filter => %(metadata_filter)s,
             min_similarity => %(min_similarity)s,
             usage_agent_id => %(usage_agent_id)s,
             usage_execution_id => %(usage_execution_id)s)
    """,
    """
    select id, document_id, collection_id, knowledge_base_id, content, metadata, chunk_index,
           similarity
      from backend.search_embeddings(
             query_embedding => %(query_embedding)s,
             match_count => %(match_count)s,
             collection_ids => %(collection_ids)s,
             knowledge_base_ids => %(knowledge_base_ids)s,
             metadata_filter => %(metadata_filter)s,
             min_similarity => %(min_similarity)s,
             client_id => %(client_id)s,
             usage_agent_id => %(usage_agent_id)s,
             usage_execution_id => %(usage_execution_id)s)
    """,
)

HYBRID_SEARCH_SQL: Final[tuple[LiteralString, LiteralString]] = (
    """
    select id, document_id, collection_id, knowledge_base_id, content, metadata, chunk_index,
           similarity, text_rank, semantic_position, text_position, score
      from public.hybrid_search(
             query_text => %(query_text)s,
             query_embedding => %(query_embedding)s::real[],
             match_count => %(match_count)s,
             collection_ids => %(collection_ids)s,
             knowledge_base_ids => %(knowledge_base_ids)s,
             metadata_filter => %(metadata_filter)s,
             full_text_weight => %(full_text_weight)s,
             semantic_weight => %(semantic_weight)s,
             rrf_k => %(rrf_k)s,
             usage_agent_id => %(usage_agent_id)s,
             usage_execution_id => %(usage_execution_id)s)
    """,
    """
    select id, document_id, collection_id, knowledge_base_id, content, metadata, chunk_index,
           similarity, text_rank, semantic_position, text_position, score
      from backend.hybrid_search(
             query_text => %(query_text)s,
             query_embedding => %(query_embedding)s,
             match_count => %(match_count)s,
             collection_ids => %(collection_ids)s,
             knowledge_base_ids => %(knowledge_base_ids)s,
             metadata_filter => %(metadata_filter)s,
             full_text_weight => %(full_text_weight)s,
             semantic_weight => %(semantic_weight)s,
             rrf_k => %(rrf_k)s,
             client_id => %(client_id)s,
             usage_agent_id => %(usage_agent_id)s,
             usage_execution_id => %(usage_execution_id)s)
    """,
)

RECORD_USAGE_SQL: Final[tuple[LiteralString, LiteralString]] = (
    """
    select public.record_chunk_usage(
             agent_id => %(agent_id)s,
             chunk_ids => %(chunk_ids)s,
             execution_id => %(execution_id)s)
    """,
    """
    select backend.record_chunk_usage(
             agent_id => %(agent_id)s,
             chunk_ids => %(chunk_ids)s,
             execution_id => %(execution_id)s,
             client_id => %(client_id)s)
    """,
)

MOST_USED_DOCUMENTS_SQL: Final[tuple[LiteralString, LiteralString]] = (
    """
    select document_id, name, collection_id, usage_count, chunks_used, agents, first_used_at,
           last_used_at
      from public.most_used_documents(
             match_count => %(match_count)s,
             agent_id => %(agent_id)s)
    """,
    """
    select document_id, name, collection_id, usage_count, chunks_used, agents, first_used_at,
           last_used_at
      from backend.most_used_documents(
             match_count => %(match_count)s,
             agent_id => %(agent_id)s,
             client_id => %(client_id)s)
    """,
)


def statement(
    entry_points: tuple[LiteralString, LiteralString], params: Mapping[str, Any]
) -> tuple[LiteralString, dict[str, Any]]:
    """The statement to run and its parameters: the backend's entry point when the call names a
    client (service_role only: anyone else gets PermissionDenied), else the user's own."""
    if params.get("client_id") is None:
        return entry_points[0], {k: v for k, v in params.items() if k != "client_id"}
    return entry_points[1], dict(params)


def embedding_param(value: VectorLike) -> Vector:
    """The one place a query embedding is adapted for the SQL functions' `query_embedding`
    parameter (today `extensions.vector`, sent by the adapters every pooled connection has)."""
    return as_vector(value)


def _uuids(values: Sequence[UUID] | None, name: str) -> list[UUID] | None:
    if values is None:
        return None
    if isinstance(values, str | bytes | UUID):
        raise InvalidInput(f"{name} must be a list of ids")
    return [v if isinstance(v, UUID) else UUID(str(v)) for v in values]


def _filter(value: Mapping[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(dict(value))


def search_params(
    query_embedding: VectorLike,
    *,
    match_count: int,
    collection_ids: Sequence[UUID] | None,
    knowledge_base_ids: Sequence[UUID] | None,
    metadata_filter: Mapping[str, Any] | None,
    min_similarity: float | None,
    client_id: UUID | None,
    usage_agent_id: UUID | None,
    usage_execution_id: UUID | None,
) -> dict[str, Any]:
    """The parameters of SEARCH_SQL (shared by the sync and async APIs)."""
    return {
        "query_embedding": embedding_param(query_embedding),
        "match_count": match_count,
        "collection_ids": _uuids(collection_ids, "collection_ids"),
        "knowledge_base_ids": _uuids(knowledge_base_ids, "knowledge_base_ids"),
        "metadata_filter": _filter(metadata_filter),
        "min_similarity": min_similarity,
        "client_id": client_id,
        "usage_agent_id": usage_agent_id,
        "usage_execution_id": usage_execution_id,
    }


def hybrid_params(
    query_text: str,
    query_embedding: VectorLike,
    *,
    match_count: int,
    collection_ids: Sequence[UUID] | None,
    knowledge_base_ids: Sequence[UUID] | None,
    metadata_filter: Mapping[str, Any] | None,
    full_text_weight: float,
    semantic_weight: float,
    rrf_k: int,
    client_id: UUID | None,
    usage_agent_id: UUID | None,
    usage_execution_id: UUID | None,
) -> dict[str, Any]:
    """The parameters of HYBRID_SEARCH_SQL (shared by the sync and async APIs)."""
    return {
        "query_text": query_text,
        "query_embedding": embedding_param(query_embedding),
        "match_count": match_count,
        "collection_ids": _uuids(collection_ids, "collection_ids"),
        "knowledge_base_ids": _uuids(knowledge_base_ids, "knowledge_base_ids"),
        "metadata_filter": _filter(metadata_filter),
        "full_text_weight": full_text_weight,
        "semantic_weight": semantic_weight,
        "rrf_k": rrf_k,
        "client_id": client_id,
        "usage_agent_id": usage_agent_id,
        "usage_execution_id": usage_execution_id,
    }


def _log(operation: str, started: float, rows: int) -> None:
    log.info(
        "%s returned %d rows",
        operation,
        rows,
        extra={
            "operation": operation,
            "rows": rows,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


class Retrieval:
    """The retrieval functions on one connection (see the module docstring)."""

    def __init__(
        self,
        conn: Connection[Any],
        embedder: EmbeddingProvider | None = None,
        *,
        client_id: UUID | None = None,
    ) -> None:
        self._conn = conn
        self._embedder = embedder
        self._client_id = client_id
        self._cached: CachedEmbeddings | None = None
        with wrap_errors():
            ensure_vector_adapters(conn)

    def embed_query(self, text: str, *, client_id: UUID | None = None) -> tuple[float, ...]:
        """The query's embedding, through the tenant's embedding cache (the backend names the
        tenant with `client_id`, here or in the constructor)."""
        if self._embedder is None:
            raise ConfigurationError("pass an embedder to Retrieval to search by text")
        tenant = client_id if client_id is not None else self._client_id
        if self._cached is None or (tenant is not None and self._cached.client_id != tenant):
            self._cached = CachedEmbeddings(self._embedder, self._conn, client_id=tenant)
        return self._cached.embed([text])[0]

    def _vector(self, query: VectorLike | str, client_id: UUID | None) -> VectorLike:
        return self.embed_query(query, client_id=client_id) if isinstance(query, str) else query

    def search(
        self,
        query_embedding: VectorLike | str,
        *,
        match_count: int = 5,
        collection_ids: Sequence[UUID] | None = None,
        knowledge_base_ids: Sequence[UUID] | None = None,
        metadata_filter: Mapping[str, Any] | None = None,
        min_similarity: float | None = None,
        client_id: UUID | None = None,
        usage_agent_id: UUID | None = None,
        usage_execution_id: UUID | None = None,
    ) -> list[SearchResult]:
        """public.search_embeddings: the most similar chunks of the caller's tenant."""
        started = time.perf_counter()
        params = search_params(
            self._vector(query_embedding, client_id),
            match_count=match_count,
            collection_ids=collection_ids,
            knowledge_base_ids=knowledge_base_ids,
            metadata_filter=metadata_filter,
            min_similarity=min_similarity,
            client_id=client_id if client_id is not None else self._client_id,
            usage_agent_id=usage_agent_id,
            usage_execution_id=usage_execution_id,
        )
        with wrap_errors(), self._conn.cursor(row_factory=class_row(SearchResult)) as cur:
            rows = cur.execute(*statement(SEARCH_SQL, params)).fetchall()
        _log("search_embeddings", started, len(rows))
        return rows

    def hybrid_search(
        self,
        query_text: str,
        query_embedding: VectorLike | None = None,
        *,
        match_count: int = 5,
        collection_ids: Sequence[UUID] | None = None,
        knowledge_base_ids: Sequence[UUID] | None = None,
        metadata_filter: Mapping[str, Any] | None = None,
        full_text_weight: float = 1.0,
        semantic_weight: float = 1.0,
        rrf_k: int = 50,
        client_id: UUID | None = None,
        usage_agent_id: UUID | None = None,
        usage_execution_id: UUID | None = None,
    ) -> list[HybridSearchResult]:
        """public.hybrid_search: full text and semantic ranks fused (the query's embedding is
        computed by the embedder when not given)."""
        started = time.perf_counter()
        vector = (
            query_embedding
            if query_embedding is not None
            else self.embed_query(query_text, client_id=client_id)
        )
        params = hybrid_params(
            query_text,
            vector,
            match_count=match_count,
            collection_ids=collection_ids,
            knowledge_base_ids=knowledge_base_ids,
            metadata_filter=metadata_filter,
            full_text_weight=full_text_weight,
            semantic_weight=semantic_weight,
            rrf_k=rrf_k,
            client_id=client_id if client_id is not None else self._client_id,
            usage_agent_id=usage_agent_id,
            usage_execution_id=usage_execution_id,
        )
        with wrap_errors(), self._conn.cursor(row_factory=class_row(HybridSearchResult)) as cur:
            rows = cur.execute(*statement(HYBRID_SEARCH_SQL, params)).fetchall()
        _log("hybrid_search", started, len(rows))
        return rows

    def record_usage(
        self,
        *,
        agent_id: UUID,
        chunk_ids: Sequence[UUID],
        execution_id: UUID | None = None,
        client_id: UUID | None = None,
    ) -> int:
        """public.record_chunk_usage: count one use of each chunk by the agent; returns how many
        chunks were recorded."""
        params = {
            "agent_id": agent_id,
            "chunk_ids": _uuids(chunk_ids, "chunk_ids"),
            "execution_id": execution_id,
            "client_id": client_id if client_id is not None else self._client_id,
        }
        with wrap_errors():
            row = self._conn.execute(*statement(RECORD_USAGE_SQL, params)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def most_used_documents(
        self,
        *,
        match_count: int = 10,
        agent_id: UUID | None = None,
        client_id: UUID | None = None,
    ) -> list[DocumentUsage]:
        """public.most_used_documents: the tenant's documents by recorded usage."""
        params = {
            "match_count": match_count,
            "agent_id": agent_id,
            "client_id": client_id if client_id is not None else self._client_id,
        }
        with wrap_errors(), self._conn.cursor(row_factory=class_row(DocumentUsage)) as cur:
            return cur.execute(*statement(MOST_USED_DOCUMENTS_SQL, params)).fetchall()
