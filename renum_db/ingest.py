"""Document ingestion: text -> chunks -> embeddings -> document_chunks, as the caller, under RLS.

Every database step is its own transaction run through `Database.as_claims(claims)`, so a user
ingests exactly as they could write over PostgREST (viewers cannot, other tenants' collections are
invisible) and the backend (`{"role": "service_role"}`) must name the tenant with `client_id`:

a. a new document is inserted with status 'pending' (a re-ingest, `document_id` given, instead
   checks that the document is visible, in that collection and tenant: NotFound otherwise);
b. status 'processing', error cleared;
c. the text is chunked and the chunks embedded, with no transaction open: an embedding API call
   never holds locks or a pooled connection;
d. one transaction replaces the chunks atomically: mark the document 'ready' (which also locks
   it, so two ingests of one document serialize), lock its knowledge base's text search language,
   delete the old chunks, binary-COPY the new rows into a temporary staging table and insert them
   from there. PostgreSQL refuses COPY FROM into a table with row-level security for roles
   subject to it, so the staging table takes the COPY and `insert ... select` goes through the
   policies and the column grants like any API write. text_search_config is passed explicitly so
   the per-row trigger that would look it up is skipped;
e. if c or d fails, d's transaction is rolled back (the previous chunks stay), the document is
   marked 'failed' with a short error (the exception type and, for database errors, Postgres's
   primary message; never a provider's message, which may echo credentials) and a renum_db
   exception is raised.

The documents trigger records every status change in document_versions; nothing here writes
versions. Memory: one document's chunks and embeddings (float32) are held at a time, the COPY
streams one row per chunk, and `ingest_documents` takes any iterable and yields results lazily.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.types.json import Jsonb

from renum_db.chunking import Chunk, chunk_text, validate_chunking
from renum_db.db import Database
from renum_db.embeddings import EmbeddingProvider
from renum_db.errors import (
    ConfigurationError,
    DatabaseError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RenumDBError,
)
from renum_db.repositories.knowledge import DocumentRepository
from renum_db.vector import Vector, register_vector

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "DocumentInput",
    "EmbeddingProvider",
    "IngestResult",
    "IngestionFailed",
    "Ingestor",
]

EMBEDDING_DIMENSIONS: Final = 1536
"""document_chunks.embedding is vector(1536)."""

MAX_ERROR_LENGTH: Final = 300


class IngestionFailed(RenumDBError):
    """Ingestion failed outside the database (e.g. the embedding provider raised); the document
    was marked 'failed' and its previous chunks were kept. The cause is chained."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The outcome of one successful ingestion."""

    document_id: UUID
    chunks: int
    status: str


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """One document for `Ingestor.ingest_documents` (the arguments of `ingest_document`)."""

    collection_id: UUID
    name: str
    text: str
    metadata: Mapping[str, Any] | None = None
    source_type: str = "text"
    source_url: str | None = None
    file_type: str | None = None
    document_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    client_id: UUID
    document_id: UUID


_TENANT = "select private.request_client_id(%(client_id)s::uuid)"

_COLLECTION = """
    select id from public.knowledge_collections
     where client_id = %(client_id)s and id = %(collection_id)s
"""

_SET_PROCESSING = """
    update public.documents
       set status = 'processing', error = null
     where client_id = %(client_id)s and id = %(document_id)s
    returning id
"""

_SET_READY = """
    update public.documents
       set status = 'ready',
           error = null,
           name = %(name)s,
           metadata = coalesce(%(metadata)s::jsonb, metadata),
           source_url = coalesce(%(source_url)s::text, source_url),
           file_type = coalesce(%(file_type)s::text, file_type)
     where client_id = %(client_id)s and id = %(document_id)s
    returning id
"""

_SET_FAILED = """
    update public.documents
       set status = 'failed', error = %(error)s
     where client_id = %(client_id)s and id = %(document_id)s
"""

# FOR SHARE on the knowledge base: a concurrent change of its language waits for this
# transaction, then re-parses the chunks written here (its trigger updates all of them).
_TEXT_SEARCH_CONFIG = """
    select kb.text_search_config::text
      from public.documents as d
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
      join public.knowledge_bases as kb
        on kb.client_id = k.client_id and kb.id = k.knowledge_base_id
     where d.client_id = %(client_id)s and d.id = %(document_id)s
       for share of kb
"""

_DELETE_CHUNKS = """
    delete from public.document_chunks
     where client_id = %(client_id)s and document_id = %(document_id)s
"""

_CREATE_STAGING = """
    create temporary table renum_ingest_chunks (
      chunk_index integer not null,
      content text not null,
      metadata jsonb not null,
      embedding extensions.vector(1536) not null
    ) on commit drop
"""

_COPY_STAGING = """
    copy pg_temp.renum_ingest_chunks (chunk_index, content, metadata, embedding)
    from stdin (format binary)
"""

_STAGING_TYPES: Final = ["int4", "text", "jsonb", "vector"]

_INSERT_FROM_STAGING = """
    insert into public.document_chunks
      (client_id, document_id, content, chunk_index, metadata, embedding, text_search_config)
    select %(client_id)s::uuid, %(document_id)s::uuid, s.content, s.chunk_index, s.metadata,
           s.embedding, %(text_search_config)s::text
      from pg_temp.renum_ingest_chunks as s
     order by s.chunk_index
"""


def _is_service(claims: Mapping[str, Any] | None) -> bool:
    return claims is not None and claims.get("role") == "service_role"


def _failure_message(exc: BaseException, stage: str) -> str:
    """A short, credential-free description of a failure for documents.error."""
    if isinstance(exc, RenumDBError):
        message = f"{stage} failed: {type(exc).__name__}: {exc}"
    else:
        message = f"{stage} failed: {type(exc).__name__}"
    return message[:MAX_ERROR_LENGTH]


def _copy_rows(
    cur: Cursor[Any], chunks: Sequence[Chunk], embeddings: Sequence[array[float]]
) -> None:
    """Stream the chunks into the staging table with binary COPY, one row at a time."""
    with cur.copy(_COPY_STAGING) as copy:
        copy.set_types(_STAGING_TYPES)
        for chunk, embedding in zip(chunks, embeddings, strict=True):
            copy.write_row(
                (
                    chunk.index,
                    chunk.content,
                    Jsonb({"start": chunk.start, "end": chunk.end}),
                    Vector(embedding),
                )
            )


class Ingestor:
    """Ingests documents through `db` as the caller named by JWT claims, embedding with
    `embedder` (its vectors must have EMBEDDING_DIMENSIONS dimensions)."""

    def __init__(
        self, db: Database, embedder: EmbeddingProvider, *, embed_batch_size: int = 64
    ) -> None:
        if embedder.dimensions != EMBEDDING_DIMENSIONS:
            raise ConfigurationError(
                f"embedding model {embedder.model!r} produces {embedder.dimensions} dimensions;"
                f" document_chunks.embedding holds {EMBEDDING_DIMENSIONS}"
            )
        if isinstance(embed_batch_size, bool) or embed_batch_size < 1:
            raise ConfigurationError(f"embed_batch_size must be >= 1, got {embed_batch_size!r}")
        self._db = db
        self._embedder = embedder
        self._batch = embed_batch_size

    def ingest_document(
        self,
        *,
        claims: Mapping[str, Any] | None,
        collection_id: UUID,
        name: str,
        text: str,
        metadata: Mapping[str, Any] | None = None,
        source_type: str = "text",
        source_url: str | None = None,
        file_type: str | None = None,
        document_id: UUID | None = None,
        chunk_size: int = 1000,
        overlap: int = 200,
        client_id: UUID | None = None,
    ) -> IngestResult:
        """Create (or, with `document_id`, re-ingest) a document from `text` and make it 'ready'.

        Raises NotFound if the collection (or document) is not visible to the caller,
        PermissionDenied if the caller may not write it, InvalidInput for bad arguments
        (service_role without `client_id`, text without content, chunking parameters) and, after
        marking the document 'failed', the error that stopped embedding or writing the chunks
        (IngestionFailed for a non-database error).
        """
        validate_chunking(chunk_size, overlap)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text has no content to ingest")
        if _is_service(claims) and client_id is None:
            raise InvalidInput(
                "client_id is required when ingesting as service_role:"
                " the backend has no tenant of its own",
                sqlstate="22004",
            )
        target = self._prepare(
            claims,
            client_id=client_id,
            collection_id=collection_id,
            document_id=document_id,
            name=name,
            metadata=metadata,
            source_type=source_type,
            source_url=source_url,
            file_type=file_type,
        )
        self._set_processing(claims, target)

        stage = "embedding"
        try:
            chunks = chunk_text(text, chunk_size=chunk_size, overlap=overlap)
            embeddings = self._embed(chunks)
            stage = "writing chunks"
            self._replace(
                claims,
                target,
                chunks,
                embeddings,
                name=name,
                metadata=metadata if document_id is not None else None,
                source_url=source_url,
                file_type=file_type,
            )
        except Exception as exc:
            message = _failure_message(exc, stage)
            try:
                self._set_failed(claims, target, message)
            except RenumDBError as mark_exc:
                exc.add_note(f"the document could not be marked failed: {mark_exc}")
            if isinstance(exc, RenumDBError):
                raise
            raise IngestionFailed(message) from exc
        return IngestResult(document_id=target.document_id, chunks=len(chunks), status="ready")

    def ingest_documents(
        self,
        documents: Iterable[DocumentInput],
        *,
        claims: Mapping[str, Any] | None,
        client_id: UUID | None = None,
        chunk_size: int = 1000,
        overlap: int = 200,
    ) -> Iterator[IngestResult]:
        """Ingest `documents` one at a time (one replace transaction each), yielding each result
        as it is done. Lazy: nothing happens until iterated. The first failure is raised (after
        marking that document 'failed'); documents already yielded stay ingested."""
        validate_chunking(chunk_size, overlap)
        return self._ingest_each(documents, claims, client_id, chunk_size, overlap)

    def _ingest_each(
        self,
        documents: Iterable[DocumentInput],
        claims: Mapping[str, Any] | None,
        client_id: UUID | None,
        chunk_size: int,
        overlap: int,
    ) -> Iterator[IngestResult]:
        for doc in documents:
            yield self.ingest_document(
                claims=claims,
                collection_id=doc.collection_id,
                name=doc.name,
                text=doc.text,
                metadata=doc.metadata,
                source_type=doc.source_type,
                source_url=doc.source_url,
                file_type=doc.file_type,
                document_id=doc.document_id,
                chunk_size=chunk_size,
                overlap=overlap,
                client_id=client_id,
            )

    # -- steps ------------------------------------------------------------------------------

    def _tenant(self, conn: Connection[Any], client_id: UUID | None) -> UUID:
        """The one tenant the caller may write: their own client, or the one service_role names."""
        row = conn.execute(_TENANT, {"client_id": client_id}).fetchone()
        assert row is not None
        return UUID(str(row[0]))

    def _prepare(
        self,
        claims: Mapping[str, Any] | None,
        *,
        client_id: UUID | None,
        collection_id: UUID,
        document_id: UUID | None,
        name: str,
        metadata: Mapping[str, Any] | None,
        source_type: str,
        source_url: str | None,
        file_type: str | None,
    ) -> _Target:
        """Step a: insert the pending document, or check the re-ingested one is visible."""
        with self._db.as_claims(claims) as conn:
            tenant = self._tenant(conn, client_id)
            documents = DocumentRepository(conn)
            if document_id is not None:
                doc = documents.get(document_id)
                if doc is None or doc.client_id != tenant or doc.collection_id != collection_id:
                    raise NotFound(
                        f"document {document_id} not found in collection {collection_id}"
                        " or not visible to the caller",
                        sqlstate="PT404",
                    )
                return _Target(client_id=tenant, document_id=doc.id)
            params = {"client_id": tenant, "collection_id": collection_id}
            if conn.execute(_COLLECTION, params).fetchone() is None:
                raise NotFound(
                    f"knowledge collection {collection_id} not found or not visible to the caller",
                    sqlstate="PT404",
                )
            created = documents.create(
                collection_id=collection_id,
                name=name,
                source_type=source_type,
                source_url=source_url,
                file_type=file_type,
                status="pending",
                metadata=metadata,
                client_id=tenant,
            )
            return _Target(client_id=tenant, document_id=created.id)

    def _set_processing(self, claims: Mapping[str, Any] | None, target: _Target) -> None:
        """Step b."""
        params = {"client_id": target.client_id, "document_id": target.document_id}
        with self._db.as_claims(claims) as conn:
            if conn.execute(_SET_PROCESSING, params).fetchone() is None:
                raise PermissionDenied(
                    f"the caller may not modify document {target.document_id}", sqlstate="42501"
                )

    def _embed(self, chunks: Sequence[Chunk]) -> list[array[float]]:
        """Step c: embed in batches, checking the provider's answer; float32 like pgvector."""
        embeddings: list[array[float]] = []
        for first in range(0, len(chunks), self._batch):
            batch = [c.content for c in chunks[first : first + self._batch]]
            vectors = self._embedder.embed(batch)
            if len(vectors) != len(batch):
                raise InvalidInput(
                    f"the embedding provider returned {len(vectors)} vectors for {len(batch)} texts"
                )
            for vector in vectors:
                if len(vector) != EMBEDDING_DIMENSIONS:
                    raise InvalidInput(
                        f"the embedding provider returned a vector of {len(vector)} dimensions,"
                        f" expected {EMBEDDING_DIMENSIONS}"
                    )
                if not all(math.isfinite(v) for v in vector):
                    raise InvalidInput("the embedding provider returned a non-finite component")
                embeddings.append(array("f", vector))
        return embeddings

    def _replace(
        self,
        claims: Mapping[str, Any] | None,
        target: _Target,
        chunks: Sequence[Chunk],
        embeddings: Sequence[array[float]],
        *,
        name: str,
        metadata: Mapping[str, Any] | None,
        source_url: str | None,
        file_type: str | None,
    ) -> None:
        """Step d: one transaction replacing all chunks and marking the document ready."""
        ids = {"client_id": target.client_id, "document_id": target.document_id}
        with self._db.as_claims(claims) as conn:
            # First the document row: locks it, so concurrent ingests of it run one after another.
            ready = {
                **ids,
                "name": name,
                "metadata": Jsonb(dict(metadata)) if metadata is not None else None,
                "source_url": source_url,
                "file_type": file_type,
            }
            if conn.execute(_SET_READY, ready).fetchone() is None:
                raise NotFound(
                    f"document {target.document_id} is no longer visible and writable",
                    sqlstate="PT404",
                )
            row = conn.execute(_TEXT_SEARCH_CONFIG, ids).fetchone()
            if row is None:
                raise NotFound(f"document {target.document_id} disappeared", sqlstate="PT404")
            text_search_config = str(row[0])
            conn.execute(_DELETE_CHUNKS, ids)
            conn.execute(_CREATE_STAGING)
            with conn.cursor() as cur:
                register_vector(conn, cur)
                _copy_rows(cur, chunks, embeddings)
                cur.execute(_INSERT_FROM_STAGING, {**ids, "text_search_config": text_search_config})
                if cur.rowcount != len(chunks):
                    raise DatabaseError(
                        f"wrote {cur.rowcount} chunks of {len(chunks)} for document"
                        f" {target.document_id}"
                    )

    def _set_failed(self, claims: Mapping[str, Any] | None, target: _Target, message: str) -> None:
        """Step e: a new transaction after the failed one was rolled back."""
        params = {
            "client_id": target.client_id,
            "document_id": target.document_id,
            "error": message,
        }
        with self._db.as_claims(claims) as conn:
            conn.execute(_SET_FAILED, params)
