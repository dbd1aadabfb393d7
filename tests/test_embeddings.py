"""Embedding providers and the Postgres embedding cache.

The OpenAI provider is exercised against a local stub of the embeddings API on 127.0.0.1 (no
network); the cache runs against the module's migrated database as real tenants' users.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from renum_db import embeddings
from renum_db.db import Database
from renum_db.embeddings import (
    CachedEmbeddings,
    EmbeddingProvider,
    EmbeddingServiceUnavailable,
    LexicalHashingEmbeddings,
    OpenAIEmbeddings,
    embedding_provider_from_env,
)
from renum_db.errors import (
    CheckViolation,
    ConfigurationError,
    InvalidInput,
    PermissionDenied,
    RetryableError,
)
from tests.support import World

SECRET = "sk-test-0123456789abcdefSECRET"
DIMS = 8


# --------------------------------------------------------------------------------------------
# A local stub of POST /v1/embeddings
# --------------------------------------------------------------------------------------------


def stub_vector(text: str, dims: int = DIMS) -> list[float]:
    """What the stub answers for `text`: distinct per text, so order mistakes show."""
    seed = zlib.crc32(text.encode())
    return [float((seed >> (i % 24)) % 1000) / 1000 + i for i in range(dims)]


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Stub:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    shuffle: bool = True
    dims: int = DIMS
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, status: int, times: int = 1, *, message: str = "stub error", **kw: Any) -> None:
        body = {"error": {"message": message, "type": "stub_error", "param": None, "code": None}}
        self.script.extend(Scripted(status, body, **kw) for _ in range(times))

    def batch_sizes(self) -> list[int]:
        return [len(r["input"]) for r in self.requests]


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: object, headers: dict[str, str]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(raw)  # the client may have given up (the timeout test)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length))
            with stub.lock:
                stub.requests.append(payload)
                stub.auth_headers.append(self.headers.get("Authorization", ""))
                scripted = stub.script.pop(0) if stub.script else None
            if self.path != "/v1/embeddings":
                self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                return
            if scripted is not None:
                threading.Event().wait(scripted.delay)  # not time.sleep: tests record that
                self._send(scripted.status, scripted.body, scripted.headers)
                return
            data = [
                {"object": "embedding", "index": i, "embedding": stub_vector(text, stub.dims)}
                for i, text in enumerate(payload["input"])
            ]
            if stub.shuffle:
                random.Random(len(data)).shuffle(data)
            body = {
                "object": "list",
                "data": data,
                "model": payload["model"],
                "usage": {"prompt_tokens": len(data), "total_tokens": len(data)},
            }
            self._send(200, body, {})

    return Handler


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stub is on loopback: never route to it through a proxy from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Stub(url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


class Sleeps(list[float]):
    """Records the waits the OpenAI SDK's own retry loop asks for, instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class _RecordingTime:
    def __init__(self, sleeps: Sleeps) -> None:
        self.sleep = sleeps

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    import openai._base_client as base_client

    recorded = Sleeps()
    monkeypatch.setattr(base_client, "time", _RecordingTime(recorded))
    return recorded


def provider(stub: Stub, sleeps: Sleeps | None = None, **kw: Any) -> OpenAIEmbeddings:
    del sleeps  # recorded by the fixture
    kw.setdefault("dimensions", DIMS)
    return OpenAIEmbeddings(SECRET, base_url=stub.url, **kw)


# --------------------------------------------------------------------------------------------
# OpenAIEmbeddings
# --------------------------------------------------------------------------------------------


def test_openai_batches_requests_and_returns_vectors_in_input_order(stub: Stub) -> None:
    texts = [f"text number {i}" for i in range(600)]
    p = provider(stub, batch_size=256)
    result = p.embed(texts)
    assert stub.batch_sizes() == [256, 256, 88]
    assert result == [tuple(stub_vector(t)) for t in texts]
    assert all(isinstance(v, tuple) for v in result)
    assert stub.auth_headers == [f"Bearer {SECRET}"] * 3


def test_openai_sends_dimensions_and_float_encoding_for_text_embedding_3(stub: Stub) -> None:
    provider(stub).embed(["a"])
    sent = stub.requests[0]
    assert sent["model"] == "text-embedding-3-small"
    assert sent["dimensions"] == DIMS
    assert sent["encoding_format"] == "float"


def test_openai_omits_dimensions_for_other_models(stub: Stub) -> None:
    provider(stub, model="nomic-embed-text").embed(["a"])
    assert "dimensions" not in stub.requests[0]


def test_openai_reads_key_and_base_url_from_the_environment(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
    assert OpenAIEmbeddings(dimensions=DIMS).embed(["x"]) == [tuple(stub_vector("x"))]
    assert stub.auth_headers == [f"Bearer {SECRET}"]


def test_openai_without_a_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIEmbeddings()


def test_openai_empty_input_sends_no_request(stub: Stub) -> None:
    assert provider(stub).embed([]) == []
    assert stub.requests == []


def test_openai_rejects_empty_strings_before_sending(stub: Stub) -> None:
    with pytest.raises(InvalidInput, match="position 1 is empty"):
        provider(stub).embed(["a", ""])
    assert stub.requests == []


def test_openai_retries_a_rate_limit_honouring_retry_after(stub: Stub, sleeps: Sleeps) -> None:
    stub.fail(429, headers={"Retry-After": "7"}, message="Rate limit reached")
    assert provider(stub, sleeps).embed(["a", "b"]) == [
        tuple(stub_vector("a")),
        tuple(stub_vector("b")),
    ]
    assert len(stub.requests) == 2
    assert sleeps == [7.0]


def test_openai_honours_retry_after_ms(stub: Stub, sleeps: Sleeps) -> None:
    stub.fail(429, headers={"retry-after-ms": "250"})
    provider(stub, sleeps).embed(["a"])
    assert sleeps == [0.25]


def test_openai_retries_server_errors_with_growing_jittered_backoff(
    stub: Stub, sleeps: Sleeps
) -> None:
    stub.fail(500)
    stub.fail(503)
    stub.fail(502)
    assert provider(stub, sleeps).embed(["a"]) == [tuple(stub_vector("a"))]
    assert len(stub.requests) == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):  # the SDK's: 0.5 s doubling, minus up to 25 %
        base = 0.5 * 2**attempt
        assert base * 0.75 <= delay <= base


def test_openai_retries_a_timeout(stub: Stub, sleeps: Sleeps) -> None:
    stub.script.append(Scripted(200, {}, delay=1.0))  # answered too late: a timeout
    assert provider(stub, sleeps, timeout=0.2).embed(["a"]) == [tuple(stub_vector("a"))]
    assert len(sleeps) == 1


def test_openai_gives_up_after_max_retries_with_a_retryable_error(
    stub: Stub, sleeps: Sleeps
) -> None:
    stub.fail(503, times=10)
    with pytest.raises(EmbeddingServiceUnavailable, match=r"HTTP 503.*after 3 attempts") as info:
        provider(stub, sleeps, max_retries=2).embed(["a"])
    assert isinstance(info.value, RetryableError)
    assert len(stub.requests) == 3
    assert len(sleeps) == 2


def test_openai_gives_up_when_the_server_cannot_be_reached(sleeps: Sleeps) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OpenAIEmbeddings(SECRET, base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(EmbeddingServiceUnavailable, match="connection failed"):
        p.embed(["a"])
    assert len(sleeps) == 1


def test_openai_bad_key_is_a_configuration_error_that_never_shows_the_key(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stub.fail(401, message=f"Incorrect API key provided: {SECRET}.")
    p = provider(stub)
    with pytest.raises(ConfigurationError, match="rejected the API key") as info:
        p.embed(["a"])
    exc = info.value
    assert len(stub.requests) == 1  # not retried
    for text in (str(exc), repr(exc), repr(exc.args), repr(p), str(p), caplog.text):
        assert SECRET not in text
        assert SECRET[-10:] not in text
    assert exc.__cause__ is None
    assert exc.__suppress_context__


def test_openai_repr_hides_the_key_and_url_credentials() -> None:
    p = OpenAIEmbeddings(SECRET, base_url="http://user:hunter2@127.0.0.1:9/v1")
    assert SECRET not in repr(p)
    assert "hunter2" not in repr(p)
    assert "text-embedding-3-small" in repr(p)


def test_openai_bad_request_is_invalid_input(stub: Stub) -> None:
    stub.fail(400, message="This model's maximum context length is 8192 tokens")
    with pytest.raises(InvalidInput, match="maximum context length"):
        provider(stub).embed(["a"])
    assert len(stub.requests) == 1


def test_openai_wrong_dimension_in_the_response_is_an_error(stub: Stub) -> None:
    stub.dims = DIMS - 3
    with pytest.raises(ConfigurationError, match=f"{DIMS - 3}-dimensional.*dimensions={DIMS}"):
        provider(stub).embed(["a"])


def test_openai_satisfies_the_provider_protocol(stub: Stub) -> None:
    assert isinstance(provider(stub), EmbeddingProvider)


# --------------------------------------------------------------------------------------------
# LexicalHashingEmbeddings
# --------------------------------------------------------------------------------------------


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_lexical_vectors_are_unit_length_with_the_configured_dimensions() -> None:
    for dims in (16, 1536):
        [v] = LexicalHashingEmbeddings(dims).embed(["Contratos de aluguel em São Paulo"])
        assert len(v) == dims
        assert math.isclose(math.sqrt(cosine(v, v)), 1.0)


def test_lexical_same_text_gives_the_same_vector_in_another_process() -> None:
    text = "Relatório de auditoria, 2024: Ação nº 17"
    [here] = LexicalHashingEmbeddings().embed([text])
    code = (
        "import json, sys; from renum_db.embeddings import LexicalHashingEmbeddings as L;"
        "print(json.dumps(L().embed([sys.argv[1]])[0]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code, text], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert tuple(json.loads(out)) == here


def test_lexical_texts_sharing_words_are_more_similar_than_unrelated_ones() -> None:
    p = LexicalHashingEmbeddings()
    query, related, unrelated = p.embed(
        [
            "contract renewal deadline",
            "the deadline for the contract renewal is in March",
            "photosynthesis converts sunlight into chemical energy",
        ]
    )
    assert cosine(query, related) > 0.4
    assert cosine(query, related) > cosine(query, unrelated) + 0.3


def test_lexical_folds_case_and_accents() -> None:
    a, b = LexicalHashingEmbeddings().embed(["AÇÃO Judicial", "acao judicial"])
    assert a == b


def test_lexical_empty_text_gets_a_fixed_non_zero_vector() -> None:
    p = LexicalHashingEmbeddings(64)
    empty, blank, punct, word = p.embed(["", "   ", "?!", "word"])
    assert empty == blank == punct
    assert any(v != 0 for v in empty)
    assert math.isclose(cosine(empty, empty), 1.0)
    assert empty != word
    assert p.embed([""]) == [empty]


def test_lexical_empty_input_gives_no_vectors() -> None:
    assert LexicalHashingEmbeddings().embed([]) == []


def test_lexical_is_a_provider_named_honestly() -> None:
    p = LexicalHashingEmbeddings()
    assert isinstance(p, EmbeddingProvider)
    assert p.model == "renum-lexical-hash-v1"
    assert p.dimensions == 1536
    assert "not semantic" in (LexicalHashingEmbeddings.__doc__ or "").lower()


def test_provider_from_env_picks_openai_only_with_a_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embeddings, "_lexical_warning_logged", False)
    with caplog.at_level(logging.WARNING, logger="renum_db.embeddings"):
        assert isinstance(embedding_provider_from_env(), LexicalHashingEmbeddings)
        assert isinstance(embedding_provider_from_env(), LexicalHashingEmbeddings)
    warnings = [r for r in caplog.records if "not semantic" in r.getMessage()]
    assert len(warnings) == 1
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    chosen = embedding_provider_from_env()
    assert isinstance(chosen, OpenAIEmbeddings)
    assert SECRET not in repr(chosen)


# --------------------------------------------------------------------------------------------
# CachedEmbeddings
# --------------------------------------------------------------------------------------------


class CountingProvider:
    """A lexical provider that records every call."""

    def __init__(self, dimensions: int = 16, model: str | None = None) -> None:
        self.dimensions = dimensions
        self.model = model or f"counting-{uuid.uuid4().hex[:8]}"
        self._inner = LexicalHashingEmbeddings(dimensions, self.model)
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls.append(list(texts))
        return self._inner.embed(texts)


@pytest.fixture(scope="module")
def database(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=2) as db:
        yield db


def cache_rows(db_url: str, model: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select client_id, model, content_hash from public.embedding_cache"
            " where model = %s order by created_at, content_hash",
            (model,),
        ).fetchall()


def backend_cache(conn: psycopg.Connection[Any], fake: Any, client_id: Any) -> CachedEmbeddings:
    return CachedEmbeddings(fake, conn, client_id=client_id)


def test_cache_second_call_is_served_without_the_provider(
    database: Database, world: World, db_url: str
) -> None:
    fake = CountingProvider()
    a = world.a.client_id
    with database.as_service_role() as conn:
        first = backend_cache(conn, fake, a).embed(["alpha text", "beta text"])
    with database.as_service_role() as conn:
        cache = backend_cache(conn, fake, a)
        second = cache.embed(["beta text", "alpha text"])
        assert cache.embed(["alpha text"]) == [first[0]]
    assert fake.calls == [["alpha text", "beta text"]]
    assert second == [first[1], first[0]]
    rows = cache_rows(db_url, f"{fake.model}:16")
    assert [(r[0], bytes(r[2])) for r in rows] == sorted(
        [(a, hashlib.sha256(t.encode()).digest()) for t in ("alpha text", "beta text")],
        key=lambda r: r[1],
    )


def test_cache_hits_equal_the_misses_that_stored_them(database: Database, world: World) -> None:
    fake = CountingProvider(dimensions=32)
    with database.as_service_role() as conn:
        cache = backend_cache(conn, fake, world.a.client_id)
        missed = cache.embed(["Ação de cobrança", "x"])
        hit = cache.embed(["Ação de cobrança", "x"])
    assert len(fake.calls) == 1
    assert hit == missed
    assert all(len(v) == 32 for v in hit)


def test_cache_preserves_input_order_and_duplicates_calling_the_provider_once(
    database: Database, world: World
) -> None:
    fake = CountingProvider()
    texts = ["b", "a", "b", "c", "a", ""]
    with database.as_service_role() as conn:
        cache = backend_cache(conn, fake, world.a.client_id)
        cache.embed(["a"])
        result = cache.embed(texts)
    assert fake.calls == [["a"], ["b", "c", ""]]
    expected = dict(zip(["a", "b", "c", ""], fake._inner.embed(["a", "b", "c", ""]), strict=True))
    for text, vector in zip(texts, result, strict=True):
        assert all(
            math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7)
            for x, y in zip(vector, expected[text], strict=True)
        )
    assert result[0] == result[2]
    assert result[1] == result[4]


def test_cache_empty_input_touches_nothing(database: Database, world: World) -> None:
    fake = CountingProvider()
    with database.as_user(world.a.users["member"]) as conn:
        assert CachedEmbeddings(fake, conn).embed([]) == []
    assert fake.calls == []


def test_cache_is_per_tenant(database: Database, world: World, db_url: str) -> None:
    fake = CountingProvider()
    with database.as_service_role() as conn:
        backend_cache(conn, fake, world.a.client_id).embed(["shared text"])
        backend_cache(conn, fake, world.b.client_id).embed(["shared text"])
    with database.as_user(world.b.users["member"]) as conn:
        CachedEmbeddings(fake, conn).embed(["shared text"])  # B's own row: a hit
    assert fake.calls == [["shared text"], ["shared text"]]
    clients = {r[0] for r in cache_rows(db_url, f"{fake.model}:16")}
    assert clients == {world.a.client_id, world.b.client_id}


def test_cache_user_cannot_name_another_tenant(database: Database, world: World) -> None:
    fake = CountingProvider()
    with (
        database.as_user(world.a.users["member"]) as conn,
        pytest.raises(PermissionDenied, match="own client"),
    ):
        CachedEmbeddings(fake, conn, client_id=world.b.client_id)


def test_cache_a_dimension_change_never_reuses_old_vectors(
    database: Database, world: World
) -> None:
    small = CountingProvider(dimensions=16)
    large = CountingProvider(dimensions=24, model=small.model)
    with database.as_service_role() as conn:
        backend_cache(conn, small, world.a.client_id).embed(["same text"])
        [v] = backend_cache(conn, large, world.a.client_id).embed(["same text"])
    assert len(large.calls) == 1
    assert len(v) == 24


def test_cache_service_role_without_client_id_is_a_clear_error(database: Database) -> None:
    with (
        database.as_service_role() as conn,
        pytest.raises(InvalidInput, match="client_id") as info,
    ):
        CachedEmbeddings(CountingProvider(), conn)
    assert "service_role" in str(info.value)


def test_cache_a_user_reads_what_the_backend_stored(database: Database, world: World) -> None:
    fake = CountingProvider()
    with database.as_service_role() as conn:
        [stored] = backend_cache(conn, fake, world.a.client_id).embed(["backend text"])
    with database.as_user(world.a.users["viewer"]) as conn:
        cache = CachedEmbeddings(fake, conn)
        assert not cache.writes
        assert cache.embed(["backend text"]) == [stored]
    assert fake.calls == [["backend text"]]


def test_cache_a_user_computes_misses_without_storing_them(
    database: Database, world: World, db_url: str
) -> None:
    fake = CountingProvider()
    for _ in range(2):
        with database.as_user(world.a.users["member"]) as conn:
            [v] = CachedEmbeddings(fake, conn).embed(["user query"])
            assert len(v) == 16
    assert fake.calls == [["user query"], ["user query"]]
    assert cache_rows(db_url, f"{fake.model}:16") == []


def test_a_viewer_cannot_poison_the_cached_embedding_of_a_phrase(
    database: Database, world: World, db_url: str
) -> None:
    """The attack: a viewer pre-inserts the hash of `prazo do contrato` with a vector of their
    choice, hoping every member's search for that phrase uses it. The insert is refused and the
    member gets the provider's vector."""
    fake = CountingProvider()
    phrase = "prazo do contrato"
    evil = "[" + ",".join(["1"] + ["0"] * 15) + "]"
    with (
        pytest.raises(PermissionDenied),
        database.as_user(world.a.users["viewer"]) as conn,
    ):
        conn.execute(
            "insert into public.embedding_cache (client_id, model, content_hash, embedding) "
            "values (%s, %s, %s, %s::extensions.vector)",
            (world.a.client_id, f"{fake.model}:16", hashlib.sha256(phrase.encode()).digest(), evil),
        )
    assert cache_rows(db_url, f"{fake.model}:16") == []
    with database.as_user(world.a.users["member"]) as conn:
        [got] = CachedEmbeddings(fake, conn).embed([phrase])
    honest = fake._inner.embed([phrase])[0]
    assert all(
        math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7) for x, y in zip(got, honest, strict=True)
    )


def test_the_cache_refuses_a_vector_whose_dimensions_differ_from_its_model_key(
    database: Database, world: World
) -> None:
    with pytest.raises(CheckViolation) as info, database.as_service_role() as conn:
        conn.execute(
            "insert into public.embedding_cache (client_id, model, content_hash, embedding) "
            "values (%s, 'm:3', sha256('x'), '[1,2]')",
            (world.a.client_id,),
        )
    assert info.value.constraint == "embedding_cache_dimensions_chk"


def test_cache_with_a_user_of_no_client_is_refused(database: Database, world: World) -> None:
    with (
        database.as_user(world.no_client_user) as conn,
        pytest.raises(PermissionDenied, match="no active client"),
    ):
        CachedEmbeddings(CountingProvider(), conn)


def test_cache_wraps_the_openai_provider(database: Database, world: World, stub: Stub) -> None:
    p = provider(stub)
    with database.as_service_role() as conn:
        cache = CachedEmbeddings(p, conn, client_id=world.a.client_id)
        first = cache.embed(["one", "two", "one"])
        again = cache.embed(["two", "one"])
    assert stub.batch_sizes() == [2]
    assert again == [first[1], first[0]]
    assert cache.model == p.model
    assert cache.cache_model == f"text-embedding-3-small:{DIMS}"
