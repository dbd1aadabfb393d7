"""The investigation workflow (seed 001): one typed method per SQL function.

Owners call `create` and `cancel` (on a connection from `Database.as_user(...)`); the worker calls
`start`, `report_progress`, `complete` and `fail` as service_role (`Database.as_service_role()`).
The rules live in the database (docs/investigations.md): an illegal change raises an
`InvestigationWorkflowError` subclass (SQLSTATEs RNI01-RNI05), an unknown or foreign id
`NotFound` (PT404), and a call the role may not make `PermissionDenied` (42501). Like every
repository here, this one never commits, opens transactions or switches roles.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from renum_db.repositories._base import Repository, json_param
from renum_db.repositories.keyset import KEYSET_SQL, Keyed, keyset_params

__all__ = [
    "FINAL_STATUSES",
    "STATUSES",
    "Investigation",
    "InvestigationRepository",
]

STATUSES: Final = ("pending", "processing", "completed", "failed", "cancelled")
FINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Investigation:
    """A row of public.investigations."""

    id: UUID
    client_id: UUID
    user_id: UUID
    session_id: str | None
    query: str
    data_source: str
    status: str
    progress: float
    current_phase: str | None
    results: list[Any]
    summary: str | None
    confidence_score: float | None
    anomalies_found: int
    total_records_analyzed: int
    filters: dict[str, Any]
    anomaly_types: list[Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def is_final(self) -> bool:
        """Completed, failed or cancelled: the status never changes again."""
        return self.status in FINAL_STATUSES


# Named columns, not `*`: a column added later must not break the dataclass.
_COLUMNS: Final = """
    id, client_id, user_id, session_id, query, data_source, status, progress, current_phase,
    results, summary, confidence_score, anomalies_found, total_records_analyzed, filters,
    anomaly_types, error, created_at, updated_at, started_at, completed_at
"""


class InvestigationRepository(Repository):
    """public.investigations through its workflow functions: owners' in schema public (create,
    cancel), the worker's in schema backend (start, report_progress, complete, fail, and
    cancel with `backend=True`)."""

    _GET: LiteralString = "select" + _COLUMNS + "from public.investigations where id = %(id)s"
    _LIST: LiteralString = (
        "select"
        + _COLUMNS
        + """from public.investigations
         where (%(status)s::text is null
                or status = %(status)s::text::public.investigation_status)
           and (%(session_id)s::text is null or session_id = %(session_id)s::text)
           and (%(client_id)s::uuid is null or client_id = %(client_id)s::uuid)
           and """
        + KEYSET_SQL
        + """
         order by created_at, id
         limit %(limit)s
    """
    )
    _CREATE: LiteralString = (
        "select"
        + _COLUMNS
        + "from public.create_investigation(query => %(query)s, data_source => %(data_source)s,"
        " filters => %(filters)s, anomaly_types => %(anomaly_types)s,"
        " session_id => %(session_id)s)"
    )
    _START: LiteralString = (
        "select" + _COLUMNS + "from backend.start_investigation(investigation_id => %(id)s)"
    )
    _REPORT_PROGRESS: LiteralString = (
        "select"
        + _COLUMNS
        + "from backend.report_investigation_progress(investigation_id => %(id)s,"
        " progress => %(progress)s, current_phase => %(current_phase)s,"
        " results => %(results)s, anomalies_found => %(anomalies_found)s,"
        " total_records_analyzed => %(total_records_analyzed)s)"
    )
    _COMPLETE: LiteralString = (
        "select" + _COLUMNS + "from backend.complete_investigation(investigation_id => %(id)s,"
        " summary => %(summary)s, confidence_score => %(confidence_score)s,"
        " results => %(results)s, anomalies_found => %(anomalies_found)s,"
        " total_records_analyzed => %(total_records_analyzed)s)"
    )
    _FAIL: LiteralString = (
        "select"
        + _COLUMNS
        + "from backend.fail_investigation(investigation_id => %(id)s, error => %(error)s)"
    )
    _CANCEL: LiteralString = (
        "select" + _COLUMNS + "from public.cancel_investigation(investigation_id => %(id)s)"
    )
    _BACKEND_CANCEL: LiteralString = (
        "select" + _COLUMNS + "from backend.cancel_investigation(investigation_id => %(id)s)"
    )

    def get(self, id: UUID) -> Investigation | None:
        """The investigation, or None if it does not exist or is not the caller's."""
        return self._maybe(Investigation, self._GET, {"id": id})

    def list(
        self,
        *,
        limit: int = 100,
        after: Keyed | None = None,
        status: str | None = None,
        session_id: str | None = None,
        client_id: UUID | None = None,
    ) -> builtins.list[Investigation]:
        """Visible investigations (RLS: the owner's own; the backend passes `client_id`), oldest
        first, one keyset page (`after` = the last row of the previous page)."""
        params = {
            **keyset_params(limit, after),
            "status": status,
            "session_id": session_id,
            "client_id": client_id,
        }
        return self._all(Investigation, self._LIST, params)

    def create(
        self,
        *,
        query: str,
        data_source: str,
        filters: Mapping[str, Any] | None = None,
        anomaly_types: Sequence[Any] | None = None,
        session_id: str | None = None,
    ) -> Investigation:
        """`create_investigation`: a pending investigation owned by the calling user."""
        return self._one(
            Investigation,
            self._CREATE,
            {
                "query": query,
                "data_source": data_source,
                "filters": Jsonb(dict(filters or {})),
                "anomaly_types": Jsonb(list(anomaly_types or [])),
                "session_id": session_id,
            },
        )

    def start(self, id: UUID) -> Investigation:
        """`backend.start_investigation` (service_role): pending -> processing."""
        return self._one(Investigation, self._START, {"id": id})

    def report_progress(
        self,
        id: UUID,
        *,
        progress: float,
        current_phase: str | None = None,
        results: Sequence[Any] | None = None,
        anomalies_found: int | None = None,
        total_records_analyzed: int | None = None,
    ) -> Investigation:
        """`backend.report_investigation_progress` (service_role); None keeps a stored value and
        `results` replaces the stored array."""
        return self._one(
            Investigation,
            self._REPORT_PROGRESS,
            {
                "id": id,
                "progress": progress,
                "current_phase": current_phase,
                "results": json_param(None if results is None else list(results)),
                "anomalies_found": anomalies_found,
                "total_records_analyzed": total_records_analyzed,
            },
        )

    def complete(
        self,
        id: UUID,
        *,
        summary: str | None = None,
        confidence_score: float | None = None,
        results: Sequence[Any] | None = None,
        anomalies_found: int | None = None,
        total_records_analyzed: int | None = None,
    ) -> Investigation:
        """`backend.complete_investigation` (service_role): processing -> completed, progress 1."""
        return self._one(
            Investigation,
            self._COMPLETE,
            {
                "id": id,
                "summary": summary,
                "confidence_score": confidence_score,
                "results": json_param(None if results is None else list(results)),
                "anomalies_found": anomalies_found,
                "total_records_analyzed": total_records_analyzed,
            },
        )

    def fail(self, id: UUID, *, error: str) -> Investigation:
        """`backend.fail_investigation` (service_role): pending | processing -> failed."""
        return self._one(Investigation, self._FAIL, {"id": id, "error": error})

    def cancel(self, id: UUID, *, backend: bool = False) -> Investigation:
        """pending | processing -> cancelled: public.cancel_investigation (the owner), or with
        `backend=True` backend.cancel_investigation (service_role, any investigation)."""
        return self._one(
            Investigation, self._BACKEND_CANCEL if backend else self._CANCEL, {"id": id}
        )
