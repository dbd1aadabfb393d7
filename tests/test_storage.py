"""renum_db.storage: upload with supabase-py's storage client to a local stub of the Storage API
(which writes storage.objects as the caller, so the bucket policies of migration 0012 decide),
then the public.documents row as the same user; no object is left behind when the row fails."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from renum_db.auth import SupabaseSettings
from renum_db.db import Database
from renum_db.errors import (
    CheckViolation,
    InvalidInput,
    InvalidToken,
    NotFound,
    PermissionDenied,
)
from renum_db.local_auth import LocalAuth
from renum_db.storage import DocumentStorage, object_name_for
from tests.supabase_stub import SupabaseStub
from tests.support import World

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
CONTENT = b"%PDF-1.7 a small contract\n"


@pytest.fixture(scope="module")
def local_auth() -> LocalAuth:
    return LocalAuth(SECRET)


@pytest.fixture(scope="module")
def stub(db_url: str, world: World, local_auth: LocalAuth) -> Iterator[SupabaseStub]:
    del world
    with SupabaseStub(db_url, local_auth) as s:
        yield s


@pytest.fixture(scope="module")
def storage(db_url: str, stub: SupabaseStub, local_auth: LocalAuth) -> Iterator[DocumentStorage]:
    settings = SupabaseSettings(url=stub.url, anon_key=stub.anon_key)
    with (
        Database(db_url, min_size=0, max_size=2) as db,
        DocumentStorage(db, settings, local_auth.verify) as s,
    ):
        yield s


@pytest.fixture(autouse=True)
def stub_reset(stub: SupabaseStub) -> None:
    stub.refuse_deletes = False
    stub.requests.clear()


def token_for(db_url: str, local_auth: LocalAuth, user_id: uuid.UUID) -> str:
    with psycopg.connect(db_url) as conn:
        return local_auth.mint_access_token(conn, user_id)


def objects_under(db_url: str, prefix: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select name from storage.objects where bucket_id = 'documents' and name like %s",
            (prefix + "%",),
        ).fetchall()
    return [str(r[0]) for r in rows]


def document_rows(db_url: str, name: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select client_id, source_type, source_url, file_type, file_size "
            "from public.documents where name = %s",
            (name,),
        ).fetchall()


def test_a_member_uploads_into_the_tenant_folder_and_gets_a_document_row(
    storage: DocumentStorage, stub: SupabaseStub, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    token = token_for(db_url, local_auth, world.a.users["member"])
    collection = world.a.rows["knowledge_collections"][0]
    stored = storage.upload(
        token, collection_id=collection, filename="contract.pdf", content=CONTENT
    )
    a = world.a.client_id
    assert re.fullmatch(rf"{a}/[0-9a-f-]{{36}}/contract\.pdf", stored.object_name)
    assert stored.key == f"documents/{stored.object_name}"
    doc = stored.document
    assert (doc.client_id, doc.collection_id, doc.name, doc.status) == (
        a,
        collection,
        "contract.pdf",
        "pending",
    )
    assert (doc.source_type, doc.source_url, doc.file_type, doc.file_size) == (
        "storage",
        stored.key,
        "application/pdf",
        len(CONTENT),
    )
    assert stub.files[stored.key] == CONTENT
    assert objects_under(db_url, stored.object_name) == [stored.object_name]


def test_the_object_is_owned_by_the_uploader(
    storage: DocumentStorage, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    member = world.a.users["admin"]
    stored = storage.upload(
        token_for(db_url, local_auth, member),
        collection_id=world.a.rows["knowledge_collections"][1],
        filename="notes.txt",
        content=b"notes",
        name="meeting notes",
    )
    with psycopg.connect(db_url) as conn:
        owner = conn.execute(
            "select owner from storage.objects where name = %s", (stored.object_name,)
        ).fetchone()
    assert owner == (member,)
    assert stored.document.name == "meeting notes"
    assert stored.document.file_type == "text/plain"


def test_a_viewer_cannot_upload_and_nothing_is_stored(
    storage: DocumentStorage, stub: SupabaseStub, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    token = token_for(db_url, local_auth, world.a.users["viewer"])
    with pytest.raises(PermissionDenied, match="row-level security"):
        storage.upload(
            token,
            collection_id=world.a.rows["knowledge_collections"][0],
            filename="viewer-upload.pdf",
            content=CONTENT,
        )
    assert not [k for k in stub.files if k.endswith("/viewer-upload.pdf")]
    assert document_rows(db_url, "viewer-upload.pdf") == []


def test_another_tenants_collection_is_not_found_before_any_upload(
    storage: DocumentStorage, stub: SupabaseStub, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    token = token_for(db_url, local_auth, world.a.users["member"])
    with pytest.raises(NotFound):
        storage.upload(
            token,
            collection_id=world.b.rows["knowledge_collections"][0],
            filename="cross.pdf",
            content=CONTENT,
        )
    assert not [r for r in stub.requests if r[1].startswith("/storage/")]


def test_a_failed_row_insert_removes_the_uploaded_object(
    storage: DocumentStorage, stub: SupabaseStub, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    token = token_for(db_url, local_auth, world.a.users["member"])
    before = set(stub.files)
    with pytest.raises(CheckViolation, match="documents_name_chk"):
        storage.upload(
            token,
            collection_id=world.a.rows["knowledge_collections"][0],
            filename="orphan.pdf",
            content=CONTENT,
            name="   ",  # a blank name fails the check constraint after the upload
        )
    methods = [m for m, path in stub.requests if path.startswith("/storage/")]
    assert methods == ["POST", "DELETE"]
    assert set(stub.files) == before
    left = objects_under(db_url, f"{world.a.client_id}/")
    assert not [o for o in left if o.endswith("/orphan.pdf")]


def test_when_the_cleanup_fails_too_the_original_error_names_the_object(
    storage: DocumentStorage, stub: SupabaseStub, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    stub.refuse_deletes = True
    token = token_for(db_url, local_auth, world.a.users["member"])
    with pytest.raises(CheckViolation) as caught:
        storage.upload(
            token,
            collection_id=world.a.rows["knowledge_collections"][0],
            filename="stuck.pdf",
            content=CONTENT,
            name="   ",
        )
    notes = " ".join(getattr(caught.value, "__notes__", []))
    left = [o for o in objects_under(db_url, f"{world.a.client_id}/") if o.endswith("/stuck.pdf")]
    assert len(left) == 1
    assert f"documents/{left[0]}" in notes
    assert token not in notes


@pytest.mark.parametrize("filename", ["", "a/b.pdf", "..", " padded.pdf", "tab\there.pdf"])
def test_an_unsafe_file_name_is_refused_before_any_upload(
    storage: DocumentStorage,
    stub: SupabaseStub,
    local_auth: LocalAuth,
    db_url: str,
    world: World,
    filename: str,
) -> None:
    token = token_for(db_url, local_auth, world.a.users["member"])
    with pytest.raises(InvalidInput):
        storage.upload(
            token,
            collection_id=world.a.rows["knowledge_collections"][0],
            filename=filename,
            content=CONTENT,
        )
    assert stub.requests == []


def test_an_invalid_token_is_refused(storage: DocumentStorage, world: World) -> None:
    with pytest.raises(InvalidToken):
        storage.upload(
            "not-a-token",
            collection_id=world.a.rows["knowledge_collections"][0],
            filename="x.pdf",
            content=CONTENT,
        )


def test_the_service_key_cannot_upload_on_behalf_of_nobody(
    storage: DocumentStorage, stub: SupabaseStub, world: World
) -> None:
    with pytest.raises(PermissionDenied, match="signed-in user"):
        storage.upload(
            stub.service_role_key,
            collection_id=world.a.rows["knowledge_collections"][0],
            filename="x.pdf",
            content=CONTENT,
        )


def test_object_names_put_the_tenant_first() -> None:
    client, upload = uuid.uuid4(), uuid.uuid4()
    assert object_name_for(client, "f.pdf", upload_id=upload) == f"{client}/{upload}/f.pdf"


# --- upload then ingest -----------------------------------------------------------------------


def test_upload_and_ingest_makes_a_searchable_ready_document_in_one_call(
    storage: DocumentStorage, stub: SupabaseStub, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    from renum_db.embeddings import LexicalHashingEmbeddings
    from renum_db.ingest import Ingestor
    from renum_db.search import Retrieval

    content = "O prazo de vigência do contrato é de vinte e quatro meses.\n".encode()
    member = world.a.users["member"]
    with Database(db_url, min_size=0, max_size=2) as db:
        embedder = LexicalHashingEmbeddings()
        result = storage.upload_and_ingest(
            token_for(db_url, local_auth, member),
            Ingestor(db, embedder),
            collection_id=world.a.rows["knowledge_collections"][0],
            filename="vigencia.md",
            content=content,
        )
        with db.as_user(member) as conn:
            hits = Retrieval(conn, embedder).search("vigência do contrato", match_count=1)
    assert result.status == "ready"
    assert result.chunks == 1
    assert hits[0].document_id == result.document_id
    assert document_rows(db_url, "vigencia.md")[0][1:4] == (
        "storage",
        next(k for k in stub.files if k.endswith("/vigencia.md")),
        "text/markdown",
    )


def test_upload_and_ingest_refuses_undecodable_bytes_before_uploading(
    storage: DocumentStorage, stub: SupabaseStub, local_auth: LocalAuth, db_url: str, world: World
) -> None:
    from renum_db.embeddings import LexicalHashingEmbeddings
    from renum_db.ingest import Ingestor

    with Database(db_url, min_size=0, max_size=1) as db, pytest.raises(InvalidInput):
        storage.upload_and_ingest(
            token_for(db_url, local_auth, world.a.users["member"]),
            Ingestor(db, LexicalHashingEmbeddings()),
            collection_id=world.a.rows["knowledge_collections"][0],
            filename="scan.txt",
            content=b"\xff\xfe\x00binary",
        )
    assert stub.requests == []
    assert document_rows(db_url, "scan.txt") == []
