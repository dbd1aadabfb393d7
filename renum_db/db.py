"""Connections: a psycopg 3 pool and blocks run as a given user exactly as PostgREST runs a request.

PostgREST serves each request in one transaction in which it sets, transaction-locally, the `role`
named by the JWT and `request.jwt.claims` (the JWT payload as JSON). `act_as` does the same on any
connection, so the backend acting for a user goes through the very RLS policies the frontend does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, LiteralString, Self
from uuid import UUID

import psycopg
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from renum_db.config import Settings, load_settings
from renum_db.errors import ConfigurationError, ConnectionFailed, DatabaseError, wrap_errors

__all__ = [
    "API_ROLES",
    "AUTHENTICATOR_MAY_BECOME_SQL",
    "CONNECT_TIMEOUT",
    "RESET_STATEMENTS",
    "Database",
    "PoolStats",
    "act_as",
    "checked_conninfo",
    "configure_connection",
    "request_identity",
    "reset_connection",
    "user_claims",
]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT: Final = 3
"""Seconds libpq waits for a server before giving up (unless the URL sets connect_timeout):
a wrong or unreachable DATABASE_URL fails in seconds, with libpq's own reason."""

# The roles every Supabase project has. Any other `role` claim is accepted only if the database
# says the `authenticator` login may become it (a custom PostgREST role), as PostgREST would. This
# is a client-side guard only: what a role may do is decided in the database, by capability.
API_ROLES = frozenset({"anon", "authenticated", "service_role"})

AUTHENTICATOR_MAY_BECOME_SQL: Final = """
select exists (
  select from pg_catalog.pg_roles as r, pg_catalog.pg_roles as a
   where r.rolname = %s and a.rolname = 'authenticator'
     and r.oid <> a.oid
     and pg_catalog.pg_has_role(a.oid, r.oid, 'member')
)
"""

# Returned connections are reset: role, session settings (request.jwt.claims included), temporary
# tables, cursors, advisory locks, LISTEN, cached plans: nothing of one checkout reaches the next.
# This is DISCARD ALL without its DEALLOCATE ALL, which would pull psycopg's prepared statements
# from under it. `set session authorization default` also resets `role`, which RESET ALL skips.
RESET_STATEMENTS: tuple[LiteralString, ...] = (
    "set session authorization default",
    "reset all",
    "close all",
    "unlisten *",
    "select pg_catalog.pg_advisory_unlock_all()",
    "discard plans",
    "discard temp",
    "discard sequences",
)


def user_claims(
    user_id: UUID | str,
    *,
    role: str = "authenticated",
    email: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JWT payload Supabase issues for a signed-in user (the parts RLS reads)."""
    claims: dict[str, Any] = {"sub": str(user_id), "role": role, "aud": "authenticated"}
    if email is not None:
        claims["email"] = email
    if extra:
        claims.update(extra)
    return claims


def reset_connection(conn: Connection[Any]) -> None:
    """The pool's reset callback (the connection is idle): every session-level state goes."""
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        for statement in RESET_STATEMENTS:
            conn.execute(statement, prepare=False)
    finally:
        conn.autocommit = autocommit


def _raise_if_aborted(conn: Connection[Any]) -> None:
    """A block that swallowed a database error must not end as if its writes were saved."""
    if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        raise DatabaseError(
            "the transaction was aborted by an earlier error inside this block; nothing was saved",
            sqlstate="25P02",
        )


CURRENT_IDENTITY_SQL: Final = (
    "select current_setting('role'), coalesce(current_setting('request.jwt.claims', true), '')"
)
SET_IDENTITY_SQL: Final = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)"
)


def request_identity(claims: Mapping[str, Any] | None) -> tuple[str, str]:
    """The database role and the `request.jwt.claims` JSON PostgREST would set for `claims`
    (None means anon). A role outside API_ROLES must then pass AUTHENTICATOR_MAY_BECOME_SQL."""
    # Without a user JWT, PostgREST runs the request with the anon key's claims: role anon.
    claims = dict(claims) if claims else {"role": "anon"}
    role = str(claims.get("role") or "anon")
    return role, json.dumps(claims, separators=(",", ":"), default=str)


def unknown_role_message(role: str) -> str:
    return (
        f"role {role!r} is not an API role ({', '.join(sorted(API_ROLES))})"
        " nor a role the authenticator may become"
    )


@contextmanager
def act_as(conn: Connection[Any], claims: Mapping[str, Any] | None) -> Iterator[Connection[Any]]:
    """Run the block as PostgREST would for a request carrying `claims` (None means anon).

    Opens a transaction (a savepoint if one is already open), sets `role` and
    `request.jwt.claims` transaction-locally, and on success restores the previous values so an
    enclosing transaction continues as its own role. On error everything is rolled back.
    """
    role, payload = request_identity(claims)
    with wrap_errors(), conn.transaction():
        if role not in API_ROLES:
            allowed = conn.execute(AUTHENTICATOR_MAY_BECOME_SQL, (role,)).fetchone()
            if not (allowed and allowed[0]):
                raise ConfigurationError(unknown_role_message(role))
        previous = conn.execute(CURRENT_IDENTITY_SQL).fetchone()
        assert previous is not None
        conn.execute(SET_IDENTITY_SQL, (role, payload))
        yield conn
        _raise_if_aborted(conn)
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            conn.execute(SET_IDENTITY_SQL, previous)


def checked_conninfo(url: str, *, source: str = "the database URL") -> str:
    """`url` as a libpq conninfo with a connect_timeout, or ConfigurationError naming `source`
    (e.g. DATABASE_URL) when it is empty or malformed. The password never appears in a message."""
    if not url or not url.strip():
        raise ConfigurationError(f"{source} is empty: a database URL is required")
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"{source} is not a valid Postgres URL: {exc}") from None
    scheme = url.split("://", 1)[0] if "://" in url else None
    if scheme is not None and scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(f"{source} must start with postgresql://, not {scheme}://")
    for port in str(params.get("port") or "").split(","):
        if port and not port.isdigit():
            raise ConfigurationError(f"{source} has an invalid port {port!r}")
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return make_conninfo("", **params)


def configure_connection(conn: Connection[Any]) -> None:
    """Run once on each new pooled connection: register the pgvector adapters (when the
    extension exists; a database not yet migrated has none) so `Vector` parameters and vector
    columns work in every block without `register_vector`."""
    from renum_db.vector import ensure_vector_adapters

    try:
        ensure_vector_adapters(conn)
    except ConfigurationError:
        pass
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool (psycopg_pool's counters under readable names)."""

    size: int
    available: int
    in_use: int
    waiting: int
    min_size: int
    max_size: int
    requests: int
    connections_opened: int
    connection_errors: int

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Database:
    """A connection pool plus the ways to run work in it.

    Opening fails fast: a malformed URL raises ConfigurationError at once, an unreachable or
    refusing server ConnectionFailed within CONNECT_TIMEOUT seconds, both naming `source` (the
    variable the URL came from) and the real cause reported by libpq.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        source: str = "the database URL",
    ) -> None:
        conninfo = checked_conninfo(url, source=source)
        self.url = url
        self.source = source
        started = time.monotonic()
        # One direct connection first: the pool retries in the background and would only say
        # "pool initialization incomplete"; libpq's error says what is wrong.
        try:
            psycopg.connect(conninfo).close()
        except psycopg.Error as exc:
            cause = str(exc).strip() or type(exc).__name__
            raise ConnectionFailed(
                f"cannot connect to the database given by {source}: {cause}"
            ) from None
        self._pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": False},
            configure=configure_connection,
            reset=reset_connection,
            open=False,
            name="renum_db",
        )
        with wrap_errors():
            self._pool.open(wait=min_size > 0, timeout=10)
        log.info(
            "database pool open",
            extra={
                "source": source,
                "min_size": min_size,
                "max_size": max_size,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Self:
        """Connect to DATABASE_URL / SUPABASE_DB_URL, or start and use the embedded server."""
        settings = settings or load_settings()
        url = settings.database_url
        source = settings.database_url_source or "DATABASE_URL"
        if url is None:
            from renum_db.embedded import server_for

            url = server_for(settings.data_dir, settings.pg_version).url()
            source = f"the embedded PostgreSQL {settings.pg_version}"
        return cls(url, min_size=settings.pool_min, max_size=settings.pool_max, source=source)

    def stats(self) -> PoolStats:
        """Pool statistics: connections open, idle, in use, clients waiting, totals."""
        raw = self._pool.get_stats()
        size = raw.get("pool_size", 0)
        available = raw.get("pool_available", 0)
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

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        """A pooled connection as the connecting role; commits on success, rolls back on error."""
        with wrap_errors(), self._pool.connection() as conn:
            yield conn
            _raise_if_aborted(conn)

    @contextmanager
    def as_claims(self, claims: Mapping[str, Any] | None) -> Iterator[Connection[Any]]:
        """One transaction run as PostgREST would run a request carrying these JWT claims."""
        with self.connection() as conn, act_as(conn, claims):
            yield conn

    @contextmanager
    def as_user(
        self, user_id: UUID | str, *, email: str | None = None
    ) -> Iterator[Connection[Any]]:
        """One transaction as the signed-in user `user_id` (role `authenticated`, RLS applies)."""
        with self.as_claims(user_claims(user_id, email=email)) as conn:
            yield conn

    @contextmanager
    def as_service_role(self) -> Iterator[Connection[Any]]:
        """One transaction as `service_role` (the backend; bypasses RLS, as on Supabase)."""
        with self.as_claims({"role": "service_role"}) as conn:
            yield conn

    @contextmanager
    def as_anon(self) -> Iterator[Connection[Any]]:
        """One transaction as `anon` (no JWT)."""
        with self.as_claims(None) as conn:
            yield conn
