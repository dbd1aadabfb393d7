"""Connections: a psycopg 3 pool and blocks run as a given user exactly as PostgREST runs a request.

PostgREST serves each request in one transaction in which it sets, transaction-locally, the `role`
named by the JWT and `request.jwt.claims` (the JWT payload as JSON). `act_as` does the same on any
connection, so the backend acting for a user goes through the very RLS policies the frontend does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, LiteralString, Self
from uuid import UUID

import psycopg
from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from renum_db.config import Settings, load_settings
from renum_db.errors import ConfigurationError, DatabaseError, wrap_errors

__all__ = ["API_ROLES", "Database", "act_as", "reset_connection", "user_claims"]

# The roles every Supabase project has. Any other `role` claim is accepted only if the database
# says the `authenticator` login may become it (a custom PostgREST role), as PostgREST would. This
# is a client-side guard only: what a role may do is decided in the database, by capability.
API_ROLES = frozenset({"anon", "authenticated", "service_role"})

_AUTHENTICATOR_MAY_BECOME = """
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
_RESET: tuple[LiteralString, ...] = (
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
        for statement in _RESET:
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


@contextmanager
def act_as(conn: Connection[Any], claims: Mapping[str, Any] | None) -> Iterator[Connection[Any]]:
    """Run the block as PostgREST would for a request carrying `claims` (None means anon).

    Opens a transaction (a savepoint if one is already open), sets `role` and
    `request.jwt.claims` transaction-locally, and on success restores the previous values so an
    enclosing transaction continues as its own role. On error everything is rolled back.
    """
    # Without a user JWT, PostgREST runs the request with the anon key's claims: role anon.
    claims = dict(claims) if claims else {"role": "anon"}
    role = str(claims.get("role") or "anon")
    payload = json.dumps(claims, separators=(",", ":"), default=str)
    with wrap_errors(), conn.transaction():
        if role not in API_ROLES:
            allowed = conn.execute(_AUTHENTICATOR_MAY_BECOME, (role,)).fetchone()
            if not (allowed and allowed[0]):
                raise ConfigurationError(
                    f"role {role!r} is not an API role ({', '.join(sorted(API_ROLES))})"
                    " nor a role the authenticator may become"
                )
        previous = conn.execute(
            "select current_setting('role'),"
            " coalesce(current_setting('request.jwt.claims', true), '')"
        ).fetchone()
        assert previous is not None
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (role, payload),
        )
        yield conn
        _raise_if_aborted(conn)
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            conn.execute(
                "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                previous,
            )


class Database:
    """A connection pool plus the ways to run work in it."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        if not url:
            raise ConfigurationError("a database URL is required")
        self.url = url
        self._pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": False},
            reset=reset_connection,
            open=False,
            name="renum_db",
        )
        with wrap_errors():
            self._pool.open(wait=min_size > 0, timeout=30)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Self:
        """Connect to DATABASE_URL / SUPABASE_DB_URL, or start and use the embedded server."""
        settings = settings or load_settings()
        url = settings.database_url
        if url is None:
            from renum_db.embedded import server_for

            url = server_for(settings.data_dir, settings.pg_version).url()
        return cls(url, min_size=settings.pool_min, max_size=settings.pool_max)

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
