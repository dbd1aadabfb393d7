"""The async API (renum_db.aio) gives what the sync one gives: the same requests as PostgREST,
the same repository rows and errors, the same search results, the same fail-fast opening, and
the OpenAI provider's behaviour over openai.AsyncOpenAI."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest

from renum_db.admin import LocalUserProvisioner, TenantAdmin
from renum_db.aio import (
    AsyncAgentRepository,
    AsyncClientRepository,
    AsyncDatabase,
    AsyncKnowledgeBaseRepository,
    AsyncKnowledgeCollectionRepository,
    AsyncOpenAIEmbeddings,
    AsyncRetrieval,
    AsyncUserRepository,
)
from renum_db.db import Database, user_claims
from renum_db.embeddings import EmbeddingServiceUnavailable, LexicalHashingEmbeddings
from renum_db.errors import (
    ConfigurationError,
    ConnectionFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from renum_db.ingest import Ingestor
from renum_db.repositories import KnowledgeBaseRepository
from renum_db.search import Retrieval, SearchResult
from tests.support import World
from tests.test_embeddings import DIMS, SECRET, Sleeps, Stub, sleeps, stub, stub_vector

__all__ = ["sleeps", "stub"]  # fixtures shared with test_embeddings

T = TypeVar("T")


def arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=2) as database:
        yield database


async def adb(db_url: str) -> AsyncDatabase:
    return await AsyncDatabase.connect(db_url, min_size=0, max_size=2)


def test_as_user_runs_as_that_user_exactly_as_the_sync_api(db_url: str, world: World) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with await adb(db_url) as database, database.as_user(world.a.users["member"]) as c:
            cur = await c.execute("select current_user::text, auth.uid()")
            row = await cur.fetchone()
            assert row is not None
            return tuple(row)

    assert arun(scenario()) == ("authenticated", world.a.users["member"])


def test_a_query_error_inside_an_async_block_is_a_renum_db_error(db_url: str, world: World) -> None:
    async def scenario() -> None:
        async with await adb(db_url) as database, database.as_user(world.a.users["member"]) as c:
            await c.execute("select 'not a uuid'::uuid")

    with pytest.raises(InvalidInput) as info:
        arun(scenario())
    assert info.value.sqlstate == "22P02"


def test_async_repositories_return_the_rows_the_sync_ones_return(
    db: Database, db_url: str, world: World
) -> None:
    async def scenario() -> list[Any]:
        async with await adb(db_url) as database, database.as_user(world.a.users["viewer"]) as c:
            return await AsyncKnowledgeBaseRepository(c).list()

    with db.as_user(world.a.users["viewer"]) as conn:
        expected = KnowledgeBaseRepository(conn).list()
    assert arun(scenario()) == expected


def test_async_repositories_write_page_and_refuse_like_the_sync_ones(
    db_url: str, world: World
) -> None:
    async def scenario() -> None:
        async with await adb(db_url) as database:
            async with database.as_user(world.a.users["admin"]) as c:
                agents = AsyncAgentRepository(c)
                made = [await agents.create(name=f"async {uuid.uuid4().hex[:8]}") for _ in range(3)]
                first = await agents.list(limit=1)
                rest = await agents.list(limit=1000, after=first[-1])
                assert {a.id for a in made} <= {a.id for a in first + rest}
                updated = await agents.update(made[0].id, status="inactive")
                assert updated.status == "inactive"
                assert await agents.delete(made[1].id) is True
                assert await agents.get(made[1].id) is None
            with pytest.raises(NotFound):
                async with database.as_user(world.a.users["admin"]) as c:
                    await AsyncAgentRepository(c).update(uuid.uuid4(), name="x")
            with pytest.raises(PermissionDenied):
                async with database.as_user(world.a.users["member"]) as c:
                    await AsyncAgentRepository(c).create(name="not allowed")
            with pytest.raises(InvalidInput):
                async with database.as_user(world.a.users["member"]) as c:
                    await AsyncAgentRepository(c).list(limit=0)

    arun(scenario())


def test_async_tenant_administration_through_the_repositories(db_url: str) -> None:
    async def scenario() -> None:
        async with await adb(db_url) as database:
            async with database.as_service_role() as c:
                client = await AsyncClientRepository(c).create(name="Async Acme")
                assert (await AsyncClientRepository(c).suspend(client.id)).status == "suspended"
            async with database.as_service_role() as c:
                users = await AsyncUserRepository(c).list(client_id=client.id)
                assert users == []

    arun(scenario())


def test_async_search_returns_what_the_sync_search_returns(db: Database, db_url: str) -> None:
    admin = TenantAdmin(db, users=LocalUserProvisioner(db))
    client = admin.create_client(name="Async search")
    user = admin.create_user(client_id=client.id, email="async@search.test", role="member")
    embedder = LexicalHashingEmbeddings()
    with db.as_user(user.id) as conn:
        kb = KnowledgeBaseRepository(conn).create(name="kb")
    col_id = arun(_collection(db_url, user.id, kb.id))
    ingestor = Ingestor(db, embedder)
    for text in ("O prazo do contrato é de um ano.", "Despesas com viagens.", "Licitação."):
        ingestor.ingest_document(
            claims=user_claims(user.id), collection_id=col_id, name=text[:10], text=text
        )
    with db.as_user(user.id) as conn:
        expected = Retrieval(conn, embedder).search("prazo do contrato", match_count=3)
        expected_hybrid = Retrieval(conn, embedder).hybrid_search("prazo do contrato")

    async def scenario() -> tuple[list[SearchResult], list[Any], list[SearchResult]]:
        async with await adb(db_url) as database, database.as_user(user.id) as c:
            retrieval = AsyncRetrieval(c, embedder)
            by_text = await retrieval.search("prazo do contrato", match_count=3)
            hybrid = await retrieval.hybrid_search("prazo do contrato")
            vector = np.asarray(embedder.embed(["prazo do contrato"])[0], dtype=np.float32)
            by_vector = await AsyncRetrieval(c).search(vector, match_count=3)
            return by_text, hybrid, by_vector

    by_text, hybrid, by_vector = arun(scenario())
    assert by_text == expected == by_vector
    assert hybrid == expected_hybrid


async def _collection(db_url: str, user_id: uuid.UUID, kb_id: uuid.UUID) -> uuid.UUID:
    async with await adb(db_url) as database, database.as_user(user_id) as c:
        col = await AsyncKnowledgeCollectionRepository(c).create(knowledge_base_id=kb_id, name="c")
        return col.id


def test_async_search_as_anon_is_refused(db_url: str) -> None:
    async def scenario() -> None:
        async with await adb(db_url) as database, database.as_anon() as c:
            await AsyncRetrieval(c).search([0.1] * 1536)

    with pytest.raises(PermissionDenied):
        arun(scenario())


def test_an_async_database_with_a_malformed_url_fails_at_once() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        arun(AsyncDatabase.connect("postgresql://h:port/x", source="DATABASE_URL"))


def test_an_async_database_with_a_refused_url_fails_with_the_cause() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionFailed, match="refused"):
        arun(AsyncDatabase.connect(f"postgresql://postgres@127.0.0.1:{port}/x"))


def test_the_async_openai_provider_batches_and_keeps_input_order(stub: Stub) -> None:
    provider = AsyncOpenAIEmbeddings(SECRET, base_url=stub.url, dimensions=DIMS, batch_size=2)
    vectors = arun(provider.embed(["a", "b", "c"]))
    assert vectors == [tuple(stub_vector(t)) for t in "abc"]
    assert stub.batch_sizes() == [2, 1]
    assert SECRET not in repr(provider)


def test_the_async_openai_provider_retries_with_the_sdk_then_maps_the_error(
    stub: Stub, sleeps: Sleeps
) -> None:
    stub.fail(503, times=10)
    provider = AsyncOpenAIEmbeddings(SECRET, base_url=stub.url, dimensions=DIMS, max_retries=1)
    del sleeps  # the async client sleeps with asyncio, briefly (0.5 s at most here)
    with pytest.raises(EmbeddingServiceUnavailable, match=r"HTTP 503.*after 2 attempts"):
        arun(provider.embed(["a"]))
    assert len(stub.requests) == 2


def test_the_async_openai_provider_rejects_empty_texts_before_sending(stub: Stub) -> None:
    provider = AsyncOpenAIEmbeddings(SECRET, base_url=stub.url, dimensions=DIMS)
    with pytest.raises(InvalidInput):
        arun(provider.embed(["ok", ""]))
    assert stub.requests == []
