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
   policies and the column grants like any API write. The backend (a role that bypasses RLS,
   i.e. service_role) writing a new document has no policy to go through: its rows are COPied
   straight into document_chunks (column grants, constraints and foreign keys still apply), as
   raw COPY would. A re-ingest always stages, to pair unchanged chunks with the old ones.
   text_search_config is passed explicitly so the per-row trigger that would look it up is
   skipped;
e. if c or d fails, d's transaction is rolled back (the previous chunks stay), the document is
   marked 'failed' with a short error (the exception type and, for database errors, Postgres's
   primary message; never a provider's message, which may echo credentials) and a renum_db
   exception is raised.

The documents trigger records every status change in document_versions; nothing here writes
versions. Memory: one document's chunks and embeddings (float32) are held at a time, the COPY
streams one row per chunk, and `ingest_documents` takes any iterable and yields results lazily.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from renum_db.chunking import Chunk, chunk_text, validate_chunking
from renum_db.db import Database
from renum_db.embeddings import (
    EmbeddingProvider,
    cache_model_key,
    cached_vectors,
    store_vectors,
)
from renum_db.errors import (
    ConfigurationError,
    DatabaseError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RenumDBError,
)
from renum_db.repositories.knowledge import Document, DocumentRepository
from renum_db.vector import Vector, as_vector, ensure_vector_adapters

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "STUCK_AFTER",
    "DocumentInput",
    "EmbeddingProvider",
    "IngestProgress",
    "IngestResult",
    "IngestionFailed",
    "Ingestor",
    "ProgressCallback",
]

log = logging.getLogger(__name__)

STUCK_AFTER: Final = timedelta(minutes=30)
"""A document still 'processing' this long after its last change was left by an ingestion that
died (killed process, lost connection); `Ingestor.stuck_documents` finds such documents and
`Ingestor.fail_stuck` marks them failed so that they can be ingested again."""

EMBEDDING_DIMENSIONS: Final = 1536
"""document_chunks.embedding is vector(1536)."""

MAX_ERROR_LENGTH: Final = 300

CACHE_WINDOW: Final = 1024
"""Chunks whose cached vectors are read in one query (one transaction) while embedding."""


class IngestionFailed(RenumDBError):
    """Ingestion failed outside the database (e.g. the embedding provider raised); the document
    was marked 'failed' and its previous chunks were kept. The cause is chained."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The outcome of one successful ingestion, with the time each stage took (seconds)."""

    document_id: UUID
    chunks: int
    status: str
    timings: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """One step of an ingestion, for progress bars: `stage` is 'chunked' (done = 0),
    'embedding' (after each batch: done chunks of total embedded), 'writing' (the one
    transaction that replaces the chunks has begun; the HNSW index makes it the longest stage
    for big documents) or 'written' (done = total)."""

    document_id: UUID
    stage: str
    done: int
    total: int


ProgressCallback = Callable[[IngestProgress], None]


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
    new: bool  # created by this ingestion (no earlier chunks to pair with)
    backend: bool  # the caller bypasses RLS (service_role): COPY may write document_chunks


_TENANT = "select private.request_client_id(%(client_id)s::uuid), private.request_is_backend()"

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

_STUCK = """
    select id, client_id, collection_id, name, source_type, source_url, file_type,
           file_size, status, error, metadata, created_at, updated_at
      from public.documents
     where status = 'processing' and updated_at < now() - %(older_than)s::interval
       and (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
     order by updated_at, id
"""

_FAIL_STUCK = """
    update public.documents
       set status = 'failed',
           error = 'ingestion interrupted: processing since '
                   || pg_catalog.to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                   || ' UTC; ingest it again'
     where status = 'processing' and updated_at < now() - %(older_than)s::interval
       and (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
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

# The backend (BYPASSRLS) writing a new document: straight into the table, as raw COPY would.
_COPY_CHUNKS = """
    copy public.document_chunks
      (chunk_index, content, metadata, embedding, client_id, document_id, text_search_config)
    from stdin (format binary)
"""

_CHUNKS_TYPES: Final = [*_STAGING_TYPES, "uuid", "uuid", "text"]

# Re-ingesting keeps the rows (ids, hence document_usage_stats) of chunks whose content is
# unchanged: old and new chunks are paired by content (the n-th copy of a text with the n-th).
_PAIR_UNCHANGED = """
    create temporary table renum_ingest_kept on commit drop as
    with old as (
      select c.id, c.content,
             row_number() over (partition by c.content order by c.chunk_index) as n
        from public.document_chunks as c
       where c.client_id = %(client_id)s and c.document_id = %(document_id)s
    ), new as (
      select s.chunk_index, s.content, s.metadata, s.embedding,
             row_number() over (partition by s.content order by s.chunk_index) as n
        from pg_temp.renum_ingest_chunks as s
    )
    select old.id, new.chunk_index, new.metadata, new.embedding
      from old
      join new on new.content = old.content and new.n = old.n
"""

_DELETE_CHANGED = """
    delete from public.document_chunks as c
     where c.client_id = %(client_id)s and c.document_id = %(document_id)s
       and not exists (select from pg_temp.renum_ingest_kept as k where k.id = c.id)
"""

# Two steps, because (client_id, document_id, chunk_index) is unique and checked row by row:
# kept chunks that move first go out of the way (past any real index), then take their place.
_MOVE_KEPT_ASIDE = """
    update public.document_chunks as c
       set chunk_index = k.chunk_index + 1000000000
      from pg_temp.renum_ingest_kept as k
     where c.client_id = %(client_id)s and c.id = k.id and c.chunk_index <> k.chunk_index
"""

_UPDATE_KEPT = """
    update public.document_chunks as c
       set chunk_index = k.chunk_index, metadata = k.metadata, embedding = k.embedding
      from pg_temp.renum_ingest_kept as k
     where c.client_id = %(client_id)s and c.id = k.id
"""

_INSERT_ALL_FROM_STAGING = """
    insert into public.document_chunks
      (client_id, document_id, content, chunk_index, metadata, embedding, text_search_config)
    select %(client_id)s::uuid, %(document_id)s::uuid, s.content, s.chunk_index, s.metadata,
           s.embedding, %(text_search_config)s::text
      from pg_temp.renum_ingest_chunks as s
     order by s.chunk_index
"""

_INSERT_FROM_STAGING = """
    insert into public.document_chunks
      (client_id, document_id, content, chunk_index, metadata, embedding, text_search_config)
    select %(client_id)s::uuid, %(document_id)s::uuid, s.content, s.chunk_index, s.metadata,
           s.embedding, %(text_search_config)s::text
      from pg_temp.renum_ingest_chunks as s
     where not exists (
             select from pg_temp.renum_ingest_kept as k where k.chunk_index = s.chunk_index)
     order by s.chunk_index
"""

# A new document: its chunks are all new (the delete only finds rows written meanwhile).
_DELETE_ALL = """
    delete from public.document_chunks as c
     where c.client_id = %(client_id)s and c.document_id = %(document_id)s
"""

_COUNT_CHUNKS = """
    select count(*) from public.document_chunks
     where client_id = %(client_id)s and document_id = %(document_id)s
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
    cur: Cursor[Any],
    chunks: Sequence[Chunk],
    embeddings: Sequence[array[float]],
    direct: tuple[UUID, UUID, str] | None = None,
) -> None:
    """Stream the chunks with binary COPY, one row at a time: into the staging table, or, with
    `direct` = (client_id, document_id, text_search_config), into document_chunks itself."""
    statement, types = (
        (_COPY_STAGING, _STAGING_TYPES) if direct is None else (_COPY_CHUNKS, _CHUNKS_TYPES)
    )
    tail = () if direct is None else direct
    with cur.copy(statement) as copy:
        copy.set_types(types)
        for chunk, embedding in zip(chunks, embeddings, strict=True):
            copy.write_row(
                (
                    chunk.index,
                    chunk.content,
                    Jsonb({"start": chunk.start, "end": chunk.end}),
                    Vector(embedding),
                    *tail,
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
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Create (or, with `document_id`, re-ingest) a document from `text` and make it 'ready'.

        `progress`, if given, is called after chunking, after each embedded batch and once the
        chunks are written (IngestProgress). Each stage's duration is logged at INFO
        (logger renum_db.ingest, fields operation/stage/duration_ms) and returned in `timings`.

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
        target = self._start(
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

        stage = "embedding"
        timings: dict[str, float] = {}
        report: ProgressCallback = progress or (lambda _: None)
        doc_id = target.document_id
        try:
            started = time.perf_counter()
            chunks = chunk_text(text, chunk_size=chunk_size, overlap=overlap)
            timings["chunk"] = time.perf_counter() - started
            report(IngestProgress(doc_id, "chunked", 0, len(chunks)))
            started = time.perf_counter()
            embeddings = self._embed(
                claims,
                target,
                chunks,
                lambda done: report(IngestProgress(doc_id, "embedding", done, len(chunks))),
            )
            timings["embed"] = time.perf_counter() - started
            stage = "writing chunks"
            report(IngestProgress(doc_id, "writing", len(chunks), len(chunks)))
            started = time.perf_counter()
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
            timings["write"] = time.perf_counter() - started
        except Exception as exc:
            message = _failure_message(exc, stage)
            try:
                self._set_failed(claims, target, message)
            except RenumDBError as mark_exc:
                exc.add_note(f"the document could not be marked failed: {mark_exc}")
            if isinstance(exc, RenumDBError):
                raise
            raise IngestionFailed(message) from exc
        report(IngestProgress(doc_id, "written", len(chunks), len(chunks)))
        log.info(
            "ingested document %s: %d chunks (chunk %.0f ms, embed %.0f ms, write %.0f ms)",
            doc_id,
            len(chunks),
            *(timings[k] * 1000 for k in ("chunk", "embed", "write")),
            extra={
                "operation": "ingest_document",
                "document_id": str(doc_id),
                "chunks": len(chunks),
                "characters": len(text),
                **{f"{k}_ms": round(v * 1000, 1) for k, v in timings.items()},
            },
        )
        return IngestResult(
            document_id=doc_id, chunks=len(chunks), status="ready", timings=dict(timings)
        )

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

    # -- interrupted ingestions ----------------------------------------------------------------

    def stuck_documents(
        self,
        *,
        claims: Mapping[str, Any] | None,
        older_than: timedelta = STUCK_AFTER,
        client_id: UUID | None = None,
    ) -> list[Document]:
        """Documents visible to the caller left in 'processing' for longer than `older_than`."""
        params = {"older_than": older_than, "client_id": client_id}
        with (
            self._db.as_claims(claims) as conn,
            conn.cursor(row_factory=class_row(Document)) as cur,
        ):
            return cur.execute(_STUCK, params).fetchall()

    def fail_stuck(
        self,
        *,
        claims: Mapping[str, Any] | None,
        older_than: timedelta = STUCK_AFTER,
        client_id: UUID | None = None,
    ) -> list[UUID]:
        """Mark the stuck documents 'failed' (with a message saying so); returns their ids.
        Retry one with `ingest_document(document_id=..., text=...)`: any status may be
        re-ingested, and the chunks of the interrupted run were never committed."""
        params = {"older_than": older_than, "client_id": client_id}
        with self._db.as_claims(claims) as conn:
            ids = [UUID(str(r[0])) for r in conn.execute(_FAIL_STUCK, params).fetchall()]
        if ids:
            log.warning("marked %d stuck document(s) failed", len(ids))
        return ids

    # -- steps ------------------------------------------------------------------------------

    def _tenant(self, conn: Connection[Any], client_id: UUID | None) -> tuple[UUID, bool]:
        """The one tenant the caller may write (their own client, or the one service_role
        names) and whether the caller is the backend (bypasses RLS)."""
        row = conn.execute(_TENANT, {"client_id": client_id}).fetchone()
        assert row is not None
        return UUID(str(row[0])), bool(row[1])

    def _start(
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
        """Steps a and b in one transaction (one pooled checkout, not two): insert the pending
        document or check the re-ingested one is visible, then mark it 'processing'. The
        documents trigger still records both status changes; if b is refused, a leaves nothing."""
        with self._db.as_claims(claims) as conn:
            target = self._prepare(
                conn,
                client_id=client_id,
                collection_id=collection_id,
                document_id=document_id,
                name=name,
                metadata=metadata,
                source_type=source_type,
                source_url=source_url,
                file_type=file_type,
            )
            params = {"client_id": target.client_id, "document_id": target.document_id}
            if conn.execute(_SET_PROCESSING, params).fetchone() is None:
                raise PermissionDenied(
                    f"the caller may not modify document {target.document_id}", sqlstate="42501"
                )
            return target

    def _prepare(
        self,
        conn: Connection[Any],
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
        tenant, backend = self._tenant(conn, client_id)
        documents = DocumentRepository(conn)
        if document_id is not None:
            doc = documents.get(document_id)
            if doc is None or doc.client_id != tenant or doc.collection_id != collection_id:
                raise NotFound(
                    f"document {document_id} not found in collection {collection_id}"
                    " or not visible to the caller",
                    sqlstate="PT404",
                )
            return _Target(client_id=tenant, document_id=doc.id, new=False, backend=backend)
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
        return _Target(client_id=tenant, document_id=created.id, new=True, backend=backend)

    def _embed(
        self,
        claims: Mapping[str, Any] | None,
        target: _Target,
        chunks: Sequence[Chunk],
        done: Callable[[int], None] | None = None,
    ) -> list[array[float]]:
        """Step c: embed through the tenant's embedding cache, checking the provider's answer;
        float32 like pgvector. Per window of CACHE_WINDOW chunks, one short transaction reads
        the cached vectors as the caller; then, per batch of `embed_batch_size` distinct misses,
        the provider embeds them with no transaction open and one short transaction stores
        them as the backend (the only writer of the cache), so a retried or re-ingested document
        costs no new calls, even when a later batch fails."""
        model = cache_model_key(self._embedder)
        found: dict[str, Sequence[float]] = {}
        for first in range(0, len(chunks), CACHE_WINDOW):
            window = [c.content for c in chunks[first : first + CACHE_WINDOW]]
            with self._db.as_claims(claims) as conn:
                found.update(
                    cached_vectors(
                        conn, client_id=target.client_id, cache_model=model, texts=window
                    )
                )
            misses = list(dict.fromkeys(t for t in window if t not in found))
            for start in range(0, len(misses), self._batch):
                batch = misses[start : start + self._batch]
                fresh = self._embed_misses(batch)
                # Only the backend writes the cache (migration 0014): these vectors come from
                # this process's provider, never from the caller, for the tenant resolved
                # under the caller's claims in step a.
                with self._db.as_service_role() as conn:
                    store_vectors(
                        conn, client_id=target.client_id, cache_model=model, vectors=fresh
                    )
                found.update((text, vector.float4) for text, vector in fresh.items())
                if done is not None:
                    done(first + sum(1 for t in window if t in found))
            if done is not None and not misses:
                done(first + len(window))
        return [array("f", found[c.content]) for c in chunks]

    def _embed_misses(self, texts: Sequence[str]) -> dict[str, Vector]:
        """The provider's vectors for `texts`, checked: one per text, 1536-d, finite."""
        vectors = self._embedder.embed(texts)
        if len(vectors) != len(texts):
            raise InvalidInput(
                f"the embedding provider returned {len(vectors)} vectors for {len(texts)} texts"
            )
        fresh: dict[str, Vector] = {}
        for text, vector in zip(texts, vectors, strict=True):
            if len(vector) != EMBEDDING_DIMENSIONS:
                raise InvalidInput(
                    f"the embedding provider returned a vector of {len(vector)}"
                    f" dimensions, expected {EMBEDDING_DIMENSIONS}"
                )
            # Vector converts to float4 once and checks finiteness with one C-level sum (a
            # per-component Python check cost ~0.9 ms per 1536-d vector).
            try:
                fresh[text] = as_vector(vector)
            except InvalidInput:
                raise InvalidInput(
                    "the embedding provider returned a non-finite component"
                ) from None
        return fresh

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
            ensure_vector_adapters(conn)
            insert = {**ids, "text_search_config": text_search_config}
            with conn.cursor() as cur:
                kept = 0
                if target.new and target.backend:
                    # The backend bypasses RLS, so COPY may write the table itself: no staging
                    # table, no second pass over the rows (measured: docs/ingestion.md).
                    cur.execute(_DELETE_ALL, ids)
                    direct = (target.client_id, target.document_id, text_search_config)
                    _copy_rows(cur, chunks, embeddings, direct)
                elif target.new:
                    # Nothing to keep: no pairing table (its build was ~5% of a 100-chunk
                    # write). The delete only matters if someone wrote chunks meanwhile.
                    conn.execute(_CREATE_STAGING)
                    _copy_rows(cur, chunks, embeddings)
                    cur.execute(_DELETE_ALL, ids)
                    cur.execute(_INSERT_ALL_FROM_STAGING, insert)
                else:
                    conn.execute(_CREATE_STAGING)
                    _copy_rows(cur, chunks, embeddings)
                    cur.execute(_PAIR_UNCHANGED, ids)
                    kept = cur.rowcount
                    cur.execute(_DELETE_CHANGED, ids)
                    cur.execute(_MOVE_KEPT_ASIDE, ids)
                    cur.execute(_UPDATE_KEPT, ids)
                    cur.execute(_INSERT_FROM_STAGING, insert)
                row = cur.execute(_COUNT_CHUNKS, ids).fetchone()
                if row is None or row[0] != len(chunks):
                    raise DatabaseError(
                        f"wrote {row[0] if row else 0} chunks of {len(chunks)} for document"
                        f" {target.document_id}"
                    )
            if kept:
                log.debug("document %s: %d unchanged chunks kept", target.document_id, kept)

    def _set_failed(self, claims: Mapping[str, Any] | None, target: _Target, message: str) -> None:
        """Step e: a new transaction after the failed one was rolled back."""
        params = {
            "client_id": target.client_id,
            "document_id": target.document_id,
            "error": message,
        }
        with self._db.as_claims(claims) as conn:
            conn.execute(_SET_FAILED, params)
