"""Deploys that cannot wedge: the deploy lock, yoyo's lock row (stale and live), `kill -9` in the
middle of a migration, concurrent runs, applied-migration checksums and rollback confirmation.

Concurrency tests run the real command line in subprocesses (`python -m renum_db`) against a
fresh database; they wait on catalog state (pg_stat_activity, pg_locks), never on sleeps.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from renum_db import cli, migrations
from renum_db.errors import ConfirmationRequired, DeployLocked, MigrationChecksumMismatch

ROOT = migrations.project_root()
CHAIN = sorted(
    p.name.removesuffix(".sql")
    for p in (ROOT / "migrations").glob("*.sql")
    if not p.name.endswith(".rollback.sql")
)
WAIT_LIMIT = 60.0  # a bound on polling loops, never an expected duration


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENUM_")}
    env.pop("SUPABASE_DB_URL", None)
    return {**env, "DATABASE_URL": url, "RENUM_SUPABASE_SHIM": "always", **extra}


def _start(url: str, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "renum_db", *args],
        env=_env(url, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _run(url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "renum_db", *args],
        env=_env(url, **extra),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        check=False,
    )


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _scalar(url: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def _applied_ids(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select migration_id from renum_migrations._yoyo_migration order by 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


@pytest.fixture
def holder(scratch_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Another session on the target database, named like a deploy tool would be."""
    with psycopg.connect(
        scratch_url, autocommit=True, application_name="other-deploy-tool"
    ) as conn:
        yield conn


# --- concurrent runs ----------------------------------------------------------------------------


def test_two_concurrent_migrates_on_a_fresh_database_both_succeed_with_one_chain(
    scratch_url: str,
) -> None:
    first, second = _start(scratch_url, "migrate"), _start(scratch_url, "migrate")
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    applied_lines = sum(out.count("applied 0") for out, _ in outputs)
    assert applied_lines == len(CHAIN)
    assert _applied_ids(scratch_url) == CHAIN
    assert _scalar(scratch_url, "select count(*) from renum_migrations.yoyo_lock") == 0


def test_a_migrate_waits_for_the_deploy_lock_naming_its_holder_then_succeeds(
    scratch_url: str, holder: psycopg.Connection[Any]
) -> None:
    holder.execute("select pg_advisory_lock(%s)", (migrations.DEPLOY_LOCK_KEY,))
    proc = _start(scratch_url, "migrate")
    # Until the holder lookup has *finished* (the session idle after it): released while the
    # lookup still runs, the lock has no holder to name and the migrate rightly says nothing.
    _until(
        lambda: bool(
            _scalar(
                scratch_url,
                "select count(*) from pg_stat_activity where application_name like "
                "'renum-db migrate%%' and query like '%%pg_locks%%' and state like 'idle%%'",
            )
        ),
        "the migrate to look up the lock holder",
    )
    holder.execute("select pg_advisory_unlock(%s)", (migrations.DEPLOY_LOCK_KEY,))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "waiting for the deploy lock" in err
    assert f"backend pid {holder.info.backend_pid} (other-deploy-tool" in err
    assert _applied_ids(scratch_url) == CHAIN


def test_a_migrate_gives_up_on_a_held_deploy_lock_with_exit_2_and_the_recovery_command(
    scratch_url: str, holder: psycopg.Connection[Any]
) -> None:
    holder.execute("select pg_advisory_lock(%s)", (migrations.DEPLOY_LOCK_KEY,))
    done = _run(scratch_url, "migrate", RENUM_LOCK_TIMEOUT="0.5")
    assert done.returncode == 2
    assert "other-deploy-tool" in done.stderr
    assert f"pg_terminate_backend({holder.info.backend_pid})" in done.stderr
    assert "Traceback" not in done.stderr
    assert _scalar(scratch_url, "select to_regclass('renum_migrations._yoyo_migration')") is None


# --- yoyo's lock row ----------------------------------------------------------------------------


def test_a_migrate_killed_in_the_middle_of_a_migration_is_followed_by_one_that_succeeds(
    scratch_url: str, admin_url: str
) -> None:
    migrations.apply(scratch_url, shim="always", target=CHAIN[0])
    with psycopg.connect(scratch_url) as blocker:
        # 0002 references auth.users: holding this lock stops the run inside migration 0002.
        blocker.execute("lock table auth.users in access exclusive mode")
        proc = _start(scratch_url, "migrate")
        _until(
            lambda: bool(
                _scalar(
                    admin_url,
                    "select count(*) from pg_stat_activity where datname = %s "
                    "and wait_event_type = 'Lock' and pid <> %s",
                    (blocker.info.dbname, blocker.info.backend_pid),
                )
            ),
            "the migrate to block inside migration 0002",
        )
        assert _scalar(scratch_url, "select count(*) from renum_migrations.yoyo_lock") == 1
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.communicate(timeout=60)
        blocker.rollback()
    done = _run(scratch_url, "migrate")
    assert done.returncode == 0, done.stderr
    assert "cleared a stale migration lock" in done.stderr
    assert _applied_ids(scratch_url) == CHAIN
    assert _scalar(scratch_url, "select count(*) from renum_migrations.yoyo_lock") == 0


def test_a_stale_yoyo_lock_row_is_cleared_with_a_warning(
    scratch_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrations.apply(scratch_url, shim="always", target=CHAIN[0])
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        # What plain yoyo leaves after kill -9: its OS pid, no session behind it.
        conn.execute(
            "insert into renum_migrations.yoyo_lock (locked, ctime, pid) "
            "values (1, timezone('utc', now()), 2147483000)"
        )
    with caplog.at_level(logging.WARNING, logger="renum_db.migrations"):
        assert migrations.apply(scratch_url, shim="always", lock_timeout=5) == CHAIN[1:]
    assert "cleared a stale migration lock left by process 2147483000" in caplog.text


def test_a_live_yoyo_lock_row_makes_migrate_fail_naming_the_holder(
    scratch_url: str, holder: psycopg.Connection[Any]
) -> None:
    migrations.apply(scratch_url, shim="always", target=CHAIN[0])
    holder.execute(
        "insert into renum_migrations.yoyo_lock (locked, ctime, pid) "
        "values (1, timezone('utc', now()), pg_backend_pid())"
    )
    with pytest.raises(DeployLocked) as caught:
        migrations.apply(scratch_url, shim="always", lock_timeout=0.5)
    message = str(caught.value)
    assert f"backend pid {holder.info.backend_pid} (other-deploy-tool" in message
    assert f"pg_terminate_backend({holder.info.backend_pid})" in message
    assert _applied_ids(scratch_url) == CHAIN[:1]


# --- checksums ----------------------------------------------------------------------------------


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    for folder in ("migrations", "sql"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def test_migrate_records_the_checksum_of_every_applied_migration(scratch_url: str) -> None:
    migrations.apply(scratch_url, shim="always")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        found = conn.execute(
            "select migration_id, sha256 from renum_migrations.migration_checksums"
        ).fetchall()
    rows = {str(mid): str(digest) for mid, digest in found}
    assert rows == {
        mid: migrations.file_checksum(ROOT / "migrations" / f"{mid}.sql") for mid in CHAIN
    }


def test_migrate_and_status_refuse_an_edited_applied_migration(
    scratch_url: str, repo_copy: Path
) -> None:
    migrations.apply(scratch_url, shim="always", root=repo_copy, target=CHAIN[2])
    edited = repo_copy / "migrations" / f"{CHAIN[1]}.sql"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n-- edited\n", encoding="utf-8")
    with pytest.raises(MigrationChecksumMismatch, match=CHAIN[1]):
        migrations.apply(scratch_url, shim="always", root=repo_copy)
    with pytest.raises(MigrationChecksumMismatch, match=CHAIN[1]):
        migrations.status(scratch_url, root=repo_copy)
    assert _applied_ids(scratch_url) == CHAIN[:3]


def test_an_edited_pending_migration_is_not_refused(scratch_url: str, repo_copy: Path) -> None:
    migrations.apply(scratch_url, shim="always", root=repo_copy, target=CHAIN[0])
    pending = repo_copy / "migrations" / f"{CHAIN[1]}.sql"
    pending.write_text(pending.read_text(encoding="utf-8") + "\n-- edited\n", encoding="utf-8")
    assert migrations.apply(scratch_url, shim="always", root=repo_copy, target=CHAIN[1]) == [
        CHAIN[1]
    ]


def test_checksums_missing_from_an_older_database_are_recorded_on_the_next_migrate(
    scratch_url: str,
) -> None:
    migrations.apply(scratch_url, shim="always", target=CHAIN[1])
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("drop table renum_migrations.migration_checksums")
    migrations.apply(scratch_url, shim="always", target=CHAIN[2])
    assert _scalar(scratch_url, "select count(*) from renum_migrations.migration_checksums") == 3


def test_rolling_back_forgets_the_checksum(scratch_url: str) -> None:
    migrations.apply(scratch_url, shim="always", target=CHAIN[2])
    migrations.rollback(scratch_url, count=1)
    ids = _scalar(
        scratch_url,
        "select array_agg(migration_id order by 1) from renum_migrations.migration_checksums",
    )
    assert ids == CHAIN[:2]


def test_the_status_command_exits_2_on_an_edited_applied_migration(scratch_url: str) -> None:
    migrations.apply(scratch_url, shim="always", target=CHAIN[0])
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute(
            "update renum_migrations.migration_checksums set sha256 = repeat('0', 64) "
            "where migration_id = %s",
            (CHAIN[0],),
        )
    done = _run(scratch_url, "status")
    assert done.returncode == 2
    assert f"{CHAIN[0]}.sql (applied sha256 000000000000" in done.stderr


# --- rollback confirmation ----------------------------------------------------------------------


@pytest.fixture
def with_tenant(scratch_url: str) -> str:
    migrations.apply(scratch_url, shim="always")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("insert into public.clients (name) values ('Acme'), ('Globex')")
    return scratch_url


def test_rollback_over_tenant_data_without_confirmation_rolls_back_nothing(
    with_tenant: str,
) -> None:
    with pytest.raises(ConfirmationRequired, match="--yes"):
        migrations.rollback(with_tenant, count=None)
    assert _applied_ids(with_tenant) == CHAIN


def test_a_declined_confirmation_rolls_back_nothing(with_tenant: str) -> None:
    with pytest.raises(ConfirmationRequired, match="cancelled"):
        migrations.rollback(with_tenant, count=2, confirm=lambda plan: False)
    assert _applied_ids(with_tenant) == CHAIN


def test_the_confirmation_names_the_database_and_the_rows_at_stake(with_tenant: str) -> None:
    plans: list[migrations.RollbackPlan] = []

    def confirm(plan: migrations.RollbackPlan) -> bool:
        plans.append(plan)
        return True

    assert migrations.rollback(with_tenant, count=None, confirm=confirm) == CHAIN[::-1]
    (plan,) = plans
    assert plan.database == psycopg.conninfo.conninfo_to_dict(with_tenant)["dbname"]
    assert plan.rows["public.clients"] == 2
    assert plan.migrations == CHAIN[::-1]
    assert "2 row(s)" in plan.describe()
    assert plan.database in plan.describe()


def test_rollback_of_an_empty_database_needs_no_confirmation(scratch_url: str) -> None:
    migrations.apply(scratch_url, shim="always")
    assert migrations.rollback(scratch_url, count=None) == CHAIN[::-1]


def test_the_rollback_command_without_a_terminal_needs_yes(with_tenant: str) -> None:
    refused = _run(with_tenant, "rollback", "--all")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert "2 row(s)" in refused.stderr
    assert _applied_ids(with_tenant) == CHAIN
    forced = _run(with_tenant, "rollback", "--count", "2", "--yes")
    assert forced.returncode == 0, forced.stderr
    assert _applied_ids(with_tenant) == CHAIN[:-2]


def test_an_interactive_rollback_proceeds_only_when_the_database_name_is_typed(
    with_tenant: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(with_tenant)["dbname"]
    monkeypatch.setenv("DATABASE_URL", with_tenant)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["yes", str(dbname)])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert cli.main(["rollback", "--count", "1"]) == 2
    assert _applied_ids(with_tenant) == CHAIN
    assert cli.main(["rollback", "--count", "1"]) == 0
    assert _applied_ids(with_tenant) == CHAIN[:-1]
    err = capsys.readouterr().err
    assert f"database {dbname!r}" in err
    assert "2 row(s)" in err


def _waiting(url: str, pid: int) -> bool:
    """Whether a session of process `pid` (its lock or worker connection) waits on a lock."""
    return bool(
        _scalar(
            url,
            "select count(*) from pg_stat_activity where application_name like %s "
            "and wait_event_type = 'Lock'",
            (f"%(pid {pid} on %",),
        )
    )


def test_a_migrate_killed_during_a_concurrent_index_build_is_followed_by_one_that_rebuilds_it(
    scratch_url: str,
) -> None:
    hnsw = "public.document_chunks_embedding_hnsw_idx"
    migrations.apply(scratch_url, shim="always", target="0004.create-knowledge")
    with psycopg.connect(scratch_url) as writer:
        # An open writer on the table: 0005's `create index concurrently` waits for it.
        writer.execute("lock table public.document_chunks in row exclusive mode")
        first = _start(scratch_url, "migrate")
        _until(lambda: _waiting(scratch_url, first.pid), "0005 to wait inside its index build")
        assert _scalar(
            scratch_url, "select not indisvalid from pg_index where indexrelid = %s::regclass",
            (hnsw,),
        )  # fmt: skip
        first.kill()
        first.communicate(timeout=60)
        second = _start(scratch_url, "migrate")
        _until(
            lambda: (
                not _scalar(
                    scratch_url,
                    "select count(*) from pg_stat_activity where application_name like %s",
                    (f"%(pid {first.pid} on %",),
                )
            ),
            "the dead run's session to be terminated",
        )
        _until(lambda: _waiting(scratch_url, second.pid), "the second run to wait for the writer")
        writer.rollback()
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert "terminating backend" in err
    assert "dropping invalid index public.document_chunks_embedding_hnsw_idx" in err
    assert _scalar(
        scratch_url,
        "select indisvalid and pg_get_indexdef(indexrelid) like '%%USING hnsw%%' "
        "from pg_index where indexrelid = %s::regclass",
        (hnsw,),
    )
    assert _applied_ids(scratch_url) == CHAIN
