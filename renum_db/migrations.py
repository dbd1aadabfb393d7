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
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from renum_db.config import Settings, ShimMode, load_settings
from renum_db.errors import ConfigurationError, wrap_errors

__all__ = [
    "MIGRATIONS_SCHEMA",
    "MigrationState",
    "Target",
    "apply",
    "apply_shim",
    "project_root",
    "resolve_target",
    "rollback",
    "shim_needed",
    "status",
]

log = logging.getLogger(__name__)
MIGRATIONS_SCHEMA = "renum_migrations"


def project_root() -> Path:
    """The folder holding migrations/ and sql/ (the repository root)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "migrations").is_dir():
        raise ConfigurationError(f"migrations/ not found next to the renum_db package ({root})")
    return root


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


def _yoyo_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(f"unsupported database URL scheme {parts.scheme!r}")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", MIGRATIONS_SCHEMA))
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
def _yoyo(url: str, root: Path) -> Iterator[tuple[Any, Any]]:
    """A yoyo backend (closed afterwards, so the database can serve as a template) and the chain."""
    from yoyo import get_backend, read_migrations

    with wrap_errors():
        backend = get_backend(_yoyo_url(url))
    try:
        yield backend, read_migrations(str(root / "migrations"))
    finally:
        backend.connection.close()


def apply(
    url: str,
    *,
    shim: ShimMode = "auto",
    root: Path | None = None,
    target: str | None = None,
    shim_url: str | None = None,
) -> list[str]:
    """Apply pending migrations (up to and including `target`, if given); return their ids.
    `shim_url`: who applies the shim (default: the embedded superuser for an embedded `url`,
    else `url` itself)."""
    root = root or project_root()
    _prepare(url, shim, root, shim_url)
    with _yoyo(url, root) as (backend, chain), wrap_errors(), backend.lock():
        if target is not None and target not in {m.id for m in chain}:
            raise ConfigurationError(f"unknown migration {target!r}")
        pending = backend.to_apply(chain)
        if target is not None:
            ids = [m.id for m in pending]
            if target not in ids:
                return []
            pending = pending[: ids.index(target) + 1]
        backend.apply_migrations(pending)
        return [m.id for m in pending]


def rollback(url: str, *, count: int | None = 1, root: Path | None = None) -> list[str]:
    """Roll back the last `count` applied migrations (all of them if None); return their ids."""
    if count is not None and count < 0:
        raise ConfigurationError(f"cannot roll back a negative number of migrations ({count})")
    root = root or project_root()
    _prepare(url, "never", root)
    with _yoyo(url, root) as (backend, chain), wrap_errors(), backend.lock():
        applied = backend.to_rollback(chain)
        if count is not None:
            applied = applied[:count]
        backend.rollback_migrations(applied)
        return [m.id for m in applied]


def status(url: str, *, root: Path | None = None) -> list[MigrationState]:
    root = root or project_root()
    _prepare(url, "never", root)
    with _yoyo(url, root) as (backend, chain), wrap_errors():
        return [MigrationState(m.id, bool(backend.is_applied(m))) for m in chain]
