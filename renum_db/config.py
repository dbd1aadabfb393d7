"""Configuration read from the environment (and a `.env` file, if present).

| variable            | meaning                                                        | default |
|---------------------|----------------------------------------------------------------|---------|
| DATABASE_URL        | Postgres URL to use (takes precedence)                         | unset   |
| SUPABASE_DB_URL     | Postgres URL of a Supabase project (used if DATABASE_URL unset)| unset   |
| RENUM_PG_VERSION    | major version of the embedded server (16 or 18)                | 16      |
| RENUM_DATA_DIR      | folder holding embedded data directories                       | ./.renum|
| RENUM_POOL_MIN      | minimum connections in the pool                                | 1       |
| RENUM_POOL_MAX      | maximum connections in the pool                                | 10      |
| RENUM_SUPABASE_SHIM | apply the local Supabase shim: auto, always or never           | auto    |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dotenv import load_dotenv

from renum_db.errors import ConfigurationError

__all__ = ["EMBEDDED_VERSIONS", "Settings", "ShimMode", "load_settings"]

EMBEDDED_VERSIONS = (16, 18)
ShimMode = Literal["auto", "always", "never"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings. `database_url` is None when the embedded server should be used."""

    database_url: str | None
    pg_version: int
    data_dir: Path
    pool_min: int
    pool_max: int
    shim: ShimMode
    database_url_source: str | None = None
    """The variable `database_url` came from (DATABASE_URL or SUPABASE_DB_URL)."""

    @property
    def embedded(self) -> bool:
        return self.database_url is None


def _int(name: str, default: int, *, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {value}")
    return value


def load_settings(*, dotenv: bool = True) -> Settings:
    """Read settings from the environment; `.env` values never override real variables."""
    if dotenv:
        load_dotenv(override=False)
    source = next((n for n in ("DATABASE_URL", "SUPABASE_DB_URL") if os.environ.get(n)), None)
    url = (os.environ.get(source) or "").strip() if source else ""
    version = _int("RENUM_PG_VERSION", 16, low=0, high=99)
    if version not in EMBEDDED_VERSIONS:
        raise ConfigurationError(
            f"RENUM_PG_VERSION must be one of {EMBEDDED_VERSIONS}, got {version}"
        )
    pool_min = _int("RENUM_POOL_MIN", 1, low=0, high=1000)
    pool_max = _int("RENUM_POOL_MAX", 10, low=1, high=1000)
    if pool_max < pool_min:
        raise ConfigurationError("RENUM_POOL_MAX must be >= RENUM_POOL_MIN")
    shim = os.environ.get("RENUM_SUPABASE_SHIM", "auto").strip() or "auto"
    if shim not in ("auto", "always", "never"):
        raise ConfigurationError(f"RENUM_SUPABASE_SHIM must be auto, always or never, got {shim!r}")
    data_dir = Path(os.environ.get("RENUM_DATA_DIR") or ".renum").expanduser().resolve()
    return Settings(
        database_url=url or None,
        pg_version=version,
        data_dir=data_dir,
        pool_min=pool_min,
        pool_max=pool_max,
        shim=shim,  # type: ignore[arg-type]
        database_url_source=source if url else None,
    )
