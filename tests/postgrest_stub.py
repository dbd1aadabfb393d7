"""A local endpoint that speaks PostgREST's RPC protocol, running the real SQL on the test database.

What it does as PostgREST does (v12, the version Supabase runs):
- `POST /rest/v1/rpc/<function>` with a JSON object of named arguments; the arguments are read
  with `jsonb_to_record` typed by the function's catalog signature and passed by name, so
  omitted arguments take their SQL defaults;
- the JWT comes from `Authorization: Bearer` (else the `apikey` header, as Supabase's gateway
  forwards it), is verified with the project secret (HS256, exp, aud for user tokens), and its
  `role` claim becomes the transaction-local `role`, the whole payload `request.jwt.claims`;
- one transaction per request, committed on success;
- a set-returning function answers a JSON array of its rows, a scalar one the JSON value;
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

import psycopg
from psycopg import sql

from renum_db.errors import InvalidToken

__all__ = ["PostgrestStub", "http_status"]

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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

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
