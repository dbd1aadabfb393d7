"""Test harness: one embedded PostgreSQL per run (the version from RENUM_PG_VERSION), shaped like
hosted Supabase (superuser supabase_admin; everything else as the non-superuser `postgres`), a
template database built once by the real migration command as `postgres`, and a fresh copy of it
per test module. Databases are made and dropped by pytest-postgresql's DatabaseJanitor against the
embedded server (see docs/testing.md). Tests that write use the `conn` fixture: one transaction,
always rolled back.

A custom PostgREST role (CUSTOM_API_ROLE: inherits `authenticated`, granted to `authenticator`, as
Supabase documents custom roles) is created once per run, as `postgres`. It is an actor of the
isolation matrix and of every function's actor matrix; with RENUM_TEST_API_ROLE=custom the whole
suite runs every signed-in user's request under it instead of `authenticated` (`make test` does
one such run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pytest_postgresql.executors import NoopExecutor

from renum_db import migrations
from renum_db.embedded import EmbeddedServer, server_for
from tests.support import World, create_custom_api_role, janitor, seed_world, url_for

ROOT = Path(__file__).resolve().parent.parent
PG_VERSION = int(os.environ.get("RENUM_PG_VERSION", "16"))
TEMPLATE = f"renum_template_{os.getpid()}"  # per run: concurrent runs never collide


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedServer]:
    data_dir = Path(os.environ.get("RENUM_TEST_DATA_DIR") or ROOT / ".renum")
    server = server_for(data_dir, PG_VERSION, name="test-pg", ephemeral=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin_url(pg_server: EmbeddedServer) -> str:
    """Maintenance URL (database `postgres`) as the hosted-shaped, NON-superuser `postgres`:
    it creates and drops the test databases (CREATEDB) and owns them."""
    return pg_server.url("postgres")


@pytest.fixture(scope="session")
def superuser_url(pg_server: EmbeddedServer) -> str:
    """The cluster superuser supabase_admin: only for what Supabase's own bootstrap does."""
    return pg_server.admin_url("postgres")


@pytest.fixture(scope="session")
def pg_noproc(admin_url: str) -> NoopExecutor:
    """pytest-postgresql's no-process executor for the embedded server, as `postgres`."""
    info = conninfo_to_dict(admin_url)
    return NoopExecutor(
        host=str(info["host"]),
        port=int(info.get("port") or 5432),
        user=str(info["user"]),
        options="",
        dbname=TEMPLATE,
        maintenance_dbname="postgres",
    )


def _migrate(*, host: str, port: int, user: str, dbname: str, **_: Any) -> None:
    """pytest-postgresql loader: the real migration command, as `user` (shim as supabase_admin)."""
    migrations.apply(f"postgresql://{user}@/{dbname}?host={host}&port={port}", shim="always")


@pytest.fixture(scope="session")
def template_url(admin_url: str) -> Iterator[str]:
    """The template: an empty database migrated by the real command (shim first)."""
    jan = janitor(admin_url, TEMPLATE, as_template=True)
    jan.drop()
    with jan:
        jan.load(_migrate)
        create_custom_api_role(url_for(admin_url, TEMPLATE))
        yield url_for(admin_url, TEMPLATE)


@pytest.fixture(scope="module")
def db_url(admin_url: str, template_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh copy of the migrated template for this module."""
    name = f"t_{request.module.__name__.rsplit('.', 1)[-1]}_{uuid.uuid4().hex[:8]}"[:63]
    with janitor(admin_url, name, template=TEMPLATE):
        yield url_for(admin_url, name)


@pytest.fixture(scope="module")
def world(db_url: str) -> World:
    return seed_world(db_url)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as `postgres` (not a superuser; BYPASSRLS, like hosted Supabase's postgres)
    inside one transaction that is always rolled back."""
    with psycopg.connect(db_url) as c, c.transaction(force_rollback=True):
        yield c


@pytest.fixture
def scratch_url(admin_url: str) -> Iterator[str]:
    """An empty, unmigrated database for migration tests."""
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    with janitor(admin_url, name):
        yield url_for(admin_url, name)


__all__ = ["url_for"]
