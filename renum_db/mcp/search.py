"""The `search` tool's database side: embed the query, resolve the collection, call retrieval.

Everything runs as the user (role `authenticated` with the user's claims, RLS applies) in one
transaction that commits, because the query embedding may be added to `embedding_cache` and,
when the server was started for an agent, the returned chunks are recorded as used by it
(`usage_agent_id`). The call into `public.search_embeddings` / `public.hybrid_search` is in one
function, `call_retrieval`, with named arguments, so a signature change touches only it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

from psycopg import Connection
from psycopg.rows import dict_row

from renum_db.embeddings import CachedEmbeddings, EmbeddingProvider
from renum_db.errors import InvalidInput, NotFound, wrap_errors

__all__ = ["MAX_MATCHES", "call_retrieval", "resolve_collections", "search"]

MAX_MATCHES: Final = 50

_COLUMNS: Final = (
    "id, document_id, collection_id, knowledge_base_id, content, metadata, chunk_index, similarity"
)


def call_retrieval(
    conn: Connection[Any],
    *,
    query_text: str,
    query_embedding: Sequence[float],
    match_count: int,
    hybrid: bool,
    collection_ids: list[UUID] | None,
    usage_agent_id: UUID | None,
    usage_execution_id: UUID | None,
) -> list[dict[str, Any]]:
    """The one place that calls the SQL retrieval functions (adapt here if they change)."""
    params: dict[str, Any] = {
        "query_embedding": [float(v) for v in query_embedding],
        "match_count": match_count,
        "collection_ids": collection_ids,
        "usage_agent_id": usage_agent_id,
        "usage_execution_id": usage_execution_id,
    }
    if hybrid:
        params["query_text"] = query_text
        query = (
            f"select {_COLUMNS}, score from public.hybrid_search("
            "query_text => %(query_text)s, query_embedding => %(query_embedding)s::real[],"
            " match_count => %(match_count)s, collection_ids => %(collection_ids)s,"
            " usage_agent_id => %(usage_agent_id)s,"
            " usage_execution_id => %(usage_execution_id)s)"
        )
    else:
        query = (
            f"select {_COLUMNS} from public.search_embeddings("
            "query_embedding => %(query_embedding)s::real[], match_count => %(match_count)s,"
            " collection_ids => %(collection_ids)s, usage_agent_id => %(usage_agent_id)s,"
            " usage_execution_id => %(usage_execution_id)s)"
        )
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def resolve_collections(conn: Connection[Any], collection: str | None) -> list[UUID] | None:
    """None for all collections; a collection id, or every readable collection with that
    name (case-insensitive). NotFound when nothing matches."""
    if collection is None or not collection.strip():
        return None
    text = collection.strip()
    try:
        as_id: UUID | None = UUID(text)
    except ValueError:
        as_id = None
    with wrap_errors():
        if as_id is not None:
            rows = conn.execute(
                "select id from public.knowledge_collections where id = %s", (as_id,)
            ).fetchall()
        else:
            rows = conn.execute(
                "select id from public.knowledge_collections where lower(name) = lower(%s)",
                (text,),
            ).fetchall()
    if not rows:
        raise NotFound(f"no collection {collection!r} that you can read")
    return [UUID(str(r[0])) for r in rows]


def search(
    conn: Connection[Any],
    provider: EmbeddingProvider,
    *,
    query: str,
    k: int,
    hybrid: bool,
    collection: str | None,
    agent_id: UUID | None,
    execution_id: UUID | None,
) -> list[dict[str, Any]]:
    """Run one search as the user whose request `conn` is in; JSON-ready rows."""
    if not query or not query.strip():
        raise InvalidInput("the search query is empty")
    if not 1 <= k <= MAX_MATCHES:
        raise InvalidInput(f"k must be between 1 and {MAX_MATCHES}, got {k}")
    collection_ids = resolve_collections(conn, collection)
    embedding = CachedEmbeddings(provider, conn).embed([query])[0]
    rows = call_retrieval(
        conn,
        query_text=query,
        query_embedding=embedding,
        match_count=k,
        hybrid=hybrid,
        collection_ids=collection_ids,
        usage_agent_id=agent_id,
        usage_execution_id=execution_id,
    )
    names: dict[str, str] = {}
    if rows:
        with wrap_errors():
            for doc_id, name in conn.execute(
                "select id, name from public.documents where id = any(%s)",
                ([r["document_id"] for r in rows],),
            ):
                names[str(doc_id)] = str(name)
    out = []
    for r in rows:
        item = {key: (str(v) if isinstance(v, UUID) else v) for key, v in r.items()}
        item["document_name"] = names.get(str(r["document_id"]))
        out.append(item)
    return out
