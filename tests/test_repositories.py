"""The knowledge repositories end to end through `Database`, as the backend would use them.

`Database` commits, so rows created here stay for the rest of the module: every test creates its
own rows under unique names and never relies on the seeded row counts.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from renum_db.db import Database
from renum_db.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NotNullViolation,
    PermissionDenied,
    ReferenceViolation,
)
from renum_db.repositories import (
    MAX_LIMIT,
    Document,
    DocumentRepository,
    KnowledgeBase,
    KnowledgeBaseRepository,
    KnowledgeCollection,
    KnowledgeCollectionRepository,
)
from tests.support import World


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=2) as database:
        yield database


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:12]}"


def member_kb(db: Database, w: World) -> KnowledgeBase:
    with db.as_user(w.a.users["member"]) as conn:
        return KnowledgeBaseRepository(conn).create(name=unique("kb"))


def member_collection(db: Database, w: World) -> KnowledgeCollection:
    kb = member_kb(db, w)
    with db.as_user(w.a.users["member"]) as conn:
        return KnowledgeCollectionRepository(conn).create(
            knowledge_base_id=kb.id, name=unique("col")
        )


def member_document(db: Database, w: World) -> Document:
    col = member_collection(db, w)
    with db.as_user(w.a.users["member"]) as conn:
        return DocumentRepository(conn).create(collection_id=col.id, name=unique("doc"))


@pytest.mark.parametrize(
    ("row_type", "table"),
    [
        (KnowledgeBase, "knowledge_bases"),
        (KnowledgeCollection, "knowledge_collections"),
        (Document, "documents"),
    ],
)
def test_row_dataclasses_have_exactly_the_table_columns(
    conn: psycopg.Connection[Any], row_type: type[Any], table: str
) -> None:
    columns = [
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'public' and table_name = %s order by ordinal_position",
            (table,),
        )
    ]
    assert [f.name for f in dataclasses.fields(row_type)] == columns


def test_member_creates_a_knowledge_base_in_their_own_tenant_by_default(
    db: Database, world: World
) -> None:
    name = unique("kb")
    with db.as_user(world.a.users["member"]) as conn:
        kb = KnowledgeBaseRepository(conn).create(name=name, description="about")
    assert kb.client_id == world.a.client_id
    assert (kb.name, kb.description) == (name, "about")
    assert kb.created_at == kb.updated_at


def test_member_creates_a_collection_in_a_knowledge_base_of_their_tenant(
    db: Database, world: World
) -> None:
    kb = member_kb(db, world)
    with db.as_user(world.a.users["member"]) as conn:
        col = KnowledgeCollectionRepository(conn).create(knowledge_base_id=kb.id, name="col")
    assert (col.client_id, col.knowledge_base_id, col.name) == (world.a.client_id, kb.id, "col")


def test_member_creates_a_document_that_gets_the_column_defaults(
    db: Database, world: World
) -> None:
    col = member_collection(db, world)
    with db.as_user(world.a.users["member"]) as conn:
        doc = DocumentRepository(conn).create(collection_id=col.id, name="doc")
    assert doc.client_id == world.a.client_id
    assert (doc.source_type, doc.status, doc.metadata) == ("upload", "pending", {})
    assert (doc.source_url, doc.file_type, doc.file_size, doc.error) == (None, None, None, None)


def test_member_creates_a_document_with_every_writable_column(db: Database, world: World) -> None:
    col = member_collection(db, world)
    with db.as_user(world.a.users["member"]) as conn:
        doc = DocumentRepository(conn).create(
            collection_id=col.id,
            name="report.pdf",
            source_type="url",
            source_url="https://example.com/report.pdf",
            file_type="application/pdf",
            file_size=3_000_000_000,
            status="failed",
            error="timeout",
            metadata={"pages": 3, "tags": ["a"]},
        )
    assert doc.collection_id == col.id
    assert (doc.source_type, doc.source_url) == ("url", "https://example.com/report.pdf")
    assert (doc.file_type, doc.file_size) == ("application/pdf", 3_000_000_000)
    assert (doc.status, doc.error) == ("failed", "timeout")
    assert doc.metadata == {"pages": 3, "tags": ["a"]}


def test_viewer_gets_a_row_of_their_tenant(db: Database, world: World) -> None:
    doc = member_document(db, world)
    with db.as_user(world.a.users["viewer"]) as conn:
        assert DocumentRepository(conn).get(doc.id) == doc


def test_viewer_lists_the_rows_under_a_parent_oldest_first(db: Database, world: World) -> None:
    kb = member_kb(db, world)
    created = []
    for name in ("first", "second", "third"):
        with db.as_user(world.a.users["member"]) as conn:
            created.append(
                KnowledgeCollectionRepository(conn).create(knowledge_base_id=kb.id, name=name)
            )
    with db.as_user(world.a.users["viewer"]) as conn:
        listed = KnowledgeCollectionRepository(conn).list(knowledge_base_id=kb.id)
    assert listed == created


def test_list_filters_documents_by_collection(db: Database, world: World) -> None:
    doc = member_document(db, world)
    other = member_document(db, world)
    with db.as_user(world.a.users["viewer"]) as conn:
        repo = DocumentRepository(conn)
        assert repo.list(collection_id=doc.collection_id) == [doc]
        assert {doc.id, other.id} <= {d.id for d in repo.list(limit=MAX_LIMIT)}


def test_list_pages_with_limit_and_offset(db: Database, world: World) -> None:
    kb = member_kb(db, world)
    with db.as_user(world.a.users["member"]) as conn:
        repo = KnowledgeCollectionRepository(conn)
        for i in range(5):
            repo.create(knowledge_base_id=kb.id, name=f"c{i}")
    with db.as_user(world.a.users["viewer"]) as conn:
        repo = KnowledgeCollectionRepository(conn)
        everything = repo.list(knowledge_base_id=kb.id)
        pages = [repo.list(knowledge_base_id=kb.id, limit=2, offset=o) for o in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [c for page in pages for c in page] == everything


def test_viewer_cannot_create_a_knowledge_base(db: Database, world: World) -> None:
    # The client_id default resolves the caller's tenant only for members and above, so the
    # viewer's row has a null client_id, which the insert policy rejects before NOT NULL is checked.
    with (
        pytest.raises(PermissionDenied, match="row-level security"),
        db.as_user(world.a.users["viewer"]) as conn,
    ):
        KnowledgeBaseRepository(conn).create(name=unique("kb"))


def test_viewer_cannot_update_a_row_they_can_read(db: Database, world: World) -> None:
    kb = member_kb(db, world)
    with pytest.raises(NotFound), db.as_user(world.a.users["viewer"]) as conn:
        KnowledgeBaseRepository(conn).update(kb.id, name=unique("renamed"))


def test_another_tenants_user_gets_none(db: Database, world: World) -> None:
    doc = member_document(db, world)
    with db.as_user(world.b.users["admin"]) as conn:
        assert DocumentRepository(conn).get(doc.id) is None


def test_another_tenants_user_lists_nothing_of_the_tenant(db: Database, world: World) -> None:
    doc = member_document(db, world)
    with db.as_user(world.b.users["admin"]) as conn:
        assert DocumentRepository(conn).list(collection_id=doc.collection_id) == []
        everything = DocumentRepository(conn).list(limit=MAX_LIMIT)
    assert everything
    assert {d.client_id for d in everything} == {world.b.client_id}


def test_anon_cannot_read_knowledge_bases(db: Database, world: World) -> None:
    with pytest.raises(PermissionDenied, match="permission denied"), db.as_anon() as conn:
        KnowledgeBaseRepository(conn).list()


def test_update_by_a_member_changes_the_given_columns_and_updated_at(
    db: Database, world: World
) -> None:
    kb = member_kb(db, world)
    name = unique("renamed")
    with db.as_user(world.a.users["member"]) as conn:
        updated = KnowledgeBaseRepository(conn).update(kb.id, name=name)
    assert updated.name == name
    assert updated.created_at == kb.created_at
    assert updated.updated_at > kb.updated_at


def test_update_leaves_the_columns_given_as_none_unchanged(db: Database, world: World) -> None:
    col = member_collection(db, world)
    with db.as_user(world.a.users["member"]) as conn:
        repo = DocumentRepository(conn)
        doc = repo.create(collection_id=col.id, name="doc", file_type="text/plain", file_size=7)
        updated = repo.update(doc.id, status="ready", metadata={"k": "v"})
    assert (updated.status, updated.metadata) == ("ready", {"k": "v"})
    assert (updated.name, updated.file_type, updated.file_size) == ("doc", "text/plain", 7)


def test_update_moves_a_document_to_another_collection_of_the_tenant(
    db: Database, world: World
) -> None:
    doc = member_document(db, world)
    target = member_collection(db, world)
    with db.as_user(world.a.users["member"]) as conn:
        moved = DocumentRepository(conn).update(doc.id, collection_id=target.id)
    assert moved.collection_id == target.id


def test_update_of_a_row_invisible_to_the_caller_raises_not_found(
    db: Database, world: World
) -> None:
    kb = member_kb(db, world)
    with pytest.raises(NotFound), db.as_user(world.b.users["admin"]) as conn:
        KnowledgeBaseRepository(conn).update(kb.id, name=unique("stolen"))
    with db.as_user(world.a.users["viewer"]) as conn:
        assert KnowledgeBaseRepository(conn).get(kb.id) == kb


def test_update_of_a_missing_row_raises_not_found(db: Database, world: World) -> None:
    with pytest.raises(NotFound), db.as_user(world.a.users["member"]) as conn:
        DocumentRepository(conn).update(uuid.uuid4(), name="nothing")


def test_delete_returns_true_then_false(db: Database, world: World) -> None:
    doc = member_document(db, world)
    with db.as_user(world.a.users["member"]) as conn:
        assert DocumentRepository(conn).delete(doc.id) is True
    with db.as_user(world.a.users["member"]) as conn:
        assert DocumentRepository(conn).delete(doc.id) is False
        assert DocumentRepository(conn).get(doc.id) is None


def test_another_tenants_admin_cannot_delete(db: Database, world: World) -> None:
    kb = member_kb(db, world)
    with db.as_user(world.b.users["admin"]) as conn:
        assert KnowledgeBaseRepository(conn).delete(kb.id) is False
    with db.as_user(world.a.users["viewer"]) as conn:
        assert KnowledgeBaseRepository(conn).get(kb.id) == kb


def test_service_role_create_without_client_id_raises_not_null_violation(db: Database) -> None:
    # service_role has no tenant: the client_id default resolves to null.
    with pytest.raises(NotNullViolation), db.as_service_role() as conn:
        KnowledgeBaseRepository(conn).create(name=unique("kb"))


def test_service_role_create_with_client_id_works(db: Database, world: World) -> None:
    with db.as_service_role() as conn:
        kb = KnowledgeBaseRepository(conn).create(name=unique("kb"), client_id=world.b.client_id)
    assert kb.client_id == world.b.client_id
    with db.as_user(world.b.users["viewer"]) as conn:
        assert KnowledgeBaseRepository(conn).get(kb.id) == kb


def test_member_cannot_create_a_collection_under_another_tenants_knowledge_base(
    db: Database, world: World
) -> None:
    # The row gets client_id = A by default, so the insert policy passes; the composite foreign
    # key (client_id, knowledge_base_id) -> knowledge_bases (client_id, id) then finds no
    # (A, B's knowledge base) and rejects it: 23503, not an RLS error. (The foreign-key check
    # bypasses RLS, so this reveals only that A has no such knowledge base.)
    foreign_kb = world.b.rows["knowledge_bases"][0]
    with pytest.raises(ReferenceViolation) as info, db.as_user(world.a.users["member"]) as conn:
        KnowledgeCollectionRepository(conn).create(knowledge_base_id=foreign_kb, name="x")
    assert info.value.constraint == "knowledge_collections_knowledge_base_fk"


def test_member_cannot_create_a_row_for_another_tenant_by_passing_its_client_id(
    db: Database, world: World
) -> None:
    with (
        pytest.raises(PermissionDenied, match="row-level security"),
        db.as_user(world.a.users["member"]) as conn,
    ):
        KnowledgeBaseRepository(conn).create(name=unique("kb"), client_id=world.b.client_id)


def test_duplicate_knowledge_base_name_raises_conflict(db: Database, world: World) -> None:
    kb = member_kb(db, world)
    with pytest.raises(Conflict) as info, db.as_user(world.a.users["admin"]) as conn:
        KnowledgeBaseRepository(conn).create(name=kb.name)
    assert info.value.constraint == "knowledge_bases_client_id_name_key"


@pytest.mark.parametrize(
    ("limit", "offset"),
    [(0, 0), (-1, 0), (MAX_LIMIT + 1, 0), (True, 0), (1.5, 0), ("10", 0), (10, -1), (10, None)],
)
def test_invalid_limit_or_offset_raises_invalid_input(
    db: Database, world: World, limit: Any, offset: Any
) -> None:
    with pytest.raises(InvalidInput), db.as_user(world.a.users["viewer"]) as conn:
        DocumentRepository(conn).list(limit=limit, offset=offset)
