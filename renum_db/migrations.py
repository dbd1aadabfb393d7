"""Migration commands: yoyo apply / rollback / status, with the local Supabase shim step.

* yoyo keeps its bookkeeping tables in schema `renum_migrations` (never in the API-exposed
  `public`), and runs migrations with only that schema on the search_path, so an unqualified
  object name in a migration fails loudly instead of landing in the wrong schema.
* The shim (`sql/supabase/*.sql`) recreates, only where missing, what every Supabase project
  already has. It is applied before migrations when the target is not a Supabase project
  (`RENUM_SUPABASE_SHIM=auto`, detected by the absence of the `supabase_admin` role), always, or
  never. It is never part of the migration chain.
* Who applies what: on the embedded cluster (hosted-shaped, see renum_db.embedded) the shim is
  applied as its superuser `supabase_admin` (`auto` = apply: the embedded cluster is never a
  Supabase project) and the migrations run as the non-superuser `postgres`, exactly as a deploy
  to hosted Supabase runs them. On an external DATABASE_URL both use that URL's role.
* Deploys cannot wedge (docs/operations.md, "Deploy safety"): every mutating command holds one
  session-level advisory lock on a dedicated connection from its first statement to its last, so
  concurrent runs queue and a dead process releases it with its session. Under that lock, a
  yoyo_lock row left by a dead process is cleared with a warning; a live holder is named while
  the command waits, and the wait ends after RENUM_LOCK_TIMEOUT seconds with `DeployLocked`.
* Integrity: the sha256 of every applied migration file is recorded in
  renum_migrations.migration_checksums; `apply` and `status` refuse an edited applied migration.
* `rollback` over tenant data runs only when confirmed (`confirm` callback, `--yes`).
* After a `kill -9` at any point the next run cleans up alone: the dead run's worker session
  (still running a statement on the server) is terminated, and an invalid index left by an
  interrupted `create index concurrently` that a pending migration creates is dropped first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from renum_db.config import Settings, ShimMode, load_settings
from renum_db.errors import (
    ConfigurationError,
    ConfirmationRequired,
    DeployLocked,
    MigrationChecksumMismatch,
    wrap_errors,
)

__all__ = [
    "DEPLOY_LOCK_KEY",
    "MIGRATIONS_SCHEMA",
    "MigrationState",
    "RollbackPlan",
    "Target",
    "apply",
    "apply_shim",
    "deploy_lock",
    "file_checksum",
    "project_root",
    "resolve_target",
    "rollback",
    "shim_needed",
    "status",
]

log = logging.getLogger(__name__)
MIGRATIONS_SCHEMA = "renum_migrations"
# pg_advisory_lock key shared by every mutating command: the bytes "renumdb" + NUL as a bigint.
DEPLOY_LOCK_KEY = int.from_bytes(b"renumdb\0", "big")
DEFAULT_LOCK_TIMEOUT = 600.0
_POLL_SECONDS = 0.5


def project_root() -> Path:
    """The folder holding migrations/ and sql/: the repository root in a checkout, or the copy
    packaged inside the installed wheel (`renum_db/_data`)."""
    package = Path(__file__).resolve().parent
    for root in (package.parent, package / "_data"):
        if (root / "migrations").is_dir() and (root / "sql" / "functions").is_dir():
            return root
    raise ConfigurationError(
        f"migrations/ and sql/ not found: neither a checkout ({package.parent}) nor an installed "
        f"wheel ({package / '_data'})"
    )


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    embedded: bool
    shim_url: str | None = None  # the role that applies the shim, when not the migrating one


@dataclass(frozen=True, slots=True)
class MigrationState:
    id: str
    applied: bool


def resolve_target(settings: Settings | None = None) -> Target:
    """DATABASE_URL / SUPABASE_DB_URL, or the embedded server (started on demand)."""
    settings = settings or load_settings()
    if settings.database_url:
        return Target(settings.database_url, embedded=False)
    from renum_db.embedded import server_for

    server = server_for(settings.data_dir, settings.pg_version)
    return Target(server.url(), embedded=True, shim_url=server.admin_url())


def _yoyo_url(url: str, application_name: str | None = None) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(f"unsupported database URL scheme {parts.scheme!r}")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", MIGRATIONS_SCHEMA))
    if application_name:
        # yoyo passes URL arguments to the driver, for every connection it opens (one per migration)
        query = [(k, v) for k, v in query if k != "application_name"]
        query.append(("application_name", application_name))
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(query), ""))


def shim_needed(conn: psycopg.Connection[Any], mode: ShimMode) -> bool:
    if mode != "auto":
        return mode == "always"
    row = conn.execute("select exists (select from pg_roles where rolname = 'supabase_admin')")
    found = row.fetchone()
    return not (found and found[0])


def apply_shim(
    conn: psycopg.Connection[Any], root: Path | None = None, *, only: tuple[str, ...] = ()
) -> list[str]:
    """Apply sql/supabase/*.sql (or the files named in `only`) in order, each file in its own
    transaction. Idempotent."""
    root = root or project_root()
    applied = []
    for path in sorted((root / "sql" / "supabase").glob("*.sql")):
        if only and path.name not in only:
            continue
        with conn.transaction():
            conn.execute(path.read_text(encoding="utf-8"))
        applied.append(path.name)
    return applied


def _prepare(url: str, shim: ShimMode, root: Path, shim_url: str | None = None) -> None:
    from renum_db.embedded import admin_url_for

    shim_url = shim_url or admin_url_for(url)
    if shim_url and shim != "never":
        # The embedded cluster: its superuser applies the shim, the caller's role migrates.
        with wrap_errors(), psycopg.connect(shim_url, autocommit=True) as admin:
            log.info("applying the local Supabase shim: %s", ", ".join(apply_shim(admin, root)))
    with wrap_errors(), psycopg.connect(url, autocommit=True) as conn:
        if not shim_url and shim_needed(conn, shim):
            log.info("applying the local Supabase shim: %s", ", ".join(apply_shim(conn, root)))
        conn.execute(f"create schema if not exists {MIGRATIONS_SCHEMA}")
        conn.execute(f"revoke all on schema {MIGRATIONS_SCHEMA} from public")


@contextmanager
def _yoyo(url: str, root: Path, application_name: str | None = None) -> Iterator[tuple[Any, Any]]:
    """A yoyo backend (closed afterwards, so the database can serve as a template) and the chain."""
    from yoyo import get_backend, read_migrations

    with wrap_errors():
        backend = get_backend(_yoyo_url(url, application_name))
    try:
        yield backend, read_migrations(str(root / "migrations"))
    finally:
        backend.connection.close()


def file_checksum(path: Path) -> str:
    """sha256 of a migration file, line endings normalised (a checkout with CRLF is no edit)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def _lock_timeout(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    raw = os.environ.get("RENUM_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"RENUM_LOCK_TIMEOUT must be seconds, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"RENUM_LOCK_TIMEOUT must be >= 0, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class _Holder:
    pid: int
    application_name: str
    user: str
    since: datetime | None
    state: str | None

    def describe(self) -> str:
        since = f" since {self.since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if self.since else ""
        app = self.application_name or "no application_name"
        return f"backend pid {self.pid} ({app}, user {self.user}){since}, state {self.state}"


_ADVISORY_HOLDER = """
select a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, '?'),
       coalesce(a.xact_start, a.backend_start), a.state
  from pg_catalog.pg_locks as l
  join pg_catalog.pg_stat_activity as a on a.pid = l.pid
 where l.locktype = 'advisory' and l.granted
   and l.database = (select d.oid from pg_catalog.pg_database as d
                      where d.datname = pg_catalog.current_database())
   and l.classid = %(high)s and l.objid = %(low)s and l.objsubid = 1
"""

# A yoyo_lock row is live when its pid is a backend that connected before the row was written
# (a recycled pid belongs to a backend that connected later). Rows written by plain yoyo carry
# an OS pid: they look live only if a backend happens to have that number and is older.
_YOYO_LOCK_HOLDER = f"""
select a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, '?'),
       y.ctime at time zone 'utc', a.state
  from {MIGRATIONS_SCHEMA}.yoyo_lock as y
  join pg_catalog.pg_stat_activity as a on a.pid = y.pid
 where a.backend_start <= (y.ctime at time zone 'utc') + interval '1 second'
"""


def _recovery(pid: int) -> str:
    return (
        f"if that process is gone or stuck, end its session and run the command again: "
        f"psql \"$DATABASE_URL\" -c 'select pg_catalog.pg_terminate_backend({pid})'"
    )


@contextmanager
def deploy_lock(
    url: str, command: str, *, timeout: float | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """Hold the deploy lock (a session-level advisory lock) on a dedicated connection for the
    whole block; yield that connection. Waits (naming the holder) up to `timeout` seconds
    (RENUM_LOCK_TIMEOUT, default 600), then raises DeployLocked."""
    limit = _lock_timeout(timeout)
    app = f"renum-db {command} (pid {os.getpid()} on {socket.gethostname()})"[:63]
    with wrap_errors():
        conn = psycopg.connect(url, autocommit=True, application_name=app)
    try:
        with wrap_errors():
            _wait_for(conn, limit)
        yield conn
    finally:
        # Closing the session releases the advisory lock, also when unlocking fails.
        conn.close()


def _wait_for(conn: psycopg.Connection[Any], limit: float) -> None:
    high, low = DEPLOY_LOCK_KEY >> 32, DEPLOY_LOCK_KEY & 0xFFFFFFFF
    deadline = time.monotonic() + limit
    announced: int | None = None
    while True:
        got = conn.execute("select pg_catalog.pg_try_advisory_lock(%s)", (DEPLOY_LOCK_KEY,))
        row = got.fetchone()
        if row and row[0]:
            return
        found = conn.execute(_ADVISORY_HOLDER, {"high": high, "low": low}).fetchone()
        holder = _Holder(*found) if found else None
        if holder and holder.pid != announced:
            log.warning("waiting for the deploy lock, held by %s", holder.describe())
            announced = holder.pid
        if time.monotonic() >= deadline:
            who = holder.describe() if holder else "another session"
            raise DeployLocked(
                f"the deploy lock is held by {who}; gave up after {limit:g} s "
                f"(RENUM_LOCK_TIMEOUT). "
                + (_recovery(holder.pid) if holder else "run the command again")
            )
        time.sleep(_POLL_SECONDS)


def _claim_yoyo_lock(conn: psycopg.Connection[Any], limit: float) -> None:
    """Take yoyo's own lock row for the session holding the deploy lock: clear a stale row
    (its process died), wait for a live one (an older tool that does not take the deploy lock)."""
    deadline = time.monotonic() + limit
    announced = False
    while True:
        inserted = conn.execute(
            f"insert into {MIGRATIONS_SCHEMA}.yoyo_lock (locked, ctime, pid) "
            "values (1, pg_catalog.timezone('utc', pg_catalog.now()), pg_catalog.pg_backend_pid()) "
            "on conflict do nothing"
        )
        if inserted.rowcount == 1:
            return
        found = conn.execute(_YOYO_LOCK_HOLDER).fetchone()
        if found is None:
            stale = conn.execute(
                f"delete from {MIGRATIONS_SCHEMA}.yoyo_lock returning pid, ctime"
            ).fetchone()
            if stale:
                log.warning(
                    "cleared a stale migration lock left by process %s at %s UTC "
                    "(no live session holds it)",
                    stale[0],
                    stale[1],
                )
            continue
        holder = _Holder(*found)
        if not announced:
            log.warning("waiting for yoyo's migration lock, held by %s", holder.describe())
            announced = True
        if time.monotonic() >= deadline:
            raise DeployLocked(
                f"yoyo's migration lock ({MIGRATIONS_SCHEMA}.yoyo_lock) is held by "
                f"{holder.describe()}; gave up after {limit:g} s (RENUM_LOCK_TIMEOUT). "
                + _recovery(holder.pid)
            )
        time.sleep(_POLL_SECONDS)


def _release_yoyo_lock(conn: psycopg.Connection[Any]) -> None:
    if not conn.closed:
        conn.execute(
            f"delete from {MIGRATIONS_SCHEMA}.yoyo_lock where pid = pg_catalog.pg_backend_pid()"
        )


_CHECKSUMS = f"{MIGRATIONS_SCHEMA}.migration_checksums"


def _ensure_checksum_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        f"create table if not exists {_CHECKSUMS} ("
        "migration_id text primary key, sha256 text not null, "
        "recorded_at timestamptz not null default pg_catalog.now())"
    )
    conn.execute(f"revoke all on table {_CHECKSUMS} from public")


def _recorded_checksums(conn: psycopg.Connection[Any]) -> dict[str, str] | None:
    found = conn.execute("select pg_catalog.to_regclass(%s)", (_CHECKSUMS,)).fetchone()
    if not found or found[0] is None:
        return None
    rows = conn.execute(f"select migration_id, sha256 from {_CHECKSUMS}").fetchall()
    return {str(mid): str(digest) for mid, digest in rows}


def _verify_checksums(
    conn: psycopg.Connection[Any], root: Path, applied: list[str], *, record_missing: bool
) -> None:
    """Refuse when an applied migration's file changed; record the checksum of applied
    migrations that have none yet (databases migrated before checksums existed)."""
    recorded = _recorded_checksums(conn) or {}
    changed = []
    for mid in applied:
        path = root / "migrations" / f"{mid}.sql"
        digest = file_checksum(path)
        if mid not in recorded:
            if record_missing:
                _record_checksum(conn, mid, digest)
        elif recorded[mid] != digest:
            changed.append(f"{path.name} (applied sha256 {recorded[mid][:12]}, now {digest[:12]})")
    if changed:
        raise MigrationChecksumMismatch(
            "applied migration(s) changed since they were applied: "
            + ", ".join(changed)
            + ". Restore the applied version from version control and put the change in a new "
            "migration; if the edit is deliberate and harmless (a comment), a DBA may delete "
            f"the row from {_CHECKSUMS} after review"
        )


def _record_checksum(conn: psycopg.Connection[Any], mid: str, digest: str) -> None:
    conn.execute(
        f"insert into {_CHECKSUMS} (migration_id, sha256) values (%s, %s) "
        "on conflict (migration_id) do update set sha256 = excluded.sha256, "
        "recorded_at = pg_catalog.now()",
        (mid, digest),
    )


_WORKER_PREFIX = "renum-db worker"


def _worker_name(command: str) -> str:
    """The application_name of yoyo's connections, so a later run recognises them if this
    process dies while one of them still runs a statement."""
    return f"{_WORKER_PREFIX} {command} (pid {os.getpid()} on {socket.gethostname()})"[:63]


def _end_orphans(conn: psycopg.Connection[Any]) -> None:
    """Terminate the migration sessions of dead runs. A live run holds the deploy lock until its
    last statement, and this session holds it now: any other worker session in this database
    belongs to a process that died (kill -9) while its statement kept running on the server,
    like a `create index concurrently`, which would otherwise finish or fail unseen."""
    rows = conn.execute(
        "select a.pid, a.application_name, a.state, a.query_start "
        "from pg_catalog.pg_stat_activity as a "
        "where a.datname = pg_catalog.current_database() and a.pid <> pg_catalog.pg_backend_pid() "
        "and a.application_name like %s",
        (_WORKER_PREFIX + " %",),
    ).fetchall()
    for pid, app, state, since in rows:
        log.warning(
            "terminating backend %s (%s, %s since %s): the migration session of a run that died",
            pid,
            app,
            state,
            since,
        )
        conn.execute("select pg_catalog.pg_terminate_backend(%s, 30000)", (pid,))


def _drop_invalid_indexes(conn: psycopg.Connection[Any], pending: list[Any]) -> None:
    """Drop an invalid index that a pending migration creates: the leftover of an interrupted or
    failed `create index concurrently`, which `if not exists` would otherwise skip for good."""
    texts = [Path(m.path).read_text(encoding="utf-8") for m in pending]
    rows = conn.execute(
        "select n.nspname, c.relname from pg_catalog.pg_index as i "
        "join pg_catalog.pg_class as c on c.oid = i.indexrelid "
        "join pg_catalog.pg_namespace as n on n.oid = c.relnamespace "
        "where not i.indisvalid and not exists ("
        "  select from pg_catalog.pg_stat_progress_create_index as p "
        "  where p.index_relid = i.indexrelid)"
    ).fetchall()
    for schema, name in rows:
        if not any(re.search(rf"\b{re.escape(name)}\b", text) for text in texts):
            continue
        log.warning(
            "dropping invalid index %s.%s (an interrupted build); a pending migration rebuilds it",
            schema,
            name,
        )
        conn.execute(
            sql.SQL("drop index concurrently if exists {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
        )


@contextmanager
def _locked_session(
    url: str,
    command: str,
    root: Path,
    shim: ShimMode,
    timeout: float | None,
    shim_url: str | None = None,
) -> Iterator[tuple[psycopg.Connection[Any], Any, Any]]:
    """The deploy lock, then the shim / bookkeeping schema, yoyo's backend and yoyo's lock."""
    limit = _lock_timeout(timeout)
    with deploy_lock(url, command, timeout=limit) as lock_conn:
        with wrap_errors():
            _end_orphans(lock_conn)
        _prepare(url, shim, root, shim_url)
        with _yoyo(url, root, _worker_name(command)) as (backend, chain), wrap_errors():
            _claim_yoyo_lock(lock_conn, limit)
            # yoyo's own lock() becomes a no-op: this session already holds it.
            backend._is_locked = True
            try:
                _ensure_checksum_table(lock_conn)
                yield lock_conn, backend, chain
            finally:
                backend._is_locked = False
                _release_yoyo_lock(lock_conn)


def apply(
    url: str,
    *,
    shim: ShimMode = "auto",
    root: Path | None = None,
    target: str | None = None,
    shim_url: str | None = None,
    lock_timeout: float | None = None,
) -> list[str]:
    """Apply pending migrations (up to and including `target`, if given); return their ids.
    `shim_url`: who applies the shim (default: the embedded superuser for an embedded `url`,
    else `url` itself)."""
    root = root or project_root()
    with _locked_session(url, "migrate", root, shim, lock_timeout, shim_url) as (
        conn,
        backend,
        chain,
    ):
        if target is not None and target not in {m.id for m in chain}:
            raise ConfigurationError(f"unknown migration {target!r}")
        applied = [m.id for m in backend.to_rollback(chain)]
        _verify_checksums(conn, root, applied, record_missing=True)
        pending = backend.to_apply(chain)
        if target is not None:
            ids = [m.id for m in pending]
            if target not in ids:
                return []
            pending = pending[: ids.index(target) + 1]
        _drop_invalid_indexes(conn, list(pending))
        done = []
        for migration in pending:
            # One at a time, so the checksum of each is recorded as soon as it is applied.
            backend.apply_migrations(backend.to_apply(type(chain)([migration])))
            _record_checksum(conn, migration.id, file_checksum(Path(migration.path)))
            done.append(migration.id)
        return done


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback is about to do, for a confirmation prompt."""

    database: str
    host: str
    migrations: list[str]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def describe(self) -> str:
        tables = ", ".join(f"{name} {count}" for name, count in self.rows.items() if count)
        return (
            f"roll back {len(self.migrations)} migration(s) ({', '.join(self.migrations)}) on "
            f"database {self.database!r} at {self.host}: its public tables hold "
            f"{self.total_rows} row(s) ({tables}); rows in every table these rollbacks drop "
            "are deleted for good"
        )


def _rollback_plan(conn: psycopg.Connection[Any], ids: list[str]) -> RollbackPlan:
    info = conn.info
    host = info.host if info.host.startswith("/") else f"{info.host}:{info.port}"
    tables = conn.execute(
        "select c.relname from pg_catalog.pg_class as c "
        "where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') order by 1"
    ).fetchall()
    rows: dict[str, int] = {}
    for (name,) in tables:
        query = sql.SQL("select count(*) from public.{}").format(sql.Identifier(name))
        count = conn.execute(query).fetchone()
        rows[f"public.{name}"] = int(count[0]) if count else 0
    return RollbackPlan(info.dbname, host, ids, rows)


def rollback(
    url: str,
    *,
    count: int | None = 1,
    root: Path | None = None,
    confirm: Callable[[RollbackPlan], bool] | None = None,
    lock_timeout: float | None = None,
) -> list[str]:
    """Roll back the last `count` applied migrations (all of them if None); return their ids.

    When the database holds rows in public tables, `confirm(plan)` must return True (the CLI
    asks, or `--yes` answers); without `confirm`, ConfirmationRequired is raised."""
    if count is not None and count < 0:
        raise ConfigurationError(f"cannot roll back a negative number of migrations ({count})")
    root = root or project_root()
    with _locked_session(url, "rollback", root, "never", lock_timeout) as (conn, backend, chain):
        applied = backend.to_rollback(chain)
        _verify_checksums(conn, root, [m.id for m in applied], record_missing=True)
        if count is not None:
            applied = applied[:count]
        if not applied:
            return []
        plan = _rollback_plan(conn, [m.id for m in applied])
        if plan.total_rows:
            if confirm is None:
                raise ConfirmationRequired(
                    f"refusing to {plan.describe()}. Pass --yes (or run interactively and "
                    "confirm) to proceed"
                )
            if not confirm(plan):
                raise ConfirmationRequired("rollback cancelled: nothing was rolled back")
        done = []
        for migration in applied:
            backend.rollback_migrations(backend.to_rollback(type(chain)([migration])))
            conn.execute(f"delete from {_CHECKSUMS} where migration_id = %s", (migration.id,))
            done.append(migration.id)
        return done


def status(url: str, *, root: Path | None = None) -> list[MigrationState]:
    """Each migration and whether it is applied; raises MigrationChecksumMismatch when an
    applied migration's file changed since it was applied."""
    root = root or project_root()
    _prepare(url, "never", root)
    with _yoyo(url, root) as (backend, chain), wrap_errors():
        states = [MigrationState(m.id, bool(backend.is_applied(m))) for m in chain]
    with wrap_errors(), psycopg.connect(url, autocommit=True) as conn:
        _verify_checksums(conn, root, [s.id for s in states if s.applied], record_missing=False)
    return states
