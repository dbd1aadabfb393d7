"""renum_db.ingest: documents ingested as the caller under RLS, chunks replaced atomically."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest

from renum_db import ingest as ingest_module
from renum_db.chunking import chunk_text
from renum_db.db import Database, user_claims
from renum_db.errors import ConfigurationError, InvalidInput, NotFound, PermissionDenied
from renum_db.ingest import DocumentInput, IngestionFailed, Ingestor
from tests.support import World

DIMS = 1536

TEXT_V1 = "\n\n".join(
    f"Parágrafo {i}: the agents were running searches over contracts. "
    f"Cláusula {i} trata de rescisão e multa. " * 6
    for i in range(8)
)
TEXT_V2 = "\n\n".join(
    f"Second version, section {i}. Running agents read invoices and reports. " * 5 for i in range(5)
)


def fake_vector(text: str) -> tuple[float, ...]:
    """Deterministic, non-zero, 1536 floats exactly representable as float4."""
    digest = hashlib.sha256(text.encode()).digest()
    return tuple(((digest[i % 32] + i) % 17 + 1) / 16 for i in range(DIMS))


class FakeEmbedder:
    model = "fake-embedder"
    dimensions = DIMS

    def __init__(self, on_embed: Callable[[Sequence[str]], None] | None = None) -> None:
        # Ingestion goes through the embedding cache, keyed by model: a model name per instance
        # keeps every test's provider calls its own.
        self.model = f"fake-embedder-{uuid.uuid4().hex[:8]}"
        self.calls: list[int] = []
        self.on_embed = on_embed

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        self.calls.append(len(texts))
        if self.on_embed is not None:
            self.on_embed(texts)
        return [fake_vector(t) for t in texts]


class FailingEmbedder(FakeEmbedder):
    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        raise RuntimeError("upstream said: invalid api key sk-secret-123")


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    with Database(db_url, min_size=0, max_size=2) as database:
        yield database


@pytest.fixture
def su(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The superuser, autocommit: sees every committed row, bypassing RLS."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


def _new_collection(
    su: psycopg.Connection[Any], client_id: uuid.UUID, config: str = "english"
) -> uuid.UUID:
    tag = uuid.uuid4().hex[:10]
    kb = su.execute(
        "insert into public.knowledge_bases (client_id, name, text_search_config)"
        " values (%s, %s, %s::regconfig) returning id",
        (client_id, f"ingest kb {tag}", config),
    ).fetchone()
    assert kb is not None
    col = su.execute(
        "insert into public.knowledge_collections (client_id, knowledge_base_id, name)"
        " values (%s, %s, %s) returning id",
        (client_id, kb[0], f"ingest col {tag}"),
    ).fetchone()
    assert col is not None
    return uuid.UUID(str(col[0]))


@pytest.fixture
def collection(world: World, su: psycopg.Connection[Any]) -> uuid.UUID:
    """A fresh collection of tenant A in an English knowledge base."""
    return _new_collection(su, world.a.client_id)


def _chunks(su: psycopg.Connection[Any], document_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return su.execute(
        "select id, chunk_index, content, metadata, embedding::text, text_search_config::text,"
        " fts::text, client_id from public.document_chunks where document_id = %s"
        " order by chunk_index",
        (document_id,),
    ).fetchall()


def _document(su: psycopg.Connection[Any], document_id: uuid.UUID) -> tuple[Any, ...]:
    row = su.execute(
        "select status, error, name, metadata, client_id, source_type from public.documents"
        " where id = %s",
        (document_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def _versions(su: psycopg.Connection[Any], document_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return su.execute(
        "select version_number, change_type, change_description, snapshot->>'status', changed_by"
        " from public.document_versions where document_id = %s order by version_number",
        (document_id,),
    ).fetchall()


def _count_named(su: psycopg.Connection[Any], name: str) -> int:
    row = su.execute("select count(*) from public.documents where name = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _member(world: World) -> dict[str, Any]:
    return user_claims(world.a.users["member"])


def test_member_ingests_a_document(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    embedder = FakeEmbedder()
    result = Ingestor(db, embedder, embed_batch_size=4).ingest_document(
        claims=_member(world),
        collection_id=collection,
        name="contracts v1",
        text=TEXT_V1,
        metadata={"lang": "pt"},
        chunk_size=400,
        overlap=80,
    )
    expected = chunk_text(TEXT_V1, chunk_size=400, overlap=80)
    assert result.status == "ready"
    assert result.chunks == len(expected) > 3
    assert sum(embedder.calls) == len(expected)
    assert max(embedder.calls) == 4

    status, error, name, metadata, client_id, source_type = _document(su, result.document_id)
    assert (status, error, name, metadata) == ("ready", None, "contracts v1", {"lang": "pt"})
    assert (client_id, source_type) == (world.a.client_id, "text")

    rows = _chunks(su, result.document_id)
    assert [r[1] for r in rows] == list(range(len(expected)))
    for row, chunk in zip(rows, expected, strict=True):
        _, _, content, meta, embedding, config, fts, chunk_client = row
        assert content == chunk.content
        assert meta == {"start": chunk.start, "end": chunk.end}
        values = tuple(float(v) for v in embedding.strip("[]").split(","))
        assert values == fake_vector(chunk.content)
        assert config == "english"
        assert fts
        assert chunk_client == world.a.client_id
    # parsed in English (the knowledge base's language): "running" is stemmed to "run"
    hit = su.execute(
        "select count(*) from public.document_chunks"
        " where document_id = %s and fts @@ to_tsquery('english', 'run')",
        (result.document_id,),
    ).fetchone()
    assert hit is not None
    assert hit[0] > 0


def test_status_moves_pending_processing_ready(
    db: Database, db_url: str, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    seen: list[tuple[Any, ...]] = []

    def observe(texts: Sequence[str]) -> None:
        # Another connection, during the embedding call: the 'processing' status is committed
        # and no connection of ours holds a transaction open.
        with psycopg.connect(db_url, autocommit=True) as other:
            row = other.execute(
                "select d.status,"
                " (select count(*) from pg_stat_activity"
                "   where datname = current_database() and pid <> pg_backend_pid()"
                "     and state like 'idle in transaction%%')"
                " from public.documents as d"
                " where d.name = 'status probe' and d.collection_id = %s",
                (collection,),
            ).fetchone()
            assert row is not None
            seen.append(tuple(row))

    result = Ingestor(db, FakeEmbedder(observe)).ingest_document(
        claims=_member(world), collection_id=collection, name="status probe", text=TEXT_V1
    )
    assert seen
    assert all(s == ("processing", 0) for s in seen)
    versions = _versions(su, result.document_id)
    assert [v[3] for v in versions] == ["pending", "processing", "ready"]
    assert [v[1] for v in versions] == ["created", "updated", "updated"]
    assert all(v[4] == world.a.users["member"] for v in versions)  # changed_by: the caller


def test_reingest_replaces_chunks_atomically(
    db: Database, db_url: str, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    ingestor = Ingestor(db, FakeEmbedder())
    first = ingestor.ingest_document(
        claims=_member(world), collection_id=collection, name="report", text=TEXT_V1
    )
    old_ids = {r[0] for r in _chunks(su, first.document_id)}
    versions_before = len(_versions(su, first.document_id))

    during: list[set[Any]] = []

    def observe(texts: Sequence[str]) -> None:
        with psycopg.connect(db_url, autocommit=True) as other:
            rows = other.execute(
                "select id from public.document_chunks where document_id = %s",
                (first.document_id,),
            ).fetchall()
            during.append({r[0] for r in rows})

    second = Ingestor(db, FakeEmbedder(observe)).ingest_document(
        claims=_member(world),
        collection_id=collection,
        document_id=first.document_id,
        name="report (revised)",
        text=TEXT_V2,
        metadata={"revision": 2},
        chunk_size=300,
        overlap=50,
    )
    assert second.document_id == first.document_id
    assert during
    assert all(ids == old_ids for ids in during), "old chunks stay until the replace commits"

    rows = _chunks(su, first.document_id)
    assert len(rows) == second.chunks == len(chunk_text(TEXT_V2, chunk_size=300, overlap=50))
    assert not old_ids & {r[0] for r in rows}
    assert [r[2] for r in rows] == [
        c.content for c in chunk_text(TEXT_V2, chunk_size=300, overlap=50)
    ]
    assert _document(su, first.document_id)[:4] == (
        "ready",
        None,
        "report (revised)",
        {"revision": 2},
    )
    versions = _versions(su, first.document_id)
    assert len(versions) > versions_before
    assert versions[-1][3] == "ready"
    assert "name" in versions[-1][2]
    assert "metadata" in versions[-1][2]


def test_failing_embedder_keeps_previous_chunks(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    first = Ingestor(db, FakeEmbedder()).ingest_document(
        claims=_member(world), collection_id=collection, name="kept", text=TEXT_V1
    )
    before = _chunks(su, first.document_id)

    with pytest.raises(IngestionFailed) as info:
        Ingestor(db, FailingEmbedder()).ingest_document(
            claims=_member(world),
            collection_id=collection,
            document_id=first.document_id,
            name="kept",
            text=TEXT_V2,
        )
    assert isinstance(info.value.__cause__, RuntimeError)
    assert _chunks(su, first.document_id) == before
    status, error, *_ = _document(su, first.document_id)
    assert status == "failed"
    assert error == "embedding failed: RuntimeError"
    assert "sk-secret" not in str(info.value)
    assert [v[3] for v in _versions(su, first.document_id)][-2:] == ["processing", "failed"]

    # A later successful ingest clears the error.
    Ingestor(db, FakeEmbedder()).ingest_document(
        claims=_member(world),
        collection_id=collection,
        document_id=first.document_id,
        name="kept",
        text=TEXT_V2,
    )
    assert _document(su, first.document_id)[:2] == ("ready", None)


def test_failure_inside_the_replace_transaction_rolls_it_back(
    db: Database,
    world: World,
    su: psycopg.Connection[Any],
    collection: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = Ingestor(db, FakeEmbedder()).ingest_document(
        claims=_member(world), collection_id=collection, name="rollback", text=TEXT_V1
    )
    before = _chunks(su, first.document_id)
    original = ingest_module._copy_rows

    def copy_then_fail(*args: Any) -> None:
        original(*args)  # old chunks deleted, new rows staged: then the transaction dies
        raise InvalidInput("boom after copy")

    monkeypatch.setattr(ingest_module, "_copy_rows", copy_then_fail)
    with pytest.raises(InvalidInput, match="boom after copy"):
        Ingestor(db, FakeEmbedder()).ingest_document(
            claims=_member(world),
            collection_id=collection,
            document_id=first.document_id,
            name="rollback",
            text=TEXT_V2,
        )
    assert _chunks(su, first.document_id) == before
    status, error, *_ = _document(su, first.document_id)
    assert status == "failed"
    assert error == "writing chunks failed: InvalidInput: boom after copy"


def test_bad_provider_output_fails_the_document(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    class ShortEmbedder(FakeEmbedder):
        def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
            return [(1.0,) * 3 for _ in texts]

    with pytest.raises(InvalidInput, match="3 dimensions"):
        Ingestor(db, ShortEmbedder()).ingest_document(
            claims=_member(world), collection_id=collection, name="short", text=TEXT_V1
        )
    row = su.execute(
        "select id, status, error from public.documents"
        " where collection_id = %s and name = 'short'",
        (collection,),
    ).fetchone()
    assert row is not None
    assert row[1] == "failed"
    assert "3 dimensions" in row[2]
    assert _chunks(su, row[0]) == []


def test_viewer_cannot_ingest(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    viewer = user_claims(world.a.users["viewer"])
    embedder = FakeEmbedder()
    with pytest.raises(PermissionDenied):
        Ingestor(db, embedder).ingest_document(
            claims=viewer, collection_id=collection, name="viewer doc", text=TEXT_V1
        )
    assert _count_named(su, "viewer doc") == 0

    existing = Ingestor(db, FakeEmbedder()).ingest_document(
        claims=_member(world), collection_id=collection, name="viewer target", text=TEXT_V1
    )
    before = (_chunks(su, existing.document_id), _versions(su, existing.document_id))
    with pytest.raises(PermissionDenied):
        Ingestor(db, embedder).ingest_document(
            claims=viewer,
            collection_id=collection,
            document_id=existing.document_id,
            name="viewer target",
            text=TEXT_V2,
        )
    assert embedder.calls == []
    assert (_chunks(su, existing.document_id), _versions(su, existing.document_id)) == before
    assert _document(su, existing.document_id)[0] == "ready"


def test_other_tenant_cannot_ingest_into_a_collection(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    intruder = user_claims(world.b.users["member"])
    with pytest.raises(NotFound):
        Ingestor(db, FakeEmbedder()).ingest_document(
            claims=intruder, collection_id=collection, name="intruder doc", text=TEXT_V1
        )
    assert _count_named(su, "intruder doc") == 0

    existing = Ingestor(db, FakeEmbedder()).ingest_document(
        claims=_member(world), collection_id=collection, name="a's doc", text=TEXT_V1
    )
    before = _chunks(su, existing.document_id)
    with pytest.raises(NotFound):
        Ingestor(db, FakeEmbedder()).ingest_document(
            claims=intruder,
            collection_id=collection,
            document_id=existing.document_id,
            name="a's doc",
            text=TEXT_V2,
        )
    assert _chunks(su, existing.document_id) == before
    # Naming tenant A explicitly does not help a user of tenant B.
    with pytest.raises(PermissionDenied):
        Ingestor(db, FakeEmbedder()).ingest_document(
            claims=intruder,
            collection_id=collection,
            name="intruder doc",
            text=TEXT_V1,
            client_id=world.a.client_id,
        )
    assert _count_named(su, "intruder doc") == 0


def test_service_role_ingests_with_client_id(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    service = {"role": "service_role"}
    result = Ingestor(db, FakeEmbedder()).ingest_document(
        claims=service,
        client_id=world.a.client_id,
        collection_id=collection,
        name="from backend",
        text=TEXT_V1,
        source_type="api",
        source_url="https://example.com/doc",
        file_type="text/plain",
    )
    assert result.status == "ready"
    assert _document(su, result.document_id)[4:] == (world.a.client_id, "api")
    rows = _chunks(su, result.document_id)
    assert len(rows) == result.chunks
    assert {r[7] for r in rows} == {world.a.client_id}
    assert {v[4] for v in _versions(su, result.document_id)} == {None}  # no user

    # The backend naming the wrong tenant does not find the collection.
    with pytest.raises(NotFound):
        Ingestor(db, FakeEmbedder()).ingest_document(
            claims=service,
            client_id=world.b.client_id,
            collection_id=collection,
            name="wrong tenant",
            text=TEXT_V1,
        )
    assert _count_named(su, "wrong tenant") == 0


def test_service_role_without_client_id_is_refused(
    db: Database, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    with pytest.raises(InvalidInput, match="client_id is required"):
        Ingestor(db, FakeEmbedder()).ingest_document(
            claims={"role": "service_role"},
            collection_id=collection,
            name="no tenant",
            text=TEXT_V1,
        )
    assert _count_named(su, "no tenant") == 0


def test_arguments_are_checked_before_anything_is_written(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    ingestor = Ingestor(db, FakeEmbedder())
    with pytest.raises(InvalidInput, match="overlap"):
        ingestor.ingest_document(
            claims=_member(world),
            collection_id=collection,
            name="bad args",
            text=TEXT_V1,
            chunk_size=100,
            overlap=100,
        )
    with pytest.raises(InvalidInput, match="no content"):
        ingestor.ingest_document(
            claims=_member(world), collection_id=collection, name="bad args", text=" \n "
        )
    assert _count_named(su, "bad args") == 0

    class WrongModel(FakeEmbedder):
        dimensions = 768

    with pytest.raises(ConfigurationError, match="768"):
        Ingestor(db, WrongModel())


def test_ingest_documents_processes_each_lazily(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    embedder = FakeEmbedder()
    docs = (
        DocumentInput(collection_id=collection, name=f"batch {i}", text=f"{TEXT_V2} Extra {i}.")
        for i in range(3)
    )
    results = Ingestor(db, embedder).ingest_documents(docs, claims=_member(world))
    assert embedder.calls == []  # nothing happens until iterated
    collected = list(results)
    assert [r.status for r in collected] == ["ready"] * 3
    assert len({r.document_id for r in collected}) == 3
    for r in collected:
        assert len(_chunks(su, r.document_id)) == r.chunks > 0


def test_chunks_are_written_with_binary_copy(
    db: Database, world: World, collection: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    original = psycopg.Cursor.copy

    def spy(self: psycopg.Cursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(" ".join(str(statement).split()))
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    Ingestor(db, FakeEmbedder()).ingest_document(
        claims=_member(world), collection_id=collection, name="copy spy", text=TEXT_V1
    )
    assert len(statements) == 1
    assert statements[0].startswith("copy pg_temp.renum_ingest_chunks")
    assert statements[0].endswith("from stdin (format binary)")


def test_a_new_document_ends_with_exactly_its_own_chunks_even_if_others_wrote_meanwhile(
    db: Database, db_url: str, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    # Setup: while the new document is being embedded (no transaction open), another writer
    # adds a chunk to it.
    def intrude(texts: Sequence[str]) -> None:
        with psycopg.connect(db_url, autocommit=True) as other:
            other.execute(
                "insert into public.document_chunks (client_id, document_id, content,"
                " chunk_index, embedding)"
                " select client_id, id, 'written meanwhile', 999, %s::extensions.vector"
                "   from public.documents where collection_id = %s and name = 'intruded'",
                (str(list(fake_vector("x"))), collection),
            )

    # Action
    result = Ingestor(db, FakeEmbedder(intrude), embed_batch_size=1000).ingest_document(
        claims=_member(world), collection_id=collection, name="intruded", text=TEXT_V1
    )

    # Assertion: the replace leaves the document's chunks and nothing else.
    rows = _chunks(su, result.document_id)
    assert [r[2] for r in rows] == [c.content for c in chunk_text(TEXT_V1)]
    assert result.chunks == len(rows)


def test_a_provider_vector_with_nan_fails_the_document_and_stores_nothing(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    class NaNEmbedder(FakeEmbedder):
        def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
            return [(*fake_vector(t)[:-1], float("nan")) for t in texts]

    embedder = NaNEmbedder()
    with pytest.raises(InvalidInput, match="non-finite"):
        Ingestor(db, embedder).ingest_document(
            claims=_member(world), collection_id=collection, name="nan", text=TEXT_V1
        )
    row = su.execute(
        "select d.id, d.status,"
        "       (select count(*) from public.embedding_cache as e"
        "         where e.client_id = d.client_id and e.model like %s)"
        "  from public.documents as d where d.collection_id = %s and d.name = 'nan'",
        (f"{embedder.model}:%", collection),
    ).fetchone()
    assert row is not None
    assert row[1:] == ("failed", 0)
    assert _chunks(su, row[0]) == []


def test_every_chunk_embedding_equals_the_vector_the_ingestor_cached_for_its_text(
    db: Database, world: World, su: psycopg.Connection[Any], collection: uuid.UUID
) -> None:
    # The cache rows are written with binary vectors in their own statement; the chunks by
    # binary COPY: both must hold the provider's vector at float4 precision, bit for bit.
    embedder = FakeEmbedder()
    result = Ingestor(db, embedder, embed_batch_size=3).ingest_document(
        claims={"role": "service_role"},
        client_id=world.a.client_id,
        collection_id=collection,
        name="cached",
        text=TEXT_V1,
    )
    rows = su.execute(
        "select c.embedding = e.embedding, e.embedding::text"
        "  from public.document_chunks as c"
        "  left join public.embedding_cache as e"
        "    on e.client_id = c.client_id and e.model = %s"
        "   and e.content_hash = pg_catalog.sha256(convert_to(c.content, 'UTF8'))"
        " where c.document_id = %s",
        (f"{embedder.model}:{DIMS}", result.document_id),
    ).fetchall()
    assert len(rows) == result.chunks > 3
    assert all(r[0] is True for r in rows)
    expected = {fake_vector(c.content) for c in chunk_text(TEXT_V1)}
    assert {tuple(float(v) for v in r[1].strip("[]").split(",")) for r in rows} == expected


def test_the_backend_copies_a_new_documents_chunks_straight_into_the_table(
    db: Database,
    world: World,
    su: psycopg.Connection[Any],
    collection: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    statements: list[str] = []
    original = psycopg.Cursor.copy

    def spy(self: psycopg.Cursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(" ".join(str(statement).split()))
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    ingestor = Ingestor(db, FakeEmbedder())
    first = ingestor.ingest_document(
        claims={"role": "service_role"},
        client_id=world.a.client_id,
        collection_id=collection,
        name="direct",
        text=TEXT_V1,
    )
    ingestor.ingest_document(
        claims={"role": "service_role"},
        client_id=world.a.client_id,
        collection_id=collection,
        document_id=first.document_id,
        name="direct",
        text=TEXT_V2,
    )

    # The new document went straight in; its re-ingest was staged (to keep unchanged chunks).
    assert [s.split(" (")[0] for s in statements] == [
        "copy public.document_chunks",
        "copy pg_temp.renum_ingest_chunks",
    ]
    rows = _chunks(su, first.document_id)
    assert [r[2] for r in rows] == [c.content for c in chunk_text(TEXT_V2)]
    assert {r[5] for r in rows} == {"english"}
    assert {r[7] for r in rows} == {world.a.client_id}


def test_a_failure_after_the_backends_direct_copy_leaves_no_chunk(
    db: Database,
    world: World,
    su: psycopg.Connection[Any],
    collection: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ingest_module._copy_rows

    def copy_then_fail(*args: Any) -> None:
        original(*args)  # rows already in document_chunks: then the transaction dies
        raise InvalidInput("boom after direct copy")

    monkeypatch.setattr(ingest_module, "_copy_rows", copy_then_fail)
    with pytest.raises(InvalidInput, match="boom after direct copy"):
        Ingestor(db, FakeEmbedder()).ingest_document(
            claims={"role": "service_role"},
            client_id=world.a.client_id,
            collection_id=collection,
            name="direct rollback",
            text=TEXT_V1,
        )
    row = su.execute(
        "select id, status from public.documents where collection_id = %s and name = %s",
        (collection, "direct rollback"),
    ).fetchone()
    assert row is not None
    assert row[1] == "failed"
    assert _chunks(su, row[0]) == []
