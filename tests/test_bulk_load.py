"""The bulk-load procedure (renum_db.bulk_load, `renum-db bulk-load`): documents of one tenant
loaded through the Ingestor with the shared indexes of document_chunks dropped, then rebuilt
valid, also when the load fails."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from renum_db import bulk_load as bulk_load_module
from renum_db import tenant_indexes
from renum_db.bulk_load import SHARED_INDEXES, BulkLoadProgress, bulk_load
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


def index_definitions(url: str) -> dict[str, str]:
    """The catalog's definition of each shared index, storage parameters included (the text
    index's fastupdate = off, 0024)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select indexname, indexdef from pg_catalog.pg_indexes where indexname = any (%s)",
            (list(SHARED_INDEXES),),
        ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


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
    seen: list[BulkLoadProgress] = []
    during: list[dict[str, bool]] = []
    definitions = index_definitions(db_url)
    assert "fastupdate=off" in definitions["document_chunks_fts_idx"]

    def progress(event: BulkLoadProgress) -> None:
        seen.append(event)
        if event.stage == "load" and not event.detail:
            during.append(shared_indexes(db_url))

    report = bulk_load(
        db_url,
        docs(collection, "bulk", 3),
        client_id=world.a.client_id,
        embedder=LexicalHashingEmbeddings(),
        chunk_size=200,
        overlap=0,
        maintenance_work_mem="64MB",
        progress=progress,
    )
    assert report.documents == 3
    assert report.chunks == chunks_of(db_url, world.a.client_id, ["bulk 0", "bulk 1", "bulk 2"])
    assert report.chunks > 3
    assert set(report.rebuilt) == set(SHARED_INDEXES)
    assert shared_indexes(db_url) == dict.fromkeys(SHARED_INDEXES, True)
    assert index_definitions(db_url) == definitions  # rebuilt as they were
    documents = [(e.done, e.total) for e in seen if e.stage == "load" and not e.detail]
    assert documents == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert during == [{}, {}, {}, {}]  # the load ran without the shared indexes
    # Within each document: its chunks embedded, then written.
    assert any(e.stage == "load" and e.detail.startswith("writing") for e in seen)
    built = [e.detail for e in seen if e.stage == "index" and e.detail.endswith(": built")]
    assert sorted(built) == sorted(f"{name}: built" for name in SHARED_INDEXES)
    assert [(e.stage, e.done) for e in seen if e.stage in ("vacuum", "promote")] == [
        ("vacuum", 0),
        ("vacuum", 1),
        ("promote", 0),
        ("promote", 1),
    ]
    # Vacuumed, not only analyzed (VACUUM marks the loaded pages all-visible; how many it can
    # mark depends on the snapshots open around it, which a test does not control).
    with psycopg.connect(db_url) as conn:
        vacuumed = conn.execute(
            "select relid::regclass::text, last_vacuum is not null, last_analyze is not null "
            "from pg_catalog.pg_stat_all_tables "
            "where relid in ('public.document_chunks'::regclass, "
            "'private.document_chunk_texts'::regclass) order by 1"
        ).fetchall()
    assert vacuumed == [
        ("document_chunks", True, True),
        ("private.document_chunk_texts", True, True),
    ]


def test_the_index_rebuild_reports_its_build_phase_while_it_runs(
    db_url: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Setup: once the documents are loaded, an open transaction writing document_chunks makes
    # the concurrent rebuild wait for it ("waiting for writers"), so the rebuild is certainly
    # running when its progress is read.
    monkeypatch.setattr(bulk_load_module, "POLL_SECONDS", 0.05)
    collection = collection_of(db_url, world.b.client_id)
    loaded, locked, waiting = threading.Event(), threading.Event(), threading.Event()
    phases: list[str] = []
    failures: list[BaseException] = []

    def progress(event: BulkLoadProgress) -> None:
        if event.stage == "load" and event.total and event.done == event.total:
            loaded.set()
            locked.wait(timeout=60)
        if event.stage == "index":
            phases.append(event.detail)
            if "waiting for writers" in event.detail:
                waiting.set()

    def load() -> None:
        try:
            bulk_load(
                db_url,
                docs(collection, "watched", 1),
                client_id=world.b.client_id,
                embedder=LexicalHashingEmbeddings(),
                progress=progress,
            )
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=load)
    with psycopg.connect(db_url) as writer:
        thread.start()
        assert loaded.wait(timeout=60)
        writer.execute("lock table public.document_chunks in row exclusive mode")
        locked.set()
        seen_waiting = waiting.wait(timeout=60)
        writer.rollback()  # let the rebuild go on
    thread.join(timeout=120)

    # Assertion
    assert not failures
    assert seen_waiting, phases
    waited = [p for p in phases if "waiting for writers" in p]
    assert waited
    assert {p.split(": ", 1)[0] for p in waited} <= set(SHARED_INDEXES)
    assert shared_indexes(db_url) == dict.fromkeys(SHARED_INDEXES, True)


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


def test_the_cli_refuses_a_missing_file_before_touching_the_indexes(
    db_url: str,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(
        [
            "bulk-load",
            "--client-id", str(world.b.client_id),
            "--collection-id", str(collection_of(db_url, world.b.client_id)),
            str(tmp_path / "absent.txt"),
        ]
    )  # fmt: skip
    assert code == 2
    assert "not a file" in capsys.readouterr().err
    assert shared_indexes(db_url) == dict.fromkeys(SHARED_INDEXES, True)


def test_a_promoted_tenant_gets_its_own_index_back_rebuilt_after_the_load(
    db_url: str, world: World
) -> None:
    collection = collection_of(db_url, world.a.client_id)
    name = tenant_indexes.index_name_for(world.a.client_id)

    def own_index() -> tuple[int, list[str]] | None:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "select c.oid::int, c.reloptions from pg_catalog.pg_class as c"
                " join pg_catalog.pg_index as i on i.indexrelid = c.oid"
                " where c.relname = %s and i.indisvalid",
                (name,),
            ).fetchone()
        return None if row is None else (int(row[0]), sorted(row[1]))

    seen: list[bool] = []
    with psycopg.connect(db_url, autocommit=True) as admin:
        tenant_indexes.promote(admin, world.a.client_id, m=8, ef_construction=24)
        before = own_index()
        try:
            report = bulk_load(
                db_url,
                docs(collection, "promoted", 1),
                client_id=world.a.client_id,
                embedder=LexicalHashingEmbeddings(),
                chunk_size=200,
                overlap=0,
                progress=lambda e: seen.append(own_index() is None) if e.stage == "load" else None,
            )
            after = own_index()
            settings = tenant_indexes.build_settings(admin, world.a.client_id)
        finally:
            tenant_indexes.demote(admin, world.a.client_id)
    assert before is not None
    assert after is not None
    assert after[0] != before[0]  # dropped for the load, built again
    assert after[1] == before[1] == ["ef_construction=24", "m=8"]
    assert settings == (8, 24)
    assert seen
    assert all(seen)  # the load ran without it
    assert world.a.client_id in report.promoted
