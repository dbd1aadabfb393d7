"""Supabase Auth without Supabase: users and JWTs for local development and tests.

On Supabase, GoTrue inserts the `auth.users` row (the profile trigger of migration 0002 then
creates `public.users` from `app_metadata`), and signs access tokens with the project's JWT secret
(HS256). This module does both the same way against any database that has `auth.users` (a
Supabase project, or the local shim), so local code goes through the real trigger and, with
`LocalAuth.verify` + `renum_db.db.act_as`, the real RLS policies:

    auth = LocalAuth.from_env()                       # SUPABASE_JWT_SECRET
    user_id = auth.create_user(conn, email=..., password=..., client_id=..., role="member")
    token = auth.mint_access_token(conn, user_id)    # what GoTrue would hand the browser
    with act_as(conn, auth.verify(token)):           # what PostgREST does with it
        ...

What it writes to auth.users is what GoTrue writes for an email user: instance_id (all zeros),
aud and role 'authenticated', the lower-cased email, a bcrypt hash (cost 10, computed in Python:
pgcrypto is not assumed) or null without a password, email_confirmed_at, raw_app_meta_data
{provider, providers, client_id?, role?}, raw_user_meta_data, created_at, updated_at, the empty
token columns and is_anonymous false. GoTrue's other tables (identities, sessions, refresh
tokens) are not written: nothing in renum-db reads them.

No secret (JWT secret, password, token) appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import bcrypt
import jwt
from psycopg import Connection

from renum_db.db import API_ROLES
from renum_db.errors import (
    ConfigurationError,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    NotFound,
    wrap_errors,
)

__all__ = [
    "BCRYPT_COST",
    "DEFAULT_INSTANCE_ID",
    "JWT_ALGORITHM",
    "LOCAL_ISSUER",
    "LocalAuth",
    "LocalSession",
    "check_password",
    "create_local_user",
    "hash_password",
]

DEFAULT_INSTANCE_ID: Final = UUID(int=0)
"""GoTrue's instance_id for every user of a Supabase project."""
JWT_ALGORITHM: Final = "HS256"
BCRYPT_COST: Final = 10
"""GoTrue hashes passwords with bcrypt at Go's DefaultCost (10)."""
LOCAL_ISSUER: Final = "http://127.0.0.1:54321/auth/v1"
"""The `iss` of the Supabase CLI's local stack; a hosted project uses `<SUPABASE_URL>/auth/v1`."""
MIN_SECRET_LENGTH: Final = 32
"""Supabase refuses JWT secrets shorter than 32 characters; so does this module."""
_MAX_PASSWORD_BYTES: Final = 72  # bcrypt's limit, which GoTrue enforces as well


def hash_password(password: str) -> str:
    """A bcrypt hash of `password`, as GoTrue stores it in auth.users.encrypted_password."""
    raw = password.encode()
    if not raw:
        raise InvalidInput("the password is empty")
    if len(raw) > _MAX_PASSWORD_BYTES:
        raise InvalidInput(f"the password is longer than {_MAX_PASSWORD_BYTES} bytes")
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=BCRYPT_COST)).decode()


def check_password(password: str, hashed: str | None) -> bool:
    """True if `password` matches the bcrypt `hashed` (False for no hash or an invalid one)."""
    raw = password.encode()
    if not hashed or not raw or len(raw) > _MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(raw, hashed.encode())
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class LocalSession:
    """What GoTrue returns on sign-in (the parts renum-db uses). The token is kept out of repr."""

    user_id: UUID
    session_id: UUID
    expires_at: int
    access_token: str = field(repr=False)


_INSERT_USER: Final = """
    insert into auth.users (
        instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
        confirmation_token, recovery_token, email_change_token_new, email_change,
        raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
        is_anonymous)
    values (
        %(instance_id)s, %(id)s, 'authenticated', 'authenticated', %(email)s, %(password)s,
        %(confirmed_at)s, '', '', '', '',
        %(app_metadata)s::jsonb, %(user_metadata)s::jsonb, false, %(now)s, %(now)s,
        false)
"""

_USER_FOR_CLAIMS: Final = """
    select id, aud, role, email, phone, raw_app_meta_data, raw_user_meta_data, is_anonymous
      from auth.users
     where id = %s and deleted_at is null
"""

_USER_FOR_SIGN_IN: Final = """
    select id, encrypted_password, banned_until
      from auth.users
     where instance_id = %s and lower(email) = lower(%s) and is_sso_user = false
       and deleted_at is null
"""

_RECORD_SIGN_IN: Final = """
    update auth.users set last_sign_in_at = %(now)s, updated_at = %(now)s where id = %(id)s
"""


def create_local_user(
    conn: Connection[Any],
    *,
    email: str,
    password: str | None = None,
    client_id: UUID | str | None = None,
    role: str | None = None,
    app_metadata: Mapping[str, Any] | None = None,
    user_metadata: Mapping[str, Any] | None = None,
    email_confirmed: bool = True,
    user_id: UUID | None = None,
    instance_id: UUID = DEFAULT_INSTANCE_ID,
) -> UUID:
    """Insert the auth.users row GoTrue would insert; returns its id. No JWT secret involved.

    `client_id` and `role` go into app_metadata, from which the database trigger creates the
    public.users profile in the same transaction (RNU01 -> InvalidTenantMetadata if they name
    no client or no role). Needs a role that may write auth.users (the connecting role locally,
    supabase_auth_admin or postgres on Supabase). The caller owns the transaction.
    """
    email = email.strip().lower()
    if not email or "@" not in email:
        raise InvalidInput("an email address is required")
    meta: dict[str, Any] = {"provider": "email", "providers": ["email"]}
    meta.update(app_metadata or {})
    if client_id is not None:
        meta["client_id"] = str(client_id)
    if role is not None:
        meta["role"] = role
    now = datetime.now(UTC)
    new_id = user_id or uuid.uuid4()
    params = {
        "instance_id": instance_id,
        "id": new_id,
        "email": email,
        "password": hash_password(password) if password is not None else None,
        "confirmed_at": now if email_confirmed else None,
        "app_metadata": json.dumps(meta),
        "user_metadata": json.dumps(dict(user_metadata or {})),
        "now": now,
    }
    with wrap_errors():
        conn.execute(_INSERT_USER, params)
    return new_id


class LocalAuth:
    """Creates auth users as GoTrue does and mints/verifies Supabase-shaped JWTs."""

    def __init__(
        self,
        jwt_secret: str,
        *,
        issuer: str = LOCAL_ISSUER,
        token_ttl: int = 3600,
        instance_id: UUID = DEFAULT_INSTANCE_ID,
    ) -> None:
        if len(jwt_secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"the JWT secret must be at least {MIN_SECRET_LENGTH} characters long"
            )
        if token_ttl <= 0:
            raise ConfigurationError("token_ttl must be a positive number of seconds")
        self._secret = jwt_secret
        self.issuer = issuer
        self.token_ttl = token_ttl
        self.instance_id = instance_id

    @classmethod
    def from_env(cls) -> LocalAuth:
        """SUPABASE_JWT_SECRET (required) and SUPABASE_URL (for `iss`, if set)."""
        secret = os.environ.get("SUPABASE_JWT_SECRET", "")
        if not secret:
            raise ConfigurationError("SUPABASE_JWT_SECRET is not set")
        url = os.environ.get("SUPABASE_URL", "").strip().rstrip("/")
        return cls(secret, issuer=f"{url}/auth/v1" if url else LOCAL_ISSUER)

    def __repr__(self) -> str:
        return f"LocalAuth(issuer={self.issuer!r}, token_ttl={self.token_ttl})"

    # --- users --------------------------------------------------------------------------------

    def create_user(
        self,
        conn: Connection[Any],
        *,
        email: str,
        password: str | None = None,
        client_id: UUID | str | None = None,
        role: str | None = None,
        app_metadata: Mapping[str, Any] | None = None,
        user_metadata: Mapping[str, Any] | None = None,
        email_confirmed: bool = True,
        user_id: UUID | None = None,
    ) -> UUID:
        """`create_local_user` in this project's instance (see there)."""
        return create_local_user(
            conn,
            email=email,
            password=password,
            client_id=client_id,
            role=role,
            app_metadata=app_metadata,
            user_metadata=user_metadata,
            email_confirmed=email_confirmed,
            user_id=user_id,
            instance_id=self.instance_id,
        )

    def sign_in(self, conn: Connection[Any], *, email: str, password: str) -> LocalSession:
        """Check the password like GoTrue's password grant, record the sign-in (the trigger
        copies last_sign_in_at into public.users.last_login) and mint an access token."""
        with wrap_errors():
            row = conn.execute(_USER_FOR_SIGN_IN, (self.instance_id, email.strip())).fetchone()
        if row is None or not check_password(password, row[1]):
            # One message for "no such user" and "wrong password", as GoTrue.
            raise InvalidCredentials("invalid login credentials")
        banned_until = row[2]
        if banned_until is not None and banned_until > datetime.now(UTC):
            raise InvalidCredentials("the user is banned")
        user_id = UUID(str(row[0]))
        with wrap_errors():
            conn.execute(_RECORD_SIGN_IN, {"now": datetime.now(UTC), "id": user_id})
        session_id = uuid.uuid4()
        now = int(time.time())
        token = self.mint_access_token(conn, user_id, session_id=session_id, now=now)
        return LocalSession(
            user_id=user_id,
            session_id=session_id,
            expires_at=now + self.token_ttl,
            access_token=token,
        )

    # --- tokens -------------------------------------------------------------------------------

    def user_claims(
        self,
        conn: Connection[Any],
        user_id: UUID | str,
        *,
        session_id: UUID | None = None,
        now: int | None = None,
        amr_method: str = "password",
    ) -> dict[str, Any]:
        """The claims GoTrue puts in an access token for this auth.users row."""
        with wrap_errors():
            row = conn.execute(_USER_FOR_CLAIMS, (str(user_id),)).fetchone()
        if row is None:
            raise NotFound(f"no auth user {user_id}")
        uid, aud, role, email, phone, app_meta, user_meta, is_anonymous = row
        iat = int(time.time()) if now is None else now
        return {
            "iss": self.issuer,
            "sub": str(uid),
            "aud": aud or "authenticated",
            "exp": iat + self.token_ttl,
            "iat": iat,
            "email": email or "",
            "phone": phone or "",
            "app_metadata": app_meta or {},
            "user_metadata": user_meta or {},
            "role": role or "authenticated",
            "aal": "aal1",
            "amr": [{"method": amr_method, "timestamp": iat}],
            "session_id": str(session_id or uuid.uuid4()),
            "is_anonymous": bool(is_anonymous),
        }

    def mint_access_token(
        self,
        conn: Connection[Any],
        user_id: UUID | str,
        *,
        session_id: UUID | None = None,
        now: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A user access token signed with the project's JWT secret (HS256), as GoTrue signs it.
        `extra` overrides claims (tests use it for expired or wrong-audience tokens)."""
        claims = self.user_claims(conn, user_id, session_id=session_id, now=now)
        claims.update(extra or {})
        return self.sign(claims)

    def mint_api_key(self, role: str, *, ttl: int = 10 * 365 * 24 * 3600) -> str:
        """An API key like Supabase's legacy anon / service_role keys: a JWT whose only claims
        are iss 'supabase', role, iat and exp."""
        if role not in ("anon", "service_role"):
            raise ConfigurationError("API keys exist for the roles anon and service_role only")
        iat = int(time.time())
        return self.sign({"iss": "supabase", "role": role, "iat": iat, "exp": iat + ttl})

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Sign arbitrary claims with the project secret (HS256)."""
        return jwt.encode(dict(claims), self._secret, algorithm=JWT_ALGORITHM)

    def verify(self, token: str, *, audience: str = "authenticated") -> dict[str, Any]:
        """Verify a JWT (signature, exp, and aud for user tokens) and return its claims, ready
        for `renum_db.db.act_as`. Raises InvalidToken, whose message never contains the token.

        As PostgREST, the `role` claim picks the database role and must be an API role. A user
        token (role authenticated) must carry `sub` and the audience; API keys (anon,
        service_role) carry no `aud` and are accepted without one.
        """
        if not token:
            raise InvalidToken("no JWT")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["exp", "role"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the JWT has expired") from None
        except jwt.InvalidTokenError as exc:
            # PyJWT's messages describe the failure (bad signature, malformed), never the token.
            raise InvalidToken(f"invalid JWT: {exc}") from None
        role = claims.get("role")
        if role not in API_ROLES:
            raise InvalidToken(f"the JWT role {role!r} is not an API role")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        if role == "authenticated":
            if not claims.get("sub"):
                raise InvalidToken("the JWT has no subject")
            if audience not in audiences:
                raise InvalidToken(f"the JWT audience is not {audience!r}")
        elif aud is not None and audience not in audiences:
            raise InvalidToken(f"the JWT audience is not {audience!r}")
        return claims
