"""Repositories for the knowledge model: knowledge_bases > knowledge_collections > documents.

The pattern every repository in this package follows:

- One frozen dataclass per table with exactly its columns, rows fetched with `class_row`.
- A repository wraps a psycopg `Connection` the caller obtained from `Database.as_user(...)`,
  `Database.as_service_role()` or `act_as(...)`, so RLS applies exactly as over PostgREST. The
  repository never commits, opens transactions or switches roles: the block owns the transaction.
- Static SQL only: one constant per statement, parameters by name, no SQL built from input.
- `create` and `update` accept only the columns the `authenticated` role may write (the GRANTs of
  the table), named exactly like the SQL columns. `create` leaves `client_id` out of the statement
  unless the caller passes it, so the column default resolves the caller's tenant (service_role,
  which has no tenant, must pass it). Hence `create` has two statements, with and without it.
- `update` leaves a column unchanged when its argument is None (so a nullable column cannot be
  cleared through `update`), and raises NotFound when no row was visible and writable.
- Every statement runs through `renum_db.errors.wrap_errors` (the one SQLSTATE -> exception
  mapping), so a caller can catch `Conflict` or `PermissionDenied` inside its block.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, LiteralString, TypeVar, cast
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from renum_db.errors import InvalidInput, NotFound, wrap_errors
from renum_db.repositories.keyset import MAX_PAGE, Keyed, keyset_params
from renum_db.repositories.plan import Kind, Plan, Planner

__all__ = [
    "MAX_LIMIT",
    "Document",
    "DocumentRepository",
    "KnowledgeBase",
    "KnowledgeBaseRepository",
    "KnowledgeCollection",
    "KnowledgeCollectionRepository",
]

MAX_LIMIT: Final = MAX_PAGE
"""The largest page `list` returns; larger limits are rejected rather than silently cut."""


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """A row of public.knowledge_bases."""

    id: UUID
    client_id: UUID
    name: str
    description: str | None
    text_search_config: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class KnowledgeCollection:
    """A row of public.knowledge_collections."""

    id: UUID
    client_id: UUID
    knowledge_base_id: UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Document:
    """A row of public.documents."""

    id: UUID
    client_id: UUID
    collection_id: UUID
    name: str
    source_type: str
    source_url: str | None
    file_type: str | None
    file_size: int | None
    status: str
    error: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


RowT = TypeVar("RowT")


def _page(limit: int, offset: int, after: Keyed | None = None) -> dict[str, Any]:
    """Validated paging parameters (bool is refused although it is an int). `after` (keyset,
    see renum_db.repositories.keyset) is the way to page; `offset` is kept for old callers."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"offset must be a non-negative integer, got {offset!r}")
    if offset and after is not None:
        raise InvalidInput("pass either offset or after, not both")
    return {**keyset_params(limit, after), "offset": offset}


class _Repository(Generic[RowT]):
    """What every table repository shares: the connection, get, delete and row fetching."""

    _row_type: type[RowT]
    _table: str
    _GET: LiteralString
    _DELETE: LiteralString

    def __init__(self, conn: Connection[Any] | Planner) -> None:
        self._conn = conn

    # The four ways a statement runs. Over a Planner they return a Plan instead (see
    # renum_db.repositories.plan): the async repositories reuse every method that way.

    def _plan(self, kind: Kind, query: LiteralString, params: Mapping[str, Any]) -> Any:
        not_found = ""
        if kind == "updated":
            not_found = f"no {self._table} row {params['id']} visible and writable to the caller"
        return Plan(kind, self._row_type, query, dict(params), not_found)

    def _fetch_one(self, query: LiteralString, params: Mapping[str, Any]) -> RowT | None:
        if isinstance(self._conn, Planner):
            return cast(RowT, self._plan("one", query, params))
        with wrap_errors(), self._conn.cursor(row_factory=class_row(self._row_type)) as cur:
            cur.execute(query, params)
            return cur.fetchone()

    def _fetch_all(self, query: LiteralString, params: Mapping[str, Any]) -> builtins.list[RowT]:
        if isinstance(self._conn, Planner):
            return cast(builtins.list[RowT], self._plan("all", query, params))
        with wrap_errors(), self._conn.cursor(row_factory=class_row(self._row_type)) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def _updated(self, query: LiteralString, params: Mapping[str, Any]) -> RowT:
        if isinstance(self._conn, Planner):
            return cast(RowT, self._plan("updated", query, params))
        row = self._fetch_one(query, params)
        if row is None:
            raise NotFound(
                f"no {self._table} row {params['id']} visible and writable to the caller"
            )
        return row

    def _affected(self, query: LiteralString, params: Mapping[str, Any]) -> bool:
        if isinstance(self._conn, Planner):
            return cast(bool, self._plan("affected", query, params))
        with wrap_errors():
            return self._conn.execute(query, params).rowcount > 0

    def get(self, id: UUID) -> RowT | None:
        """The row with this id, or None if it does not exist or is not visible to the caller."""
        return self._fetch_one(self._GET, {"id": id})

    def delete(self, id: UUID) -> bool:
        """Delete the row; False if no row was visible and deletable to the caller."""
        return self._affected(self._DELETE, {"id": id})


class KnowledgeBaseRepository(_Repository[KnowledgeBase]):
    """public.knowledge_bases: viewers read; members and admins write (RLS)."""

    _row_type = KnowledgeBase
    _table = "knowledge_bases"
    _GET = """
        select id, client_id, name, description, created_at, updated_at,
               text_search_config::text as text_search_config
          from public.knowledge_bases
         where id = %(id)s
    """
    _LIST = """
        select id, client_id, name, description, created_at, updated_at,
               text_search_config::text as text_search_config
          from public.knowledge_bases
         where (%(after_created_at)s::timestamptz is null
                or (created_at, id) > (%(after_created_at)s::timestamptz, %(after_id)s::uuid))
         order by created_at, id
         limit %(limit)s offset %(offset)s
    """
    _CREATE = """
        insert into public.knowledge_bases (name, description, text_search_config)
        values (%(name)s, %(description)s,
                coalesce(%(text_search_config)s::text, 'portuguese'))
        returning id, client_id, name, description, created_at, updated_at,
               text_search_config::text as text_search_config
    """
    _CREATE_FOR_CLIENT = """
        insert into public.knowledge_bases (client_id, name, description, text_search_config)
        values (%(client_id)s, %(name)s, %(description)s,
                coalesce(%(text_search_config)s::text, 'portuguese'))
        returning id, client_id, name, description, created_at, updated_at,
               text_search_config::text as text_search_config
    """
    _UPDATE = """
        update public.knowledge_bases
           set name = coalesce(%(name)s::text, name),
               description = coalesce(%(description)s::text, description),
               text_search_config = coalesce(%(text_search_config)s::text, text_search_config)
         where id = %(id)s
        returning id, client_id, name, description, created_at, updated_at,
               text_search_config::text as text_search_config
    """
    _BY_NAME = """
        select id, client_id, name, description, created_at, updated_at,
               text_search_config::text as text_search_config
          from public.knowledge_bases
         where name = %(name)s
           and (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
         order by created_at, id
         limit 1
    """
    _DELETE = "delete from public.knowledge_bases where id = %(id)s"

    def get_by_name(self, name: str, *, client_id: UUID | None = None) -> KnowledgeBase | None:
        """The visible knowledge base called `name` (in `client_id`, which the backend passes)."""
        return self._fetch_one(self._BY_NAME, {"name": name, "client_id": client_id})

    def list(
        self, *, limit: int = 100, offset: int = 0, after: Keyed | None = None
    ) -> builtins.list[KnowledgeBase]:
        """Visible knowledge bases, oldest first; the next page: `after=<last row>`."""
        return self._fetch_all(self._LIST, _page(limit, offset, after))

    def create(
        self,
        *,
        name: str,
        description: str | None = None,
        text_search_config: str | None = None,
        client_id: UUID | None = None,
    ) -> KnowledgeBase:
        """Create a knowledge base in the caller's tenant (or in `client_id`, if given).

        `text_search_config` is the language its chunks are parsed in for full-text search:
        portuguese (the column default, repeated here), english, spanish or simple.
        """
        params = {
            "client_id": client_id,
            "name": name,
            "description": description,
            "text_search_config": text_search_config,
        }
        query = self._CREATE if client_id is None else self._CREATE_FOR_CLIENT
        row = self._fetch_one(query, params)
        assert row is not None  # insert ... returning yields the row or raises
        return row

    def update(
        self,
        id: UUID,
        *,
        name: str | None = None,
        description: str | None = None,
        text_search_config: str | None = None,
    ) -> KnowledgeBase:
        """Change the given columns; NotFound if no visible row was updated.

        Changing `text_search_config` re-parses the knowledge base's chunks (database trigger).
        """
        params = {
            "id": id,
            "name": name,
            "description": description,
            "text_search_config": text_search_config,
        }
        return self._updated(self._UPDATE, params)


class KnowledgeCollectionRepository(_Repository[KnowledgeCollection]):
    """public.knowledge_collections: viewers read; members and admins write (RLS)."""

    _row_type = KnowledgeCollection
    _table = "knowledge_collections"
    _GET = """
        select id, client_id, knowledge_base_id, name, description, created_at, updated_at
          from public.knowledge_collections
         where id = %(id)s
    """
    _LIST = """
        select id, client_id, knowledge_base_id, name, description, created_at, updated_at
          from public.knowledge_collections
         where (%(knowledge_base_id)s::uuid is null
                or knowledge_base_id = %(knowledge_base_id)s::uuid)
           and (%(after_created_at)s::timestamptz is null
                or (created_at, id) > (%(after_created_at)s::timestamptz, %(after_id)s::uuid))
         order by created_at, id
         limit %(limit)s offset %(offset)s
    """
    _CREATE = """
        insert into public.knowledge_collections (knowledge_base_id, name, description)
        values (%(knowledge_base_id)s, %(name)s, %(description)s)
        returning id, client_id, knowledge_base_id, name, description, created_at, updated_at
    """
    _CREATE_FOR_CLIENT = """
        insert into public.knowledge_collections (client_id, knowledge_base_id, name, description)
        values (%(client_id)s, %(knowledge_base_id)s, %(name)s, %(description)s)
        returning id, client_id, knowledge_base_id, name, description, created_at, updated_at
    """
    _UPDATE = """
        update public.knowledge_collections
           set knowledge_base_id = coalesce(%(knowledge_base_id)s::uuid, knowledge_base_id),
               name = coalesce(%(name)s::text, name),
               description = coalesce(%(description)s::text, description)
         where id = %(id)s
        returning id, client_id, knowledge_base_id, name, description, created_at, updated_at
    """
    _BY_NAME = """
        select id, client_id, knowledge_base_id, name, description, created_at, updated_at
          from public.knowledge_collections
         where knowledge_base_id = %(knowledge_base_id)s and name = %(name)s
    """
    _DELETE = "delete from public.knowledge_collections where id = %(id)s"

    def get_by_name(self, knowledge_base_id: UUID, name: str) -> KnowledgeCollection | None:
        """The visible collection called `name` in that knowledge base."""
        return self._fetch_one(
            self._BY_NAME, {"knowledge_base_id": knowledge_base_id, "name": name}
        )

    def list(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        knowledge_base_id: UUID | None = None,
        after: Keyed | None = None,
    ) -> builtins.list[KnowledgeCollection]:
        """Visible collections (of one knowledge base, if given), oldest first; the next page:
        `after=<last row>`."""
        params = {**_page(limit, offset, after), "knowledge_base_id": knowledge_base_id}
        return self._fetch_all(self._LIST, params)

    def create(
        self,
        *,
        knowledge_base_id: UUID,
        name: str,
        description: str | None = None,
        client_id: UUID | None = None,
    ) -> KnowledgeCollection:
        """Create a collection in the caller's tenant (or in `client_id`, if given)."""
        params = {
            "client_id": client_id,
            "knowledge_base_id": knowledge_base_id,
            "name": name,
            "description": description,
        }
        query = self._CREATE if client_id is None else self._CREATE_FOR_CLIENT
        row = self._fetch_one(query, params)
        assert row is not None
        return row

    def update(
        self,
        id: UUID,
        *,
        knowledge_base_id: UUID | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> KnowledgeCollection:
        """Change the given columns; NotFound if no visible row was updated."""
        params = {
            "id": id,
            "knowledge_base_id": knowledge_base_id,
            "name": name,
            "description": description,
        }
        return self._updated(self._UPDATE, params)


class DocumentRepository(_Repository[Document]):
    """public.documents: viewers read; members and admins write (RLS). Every write is recorded
    in document_versions by trigger. Defaults of `create` mirror the column defaults."""

    _row_type = Document
    _table = "documents"
    _GET = """
        select id, client_id, collection_id, name, source_type, source_url, file_type,
               file_size, status, error, metadata, created_at, updated_at
          from public.documents
         where id = %(id)s
    """
    _LIST = """
        select id, client_id, collection_id, name, source_type, source_url, file_type,
               file_size, status, error, metadata, created_at, updated_at
          from public.documents
         where (%(collection_id)s::uuid is null or collection_id = %(collection_id)s::uuid)
           and (%(after_created_at)s::timestamptz is null
                or (created_at, id) > (%(after_created_at)s::timestamptz, %(after_id)s::uuid))
         order by created_at, id
         limit %(limit)s offset %(offset)s
    """
    _CREATE = """
        insert into public.documents (collection_id, name, source_type, source_url, file_type,
                                      file_size, status, error, metadata)
        values (%(collection_id)s, %(name)s, %(source_type)s, %(source_url)s, %(file_type)s,
                %(file_size)s, %(status)s, %(error)s, %(metadata)s)
        returning id, client_id, collection_id, name, source_type, source_url, file_type,
                  file_size, status, error, metadata, created_at, updated_at
    """
    _CREATE_FOR_CLIENT = """
        insert into public.documents (client_id, collection_id, name, source_type, source_url,
                                      file_type, file_size, status, error, metadata)
        values (%(client_id)s, %(collection_id)s, %(name)s, %(source_type)s, %(source_url)s,
                %(file_type)s, %(file_size)s, %(status)s, %(error)s, %(metadata)s)
        returning id, client_id, collection_id, name, source_type, source_url, file_type,
                  file_size, status, error, metadata, created_at, updated_at
    """
    _UPDATE = """
        update public.documents
           set collection_id = coalesce(%(collection_id)s::uuid, collection_id),
               name = coalesce(%(name)s::text, name),
               source_type = coalesce(%(source_type)s::public.document_source_type, source_type),
               source_url = coalesce(%(source_url)s::text, source_url),
               file_type = coalesce(%(file_type)s::text, file_type),
               file_size = coalesce(%(file_size)s::bigint, file_size),
               status = coalesce(%(status)s::public.document_status, status),
               error = coalesce(%(error)s::text, error),
               metadata = coalesce(%(metadata)s::jsonb, metadata)
         where id = %(id)s
        returning id, client_id, collection_id, name, source_type, source_url, file_type,
                  file_size, status, error, metadata, created_at, updated_at
    """
    _BY_NAME = """
        select id, client_id, collection_id, name, source_type, source_url, file_type,
               file_size, status, error, metadata, created_at, updated_at
          from public.documents
         where collection_id = %(collection_id)s and name = %(name)s
         order by created_at, id
         limit 1
    """
    _DELETE = "delete from public.documents where id = %(id)s"

    def get_by_name(self, collection_id: UUID, name: str) -> Document | None:
        """The oldest visible document called `name` in that collection."""
        return self._fetch_one(self._BY_NAME, {"collection_id": collection_id, "name": name})

    def list(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        collection_id: UUID | None = None,
        after: Keyed | None = None,
    ) -> builtins.list[Document]:
        """Visible documents (of one collection, if given), oldest first; the next page:
        `after=<last row>`."""
        params = {**_page(limit, offset, after), "collection_id": collection_id}
        return self._fetch_all(self._LIST, params)

    def create(
        self,
        *,
        collection_id: UUID,
        name: str,
        source_type: str = "upload",
        source_url: str | None = None,
        file_type: str | None = None,
        file_size: int | None = None,
        status: str = "pending",
        error: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        client_id: UUID | None = None,
    ) -> Document:
        """Create a document in the caller's tenant (or in `client_id`, if given)."""
        params = {
            "client_id": client_id,
            "collection_id": collection_id,
            "name": name,
            "source_type": source_type,
            "source_url": source_url,
            "file_type": file_type,
            "file_size": file_size,
            "status": status,
            "error": error,
            "metadata": Jsonb(dict(metadata or {})),
        }
        query = self._CREATE if client_id is None else self._CREATE_FOR_CLIENT
        row = self._fetch_one(query, params)
        assert row is not None
        return row

    def update(
        self,
        id: UUID,
        *,
        collection_id: UUID | None = None,
        name: str | None = None,
        source_type: str | None = None,
        source_url: str | None = None,
        file_type: str | None = None,
        file_size: int | None = None,
        status: str | None = None,
        error: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        """Change the given columns (metadata is replaced, not merged); NotFound if no visible
        row was updated."""
        params = {
            "id": id,
            "collection_id": collection_id,
            "name": name,
            "source_type": source_type,
            "source_url": source_url,
            "file_type": file_type,
            "file_size": file_size,
            "status": status,
            "error": error,
            "metadata": None if metadata is None else Jsonb(dict(metadata)),
        }
        return self._updated(self._UPDATE, params)
