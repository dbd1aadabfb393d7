"""The bulk-load procedure (renum_db.bulk_load, `renum-db bulk-load`): documents of one tenant
loaded through the Ingestor with the shared indexes of document_chunks dropped, then rebuilt
valid, also when the load fails."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from renum_db.bulk_load import SHARED_INDEXES, bulk_load
from renum_db.cli import main
from renum_db.embeddings import LexicalHashingEmbeddings
from renum_db.errors import InvalidInput
from renum_db.ingest import DocumentInput
from tests.support import World


def collection_of(url: str, client_id: uuid.UUID) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select id from public.knowledge_collections where client_id = %s limit 1",
            (client_id,),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def shared_indexes(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select c.relname, i.indisvalid from pg_catalog.pg_index as i "
            "join pg_catalog.pg_class as c on c.oid = i.indexrelid where c.relname = any (%s)",
            (list(SHARED_INDEXES),),
        ).fetchall()
    return {str(r[0]): bool(r[1]) for r in rows}


def chunks_of(url: str, client_id: uuid.UUID, names: list[str]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) from public.document_chunks as c join public.documents as d "
            "on d.client_id = c.client_id and d.id = c.document_id "
            "where c.client_id = %s and d.name = any (%s)",
            (client_id, names),
        ).fetchone()
    return int(row[0]) if row else 0


def docs(collection: uuid.UUID, label: str, n: int) -> list[DocumentInput]:
    para = "Contrato de fornecimento com prazo de entrega e multa por atraso."
    return [
        DocumentInput(collection_id=collection, name=f"{label} {i}", text=f"{para} {i}\n\n" * 30)
        for i in range(n)
    ]


def test_bulk_load_ingests_every_document_and_rebuilds_the_shared_indexes(
    db_url: str, world: World
) -> None:
    collection = collection_of(db_url, world.a.client_id)
    seen: list[tuple[int, int, int]] = []
    during: list[dict[str, bool]] = []

    def progress(done: int, total: int, chunks: int) -> None:
        seen.append((done, total, chunks))
        during.append(shared_indexes(db_url))

    report = bulk_load(
        db_url,
        docs(collection, "bulk", 3),
        client_id=world.a.client_id,
        embedder=LexicalHashingEmbeddings(),
        chunk_size=200,
        overlap=0,
        progress=progress,
    )
    assert report.documents == 3
    assert report.chunks == chunks_of(db_url, world.a.client_id, ["bulk 0", "bulk 1", "bulk 2"])
    assert report.chunks > 3
    assert set(report.rebuilt) == set(SHARED_INDEXES)
    assert shared_indexes(db_url) == dict.fromkeys(SHARED_INDEXES, True)
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert during == [{}, {}, {}]  # the load ran without the shared indexes


def test_a_failed_load_still_rebuilds_the_shared_indexes(db_url: str, world: World) -> None:
    collection = collection_of(db_url, world.a.client_id)
    bad = [
        *docs(collection, "fails", 1),
        DocumentInput(collection_id=collection, name="x", text=" "),
    ]
    with pytest.raises(InvalidInput):
        bulk_load(
            db_url,
            bad,
            client_id=world.a.client_id,
            embedder=LexicalHashingEmbeddings(),
        )
    assert shared_indexes(db_url) == dict.fromkeys(SHARED_INDEXES, True)
    assert chunks_of(db_url, world.a.client_id, ["fails 0"]) > 0  # the first one stays loaded


def test_keeping_the_indexes_loads_into_the_live_table(db_url: str, world: World) -> None:
    collection = collection_of(db_url, world.b.client_id)
    report = bulk_load(
        db_url,
        docs(collection, "live", 1),
        client_id=world.b.client_id,
        embedder=LexicalHashingEmbeddings(),
        drop_indexes=False,
    )
    assert report.rebuilt == ()
    assert report.documents == 1
    assert shared_indexes(db_url) == dict.fromkeys(SHARED_INDEXES, True)


def test_the_cli_loads_files_with_a_progress_bar(
    db_url: str,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = []
    for i in range(2):
        path = tmp_path / f"note{i}.txt"
        path.write_text(f"Relatório trimestral de despesas número {i}.\n" * 20, encoding="utf-8")
        files.append(str(path))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(
        [
            "bulk-load",
            "--client-id", str(world.b.client_id),
            "--collection-id", str(collection_of(db_url, world.b.client_id)),
            *files,
        ]
    )  # fmt: skip
    out: Any = capsys.readouterr()
    assert code == 0
    assert "2/2 documents" in out.err
    assert out.out.startswith("2 document(s)")
    assert chunks_of(db_url, world.b.client_id, ["note0.txt", "note1.txt"]) >= 2
