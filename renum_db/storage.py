"""Document files in Supabase Storage, each with its public.documents row, written as the user.

Layout: the private bucket `documents` (migration 0012) holds a tenant's files under a folder
named after the tenant, `<client_id>/<uuid>/<filename>`; the random middle folder keeps two uploads
of the same file name apart. The policies of migration 0012 on storage.objects let a tenant's
viewers read and its members write only under their own `<client_id>/`.

`DocumentStorage.upload` runs both halves with the user's own JWT, so both go through RLS:
1. the file goes to Storage (supabase-py's storage client, the user's token as bearer): Storage
   inserts the storage.objects row as the user, so the bucket policies decide;
2. the public.documents row is inserted through `Database.as_claims` with the verified claims of
   the same token (the RLS path PostgREST uses): source_type 'storage', source_url the object's
   key `documents/<client_id>/<uuid>/<filename>`, file_type the MIME type, file_size in bytes.
If step 2 fails, the uploaded object is deleted again (as the user), so no file is left without
its row; if even that fails, the original error is raised with a note naming the object.

The tenant folder is the `client_id` of the target collection as the user sees it (RLS), so a
collection of another tenant is NotFound before anything is uploaded, and the policy checks the
folder against the user's own tenant again.
"""

from __future__ import annotations

import logging
import mimetypes
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Self
from uuid import UUID

import httpx
from storage3 import SyncStorageClient
from storage3._sync.file_api import SyncBucketProxy
from storage3.exceptions import StorageApiError

from renum_db.auth import DEFAULT_TIMEOUT, SupabaseSettings
from renum_db.db import Database
from renum_db.errors import (
    ConnectionFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
    for_service_error,
)
from renum_db.ingest import Ingestor, IngestResult, ProgressCallback
from renum_db.repositories.knowledge import (
    Document,
    DocumentRepository,
    KnowledgeCollectionRepository,
)

__all__ = [
    "DOCUMENTS_BUCKET",
    "DocumentStorage",
    "StoredDocument",
    "check_object_name",
    "object_name_for",
]

log = logging.getLogger(__name__)

DOCUMENTS_BUCKET: Final = "documents"
MAX_FILENAME_LENGTH: Final = 255

TokenVerifier = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """An uploaded file and its public.documents row."""

    document: Document
    bucket: str
    object_name: str  # the name inside the bucket: <client_id>/<uuid>/<filename>

    @property
    def key(self) -> str:
        """`<bucket>/<object_name>`, also stored in documents.source_url."""
        return f"{self.bucket}/{self.object_name}"


def _check_filename(filename: str) -> None:
    """The file-name rule of private.storage_object_client_id, exactly: 1 to 255 characters, not
    `.` or `..`, no `/`, `\\` or control character (U+0000-U+001F, U+007F), no leading or
    trailing space."""
    if not filename or filename in (".", "..") or filename != filename.strip(" "):
        raise InvalidInput(f"invalid file name {filename!r}")
    if len(filename) > MAX_FILENAME_LENGTH:
        raise InvalidInput(f"the file name is longer than {MAX_FILENAME_LENGTH} characters")
    if any(c in filename for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise InvalidInput(f"the file name {filename!r} contains a slash or a control character")


def _canonical_uuid(text: str, what: str) -> UUID:
    try:
        value = UUID(text)
    except ValueError:
        raise InvalidInput(f"the {what} {text!r} is not a uuid") from None
    if str(value) != text:  # one spelling per folder: lowercase, hyphenated, no braces
        raise InvalidInput(f"the {what} {text!r} is not a canonical lowercase uuid")
    return value


def check_object_name(name: str) -> UUID:
    """Validate `<client_id>/<uuid>/<file name>` as the storage policies do (through
    private.storage_object_client_id) and return the client id; InvalidInput otherwise (`..`,
    empty or `.` segments, a leading slash, uppercase uuids, more or fewer segments)."""
    parts = name.split("/")
    if len(parts) != 3:
        raise InvalidInput(f"object name {name!r} is not <client_id>/<uuid>/<file name>")
    client_id = _canonical_uuid(parts[0], "client folder")
    _canonical_uuid(parts[1], "upload folder")
    _check_filename(parts[2])
    return client_id


def object_name_for(client_id: UUID, filename: str, *, upload_id: UUID | None = None) -> str:
    """`<client_id>/<uuid>/<filename>`: the name of an uploaded file inside the bucket, checked
    with the rule the storage policies apply."""
    name = f"{client_id}/{upload_id or uuid.uuid4()}/{filename}"
    check_object_name(name)
    return name


@contextmanager
def storage_errors() -> Iterator[None]:
    """The boundary of supabase-py's Storage calls: errors -> renum_db exceptions, not chained
    (httpx errors hold the request headers, hence keys and tokens)."""
    try:
        yield
    except StorageApiError as exc:
        cls = for_service_error(exc.code, exc.status)
        raise cls(
            f"Supabase Storage: {exc.message}", detail=f"code={exc.code} status={exc.status}"
        ) from None
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"Supabase Storage unreachable: {type(exc).__name__}") from None


class DocumentStorage:
    """Uploads documents for users. Thread-safe: no per-user state is kept."""

    def __init__(
        self,
        db: Database,
        settings: SupabaseSettings,
        verify_token: TokenVerifier,
        *,
        bucket: str = DOCUMENTS_BUCKET,
        http_client: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """`verify_token` checks a user's JWT and returns its claims (for instance
        `LocalAuth(secret).verify`, which checks signature, exp and aud with the JWT secret)."""
        self._db = db
        self._settings = settings
        self._verify = verify_token
        self.bucket = bucket
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, follow_redirects=True)

    def __repr__(self) -> str:
        return f"DocumentStorage(url={self._settings.url!r}, bucket={self.bucket!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _files(self, access_token: str) -> SyncBucketProxy:
        """supabase-py's storage client for the bucket, acting as the holder of `access_token`."""
        client = SyncStorageClient(
            url=self._settings.api_url("storage") + "/",
            headers={"apiKey": self._settings.anon_key, "Authorization": f"Bearer {access_token}"},
            http_client=self._http,
        )
        return client.from_(self.bucket)

    def upload(
        self,
        access_token: str,
        *,
        collection_id: UUID,
        filename: str,
        content: bytes,
        content_type: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> StoredDocument:
        """Upload `content` as the user of `access_token` into their tenant's folder and create
        the document row (status 'pending') in `collection_id`. Raises InvalidToken,
        NotFound (collection not visible), PermissionDenied (role below member), Conflict,
        InvalidInput, or whatever the row insert raises (the object is then removed)."""
        claims = dict(self._verify(access_token))
        if claims.get("role") != "authenticated":
            raise PermissionDenied("documents are uploaded as a signed-in user")
        _check_filename(filename)
        mime = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"

        with self._db.as_claims(claims) as conn:
            collection = KnowledgeCollectionRepository(conn).get(collection_id)
        if collection is None:
            raise NotFound(f"no knowledge collection {collection_id} visible to the caller")
        object_name = object_name_for(collection.client_id, filename)
        stored_key = f"{self.bucket}/{object_name}"

        files = self._files(access_token)
        with storage_errors():
            files.upload(object_name, content, {"content-type": mime, "upsert": "false"})
        try:
            with self._db.as_claims(claims) as conn:
                document = DocumentRepository(conn).create(
                    collection_id=collection_id,
                    name=filename if name is None else name,
                    source_type="storage",
                    source_url=stored_key,
                    file_type=mime,
                    file_size=len(content),
                    metadata=metadata,
                )
        except BaseException as exc:
            self._remove_orphan(files, object_name, exc)
            raise
        return StoredDocument(document=document, bucket=self.bucket, object_name=object_name)

    def upload_and_ingest(
        self,
        access_token: str,
        ingestor: Ingestor,
        *,
        collection_id: UUID,
        filename: str,
        content: bytes,
        content_type: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        encoding: str = "utf-8",
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Upload a text document (e.g. .txt, .md) and ingest it, as the user of
        `access_token`: one call from bytes to a 'ready' document with searchable chunks.

        The text is decoded before anything is written (InvalidInput if it is not `encoding`
        or has no content). If ingestion fails the object and the document row stay, the row
        marked 'failed' with the reason, so it can be ingested again
        (`ingestor.ingest_document(document_id=...)`)."""
        try:
            text = content.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise InvalidInput(f"{filename} is not {encoding} text: {exc}") from None
        if not text.strip():
            raise InvalidInput(f"{filename} has no text to ingest")
        stored = self.upload(
            access_token,
            collection_id=collection_id,
            filename=filename,
            content=content,
            content_type=content_type,
            name=name,
            metadata=metadata,
        )
        document = stored.document
        return ingestor.ingest_document(
            claims=self._verify(access_token),
            collection_id=collection_id,
            document_id=document.id,
            name=document.name,
            text=text,
            source_type=document.source_type,
            progress=progress,
        )

    def _remove_orphan(
        self, files: SyncBucketProxy, object_name: str, cause: BaseException
    ) -> None:
        """Delete an object whose row could not be written; never masks `cause`."""
        key = f"{self.bucket}/{object_name}"
        try:
            with storage_errors():
                removed = files.remove([object_name])
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if any(isinstance(o, dict) and o.get("name") == object_name for o in removed):
                return
            problem = "Storage deleted nothing (object not visible to the user)"
        note = f"the uploaded object {key} is left without a documents row ({problem})"
        log.warning("orphan storage object: %s", note)
        cause.add_note(note)
