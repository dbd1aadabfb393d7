"""Repositories for the tenant model: clients, users (their roles), agents, credential metadata.

They follow the pattern of renum_db.repositories.knowledge: one frozen dataclass per row shape,
static SQL constants, keyword arguments named like the columns, `wrap_errors` around every
statement, keyset pagination on every `list` (`after=<last row>`, renum_db.repositories.keyset),
and no transaction or role handling: run them on a connection from `Database.as_user(...)`
(RLS applies: admins change roles and agents, everybody reads their tenant) or
`Database.as_service_role()` (the backend: creates and suspends clients, moves anything).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from psycopg.types.json import Jsonb

from renum_db.errors import InvalidInput
from renum_db.repositories.keyset import KEYSET_SQL, Keyed, keyset_params
from renum_db.repositories.knowledge import _Repository

__all__ = [
    "CLIENT_STATUSES",
    "USER_ROLES",
    "Agent",
    "AgentRepository",
    "Client",
    "ClientRepository",
    "CredentialMetadata",
    "CredentialMetadataRepository",
    "User",
    "UserRepository",
]

USER_ROLES: Final = ("viewer", "member", "admin")
"""Tenant roles, lowest first (public.users.role)."""
CLIENT_STATUSES: Final = ("active", "suspended", "inactive")
"""public.clients.status; only active clients give their users access."""

Role = Literal["viewer", "member", "admin"]

_KEYSET: Final = KEYSET_SQL


@dataclass(frozen=True, slots=True)
class Client:
    """A row of public.clients (a tenant)."""

    id: UUID
    name: str
    status: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """A row of public.users: the tenant profile of an auth user."""

    id: UUID
    client_id: UUID | None
    email: str | None
    role: str
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None


@dataclass(frozen=True, slots=True)
class Agent:
    """A row of public.agents."""

    id: UUID
    client_id: UUID
    name: str
    description: str | None
    configuration: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CredentialMetadata:
    """What public.api_credentials shows without its ciphertext (renum_db.credentials reads
    and writes secrets)."""

    id: UUID
    client_id: UUID
    service_name: str
    credential_type: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


_CLIENT_COLUMNS: Final = "id, name, status, settings, created_at, updated_at"


class ClientRepository(_Repository[Client]):
    """public.clients: users read their own active client, admins rename it and edit its
    settings; only service_role creates, suspends or deletes clients."""

    _row_type = Client
    _table = "clients"
    _GET = f"select {_CLIENT_COLUMNS} from public.clients where id = %(id)s"
    _LIST = f"""
        select id, name, status, settings, created_at, updated_at
          from public.clients
         where (%(status)s::text is null or status = %(status)s::public.client_status)
           and {_KEYSET}
         order by created_at, id
         limit %(limit)s
    """
    _CREATE = """
        insert into public.clients (name, settings)
        values (%(name)s, %(settings)s)
        returning id, name, status, settings, created_at, updated_at
    """
    _UPDATE = """
        update public.clients
           set name = coalesce(%(name)s::text, name),
               settings = coalesce(%(settings)s::jsonb, settings)
         where id = %(id)s
        returning id, name, status, settings, created_at, updated_at
    """
    _SET_STATUS = """
        update public.clients
           set status = %(status)s
         where id = %(id)s
        returning id, name, status, settings, created_at, updated_at
    """
    _DELETE = "delete from public.clients where id = %(id)s"

    def list(
        self, *, limit: int = 100, after: Keyed | None = None, status: str | None = None
    ) -> builtins.list[Client]:
        """Visible clients (with this status, if given), oldest first."""
        return self._fetch_all(self._LIST, {**keyset_params(limit, after), "status": status})

    def create(self, *, name: str, settings: Mapping[str, Any] | None = None) -> Client:
        """A new active client (service_role only)."""
        row = self._fetch_one(self._CREATE, {"name": name, "settings": Jsonb(dict(settings or {}))})
        assert row is not None
        return row

    def update(
        self, id: UUID, *, name: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> Client:
        """Rename or replace the settings; NotFound if no visible, writable row."""
        params = {
            "id": id,
            "name": name,
            "settings": None if settings is None else Jsonb(dict(settings)),
        }
        return self._updated(self._UPDATE, params)

    def set_status(self, id: UUID, status: str) -> Client:
        """active, suspended or inactive (service_role only). Users of a client that is not
        active see nothing of it (docs/roles.md)."""
        if status not in CLIENT_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(CLIENT_STATUSES)}")
        return self._updated(self._SET_STATUS, {"id": id, "status": status})

    def suspend(self, id: UUID) -> Client:
        return self.set_status(id, "suspended")

    def reactivate(self, id: UUID) -> Client:
        return self.set_status(id, "active")


class UserRepository(_Repository[User]):
    """public.users: everybody reads the profiles of their tenant (and their own); admins change
    roles; service_role anything. Profiles are created by the auth.users trigger, never here
    (renum_db.admin creates users)."""

    _row_type = User
    _table = "users"
    _GET = """
        select id, client_id, email, role, created_at, updated_at, last_login
          from public.users where id = %(id)s
    """
    _BY_EMAIL = """
        select id, client_id, email, role, created_at, updated_at, last_login
          from public.users where lower(email) = lower(%(email)s)
         order by created_at, id
         limit 1
    """
    _LIST = f"""
        select id, client_id, email, role, created_at, updated_at, last_login
          from public.users
         where (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
           and (%(role)s::text is null or role = %(role)s::public.user_role)
           and {_KEYSET}
         order by created_at, id
         limit %(limit)s
    """
    _SET_ROLE = """
        update public.users set role = %(role)s where id = %(id)s
        returning id, client_id, email, role, created_at, updated_at, last_login
    """
    _DELETE = "delete from public.users where id = %(id)s"

    def get_by_email(self, email: str) -> User | None:
        """The visible profile with this email (case-insensitive)."""
        return self._fetch_one(self._BY_EMAIL, {"email": email.strip()})

    def list(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        client_id: UUID | None = None,
        role: str | None = None,
    ) -> builtins.list[User]:
        """Visible profiles (of one client and role, if given), oldest first."""
        params = {**keyset_params(limit, after), "client_id": client_id, "role": role}
        return self._fetch_all(self._LIST, params)

    def set_role(self, id: UUID, role: str) -> User:
        """Change a user's tenant role; NotFound if the caller may not (only admins of the
        user's client, or service_role)."""
        if role not in USER_ROLES:
            raise InvalidInput(f"role must be one of {', '.join(USER_ROLES)}", sqlstate="23514")
        return self._updated(self._SET_ROLE, {"id": id, "role": role})


_AGENT_COLUMNS: Final = (
    "id, client_id, name, description, configuration, status, created_at, updated_at"
)


class AgentRepository(_Repository[Agent]):
    """public.agents: viewers read, admins create, change and delete (RLS)."""

    _row_type = Agent
    _table = "agents"
    _GET = f"select {_AGENT_COLUMNS} from public.agents where id = %(id)s"
    _LIST = f"""
        select {_AGENT_COLUMNS}
          from public.agents
         where (%(status)s::text is null or status = %(status)s::public.agent_status)
           and (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
           and {_KEYSET}
         order by created_at, id
         limit %(limit)s
    """
    _CREATE = f"""
        insert into public.agents (name, description, configuration, status)
        values (%(name)s, %(description)s, %(configuration)s, %(status)s)
        returning {_AGENT_COLUMNS}
    """
    _CREATE_FOR_CLIENT = f"""
        insert into public.agents (client_id, name, description, configuration, status)
        values (%(client_id)s, %(name)s, %(description)s, %(configuration)s, %(status)s)
        returning {_AGENT_COLUMNS}
    """
    _UPDATE = f"""
        update public.agents
           set name = coalesce(%(name)s::text, name),
               description = coalesce(%(description)s::text, description),
               configuration = coalesce(%(configuration)s::jsonb, configuration),
               status = coalesce(%(status)s::public.agent_status, status)
         where id = %(id)s
        returning {_AGENT_COLUMNS}
    """
    _DELETE = "delete from public.agents where id = %(id)s"

    def list(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        status: str | None = None,
        client_id: UUID | None = None,
    ) -> builtins.list[Agent]:
        """Visible agents (of one client and with this status, if given), oldest first."""
        params = {**keyset_params(limit, after), "status": status, "client_id": client_id}
        return self._fetch_all(self._LIST, params)

    def create(
        self,
        *,
        name: str,
        description: str | None = None,
        configuration: Mapping[str, Any] | None = None,
        status: str = "active",
        client_id: UUID | None = None,
    ) -> Agent:
        """An agent in the caller's tenant (admins), or in `client_id` (service_role)."""
        params = {
            "client_id": client_id,
            "name": name,
            "description": description,
            "configuration": Jsonb(dict(configuration or {})),
            "status": status,
        }
        query = self._CREATE if client_id is None else self._CREATE_FOR_CLIENT
        row = self._fetch_one(query, params)
        assert row is not None
        return row

    def update(
        self,
        id: UUID,
        *,
        name: str | None = None,
        description: str | None = None,
        configuration: Mapping[str, Any] | None = None,
        status: str | None = None,
    ) -> Agent:
        """Change the given columns; NotFound if no visible, writable row."""
        params = {
            "id": id,
            "name": name,
            "description": description,
            "configuration": None if configuration is None else Jsonb(dict(configuration)),
            "status": status,
        }
        return self._updated(self._UPDATE, params)


_CREDENTIAL_COLUMNS: Final = (
    "id, client_id, service_name, credential_type, created_at, updated_at, last_used_at"
)


class CredentialMetadataRepository(_Repository[CredentialMetadata]):
    """public.api_credentials without the ciphertext: admins list and delete their tenant's
    credentials; storing and reading secrets is renum_db.credentials.CredentialService."""

    _row_type = CredentialMetadata
    _table = "api_credentials"
    _GET = f"select {_CREDENTIAL_COLUMNS} from public.api_credentials where id = %(id)s"
    _LIST = f"""
        select {_CREDENTIAL_COLUMNS}
          from public.api_credentials
         where (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
           and (%(service_name)s::text is null or service_name = %(service_name)s::text)
           and {_KEYSET}
         order by created_at, id
         limit %(limit)s
    """
    _DELETE = "delete from public.api_credentials where id = %(id)s"

    def list(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        client_id: UUID | None = None,
        service_name: str | None = None,
    ) -> builtins.list[CredentialMetadata]:
        """Visible credentials (of one client and service, if given), oldest first."""
        params = {
            **keyset_params(limit, after),
            "client_id": client_id,
            "service_name": service_name,
        }
        return self._fetch_all(self._LIST, params)
