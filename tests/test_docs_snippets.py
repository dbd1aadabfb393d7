"""Every Python block of README.md and docs/*.md runs, in order, against a fresh database.

A block fenced ```python runs; one fenced ```python no-run is shown but not run (for code that
needs the real OpenAI or Supabase; keep them few). The blocks of one file share one namespace, so
later blocks use what earlier ones defined, as a reader would. Each file gets its own fresh copy
of the migrated template, reached through DATABASE_URL, with no OpenAI or Supabase variables
(the offline embedding provider), a generated ENCRYPTION_KEY and a local JWT secret.

The README's CLI quickstart (the ```sh block that creates a tenant) runs too, in bash, from an
empty folder, with the installed `renum-db` first on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from renum_db.credentials import CredentialKeys
from renum_db.db import Database
from tests.support import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
CLEARED = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_DB_URL",
)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    info: str
    body: str


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(path, text.count("\n", 0, m.start()) + 1, m["info"].strip(), m["body"])
        for m in FENCE.finditer(text)
    ]


def python_blocks(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.info == "python"]


def test_every_python_block_is_either_run_or_marked_no_run() -> None:
    for path in DOCS:
        for block in blocks(path):
            if block.info.startswith("python"):
                assert block.info in ("python", "python no-run"), f"{path.name}:{block.line}"


@pytest.fixture
def fresh_env(
    admin_url: str, template_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    del template_url  # built first
    from tests.conftest import TEMPLATE

    name = f"docs_{uuid.uuid4().hex[:10]}"
    url = create_database(admin_url, name, template=TEMPLATE)
    for var in CLEARED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("RENUM_POOL_MIN", "0")
    monkeypatch.setenv("ENCRYPTION_KEY", CredentialKeys.generate())
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "docs-snippet-secret-" + "x" * 32)
    monkeypatch.chdir(tmp_path)
    yield url
    drop_database(admin_url, name)


@pytest.mark.parametrize(
    "path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_the_python_blocks_run_in_order(path: Path, fresh_env: str) -> None:
    namespace: dict[str, Any] = {"__name__": f"snippets_{path.stem}"}
    try:
        for block in python_blocks(path):
            code = compile(block.body, f"{path.relative_to(ROOT)}:{block.line}", "exec")
            exec(code, namespace)  # noqa: S102 - the documentation's own code
    finally:
        for value in namespace.values():
            if isinstance(value, Database):
                value.close()


def test_the_readme_cli_quickstart_runs_as_written(fresh_env: str, tmp_path: Path) -> None:
    quickstart = next(
        b for b in blocks(ROOT / "README.md") if b.info == "sh" and "tenant create" in b.body
    )
    bin_dir = Path(sys.executable).parent
    prelude = (
        "set -euo pipefail\n"
        f'make() {{ command make --no-print-directory -C "{ROOT}" "$@"; }}\n'
        f'mkdir -p .venv/bin && ln -sf "{bin_dir}/activate" .venv/bin/activate\n'
    )
    environ = dict(os.environ)
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    done = subprocess.run(  # noqa: S603 - bash running the README's own block
        ["bash", "-c", prelude + quickstart.body],  # noqa: S607
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "contrato.md" in done.stdout
    assert '"document": "contrato.md"' in done.stdout
    assert "healthy" in done.stdout
