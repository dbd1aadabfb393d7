"""`Database` opens fast or fails fast: a malformed, refusing or silent DATABASE_URL raises a
renum_db error naming the variable and libpq's reason within seconds (the bound asserted is the
promise made in the README, 5 s, not a speed measurement)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from renum_db.config import load_settings
from renum_db.db import Database
from renum_db.errors import ConfigurationError, ConnectionFailed

PROMISE = 5.0


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("DATABASE_URL", "SUPABASE_DB_URL", "RENUM_POOL_MIN", "RENUM_POOL_MAX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a firewall-like black hole)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_from_env() -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises((ConfigurationError, ConnectionFailed)) as info:
        Database.from_settings(load_settings(dotenv=False))
    return info.value, time.monotonic() - started


def test_a_malformed_url_raises_configuration_error_naming_the_variable(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("DATABASE_URL", "postgresql://user:secret@host:notaport/db")
    exc, _ = open_from_env()
    assert isinstance(exc, ConfigurationError)
    assert "DATABASE_URL" in str(exc)
    assert "secret" not in str(exc)


def test_a_refused_connection_raises_connection_failed_with_the_cause(
    env: pytest.MonkeyPatch, closed_port: int
) -> None:
    env.setenv("SUPABASE_DB_URL", f"postgresql://postgres:secret@127.0.0.1:{closed_port}/x")
    exc, elapsed = open_from_env()
    assert isinstance(exc, ConnectionFailed)
    assert "SUPABASE_DB_URL" in str(exc)
    assert "refused" in str(exc).lower()
    assert "secret" not in str(exc)
    assert elapsed < PROMISE


def test_a_server_that_never_answers_fails_within_five_seconds(
    env: pytest.MonkeyPatch, silent_server: int
) -> None:
    env.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{silent_server}/x")
    exc, elapsed = open_from_env()
    assert isinstance(exc, ConnectionFailed)
    assert "DATABASE_URL" in str(exc)
    assert "timeout" in str(exc).lower()
    assert elapsed < PROMISE


def test_an_empty_url_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Database("   ")


def test_a_reachable_url_opens_and_reports_pool_statistics(db_url: str) -> None:
    with Database(db_url, min_size=1, max_size=2) as db:
        with db.connection() as conn:
            conn.execute("select 1")
            assert db.stats().in_use == 1
        returned = returned_to_pool(db)  # the pool resets a returned connection in a worker
        stats = db.stats()
    assert returned
    assert (stats.min_size, stats.max_size) == (1, 2)
    assert stats.size >= 1
    assert stats.requests >= 1


def returned_to_pool(db: Database, timeout: float = 10.0) -> bool:
    """Whether every connection is back in the pool within `timeout` (the reset runs in a
    background worker after the block ends)."""
    deadline = time.monotonic() + timeout
    while db.stats().in_use:
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.01)
    return True
