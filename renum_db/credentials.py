"""Encrypted third-party API credentials (public.api_credentials), bound to their rows.

Keys
    `ENCRYPTION_KEY` holds one or more Fernet keys separated by commas. The first key encrypts;
    every key decrypts (`cryptography`'s MultiFernet), so a new key is put first, the rows are
    re-encrypted by `rotate_credentials` (`renum-db credentials rotate`), and the old key is then
    removed. A key that is not valid Fernet material is a `ConfigurationError` naming the key's
    position, never its value.

Format and binding
    `encrypted_value` is a standard Fernet token (AES-128-CBC + HMAC-SHA256, base64url text). Its
    plaintext is a JSON envelope::

        {"v": 1, "id": <row id>, "client_id": <tenant>, "service_name": ..., "credential_type": ...,
         "secret": <the secret>}

    The row id is generated here, before the insert, so it can be sealed into the envelope. On
    every read the envelope is compared with the row it was read from; a ciphertext copied into
    another tenant's, service's or type's row, or into another row id, decrypts but is refused with
    `CredentialBindingError`. A tampered or foreign-key ciphertext fails Fernet's HMAC and raises
    `CredentialDecryptionError`.

    Why an envelope rather than a key derived per row (HKDF(master, row identity)): both bind,
    but the envelope keeps the tokens plain Fernet, so key rotation is MultiFernet.rotate, which
    needs no knowledge of the row and cannot accidentally re-bind it; the two failure modes stay
    distinguishable (wrong key or tampering vs. right key, wrong row), which makes the error
    actionable; and the format is versioned (`v`) for a later change. The cost is that renaming a
    credential (service_name, credential_type) requires re-encrypting it: `update` does that, and
    migration 0011 makes the database refuse a rename that keeps the old ciphertext (RNC01).

Who does what
    Only the backend (`service_role`) reads or writes `encrypted_value`; API users have no column
    privilege on it. `CredentialService` therefore runs every operation as `service_role`
    (`Database.as_service_role()`, or a connection the caller already put in that role with
    `act_as`) and always filters by an explicit `client_id`, since `service_role` bypasses RLS.
    `list_credentials` returns metadata only and also works for a tenant admin through RLS.

Secrets never reach logs, exceptions or reprs: they travel as `Secret`, whose repr and str are
masked, and messages name rows by id only.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from psycopg import Connection

from renum_db.db import Database
from renum_db.errors import (
    ConfigurationError,
    CredentialBindingError,
    CredentialDecryptionError,
    InvalidInput,
    NotFound,
    wrap_errors,
)

__all__ = [
    "CREDENTIAL_TYPES",
    "ENV_VAR",
    "FORMAT_VERSION",
    "Credential",
    "CredentialBinding",
    "CredentialInfo",
    "CredentialKeys",
    "CredentialService",
    "KeyUsage",
    "RotationReport",
    "Secret",
    "inspect_credentials",
    "list_credentials",
    "rotate_credentials",
]

log = logging.getLogger(__name__)

ENV_VAR: Final = "ENCRYPTION_KEY"
FORMAT_VERSION: Final = 1
CREDENTIAL_TYPES: Final = ("api_key", "oauth_token", "bearer_token", "basic_auth", "secret")
_MASK: Final = "Secret('********')"
_METADATA: Final = (
    "id, client_id, service_name, credential_type, created_at, updated_at, last_used_at"
)
_BOUND_FIELDS: Final = ("id", "client_id", "service_name", "credential_type")
# 32 bytes in url-safe base64 with padding, exactly as Fernet.generate_key() writes them. Checked
# strictly because base64 decoding silently drops stray characters (a typo would go unnoticed).
_KEY_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}=")


class Secret:
    """A plaintext secret. repr() and str() are masked; `reveal()` is the only way out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret must be a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return _MASK

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("secrets cannot be pickled")


class CredentialKeys:
    """The Fernet keys from ENCRYPTION_KEY: the first encrypts, all decrypt."""

    __slots__ = ("_fernets", "_multi")

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes):
            raise TypeError("pass a sequence of keys (use from_string for a comma-separated str)")
        if not keys:
            raise ConfigurationError(f"{ENV_VAR} holds no key")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, 1):
            where = f"{ENV_VAR}: key {position} of {len(keys)}"
            if not isinstance(key, str | bytes):
                raise ConfigurationError(f"{where} is not a str")
            material = key.decode("ascii", "replace") if isinstance(key, bytes) else key
            material = material.strip()
            if not material:
                raise ConfigurationError(f"{where} is empty (check for a stray comma)")
            try:
                if not _KEY_SHAPE.fullmatch(material):
                    raise ValueError("bad shape")
                fernets.append(Fernet(material))
            except (ValueError, TypeError):
                # `from None`: the cause could echo the material; the message names the position.
                raise ConfigurationError(
                    f"{where} is not a valid Fernet key (32 bytes in url-safe base64, 44 "
                    "characters); generate one with `renum-db credentials generate-key`"
                ) from None
        self._fernets = tuple(fernets)
        self._multi = MultiFernet(fernets)

    @classmethod
    def from_string(cls, value: str) -> CredentialKeys:
        """Keys from a comma-separated string, the first one primary."""
        return cls(value.split(","))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CredentialKeys:
        """Keys from ENCRYPTION_KEY (the environment, then `.env` without overriding it)."""
        if environ is None:
            from dotenv import load_dotenv

            load_dotenv(override=False)
            environ = os.environ
        value = environ.get(ENV_VAR, "").strip()
        if not value:
            raise ConfigurationError(
                f"{ENV_VAR} is not set; generate a key with `renum-db credentials generate-key`"
            )
        return cls.from_string(value)

    @staticmethod
    def generate() -> str:
        """A new random Fernet key (text)."""
        return Fernet.generate_key().decode("ascii")

    def __len__(self) -> int:
        return len(self._fernets)

    def __repr__(self) -> str:
        return f"CredentialKeys({len(self._fernets)} key(s), first encrypts)"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("keys cannot be pickled")

    def encrypt(self, plaintext: bytes) -> str:
        return self._fernets[0].encrypt(plaintext).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        """Decrypt with any key; CredentialDecryptionError if none verifies the token."""
        try:
            return self._multi.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise CredentialDecryptionError(
                "the ciphertext does not verify under any configured key "
                "(tampered, corrupted, or encrypted under a key missing from ENCRYPTION_KEY)"
            ) from None

    def key_index(self, token: str) -> int | None:
        """The position (0 = primary) of the key that verifies `token`, or None."""
        try:
            data = token.encode("ascii")
        except UnicodeEncodeError:
            return None
        for index, fernet in enumerate(self._fernets):
            try:
                fernet.decrypt(data)
            except InvalidToken:
                continue
            return index
        return None

    def rotate(self, token: str) -> str:
        """Re-encrypt `token` under the primary key (plaintext, hence binding, unchanged)."""
        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise CredentialDecryptionError(
                "the ciphertext does not verify under any configured key"
            ) from None


@dataclass(frozen=True, slots=True)
class CredentialBinding:
    """The row a ciphertext belongs to; sealed into the envelope and checked on read."""

    id: uuid.UUID
    client_id: uuid.UUID
    service_name: str
    credential_type: str


def _seal(keys: CredentialKeys, binding: CredentialBinding, secret: Secret) -> str:
    envelope = {
        "v": FORMAT_VERSION,
        "id": str(binding.id),
        "client_id": str(binding.client_id),
        "service_name": binding.service_name,
        "credential_type": binding.credential_type,
        "secret": secret.reveal(),
    }
    return keys.encrypt(json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode())


def _unseal(keys: CredentialKeys, binding: CredentialBinding, token: str) -> Secret:
    where = f"credential {binding.id}"
    try:
        plaintext = keys.decrypt(token)
    except CredentialDecryptionError as exc:
        raise CredentialDecryptionError(f"{where}: {exc}") from None
    try:
        envelope = json.loads(plaintext)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("secret"), str):
        raise CredentialDecryptionError(f"{where}: the plaintext is not a credential envelope")
    if envelope.get("v") != FORMAT_VERSION:
        raise CredentialDecryptionError(f"{where}: unsupported envelope version")
    expected = {
        "id": str(binding.id),
        "client_id": str(binding.client_id),
        "service_name": binding.service_name,
        "credential_type": binding.credential_type,
    }
    mismatched = [name for name in _BOUND_FIELDS if envelope.get(name) != expected[name]]
    if mismatched:
        # Field names only: the values would describe another row, possibly another tenant.
        raise CredentialBindingError(
            f"{where}: the ciphertext belongs to another row (its {', '.join(mismatched)} "
            "differ from this row's); it was copied here or the row was altered. Store the "
            "secret again for this row."
        )
    return Secret(envelope["secret"])


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """A credential's metadata (what tenant admins may see): never the ciphertext."""

    id: uuid.UUID
    client_id: uuid.UUID
    service_name: str
    credential_type: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credential(CredentialInfo):
    """Metadata plus the decrypted secret (masked in repr)."""

    secret: Secret


def _info(row: Sequence[Any]) -> CredentialInfo:
    return CredentialInfo(*row[:7])


def list_credentials(
    conn: Connection[Any],
    *,
    client_id: uuid.UUID | str | None = None,
    service_name: str | None = None,
) -> list[CredentialInfo]:
    """Metadata of credentials, ordered by service and type; no ciphertext is selected.

    As a tenant user (any role that does not bypass RLS, whatever its name) RLS limits the rows
    to the caller's tenant and to admins; `client_id` may then be omitted. The backend (a role
    that bypasses RLS) must pass it.
    """
    with wrap_errors():
        if client_id is None:
            bypasses = conn.execute(
                "select rolbypassrls or rolsuper from pg_catalog.pg_roles"
                " where rolname = current_user"
            ).fetchone()
            if bypasses is None or bypasses[0]:
                raise InvalidInput("client_id is required unless acting as a tenant user")
        rows = conn.execute(
            f"select {_METADATA} from public.api_credentials"
            " where (%(client)s::uuid is null or client_id = %(client)s::uuid)"
            "   and (%(service)s::text is null or service_name = %(service)s::text)"
            " order by service_name, credential_type, id",
            {"client": client_id, "service": service_name},
        ).fetchall()
    return [_info(r) for r in rows]


class CredentialService:
    """Store, read, list, update and delete a tenant's credentials, as the backend.

    Every method takes the tenant explicitly (`client_id`) and runs as `service_role`: in its
    own transaction by default, or inside `conn` (a connection already acting as service_role)
    when given, so it joins the caller's transaction.
    """

    def __init__(self, db: Database | None, keys: CredentialKeys | None = None) -> None:
        self._db = db
        self._keys = keys if keys is not None else CredentialKeys.from_env()

    def __repr__(self) -> str:
        return f"CredentialService({self._keys!r})"

    @contextmanager
    def _session(self, conn: Connection[Any] | None) -> Iterator[Connection[Any]]:
        if conn is None:
            if self._db is None:
                raise ConfigurationError("CredentialService without a Database needs conn=")
            with self._db.as_service_role() as own:
                yield own
            return
        with wrap_errors(), conn.transaction():
            row = conn.execute("select current_user").fetchone()
            if row is None or row[0] != "service_role":
                raise ConfigurationError(
                    "credential operations run as service_role "
                    "(Database.as_service_role() or act_as(conn, {'role': 'service_role'}))"
                )
            yield conn

    def store(
        self,
        *,
        client_id: uuid.UUID | str,
        service_name: str,
        secret: str | Secret,
        credential_type: str = "api_key",
        conn: Connection[Any] | None = None,
    ) -> CredentialInfo:
        """Encrypt `secret` bound to a new row id and insert it (Conflict if the tenant already
        holds this service_name and credential_type)."""
        binding = CredentialBinding(uuid.uuid4(), _uuid(client_id), service_name, credential_type)
        token = _seal(self._keys, binding, _secret(secret))
        with self._session(conn) as c:
            row = c.execute(
                "insert into public.api_credentials"
                " (id, client_id, service_name, credential_type, encrypted_value)"
                f" values (%s, %s, %s, %s, %s) returning {_METADATA}",
                (binding.id, binding.client_id, service_name, credential_type, token),
            ).fetchone()
        assert row is not None
        log.debug("stored credential %s of client %s (%s)", binding.id, client_id, service_name)
        return _info(row)

    def read(
        self,
        credential_id: uuid.UUID | str,
        *,
        client_id: uuid.UUID | str,
        conn: Connection[Any] | None = None,
    ) -> Credential:
        """Decrypt one credential of `client_id` and record last_used_at in the same
        transaction (rolled back if the ciphertext is refused). NotFound if the tenant has no
        such row."""
        return self._read(conn, "id = %s", (_uuid(credential_id),), client_id)

    def read_by_service(
        self,
        *,
        client_id: uuid.UUID | str,
        service_name: str,
        credential_type: str = "api_key",
        conn: Connection[Any] | None = None,
    ) -> Credential:
        """`read`, finding the row by (service_name, credential_type) within the tenant."""
        return self._read(
            conn,
            "service_name = %s and credential_type = %s",
            (service_name, credential_type),
            client_id,
        )

    def _read(
        self,
        conn: Connection[Any] | None,
        where: str,
        params: tuple[Any, ...],
        client_id: uuid.UUID | str,
    ) -> Credential:
        with self._session(conn) as c:
            row = c.execute(
                "update public.api_credentials set last_used_at = pg_catalog.now()"
                f" where client_id = %s and {where}"
                f" returning {_METADATA}, encrypted_value",
                (_uuid(client_id), *params),
            ).fetchone()
            if row is None:
                raise NotFound(f"client {client_id} has no such credential")
            info = _info(row)
            secret = _unseal(
                self._keys,
                CredentialBinding(info.id, info.client_id, info.service_name, info.credential_type),
                row[7],
            )
        log.debug("read credential %s of client %s", info.id, info.client_id)
        return Credential(
            info.id,
            info.client_id,
            info.service_name,
            info.credential_type,
            info.created_at,
            info.updated_at,
            info.last_used_at,
            secret,
        )

    def list(
        self, *, client_id: uuid.UUID | str, conn: Connection[Any] | None = None
    ) -> builtins.list[CredentialInfo]:
        """Metadata of the tenant's credentials (no ciphertext)."""
        with self._session(conn) as c:
            return list_credentials(c, client_id=_uuid(client_id))

    def update(
        self,
        credential_id: uuid.UUID | str,
        *,
        client_id: uuid.UUID | str,
        secret: str | Secret,
        service_name: str | None = None,
        credential_type: str | None = None,
        conn: Connection[Any] | None = None,
    ) -> CredentialInfo:
        """Replace the secret (and optionally rename), re-encrypting under the primary key."""
        new_secret = _secret(secret)
        ident, tenant = _uuid(credential_id), _uuid(client_id)
        with self._session(conn) as c:
            current = c.execute(
                "select service_name, credential_type from public.api_credentials"
                " where id = %s and client_id = %s for update",
                (ident, tenant),
            ).fetchone()
            if current is None:
                raise NotFound(f"client {client_id} has no credential {credential_id}")
            binding = CredentialBinding(
                ident, tenant, service_name or current[0], credential_type or current[1]
            )
            row = c.execute(
                "update public.api_credentials"
                " set service_name = %s, credential_type = %s, encrypted_value = %s"
                f" where id = %s and client_id = %s returning {_METADATA}",
                (
                    binding.service_name,
                    binding.credential_type,
                    _seal(self._keys, binding, new_secret),
                    ident,
                    tenant,
                ),
            ).fetchone()
        assert row is not None
        log.debug("updated credential %s of client %s", ident, tenant)
        return _info(row)

    def delete(
        self,
        credential_id: uuid.UUID | str,
        *,
        client_id: uuid.UUID | str,
        conn: Connection[Any] | None = None,
    ) -> None:
        """Delete one credential of the tenant; NotFound if there is none."""
        with self._session(conn) as c:
            count = c.execute(
                "delete from public.api_credentials where id = %s and client_id = %s",
                (_uuid(credential_id), _uuid(client_id)),
            ).rowcount
            if count == 0:
                raise NotFound(f"client {client_id} has no credential {credential_id}")
        log.debug("deleted credential %s of client %s", credential_id, client_id)


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(f"not a uuid: {value!r}") from None


def _secret(value: str | Secret) -> Secret:
    secret = value if isinstance(value, Secret) else Secret(value)
    if not secret.reveal():
        raise InvalidInput("a credential secret cannot be empty")
    return secret


# --- rotation -----------------------------------------------------------------------------------


@dataclass(slots=True)
class RotationReport:
    """What `rotate_credentials` did. `last_id` is the keyset cursor after the last batch."""

    examined: int = 0
    rotated: int = 0
    already_current: int = 0
    batches: int = 0
    undecryptable: list[uuid.UUID] = field(default_factory=list)
    last_id: uuid.UUID | None = None


_FIRST_ID: Final = uuid.UUID(int=0)


def _rotate_rows(
    conn: Connection[Any], keys: CredentialKeys, rows: Sequence[Any], report: RotationReport
) -> None:
    updates: list[tuple[str, uuid.UUID]] = []
    for ident, token in rows:
        report.examined += 1
        if keys.key_index(token) == 0:
            report.already_current += 1
            continue
        try:
            updates.append((keys.rotate(token), ident))
        except CredentialDecryptionError:
            report.undecryptable.append(ident)
            log.warning("credential %s does not decrypt under any configured key", ident)
    if updates:
        with conn.cursor() as cur:
            cur.executemany(
                "update public.api_credentials set encrypted_value = %s where id = %s", updates
            )
        report.rotated += len(updates)


def rotate_credentials(
    db: Database,
    keys: CredentialKeys,
    *,
    batch_size: int = 500,
    start_after: uuid.UUID | None = None,
    after_batch: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Re-encrypt every credential not yet under the primary key, in batches.

    Each batch is its own transaction: the next `batch_size` ids after the cursor (keyset
    pagination by id), of which the unlocked ones are locked `for update skip locked` and
    re-encrypted; rows already under the primary key are left untouched, so running it again
    changes nothing and an interrupted run is resumed by running it again (or from
    `report.last_id` via `start_after`). Rows skipped because another transaction held them are
    retried at the end, this time waiting for the lock. Rows that no configured key decrypts are
    reported in `undecryptable`, never changed. `after_batch` is called after each commit.
    """
    if batch_size < 1:
        raise InvalidInput("batch_size must be at least 1")
    report = RotationReport(last_id=start_after)
    deferred: list[uuid.UUID] = []
    cursor = start_after or _FIRST_ID
    while True:
        with db.as_service_role() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "select id from public.api_credentials where id > %s order by id limit %s",
                    (cursor, batch_size),
                )
            ]
            if not ids:
                break
            rows = conn.execute(
                "select id, encrypted_value from public.api_credentials"
                " where id = any(%s) order by id for update skip locked",
                (ids,),
            ).fetchall()
            locked = set(ids) - {r[0] for r in rows}
            deferred.extend(i for i in ids if i in locked)
            _rotate_rows(conn, keys, rows, report)
        cursor = ids[-1]
        report.batches += 1
        report.last_id = cursor
        log.info(
            "rotation batch %d: %d examined, %d rotated so far",
            report.batches,
            report.examined,
            report.rotated,
        )
        if after_batch is not None:
            after_batch(report)
    for start in range(0, len(deferred), batch_size):
        chunk = deferred[start : start + batch_size]
        with db.as_service_role() as conn:
            rows = conn.execute(
                "select id, encrypted_value from public.api_credentials"
                " where id = any(%s) order by id for update",
                (chunk,),
            ).fetchall()
            _rotate_rows(conn, keys, rows, report)
        report.batches += 1
        if after_batch is not None:
            after_batch(report)
    return report


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """How many credentials each key (0 = primary) decrypts, and the rows none decrypts."""

    per_key: tuple[int, ...]
    undecryptable: tuple[uuid.UUID, ...]

    @property
    def old_keys_removable(self) -> bool:
        """True when every row is under the primary key: the other keys can be dropped."""
        return not self.undecryptable and not any(self.per_key[1:])


def inspect_credentials(db: Database, keys: CredentialKeys, *, batch_size: int = 500) -> KeyUsage:
    """Count credentials per key (read-only, batched by id). Run before removing an old key."""
    counts = [0] * len(keys)
    bad: list[uuid.UUID] = []
    cursor = _FIRST_ID
    while True:
        with db.as_service_role() as conn:
            rows = conn.execute(
                "select id, encrypted_value from public.api_credentials"
                " where id > %s order by id limit %s",
                (cursor, batch_size),
            ).fetchall()
        if not rows:
            break
        for ident, token in rows:
            index = keys.key_index(token)
            if index is None:
                bad.append(ident)
            else:
                counts[index] += 1
        cursor = rows[-1][0]
    return KeyUsage(tuple(counts), tuple(bad))
