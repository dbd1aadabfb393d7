"""renum_db.auth over supabase-py, against a local stub of the GoTrue API (tests/supabase_stub.py)
that writes auth.users of the test database, so the real profile trigger runs."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from renum_db.auth import AuthService, SupabaseSettings
from renum_db.db import act_as
from renum_db.errors import (
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    PermissionDenied,
    RenumDBError,
    RetryableError,
    ServiceError,
    for_service_error,
)
from renum_db.local_auth import LocalAuth
from tests.supabase_stub import SupabaseStub
from tests.support import World

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
PASSWORD = "a-fine-password"


@pytest.fixture(scope="module")
def local_auth() -> LocalAuth:
    return LocalAuth(SECRET)


@pytest.fixture(scope="module")
def stub(db_url: str, world: World, local_auth: LocalAuth) -> Iterator[SupabaseStub]:
    del world  # seeded before the stub serves
    with SupabaseStub(db_url, local_auth) as s:
        yield s


@pytest.fixture(scope="module")
def settings(stub: SupabaseStub) -> SupabaseSettings:
    return SupabaseSettings(
        url=stub.url, anon_key=stub.anon_key, service_role_key=stub.service_role_key
    )


@pytest.fixture(scope="module")
def service(settings: SupabaseSettings) -> Iterator[AuthService]:
    with AuthService(settings) as s:
        yield s


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def profile(db_url: str, user_id: uuid.UUID) -> tuple[Any, ...] | None:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select client_id, role, email, last_login from public.users where id = %s",
            (user_id,),
        ).fetchone()


# --- sign-up --------------------------------------------------------------------------------------


def test_sign_up_creates_a_profile_without_tenant(service: AuthService, db_url: str) -> None:
    email = unique_email("signup")
    result = service.sign_up(email, PASSWORD, user_metadata={"full_name": "New User"})
    assert result.user.email == email
    assert result.user.user_metadata == {"full_name": "New User"}
    assert result.session is not None
    row = profile(db_url, result.user.id)
    assert row is not None
    assert row[:3] == (None, "viewer", email)


def test_user_metadata_cannot_choose_a_tenant(
    service: AuthService, db_url: str, world: World
) -> None:
    result = service.sign_up(
        unique_email("sneaky"),
        PASSWORD,
        user_metadata={"client_id": str(world.a.client_id), "role": "admin"},
    )
    row = profile(db_url, result.user.id)
    assert row is not None
    assert row[:2] == (None, "viewer")


def test_signing_up_twice_is_a_conflict(service: AuthService) -> None:
    email = unique_email("twice")
    service.sign_up(email, PASSWORD)
    with pytest.raises(Conflict, match="already registered"):
        service.sign_up(email, PASSWORD)


def test_a_weak_password_is_invalid_input(service: AuthService) -> None:
    with pytest.raises(InvalidInput, match="at least 6"):
        service.sign_up(unique_email("weak"), "12345")


# --- sign-in, current user, sign-out --------------------------------------------------------------


def test_sign_in_returns_a_session_and_the_database_records_last_login(
    service: AuthService, db_url: str
) -> None:
    email = unique_email("login")
    user = service.sign_up(email, PASSWORD).user
    session = service.sign_in(email, PASSWORD)
    assert session.user.id == user.id
    assert session.user.last_sign_in_at is not None
    row = profile(db_url, user.id)
    assert row is not None
    assert row[3] == session.user.last_sign_in_at


def test_a_wrong_password_is_invalid_credentials(service: AuthService) -> None:
    email = unique_email("wrong")
    service.sign_up(email, PASSWORD)
    with pytest.raises(InvalidCredentials):
        service.sign_in(email, "not-the-password")


def test_current_user_is_the_owner_of_the_token(service: AuthService) -> None:
    email = unique_email("me")
    user = service.sign_up(email, PASSWORD).user
    session = service.sign_in(email, PASSWORD)
    me = service.current_user(session.access_token)
    assert (me.id, me.email) == (user.id, email)


@pytest.mark.parametrize("token", ["garbage", ""])
def test_current_user_with_a_bad_token_is_invalid_token(service: AuthService, token: str) -> None:
    with pytest.raises(InvalidToken):
        service.current_user(token)


def test_after_sign_out_the_session_is_gone(service: AuthService) -> None:
    email = unique_email("bye")
    service.sign_up(email, PASSWORD)
    session = service.sign_in(email, PASSWORD)
    service.sign_out(session.access_token)
    with pytest.raises(InvalidToken, match="Session"):
        service.current_user(session.access_token)
    service.sign_out(session.access_token)  # signing out again is not an error


# --- admin: users inside a tenant -----------------------------------------------------------------


def test_admin_create_user_puts_the_user_in_the_tenant_through_the_trigger(
    service: AuthService, db_url: str, world: World
) -> None:
    email = unique_email("member")
    user = service.admin_create_user(
        email, client_id=world.a.client_id, role="member", password=PASSWORD
    )
    assert user.app_metadata["client_id"] == str(world.a.client_id)
    assert user.app_metadata["role"] == "member"
    assert user.email_confirmed_at is not None
    row = profile(db_url, user.id)
    assert row is not None
    assert row[:3] == (world.a.client_id, "member", email)


def test_a_created_users_token_gives_their_tenants_rls_view(
    service: AuthService, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    email = unique_email("kb-writer")
    service.admin_create_user(email, client_id=world.a.client_id, role="member", password=PASSWORD)
    session = service.sign_in(email, PASSWORD)
    claims = local_auth.verify(session.access_token)
    with psycopg.connect(db_url) as conn:
        with act_as(conn, claims):
            seen = {r[0] for r in conn.execute("select id from public.knowledge_bases")}
            created = conn.execute(
                "insert into public.knowledge_bases (name) values (%s) returning client_id",
                (f"kb {email}",),
            ).fetchone()
        conn.rollback()
    assert seen == set(world.a.rows["knowledge_bases"])
    assert created == (world.a.client_id,)


def test_admin_create_user_with_an_unknown_client_fails_and_creates_nothing(
    service: AuthService, db_url: str
) -> None:
    email = unique_email("lost")
    with pytest.raises(ServiceError, match="Database error creating new user"):
        service.admin_create_user(email, client_id=uuid.uuid4(), role="member")
    with psycopg.connect(db_url) as conn:
        assert (
            conn.execute("select 1 from auth.users where email = %s", (email,)).fetchone() is None
        )


def test_admin_create_user_with_an_invalid_role_fails(service: AuthService, world: World) -> None:
    with pytest.raises(ServiceError):
        service.admin_create_user(unique_email("role"), client_id=world.a.client_id, role="owner")


def test_admin_create_user_with_a_taken_email_is_a_conflict(
    service: AuthService, world: World
) -> None:
    email = unique_email("taken")
    service.admin_create_user(email, client_id=world.a.client_id, role="viewer")
    with pytest.raises(Conflict):
        service.admin_create_user(email, client_id=world.a.client_id, role="viewer")


def test_admin_calls_need_the_service_key(settings: SupabaseSettings, world: World) -> None:
    no_key = SupabaseSettings(url=settings.url, anon_key=settings.anon_key)
    with AuthService(no_key) as s, pytest.raises(ConfigurationError, match="SERVICE_ROLE"):
        s.admin_create_user(unique_email("x"), client_id=world.a.client_id)
    anon_as_service = SupabaseSettings(
        url=settings.url, anon_key=settings.anon_key, service_role_key=settings.anon_key
    )
    with AuthService(anon_as_service) as s, pytest.raises(PermissionDenied, match="not allowed"):
        s.admin_create_user(unique_email("x"), client_id=world.a.client_id)


# --- configuration, transport, secrets ------------------------------------------------------------


def test_an_unreachable_auth_server_is_connection_failed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    settings = SupabaseSettings(url=f"http://127.0.0.1:{port}", anon_key="anon")
    with AuthService(settings, timeout=2) as s, pytest.raises(ConnectionFailed):
        s.sign_in("a@example.com", PASSWORD)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co/")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon-key-value")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-key-value")
    settings = SupabaseSettings.from_env(dotenv=False)
    assert settings.url == "https://abc.supabase.co"
    assert settings.api_url("auth") == "https://abc.supabase.co/auth/v1"
    assert "anon-key-value" not in repr(settings)
    assert "service-key-value" not in repr(settings)
    monkeypatch.delenv("SUPABASE_ANON_KEY")
    with pytest.raises(ConfigurationError, match="SUPABASE_ANON_KEY"):
        SupabaseSettings.from_env(dotenv=False)


def test_no_secret_reaches_a_repr_a_log_line_or_an_error(
    service: AuthService, settings: SupabaseSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    email = unique_email("secret")
    texts: list[str] = [repr(service), repr(settings)]
    service.sign_up(email, PASSWORD)
    session = service.sign_in(email, PASSWORD)
    texts += [repr(session), repr(session.user)]
    for call in (
        lambda: service.sign_in(email, PASSWORD + "-wrong"),
        lambda: service.current_user(session.access_token + "x"),
        lambda: service.sign_up(email, PASSWORD),
    ):
        with pytest.raises(RenumDBError) as caught:
            call()
        exc = caught.value
        assert exc.__cause__ is None
        assert exc.__suppress_context__
        texts += [str(exc), repr(exc), exc.detail or ""]
    texts.append(caplog.text)
    secrets = [
        PASSWORD,
        session.access_token,
        session.refresh_token,
        settings.anon_key,
        str(settings.service_role_key),
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("invalid_credentials", 400, InvalidCredentials),
        ("email_exists", 422, Conflict),
        ("weak_password", 422, InvalidInput),
        ("not_admin", 403, PermissionDenied),
        ("session_not_found", 403, InvalidToken),
        ("Unauthorized", "403", PermissionDenied),
        ("Duplicate", "409", Conflict),
        ("InvalidJWT", "400", InvalidToken),
        (None, 429, RetryableError),
        (None, 0, ConnectionFailed),
        ("unexpected_failure", 500, ServiceError),
        ("something_new", "not a number", ServiceError),
    ],
)
def test_service_error_codes_map_to_the_exception_hierarchy(
    code: str | None, status: int | str, expected: type[RenumDBError]
) -> None:
    assert for_service_error(code, status) is expected
