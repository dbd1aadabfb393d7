"""renum_db.local_auth: auth users written as GoTrue writes them, Supabase-shaped JWTs, and the
verified claims of a minted token driving the real RLS policies through act_as."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import psycopg
import pytest

from renum_db.db import act_as
from renum_db.errors import (
    ConfigurationError,
    InvalidCredentials,
    InvalidTenantMetadata,
    InvalidToken,
    PermissionDenied,
)
from renum_db.local_auth import LocalAuth, check_password, hash_password
from tests.support import World

Conn = psycopg.Connection[Any]
SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
CLAIM_NAMES = {
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "email",
    "phone",
    "app_metadata",
    "user_metadata",
    "role",
    "aal",
    "amr",
    "session_id",
    "is_anonymous",
}


@pytest.fixture
def auth() -> LocalAuth:
    return LocalAuth(SECRET, token_ttl=600)


def auth_row(conn: Conn, user_id: uuid.UUID) -> dict[str, Any]:
    cur = conn.execute("select * from auth.users where id = %s", (user_id,))
    row = cur.fetchone()
    assert row is not None
    assert cur.description is not None
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


# --- users ----------------------------------------------------------------------------------------


def test_create_user_writes_the_columns_gotrue_writes(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    user_id = auth.create_user(
        conn,
        email="New.Member@A.example",
        password="correct horse",
        client_id=world.a.client_id,
        role="member",
        user_metadata={"full_name": "New Member"},
    )
    row = auth_row(conn, user_id)
    assert row["instance_id"] == uuid.UUID(int=0)
    assert (row["aud"], row["role"], row["email"]) == (
        "authenticated",
        "authenticated",
        "new.member@a.example",
    )
    assert row["raw_app_meta_data"] == {
        "provider": "email",
        "providers": ["email"],
        "client_id": str(world.a.client_id),
        "role": "member",
    }
    assert row["raw_user_meta_data"] == {"full_name": "New Member"}
    assert row["email_confirmed_at"] is not None
    assert row["created_at"] == row["updated_at"]
    assert row["is_anonymous"] is False
    assert row["encrypted_password"].startswith("$2b$10$")
    assert check_password("correct horse", row["encrypted_password"])


def test_the_trigger_creates_the_profile_with_client_and_role(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    user_id = auth.create_user(
        conn, email="admin2@a.example", client_id=world.a.client_id, role="admin"
    )
    profile = conn.execute(
        "select client_id, role, email from public.users where id = %s", (user_id,)
    ).fetchone()
    assert profile == (world.a.client_id, "admin", "admin2@a.example")


def test_a_user_without_password_has_a_null_hash(conn: Conn, auth: LocalAuth) -> None:
    user_id = auth.create_user(conn, email="nopass@example.com")
    assert auth_row(conn, user_id)["encrypted_password"] is None


def test_an_unknown_client_in_app_metadata_is_refused_by_the_trigger(
    conn: Conn, auth: LocalAuth
) -> None:
    with pytest.raises(InvalidTenantMetadata) as caught:
        auth.create_user(conn, email="lost@example.com", client_id=uuid.uuid4(), role="viewer")
    assert caught.value.sqlstate == "RNU01"


def test_password_hashes_check_only_the_right_password() -> None:
    hashed = hash_password("s3cret-pass")
    assert check_password("s3cret-pass", hashed)
    assert not check_password("s3cret-Pass", hashed)
    assert not check_password("s3cret-pass", None)
    assert not check_password("s3cret-pass", "not a bcrypt hash")


# --- sign-in --------------------------------------------------------------------------------------


def test_sign_in_records_last_login_through_the_trigger(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    auth.create_user(
        conn, email="login@a.example", password="pass-word", client_id=world.a.client_id
    )
    session = auth.sign_in(conn, email="LOGIN@a.example", password="pass-word")
    last_sign_in = auth_row(conn, session.user_id)["last_sign_in_at"]
    last_login = conn.execute(
        "select last_login from public.users where id = %s", (session.user_id,)
    ).fetchone()
    assert last_sign_in is not None
    assert last_login == (last_sign_in,)
    assert auth.verify(session.access_token)["session_id"] == str(session.session_id)


@pytest.mark.parametrize(
    ("email", "password"), [("login@a.example", "wrong"), ("nobody-here@a.example", "pass-word")]
)
def test_sign_in_with_bad_credentials_says_the_same_for_both_cases(
    conn: Conn, auth: LocalAuth, email: str, password: str
) -> None:
    auth.create_user(conn, email="login@a.example", password="pass-word")
    with pytest.raises(InvalidCredentials, match="invalid login credentials"):
        auth.sign_in(conn, email=email, password=password)


def test_a_session_repr_holds_no_token(conn: Conn, auth: LocalAuth) -> None:
    auth.create_user(conn, email="r@example.com", password="pass-word")
    session = auth.sign_in(conn, email="r@example.com", password="pass-word")
    assert session.access_token not in repr(session)


# --- tokens ---------------------------------------------------------------------------------------


def test_a_minted_token_carries_supabases_claims(conn: Conn, world: World, auth: LocalAuth) -> None:
    member = world.a.users["member"]
    session_id = uuid.uuid4()
    token = auth.mint_access_token(conn, member, session_id=session_id)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="authenticated")
    assert header["alg"] == "HS256"
    assert set(claims) == CLAIM_NAMES
    assert claims["sub"] == str(member)
    assert (claims["role"], claims["aud"], claims["aal"]) == (
        "authenticated",
        "authenticated",
        "aal1",
    )
    assert claims["email"] == "member@a.example"
    assert claims["app_metadata"]["client_id"] == str(world.a.client_id)
    assert claims["app_metadata"]["role"] == "member"
    assert claims["exp"] - claims["iat"] == 600
    assert claims["session_id"] == str(session_id)
    assert claims["is_anonymous"] is False
    assert claims["amr"] == [{"method": "password", "timestamp": claims["iat"]}]
    assert claims["iss"] == auth.issuer


def test_verify_returns_the_claims_of_a_valid_token(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    token = auth.mint_access_token(conn, world.a.users["viewer"])
    assert auth.verify(token)["sub"] == str(world.a.users["viewer"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"exp": int(time.time()) - 10}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"role": "postgres"}, "not an API role"),
        ({"sub": ""}, "no subject"),
    ],
)
def test_verify_rejects_a_token_with_bad_claims(
    conn: Conn, world: World, auth: LocalAuth, change: dict[str, Any], message: str
) -> None:
    token = auth.mint_access_token(conn, world.a.users["viewer"], extra=change)
    with pytest.raises(InvalidToken, match=message) as caught:
        auth.verify(token)
    assert token not in str(caught.value)


def test_verify_rejects_a_token_signed_with_another_secret(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    forger = LocalAuth("another-secret-that-is-also-32-characters-long")
    token = forger.mint_access_token(conn, world.a.users["admin"])
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        auth.verify(token)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_verify_rejects_garbage(auth: LocalAuth, token: str) -> None:
    with pytest.raises(InvalidToken):
        auth.verify(token)


def test_api_keys_verify_to_their_role_without_an_audience(auth: LocalAuth) -> None:
    assert auth.verify(auth.mint_api_key("anon"))["role"] == "anon"
    assert auth.verify(auth.mint_api_key("service_role"))["role"] == "service_role"
    with pytest.raises(ConfigurationError):
        auth.mint_api_key("authenticated")


# --- minted token -> verified claims -> act_as -> RLS -------------------------------------------


def visible_knowledge_bases(conn: Conn, claims: dict[str, Any]) -> set[uuid.UUID]:
    with act_as(conn, claims):
        rows = conn.execute("select id from public.knowledge_bases").fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("role", ["viewer", "member", "admin"])
def test_a_tenant_users_token_shows_exactly_their_tenants_rows(
    conn: Conn, world: World, auth: LocalAuth, role: str
) -> None:
    claims = auth.verify(auth.mint_access_token(conn, world.a.users[role]))
    assert visible_knowledge_bases(conn, claims) == set(world.a.rows["knowledge_bases"])


def test_another_tenants_token_shows_only_that_tenants_rows(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    claims = auth.verify(auth.mint_access_token(conn, world.b.users["admin"]))
    assert visible_knowledge_bases(conn, claims) == set(world.b.rows["knowledge_bases"])


def test_a_token_of_a_user_without_client_shows_nothing(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    claims = auth.verify(auth.mint_access_token(conn, world.no_client_user))
    assert visible_knowledge_bases(conn, claims) == set()


def test_a_members_token_may_write_and_a_viewers_may_not(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    insert = "insert into public.knowledge_bases (name) values ('from a token') returning client_id"
    member = auth.verify(auth.mint_access_token(conn, world.a.users["member"]))
    with act_as(conn, member):
        row = conn.execute(insert).fetchone()
    assert row == (world.a.client_id,)
    viewer = auth.verify(auth.mint_access_token(conn, world.a.users["viewer"]))
    with pytest.raises(PermissionDenied, match="row-level security"), act_as(conn, viewer):
        conn.execute(insert)


def test_app_metadata_in_the_token_does_not_choose_the_tenant(
    conn: Conn, world: World, auth: LocalAuth
) -> None:
    token = auth.mint_access_token(
        conn,
        world.a.users["viewer"],
        extra={"app_metadata": {"client_id": str(world.b.client_id), "role": "admin"}},
    )
    claims = auth.verify(token)
    assert visible_knowledge_bases(conn, claims) == set(world.a.rows["knowledge_bases"])


def test_the_anon_key_sees_no_tenant_data(conn: Conn, auth: LocalAuth) -> None:
    claims = auth.verify(auth.mint_api_key("anon"))
    with pytest.raises(PermissionDenied), act_as(conn, claims):
        conn.execute("select id from public.knowledge_bases")


def test_the_service_key_acts_as_service_role(conn: Conn, world: World, auth: LocalAuth) -> None:
    claims = auth.verify(auth.mint_api_key("service_role"))
    seen = visible_knowledge_bases(conn, claims)
    assert set(world.a.rows["knowledge_bases"]) | set(world.b.rows["knowledge_bases"]) <= seen


# --- configuration --------------------------------------------------------------------------------


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        LocalAuth("too-short")


def test_the_repr_holds_no_secret(auth: LocalAuth) -> None:
    assert SECRET not in repr(auth)


def test_from_env_reads_the_secret_and_the_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co/")
    assert LocalAuth.from_env().issuer == "https://abc.supabase.co/auth/v1"
    monkeypatch.delenv("SUPABASE_JWT_SECRET")
    with pytest.raises(ConfigurationError, match="SUPABASE_JWT_SECRET"):
        LocalAuth.from_env()
