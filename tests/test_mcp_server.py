"""`renum-db mcp` end to end with the SDK's own client: the real subprocess over stdio and over
streamable HTTP on a loopback port, two tenants given the same agent script, each seeing only its
own rows; the audit log and table; HTTP authentication; errors as the agent sees them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from renum_db.embeddings import LexicalHashingEmbeddings
from renum_db.errors import ConnectionFailed, DatabaseError
from renum_db.local_auth import LocalAuth
from renum_db.mcp.executor import Limits
from renum_db.mcp.server import agent_message, mcp_database_url
from renum_db.vector import Vector, register_vector
from tests.support import Tenant, World

ROOT = Path(__file__).resolve().parent.parent
SECRET = "mcp-test-secret-0123456789abcdefghijklmnop"

CORPUS = {
    "a": ("Contrato Alfa", "Contrato de locação Alfa: prazo de doze meses e reajuste anual"),
    "b": ("Contrato Beta", "Contrato de locação Beta: multa rescisória de três aluguéis"),
}

# The same agent "prompt" for every tenant: what an agent does to answer "what do our
# contracts say?".
SCRIPT: list[tuple[str, str, dict[str, Any]]] = [
    ("tables", "list_tables", {}),
    ("columns", "list_columns", {"table": "documents"}),
    ("search", "search", {"query": "contrato de locação prazo multa", "k": 10}),
    (
        "search_semantic",
        "search",
        {"query": "contrato locação", "k": 10, "hybrid": False, "collection": "col"},
    ),
    ("documents", "query", {"sql": "select name, client_id from documents order by name"}),
    ("chunks", "query", {"sql": "select content, client_id from document_chunks"}),
    ("clients", "query", {"sql": "select id, name from clients"}),
    ("refused", "query", {"sql": "delete from documents"}),
    ("denied", "query", {"sql": "select * from api_credentials"}),
    ("unknown_table", "list_columns", {"table": "auth.users"}),
]


@dataclass
class Outcome:
    is_error: bool
    text: str
    data: dict[str, Any] | None


@dataclass
class Run:
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def data(self, key: str) -> dict[str, Any]:
        out = self.outcomes[key]
        assert not out.is_error, out.text
        assert out.data is not None
        return out.data

    def all_text(self) -> str:
        return "\n".join(o.text for o in self.outcomes.values())


async def run_script(session: ClientSession, script: list[tuple[str, str, dict[str, Any]]]) -> Run:
    await session.initialize()
    run = Run()
    for key, tool, args in script:
        result = await session.call_tool(tool, args)
        text = "\n".join(getattr(c, "text", "") for c in result.content)
        data = result.structured_content if not result.is_error else None
        run.outcomes[key] = Outcome(is_error=bool(result.is_error), text=text, data=data)
    return run


def stdio_params(url: str, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "renum_db", "mcp", *args],
        env={"RENUM_MCP_DATABASE_URL": url},
        cwd=str(ROOT),
    )


def run_stdio(
    url: str, args: list[str], script: list[tuple[str, str, dict[str, Any]]], errlog: Path
) -> Run:
    async def main() -> Run:
        with errlog.open("a", encoding="utf-8") as err:
            async with (
                stdio_client(stdio_params(url, *args), errlog=err) as (read, write),
                ClientSession(read, write) as session,
            ):
                return await run_script(session, script)

    return anyio.run(main)


def run_http(endpoint: str, token: str, script: list[tuple[str, str, dict[str, Any]]]) -> Run:
    async def main() -> Run:
        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(endpoint, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await run_script(session, script)

    return anyio.run(main)


def add_corpus(db_url: str, world: World) -> None:
    """One distinctive document with an embedded chunk per tenant (offline embeddings)."""
    provider = LexicalHashingEmbeddings()
    with psycopg.connect(db_url) as conn:
        register_vector(conn)
        for label, tenant in (("a", world.a), ("b", world.b)):
            name, text = CORPUS[label]
            row = conn.execute(
                "insert into public.documents (client_id, collection_id, name, status)"
                " values (%s, %s, %s, 'ready') returning id",
                (tenant.client_id, tenant.rows["knowledge_collections"][0], name),
            ).fetchone()
            assert row is not None
            conn.execute(
                "insert into public.document_chunks (client_id, document_id, content,"
                " chunk_index, embedding) values (%s, %s, %s, 0, %s)",
                (tenant.client_id, row[0], text, Vector(provider.embed([text])[0])),
            )
        conn.commit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def corpus_world(db_url: str, world: World) -> World:
    add_corpus(db_url, world)
    return world


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp")


@pytest.fixture(scope="module")
def stdio_runs(db_url: str, corpus_world: World, logs: Path) -> dict[str, Run]:
    url = mcp_database_url(db_url)
    w = corpus_world
    return {
        "a": run_stdio(
            url,
            [
                "--user",
                "member@a.example",  # the "a member of tenant A"
                "--agent",
                str(w.a.rows["agents"][0]),
                "--audit-table",
                "--audit-log",
                str(logs / "audit-a.jsonl"),
            ],
            SCRIPT,
            logs / "stderr-a.log",
        ),
        "b": run_stdio(url, ["--user", str(w.b.users["viewer"])], SCRIPT, logs / "stderr-b.log"),
    }


@pytest.fixture(scope="module")
def http_server(db_url: str, corpus_world: World, logs: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "RENUM_MCP_DATABASE_URL": mcp_database_url(db_url),
        "SUPABASE_JWT_SECRET": SECRET,
    }
    env.pop("OPENAI_API_KEY", None)
    with (logs / "http-server.log").open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [
                sys.executable,
                "-m",
                "renum_db",
                "mcp",
                "--http",
                "--port",
                str(port),
                "--audit-table",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (logs / "http-server.log").read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the HTTP server did not start"
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def token_for(db_url: str, user_id: uuid.UUID, **extra: Any) -> str:
    auth = LocalAuth(SECRET)
    with psycopg.connect(db_url) as conn:
        return auth.mint_access_token(conn, user_id, extra=extra or None)


@pytest.fixture(scope="module")
def http_runs(http_server: str, db_url: str, corpus_world: World) -> dict[str, Run]:
    w = corpus_world
    return {
        label: run_http(http_server, token_for(db_url, t.users["viewer"]), SCRIPT)
        for label, t in (("a", w.a), ("b", w.b))
    }


def tenants(world: World, label: str) -> tuple[Tenant, Tenant]:
    return (world.a, world.b) if label == "a" else (world.b, world.a)


TRANSPORT_RUNS = ["stdio_runs", "http_runs"]
CASES = [(fixture, label) for fixture in TRANSPORT_RUNS for label in ("a", "b")]


def pick(request: pytest.FixtureRequest, fixture: str, label: str) -> Run:
    runs: dict[str, Run] = request.getfixturevalue(fixture)
    return runs[label]


# --- two tenants, the same script ----------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "label"), CASES)
def test_the_agent_lists_the_tables_and_columns_of_the_tenant_schema(
    request: pytest.FixtureRequest, fixture: str, label: str
) -> None:
    run = pick(request, fixture, label)
    tables = {t["name"] for t in run.data("tables")["tables"]}
    assert {"documents", "document_chunks", "knowledge_collections"} <= tables
    assert "api_credentials" not in tables  # admins only
    columns = [c["name"] for c in run.data("columns")["columns"]]
    assert columns[:3] == ["id", "client_id", "collection_id"]


@pytest.mark.parametrize(("fixture", "label"), CASES)
def test_the_agent_queries_only_its_own_tenants_rows(
    request: pytest.FixtureRequest, fixture: str, label: str, corpus_world: World
) -> None:
    run = pick(request, fixture, label)
    mine, theirs = tenants(corpus_world, label)
    docs = run.data("documents")
    assert {r[1] for r in docs["rows"]} == {str(mine.client_id)}
    assert CORPUS[label][0] in {r[0] for r in docs["rows"]}
    chunks = run.data("chunks")
    assert {r[1] for r in chunks["rows"]} == {str(mine.client_id)}
    assert [r[0] for r in run.data("clients")["rows"]] == [str(mine.client_id)]
    assert str(theirs.client_id) not in run.all_text()


@pytest.mark.parametrize(("fixture", "label"), CASES)
def test_the_agent_searches_only_its_own_tenants_chunks(
    request: pytest.FixtureRequest, fixture: str, label: str, corpus_world: World
) -> None:
    run = pick(request, fixture, label)
    other = "b" if label == "a" else "a"
    for key in ("search", "search_semantic"):
        results = run.data(key)["results"]
        contents = [r["content"] for r in results]
        assert CORPUS[label][1] in contents, key
        assert CORPUS[other][1] not in contents, key
    best = run.data("search")["results"][0]
    assert best["content"] == CORPUS[label][1]
    assert best["document_name"] == CORPUS[label][0]


@pytest.mark.parametrize(("fixture", "label"), CASES)
def test_refusals_and_denials_reach_the_agent_as_tool_errors_without_internals(
    request: pytest.FixtureRequest, fixture: str, label: str
) -> None:
    run = pick(request, fixture, label)
    refused, denied, unknown = (run.outcomes[k] for k in ("refused", "denied", "unknown_table"))
    assert refused.is_error
    assert "refused: only SELECT statements are allowed, not DELETE" in refused.text
    assert denied.is_error
    assert "permission denied for table api_credentials" in denied.text
    assert unknown.is_error
    assert "no table or view named 'auth.users'" in unknown.text
    for out in (refused, denied, unknown):
        assert "Traceback" not in out.text
        assert "private." not in out.text
        assert "renum_mcp" not in out.text


# --- usage and audit -----------------------------------------------------------------------------


def test_searches_record_usage_for_the_agent_the_server_was_started_for(
    stdio_runs: dict[str, Run], db_url: str, corpus_world: World
) -> None:
    agent = corpus_world.a.rows["agents"][0]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select s.client_id, c.content, s.usage_count from public.document_usage_stats s"
            " join public.document_chunks c on c.id = s.chunk_id where s.agent_id = %s"
            " and c.content = %s",
            (agent, CORPUS["a"][1]),
        ).fetchall()
    assert rows == [(corpus_world.a.client_id, CORPUS["a"][1], 2)]


def test_every_call_is_written_to_the_audit_log_file(
    stdio_runs: dict[str, Run], logs: Path, corpus_world: World
) -> None:
    entries = [json.loads(line) for line in (logs / "audit-a.jsonl").read_text().splitlines()]
    assert [e["tool"] for e in entries] == [tool for _, tool, _ in SCRIPT]
    assert {e["user_id"] for e in entries} == {str(corpus_world.a.users["member"])}
    assert {e["transport"] for e in entries} == {"stdio"}
    by_statement = {e["statement"]: e for e in entries if e["tool"] == "query"}
    assert by_statement["delete from documents"]["outcome"] == "refused"
    assert by_statement["select * from api_credentials"]["outcome"] == "error"
    ok = by_statement["select name, client_id from documents order by name"]
    assert ok["outcome"] == "ok"
    assert ok["rows"] == 3
    assert ok["agent_id"] == str(corpus_world.a.rows["agents"][0])


def test_without_an_audit_log_file_the_records_go_to_stderr_never_stdout(
    stdio_runs: dict[str, Run], logs: Path
) -> None:
    # stdout carries the protocol: a stray line there would have broken the session above.
    lines = (logs / "stderr-b.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith('{"ts"')]
    assert [e["tool"] for e in entries] == [tool for _, tool, _ in SCRIPT]


def audit_rows(db_url: str, user_id: uuid.UUID, transport: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select client_id, tool, outcome from public.mcp_audit_log"
            " where user_id = %s and transport = %s order by created_at, id",
            (user_id, transport),
        ).fetchall()


def test_with_audit_table_every_stdio_call_is_a_row_of_the_users_tenant(
    stdio_runs: dict[str, Run], db_url: str, corpus_world: World
) -> None:
    rows = audit_rows(db_url, corpus_world.a.users["member"], "stdio")
    assert len(rows) == len(SCRIPT)
    assert {r[0] for r in rows} == {corpus_world.a.client_id}
    assert sorted(r[1] for r in rows) == sorted(tool for _, tool, _ in SCRIPT)
    assert sorted(r[2] for r in rows).count("refused") == 1


def test_without_audit_table_no_row_is_written(
    stdio_runs: dict[str, Run], db_url: str, corpus_world: World
) -> None:
    assert audit_rows(db_url, corpus_world.b.users["viewer"], "stdio") == []


def test_with_audit_table_every_http_call_is_a_row_of_its_callers_tenant(
    http_runs: dict[str, Run], db_url: str, corpus_world: World
) -> None:
    for tenant in (corpus_world.a, corpus_world.b):
        rows = audit_rows(db_url, tenant.users["viewer"], "http")
        assert len(rows) == len(SCRIPT)
        assert {r[0] for r in rows} == {tenant.client_id}


def test_the_tenants_admin_reads_its_audit_rows_and_a_viewer_does_not(
    stdio_runs: dict[str, Run], db_url: str, corpus_world: World
) -> None:
    a = corpus_world.a
    seen: dict[str, int] = {}
    with psycopg.connect(db_url) as conn:
        for role in ("viewer", "admin"):
            with conn.transaction(force_rollback=True):
                conn.execute(
                    "select set_config('role', 'authenticated', true),"
                    " set_config('request.jwt.claims', %s, true)",
                    (json.dumps({"sub": str(a.users[role]), "role": "authenticated"}),),
                )
                row = conn.execute(
                    "select count(*) from public.mcp_audit_log where transport = 'stdio'"
                    " and user_id = %s",
                    (a.users["member"],),
                ).fetchone()
                assert row is not None
                seen[role] = int(row[0])
    assert seen == {"viewer": 0, "admin": len(SCRIPT)}


# --- start-up and HTTP authentication ------------------------------------------------------------


def test_stdio_refuses_to_start_for_an_unknown_user(db_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "renum_db", "mcp", "--user", "ghost@example.com"],
        cwd=ROOT,
        env={**os.environ, "RENUM_MCP_DATABASE_URL": mcp_database_url(db_url)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "no user 'ghost@example.com' who can sign in" in proc.stderr


def test_the_server_refuses_to_log_in_as_a_role_with_more_rights(db_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "renum_db", "mcp", "--user", "viewer@a.example"],
        cwd=ROOT,
        env={**os.environ, "RENUM_MCP_DATABASE_URL": db_url},  # the test's strong role
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "can only become anon and authenticated" in proc.stderr


def test_http_refuses_to_start_without_the_jwt_secret(db_url: str) -> None:
    env = {**os.environ, "RENUM_MCP_DATABASE_URL": mcp_database_url(db_url)}
    env.pop("SUPABASE_JWT_SECRET", None)
    proc = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "renum_db", "mcp", "--http", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "SUPABASE_JWT_SECRET is not set" in proc.stderr


def test_a_lost_database_connection_reaches_the_agent_without_addresses() -> None:
    exc = ConnectionFailed('connection to server at "10.1.2.3", port 5432 failed: timeout')
    outcome, message = agent_message(exc, Limits())
    assert outcome == "error"
    assert "10.1.2.3" not in message


def post_initialize(endpoint: str, token: str | None) -> tuple[int, str]:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "probe", "version": "0"},
            },
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return int(response.status), response.headers.get("WWW-Authenticate") or ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers.get("WWW-Authenticate") or ""


def test_http_accepts_a_valid_user_token(http_server: str, db_url: str, world: World) -> None:
    status, _ = post_initialize(http_server, token_for(db_url, world.a.users["viewer"]))
    assert status == 200


@pytest.mark.parametrize(
    "case", ["none", "garbage", "wrong_secret", "expired", "service_role_key", "anon_key"]
)
def test_http_refuses_a_request_without_a_valid_user_token(
    http_server: str, db_url: str, world: World, case: str
) -> None:
    user = world.a.users["viewer"]
    tokens: dict[str, str | None] = {
        "none": None,
        "garbage": "not-a-jwt",
        "wrong_secret": LocalAuth("x" * 40).sign(
            {
                "sub": str(user),
                "role": "authenticated",
                "aud": "authenticated",
                "exp": int(time.time()) + 600,
            }
        ),
        "expired": token_for(db_url, user, exp=int(time.time()) - 60),
        "service_role_key": LocalAuth(SECRET).mint_api_key("service_role"),
        "anon_key": LocalAuth(SECRET).mint_api_key("anon"),
    }
    status, challenge = post_initialize(http_server, tokens[case])
    assert status == 401
    assert challenge.lower().startswith("bearer")


# --- messages ------------------------------------------------------------------------------------


def test_a_database_error_reaches_the_agent_without_internal_names() -> None:
    exc = DatabaseError(
        "function private.search_client_id(uuid) failed for role renum_mcp on auth.users",
        sqlstate="XX000",
    )
    outcome, message = agent_message(exc, Limits())
    assert outcome == "error"
    assert message.startswith("database error XX000: function an internal object(uuid) failed")
    assert "private." not in message
    assert "auth.users" not in message
    assert "renum_mcp" not in message


def test_an_unexpected_exception_reaches_the_agent_as_a_generic_message() -> None:
    outcome, message = agent_message(KeyError("postgres://user:secret@host"), Limits())
    assert outcome == "error"
    assert message == "internal error (the server's log has the details)"


def test_a_timeout_names_the_limit_that_cancelled_it() -> None:
    exc = DatabaseError("canceling statement due to statement timeout", sqlstate="57014")
    _, message = agent_message(exc, Limits(statement_timeout_ms=1234))
    assert message.startswith("the statement was cancelled after 1234 ms")


def test_the_default_database_url_logs_in_as_the_mcp_role_without_a_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RENUM_MCP_DATABASE_URL", raising=False)
    url = mcp_database_url("postgresql://postgres:secret@/renum?host=/run/renum/socket-dir")
    params = psycopg.conninfo.conninfo_to_dict(url)
    assert params["user"] == "renum_mcp"
    assert "password" not in params
    assert params["dbname"] == "renum"
    assert params["host"] == "/run/renum/socket-dir"


def test_an_explicit_mcp_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENUM_MCP_DATABASE_URL", "postgresql://renum_mcp:pw@db.example:5432/x")
    assert mcp_database_url("postgresql://postgres@/y") == (
        "postgresql://renum_mcp:pw@db.example:5432/x"
    )
