"""Tenant and user administration (renum_db.admin) end to end: the first client, its users,
roles and suspension, locally (auth.users rows, no JWT secret) and through the Auth admin API
(the local GoTrue stand-in)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from renum_db.admin import (
    LocalUserProvisioner,
    SupabaseUserProvisioner,
    TenantAdmin,
    user_provisioner_from_env,
)
from renum_db.auth import AuthService, SupabaseSettings
from renum_db.db import Database
from renum_db.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from renum_db.local_auth import LocalAuth
from renum_db.repositories import KnowledgeBaseRepository
from tests.supabase_stub import SupabaseStub

SECRET = "a-test-jwt-secret-that-is-long-enough-0123456789"


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=2) as database:
        yield database


@pytest.fixture
def admin(db: Database, monkeypatch: pytest.MonkeyPatch) -> TenantAdmin:
    for name in ("SUPABASE_JWT_SECRET", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    return TenantAdmin(db)


def email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@acme.test"


def test_a_new_client_is_active_with_empty_settings(admin: TenantAdmin) -> None:
    client = admin.create_client(name="Acme")
    assert client.name == "Acme"
    assert client.status == "active"
    assert client.settings == {}


def test_without_supabase_variables_users_are_created_locally_without_a_jwt_secret(
    admin: TenantAdmin,
) -> None:
    assert admin.provisioner == "local"
    client = admin.create_client(name="Acme")
    user = admin.create_user(client_id=client.id, email=email("ana"), role="member")
    assert user.client_id == client.id
    assert user.role == "member"


def test_a_created_member_can_write_in_their_tenant_at_once(
    admin: TenantAdmin, db: Database
) -> None:
    client = admin.create_client(name="Acme")
    user = admin.create_user(client_id=client.id, email=email("ana"), role="member")
    with db.as_user(user.id) as conn:
        kb = KnowledgeBaseRepository(conn).create(name="Contratos")
    assert kb.client_id == client.id


def test_creating_a_user_in_an_unknown_client_raises_not_found(admin: TenantAdmin) -> None:
    with pytest.raises(NotFound):
        admin.create_user(client_id=uuid.uuid4(), email=email("x"), role="member")


def test_creating_a_user_with_an_unknown_role_raises_invalid_input(admin: TenantAdmin) -> None:
    client = admin.create_client(name="Acme")
    with pytest.raises(InvalidInput):
        admin.create_user(client_id=client.id, email=email("x"), role="owner")


def test_creating_a_user_with_a_taken_email_raises_conflict(admin: TenantAdmin) -> None:
    client = admin.create_client(name="Acme")
    address = email("dup")
    admin.create_user(client_id=client.id, email=address, role="viewer")
    with pytest.raises(Conflict):
        admin.create_user(client_id=client.id, email=address, role="viewer")


def test_find_user_finds_by_email_case_insensitively(admin: TenantAdmin) -> None:
    client = admin.create_client(name="Acme")
    address = email("case")
    user = admin.create_user(client_id=client.id, email=address, role="viewer")
    assert admin.find_user(email=address.upper()).id == user.id


def test_find_user_with_an_unknown_email_raises_not_found(admin: TenantAdmin) -> None:
    with pytest.raises(NotFound):
        admin.find_user(email=email("nobody"))


def test_a_member_demoted_to_viewer_can_no_longer_write(admin: TenantAdmin, db: Database) -> None:
    client = admin.create_client(name="Acme")
    user = admin.create_user(client_id=client.id, email=email("ana"), role="member")
    assert admin.change_role(user_id=user.id, role="viewer").role == "viewer"
    with pytest.raises(PermissionDenied), db.as_user(user.id) as conn:
        KnowledgeBaseRepository(conn).create(name="Contratos")


def test_changing_the_role_to_an_unknown_one_raises_invalid_input(admin: TenantAdmin) -> None:
    client = admin.create_client(name="Acme")
    user = admin.create_user(client_id=client.id, email=email("ana"), role="member")
    with pytest.raises(InvalidInput):
        admin.change_role(user_id=user.id, role="root")


def test_changing_the_role_of_an_unknown_user_raises_not_found(admin: TenantAdmin) -> None:
    with pytest.raises(NotFound):
        admin.change_role(user_id=uuid.uuid4(), role="admin")


def test_users_of_a_suspended_client_see_nothing_until_it_is_reactivated(
    admin: TenantAdmin, db: Database
) -> None:
    client = admin.create_client(name="Acme")
    user = admin.create_user(client_id=client.id, email=email("ana"), role="member")
    with db.as_user(user.id) as conn:
        KnowledgeBaseRepository(conn).create(name="Contratos")
    assert admin.suspend_client(client_id=client.id).status == "suspended"
    with db.as_user(user.id) as conn:
        assert KnowledgeBaseRepository(conn).list() == []
    admin.reactivate_client(client_id=client.id)
    with db.as_user(user.id) as conn:
        assert [kb.name for kb in KnowledgeBaseRepository(conn).list()] == ["Contratos"]


def test_suspending_an_unknown_client_raises_not_found(admin: TenantAdmin) -> None:
    with pytest.raises(NotFound):
        admin.suspend_client(client_id=uuid.uuid4())


def test_with_supabase_variables_the_auth_admin_api_is_chosen(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service")
    assert isinstance(user_provisioner_from_env(db), SupabaseUserProvisioner)
    monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY")
    assert isinstance(user_provisioner_from_env(db), LocalUserProvisioner)


def test_users_created_through_the_auth_admin_api_get_their_tenant_and_role(
    db: Database, db_url: str
) -> None:
    with SupabaseStub(db_url, LocalAuth(SECRET)) as stub:
        settings = SupabaseSettings(
            url=stub.url, anon_key=stub.anon_key, service_role_key=stub.service_role_key
        )
        with AuthService(settings) as auth:
            admin = TenantAdmin(db, users=SupabaseUserProvisioner(auth))
            assert admin.provisioner == "supabase"
            client = admin.create_client(name="Acme")
            user = admin.create_user(client_id=client.id, email=email("api"), role="admin")
    assert (user.client_id, user.role) == (client.id, "admin")


def test_an_rls_refusal_says_how_to_get_a_tenant(db: Database) -> None:
    with pytest.raises(PermissionDenied) as info, db.as_user(uuid.uuid4()) as conn:
        KnowledgeBaseRepository(conn).create(name="Contratos")
    assert info.value.hint is not None
    assert "TenantAdmin" in info.value.hint
