"""The same API over asyncio: psycopg's async pool, async repositories, async retrieval, and an
async OpenAI provider, for FastAPI-style applications.

    db = await AsyncDatabase.from_settings()
    async with db.as_user(user_id) as conn:
        kb = await AsyncKnowledgeBaseRepository(conn).create(name="Contratos")
        hits = await AsyncRetrieval(conn, embedder).search("prazo do contrato")
    await db.close()

Nothing here has its own SQL: `act_as` sets the same identity statements (renum_db.db), the
repositories run the plans of the sync repositories (renum_db.repositories.plan: same methods,
same validation, same statements), retrieval uses renum_db.search's statements, parameter
builders and row types, the embedding cache the statements of renum_db.embeddings, and
`AsyncOpenAIEmbeddings` the request building and error mapping of `OpenAIEmbeddings`.
Errors are renum_db.errors, inside a block too.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, Self, TypeVar, cast
from uuid import UUID

import openai
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, class_row
from psycopg_pool import AsyncConnectionPool

from renum_db.config import Settings, load_settings
from renum_db.db import (
    API_ROLES,
    AUTHENTICATOR_MAY_BECOME_SQL,
    CURRENT_IDENTITY_SQL,
    RESET_STATEMENTS,
    SET_IDENTITY_SQL,
    PoolStats,
    checked_conninfo,
    request_identity,
    unknown_role_message,
    user_claims,
)
from renum_db.embeddings import (
    _INSERT_CACHED,
    _RESOLVE_CLIENT,
    _SELECT_CACHED,
    CachedEmbeddings,
    Embedding,
    EmbeddingProvider,
    OpenAIEmbeddings,
    _sha256,
    cache_model_key,
)
from renum_db.errors import (
    ConfigurationError,
    ConnectionFailed,
    DatabaseError,
    NotFound,
    wrap_errors,
)
from renum_db.repositories.agents import AgentExecutionRepository
from renum_db.repositories.investigations import InvestigationRepository
from renum_db.repositories.knowledge import (
    DocumentRepository,
    KnowledgeBaseRepository,
    KnowledgeCollectionRepository,
)
from renum_db.repositories.plan import PLANNER, Plan
from renum_db.repositories.tenancy import (
    AgentRepository,
    ClientRepository,
    CredentialMetadataRepository,
    UserRepository,
)
from renum_db.search import (
    HYBRID_SEARCH_SQL,
    MOST_USED_DOCUMENTS_SQL,
    RECORD_USAGE_SQL,
    SEARCH_SQL,
    DocumentUsage,
    HybridSearchResult,
    SearchResult,
    _uuids,
    hybrid_params,
    search_params,
    statement,
)
from renum_db.vector import Vector, VectorLike, ensure_vector_adapters_async

__all__ = [
    "AsyncAgentExecutionRepository",
    "AsyncAgentRepository",
    "AsyncClientRepository",
    "AsyncCredentialMetadataRepository",
    "AsyncDatabase",
    "AsyncDocumentRepository",
    "AsyncEmbeddingProvider",
    "AsyncInvestigationRepository",
    "AsyncKnowledgeBaseRepository",
    "AsyncKnowledgeCollectionRepository",
    "AsyncOpenAIEmbeddings",
    "AsyncRetrieval",
    "AsyncUserRepository",
    "act_as_async",
]

log = logging.getLogger(__name__)

AConn = AsyncConnection[Any]


# --- connections ------------------------------------------------------------------------------


def _aborted(conn: AConn) -> bool:
    return not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR


@asynccontextmanager
async def act_as_async(conn: AConn, claims: Mapping[str, Any] | None) -> AsyncIterator[AConn]:
    """`renum_db.db.act_as` for an AsyncConnection: one transaction (or savepoint) run as
    PostgREST runs a request carrying `claims` (None means anon)."""
    role, payload = request_identity(claims)
    with wrap_errors():
        async with conn.transaction():
            if role not in API_ROLES:
                cur = await conn.execute(AUTHENTICATOR_MAY_BECOME_SQL, (role,))
                allowed = await cur.fetchone()
                if not (allowed and allowed[0]):
                    raise ConfigurationError(unknown_role_message(role))
            cur = await conn.execute(CURRENT_IDENTITY_SQL)
            previous = await cur.fetchone()
            assert previous is not None
            await conn.execute(SET_IDENTITY_SQL, (role, payload))
            yield conn
            if _aborted(conn):
                raise DatabaseError(
                    "the transaction was aborted by an earlier error inside this block;"
                    " nothing was saved",
                    sqlstate="25P02",
                )
            status = conn.info.transaction_status
            if not conn.closed and status == psycopg.pq.TransactionStatus.INTRANS:
                await conn.execute(SET_IDENTITY_SQL, previous)


async def _configure(conn: AConn) -> None:
    """Once per new pooled connection: the pgvector adapters (when the extension exists)."""
    try:
        await ensure_vector_adapters_async(conn)
    except ConfigurationError:
        pass
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.rollback()


async def _reset(conn: AConn) -> None:
    """The pool's reset callback: the same session reset as renum_db.db.reset_connection."""
    autocommit = conn.autocommit
    await conn.set_autocommit(True)
    try:
        for statement in RESET_STATEMENTS:
            await conn.execute(statement, prepare=False)
    finally:
        await conn.set_autocommit(autocommit)


class AsyncDatabase:
    """`renum_db.db.Database` over psycopg's AsyncConnectionPool. Create it with
    `await AsyncDatabase.connect(url)` or `await AsyncDatabase.from_settings()`; it fails fast
    the same way (ConfigurationError / ConnectionFailed naming the URL's variable)."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[TupleRow]], url: str, source: str):
        self._pool = pool
        self.url = url
        self.source = source

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        source: str = "the database URL",
    ) -> Self:
        conninfo = checked_conninfo(url, source=source)
        started = time.monotonic()
        try:
            probe = await AsyncConnection.connect(conninfo)
        except psycopg.Error as exc:
            cause = str(exc).strip() or type(exc).__name__
            raise ConnectionFailed(
                f"cannot connect to the database given by {source}: {cause}"
            ) from None
        await probe.close()
        pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": False},
            configure=_configure,
            reset=_reset,
            open=False,
            name="renum_db_async",
        )
        with wrap_errors():
            await pool.open(wait=min_size > 0, timeout=10)
        log.info(
            "async database pool open",
            extra={
                "source": source,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return cls(pool, url, source)

    @classmethod
    async def from_settings(cls, settings: Settings | None = None) -> Self:
        """DATABASE_URL / SUPABASE_DB_URL, or the embedded server (started on demand)."""
        settings = settings or load_settings()
        url = settings.database_url
        source = settings.database_url_source or "DATABASE_URL"
        if url is None:
            from renum_db.embedded import server_for

            url = server_for(settings.data_dir, settings.pg_version).url()
            source = f"the embedded PostgreSQL {settings.pg_version}"
        return await cls.connect(
            url, min_size=settings.pool_min, max_size=settings.pool_max, source=source
        )

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def stats(self) -> PoolStats:
        raw = self._pool.get_stats()
        size, available = raw.get("pool_size", 0), raw.get("pool_available", 0)
        return PoolStats(
            size=size,
            available=available,
            in_use=size - available,
            waiting=raw.get("requests_waiting", 0),
            min_size=raw.get("pool_min", self._pool.min_size),
            max_size=raw.get("pool_max", self._pool.max_size),
            requests=raw.get("requests_num", 0),
            connections_opened=raw.get("connections_num", 0),
            connection_errors=raw.get("connections_errors", 0),
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AConn]:
        """A pooled connection as the connecting role; commits on success."""
        with wrap_errors():
            async with self._pool.connection() as conn:
                yield conn
                if _aborted(conn):
                    raise DatabaseError(
                        "the transaction was aborted by an earlier error inside this block;"
                        " nothing was saved",
                        sqlstate="25P02",
                    )

    @asynccontextmanager
    async def as_claims(self, claims: Mapping[str, Any] | None) -> AsyncIterator[AConn]:
        async with self.connection() as conn, act_as_async(conn, claims):
            yield conn

    @asynccontextmanager
    async def as_user(
        self, user_id: UUID | str, *, email: str | None = None
    ) -> AsyncIterator[AConn]:
        async with self.as_claims(user_claims(user_id, email=email)) as conn:
            yield conn

    @asynccontextmanager
    async def as_service_role(self) -> AsyncIterator[AConn]:
        async with self.as_claims({"role": "service_role"}) as conn:
            yield conn

    @asynccontextmanager
    async def as_anon(self) -> AsyncIterator[AConn]:
        async with self.as_claims(None) as conn:
            yield conn


# --- repositories -----------------------------------------------------------------------------

P = ParamSpec("P")
T = TypeVar("T")


async def _run(conn: AConn, plan: Plan) -> Any:
    with wrap_errors():
        async with conn.cursor(row_factory=class_row(plan.row_type)) as cur:
            await cur.execute(plan.query, plan.params)
            if plan.kind == "all":
                return await cur.fetchall()
            if plan.kind == "affected":
                return cur.rowcount > 0
            row = await cur.fetchone()
    if plan.kind == "updated" and row is None:
        raise NotFound(plan.not_found)
    if plan.kind == "required" and row is None:
        raise DatabaseError(plan.not_found)
    return row


def _lift(
    method: Callable[Concatenate[Any, P], T],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """The async twin of a sync repository method: same arguments, same checks, same plan."""

    async def run(self: _AsyncRepository, /, *args: P.args, **kwargs: P.kwargs) -> T:
        plan = method(self._planned, *args, **kwargs)
        return cast(T, await _run(self._conn, cast(Plan, plan)))

    run.__name__ = method.__name__
    run.__doc__ = method.__doc__
    return run


class _AsyncRepository:
    _sync: Callable[[Any], Any]

    def __init__(self, conn: AConn) -> None:
        self._conn = conn
        self._planned = self._sync(PLANNER)


class AsyncKnowledgeBaseRepository(_AsyncRepository):
    """KnowledgeBaseRepository on an AsyncConnection."""

    _sync = KnowledgeBaseRepository
    get = _lift(KnowledgeBaseRepository.get)
    get_by_name = _lift(KnowledgeBaseRepository.get_by_name)
    list = _lift(KnowledgeBaseRepository.list)
    create = _lift(KnowledgeBaseRepository.create)
    update = _lift(KnowledgeBaseRepository.update)
    delete = _lift(KnowledgeBaseRepository.delete)


class AsyncKnowledgeCollectionRepository(_AsyncRepository):
    """KnowledgeCollectionRepository on an AsyncConnection."""

    _sync = KnowledgeCollectionRepository
    get = _lift(KnowledgeCollectionRepository.get)
    get_by_name = _lift(KnowledgeCollectionRepository.get_by_name)
    list = _lift(KnowledgeCollectionRepository.list)
    create = _lift(KnowledgeCollectionRepository.create)
    update = _lift(KnowledgeCollectionRepository.update)
    delete = _lift(KnowledgeCollectionRepository.delete)


class AsyncDocumentRepository(_AsyncRepository):
    """DocumentRepository on an AsyncConnection."""

    _sync = DocumentRepository
    get = _lift(DocumentRepository.get)
    get_by_name = _lift(DocumentRepository.get_by_name)
    list = _lift(DocumentRepository.list)
    create = _lift(DocumentRepository.create)
    update = _lift(DocumentRepository.update)
    delete = _lift(DocumentRepository.delete)


class AsyncClientRepository(_AsyncRepository):
    """ClientRepository on an AsyncConnection."""

    _sync = ClientRepository
    get = _lift(ClientRepository.get)
    list = _lift(ClientRepository.list)
    create = _lift(ClientRepository.create)
    update = _lift(ClientRepository.update)
    set_status = _lift(ClientRepository.set_status)
    suspend = _lift(ClientRepository.suspend)
    reactivate = _lift(ClientRepository.reactivate)
    delete = _lift(ClientRepository.delete)


class AsyncUserRepository(_AsyncRepository):
    """UserRepository on an AsyncConnection."""

    _sync = UserRepository
    get = _lift(UserRepository.get)
    get_by_email = _lift(UserRepository.get_by_email)
    list = _lift(UserRepository.list)
    set_role = _lift(UserRepository.set_role)
    delete = _lift(UserRepository.delete)


class AsyncAgentRepository(_AsyncRepository):
    """AgentRepository on an AsyncConnection."""

    _sync = AgentRepository
    get = _lift(AgentRepository.get)
    list = _lift(AgentRepository.list)
    create = _lift(AgentRepository.create)
    update = _lift(AgentRepository.update)
    delete = _lift(AgentRepository.delete)


class AsyncCredentialMetadataRepository(_AsyncRepository):
    """CredentialMetadataRepository on an AsyncConnection."""

    _sync = CredentialMetadataRepository
    get = _lift(CredentialMetadataRepository.get)
    list = _lift(CredentialMetadataRepository.list)
    delete = _lift(CredentialMetadataRepository.delete)


class AsyncAgentExecutionRepository(_AsyncRepository):
    """AgentExecutionRepository on an AsyncConnection: the workflow RPCs (members start and
    cancel; the backend, with `client_id`, also reports progress, completes and fails) and the
    monthly token usage views."""

    _sync = AgentExecutionRepository
    get = _lift(AgentExecutionRepository.get)
    list = _lift(AgentExecutionRepository.list)
    start = _lift(AgentExecutionRepository.start)
    report_progress = _lift(AgentExecutionRepository.report_progress)
    complete = _lift(AgentExecutionRepository.complete)
    fail = _lift(AgentExecutionRepository.fail)
    cancel = _lift(AgentExecutionRepository.cancel)
    agent_monthly_token_usage = _lift(AgentExecutionRepository.agent_monthly_token_usage)
    client_monthly_token_usage = _lift(AgentExecutionRepository.client_monthly_token_usage)


class AsyncInvestigationRepository(_AsyncRepository):
    """InvestigationRepository on an AsyncConnection: owners create and cancel; the worker
    (service_role) starts, reports progress, completes, fails and cancels with `backend=True`."""

    _sync = InvestigationRepository
    get = _lift(InvestigationRepository.get)
    list = _lift(InvestigationRepository.list)
    create = _lift(InvestigationRepository.create)
    start = _lift(InvestigationRepository.start)
    report_progress = _lift(InvestigationRepository.report_progress)
    complete = _lift(InvestigationRepository.complete)
    fail = _lift(InvestigationRepository.fail)
    cancel = _lift(InvestigationRepository.cancel)


# --- embeddings -------------------------------------------------------------------------------


class AsyncEmbeddingProvider(Protocol):
    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[Embedding]: ...


class AsyncOpenAIEmbeddings:
    """OpenAIEmbeddings over `openai.AsyncOpenAI`: the same arguments, batching, checks, SDK
    retries and error mapping (it delegates all but the awaited request to an
    OpenAIEmbeddings)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str = "text-embedding-3-small",
        dimensions: int = 1536,
        base_url: str | None = None,
        batch_size: int = 256,
        max_retries: int = 5,
        timeout: float = 60.0,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self._sync = OpenAIEmbeddings(
            api_key if client is None else str(client.api_key),
            model=model,
            dimensions=dimensions,
            base_url=base_url if client is None else str(client.base_url),
            batch_size=batch_size,
            max_retries=max_retries if client is None else client.max_retries,
            timeout=timeout,
        )
        sync_client = self._sync._client
        self._client = client or openai.AsyncOpenAI(
            api_key=sync_client.api_key,
            base_url=sync_client.base_url,
            max_retries=sync_client.max_retries,
            timeout=sync_client.timeout,
        )
        self.model = self._sync.model
        self.dimensions = self._sync.dimensions

    def __repr__(self) -> str:
        return repr(self._sync).replace("OpenAIEmbeddings", "AsyncOpenAIEmbeddings", 1)

    async def embed(self, texts: Sequence[str]) -> list[Embedding]:
        items = self._sync._checked(texts)
        out: list[Embedding] = []
        for start in range(0, len(items), self._sync.batch_size):
            batch = items[start : start + self._sync.batch_size]
            try:
                response = await self._client.embeddings.create(**self._sync._request(batch))
            except openai.OpenAIError as exc:
                raise self._sync._error(exc) from None
            out.extend(self._sync._vectors(response, len(batch)))
        return out


async def _embed_with(
    provider: EmbeddingProvider | AsyncEmbeddingProvider, texts: list[str]
) -> list[Embedding]:
    result = provider.embed(texts)
    if inspect.isawaitable(result):
        return list(await result)
    return list(result)


# --- retrieval --------------------------------------------------------------------------------


class AsyncRetrieval:
    """renum_db.search.Retrieval on an AsyncConnection (the same statements and row types). A
    text query is embedded by `embedder` (sync or async provider) through the tenant's
    embedding cache."""

    def __init__(
        self,
        conn: AConn,
        embedder: EmbeddingProvider | AsyncEmbeddingProvider | None = None,
        *,
        client_id: UUID | None = None,
    ) -> None:
        self._conn = conn
        self._embedder = embedder
        self._client_id = client_id
        self._cache_client: UUID | None = None
        self._cache_writes = False

    async def embed_query(self, text: str, *, client_id: UUID | None = None) -> Embedding:
        """The query's embedding, through public.embedding_cache (statements of
        renum_db.embeddings)."""
        if self._embedder is None:
            raise ConfigurationError("pass an embedder to AsyncRetrieval to search by text")
        model = cache_model_key(self._embedder)  # type: ignore[arg-type]
        digest = _sha256(text, 0)
        with wrap_errors():
            await ensure_vector_adapters_async(self._conn)
            tenant = client_id if client_id is not None else self._client_id
            if self._cache_client is None or (tenant is not None and tenant != self._cache_client):
                cur = await self._conn.execute(_RESOLVE_CLIENT, (tenant,))
                row = await cur.fetchone()
                assert row is not None
                self._cache_client, self._cache_writes = row[0], bool(row[1])
            cur = await self._conn.execute(
                _SELECT_CACHED, (self._cache_client, model, [digest]), binary=True
            )
            found = await cur.fetchone()
        if found is not None and len(found[1]) == self._embedder.dimensions:
            CachedEmbeddings._count(1, 0)
            return tuple(found[1])
        CachedEmbeddings._count(0, 1)
        (vector,) = await _embed_with(self._embedder, [text])
        if self._cache_writes:  # only the backend writes the cache (see CachedEmbeddings)
            with wrap_errors():
                await self._conn.execute(
                    _INSERT_CACHED, (self._cache_client, model, [digest], [Vector(vector)])
                )
        return tuple(vector)

    async def _vector(self, query: VectorLike | str, client_id: UUID | None) -> VectorLike:
        if isinstance(query, str):
            return await self.embed_query(query, client_id=client_id)
        return query

    async def _rows(self, row_type: type[T], query: str, params: Mapping[str, Any]) -> list[T]:
        with wrap_errors():
            await ensure_vector_adapters_async(self._conn)
            async with self._conn.cursor(row_factory=class_row(row_type)) as cur:
                await cur.execute(query, params)
                return await cur.fetchall()

    async def search(
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
            await self._vector(query_embedding, client_id),
            match_count=match_count,
            collection_ids=collection_ids,
            knowledge_base_ids=knowledge_base_ids,
            metadata_filter=metadata_filter,
            min_similarity=min_similarity,
            client_id=client_id if client_id is not None else self._client_id,
            usage_agent_id=usage_agent_id,
            usage_execution_id=usage_execution_id,
        )
        return await self._rows(SearchResult, *statement(SEARCH_SQL, params))

    async def hybrid_search(
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
        vector = (
            query_embedding if query_embedding is not None else await self.embed_query(query_text)
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
        return await self._rows(HybridSearchResult, *statement(HYBRID_SEARCH_SQL, params))

    async def record_usage(
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
            "client_id": client_id if client_id is not None else self._client_id,
        }
        with wrap_errors():
            cur = await self._conn.execute(*statement(RECORD_USAGE_SQL, params))
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    async def most_used_documents(
        self,
        *,
        match_count: int = 10,
        agent_id: UUID | None = None,
        client_id: UUID | None = None,
    ) -> list[DocumentUsage]:
        params = {
            "match_count": match_count,
            "agent_id": agent_id,
            "client_id": client_id if client_id is not None else self._client_id,
        }
        return await self._rows(DocumentUsage, *statement(MOST_USED_DOCUMENTS_SQL, params))
