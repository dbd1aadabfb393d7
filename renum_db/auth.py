"""Supabase Auth (GoTrue) through supabase-py: sign-up, sign-in, sign-out, current user, and the
admin call that creates a user inside a tenant.

Tenancy is not written here. `admin_create_user` puts {client_id, role} into the user's
`app_metadata` (only the service key can write it); GoTrue inserts the auth.users row and the
database trigger of migration 0002 creates the public.users profile from it, in the same
transaction (a client that does not exist or an invalid role makes GoTrue fail the call). The
trigger also copies auth.users.last_sign_in_at into public.users.last_login on every sign-in, so
nothing here touches public.users.

Every call is stateless: a fresh supabase-py auth client per call (sharing one HTTP connection
pool), no session kept in memory, no token refresh timer, so one `AuthService` serves many users
and threads. Errors become `renum_db.errors` classes through `for_service_error` (one mapping for
Auth and Storage); the original exception is not chained, because httpx errors carry the request
and its headers (keys and tokens). No repr, message or log line here contains a key, password
or token.

Configuration (environment or `.env`): SUPABASE_URL, SUPABASE_ANON_KEY, and
SUPABASE_SERVICE_ROLE_KEY for the admin call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Self
from uuid import UUID

import httpx
from dotenv import load_dotenv
from supabase._sync.auth_client import SyncSupabaseAuthClient
from supabase_auth.errors import AuthApiError, AuthError, AuthRetryableError
from supabase_auth.types import Session, User

from renum_db.errors import (
    ConfigurationError,
    ConnectionFailed,
    InvalidToken,
    RenumDBError,
    ServiceError,
    for_service_error,
)

__all__ = [
    "AuthService",
    "AuthSession",
    "AuthUser",
    "SignUpResult",
    "SupabaseSettings",
    "service_errors",
]

DEFAULT_TIMEOUT: Final = 20.0
SignOutScope = Literal["global", "local", "others"]


@dataclass(frozen=True, slots=True)
class SupabaseSettings:
    """Where the Supabase project is and its API keys (kept out of repr)."""

    url: str
    anon_key: str = field(repr=False)
    service_role_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigurationError("SUPABASE_URL must be an http(s) URL")
        if not self.anon_key:
            raise ConfigurationError("the anon key is empty")

    @classmethod
    def from_env(cls, *, dotenv: bool = True) -> Self:
        """SUPABASE_URL and SUPABASE_ANON_KEY (required), SUPABASE_SERVICE_ROLE_KEY (optional)."""
        if dotenv:
            load_dotenv(override=False)
        url = os.environ.get("SUPABASE_URL", "").strip().rstrip("/")
        anon = os.environ.get("SUPABASE_ANON_KEY", "").strip()
        service = os.environ.get("SUPABASE_SERVICE_ROLE_KEY", "").strip() or None
        missing = [n for n, v in (("SUPABASE_URL", url), ("SUPABASE_ANON_KEY", anon)) if not v]
        if missing:
            raise ConfigurationError(f"{' and '.join(missing)} must be set for Supabase Auth")
        return cls(url=url, anon_key=anon, service_role_key=service)

    def api_url(self, service: str) -> str:
        """The base URL of one Supabase service, e.g. `auth` -> <url>/auth/v1."""
        return f"{self.url.rstrip('/')}/{service}/v1"


@dataclass(frozen=True, slots=True)
class AuthUser:
    """A Supabase Auth user as the Auth API returns it."""

    id: UUID
    email: str | None
    role: str | None
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    created_at: datetime
    email_confirmed_at: datetime | None
    last_sign_in_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuthSession:
    """A signed-in session. The tokens are kept out of repr."""

    user: AuthUser
    expires_at: int | None
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SignUpResult:
    """The new user, and a session unless the project requires email confirmation first."""

    user: AuthUser
    session: AuthSession | None


def _user(u: User) -> AuthUser:
    return AuthUser(
        id=UUID(u.id),
        email=u.email,
        role=u.role,
        app_metadata=dict(u.app_metadata),
        user_metadata=dict(u.user_metadata),
        created_at=u.created_at,
        email_confirmed_at=u.email_confirmed_at,
        last_sign_in_at=u.last_sign_in_at,
    )


def _session(s: Session) -> AuthSession:
    return AuthSession(
        user=_user(s.user),
        expires_at=s.expires_at,
        access_token=s.access_token,
        refresh_token=s.refresh_token,
    )


@contextmanager
def service_errors(service: str) -> Iterator[None]:
    """The boundary of supabase-py's Auth calls: AuthError -> renum_db exception, not chained
    (httpx errors hold the request headers, hence keys and tokens)."""
    try:
        yield
    except AuthError as exc:
        status = getattr(exc, "status", None)
        if isinstance(exc, AuthRetryableError) and not status:
            cls: type[RenumDBError] = ConnectionFailed
        else:
            cls = for_service_error(exc.code, status)
        raise cls(
            f"Supabase {service}: {exc.message}", detail=f"code={exc.code} status={status}"
        ) from None


class AuthService:
    """Supabase Auth for the backend. Thread-safe: no per-user state is kept."""

    def __init__(
        self,
        settings: SupabaseSettings,
        *,
        http_client: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, follow_redirects=True)

    @classmethod
    def from_env(cls) -> Self:
        return cls(SupabaseSettings.from_env())

    def __repr__(self) -> str:
        return f"AuthService(url={self._settings.url!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self, key: str) -> SyncSupabaseAuthClient:
        """A fresh, stateless auth client sending `key` as apikey and bearer."""
        return SyncSupabaseAuthClient(
            url=self._settings.api_url("auth"),
            headers={"apiKey": key, "Authorization": f"Bearer {key}"},
            auto_refresh_token=False,
            persist_session=False,
            http_client=self._http,
        )

    def _service_key(self) -> str:
        key = self._settings.service_role_key
        if not key:
            raise ConfigurationError("SUPABASE_SERVICE_ROLE_KEY must be set for admin calls")
        return key

    # --- users --------------------------------------------------------------------------------

    def sign_up(
        self,
        email: str,
        password: str,
        *,
        user_metadata: Mapping[str, Any] | None = None,
    ) -> SignUpResult:
        """Self sign-up. `user_metadata` is the user's own data: it never sets a tenant (only
        app_metadata does, which a user cannot write), so the profile starts with no client."""
        with service_errors("Auth"):
            response = self._client(self._settings.anon_key).sign_up(
                {
                    "email": email,
                    "password": password,
                    "options": {"data": dict(user_metadata or {})},
                }
            )
        if response.user is None:
            raise ServiceError("Supabase Auth: sign-up returned no user")
        session = _session(response.session) if response.session else None
        return SignUpResult(user=_user(response.user), session=session)

    def sign_in(self, email: str, password: str) -> AuthSession:
        """Password sign-in. Wrong email or password -> InvalidCredentials."""
        with service_errors("Auth"):
            response = self._client(self._settings.anon_key).sign_in_with_password(
                {"email": email, "password": password}
            )
        if response.session is None:
            raise ServiceError("Supabase Auth: sign-in returned no session")
        return _session(response.session)

    def sign_out(self, access_token: str, *, scope: SignOutScope = "global") -> None:
        """End the session of `access_token` (`global`: every session of the user). A session
        that has already ended counts as signed out, as in supabase-py. The access token itself
        stays valid until it expires: that is how JWTs work."""
        if not access_token:
            raise InvalidToken("no access token")
        with service_errors("Auth"):
            try:
                self._client(self._settings.anon_key).admin.sign_out(access_token, scope)
            except AuthApiError as exc:
                if exc.status in (401, 403, 404):
                    return
                raise

    def current_user(self, access_token: str) -> AuthUser:
        """The user of `access_token`, as Supabase Auth sees it now (InvalidToken if the token
        is invalid, expired or its session has ended)."""
        if not access_token:
            raise InvalidToken("no access token")
        with service_errors("Auth"):
            response = self._client(self._settings.anon_key).get_user(access_token)
        if response is None:
            raise InvalidToken("no user for this access token")
        return _user(response.user)

    def admin_create_user(
        self,
        email: str,
        *,
        client_id: UUID | str | None,
        role: str = "viewer",
        password: str | None = None,
        email_confirm: bool = True,
        user_metadata: Mapping[str, Any] | None = None,
    ) -> AuthUser:
        """Create a user in tenant `client_id` with tenant role `role` (service key required).

        The database trigger creates the public.users profile from app_metadata. A client that
        does not exist or a role outside viewer/member/admin makes the trigger raise RNU01,
        which Supabase Auth reports as HTTP 500 "Database error creating new user"
        (ServiceError here; the SQLSTATE is in the Postgres log).
        """
        app_metadata: dict[str, Any] = {"role": role}
        if client_id is not None:
            app_metadata["client_id"] = str(client_id)
        attributes: dict[str, Any] = {
            "email": email,
            "email_confirm": email_confirm,
            "app_metadata": app_metadata,
            "user_metadata": dict(user_metadata or {}),
        }
        if password is not None:
            attributes["password"] = password
        with service_errors("Auth"):
            response = self._client(self._service_key()).admin.create_user(attributes)  # type: ignore[arg-type]
        return _user(response.user)
