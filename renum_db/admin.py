"""Tenant and user administration for the backend: the first client and its first users.

    admin = TenantAdmin(db)                                  # local: auth.users rows
    acme = admin.create_client(name="Acme")
    ana = admin.create_user(client_id=acme.id, email="ana@acme.test", role="member")
    admin.change_role(user_id=ana.id, role="admin")
    admin.suspend_client(client_id=acme.id)                  # its users now see nothing

Clients and roles are written as `service_role`, exactly what the backend's service key may do
over PostgREST. Users are created by a `UserProvisioner`:

- `LocalUserProvisioner` inserts the GoTrue-shaped auth.users row
  (renum_db.local_auth.create_local_user) on the connecting role's connection: no JWT secret is
  involved. The profile trigger creates public.users from app_metadata in the same transaction.
- `SupabaseUserProvisioner` calls the Auth admin API (supabase-py, the service role key), which
  inserts the same row through GoTrue on a Supabase project.

`user_provisioner_from_env(db)` picks Supabase when SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are
both set, the local one otherwise.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from renum_db.db import Database
from renum_db.errors import InvalidInput, NotFound
from renum_db.local_auth import create_local_user
from renum_db.repositories.tenancy import (
    USER_ROLES,
    Client,
    ClientRepository,
    User,
    UserRepository,
)

__all__ = [
    "LocalUserProvisioner",
    "SupabaseUserProvisioner",
    "TenantAdmin",
    "UserProvisioner",
    "user_provisioner_from_env",
]

if TYPE_CHECKING:
    from renum_db.auth import AuthService

log = logging.getLogger(__name__)


class UserProvisioner(Protocol):
    """Creates the auth user whose app_metadata puts it into a tenant with a role."""

    kind: str

    def provision(
        self, *, email: str, client_id: UUID, role: str, password: str | None
    ) -> UUID: ...


class LocalUserProvisioner:
    """auth.users rows written directly (local shim, or a database the connecting role may
    write auth.users in)."""

    kind = "local"

    def __init__(self, db: Database) -> None:
        self._db = db

    def provision(self, *, email: str, client_id: UUID, role: str, password: str | None) -> UUID:
        with self._db.connection() as conn:
            return create_local_user(
                conn, email=email, password=password, client_id=client_id, role=role
            )


class SupabaseUserProvisioner:
    """Supabase Auth's admin API (needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY)."""

    kind = "supabase"

    def __init__(self, auth: AuthService | None = None) -> None:
        if auth is None:
            from renum_db.auth import AuthService

            auth = AuthService.from_env()
        self._auth = auth

    def provision(self, *, email: str, client_id: UUID, role: str, password: str | None) -> UUID:
        user = self._auth.admin_create_user(
            email, client_id=client_id, role=role, password=password
        )
        return user.id


def user_provisioner_from_env(db: Database) -> UserProvisioner:
    """Supabase's Auth admin API when SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are set,
    otherwise direct auth.users rows."""
    if (
        os.environ.get("SUPABASE_URL", "").strip()
        and os.environ.get("SUPABASE_SERVICE_ROLE_KEY", "").strip()
    ):
        return SupabaseUserProvisioner()
    return LocalUserProvisioner(db)


class TenantAdmin:
    """What the backend does to tenants and users (service_role; users via a provisioner)."""

    def __init__(self, db: Database, *, users: UserProvisioner | None = None) -> None:
        self._db = db
        self._users = users or user_provisioner_from_env(db)

    @property
    def provisioner(self) -> str:
        """'local' or 'supabase': where users are created."""
        return self._users.kind

    def create_client(self, *, name: str, settings: dict[str, object] | None = None) -> Client:
        """A new active client (tenant)."""
        with self._db.as_service_role() as conn:
            client = ClientRepository(conn).create(name=name, settings=settings)
        log.info("created client %s", client.id)
        return client

    def get_client(self, client_id: UUID) -> Client:
        with self._db.as_service_role() as conn:
            client = ClientRepository(conn).get(client_id)
        if client is None:
            raise NotFound(f"no client {client_id}", sqlstate="PT404")
        return client

    def create_user(
        self,
        *,
        client_id: UUID,
        email: str,
        role: str = "viewer",
        password: str | None = None,
    ) -> User:
        """An auth user in `client_id` with tenant role `role`; returns its profile.

        InvalidInput for a role outside viewer/member/admin, NotFound for an unknown client,
        Conflict for an email already registered."""
        if role not in USER_ROLES:
            raise InvalidInput(f"role must be one of {', '.join(USER_ROLES)}, got {role!r}")
        self.get_client(client_id)
        user_id = self._users.provision(
            email=email, client_id=client_id, role=role, password=password
        )
        with self._db.as_service_role() as conn:
            user = UserRepository(conn).get(user_id)
        if user is None:  # the profile trigger always creates it; a missing one is a bug
            raise NotFound(f"auth user {user_id} was created without a public.users profile")
        log.info("created user %s in client %s as %s", user.id, client_id, role)
        return user

    def find_user(self, *, email: str) -> User:
        """The profile with this email; NotFound if none."""
        with self._db.as_service_role() as conn:
            user = UserRepository(conn).get_by_email(email)
        if user is None:
            raise NotFound(f"no user with email {email!r}", sqlstate="PT404")
        return user

    def change_role(self, *, user_id: UUID, role: str) -> User:
        """Set a user's tenant role (viewer, member or admin)."""
        with self._db.as_service_role() as conn:
            return UserRepository(conn).set_role(user_id, role)

    def suspend_client(self, *, client_id: UUID) -> Client:
        """Its users keep their accounts but see and change nothing until reactivated."""
        with self._db.as_service_role() as conn:
            return ClientRepository(conn).suspend(client_id)

    def reactivate_client(self, *, client_id: UUID) -> Client:
        with self._db.as_service_role() as conn:
            return ClientRepository(conn).reactivate(client_id)
