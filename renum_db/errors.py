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
    "AuthenticationFailed",
    "CheckViolation",
    "ConfigurationError",
    "ConfirmationRequired",
    "Conflict",
    "ConnectionFailed",
    "CredentialBindingError",
    "CredentialDecryptionError",
    "CredentialError",
    "DatabaseError",
    "DeployLocked",
    "ExecutionWorkflowError",
    "IllegalTransition",
    "IntegrityError",
    "InvalidCredentials",
    "InvalidInput",
    "InvalidTenantMetadata",
    "InvalidToken",
    "InvestigationDefinitionFrozen",
    "InvestigationNotProcessing",
    "InvestigationProgressRegression",
    "InvestigationTransitionRefused",
    "InvestigationWorkflowError",
    "MigrationChecksumMismatch",
    "NotFound",
    "NotNullViolation",
    "PermissionDenied",
    "PrerequisiteMissing",
    "QuotaExceeded",
    "ReferenceViolation",
    "RenumDBError",
    "RetryableError",
    "ServiceError",
    "TenantMoveForbidden",
    "WorkflowError",
    "for_service_error",
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


class WorkflowError(RenumDBError):
    """A state machine refused the change: the one base of both workflow families, agent
    executions (`ExecutionWorkflowError`, RNE01-RNE05) and investigations
    (`InvestigationWorkflowError`, RNI01-RNI05). A worker catching `WorkflowError` stops on
    either."""


class InvestigationWorkflowError(WorkflowError):
    """RNI01-RNI05: a change the investigation workflow forbids (docs/investigations.md).
    Raised as is for RNI05 (error written without the investigation failing)."""


class InvestigationTransitionRefused(InvestigationWorkflowError):
    """RNI01: an illegal status transition (e.g. leaving completed, or pending -> completed)."""


class InvestigationProgressRegression(InvestigationWorkflowError):
    """RNI02: progress would decrease."""


class InvestigationNotProcessing(InvestigationWorkflowError):
    """RNI03: progress or results written while the investigation is not processing."""


class InvestigationDefinitionFrozen(InvestigationWorkflowError):
    """RNI04: query, data_source, filters or anomaly_types changed after the investigation left
    pending."""


class ExecutionWorkflowError(WorkflowError):
    """RNE01-RNE05: a change the agent-execution workflow forbids (docs/agents.md). (RNE06, an
    invalid monthly_token_limit setting, is bad configuration: `InvalidInput`.)"""


class IllegalTransition(ExecutionWorkflowError):
    """RNE01 / RNE02 / RNE03: an agent execution change the state machine forbids (a status move
    outside the allowed arrows, any change to a finished execution, tokens_used decreasing)."""


class AgentNotActive(ExecutionWorkflowError):
    """RNE04: the agent is inactive or archived, so it cannot be executed."""


class QuotaExceeded(ExecutionWorkflowError):
    """RNE05: the client's tokens used this UTC month reached its monthly_token_limit."""


class RetryableError(RenumDBError):
    """40001 / 40P01 / 55P03: serialization failure, deadlock or lock timeout; retry the unit."""


class PrerequisiteMissing(RenumDBError):
    """RNP01: the target database lacks something Supabase provides (roles, schemas, pgvector)."""


# --- deploy safety (renum_db.migrations; the CLI exits 2 on each) ----------------------------


class DeployLocked(RenumDBError):
    """Another deploy holds the migration lock and did not release it within the timeout."""


class MigrationChecksumMismatch(RenumDBError):
    """A migration file changed after it was applied to this database."""


class ConfirmationRequired(RenumDBError):
    """A destructive command (rollback over tenant data) was neither confirmed nor forced."""


class CredentialError(RenumDBError):
    """A stored API credential cannot be used (see docs/credentials.md)."""


class CredentialDecryptionError(CredentialError):
    """The ciphertext is tampered, corrupted or encrypted under a key not in ENCRYPTION_KEY."""


class CredentialBindingError(CredentialError):
    """A ciphertext belongs to another row, tenant, service or type; RNC01: a bound column of
    api_credentials (id, service_name, credential_type) changed without re-encrypting."""


class AuthenticationFailed(RenumDBError):
    """The caller could not be authenticated (by Supabase Auth, or a JWT checked locally)."""


class InvalidCredentials(AuthenticationFailed):
    """Wrong email or password (Supabase Auth `invalid_credentials`)."""


class InvalidToken(AuthenticationFailed):
    """A missing, malformed, expired or wrongly signed JWT, or a session that has ended."""


class ServiceError(RenumDBError):
    """An error from Supabase Auth or Storage with no more specific class (`detail` holds the
    service's error code and HTTP status)."""


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
    "RNC01": CredentialBindingError,
    "RNI01": InvestigationTransitionRefused,
    "RNI02": InvestigationProgressRegression,
    "RNI03": InvestigationNotProcessing,
    "RNI04": InvestigationDefinitionFrozen,
    "RNI05": InvestigationWorkflowError,
    "RNE01": IllegalTransition,
    "RNE02": IllegalTransition,
    "RNE03": IllegalTransition,
    "RNE04": AgentNotActive,
    "RNE05": QuotaExceeded,
    "RNE06": InvalidInput,
    "RNM01": ConfigurationError,
}

_CLASS: dict[str, type[RenumDBError]] = {
    "08": ConnectionFailed,
    "22": InvalidInput,
    "23": IntegrityError,
}


# Supabase Auth (GoTrue `error_code`, snake_case) and Storage (`error`, CamelCase) codes; then the
# HTTP status. Used by renum_db.auth and renum_db.storage, the boundaries of those two services.
_SERVICE_CODES: dict[str, type[RenumDBError]] = {
    "invalid_credentials": InvalidCredentials,
    "bad_jwt": InvalidToken,
    "invalid_jwt": InvalidToken,
    "no_authorization": InvalidToken,
    "session_not_found": InvalidToken,
    "session_expired": InvalidToken,
    "refresh_token_not_found": InvalidToken,
    "email_exists": Conflict,
    "phone_exists": Conflict,
    "user_already_exists": Conflict,
    "identity_already_exists": Conflict,
    "conflict": Conflict,
    "weak_password": InvalidInput,
    "validation_failed": InvalidInput,
    "bad_json": InvalidInput,
    "email_address_invalid": InvalidInput,
    "same_password": InvalidInput,
    "not_admin": PermissionDenied,
    "signup_disabled": PermissionDenied,
    "email_provider_disabled": PermissionDenied,
    "email_address_not_authorized": PermissionDenied,
    "email_not_confirmed": PermissionDenied,
    "user_banned": PermissionDenied,
    "user_not_found": NotFound,
    "over_request_rate_limit": RetryableError,
    "over_email_send_rate_limit": RetryableError,
    "request_timeout": RetryableError,
    "Unauthorized": PermissionDenied,
    "InvalidJWT": InvalidToken,
    "Duplicate": Conflict,
    "ResourceAlreadyExists": Conflict,
    "NoSuchBucket": NotFound,
    "NoSuchKey": NotFound,
    "InvalidKey": InvalidInput,
    "InvalidMimeType": InvalidInput,
    "EntityTooLarge": InvalidInput,
}

_HTTP_STATUS: dict[int, type[RenumDBError]] = {
    0: ConnectionFailed,  # no HTTP response at all
    400: InvalidInput,
    401: InvalidToken,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: InvalidInput,
    415: InvalidInput,
    422: InvalidInput,
    429: RetryableError,
    502: RetryableError,
    503: RetryableError,
    504: RetryableError,
}


def for_service_error(code: str | None, status: int | str | None) -> type[RenumDBError]:
    """The exception class for a Supabase Auth or Storage error (its code, then its status)."""
    if code and code in _SERVICE_CODES:
        return _SERVICE_CODES[code]
    try:
        number = int(status) if status is not None else -1
    except ValueError:
        number = -1
    return _HTTP_STATUS.get(number, ServiceError)


def for_sqlstate(sqlstate: str | None) -> type[RenumDBError]:
    """The exception class for a SQLSTATE (exact code first, then its two-character class)."""
    if not sqlstate:
        return DatabaseError
    return _EXACT.get(sqlstate) or _CLASS.get(sqlstate[:2]) or DatabaseError


_RLS_HINT = (
    "The row is outside what the caller may write: the user needs a public.users profile in an"
    " active client with a high enough role (create users with renum_db.admin.TenantAdmin or"
    " `renum-db user create`), and the row must belong to that client."
)


def translate(exc: psycopg.Error) -> RenumDBError:
    """Convert a psycopg error into the matching renum_db exception."""
    diag = exc.diag
    sqlstate = exc.sqlstate
    if sqlstate is None and isinstance(exc, psycopg.OperationalError):
        cls: type[RenumDBError] = ConnectionFailed
    else:
        cls = for_sqlstate(sqlstate)
    message = diag.message_primary or str(exc).strip() or type(exc).__name__
    hint = diag.message_hint
    if hint is None and sqlstate == "42501" and "row-level security" in message:
        hint = _RLS_HINT
    return cls(
        message,
        sqlstate=sqlstate,
        constraint=diag.constraint_name,
        detail=diag.message_detail,
        hint=hint,
    )


@contextmanager
def wrap_errors() -> Iterator[None]:
    """The single boundary: re-raise driver errors as renum_db exceptions."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc
