"""`renum-db mcp`: a Model Context Protocol server that lets one tenant's agents read its data.

Built on the official `mcp` SDK (`MCPServer`). Two transports:

- stdio (`--user <email|id>`): the server acts as that one user for its whole life. The user is
  resolved at start-up by `private.resolve_mcp_user` (the only question the login role may ask
  about users).
- streamable HTTP (`--http`): every request carries `Authorization: Bearer <Supabase access
  token>`, verified with SUPABASE_JWT_SECRET (HS256, exp, aud `authenticated`, role
  `authenticated`); the call runs as that token's user. Anything else gets HTTP 401.

Tools: `list_tables`, `list_columns(table)`, `search(query, k, hybrid, collection)` and
`query(sql)`. Every call runs exactly like a PostgREST request of the user (role
`authenticated`, `request.jwt.claims`), so RLS confines it to the user's tenant; `query` adds the
three layers described in `renum_db.mcp.sqlguard` and `renum_db.mcp.executor`. Every call is
audited (logger `renum_db.mcp.audit`, one JSON object per line; optionally the table
`public.mcp_audit_log`). Errors reach the agent as MCP tool errors with a short message; stack
traces and internal names stay in the server's log.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, Literal
from uuid import UUID

import anyio.to_thread
import psycopg
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from psycopg import Connection

from renum_db.db import user_claims
from renum_db.embeddings import EmbeddingProvider
from renum_db.errors import (
    ConfigurationError,
    ConnectionFailed,
    InvalidToken,
    RenumDBError,
    wrap_errors,
)
from renum_db.local_auth import LocalAuth
from renum_db.mcp import catalog
from renum_db.mcp import search as search_module
from renum_db.mcp.executor import Limits, as_request_user, check_login_role, run_read_only
from renum_db.mcp.sqlguard import QueryRefused, check_query

__all__ = [
    "MCP_ROLE",
    "AuditLog",
    "Caller",
    "LoginPool",
    "RenumMCP",
    "ServeOptions",
    "SupabaseTokenVerifier",
    "agent_message",
    "build_server",
    "http_caller",
    "mcp_database_url",
    "open_database",
    "resolve_user",
    "serve",
    "stdio_caller",
]

log = logging.getLogger(__name__)
audit_log = logging.getLogger("renum_db.mcp.audit")

Transport = Literal["stdio", "http"]
AGENT_HEADER: Final = "x-renum-agent-id"
EXECUTION_HEADER: Final = "x-renum-execution-id"

INSTRUCTIONS: Final = (
    "Read-only access to one tenant's Renum data (knowledge bases, documents, chunks, agents,"
    " executions, ...). Start with list_tables, then list_columns(table); use search for"
    " semantic/keyword retrieval over document chunks and query for one read-only SELECT."
    " Only rows of the signed-in user's tenant are visible."
)


class LoginPool:
    """The server's connections, logging in as the MCP role. Not `renum_db.db.Database`: its
    per-connection set-up reads schema `extensions`, which the MCP role has no usage on (it may
    only become anon or authenticated, which do)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        from psycopg_pool import ConnectionPool

        self._pool: ConnectionPool[Connection[Any]] = ConnectionPool(
            url, min_size=min_size, max_size=max_size, kwargs={"autocommit": False}, open=False
        )
        with wrap_errors():
            self._pool.open(wait=True, timeout=30)

    @contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        """A pooled connection; commits on success, rolls back on error."""
        with wrap_errors(), self._pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self._pool.close()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a tool call runs as."""

    user_id: UUID
    claims: Mapping[str, Any]
    transport: Transport
    agent_id: UUID | None = None
    execution_id: UUID | None = None


class ToolRefused(Exception):
    """A call the server refuses before touching the database."""


# --------------------------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class AuditLog:
    """Writes one record per tool call: always to the `renum_db.mcp.audit` logger (JSON), and
    to `public.mcp_audit_log` through `private.record_mcp_call` when `table` is set."""

    db: LoginPool
    table: bool = False
    failures: int = field(default=0)

    def record(
        self,
        caller: Caller,
        *,
        tool: str,
        statement: str | None,
        rows: int | None,
        duration_ms: int,
        outcome: str,
        message: str | None,
    ) -> None:
        entry = {
            "ts": datetime.now(UTC).isoformat(),
            "transport": caller.transport,
            "user_id": str(caller.user_id),
            "agent_id": str(caller.agent_id) if caller.agent_id else None,
            "tool": tool,
            "statement": statement,
            "rows": rows,
            "duration_ms": duration_ms,
            "outcome": outcome,
            "message": message,
        }
        audit_log.info(json.dumps(entry, ensure_ascii=False))
        if not self.table:
            return
        try:
            with self.db.connection() as conn:
                conn.execute(
                    "select private.record_mcp_call(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        caller.user_id,
                        caller.transport,
                        tool,
                        statement,
                        rows,
                        duration_ms,
                        outcome,
                        message,
                        caller.agent_id,
                    ),
                )
        except RenumDBError:
            self.failures += 1
            log.exception("could not write the audit row for a %s call", tool)


# --------------------------------------------------------------------------------------------
# Errors as the agent sees them
# --------------------------------------------------------------------------------------------

_INTERNAL_NAME = re.compile(
    r"\b(?:private|auth|renum_migrations|pg_toast|supabase_\w+|storage)\.\"?\w+\"?"
)


def _scrub(text: str) -> str:
    text = _INTERNAL_NAME.sub("an internal object", text)
    return re.sub(r"\brenum_mcp\b", "the server's role", text)


def agent_message(exc: BaseException, limits: Limits) -> tuple[str, str]:
    """(outcome, message) for an exception raised by a tool; never a traceback."""
    if isinstance(exc, QueryRefused | ToolRefused):
        return "refused", f"refused: {exc}"
    if isinstance(exc, ConnectionFailed):
        return "error", "the database is unavailable right now; try again later"
    if isinstance(exc, RenumDBError):
        state = exc.sqlstate
        base = str(exc.args[0]) if exc.args else type(exc).__name__
        if state:  # the database's words may name internals; ours (no SQLSTATE) do not
            base = _scrub(base)
        if state == "57014":
            return "error", (
                f"the statement was cancelled after {limits.statement_timeout_ms} ms"
                " (statement_timeout); simplify it or add a limit"
            )
        if state == "25006":
            return "refused", "refused by the database: this session is read-only"
        if state == "42501":
            if not base.startswith("permission denied"):
                base = f"permission denied: {base}"
            return "error", base
        if state:
            return "error", f"database error {state}: {base}"
        return "error", base
    return "error", "internal error (the server's log has the details)"


# --------------------------------------------------------------------------------------------
# The tools, as plain synchronous functions
# --------------------------------------------------------------------------------------------


class RenumMCP:
    """The four tools over a connection pool that logs in as the MCP role."""

    def __init__(
        self,
        db: LoginPool,
        provider: EmbeddingProvider,
        *,
        limits: Limits | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.db = db
        self.provider = provider
        self.limits = limits or Limits()
        self.audit = audit or AuditLog(db)

    @contextmanager
    def _read_as(self, caller: Caller) -> Iterator[Connection[Any]]:
        """A read-only request of the caller, always rolled back."""
        with self.db.connection() as conn, wrap_errors(), conn.transaction(force_rollback=True):
            conn.execute("set transaction read only")
            conn.execute(
                "select pg_catalog.set_config('statement_timeout', %s, true)",
                (f"{self.limits.statement_timeout_ms}ms",),
            )
            with as_request_user(conn, caller.claims):
                yield conn

    def _audited(
        self,
        caller: Caller,
        tool: str,
        statement: str | None,
        work: Callable[[], tuple[dict[str, Any], int | None]],
    ) -> dict[str, Any]:
        started = time.monotonic()
        try:
            result, rows = work()
        except Exception as exc:
            outcome, message = agent_message(exc, self.limits)
            if outcome == "error" and not isinstance(exc, RenumDBError):
                log.exception("%s failed", tool)
            self.audit.record(
                caller,
                tool=tool,
                statement=statement,
                rows=None,
                duration_ms=int((time.monotonic() - started) * 1000),
                outcome=outcome,
                message=message,
            )
            raise ToolError(message) from None
        self.audit.record(
            caller,
            tool=tool,
            statement=statement,
            rows=rows,
            duration_ms=int((time.monotonic() - started) * 1000),
            outcome="ok",
            message=None,
        )
        return result

    def list_tables(self, caller: Caller) -> dict[str, Any]:
        def work() -> tuple[dict[str, Any], int]:
            with self._read_as(caller) as conn:
                tables = catalog.list_tables(conn)
            return {"tables": [t.as_dict() for t in tables]}, len(tables)

        return self._audited(caller, "list_tables", None, work)

    def list_columns(self, caller: Caller, table: str) -> dict[str, Any]:
        def work() -> tuple[dict[str, Any], int]:
            with self._read_as(caller) as conn:
                info, columns = catalog.list_columns(conn, table)
            return {
                "table": info.name,
                "kind": info.kind,
                "comment": info.comment,
                "columns": [c.as_dict() for c in columns],
            }, len(columns)

        return self._audited(caller, "list_columns", table, work)

    def search(
        self, caller: Caller, query: str, k: int, hybrid: bool, collection: str | None
    ) -> dict[str, Any]:
        def work() -> tuple[dict[str, Any], int]:
            with self.db.connection() as conn, as_request_user(conn, caller.claims):
                conn.execute(
                    "select pg_catalog.set_config('statement_timeout', %s, true)",
                    (f"{self.limits.statement_timeout_ms}ms",),
                )
                results = search_module.search(
                    conn,
                    self.provider,
                    query=query,
                    k=k,
                    hybrid=hybrid,
                    collection=collection,
                    agent_id=caller.agent_id,
                    execution_id=caller.execution_id,
                )
            return {"results": results, "hybrid": hybrid}, len(results)

        return self._audited(caller, "search", query, work)

    def query(self, caller: Caller, sql_text: str) -> dict[str, Any]:
        def work() -> tuple[dict[str, Any], int]:
            checked = check_query(sql_text)  # layer 1
            with self.db.connection() as conn:  # layer 3: the pool's login role
                result = run_read_only(  # layer 2
                    conn, checked.sql, claims=caller.claims, limits=self.limits
                )
            return result.as_dict(), result.row_count

        return self._audited(caller, "query", sql_text, work)


# --------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------


def resolve_user(db: LoginPool, identifier: str) -> UUID:
    """The id of the user `identifier` (email or id) names, if that user can sign in."""
    with db.connection() as conn:
        row = conn.execute("select private.resolve_mcp_user(%s)", (identifier,)).fetchone()
    if row is None or row[0] is None:
        raise ConfigurationError(
            f"no user {identifier!r} who can sign in (unknown, deleted, banned or without a"
            " profile)"
        )
    return UUID(str(row[0]))


class SupabaseTokenVerifier:
    """The SDK's TokenVerifier for Supabase access tokens (HS256 with the project's secret).
    Only user tokens (role `authenticated`, with `sub`) are accepted: the anon and
    service_role keys are refused, as the MCP role cannot become service_role anyway."""

    def __init__(self, auth: LocalAuth) -> None:
        self._auth = auth

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = self._auth.verify(token)
        except InvalidToken as exc:
            log.info("refused a bearer token: %s", exc)
            return None
        if claims.get("role") != "authenticated":
            log.info("refused a bearer token with role %r", claims.get("role"))
            return None
        try:
            UUID(str(claims.get("sub")))
        except ValueError:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or "supabase"),
            scopes=[],
            expires_at=int(claims["exp"]) if "exp" in claims else None,
            subject=str(claims["sub"]),
            claims=claims,
        )


def _optional_uuid(value: str | None, what: str) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise ToolRefused(f"the {what} is not a uuid") from None


def http_caller(ctx: Context[Any, Any]) -> Caller:
    """The caller of an HTTP request: the verified token's claims, plus the optional agent
    and execution headers (used only to record search usage)."""
    request = ctx.request_context.request
    scope = getattr(request, "scope", None) or {}
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser) or not user.access_token.claims:
        raise ToolRefused("no verified access token on this request")
    claims = dict(user.access_token.claims)
    headers = getattr(request, "headers", {}) or {}
    return Caller(
        user_id=UUID(str(claims["sub"])),
        claims=claims,
        transport="http",
        agent_id=_optional_uuid(headers.get(AGENT_HEADER), AGENT_HEADER),
        execution_id=_optional_uuid(headers.get(EXECUTION_HEADER), EXECUTION_HEADER),
    )


def stdio_caller(
    user_id: UUID, *, agent_id: UUID | None = None, execution_id: UUID | None = None
) -> Callable[[Context[Any, Any]], Caller]:
    caller = Caller(
        user_id=user_id,
        claims=user_claims(user_id),
        transport="stdio",
        agent_id=agent_id,
        execution_id=execution_id,
    )
    return lambda _ctx: caller


# --------------------------------------------------------------------------------------------
# The MCP server
# --------------------------------------------------------------------------------------------

_READ: Final = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_SEARCH: Final = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)


def build_server(
    app: RenumMCP,
    identify: Callable[[Context[Any, Any]], Caller],
    *,
    auth: AuthSettings | None = None,
    token_verifier: SupabaseTokenVerifier | None = None,
) -> MCPServer[Any]:
    """The MCPServer with the four tools; `identify` turns a request into its caller."""
    server: MCPServer[Any] = MCPServer(
        "renum-db",
        instructions=INSTRUCTIONS,
        auth=auth,
        token_verifier=token_verifier,
        log_level="WARNING",
    )

    async def call(ctx: Context[Any, Any], fn: Callable[[Caller], dict[str, Any]]) -> Any:
        try:
            caller = identify(ctx)
        except ToolRefused as exc:
            raise ToolError(f"refused: {exc}") from None
        return await anyio.to_thread.run_sync(partial(fn, caller))

    @server.tool(annotations=_READ)
    async def list_tables(ctx: Context[Any, Any]) -> dict[str, Any]:
        """List the tables and views you can read (schema public), with their descriptions.
        Only your own organisation's rows are ever visible in them."""
        result: dict[str, Any] = await call(ctx, app.list_tables)
        return result

    @server.tool(annotations=_READ)
    async def list_columns(table: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        """List the readable columns of one table or view from list_tables: name, type,
        nullable and description."""
        result: dict[str, Any] = await call(ctx, lambda c: app.list_columns(c, table))
        return result

    @server.tool(annotations=_SEARCH)
    async def search(
        query: str,
        ctx: Context[Any, Any],
        k: int = 5,
        hybrid: bool = True,
        collection: str | None = None,
    ) -> dict[str, Any]:
        """Search your organisation's document chunks. `query`: what to look for, in natural
        language; `k`: how many chunks (1-50, default 5); `hybrid`: true (default) fuses keyword
        and semantic ranking, false is semantic only; `collection`: a knowledge collection name
        or id to search in (default: all). Returns chunks best first with content, similarity,
        document and collection ids and the document name."""
        result: dict[str, Any] = await call(
            ctx, lambda c: app.search(c, query, k, hybrid, collection)
        )
        return result

    @server.tool(annotations=_READ)
    async def query(sql: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        """Run ONE read-only PostgreSQL SELECT over the tables from list_tables (schema public;
        unqualified names are fine) and get columns and rows back. Writes, several statements,
        SELECT INTO, FOR UPDATE/SHARE, system catalogs and functions outside a safe allowlist
        are refused. Results are capped in rows and size (`truncated` says so) and in time."""
        result: dict[str, Any] = await call(ctx, lambda c: app.query(c, sql))
        return result

    return server


def open_database(url: str, *, pool_max: int = 10) -> LoginPool:
    """The pool of the MCP server, after checking layer 3 on its login role."""
    try:
        psycopg.connect(url).close()  # libpq's own words for a wrong URL or a refused login
    except psycopg.Error as exc:
        raise ConnectionFailed(f"cannot connect as the MCP role: {exc}".strip()) from None
    db = LoginPool(url, min_size=1, max_size=pool_max)
    try:
        with db.connection() as conn:
            check_login_role(conn)
    except BaseException:
        db.close()
        raise
    return db


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------

MCP_ROLE: Final = "renum_mcp"


def mcp_database_url(base_url: str | None = None) -> str:
    """RENUM_MCP_DATABASE_URL, or else `base_url` (DATABASE_URL / the embedded server) logging
    in as renum_mcp without a password (enough for a local server that trusts local logins)."""
    import os

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    explicit = os.environ.get("RENUM_MCP_DATABASE_URL", "").strip()
    if explicit:
        return explicit
    if base_url is None:
        from renum_db.config import load_settings
        from renum_db.embedded import server_for

        settings = load_settings()
        base_url = settings.database_url or server_for(settings.data_dir, settings.pg_version).url()
    params = conninfo_to_dict(base_url)
    params.pop("password", None)
    params["user"] = MCP_ROLE
    return make_conninfo(**params)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    user: str | None = None
    http: bool = False
    host: str = "127.0.0.1"
    port: int = 8765
    agent_id: UUID | None = None
    execution_id: UUID | None = None
    audit_table: bool = False
    public_url: str | None = None
    limits: Limits = field(default_factory=Limits)


def serve(options: ServeOptions, *, database_url: str | None = None) -> None:
    """Check the login role, resolve the identity, and serve until stopped."""
    from renum_db.embeddings import embedding_provider_from_env

    if options.http == (options.user is not None):
        raise ConfigurationError("give exactly one of --user (stdio) or --http")
    db = open_database(database_url or mcp_database_url())
    try:
        provider = embedding_provider_from_env()
        app = RenumMCP(
            db, provider, limits=options.limits, audit=AuditLog(db, table=options.audit_table)
        )
        if options.user is not None:
            user_id = resolve_user(db, options.user)
            server = build_server(
                app,
                stdio_caller(user_id, agent_id=options.agent_id, execution_id=options.execution_id),
            )
            log.info("serving user %s over stdio", user_id)
            server.run("stdio")
            return
        import os

        auth = LocalAuth.from_env()
        supabase_url = os.environ.get("SUPABASE_URL", "").strip().rstrip("/")
        resource = options.public_url or f"http://{options.host}:{options.port}/mcp"
        settings = AuthSettings(
            issuer_url=f"{supabase_url}/auth/v1" if supabase_url else auth.issuer,  # type: ignore[arg-type]
            resource_server_url=resource,  # type: ignore[arg-type]
            validate_token_resource=False,  # the verifier checks aud itself
        )
        server = build_server(
            app, http_caller, auth=settings, token_verifier=SupabaseTokenVerifier(auth)
        )
        log.info("serving streamable HTTP on %s", resource)
        server.run("streamable-http", host=options.host, port=options.port, stateless_http=True)
    finally:
        db.close()
