"""`renum-db doctor`: a health report of a renum-db database, as data (the CLI renders it).

Each check returns a `Check` whose status is 'ok', 'warn' (worth a look) or 'fail' (a problem:
the command exits 1). Checks run as the connecting role (the owner of the schema, which reads
every tenant's rows past RLS), each in its own short transaction, and a failing check never stops
the others. The sizes and statistics also serve monitoring: `database_sizes(conn)`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal

from psycopg import Connection

from renum_db import migrations
from renum_db.db import Database
from renum_db.embeddings import CachedEmbeddings
from renum_db.errors import RenumDBError, wrap_errors
from renum_db.ingest import STUCK_AFTER

__all__ = [
    "STUCK_AFTER",
    "Check",
    "DatabaseSizes",
    "Report",
    "database_sizes",
    "memory_check",
    "run_checks",
]

Status = Literal["ok", "warn", "fail"]

STALE_LOCK_AFTER: Final = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "status": c.status, "summary": c.summary, "details": c.details}
                for c in self.checks
            ],
        }


@dataclass(frozen=True, slots=True)
class DatabaseSizes:
    database_bytes: int
    tables: dict[str, int]
    """public tables by total size (heap, indexes, TOAST), largest first."""


_SIZES: Final = """
    select c.relname::text, pg_catalog.pg_total_relation_size(c.oid)
      from pg_catalog.pg_class as c
      join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'p')
     order by 2 desc, 1
"""


def database_sizes(conn: Connection[Any]) -> DatabaseSizes:
    """The database's size and the size of each public table, in bytes."""
    with wrap_errors():
        row = conn.execute("select pg_catalog.pg_database_size(current_database())").fetchone()
        tables = {str(name): int(size) for name, size in conn.execute(_SIZES).fetchall()}
    assert row is not None
    return DatabaseSizes(database_bytes=int(row[0]), tables=tables)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _server(db: Database) -> Check:
    with db.connection() as conn:
        row = conn.execute(
            "select current_setting('server_version'), current_user::text, current_database()"
        ).fetchone()
    assert row is not None
    return Check(
        "connection",
        "ok",
        f"PostgreSQL {row[0]} as {row[1]} on {row[2]} ({db.source})",
        {"server_version": row[0], "user": row[1], "database": row[2]},
    )


def _migrations(db: Database) -> Check:
    states = migrations.status(db.url)
    pending = [s.id for s in states if not s.applied]
    applied = len(states) - len(pending)
    details = {"applied": applied, "pending": pending}
    if pending:
        return Check("migrations", "fail", f"{len(pending)} pending: {', '.join(pending)}", details)
    return Check("migrations", "ok", f"{applied}/{len(states)} applied", details)


def _sources(db: Database) -> Check:
    """The migrations embed the current sql/ sources (an edited function or policy file that
    no migration carries would never reach a database)."""
    del db
    from renum_db import sqlsource

    try:
        root = migrations.project_root()
    except RenumDBError:
        return Check("sources", "ok", "no migrations/ folder here (installed package): skipped")
    problems = sqlsource.check(root)
    if problems:
        return Check(
            "sources",
            "warn",
            f"{len(problems)} sql/ source(s) differ from what the migrations embed",
            {"problems": [str(p) for p in problems]},
        )
    return Check("sources", "ok", "sql/ sources and migrations agree", {"problems": []})


_BODY = re.compile(r"\bas \$\$(.*?)\$\$", re.DOTALL)


def _functions(db: Database) -> Check:
    """Every function of sql/functions is in the database with exactly the reviewed body (an
    edit made in the database, or a migration that was edited after it ran, shows here)."""
    try:
        root = migrations.project_root()
    except RenumDBError:
        return Check("functions", "ok", "no sql/functions here (installed package): skipped")
    drifted: list[str] = []
    missing: list[str] = []
    files = sorted((root / "sql" / "functions").glob("*.sql"))
    with db.connection() as conn:
        for path in files:
            schema, _, name = path.stem.partition(".")
            match = _BODY.search(path.read_text(encoding="utf-8"))
            if match is None:
                continue
            bodies = [
                str(r[0])
                for r in conn.execute(
                    "select p.prosrc from pg_catalog.pg_proc as p"
                    " join pg_catalog.pg_namespace as n on n.oid = p.pronamespace"
                    " where n.nspname = %s and p.proname = %s",
                    (schema, name),
                )
            ]
            if not bodies:
                missing.append(path.stem)
            elif match.group(1) not in bodies:
                drifted.append(path.stem)
    details = {"checked": len(files), "drifted": drifted, "missing": missing}
    if drifted or missing:
        parts = [f"differ from sql/functions: {', '.join(drifted)}"] if drifted else []
        parts += [f"missing: {', '.join(missing)}"] if missing else []
        return Check("functions", "fail", "; ".join(parts), details)
    return Check("functions", "ok", f"{len(files)} functions as in sql/functions", details)


def _platform(db: Database) -> Check:
    """Supabase, or the local shim (whose objects say so in their comments; a hosted-shaped
    local cluster has a supabase_admin role too, so that role proves nothing)."""
    with db.connection() as conn:
        row = conn.execute(
            "select coalesce(pg_catalog.obj_description(to_regnamespace('auth'), 'pg_namespace'),"
            " '') like '%%renum-db shim%%'"
        ).fetchone()
    shim = bool(row and row[0])
    kind = "local Supabase shim (sql/supabase)" if shim else "Supabase"
    return Check("platform", "ok", kind, {"supabase": not shim})


def _extensions(db: Database) -> Check:
    with db.connection() as conn:
        rows = conn.execute(
            "select extname::text, extversion from pg_catalog.pg_extension order by 1"
        ).fetchall()
    versions = {str(name): str(version) for name, version in rows}
    if "vector" not in versions:
        return Check("extensions", "fail", "pgvector is not installed", versions)
    listed = ", ".join(f"{k} {v}" for k, v in versions.items())
    return Check("extensions", "ok", listed, versions)


def _rls(db: Database) -> Check:
    with db.connection() as conn:
        rows = conn.execute(
            """
            select c.relname::text
              from pg_catalog.pg_class as c
              join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relkind in ('r', 'p')
               and not (c.relrowsecurity and c.relforcerowsecurity)
             order by 1
            """
        ).fetchall()
    loose = [str(r[0]) for r in rows]
    if loose:
        return Check("rls", "fail", f"RLS not forced on {', '.join(loose)}", {"tables": loose})
    return Check("rls", "ok", "enabled and forced on every public table", {"tables": []})


def _indexes(db: Database) -> Check:
    with db.connection() as conn:
        rows = conn.execute(
            """
            select n.nspname || '.' || c.relname
              from pg_catalog.pg_index as i
              join pg_catalog.pg_class as c on c.oid = i.indexrelid
              join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
             where not i.indisvalid or not i.indisready
             order by 1
            """
        ).fetchall()
    bad = [str(r[0]) for r in rows]
    if bad:
        return Check(
            "indexes",
            "fail",
            f"invalid (rebuild with reindex concurrently): {', '.join(bad)}",
            {"invalid": bad},
        )
    return Check("indexes", "ok", "no invalid index", {"invalid": []})


def _locks(db: Database) -> Check:
    with db.connection() as conn:
        exists = conn.execute(
            "select to_regclass(%s) is not null", (f"{migrations.MIGRATIONS_SCHEMA}.yoyo_lock",)
        ).fetchone()
        if not exists or not exists[0]:
            return Check("migration_lock", "ok", "no lock table (never migrated here)")
        rows = conn.execute(
            f"select pid, ctime from {migrations.MIGRATIONS_SCHEMA}.yoyo_lock"
            " where ctime < (now() at time zone 'utc') - %s",
            (STALE_LOCK_AFTER,),
        ).fetchall()
    if rows:
        return Check(
            "migration_lock",
            "fail",
            f"{len(rows)} migration lock(s) older than {STALE_LOCK_AFTER}: a killed migrate?",
            {"locks": [{"pid": r[0], "since": str(r[1])} for r in rows]},
        )
    return Check("migration_lock", "ok", "no stale migration lock")


def _stuck(db: Database) -> Check:
    with db.connection() as conn:
        rows = conn.execute(
            "select id, client_id, updated_at from public.documents"
            " where status = 'processing' and updated_at < now() - %s order by updated_at",
            (STUCK_AFTER,),
        ).fetchall()
    if rows:
        return Check(
            "ingestion",
            "fail",
            f"{len(rows)} document(s) stuck in processing for more than {STUCK_AFTER}"
            " (Ingestor.fail_stuck, then ingest again)",
            {"stuck": [str(r[0]) for r in rows]},
        )
    return Check("ingestion", "ok", "no document stuck in processing", {"stuck": []})


def _credentials(db: Database) -> Check:
    if not os.environ.get("ENCRYPTION_KEY", "").strip():
        return Check("credentials", "ok", "ENCRYPTION_KEY not set: rotation not checked")
    from renum_db.credentials import CredentialKeys, inspect_credentials

    usage = inspect_credentials(db, CredentialKeys.from_env())
    details = {
        "per_key": list(usage.per_key),
        "undecryptable": [str(u) for u in usage.undecryptable],
    }
    if usage.undecryptable:
        return Check(
            "credentials",
            "fail",
            f"{len(usage.undecryptable)} credential(s) undecryptable under every key",
            details,
        )
    if not usage.old_keys_removable:
        return Check(
            "credentials",
            "warn",
            "credentials still under old keys: run `renum-db credentials rotate`",
            details,
        )
    return Check("credentials", "ok", "every credential under the primary key", details)


def _pool_and_cache(db: Database) -> Check:
    with db.connection() as conn:
        row = conn.execute(
            "select count(*), count(distinct model) from public.embedding_cache"
        ).fetchone()
    assert row is not None
    stats = db.stats().as_dict()
    cache = CachedEmbeddings.statistics()
    details = {"pool": stats, "cache_rows": int(row[0]), "cache_models": int(row[1]), **cache}
    summary = (
        f"pool {stats['size']} open / {stats['max_size']} max, {stats['in_use']} in use;"
        f" embedding cache {row[0]} vectors in {row[1]} model(s)"
    )
    return Check("pool_and_cache", "ok", summary, details)


def _sizes(db: Database) -> Check:
    with db.connection() as conn:
        sizes = database_sizes(conn)
    top = list(sizes.tables.items())[:3]
    summary = f"database {_size(sizes.database_bytes)}; largest: " + ", ".join(
        f"{name} {_size(n)}" for name, n in top
    )
    return Check(
        "size", "ok", summary, {"database_bytes": sizes.database_bytes, "tables": sizes.tables}
    )


_GRAPHS: Final = """
    select coalesce(sum(pg_catalog.pg_relation_size(i.oid)), 0)::bigint,
           pg_catalog.pg_size_bytes(pg_catalog.current_setting('shared_buffers'))
      from pg_catalog.pg_class as i
      join pg_catalog.pg_am as am on am.oid = i.relam
     where am.amname = 'hnsw'
"""


def memory_check(graph_bytes: int, shared_buffers_bytes: int) -> Check:
    """`warn` when the HNSW graphs outgrow shared_buffers: every walk then reads graph pages
    from the OS cache, and concurrent searches wait on LWLock:BufferMapping to evict them
    (bench/results.md: at 400,000 chunks with 256MB, half of 32 backends waited there)."""
    details = {"hnsw_bytes": graph_bytes, "shared_buffers_bytes": shared_buffers_bytes}
    held = f"HNSW graphs {_size(graph_bytes)}, shared_buffers {_size(shared_buffers_bytes)}"
    if graph_bytes > shared_buffers_bytes:
        return Check(
            "memory",
            "warn",
            f"{held}: the graphs do not fit, so concurrent searches evict each other's pages "
            "(a larger compute size or server; docs/operations.md, sizing the API)",
            details,
        )
    return Check("memory", "ok", f"{held}: the graphs fit", details)


def _memory(db: Database) -> Check:
    with db.connection() as conn:
        row = conn.execute(_GRAPHS).fetchone()
    assert row is not None
    return memory_check(int(row[0]), int(row[1]))


CHECKS: Final[tuple[tuple[str, Callable[[Database], Check]], ...]] = (
    ("connection", _server),
    ("migrations", _migrations),
    ("sources", _sources),
    ("functions", _functions),
    ("platform", _platform),
    ("extensions", _extensions),
    ("rls", _rls),
    ("indexes", _indexes),
    ("migration_lock", _locks),
    ("ingestion", _stuck),
    ("credentials", _credentials),
    ("pool_and_cache", _pool_and_cache),
    ("size", _sizes),
    ("memory", _memory),
)


def run_checks(db: Database) -> Report:
    """Every check; one that raises becomes a 'fail' with the error, the rest still run."""
    results = []
    for name, check in CHECKS:
        try:
            results.append(check(db))
        except RenumDBError as exc:
            results.append(Check(name, "fail", f"{type(exc).__name__}: {exc}"))
    return Report(results)
