"""The frontend contract: `supabase gen types typescript`, run offline.

Supabase's CLI generates a project's types by running postgres-meta's type generator over the
database catalog; this module runs the same generator (npm package @supabase/postgres-meta, pinned
in package.json / package-lock.json and installed by `npm ci`) through its own CLI entry
(`PG_META_GENERATE_TYPES=typescript`), for schema `public` only: what PostgREST exposes to
browsers by default. It also runs `tsc --noEmit` over the frontend checks in types/check.

    python -m tests.typegen [--write] [URL]   # URL defaults to `renum-db db url` (make migrate)

`make types` rewrites types/database.types.ts; tests/test_frontend_types.py regenerates it from
the test database and fails on any difference.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
TYPES_DIR = ROOT / "types"
TYPES_FILE = TYPES_DIR / "database.types.ts"
NODE_MODULES = ROOT / "node_modules"
GENERATOR = NODE_MODULES / "@supabase" / "postgres-meta" / "dist" / "server" / "server.js"
TSC = NODE_MODULES / "typescript" / "bin" / "tsc"
SCHEMAS = "public"

__all__ = ["TYPES_FILE", "TscError", "generate", "node_url", "tsc_errors"]


class NodeToolsMissing(RuntimeError):
    """node or the npm packages are not installed."""


def _node() -> str:
    node = shutil.which("node")
    if node is None or not GENERATOR.is_file() or not TSC.is_file():
        raise NodeToolsMissing(
            "node and the npm packages of package-lock.json are needed: run `npm ci` "
            "(make test does it)"
        )
    return node


def node_url(url: str) -> str:
    """A libpq URL as node-postgres takes it: postgres-meta parses it with WHATWG `URL`, which
    needs a host, so a Unix-socket URL (`postgresql://user@/db?host=/dir`) names localhost and
    keeps the socket directory in `host=`, which node-postgres prefers."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    user = quote(parts.username or "postgres")
    password = f":{quote(parts.password)}" if parts.password else ""
    netloc = f"{user}{password}@{parts.hostname or 'localhost'}"
    if parts.port:
        netloc += f":{parts.port}"
    socket_dir = query.get("host", [""])[0]
    suffix = f"?host={quote(socket_dir, safe='/')}" if socket_dir else ""
    return f"postgresql://{netloc}{parts.path}{suffix}"


def generate(url: str) -> str:
    """The TypeScript types of schema public, exactly as postgres-meta prints them."""
    env = {
        **os.environ,
        "PG_META_GENERATE_TYPES": "typescript",
        "PG_META_GENERATE_TYPES_INCLUDED_SCHEMAS": SCHEMAS,
        "PG_META_DB_URL": node_url(url),
        "NODE_NO_WARNINGS": "1",
    }
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [_node(), str(GENERATOR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"postgres-meta failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


@dataclass(frozen=True, slots=True)
class TscError:
    file: str
    line: int
    code: str
    message: str


_TSC_LINE = re.compile(
    r"^(?P<file>[^(\s][^(]*)\((?P<line>\d+),\d+\): error (?P<code>TS\d+): (?P<msg>.*)$"
)


def tsc_errors(project: Path) -> list[TscError]:
    """`tsc --noEmit -p project`: the errors it reports (an empty list: it compiles)."""
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [_node(), str(TSC), "--noEmit", "--pretty", "false", "-p", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = []
    for line in done.stdout.splitlines():
        m = _TSC_LINE.match(line)
        if m:
            errors.append(TscError(Path(m["file"]).name, int(m["line"]), m["code"], m["msg"]))
    if done.returncode not in (0, 2) or (done.returncode != 0 and not errors):
        raise RuntimeError(f"tsc failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return errors


def main(argv: list[str]) -> int:
    write = "--write" in argv
    urls = [a for a in argv if not a.startswith("--")]
    if urls:
        url = urls[0]
    else:
        out = subprocess.run(  # noqa: S603 - fixed argv
            [str(Path(sys.executable).parent / "renum-db"), "db", "url"],
            capture_output=True,
            text=True,
            check=True,
        )
        url = out.stdout.strip()
    text = generate(url)
    if write:
        TYPES_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {TYPES_FILE.relative_to(ROOT)}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
