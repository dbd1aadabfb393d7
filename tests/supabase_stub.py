"""A local stand-in for Supabase Auth (GoTrue) and Storage, served on 127.0.0.1 from a thread.

It behaves like the real services where renum-db depends on it, against the test database:
- Auth: /auth/v1/signup, /token?grant_type=password, /logout, /user and /admin/users write and read
  auth.users through `renum_db.local_auth.LocalAuth` (so the profile trigger runs, sign-ins set
  last_sign_in_at), mint HS256 JWTs with the project secret, and answer errors in GoTrue's
  2024-01-01 format ({"code": <error_code>, "message": ...} with X-Supabase-Api-Version).
- Storage: POST /storage/v1/object/<bucket>/<name> and DELETE /storage/v1/object/<bucket>
  ({"prefixes": [...]}) or /storage/v1/object/<bucket>/<name> verify the bearer JWT and write
  storage.objects *as that JWT's role with its claims*, exactly as Storage does, so the bucket
  policies of migration 0012 decide; errors use Storage's {"statusCode", "error", "message"}.
Every request commits its own transaction. Nothing leaves the machine.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg

from renum_db.db import act_as
from renum_db.errors import (
    Conflict,
    InvalidCredentials,
    InvalidInput,
    InvalidTenantMetadata,
    InvalidToken,
    PermissionDenied,
    RenumDBError,
)
from renum_db.local_auth import LocalAuth
from tests.support import allow_storage_delete

API_VERSION = "2024-01-01"
Reply = tuple[int, Any]  # (HTTP status, JSON payload or None)


class HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def auth_error(status: int, code: str, message: str) -> HttpError:
    return HttpError(status, {"code": code, "message": message})


def storage_error(status: int, error: str, message: str) -> HttpError:
    return HttpError(status, {"statusCode": str(status), "error": error, "message": message})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class SupabaseStub:
    """Start with `with SupabaseStub(db_url, auth) as stub:`; `stub.url` is the project URL."""

    def __init__(self, db_url: str, auth: LocalAuth) -> None:
        self.db_url = db_url
        self.auth = auth
        self.anon_key = auth.mint_api_key("anon")
        self.service_role_key = auth.mint_api_key("service_role")
        self.files: dict[str, bytes] = {}  # "<bucket>/<name>" -> content
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.ended_sessions: set[str] = set()
        self.refuse_deletes = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> SupabaseStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- helpers ------------------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.db_url) as conn:
            yield conn  # committed on a clean exit, rolled back on error

    def _bearer(self, headers: Any) -> str:
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise auth_error(401, "no_authorization", "This endpoint requires a Bearer token")
        return token

    def _check_apikey(self, headers: Any) -> None:
        key = headers.get("apikey") or ""
        try:
            self.auth.verify(key)
        except InvalidToken:
            raise auth_error(401, "no_authorization", "Invalid API key") from None

    def _user_json(self, conn: psycopg.Connection[Any], user_id: uuid.UUID | str) -> dict[str, Any]:
        row = conn.execute(
            """
            select id, aud, role, email, email_confirmed_at, phone, confirmed_at,
                   last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at,
                   updated_at, is_anonymous
              from auth.users where id = %s
            """,
            (str(user_id),),
        ).fetchone()
        if row is None:
            raise auth_error(404, "user_not_found", "User not found")
        return {
            "id": str(row[0]),
            "aud": row[1],
            "role": row[2],
            "email": row[3],
            "email_confirmed_at": _iso(row[4]),
            "phone": row[5] or "",
            "confirmed_at": _iso(row[6]),
            "last_sign_in_at": _iso(row[7]),
            "app_metadata": row[8] or {},
            "user_metadata": row[9] or {},
            "identities": [],
            "created_at": _iso(row[10]),
            "updated_at": _iso(row[11]),
            "is_anonymous": bool(row[12]),
        }

    def _session_json(self, conn: psycopg.Connection[Any], user_id: uuid.UUID) -> dict[str, Any]:
        session_id = uuid.uuid4()
        token = self.auth.mint_access_token(conn, user_id, session_id=session_id)
        claims = self.auth.verify(token)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.auth.token_ttl,
            "expires_at": claims["exp"],
            "refresh_token": uuid.uuid4().hex[:12],
            "user": self._user_json(conn, user_id),
        }

    def _user_claims(self, token: str) -> dict[str, Any]:
        try:
            claims = self.auth.verify(token)
        except InvalidToken as exc:
            raise auth_error(403, "bad_jwt", f"invalid JWT: {exc}") from None
        if claims.get("role") != "authenticated":
            raise auth_error(403, "bad_jwt", "not a user JWT")
        if claims.get("session_id") in self.ended_sessions:
            raise auth_error(
                403, "session_not_found", "Session from session_id claim in JWT does not exist"
            )
        return claims

    def _password_policy(self, password: str) -> None:
        if len(password) < 6:
            err = auth_error(422, "weak_password", "Password should be at least 6 characters.")
            err.body["weak_password"] = {"reasons": ["length"]}
            raise err

    # --- auth ---------------------------------------------------------------------------------

    def auth_signup(self, headers: Any, body: dict[str, Any]) -> Reply:
        self._check_apikey(headers)
        email, password = body.get("email") or "", body.get("password") or ""
        self._password_policy(password)
        with self._conn() as conn:
            if conn.execute(
                "select 1 from auth.users where lower(email) = lower(%s)", (email,)
            ).fetchone():
                raise auth_error(422, "user_already_exists", "User already registered")
            # GoTrue keeps the user's `data` in user_metadata; app_metadata gets only the
            # provider, so a sign-up never picks a tenant.
            user_id = self.auth.create_user(
                conn, email=email, password=password, user_metadata=body.get("data") or {}
            )
            conn.execute("update auth.users set last_sign_in_at = now() where id = %s", (user_id,))
            return 200, self._session_json(conn, user_id)

    def auth_token(self, headers: Any, query: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        self._check_apikey(headers)
        if query.get("grant_type") != ["password"]:
            raise auth_error(400, "validation_failed", "unsupported grant_type")
        with self._conn() as conn:
            try:
                session = self.auth.sign_in(
                    conn, email=body.get("email") or "", password=body.get("password") or ""
                )
            except InvalidCredentials:
                raise auth_error(400, "invalid_credentials", "Invalid login credentials") from None
            data = self._session_json(conn, session.user_id)
            return 200, data

    def auth_logout(self, headers: Any) -> Reply:
        self._check_apikey(headers)
        claims = self._user_claims(self._bearer(headers))
        self.ended_sessions.add(str(claims.get("session_id")))
        return 204, None

    def auth_user(self, headers: Any) -> Reply:
        self._check_apikey(headers)
        claims = self._user_claims(self._bearer(headers))
        with self._conn() as conn:
            return 200, self._user_json(conn, claims["sub"])

    def auth_admin_create_user(self, headers: Any, body: dict[str, Any]) -> Reply:
        self._check_apikey(headers)
        try:
            claims = self.auth.verify(self._bearer(headers))
        except InvalidToken:
            raise auth_error(401, "bad_jwt", "invalid JWT") from None
        if claims.get("role") != "service_role":
            raise auth_error(403, "not_admin", "User not allowed")
        password = body.get("password")
        if password is not None:
            self._password_policy(password)
        try:
            with self._conn() as conn:
                user_id = self.auth.create_user(
                    conn,
                    email=body.get("email") or "",
                    password=password,
                    app_metadata=body.get("app_metadata") or {},
                    user_metadata=body.get("user_metadata") or {},
                    email_confirmed=bool(body.get("email_confirm")),
                )
                return 200, self._user_json(conn, user_id)
        except Conflict:
            raise auth_error(
                422, "email_exists", "A user with this email address has already been registered"
            ) from None
        except (InvalidTenantMetadata, InvalidInput):
            # GoTrue reports a failing auth.users trigger as a 500 without the SQLSTATE.
            raise auth_error(
                500, "unexpected_failure", "Database error creating new user"
            ) from None

    # --- storage ------------------------------------------------------------------------------

    def _storage_claims(self, headers: Any) -> dict[str, Any]:
        value = headers.get("Authorization") or ""
        token = value.partition(" ")[2]
        try:
            return self.auth.verify(token)
        except InvalidToken as exc:
            raise storage_error(400, "InvalidJWT", str(exc)) from None

    def storage_upload(self, headers: Any, bucket: str, name: str, raw: bytes) -> Reply:
        claims = self._storage_claims(headers)
        content_type = headers.get("Content-Type") or ""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        file_part = next(
            (
                p
                for p in message.iter_parts()
                if p.get_param("name", header="content-disposition") == "file"
            ),
            None,
        )
        if file_part is None:
            raise storage_error(400, "InvalidRequest", "no file in the form")
        payload = file_part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        mime = file_part.get_content_type()
        with self._conn() as conn:
            if not conn.execute(
                "select 1 from storage.buckets where id = %s", (bucket,)
            ).fetchone():
                raise storage_error(404, "Bucket not found", "Bucket not found")
            try:
                with act_as(conn, claims):
                    row = conn.execute(
                        """
                        insert into storage.objects (bucket_id, name, owner, owner_id, metadata)
                        values (%s, %s, %s, %s, %s::jsonb)
                        returning id
                        """,
                        (
                            bucket,
                            name,
                            claims.get("sub"),
                            claims.get("sub"),
                            json.dumps({"size": len(content), "mimetype": mime}),
                        ),
                    ).fetchone()
            except PermissionDenied as exc:
                raise storage_error(403, "Unauthorized", str(exc)) from None
            except Conflict:
                raise storage_error(409, "Duplicate", "The resource already exists") from None
            assert row is not None
        self.files[f"{bucket}/{name}"] = content
        return 200, {"Key": f"{bucket}/{name}", "Id": str(row[0])}

    def storage_delete(self, headers: Any, bucket: str, names: list[str]) -> Reply:
        claims = self._storage_claims(headers)
        if self.refuse_deletes:
            raise storage_error(500, "InternalError", "deletes are switched off in this stub")
        with self._conn() as conn, act_as(conn, claims):
            allow_storage_delete(conn)  # as the Storage service does before its own deletes
            rows = conn.execute(
                """
                delete from storage.objects where bucket_id = %s and name = any(%s)
                returning name, bucket_id, id
                """,
                (bucket, names),
            ).fetchall()
        for deleted, _, _ in rows:
            self.files.pop(f"{bucket}/{deleted}", None)
        return 200, [{"name": r[0], "bucket_id": r[1], "id": str(r[2])} for r in rows]

    # --- dispatch -----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Any, raw: bytes) -> Reply:
        parts = urlsplit(target)
        path, query = unquote(parts.path), parse_qs(parts.query)
        self.requests.append((method, path))
        body: Any = {}
        if raw and "json" in (headers.get("Content-Type") or ""):
            body = json.loads(raw)
        if path.startswith("/auth/v1/"):
            route = path.removeprefix("/auth/v1/")
            if method == "POST" and route == "signup":
                return self.auth_signup(headers, body)
            if method == "POST" and route == "token":
                return self.auth_token(headers, query, body)
            if method == "POST" and route == "logout":
                return self.auth_logout(headers)
            if method == "GET" and route == "user":
                return self.auth_user(headers)
            if method == "POST" and route == "admin/users":
                return self.auth_admin_create_user(headers, body)
            raise auth_error(404, "not_found", "no such route in the stub")
        if path.startswith("/storage/v1/object/"):
            bucket, _, name = path.removeprefix("/storage/v1/object/").partition("/")
            if method == "POST" and name:
                return self.storage_upload(headers, bucket, name, raw)
            if method == "DELETE" and not name:
                return self.storage_delete(headers, bucket, list(body.get("prefixes") or []))
            if method == "DELETE":
                return self.storage_delete(headers, bucket, [name])
        raise storage_error(404, "not_found", "no such route in the stub")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    status, payload = stub.handle(self.command, self.path, self.headers, raw)
                except HttpError as err:
                    status, payload = err.status, err.body
                except RenumDBError as err:
                    status, payload = 500, {"code": "unexpected_failure", "message": str(err)}
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("X-Supabase-Api-Version", API_VERSION)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_DELETE(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # keep test output quiet

        return Handler
