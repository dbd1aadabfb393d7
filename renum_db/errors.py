"""One exception hierarchy for every caller, mapped once from SQLSTATEs.

SQL raises documented SQLSTATEs (see docs/errors.md); `translate` is the only place that turns a
driver error into a `renum_db` exception, and `wrap_errors` is the one boundary that applies it.
supabase-py surfaces the same code in `APIError.code`, so a second transport can reuse
`for_sqlstate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

__all__ = [
    "AgentNotActive",
    "CheckViolation",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "DatabaseError",
    "IllegalTransition",
    "IntegrityError",
    "InvalidInput",
    "InvalidTenantMetadata",
    "NotFound",
    "NotNullViolation",
    "PermissionDenied",
    "PrerequisiteMissing",
    "QuotaExceeded",
    "ReferenceViolation",
    "RenumDBError",
    "RetryableError",
    "TenantMoveForbidden",
    "for_sqlstate",
    "translate",
    "wrap_errors",
]


class RenumDBError(Exception):
    """Base of every error raised by renum_db. `sqlstate` is the Postgres code, if any."""

    sqlstate: str | None
    constraint: str | None
    detail: str | None
    hint: str | None

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        constraint: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.constraint = constraint
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"[{self.sqlstate}] {base}" if self.sqlstate else base


class ConfigurationError(RenumDBError):
    """Bad or missing configuration (environment variables, URLs)."""


class ConnectionFailed(RenumDBError):
    """The database could not be reached or the connection broke (SQLSTATE class 08)."""


class DatabaseError(RenumDBError):
    """Any database error without a more specific class."""


class PermissionDenied(RenumDBError):
    """42501: missing privilege or a row-level security check failed."""


class NotFound(RenumDBError):
    """P0002 / PT404: the row does not exist or is not visible to the caller."""


class InvalidInput(RenumDBError):
    """Class 22 data exceptions and rejected values."""


class CheckViolation(InvalidInput):
    """23514: a named check constraint rejected a value (see `constraint`)."""


class NotNullViolation(InvalidInput):
    """23502: a required value is missing."""


class InvalidTenantMetadata(InvalidInput):
    """RNU01: an auth user's app_metadata names an unknown client or an invalid role."""


class IntegrityError(RenumDBError):
    """Class 23 integrity violations."""


class Conflict(IntegrityError):
    """23505: a unique constraint is already satisfied by another row."""


class ReferenceViolation(IntegrityError):
    """23503: a foreign key points at a missing row (or at another tenant's row)."""


class TenantMoveForbidden(IntegrityError):
    """RNT01: an update tried to change a row's client_id (rows never move between tenants)."""


class IllegalTransition(IntegrityError):
    """RNE01 / RNE02 / RNE03: an agent execution change the state machine forbids (a status move
    outside the allowed arrows, any change to a finished execution, tokens_used decreasing)."""


class AgentNotActive(RenumDBError):
    """RNE04: the agent is inactive or archived, so it cannot be executed."""


class QuotaExceeded(RenumDBError):
    """RNE05: the client's tokens used this UTC month reached its monthly_token_limit."""


class RetryableError(RenumDBError):
    """40001 / 40P01 / 55P03: serialization failure, deadlock or lock timeout; retry the unit."""


class PrerequisiteMissing(RenumDBError):
    """RNP01: the target database lacks something Supabase provides (roles, schemas, pgvector)."""


_EXACT: dict[str, type[RenumDBError]] = {
    "42501": PermissionDenied,
    "P0002": NotFound,
    "PT404": NotFound,
    "23514": CheckViolation,
    "23502": NotNullViolation,
    "23505": Conflict,
    "23503": ReferenceViolation,
    "40001": RetryableError,
    "40P01": RetryableError,
    "55P03": RetryableError,
    "RNP01": PrerequisiteMissing,
    "RNU01": InvalidTenantMetadata,
    "RNT01": TenantMoveForbidden,
    "RNE01": IllegalTransition,
    "RNE02": IllegalTransition,
    "RNE03": IllegalTransition,
    "RNE04": AgentNotActive,
    "RNE05": QuotaExceeded,
    "RNE06": InvalidInput,
}

_CLASS: dict[str, type[RenumDBError]] = {
    "08": ConnectionFailed,
    "22": InvalidInput,
    "23": IntegrityError,
}


def for_sqlstate(sqlstate: str | None) -> type[RenumDBError]:
    """The exception class for a SQLSTATE (exact code first, then its two-character class)."""
    if not sqlstate:
        return DatabaseError
    return _EXACT.get(sqlstate) or _CLASS.get(sqlstate[:2]) or DatabaseError


def translate(exc: psycopg.Error) -> RenumDBError:
    """Convert a psycopg error into the matching renum_db exception."""
    diag = exc.diag
    sqlstate = exc.sqlstate
    if sqlstate is None and isinstance(exc, psycopg.OperationalError):
        cls: type[RenumDBError] = ConnectionFailed
    else:
        cls = for_sqlstate(sqlstate)
    message = diag.message_primary or str(exc).strip() or type(exc).__name__
    return cls(
        message,
        sqlstate=sqlstate,
        constraint=diag.constraint_name,
        detail=diag.message_detail,
        hint=diag.message_hint,
    )


@contextmanager
def wrap_errors() -> Iterator[None]:
    """The single boundary: re-raise driver errors as renum_db exceptions."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc
