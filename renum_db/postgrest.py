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

The user-facing workflow calls run the same way (`PostgrestAgentExecutions`,
`PostgrestInvestigations`): the RPCs of schema public (start/cancel an execution, create/cancel an
investigation) and table reads of the executions, investigations and monthly usage views, with
the method names, arguments, keyset pages and dataclasses of AgentExecutionRepository and
InvestigationRepository. The worker's calls (schema backend, service_role) need a direct
connection: asking for them here raises ConfigurationError before any request.

A text query is embedded by the provider directly: the tenant's embedding cache is a direct
connection feature.
"""

from __future__ import annotations

import builtins
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import date, datetime
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
    InvalidInput,
    InvalidToken,
    RenumDBError,
    for_sqlstate,
)
from renum_db.repositories.agents import (
    AgentExecution,
    AgentMonthlyTokenUsage,
    ClientMonthlyTokenUsage,
)
from renum_db.repositories.investigations import Investigation
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

__all__ = [
    "PostgrestAgentExecutions",
    "PostgrestInvestigations",
    "PostgrestKnowledge",
    "PostgrestRetrieval",
    "from_json",
    "to_json",
    "user_client",
]

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
    if kind is date:
        return date.fromisoformat(str(value))
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


_BACKEND_ONLY = (
    "client_id is for the backend (a direct connection as service_role); over "
    "PostgREST the tenant is the signed-in user's own"
)


def _execute(request: Any) -> Any:
    """Run a supabase-py request builder; its errors as renum_db.errors (the one mapping)."""
    try:
        return request.execute().data
    except APIError as exc:
        raise _error(exc) from None
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"PostgREST unreachable: {type(exc).__name__}") from None


def _rpc(client: Client, fn: str, params: Mapping[str, Any]) -> Any:
    """POST /rpc/<fn> (schema public). Naming a client is refused: the backend's entry points
    (schema backend) are not exposed through PostgREST."""
    if params.get("client_id") is not None:
        raise ConfigurationError(_BACKEND_ONLY)
    return _execute(client.rpc(fn, to_json(params)))


def _filter_value(value: UUID | str | date) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _select(
    client: Client,
    table: str,
    row_type: type[T],
    *,
    filters: Mapping[str, UUID | str | date | None],
    order: Sequence[str] = ("created_at", "id"),
    limit: int | None = None,
    after: Mapping[str, Any] | None = None,
) -> list[T]:
    """GET /<table>: the dataclass's columns, `eq` filters (None = no filter), ordered, and with
    `after` ({after_created_at, after_id}) the keyset condition of the repositories' pages."""
    columns = ",".join(f.name for f in dataclasses.fields(row_type))  # type: ignore[arg-type]
    query = client.table(table).select(columns)
    for column, value in filters.items():
        if value is not None:
            query = query.eq(column, _filter_value(value))
    if after is not None and after["after_created_at"] is not None:
        at = after["after_created_at"].isoformat()
        query = query.or_(
            f'created_at.gt."{at}",and(created_at.eq."{at}",id.gt.{after["after_id"]})'
        )
    for column in order:
        query = query.order(column)
    if limit is not None:
        query = query.limit(limit)
    rows = _execute(query)
    return [from_json(row_type, cast(Mapping[str, Any], r)) for r in cast(list[Any], rows)]


def _page(
    client: Client,
    table: str,
    row_type: type[T],
    *,
    limit: int,
    after: Keyed | None,
    filters: Mapping[str, UUID | str | date | None],
) -> list[T]:
    """One keyset page, validated and ordered exactly as the repositories' `list`."""
    page = keyset_params(limit, after)
    return _select(client, table, row_type, filters=filters, limit=page["limit"], after=page)


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
        return _page(self._client, table, row_type, limit=limit, after=after, filters=filters)

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
        return _rpc(self._client, fn, params)

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


class PostgrestAgentExecutions:
    """AgentExecutionRepository's user-facing methods over PostgREST: `start` and `cancel`
    (public.start_agent_execution / cancel_agent_execution), `get` and keyset `list` of
    public.agent_executions, and the monthly token usage views. Same arguments, same rows, same
    errors (42501 -> PermissionDenied, PT404 -> NotFound, 55000 -> IllegalTransition, ...)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def connect(
        cls, url: str, anon_key: str, *, access_token: str | None = None, timeout: float = 30.0
    ) -> Self:
        return cls(user_client(url, anon_key, access_token=access_token, timeout=timeout))

    def get(self, id: UUID) -> AgentExecution | None:
        """The execution, or None if it does not exist or is not visible to the caller."""
        rows = _select(
            self._client, "agent_executions", AgentExecution, filters={"id": id}, limit=1
        )
        return rows[0] if rows else None

    def list(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        agent_id: UUID | None = None,
        status: str | None = None,
        client_id: UUID | None = None,
    ) -> builtins.list[AgentExecution]:
        """Visible executions, oldest first, one keyset page (as AgentExecutionRepository)."""
        filters = {"agent_id": agent_id, "status": status, "client_id": client_id}
        return _page(
            self._client,
            "agent_executions",
            AgentExecution,
            limit=limit,
            after=after,
            filters=filters,
        )

    def start(
        self, *, agent_id: UUID, input: Any = None, client_id: UUID | None = None
    ) -> AgentExecution:
        """public.start_agent_execution: a pending execution run by the signed-in member."""
        params = {
            "agent_id": agent_id,
            "input": {} if input is None else input,
            "client_id": client_id,
        }
        return from_json(AgentExecution, _rpc(self._client, "start_agent_execution", params))

    def cancel(
        self,
        *,
        execution_id: UUID,
        tokens_used: int | None = None,
        client_id: UUID | None = None,
    ) -> AgentExecution:
        """public.cancel_agent_execution (its starter or an admin)."""
        if tokens_used is not None and client_id is None:
            raise InvalidInput("only the backend reports tokens_used: pass client_id")
        params = {"execution_id": execution_id, "client_id": client_id}
        return from_json(AgentExecution, _rpc(self._client, "cancel_agent_execution", params))

    def agent_monthly_token_usage(
        self,
        *,
        client_id: UUID | None = None,
        agent_id: UUID | None = None,
        month: date | None = None,
    ) -> builtins.list[AgentMonthlyTokenUsage]:
        """Rows of public.agent_monthly_token_usage visible to the caller, filtered."""
        return _select(
            self._client,
            "agent_monthly_token_usage",
            AgentMonthlyTokenUsage,
            filters={"client_id": client_id, "agent_id": agent_id, "month": month},
            order=("month", "client_id", "agent_id"),
        )

    def client_monthly_token_usage(
        self, *, client_id: UUID | None = None, month: date | None = None
    ) -> builtins.list[ClientMonthlyTokenUsage]:
        """Rows of public.client_monthly_token_usage visible to the caller, filtered."""
        return _select(
            self._client,
            "client_monthly_token_usage",
            ClientMonthlyTokenUsage,
            filters={"client_id": client_id, "month": month},
            order=("month", "client_id"),
        )


class PostgrestInvestigations:
    """InvestigationRepository's owner methods over PostgREST: `create` and `cancel`
    (public.create_investigation / cancel_investigation), `get` and keyset `list` of
    public.investigations. Same arguments, rows and errors (RNI01-RNI05 ->
    InvestigationWorkflowError subclasses, PT404 -> NotFound, 42501 -> PermissionDenied)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def connect(
        cls, url: str, anon_key: str, *, access_token: str | None = None, timeout: float = 30.0
    ) -> Self:
        return cls(user_client(url, anon_key, access_token=access_token, timeout=timeout))

    def get(self, id: UUID) -> Investigation | None:
        """The investigation, or None if it does not exist or is not the caller's."""
        rows = _select(self._client, "investigations", Investigation, filters={"id": id}, limit=1)
        return rows[0] if rows else None

    def list(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        status: str | None = None,
        session_id: str | None = None,
        client_id: UUID | None = None,
    ) -> builtins.list[Investigation]:
        """The caller's investigations, oldest first, one keyset page."""
        filters = {"status": status, "session_id": session_id, "client_id": client_id}
        return _page(
            self._client, "investigations", Investigation, limit=limit, after=after, filters=filters
        )

    def create(
        self,
        *,
        query: str,
        data_source: str,
        filters: Mapping[str, Any] | None = None,
        anomaly_types: Sequence[Any] | None = None,
        session_id: str | None = None,
    ) -> Investigation:
        """public.create_investigation: a pending investigation owned by the signed-in user."""
        params = {
            "query": query,
            "data_source": data_source,
            "filters": dict(filters or {}),
            "anomaly_types": list(anomaly_types or []),
            "session_id": session_id,
        }
        return from_json(Investigation, _rpc(self._client, "create_investigation", params))

    def cancel(self, id: UUID, *, backend: bool = False) -> Investigation:
        """public.cancel_investigation (the owner): pending | processing -> cancelled."""
        if backend:
            raise ConfigurationError(
                "backend.cancel_investigation is for the backend (a direct connection as "
                "service_role); it is not exposed through PostgREST"
            )
        params = {"investigation_id": id}
        return from_json(Investigation, _rpc(self._client, "cancel_investigation", params))
