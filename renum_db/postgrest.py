"""Retrieval over PostgREST with supabase-py, for apps holding only SUPABASE_URL, the anon key
and a user's JWT (no database connection):

    retrieval = PostgrestRetrieval.connect(url, anon_key, access_token=user_jwt,
                                           embedder=embedding_provider_from_env())
    hits = retrieval.search("prazo do contrato", match_count=5)

The methods, arguments and result types are those of renum_db.search.Retrieval; the parameters
are built by the same functions (`search_params`, `hybrid_params`, so the embedding parameter is
adapted in one place) and sent as PostgREST RPC JSON. PostgREST runs the same SQL functions as
the JWT's role with its claims, so RLS and `private.request_client_id` decide exactly as on a
direct connection. Errors: PostgREST's `{code, message, details, hint}` arrives in supabase-py's
`APIError`; `code` is the SQLSTATE (mapped by `renum_db.errors.for_sqlstate`) or a PGRSTxxx code
(JWT problems -> InvalidToken, unknown function -> ConfigurationError).

A text query is embedded by the provider directly: the tenant's embedding cache is a direct
connection feature.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar, cast
from uuid import UUID

import httpx
from postgrest.exceptions import APIError
from psycopg.types.json import Jsonb
from supabase import Client, ClientOptions

from renum_db.embeddings import EmbeddingProvider
from renum_db.errors import (
    ConfigurationError,
    ConnectionFailed,
    InvalidToken,
    RenumDBError,
    for_sqlstate,
)
from renum_db.repositories.keyset import Keyed, keyset_params
from renum_db.repositories.knowledge import Document, KnowledgeBase, KnowledgeCollection
from renum_db.search import (
    DocumentUsage,
    HybridSearchResult,
    SearchResult,
    _uuids,
    hybrid_params,
    search_params,
)
from renum_db.vector import Vector, VectorLike

__all__ = ["PostgrestKnowledge", "PostgrestRetrieval", "from_json", "to_json", "user_client"]

T = TypeVar("T")


def to_json(params: Mapping[str, Any]) -> dict[str, Any]:
    """RPC arguments as PostgREST takes them: vectors in pgvector's text form, ids as strings,
    JSON objects as themselves; None is left out (the SQL default applies, as it does for the
    explicit NULL a direct call sends)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, Vector):
            out[name] = list(value.values)  # real[]: a JSON array of numbers (migration 0015)
        elif isinstance(value, UUID):
            out[name] = str(value)
        elif isinstance(value, Jsonb):
            out[name] = value.obj
        elif isinstance(value, list):
            out[name] = [str(v) if isinstance(v, UUID) else v for v in value]
        else:
            out[name] = value
    return out


def _convert(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if kind is UUID:
        return UUID(str(value))
    if kind is datetime:
        return datetime.fromisoformat(str(value))
    if kind is float:
        return float(value)
    if kind is int:
        return int(value)
    return value


def from_json(row_type: type[T], data: Mapping[str, Any]) -> T:
    """A PostgREST JSON row as the dataclass a direct query returns (ids, timestamps typed)."""
    hints = typing.get_type_hints(row_type)
    fields = dataclasses.fields(row_type)  # type: ignore[arg-type]
    return row_type(**{f.name: _convert(hints[f.name], data.get(f.name)) for f in fields})


_PGRST_CLASSES: dict[str, type[RenumDBError]] = {
    "PGRST301": InvalidToken,  # JWT invalid
    "PGRST302": InvalidToken,  # anonymous access disabled / bearer required
    "PGRST303": InvalidToken,  # JWT claims invalid
    "PGRST202": ConfigurationError,  # function not found (schema cache)
    "PGRST203": ConfigurationError,  # ambiguous overload
}


def _error(exc: APIError) -> RenumDBError:
    code = exc.code or None
    cls = _PGRST_CLASSES.get(code or "") or for_sqlstate(code)
    message = exc.message or str(exc)
    return cls(
        message,
        sqlstate=None if code and code.startswith("PGRST") else code,
        detail=exc.details,
        hint=exc.hint,
    )


def user_client(
    url: str, anon_key: str, *, access_token: str | None = None, timeout: float = 30.0
) -> Client:
    """A supabase-py client for `url` with the anon key, acting as the user of `access_token`
    (anon without one)."""
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    options = ClientOptions(headers=headers, postgrest_client_timeout=timeout)
    return Client(url, anon_key, options=options)


class PostgrestKnowledge:
    """The knowledge tables read over PostgREST table calls, paged by keyset exactly as the
    repositories page (`after=<last row>`): the same rows and dataclasses as
    KnowledgeBaseRepository / KnowledgeCollectionRepository / DocumentRepository `list`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def connect(
        cls, url: str, anon_key: str, *, access_token: str | None = None, timeout: float = 30.0
    ) -> Self:
        return cls(user_client(url, anon_key, access_token=access_token, timeout=timeout))

    def _page(
        self,
        table: str,
        row_type: type[T],
        *,
        limit: int,
        after: Keyed | None,
        filters: Mapping[str, UUID | None],
    ) -> list[T]:
        page = keyset_params(limit, after)
        columns = ",".join(f.name for f in dataclasses.fields(row_type))  # type: ignore[arg-type]
        query = self._client.table(table).select(columns)
        for column, value in filters.items():
            if value is not None:
                query = query.eq(column, str(value))
        if page["after_created_at"] is not None:
            at = page["after_created_at"].isoformat()
            query = query.or_(
                f'created_at.gt."{at}",and(created_at.eq."{at}",id.gt.{page["after_id"]})'
            )
        query = query.order("created_at").order("id").limit(page["limit"])
        try:
            rows = query.execute().data
        except APIError as exc:
            raise _error(exc) from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"PostgREST unreachable: {type(exc).__name__}") from None
        return [from_json(row_type, cast(Mapping[str, Any], r)) for r in cast(list[Any], rows)]

    def list_knowledge_bases(
        self, *, limit: int = 100, after: Keyed | None = None
    ) -> list[KnowledgeBase]:
        return self._page("knowledge_bases", KnowledgeBase, limit=limit, after=after, filters={})

    def list_collections(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        knowledge_base_id: UUID | None = None,
    ) -> list[KnowledgeCollection]:
        filters = {"knowledge_base_id": knowledge_base_id}
        return self._page(
            "knowledge_collections", KnowledgeCollection, limit=limit, after=after, filters=filters
        )

    def list_documents(
        self, *, limit: int = 100, after: Keyed | None = None, collection_id: UUID | None = None
    ) -> list[Document]:
        filters = {"collection_id": collection_id}
        return self._page("documents", Document, limit=limit, after=after, filters=filters)


class PostgrestRetrieval:
    """renum_db.search.Retrieval over PostgREST RPC (supabase-py)."""

    def __init__(self, client: Client, embedder: EmbeddingProvider | None = None) -> None:
        self._client = client
        self._embedder = embedder

    @classmethod
    def connect(
        cls,
        url: str,
        anon_key: str,
        *,
        access_token: str | None = None,
        embedder: EmbeddingProvider | None = None,
        timeout: float = 30.0,
    ) -> Self:
        """A retrieval for `url` with the anon key, acting as the user of `access_token`
        (anon without one)."""
        return cls(user_client(url, anon_key, access_token=access_token, timeout=timeout), embedder)

    def _rpc(self, fn: str, params: Mapping[str, Any]) -> Any:
        if params.get("client_id") is not None:
            # The backend's entry points (schema backend) are not exposed through PostgREST:
            # over this transport the tenant is always the signed-in user's own.
            raise ConfigurationError(
                "client_id is for the backend (a direct connection as service_role); over "
                "PostgREST the tenant is the signed-in user's own"
            )
        try:
            return self._client.rpc(fn, to_json(params)).execute().data
        except APIError as exc:
            raise _error(exc) from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"PostgREST unreachable: {type(exc).__name__}") from None

    def _vector(self, query: VectorLike | str) -> VectorLike:
        if not isinstance(query, str):
            return query
        if self._embedder is None:
            raise ConfigurationError("pass an embedder to PostgrestRetrieval to search by text")
        return self._embedder.embed([query])[0]

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
        params = search_params(
            self._vector(query_embedding),
            match_count=match_count,
            collection_ids=collection_ids,
            knowledge_base_ids=knowledge_base_ids,
            metadata_filter=metadata_filter,
            min_similarity=min_similarity,
            client_id=client_id,
            usage_agent_id=usage_agent_id,
            usage_execution_id=usage_execution_id,
        )
        return [from_json(SearchResult, r) for r in self._rpc("search_embeddings", params)]

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
        params = hybrid_params(
            query_text,
            query_embedding if query_embedding is not None else self._vector(query_text),
            match_count=match_count,
            collection_ids=collection_ids,
            knowledge_base_ids=knowledge_base_ids,
            metadata_filter=metadata_filter,
            full_text_weight=full_text_weight,
            semantic_weight=semantic_weight,
            rrf_k=rrf_k,
            client_id=client_id,
            usage_agent_id=usage_agent_id,
            usage_execution_id=usage_execution_id,
        )
        return [from_json(HybridSearchResult, r) for r in self._rpc("hybrid_search", params)]

    def record_usage(
        self,
        *,
        agent_id: UUID,
        chunk_ids: Sequence[UUID],
        execution_id: UUID | None = None,
        client_id: UUID | None = None,
    ) -> int:
        params = {
            "agent_id": agent_id,
            "chunk_ids": _uuids(chunk_ids, "chunk_ids"),
            "execution_id": execution_id,
            "client_id": client_id,
        }
        result = self._rpc("record_chunk_usage", params)
        return int(result) if result is not None else 0

    def most_used_documents(
        self,
        *,
        match_count: int = 10,
        agent_id: UUID | None = None,
        client_id: UUID | None = None,
    ) -> list[DocumentUsage]:
        params = {"match_count": match_count, "agent_id": agent_id, "client_id": client_id}
        rows = self._rpc("most_used_documents", params)
        return [from_json(DocumentUsage, r) for r in rows]
