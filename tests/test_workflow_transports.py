"""The user-facing workflow API on every transport: a direct connection (AgentExecutionRepository
and InvestigationRepository through Database.as_claims), the async one (their Async twins through
AsyncDatabase.as_claims) and PostgREST (PostgrestAgentExecutions / PostgrestInvestigations with
the real supabase-py client against tests/postgrest_stub.py, which verifies the JWT and runs the
real SQL as its role). The same cases run on all three and must give the same rows and the same
renum_db errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from renum_db.admin import LocalUserProvisioner, TenantAdmin
from renum_db.aio import AsyncAgentExecutionRepository, AsyncDatabase, AsyncInvestigationRepository
from renum_db.db import Database, user_claims
from renum_db.errors import (
    ConfigurationError,
    IllegalTransition,
    InvalidInput,
    InvestigationTransitionRefused,
    NotFound,
    PermissionDenied,
)
from renum_db.local_auth import LocalAuth
from renum_db.postgrest import PostgrestAgentExecutions, PostgrestInvestigations
from renum_db.repositories import (
    AgentExecution,
    AgentExecutionRepository,
    Investigation,
    InvestigationRepository,
)
from renum_db.repositories.agents import ClientMonthlyTokenUsage
from renum_db.repositories.tenancy import AgentRepository
from tests.postgrest_stub import PostgrestStub

SECRET = "workflow-transport-jwt-secret-at-least-32-chars"

SYNC = {"executions": AgentExecutionRepository, "investigations": InvestigationRepository}
ASYNC = {
    "executions": AsyncAgentExecutionRepository,
    "investigations": AsyncInvestigationRepository,
}
HTTP: dict[str, Any] = {
    "executions": PostgrestAgentExecutions,
    "investigations": PostgrestInvestigations,
}


class Direct:
    """A sync repository over a direct connection, one transaction per call (one request)."""

    def __init__(self, db: Database, claims: dict[str, Any] | None, repo: Any) -> None:
        self._db, self._claims, self._repo = db, claims, repo

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            with self._db.as_claims(self._claims) as conn:
                return getattr(self._repo(conn), name)(*args, **kw)

        return call


class Async:
    """An async repository, one AsyncDatabase block per call, driven by asyncio.run."""

    def __init__(self, db_url: str, claims: dict[str, Any] | None, repo: Any) -> None:
        self._url, self._claims, self._repo = db_url, claims, repo

    def __getattr__(self, name: str) -> Any:
        async def run(*args: Any, **kw: Any) -> Any:
            adb = await AsyncDatabase.connect(self._url, min_size=0, max_size=1)
            async with adb, adb.as_claims(self._claims) as conn:
                return await getattr(self._repo(conn), name)(*args, **kw)

        return lambda *args, **kw: asyncio.run(run(*args, **kw))


@dataclass(frozen=True)
class Setup:
    client_id: uuid.UUID
    users: dict[str, uuid.UUID]  # member, viewer, admin, outsider
    agent: uuid.UUID
    foreign_agent: uuid.UUID


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
    client = admin.create_client(name="Workflows")
    users = {
        role: admin.create_user(client_id=client.id, email=f"{role}@wf.test", role=role).id
        for role in ("member", "viewer", "admin")
    }
    other = admin.create_client(name="Elsewhere")
    users["outsider"] = admin.create_user(
        client_id=other.id, email="o@elsewhere.test", role="admin"
    ).id
    with db.as_user(users["admin"]) as conn:
        agent = AgentRepository(conn).create(name="Analista")
    with db.as_user(users["outsider"]) as conn:
        foreign = AgentRepository(conn).create(name="Alheio")
    return Setup(client.id, users, agent.id, foreign.id)


@pytest.fixture(params=["direct", "async", "postgrest"])
def transport(
    request: pytest.FixtureRequest,
    db: Database,
    db_url: str,
    auth: LocalAuth,
    stub: PostgrestStub,
    setup: Setup,
) -> Any:
    """A factory: (actor, 'executions' | 'investigations') -> that API on this transport;
    actors are the roles of Setup.users or 'anon'."""

    def make(actor: str, family: str) -> Any:
        user = setup.users.get(actor)
        claims = user_claims(user) if user else None
        if request.param == "direct":
            return Direct(db, claims, SYNC[family])
        if request.param == "async":
            return Async(db_url, claims, ASYNC[family])
        token: str | None = None
        if user:
            with psycopg.connect(db_url) as conn:
                token = auth.mint_access_token(conn, user)
        return HTTP[family].connect(stub.url, auth.mint_api_key("anon"), access_token=token)

    make.kind = request.param  # type: ignore[attr-defined]
    return make


@pytest.fixture
def direct(db: Database, setup: Setup) -> Any:
    """The reference: the sync repositories as a given actor."""
    return lambda actor, family: Direct(db, user_claims(setup.users[actor]), SYNC[family])


def test_a_member_starts_an_execution_and_cancels_it(
    transport: Any, direct: Any, setup: Setup
) -> None:
    runs = transport("member", "executions")
    started = runs.start(agent_id=setup.agent, input={"pergunta": "prazo?"})
    assert isinstance(started, AgentExecution)
    assert (started.status, started.agent_id, started.user_id) == (
        "pending",
        setup.agent,
        setup.users["member"],
    )
    assert started.input == {"pergunta": "prazo?"}
    assert started == direct("member", "executions").get(started.id)
    cancelled = runs.cancel(execution_id=started.id)
    assert cancelled.status == "cancelled"
    assert cancelled.completed_at is not None
    assert runs.get(started.id) == cancelled == direct("member", "executions").get(started.id)


def test_a_cancelled_execution_cannot_be_cancelled_again(transport: Any, setup: Setup) -> None:
    runs = transport("member", "executions")
    run = runs.start(agent_id=setup.agent)
    runs.cancel(execution_id=run.id)
    with pytest.raises(IllegalTransition):
        runs.cancel(execution_id=run.id)


def test_a_viewer_may_not_start_an_execution(transport: Any, setup: Setup) -> None:
    with pytest.raises(PermissionDenied) as info:
        transport("viewer", "executions").start(agent_id=setup.agent)
    assert info.value.sqlstate == "42501"


def test_anon_may_not_start_an_execution(transport: Any, setup: Setup) -> None:
    with pytest.raises(PermissionDenied):
        transport("anon", "executions").start(agent_id=setup.agent)


def test_another_tenants_agent_is_not_found(transport: Any, setup: Setup) -> None:
    with pytest.raises(NotFound) as info:
        transport("member", "executions").start(agent_id=setup.foreign_agent)
    assert info.value.sqlstate == "PT404"


def test_another_tenant_cannot_cancel_or_read_this_execution(
    transport: Any, direct: Any, setup: Setup
) -> None:
    run = direct("member", "executions").start(agent_id=setup.agent)
    outsider = transport("outsider", "executions")
    with pytest.raises(NotFound):
        outsider.cancel(execution_id=run.id)
    assert outsider.get(run.id) is None
    assert run.id not in {r.id for r in outsider.list(limit=1000)}


def test_the_backends_arguments_are_refused_to_a_user(transport: Any, setup: Setup) -> None:
    """Directly, `client_id` means schema backend, which a user may not execute; over PostgREST
    it is refused before any request (schema backend is not exposed)."""
    refused = ConfigurationError if transport.kind == "postgrest" else PermissionDenied
    with pytest.raises(refused):
        transport("member", "executions").start(agent_id=setup.agent, client_id=setup.client_id)


def test_execution_pages_cover_every_row_once(transport: Any, direct: Any, setup: Setup) -> None:
    runs = transport("member", "executions")
    new = {runs.start(agent_id=setup.agent, input={"n": n}).id for n in range(3)}
    seen: list[AgentExecution] = []
    page = runs.list(limit=2)
    while page:
        assert len(page) <= 2
        seen.extend(page)
        page = runs.list(limit=2, after=page[-1])
    assert seen == direct("member", "executions").list(limit=1000)
    assert len({r.id for r in seen}) == len(seen)
    assert new <= {r.id for r in seen}
    # a viewer of the same client reads the same executions, filtered by agent and status
    pending = transport("viewer", "executions").list(agent_id=setup.agent, status="pending")
    assert {r.id for r in pending} >= new
    assert {r.status for r in pending} == {"pending"}


def test_a_page_limit_out_of_range_is_invalid_input(transport: Any) -> None:
    with pytest.raises(InvalidInput):
        transport("member", "executions").list(limit=0)


def test_monthly_usage_reads_the_same_rows(
    transport: Any, direct: Any, db: Database, setup: Setup
) -> None:
    run = transport("member", "executions").start(agent_id=setup.agent)
    with db.as_service_role() as conn:
        AgentExecutionRepository(conn).report_progress(
            execution_id=run.id, client_id=setup.client_id, tokens_used=7
        )
    usage = transport("viewer", "executions").client_monthly_token_usage()
    assert usage == direct("viewer", "executions").client_monthly_token_usage()
    assert isinstance(usage[0], ClientMonthlyTokenUsage)
    assert usage[0].client_id == setup.client_id
    assert usage[0].executions >= 1
    assert usage[0].tokens_used >= 7
    month = usage[0].month
    per_agent = transport("viewer", "executions").agent_monthly_token_usage(
        agent_id=setup.agent, month=month
    )
    assert per_agent == direct("viewer", "executions").agent_monthly_token_usage(
        agent_id=setup.agent, month=month
    )
    assert [(r.agent_id, r.executions) for r in per_agent] == [(setup.agent, usage[0].executions)]
    assert (
        transport("outsider", "executions").client_monthly_token_usage(client_id=setup.client_id)
        == []
    )


def test_a_member_creates_and_cancels_an_investigation(
    transport: Any, direct: Any, setup: Setup
) -> None:
    investigations = transport("member", "investigations")
    created = investigations.create(
        query="contratos vencidos",
        data_source="contracts",
        filters={"ano": 2026},
        anomaly_types=["duplicado"],
        session_id="s-1",
    )
    assert isinstance(created, Investigation)
    assert (created.status, created.user_id, created.client_id) == (
        "pending",
        setup.users["member"],
        setup.client_id,
    )
    assert (created.filters, created.anomaly_types) == ({"ano": 2026}, ["duplicado"])
    assert created == direct("member", "investigations").get(created.id)
    cancelled = investigations.cancel(created.id)
    assert cancelled.status == "cancelled"
    assert cancelled.is_final
    assert investigations.get(created.id) == cancelled


def test_a_cancelled_investigation_cannot_be_cancelled_again(transport: Any) -> None:
    investigations = transport("member", "investigations")
    created = investigations.create(query="q", data_source="contracts")
    investigations.cancel(created.id)
    with pytest.raises(InvestigationTransitionRefused) as info:
        investigations.cancel(created.id)
    assert info.value.sqlstate == "RNI01"


def test_another_users_investigation_is_not_found(transport: Any, direct: Any) -> None:
    created = direct("member", "investigations").create(query="q", data_source="contracts")
    with pytest.raises(NotFound):
        transport("outsider", "investigations").cancel(created.id)
    assert transport("admin", "investigations").get(created.id) is None


def test_anon_may_not_create_an_investigation(transport: Any) -> None:
    with pytest.raises(PermissionDenied):
        transport("anon", "investigations").create(query="q", data_source="contracts")


def test_the_worker_cancel_is_refused_over_postgrest(transport: Any, direct: Any) -> None:
    created = direct("member", "investigations").create(query="q", data_source="contracts")
    refused = ConfigurationError if transport.kind == "postgrest" else PermissionDenied
    with pytest.raises(refused):
        transport("member", "investigations").cancel(created.id, backend=True)


def test_investigation_pages_cover_every_row_once(transport: Any, direct: Any) -> None:
    investigations = transport("member", "investigations")
    new = {
        investigations.create(query=f"q{n}", data_source="contracts", session_id="paged").id
        for n in range(3)
    }
    seen: list[Investigation] = []
    page = investigations.list(limit=2)
    while page:
        seen.extend(page)
        page = investigations.list(limit=2, after=page[-1])
    assert seen == direct("member", "investigations").list(limit=1000)
    assert len({r.id for r in seen}) == len(seen)
    assert new <= {r.id for r in seen}
    by_session = investigations.list(session_id="paged", status="pending")
    assert new <= {r.id for r in by_session}
    assert {r.session_id for r in by_session} == {"paged"}


def test_the_worker_runs_an_execution_to_completion_except_over_postgrest(
    transport: Any, db: Database, db_url: str, auth: LocalAuth, stub: PostgrestStub, setup: Setup
) -> None:
    """The backend's calls (schema backend) run directly and async as service_role; over
    PostgREST they are refused before any request."""
    service = {"role": "service_role"}
    kind = transport.kind
    if kind == "postgrest":
        runs = PostgrestAgentExecutions.connect(
            stub.url, auth.mint_api_key("anon"), access_token=auth.mint_api_key("service_role")
        )
        with pytest.raises(ConfigurationError):
            runs.start(agent_id=setup.agent, client_id=setup.client_id)
        return
    worker: Any = (
        Direct(db, service, AgentExecutionRepository)
        if kind == "direct"
        else Async(db_url, service, AsyncAgentExecutionRepository)
    )
    run = worker.start(agent_id=setup.agent, client_id=setup.client_id)
    assert run.user_id is None
    running = worker.report_progress(
        execution_id=run.id, client_id=setup.client_id, output={"step": 1}, tokens_used=5
    )
    assert (running.status, running.tokens_used) == ("running", 5)
    done = worker.complete(execution_id=run.id, client_id=setup.client_id, tokens_used=9)
    assert (done.status, done.tokens_used, done.output) == ("completed", 9, {"step": 1})
    with pytest.raises(IllegalTransition):
        worker.fail(execution_id=run.id, client_id=setup.client_id, error="late")
    assert transport("viewer", "executions").get(run.id) == done
