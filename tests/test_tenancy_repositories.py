"""Repositories for clients, users, agents and credential metadata, and keyset pagination on
every repository list, through `Database` as the backend and tenant users use them."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from renum_db.db import Database
from renum_db.errors import InvalidInput, NotFound, PermissionDenied
from renum_db.repositories import KnowledgeBaseRepository
from renum_db.repositories.keyset import MAX_PAGE, Keyset
from renum_db.repositories.tenancy import (
    AgentRepository,
    ClientRepository,
    CredentialMetadata,
    CredentialMetadataRepository,
    UserRepository,
)
from tests.support import World


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=2) as database:
        yield database


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:12]}"


def all_pages(fetch: Callable[..., list[Any]], size: int) -> list[list[Any]]:
    pages: list[list[Any]] = []
    after: Any = None
    while True:
        page = fetch(limit=size, after=after)
        if not page:
            return pages
        pages.append(page)
        after = page[-1]


def test_agent_pages_cover_every_agent_once_in_creation_order(db: Database, world: World) -> None:
    with db.as_user(world.a.users["admin"]) as conn:
        repo = AgentRepository(conn)
        for _ in range(5):
            repo.create(name=unique("agent"))
        everything = repo.list(limit=MAX_PAGE)
        pages = all_pages(repo.list, 2)
    flat = [a for page in pages for a in page]
    assert [a.id for a in flat] == [a.id for a in everything]
    assert all(len(page) <= 2 for page in pages)
    assert len(flat) >= 7  # the two seeded agents and the five above


def test_a_page_after_a_keyset_starts_strictly_after_it(db: Database, world: World) -> None:
    with db.as_user(world.a.users["viewer"]) as conn:
        repo = KnowledgeBaseRepository(conn)
        first, *rest = repo.list()
        assert [kb.id for kb in repo.list(after=Keyset.of(first))] == [kb.id for kb in rest]


def test_rows_inserted_between_pages_are_neither_skipped_nor_repeated(
    db: Database, world: World
) -> None:
    with db.as_user(world.a.users["admin"]) as conn:
        repo = AgentRepository(conn)
        first_page = repo.list(limit=1)
        late = repo.create(name=unique("late"))
        rest = repo.list(limit=MAX_PAGE, after=first_page[-1])
    ids = [a.id for a in first_page + rest]
    assert len(ids) == len(set(ids))
    assert late.id in ids


@pytest.mark.parametrize("limit", [0, MAX_PAGE + 1, True])
def test_a_page_size_outside_the_bounds_raises_invalid_input(
    db: Database, world: World, limit: int
) -> None:
    with pytest.raises(InvalidInput), db.as_user(world.a.users["viewer"]) as conn:
        AgentRepository(conn).list(limit=limit)


def test_after_must_be_a_row_or_a_keyset(db: Database, world: World) -> None:
    with pytest.raises(InvalidInput), db.as_user(world.a.users["viewer"]) as conn:
        AgentRepository(conn).list(after="yesterday")  # type: ignore[arg-type]


def test_offset_and_after_together_raise_invalid_input(db: Database, world: World) -> None:
    with pytest.raises(InvalidInput), db.as_user(world.a.users["viewer"]) as conn:
        repo = KnowledgeBaseRepository(conn)
        repo.list(offset=1, after=repo.list()[0])


def test_a_user_sees_only_their_own_client(db: Database, world: World) -> None:
    with db.as_user(world.a.users["viewer"]) as conn:
        assert [c.id for c in ClientRepository(conn).list()] == [world.a.client_id]


def test_service_role_pages_through_clients_by_status(db: Database) -> None:
    with db.as_service_role() as conn:
        repo = ClientRepository(conn)
        suspended = repo.suspend(repo.create(name=unique("client")).id)
        listed = repo.list(status="suspended", limit=MAX_PAGE)
    assert suspended.id in [c.id for c in listed]
    assert {c.status for c in listed} == {"suspended"}


def test_a_tenant_admin_cannot_create_a_client(db: Database, world: World) -> None:
    with pytest.raises(PermissionDenied), db.as_user(world.a.users["admin"]) as conn:
        ClientRepository(conn).create(name=unique("client"))


def test_a_tenant_admin_cannot_suspend_their_client(db: Database, world: World) -> None:
    with pytest.raises(PermissionDenied), db.as_user(world.a.users["admin"]) as conn:
        ClientRepository(conn).suspend(world.a.client_id)


def test_users_list_the_profiles_of_their_tenant_by_role(db: Database, world: World) -> None:
    with db.as_user(world.a.users["viewer"]) as conn:
        admins = UserRepository(conn).list(role="admin")
    assert [u.id for u in admins] == [world.a.users["admin"]]


def test_a_tenant_admin_changes_a_role_in_their_tenant(db: Database, world: World) -> None:
    target = world.a.users["viewer"]
    with db.as_user(world.a.users["admin"]) as conn:
        assert UserRepository(conn).set_role(target, "viewer").role == "viewer"


def test_a_member_cannot_change_roles(db: Database, world: World) -> None:
    with pytest.raises(NotFound), db.as_user(world.a.users["member"]) as conn:
        UserRepository(conn).set_role(world.a.users["viewer"], "admin")


def test_an_admin_cannot_change_a_role_in_another_tenant(db: Database, world: World) -> None:
    with pytest.raises(NotFound), db.as_user(world.b.users["admin"]) as conn:
        UserRepository(conn).set_role(world.a.users["viewer"], "admin")


def test_a_member_cannot_create_an_agent(db: Database, world: World) -> None:
    with pytest.raises(PermissionDenied), db.as_user(world.a.users["member"]) as conn:
        AgentRepository(conn).create(name=unique("agent"))


def test_service_role_creates_an_agent_in_the_named_client(db: Database, world: World) -> None:
    with db.as_service_role() as conn:
        agent = AgentRepository(conn).create(
            name=unique("agent"), configuration={"model": "gpt"}, client_id=world.b.client_id
        )
    assert (agent.client_id, agent.configuration, agent.status) == (
        world.b.client_id,
        {"model": "gpt"},
        "active",
    )


def test_an_admin_archives_an_agent(db: Database, world: World) -> None:
    with db.as_user(world.a.users["admin"]) as conn:
        repo = AgentRepository(conn)
        agent = repo.update(repo.create(name=unique("agent")).id, status="archived")
        assert agent.status == "archived"
        assert agent.id in [a.id for a in repo.list(status="archived")]


def test_credential_metadata_never_carries_the_ciphertext(db: Database, world: World) -> None:
    fields = {f.name for f in dataclasses.fields(CredentialMetadata)}
    assert "encrypted_value" not in fields
    with db.as_user(world.a.users["admin"]) as conn:
        listed = CredentialMetadataRepository(conn).list()
    assert {c.id for c in listed} == set(world.a.rows["api_credentials"])


def test_credential_metadata_is_invisible_to_a_member(db: Database, world: World) -> None:
    with db.as_user(world.a.users["member"]) as conn:
        assert CredentialMetadataRepository(conn).list() == []
