"""The retrieval API on every transport: a direct connection (renum_db.search.Retrieval through
Database.as_claims), the async one (renum_db.aio.AsyncRetrieval through AsyncDatabase.as_claims)
and PostgREST (renum_db.postgrest.PostgrestRetrieval with the real supabase-py client against
tests/postgrest_stub.py, which verifies the JWT and runs the real SQL as its role). The same
cases run on all three and must give the same rows and the same renum_db errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from renum_db.admin import LocalUserProvisioner, TenantAdmin
from renum_db.aio import AsyncDatabase, AsyncRetrieval
from renum_db.db import Database, user_claims
from renum_db.embeddings import LexicalHashingEmbeddings
from renum_db.errors import ConfigurationError, InvalidInput, InvalidToken, PermissionDenied
from renum_db.ingest import Ingestor
from renum_db.local_auth import LocalAuth
from renum_db.postgrest import PostgrestKnowledge, PostgrestRetrieval
from renum_db.repositories import (
    DocumentRepository,
    KnowledgeBaseRepository,
    KnowledgeCollectionRepository,
)
from renum_db.repositories.tenancy import AgentRepository
from renum_db.search import DocumentUsage, HybridSearchResult, Retrieval, SearchResult
from tests.postgrest_stub import PostgrestStub, http_status

SECRET = "transport-test-jwt-secret-at-least-32-chars"
TEXTS = {
    "prazo": "O prazo do contrato de locação é de trinta meses.",
    "viagem": "Relatório de despesas com viagens da diretoria.",
}
EMBEDDER = LexicalHashingEmbeddings()


class Direct:
    """Retrieval over a direct connection, one transaction per call (like one HTTP request)."""

    def __init__(self, db: Database, claims: dict[str, Any] | None) -> None:
        self._db, self._claims = db, claims

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            with self._db.as_claims(self._claims) as conn:
                return getattr(Retrieval(conn, EMBEDDER), name)(*args, **kw)

        return call


class Async:
    """AsyncRetrieval, one AsyncDatabase block per call, driven by asyncio.run."""

    def __init__(self, db_url: str, claims: dict[str, Any] | None) -> None:
        self._url, self._claims = db_url, claims

    def __getattr__(self, name: str) -> Any:
        async def run(*args: Any, **kw: Any) -> Any:
            adb = await AsyncDatabase.connect(self._url, min_size=0, max_size=1)
            async with adb, adb.as_claims(self._claims) as conn:
                return await getattr(AsyncRetrieval(conn, EMBEDDER), name)(*args, **kw)

        return lambda *args, **kw: asyncio.run(run(*args, **kw))


@dataclass(frozen=True)
class Setup:
    client_id: uuid.UUID
    member: uuid.UUID
    agent: uuid.UUID
    outsider: uuid.UUID
    documents: dict[str, uuid.UUID]


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=3) as database:
        yield database


@pytest.fixture(scope="module")
def auth() -> LocalAuth:
    return LocalAuth(SECRET)


@pytest.fixture(scope="module")
def stub(db_url: str, auth: LocalAuth) -> Iterator[PostgrestStub]:
    with PostgrestStub(db_url, auth.verify) as s:
        yield s


@pytest.fixture(scope="module")
def setup(db: Database) -> Setup:
    admin = TenantAdmin(db, users=LocalUserProvisioner(db))
    client = admin.create_client(name="Transports")
    member = admin.create_user(client_id=client.id, email="m@transport.test", role="member")
    boss = admin.create_user(client_id=client.id, email="a@transport.test", role="admin")
    other = admin.create_client(name="Elsewhere")
    outsider = admin.create_user(client_id=other.id, email="o@elsewhere.test", role="admin")
    with db.as_user(member.id) as conn:
        kb = KnowledgeBaseRepository(conn).create(name="kb")
        col = KnowledgeCollectionRepository(conn).create(knowledge_base_id=kb.id, name="c")
    with db.as_user(boss.id) as conn:
        agent = AgentRepository(conn).create(name="Agente")
    ingestor = Ingestor(db, EMBEDDER)
    docs = {
        key: ingestor.ingest_document(
            claims=user_claims(member.id), collection_id=col.id, name=key, text=text
        ).document_id
        for key, text in TEXTS.items()
    }
    return Setup(client.id, member.id, agent.id, outsider.id, docs)


@pytest.fixture(params=["direct", "async", "postgrest"])
def transport(
    request: pytest.FixtureRequest,
    db: Database,
    db_url: str,
    auth: LocalAuth,
    stub: PostgrestStub,
) -> Any:
    """A factory: actor ('member', 'outsider', 'service', 'anon') -> retrieval on this
    transport."""
    setup_: Setup = request.getfixturevalue("setup")

    def make(actor: str) -> Any:
        user = {"member": setup_.member, "outsider": setup_.outsider}.get(actor)
        claims = (
            user_claims(user)
            if user
            else ({"role": "service_role"} if actor == "service" else None)
        )
        if request.param == "direct":
            return Direct(db, claims)
        if request.param == "async":
            return Async(db_url, claims)
        anon_key = auth.mint_api_key("anon")
        if user:
            with psycopg.connect(db_url) as conn:
                token: str | None = auth.mint_access_token(conn, user)
        else:
            token = auth.mint_api_key("service_role") if actor == "service" else None
        return PostgrestRetrieval.connect(stub.url, anon_key, access_token=token, embedder=EMBEDDER)

    make.kind = request.param  # type: ignore[attr-defined]
    return make


def test_a_member_finds_the_document_by_text(transport: Any, setup: Setup) -> None:
    hits = transport("member").search("prazo do contrato", match_count=2)
    assert isinstance(hits[0], SearchResult)
    assert hits[0].document_id == setup.documents["prazo"]
    assert isinstance(hits[0].id, uuid.UUID)
    assert hits[0].similarity > 0


def test_hybrid_search_gives_every_component_score(transport: Any, setup: Setup) -> None:
    top = transport("member").hybrid_search("prazo do contrato", match_count=1)[0]
    assert isinstance(top, HybridSearchResult)
    assert top.document_id == setup.documents["prazo"]
    assert top.text_position == 1
    assert top.semantic_position == 1


def test_the_backend_records_usage_and_reads_the_most_used_documents(
    transport: Any, setup: Setup
) -> None:
    service = transport("service")
    if transport.kind == "postgrest":
        # The backend's entry points (schema backend) are not exposed through PostgREST.
        with pytest.raises(ConfigurationError):
            service.search("viagens", match_count=1, client_id=setup.client_id)
        return
    hits = service.search("viagens", match_count=1, client_id=setup.client_id)
    assert hits[0].document_id == setup.documents["viagem"]
    recorded = service.record_usage(
        agent_id=setup.agent, chunk_ids=[hits[0].id], client_id=setup.client_id
    )
    assert recorded == 1
    top = service.most_used_documents(
        match_count=5, agent_id=setup.agent, client_id=setup.client_id
    )
    assert isinstance(top[0], DocumentUsage)
    assert top[0].document_id == setup.documents["viagem"]
    assert top[0].usage_count >= 1


def test_anon_is_refused(transport: Any) -> None:
    with pytest.raises(PermissionDenied):
        transport("anon").search([0.5] * 1536)


def test_a_user_of_another_tenant_cannot_name_this_client(transport: Any, setup: Setup) -> None:
    """Directly, naming a client means the backend's entry point, which a user may not execute;
    over PostgREST it is refused before any request (the backend schema is not exposed)."""
    refused = ConfigurationError if transport.kind == "postgrest" else PermissionDenied
    with pytest.raises(refused):
        transport("outsider").search("prazo", client_id=setup.client_id)


def test_a_user_of_another_tenant_finds_nothing(transport: Any) -> None:
    assert transport("outsider").search("prazo do contrato", match_count=5) == []


def test_a_vector_of_the_wrong_dimension_is_invalid_input(transport: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        transport("member").search([0.1, 0.2, 0.3])
    assert info.value.sqlstate == "22023"


def test_the_backend_without_a_client_is_refused_the_users_entry_point(transport: Any) -> None:
    """The backend has no tenant of its own: without client_id it reaches only the user's entry
    point (schema public), which service_role may not execute."""
    with pytest.raises(PermissionDenied):
        transport("service").search([0.5] * 1536)


def test_both_transports_return_identical_rows(
    db: Database, db_url: str, auth: LocalAuth, stub: PostgrestStub, setup: Setup
) -> None:
    with psycopg.connect(db_url) as conn:
        token = auth.mint_access_token(conn, setup.member)
    over_http = PostgrestRetrieval.connect(
        stub.url, auth.mint_api_key("anon"), access_token=token, embedder=EMBEDDER
    )
    direct = Direct(db, user_claims(setup.member))
    for query in ("prazo do contrato", "despesas com viagens"):
        assert over_http.search(query, match_count=5) == direct.search(query, match_count=5)
        assert over_http.hybrid_search(query) == direct.hybrid_search(query)


def test_a_forged_jwt_is_refused_by_postgrest_as_an_invalid_token(
    stub: PostgrestStub, auth: LocalAuth, setup: Setup
) -> None:
    forged = LocalAuth("another-secret-that-is-long-enough-0123456789")
    token = forged.sign(
        {
            "sub": str(setup.member),
            "role": "authenticated",
            "aud": "authenticated",
            "exp": 4102444800,
        }
    )
    retrieval = PostgrestRetrieval.connect(
        stub.url, auth.mint_api_key("anon"), access_token=token, embedder=EMBEDDER
    )
    with pytest.raises(InvalidToken):
        retrieval.search("prazo")


def test_the_stub_answers_postgrest_error_json_with_postgrest_statuses(
    stub: PostgrestStub, auth: LocalAuth
) -> None:
    response = httpx.post(
        f"{stub.url}/rest/v1/rpc/search_embeddings",
        json={"query_embedding": "[1,2,3]"},
        headers={"apikey": auth.mint_api_key("anon")},
    )
    assert response.status_code == 401  # 42501 as anon
    assert set(response.json()) == {"code", "message", "details", "hint"}
    assert response.json()["code"] == "42501"
    assert (http_status("42501", "authenticated"), http_status("PT404", "x")) == (403, 404)
    assert (http_status("23505", "x"), http_status("22023", "x")) == (409, 400)


def test_document_pages_read_over_postgrest_equal_the_repository_pages(
    db: Database, db_url: str, auth: LocalAuth, stub: PostgrestStub, setup: Setup
) -> None:
    with psycopg.connect(db_url) as conn:
        token = auth.mint_access_token(conn, setup.member)
    tables = PostgrestKnowledge.connect(stub.url, auth.mint_api_key("anon"), access_token=token)
    pages: list[list[Any]] = []
    page = tables.list_documents(limit=1)
    while page:
        pages.append(page)
        page = tables.list_documents(limit=1, after=page[-1])
    with db.as_user(setup.member) as conn:
        expected = DocumentRepository(conn).list()
        bases = KnowledgeBaseRepository(conn).list()
        collections = KnowledgeCollectionRepository(conn).list()
    assert [p[0] for p in pages] == expected
    assert len(expected) == len(TEXTS)
    assert tables.list_knowledge_bases() == bases
    assert tables.list_collections(knowledge_base_id=bases[0].id) == collections
    assert tables.list_documents(collection_id=collections[0].id) == expected


def test_another_tenant_reads_none_of_these_rows_over_postgrest(
    db_url: str, auth: LocalAuth, stub: PostgrestStub, setup: Setup
) -> None:
    with psycopg.connect(db_url) as conn:
        token = auth.mint_access_token(conn, setup.outsider)
    tables = PostgrestKnowledge.connect(stub.url, auth.mint_api_key("anon"), access_token=token)
    assert tables.list_documents() == []
    assert tables.list_knowledge_bases() == []
