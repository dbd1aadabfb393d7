"""The application commands of `renum-db` (tenant, user, ingest, search, doctor), run for real:
`main(argv)` in-process and the installed entry point in a subprocess, against this module's
copy of the test database (DATABASE_URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from renum_db.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("renum-db")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "OPENAI_API_KEY",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_JWT_SECRET",
        "ENCRYPTION_KEY",
        "SUPABASE_DB_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("RENUM_POOL_MIN", "0")
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def email() -> str:
    return f"ana-{uuid.uuid4().hex[:8]}@acme.test"


def tenant_and_member(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    code, out, _ = run(capsys, "tenant", "create", "Acme")
    assert code == 0
    client_id = out.strip()
    address = email()
    code, out, _ = run(
        capsys, "user", "create", "--tenant", client_id, "--email", address, "--role", "member"
    )
    assert code == 0
    return client_id, address


def test_tenant_create_prints_the_new_client_id(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    code, out, _ = run(capsys, "tenant", "create", "Acme")
    assert code == 0
    client_id = uuid.UUID(out.strip())
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select name from public.clients where id = %s", (client_id,))
        assert row.fetchone() == ("Acme",)


def test_user_create_prints_the_new_user_id_with_its_tenant_and_role(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    client_id = run(capsys, "tenant", "create", "Acme")[1].strip()
    code, out, _ = run(
        capsys, "user", "create", "--tenant", client_id, "--email", email(), "--role", "member"
    )
    assert code == 0
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select client_id::text, role from public.users where id = %s",
            (uuid.UUID(out.strip()),),
        ).fetchone()
    assert row == (client_id, "member")


def test_user_create_in_an_unknown_tenant_fails_with_exit_2_and_a_message(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "user", "create", "--tenant", str(uuid.uuid4()), "--email", email()
    )
    assert code == 2
    assert out == ""
    assert "no client" in err


def test_ingest_then_search_finds_the_ingested_document(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, address = tenant_and_member(capsys)
    (tmp_path / "contrato.md").write_text(
        "# Contrato\n\nO prazo do contrato é de doze meses a partir da assinatura.\n"
    )
    (tmp_path / "viagens.txt").write_text("Relatório de despesas com viagens da diretoria.\n")
    ingested = run_json(
        capsys,
        "ingest",
        "--user",
        address,
        "--collection",
        "Contratos",
        str(tmp_path / "contrato.md"),
        str(tmp_path / "viagens.txt"),
    )
    assert ingested["collection_created"] is True
    assert ingested["offline_provider"] is True
    assert [d["status"] for d in ingested["documents"]] == ["ready", "ready"]
    found = run_json(capsys, "search", "--user", address, "prazo do contrato", "-k", "1")
    assert [r["document"] for r in found["results"]] == ["contrato.md"]
    hybrid = run_json(capsys, "search", "--user", address, "prazo do contrato", "--hybrid")
    assert hybrid["results"][0]["document"] == "contrato.md"


def test_ingesting_again_reuses_the_collection_and_reingests_the_document(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, address = tenant_and_member(capsys)
    doc = tmp_path / "a.txt"
    doc.write_text("primeiro texto")
    first = run_json(capsys, "ingest", "--user", address, "--collection", "C", str(doc))
    again = run_json(capsys, "ingest", "--user", address, "--collection", "C", str(doc))
    assert again["collection_id"] == first["collection_id"]
    assert again["collection_created"] is False
    assert again["documents"][0]["document_id"] == first["documents"][0]["document_id"]
    assert again["documents"][0]["reingested"] is True


def test_without_an_openai_key_the_offline_provider_says_so(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, address = tenant_and_member(capsys)
    code, _out, err = run(capsys, "search", "--user", address, "qualquer coisa")
    assert code == 0
    assert "OPENAI_API_KEY is not set" in err
    assert "offline" in err


def test_ingest_refuses_a_file_type_it_cannot_read_before_writing_anything(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, db_url: str
) -> None:
    _, address = tenant_and_member(capsys)
    good, bad = tmp_path / "ok.txt", tmp_path / "scan.pdf"
    good.write_text("texto")
    bad.write_bytes(b"%PDF-1.7")
    code, _, err = run(
        capsys, "ingest", "--user", address, "--collection", "X", str(good), str(bad)
    )
    assert code == 2
    assert "scan.pdf" in err
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select count(*) from public.documents where name = 'ok.txt'")
        assert row.fetchone() == (0,)


def test_ingest_shows_progress_bars_when_asked(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, address = tenant_and_member(capsys)
    doc = tmp_path / "longo.txt"
    doc.write_text("Um parágrafo sobre prazos e contratos. " * 400)
    code, out, err = run(
        capsys, "ingest", "--user", address, "--collection", "P", "--progress", str(doc)
    )
    assert code == 0
    assert "longo.txt" in err
    assert "files" in err
    assert "ready" in out


def test_doctor_reports_a_healthy_database_and_exits_0(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_json(capsys, "doctor")
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert set(checks) >= {
        "connection",
        "migrations",
        "sources",
        "functions",
        "platform",
        "extensions",
        "rls",
        "indexes",
        "migration_lock",
        "ingestion",
        "credentials",
        "pool_and_cache",
        "size",
        "memory",
    }
    assert checks["migrations"]["details"]["pending"] == []
    # the test database's graphs are tiny: they fit in any shared_buffers
    assert checks["memory"]["status"] == "ok", checks["memory"]
    assert checks["memory"]["details"]["shared_buffers_bytes"] > 0
    assert "vector" in checks["extensions"]["details"]
    assert checks["size"]["details"]["database_bytes"] > 0
    assert checks["platform"]["details"]["supabase"] is False


def test_doctor_exits_1_when_a_document_is_stuck_in_processing(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    with psycopg.connect(db_url) as conn:
        client = conn.execute("insert into public.clients (name) values ('S') returning id")
        client_id = client.fetchone()[0]  # type: ignore[index]
        kb = conn.execute(
            "insert into public.knowledge_bases (client_id, name) values (%s, 'kb') returning id",
            (client_id,),
        ).fetchone()[0]  # type: ignore[index]
        col = conn.execute(
            "insert into public.knowledge_collections (client_id, knowledge_base_id, name)"
            " values (%s, %s, 'c') returning id",
            (client_id, kb),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("alter table public.documents disable trigger documents_set_updated_at")
        conn.execute(
            "insert into public.documents (client_id, collection_id, name, status, updated_at)"
            " values (%s, %s, 'stuck', 'processing', now() - interval '2 hours')",
            (client_id, col),
        )
        conn.execute("alter table public.documents enable trigger documents_set_updated_at")
    try:
        code, out, _ = run(capsys, "doctor", "--json")
        report = json.loads(out)
        ingestion = next(c for c in report["checks"] if c["name"] == "ingestion")
        assert code == 1
        assert ingestion["status"] == "fail"
    finally:
        with psycopg.connect(db_url) as conn:
            conn.execute("delete from public.clients where id = %s", (client_id,))


def test_doctor_with_an_unreachable_database_exits_1_with_the_cause(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/x")
    code, out, _ = run(capsys, "doctor", "--json")
    report = json.loads(out)
    assert code == 1
    assert report["checks"][0]["status"] == "fail"
    assert "DATABASE_URL" in report["checks"][0]["summary"]


def test_the_installed_entry_point_creates_a_tenant(db_url: str, tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in ("SUPABASE_DB_URL",)}
    environ.update(DATABASE_URL=db_url, RENUM_POOL_MIN="0")
    done = subprocess.run(  # noqa: S603 - our own installed script
        [str(SCRIPT), "tenant", "create", "Acme", "--json"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "active"


def test_tenant_suspend_and_reactivate_report_the_new_status(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id = run(capsys, "tenant", "create", "Acme")[1].strip()
    assert run_json(capsys, "tenant", "suspend", client_id)["status"] == "suspended"
    listed = run_json(capsys, "tenant", "list")
    assert {"id": client_id, "status": "suspended"}.items() <= next(
        c for c in listed if c["id"] == client_id
    ).items()
    assert run_json(capsys, "tenant", "reactivate", client_id)["status"] == "active"


def test_tenant_create_without_a_name_exits_2(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "tenant", "create")
    assert code == 2
    assert out == ""
    assert "name" in err


def test_user_set_role_and_list_show_the_change(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id, address = tenant_and_member(capsys)
    changed = run_json(capsys, "user", "set-role", "--email", address, "--role", "admin")
    assert changed["role"] == "admin"
    listed = run_json(capsys, "user", "list", "--tenant", client_id)
    assert [(u["email"], u["role"]) for u in listed] == [(address, "admin")]


def test_search_prints_a_table_for_people(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, address = tenant_and_member(capsys)
    doc = tmp_path / "tabela.txt"
    doc.write_text("A multa por atraso é de dois por cento ao mês.")
    assert run(capsys, "ingest", "--user", address, "--collection", "T", str(doc))[0] == 0
    code, out, _ = run(capsys, "search", "--user", address, "multa por atraso", "-k", "1")
    assert code == 0
    assert "tabela.txt" in out
    assert "multa" in out


def test_search_for_an_unknown_user_exits_2_naming_the_email(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "search", "--user", "ghost@acme.test", "prazo")
    assert code == 2
    assert "ghost@acme.test" in err


def test_doctor_exits_1_when_a_function_was_edited_in_the_database(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    with psycopg.connect(db_url) as conn:
        original = conn.execute(
            "select pg_get_functiondef('private.most_used_documents'::regproc)"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("comment on function private.most_used_documents is 'x'")
        conn.execute(original.replace("begin", "begin\n  -- hotfix made in the console", 1))
    try:
        code, out, _ = run(capsys, "doctor", "--json")
        functions = next(c for c in json.loads(out)["checks"] if c["name"] == "functions")
        assert code == 1
        assert functions["details"]["drifted"] == ["private.most_used_documents"]
    finally:
        with psycopg.connect(db_url) as conn:
            conn.execute(original)


def test_doctor_warns_when_the_hnsw_graphs_outgrow_shared_buffers() -> None:
    from renum_db.doctor import memory_check

    tight = memory_check(6_500 * 2**20, 256 * 2**20)
    assert tight.status == "warn"
    assert "6.3 GB" in tight.summary
    assert "256.0 MB" in tight.summary
    assert memory_check(200 * 2**20, 256 * 2**20).status == "ok"
    assert memory_check(256 * 2**20, 256 * 2**20).status == "ok"
