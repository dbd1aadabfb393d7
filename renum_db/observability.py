"""Monitoring hooks: structured logs with operation timings, and the numbers worth watching.

- Every timed operation logs one INFO record on a `renum_db.*` logger whose `extra` fields carry
  `operation`, `duration_ms` and what the operation touched (rows, chunks, document_id...):
  `search_embeddings` / `hybrid_search` (renum_db.search), `ingest_document` with per-stage
  `chunk_ms` / `embed_ms` / `write_ms` (renum_db.ingest), the pool opening (renum_db.db).
  `JsonFormatter` renders such records as one JSON object per line (`configure_logging(json=True)`
  or RENUM_LOG_FORMAT=json for the CLI).
- `Database.stats()` / `AsyncDatabase.stats()`: pool size, connections in use, waiting requests.
- `CachedEmbeddings.statistics()`: embedding-cache hits, misses and hit rate of this process.
- `database_sizes(conn)`: the database's size and every public table's (used by `doctor`).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any, Final

from renum_db.doctor import DatabaseSizes, database_sizes

__all__ = ["DatabaseSizes", "JsonFormatter", "configure_logging", "database_sizes"]

# Attributes every LogRecord has; anything else was passed through `extra=`.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(*, verbose: bool = False, json_format: bool | None = None) -> None:
    """Log to stderr at INFO (verbose) or WARNING; as JSON lines when `json_format` is true or,
    if it is None, when RENUM_LOG_FORMAT=json."""
    if json_format is None:
        json_format = os.environ.get("RENUM_LOG_FORMAT", "").strip().lower() == "json"
    handler = logging.StreamHandler()
    if json_format:
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
