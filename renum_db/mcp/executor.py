"""Layers 2 and 3 of the MCP `query` tool: how a checked statement runs, and as whom.

Layer 2, `run_read_only`: the statement runs in a `READ ONLY` transaction that is always rolled
back (so even a `set_config(..., false)` does not outlive it), with a transaction-local
`statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`, `search_path =
public, extensions`, as the user exactly like a PostgREST request (role `authenticated` and
`request.jwt.claims`, so RLS applies; `as_request_user`). It is wrapped as

    select left(row_to_json(r.*)::text, <max chars + 1>) from (<statement>) as r limit <rows + 1>

and sent through the extended protocol, which refuses more than one command. The row cap is
therefore enforced by the server (it stops producing rows), each row reaches Python as one bounded
JSON text, and the sum of those texts is capped too: past either cap the result is cut and says
so. Nothing here trusts layer 1; tests call it with statements layer 1 would refuse.

Layer 3, `check_login_role`: the connection's login role must be neither a superuser nor able to
bypass RLS, create roles or databases, or replicate, and be granted no role but `anon` and
`authenticated`; so nothing run on it can `reset role` or `set role` into more rights. The
server refuses to start otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import Connection, sql

from renum_db.errors import ConfigurationError, wrap_errors

__all__ = [
    "ALLOWED_MEMBERSHIPS",
    "Limits",
    "QueryResult",
    "as_request_user",
    "check_login_role",
    "run_read_only",
]

ALLOWED_MEMBERSHIPS: Final = frozenset({"anon", "authenticated"})


@contextmanager
def as_request_user(conn: Connection[Any], claims: Mapping[str, Any]) -> Iterator[None]:
    """Like `renum_db.db.act_as`, but only into the roles the MCP login role can become: the
    claims' role must be `authenticated` (or `anon`). Transaction-local role and
    `request.jwt.claims` inside a savepoint (or a transaction), exactly as PostgREST sets them."""
    role = str(claims.get("role") or "")
    if role not in ALLOWED_MEMBERSHIPS:
        raise ConfigurationError(f"the MCP server acts only as anon or authenticated, not {role!r}")
    payload = json.dumps(dict(claims), separators=(",", ":"), default=str)
    with wrap_errors(), conn.transaction():
        conn.execute(
            "select pg_catalog.set_config('role', %s, true),"
            " pg_catalog.set_config('request.jwt.claims', %s, true)",
            (role, payload),
        )
        yield


@dataclass(frozen=True, slots=True)
class Limits:
    """What one `query` call may cost."""

    statement_timeout_ms: int = 5000
    max_rows: int = 500
    max_chars: int = 256_000  # sum of the rows' JSON texts

    def __post_init__(self) -> None:
        if not 1 <= self.statement_timeout_ms <= 600_000:
            raise ConfigurationError("statement timeout must be between 1 ms and 10 minutes")
        if not 1 <= self.max_rows <= 100_000:
            raise ConfigurationError("the row cap must be between 1 and 100000")
        if not 100 <= self.max_chars <= 50_000_000:
            raise ConfigurationError("the result-size cap must be between 100 and 50000000")


@dataclass(slots=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    truncated_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": self.row_count,
            "truncated": self.truncated,
        }
        if self.truncated_reason:
            out["truncated_reason"] = self.truncated_reason
        return out


_ALIAS: Final = sql.Identifier("renum_mcp_row")


class _Object(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs: a row may repeat a column name."""


def _plain(value: Any) -> Any:
    if isinstance(value, _Object):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def run_read_only(
    conn: Connection[Any],
    statement: str,
    *,
    claims: Mapping[str, Any],
    limits: Limits,
) -> QueryResult:
    """Run one SELECT `statement` as the user of `claims`, read-only, with `limits`.

    Database errors surface as renum_db exceptions (statement_timeout: 57014, a write:
    25006, a privilege: 42501). The transaction is always rolled back.
    """
    inner = sql.SQL(statement)  # checked and deparsed by layer 1
    wrapped = sql.SQL(
        "select pg_catalog.left(pg_catalog.row_to_json({alias}.*)::text, {chars})"
        " from ({inner}\n) as {alias} limit {rows}"
    ).format(
        alias=_ALIAS,
        chars=sql.Literal(limits.max_chars + 1),
        inner=inner,
        rows=sql.Literal(limits.max_rows + 1),
    )
    result = QueryResult(columns=[], rows=[])
    with wrap_errors(), conn.transaction(force_rollback=True):
        conn.execute("set transaction read only")
        conn.execute(
            "select pg_catalog.set_config('statement_timeout', %s, true),"
            " pg_catalog.set_config('lock_timeout', %s, true),"
            " pg_catalog.set_config('idle_in_transaction_session_timeout', %s, true),"
            " pg_catalog.set_config('search_path', 'public, extensions', true)",
            (
                f"{limits.statement_timeout_ms}ms",
                f"{min(limits.statement_timeout_ms, 1000)}ms",
                f"{limits.statement_timeout_ms * 2}ms",
            ),
        )
        with as_request_user(conn, claims), conn.cursor() as cur:
            # binary=True forces the extended protocol: one command, never a script.
            cur.execute(wrapped, binary=True, prepare=False)
            used = 0
            for (text,) in cur:
                if len(result.rows) >= limits.max_rows:
                    result.truncated = True
                    result.truncated_reason = f"more than {limits.max_rows} rows"
                    break
                used += len(text)
                if used > limits.max_chars:
                    result.truncated = True
                    result.truncated_reason = f"result larger than {limits.max_chars} characters"
                    break
                pairs: _Object = json.loads(text, object_pairs_hook=_Object)
                if not result.columns:
                    result.columns = [name for name, _ in pairs]
                result.rows.append([_plain(value) for _, value in pairs])
            if not result.columns:
                cur.execute(
                    sql.SQL("select * from ({inner}\n) as {alias} limit 0").format(
                        inner=inner, alias=_ALIAS
                    ),
                    binary=True,
                    prepare=False,
                )
                result.columns = [c.name for c in cur.description or ()]
    return result


@dataclass(frozen=True, slots=True)
class LoginRole:
    name: str
    problems: tuple[str, ...]


_ROLE_QUERY: Final = """
select r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
       coalesce((select pg_catalog.array_agg(g.rolname::text order by g.rolname)
                   from pg_catalog.pg_auth_members as m
                   join pg_catalog.pg_roles as g on g.oid = m.roleid
                  where m.member = r.oid), '{}'),
       coalesce((select pg_catalog.array_agg(g.rolname::text order by g.rolname)
                   from pg_catalog.pg_roles as g
                  where g.rolname in ('service_role', 'postgres', 'supabase_admin',
                                      'authenticator', 'pg_read_all_data', 'pg_write_all_data',
                                      'pg_read_server_files', 'pg_execute_server_program')
                    and pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')), '{}')
  from pg_catalog.pg_roles as r
 where r.rolname = session_user
"""


def inspect_login_role(conn: Connection[Any]) -> LoginRole:
    """The session's login role and what makes it unfit for the MCP server (if anything)."""
    with wrap_errors():
        row = conn.execute(_ROLE_QUERY).fetchone()
        conn.rollback()
    assert row is not None
    name, superuser, bypassrls, createrole, createdb, replication, granted, powerful = row
    problems = [
        attr
        for attr, flag in (
            ("superuser", superuser),
            ("bypassrls", bypassrls),
            ("createrole", createrole),
            ("createdb", createdb),
            ("replication", replication),
        )
        if flag
    ]
    problems += [f"member of {g}" for g in granted if g not in ALLOWED_MEMBERSHIPS]
    problems += [f"member of {g}" for g in powerful if f"member of {g}" not in problems]
    if "authenticated" not in granted:
        problems.append("not a member of authenticated (cannot act as a user)")
    return LoginRole(name=str(name), problems=tuple(problems))


def check_login_role(conn: Connection[Any]) -> str:
    """Layer 3 at start-up: raise ConfigurationError unless the login role can only become
    anon and authenticated. Returns the role's name."""
    role = inspect_login_role(conn)
    if role.problems:
        raise ConfigurationError(
            f"the MCP server must log in as a role that can only become anon and authenticated"
            f" (migration 0016 creates renum_mcp); {role.name} is: {', '.join(role.problems)}"
        )
    return role.name


def is_statement_timeout(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.errors.QueryCanceled) or (
        getattr(exc, "sqlstate", None) == "57014"
    )
