"""A local endpoint that speaks PostgREST's RPC protocol, running the real SQL on the test database.

What it does as PostgREST does (v12, the version Supabase runs):
- `POST /rest/v1/rpc/<function>` with a JSON object of named arguments; the arguments are read
  with `jsonb_to_record` typed by the function's catalog signature and passed by name, so
  omitted arguments take their SQL defaults;
- the JWT comes from `Authorization: Bearer` (else the `apikey` header, as Supabase's gateway
  forwards it), is verified with the project secret (HS256, exp, aud for user tokens), and its
  `role` claim becomes the transaction-local `role`, the whole payload `request.jwt.claims`;
- one transaction per request, committed on success;
- a set-returning function answers a JSON array of its rows, a scalar one the JSON value, and one
  returning a single composite (not setof: the workflow RPCs) one JSON object (PostgREST >= 8,
  PostgREST/postgrest#1849);
- `GET /rest/v1/<table>` reads a table as the JWT's role (so RLS filters it) with the subset of
  PostgREST's query grammar the package uses: `select=a,b`, `order=a.asc,b.desc`, `limit=n`,
  column filters `col=op.value` and `or=(...)` with nested `and(...)`, operators eq, neq, gt,
  gte, lt, lte; the answer is a JSON array of row objects;
- errors answer `{"code", "message", "details", "hint"}` with PostgREST's status for the
  SQLSTATE (42501: 401 for anon, 403 otherwise; 23503/23505: 409; PTxyz: xyz; P0001 and
  anything unlisted: 400; 08*/53*: 503; 25*/40*/5*/P0*/XX*: 500; 42883: 404) and `PGRST301`
  (401) for a bad JWT, `PGRST202` (404) for an unknown function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg import sql

from renum_db.errors import InvalidToken

__all__ = ["PostgrestStub", "http_status"]

_OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _split(text: str) -> list[str]:
    """Split on the commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current)
    return parts


def _condition(text: str, columns: set[str], values: list[str]) -> sql.Composable:
    """`col.op.value`, `and(...)` or `or(...)` as SQL; values become parameters."""
    for junction in ("and", "or"):
        if text.startswith(f"{junction}(") and text.endswith(")"):
            parts = [_condition(p, columns, values) for p in _split(text[len(junction) + 1 : -1])]
            return sql.SQL("(") + sql.SQL(f" {junction} ").join(parts) + sql.SQL(")")
    column, op, value = text.split(".", 2)
    if column not in columns or op not in _OPERATORS:
        raise ValueError(f"unsupported filter {text!r}")
    values.append(value.strip('"'))
    return sql.SQL("{} {} %s").format(sql.Identifier(column), sql.SQL(_OPERATORS[op]))


_SIGNATURE = """
    select p.proretset, a.name::text, pg_catalog.format_type(a.type, null)
      from pg_catalog.pg_proc as p
      join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
      cross join lateral unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[])
           with ordinality as a(name, type, ord)
     where n.nspname = 'public' and p.proname = %s
     order by a.ord
"""


def http_status(sqlstate: str, role: str) -> int:
    """PostgREST's HTTP status for a SQLSTATE."""
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate in ("23503", "23505"):
        return 409
    if sqlstate == "42883":
        return 404
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate.startswith(("08", "53")):
        return 503
    if sqlstate == "P0001":
        return 400
    if sqlstate.startswith(("25", "40", "54", "55", "57", "58", "P0", "XX", "F0", "HV")):
        return 500
    return 400


class PostgrestStub:
    def __init__(self, db_url: str, verify: Callable[[str], dict[str, Any]]) -> None:
        self.db_url = db_url
        self.verify = verify
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def call(self, fn: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
        try:
            claims = self.verify(token)
        except InvalidToken as exc:
            return 401, {"code": "PGRST301", "message": str(exc), "details": None, "hint": None}
        role = str(claims.get("role"))
        with psycopg.connect(self.db_url) as conn:
            signature = conn.execute(_SIGNATURE, (fn,)).fetchall()
            conn.rollback()
            names = [name for _, name, _ in signature]
            if (not signature and fn) or set(body) - set(names):
                return 404, {
                    "code": "PGRST202",
                    "message": f"Could not find the function public.{fn} in the schema cache",
                    "details": None,
                    "hint": None,
                }
            returns_set = bool(signature[0][0]) if signature else False
            given = [(name, kind) for _, name, kind in signature if name in body]
            record = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(kind)) for n, kind in given
            )
            args = sql.SQL(", ").join(
                sql.SQL("{} => _.{}").format(sql.Identifier(n), sql.Identifier(n)) for n, _ in given
            )
            call = sql.SQL("public.{}({})").format(sql.Identifier(fn), args)
            record_source = sql.SQL("jsonb_to_record(%s::jsonb) as _({})").format(record)
            if returns_set and given:
                query = sql.SQL(
                    "select coalesce(jsonb_agg(to_jsonb(r)), '[]'::jsonb) from {}, lateral {} as r"
                ).format(record_source, call)
            elif returns_set:
                query = sql.SQL(
                    "select coalesce(jsonb_agg(to_jsonb(r)), '[]'::jsonb) from {} as r"
                ).format(call)
            elif given:
                query = sql.SQL("select to_jsonb({}) from {}").format(call, record_source)
            else:
                query = sql.SQL("select to_jsonb({})").format(call)
            try:
                with conn.transaction():
                    conn.execute(
                        "select set_config('role', %s, true),"
                        " set_config('request.jwt.claims', %s, true)",
                        (role, json.dumps(claims)),
                    )
                    row = conn.execute(query, (json.dumps(body),) if given else ()).fetchone()
            except psycopg.Error as exc:
                state = exc.sqlstate or "XX000"
                return http_status(state, role), {
                    "code": state,
                    "message": exc.diag.message_primary or str(exc),
                    "details": exc.diag.message_detail,
                    "hint": exc.diag.message_hint,
                }
        assert row is not None
        return 200, row[0]

    def read(self, table: str, query: list[tuple[str, str]], token: str) -> tuple[int, Any]:
        try:
            claims = self.verify(token)
        except InvalidToken as exc:
            return 401, {"code": "PGRST301", "message": str(exc), "details": None, "hint": None}
        role = str(claims.get("role"))
        with psycopg.connect(self.db_url) as conn:
            columns = {
                str(r[0])
                for r in conn.execute(
                    "select attname from pg_catalog.pg_attribute"
                    " where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped",
                    (f"public.{table}",),
                )
            }
            conn.rollback()
            if not columns:
                return 404, {
                    "code": "42P01",
                    "message": f'relation "public.{table}" does not exist',
                    "details": None,
                    "hint": None,
                }
            selected: sql.Composable = sql.SQL("t.*")
            where: list[sql.Composable] = []
            order: list[sql.Composable] = []
            values: list[str] = []
            limit = None
            try:
                for key, value in query:
                    if key == "select" and value != "*":
                        names = value.split(",")
                        if set(names) - columns:
                            raise ValueError(f"unknown column in {value!r}")
                        selected = sql.SQL(", ").join(
                            sql.SQL("t.{}").format(sql.Identifier(n)) for n in names
                        )
                    elif key == "order":
                        for item in value.split(","):
                            column, _, direction = item.partition(".")
                            if column not in columns or direction not in ("", "asc", "desc"):
                                raise ValueError(f"bad order {item!r}")
                            order.append(
                                sql.SQL("{} {}").format(
                                    sql.Identifier(column), sql.SQL(direction or "asc")
                                )
                            )
                    elif key == "limit":
                        limit = int(value)
                    elif key == "or":
                        where.append(_condition(f"or{value}", columns, values))
                    elif key in columns:
                        where.append(_condition(f"{key}.{value}", columns, values))
            except ValueError as exc:
                return 400, {"code": "PGRST100", "message": str(exc), "details": None, "hint": None}
            query_sql = sql.SQL("select {} from public.{} as t").format(
                selected, sql.Identifier(table)
            )
            if where:
                query_sql += sql.SQL(" where ") + sql.SQL(" and ").join(where)
            if order:
                query_sql += sql.SQL(" order by ") + sql.SQL(", ").join(order)
            if limit is not None:
                query_sql += sql.SQL(" limit {}").format(sql.Literal(limit))
            wrapped = sql.SQL(
                "select coalesce(jsonb_agg(to_jsonb(r)), '[]'::jsonb) from ({}) as r"
            ).format(query_sql)
            try:
                with conn.transaction():
                    conn.execute(
                        "select set_config('role', %s, true),"
                        " set_config('request.jwt.claims', %s, true)",
                        (role, json.dumps(claims)),
                    )
                    row = conn.execute(wrapped, values).fetchone()
            except psycopg.Error as exc:
                state = exc.sqlstate or "XX000"
                return http_status(state, role), {
                    "code": state,
                    "message": exc.diag.message_primary or str(exc),
                    "details": exc.diag.message_detail,
                    "hint": exc.diag.message_hint,
                }
        assert row is not None
        return 200, row[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _token(self) -> str:
                auth = self.headers.get("Authorization", "")
                token = auth[7:] if auth.lower().startswith("bearer ") else ""
                return token or self.headers.get("apikey", "")

            def _answer(self, status: int, payload: Any) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                prefix = "/rest/v1/"
                table = parts.path[len(prefix) :] if parts.path.startswith(prefix) else ""
                if not table or "/" in table:
                    self._answer(404, {"code": "PGRST000", "message": "not found"})
                    return
                stub.requests.append((table, {"query": parts.query}))
                self._answer(*stub.read(table, parse_qsl(parts.query), self._token()))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                prefix = "/rest/v1/rpc/"
                path = self.path.split("?", 1)[0]
                auth = self.headers.get("Authorization", "")
                token = auth[7:] if auth.lower().startswith("bearer ") else ""
                token = token or self.headers.get("apikey", "")
                if not path.startswith(prefix):
                    status, payload = 404, {"code": "PGRST000", "message": "not found"}
                else:
                    fn = path[len(prefix) :]
                    stub.requests.append((fn, body))
                    status, payload = stub.call(fn, body, token)
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler
