"""Real errors raised by Postgres (and by our triggers) map to the right renum_db exceptions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from renum_db.db import act_as, user_claims
from renum_db.errors import (
    CheckViolation,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    DatabaseError,
    IntegrityError,
    InvalidInput,
    InvalidTenantMetadata,
    NotFound,
    NotNullViolation,
    PermissionDenied,
    PrerequisiteMissing,
    ReferenceViolation,
    RenumDBError,
    RetryableError,
    TenantMoveForbidden,
    for_sqlstate,
    translate,
    wrap_errors,
)
from tests.support import World, add_auth_user

Conn = psycopg.Connection[Any]


@contextmanager
def raising(
    conn: Conn, claims: Mapping[str, Any] | None = None, *, superuser: bool = False
) -> Iterator[pytest.ExceptionInfo[RenumDBError]]:
    """Expect the block to fail inside a savepoint, as the superuser or as a PostgREST caller."""
    with pytest.raises(RenumDBError) as info:
        if superuser:
            with wrap_errors(), conn.transaction():
                yield info
        else:
            with act_as(conn, claims):
                yield info


def insert_auth_user(conn: Conn, app_metadata: dict[str, Any]) -> None:
    conn.execute(
        "insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data) "
        "values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', "
        "%s, %s)",
        (uuid.uuid4(), f"{uuid.uuid4().hex}@example.com", json.dumps(app_metadata)),
    )


def test_rls_rejection_is_permission_denied(conn: Conn, world: World) -> None:
    with raising(conn, user_claims(world.a.users["viewer"])) as info:
        conn.execute("insert into public.knowledge_bases (name) values ('by a viewer')")
    assert type(info.value) is PermissionDenied
    assert info.value.sqlstate == "42501"
    assert "row-level security" in str(info.value)


def test_missing_privilege_is_permission_denied(conn: Conn) -> None:
    with raising(conn, None) as info:
        conn.execute("select 1 from public.knowledge_bases")
    assert type(info.value) is PermissionDenied
    assert "permission denied" in str(info.value)


def test_unique_violation_is_conflict_with_the_constraint(conn: Conn, world: World) -> None:
    with raising(conn, superuser=True) as info:
        conn.execute(
            "insert into public.knowledge_bases (client_id, name) values (%s, 'kb0')",
            (world.a.client_id,),
        )
    assert type(info.value) is Conflict
    assert isinstance(info.value, IntegrityError)
    assert info.value.sqlstate == "23505"
    assert info.value.constraint == "knowledge_bases_client_id_name_key"
    assert info.value.detail is not None
    assert "kb0" in info.value.detail


def test_foreign_key_violation_is_reference_violation(conn: Conn, world: World) -> None:
    with raising(conn, superuser=True) as info:
        conn.execute(
            "insert into public.knowledge_collections (client_id, knowledge_base_id, name) "
            "values (%s, %s, 'orphan')",
            (world.a.client_id, world.b.rows["knowledge_bases"][0]),
        )
    assert type(info.value) is ReferenceViolation
    assert info.value.sqlstate == "23503"
    assert info.value.constraint == "knowledge_collections_knowledge_base_fk"


def test_check_violation_names_the_constraint(conn: Conn, world: World) -> None:
    with raising(conn, user_claims(world.a.users["member"])) as info:
        conn.execute(
            "update public.documents set metadata = '[]' where id = %s",
            (world.a.rows["documents"][0],),
        )
    assert type(info.value) is CheckViolation
    assert isinstance(info.value, InvalidInput)
    assert info.value.sqlstate == "23514"
    assert info.value.constraint == "documents_metadata_chk"


def test_a_value_outside_an_enumerated_column_is_invalid_input(conn: Conn, world: World) -> None:
    """Status, role and type columns are enums (0015): a misspelt value is 22P02."""
    with raising(conn, user_claims(world.a.users["member"])) as info:
        conn.execute(
            "update public.documents set status = 'bogus' where id = %s",
            (world.a.rows["documents"][0],),
        )
    assert type(info.value) is InvalidInput
    assert info.value.sqlstate == "22P02"


def test_not_null_violation(conn: Conn) -> None:
    # service_role has no tenant, so the client_id default resolves to null.
    with raising(conn, {"role": "service_role"}) as info:
        conn.execute("insert into public.knowledge_bases (name) values ('no tenant')")
    assert type(info.value) is NotNullViolation
    assert info.value.sqlstate == "23502"


def test_invalid_text_representation_is_invalid_input(conn: Conn) -> None:
    with raising(conn, superuser=True) as info:
        conn.execute("select 'not-a-uuid'::uuid")
    assert type(info.value) is InvalidInput
    assert info.value.sqlstate == "22P02"


def test_other_data_exceptions_are_invalid_input_by_class(conn: Conn) -> None:
    with raising(conn, superuser=True) as info:
        conn.execute("select 1 / 0")
    assert type(info.value) is InvalidInput
    assert info.value.sqlstate == "22012"


def test_moving_a_document_to_another_tenant_is_tenant_move_forbidden(
    conn: Conn, world: World
) -> None:
    with raising(conn, {"role": "service_role"}) as info:
        conn.execute(
            "update public.documents set client_id = %s where id = %s",
            (world.b.client_id, world.a.rows["documents"][0]),
        )
    assert type(info.value) is TenantMoveForbidden
    assert info.value.sqlstate == "RNT01"
    assert info.value.hint is not None
    assert info.value.hint.startswith("Rows never move between tenants")


def test_a_client_id_that_is_not_a_uuid_is_invalid_tenant_metadata(conn: Conn) -> None:
    with raising(conn, superuser=True) as info:
        insert_auth_user(conn, {"client_id": "not-a-uuid"})
    assert type(info.value) is InvalidTenantMetadata
    assert info.value.sqlstate == "RNU01"
    assert "not a uuid" in str(info.value)


def test_an_unknown_client_is_invalid_tenant_metadata(conn: Conn) -> None:
    with raising(conn, superuser=True) as info:
        insert_auth_user(conn, {"client_id": str(uuid.uuid4())})
    assert type(info.value) is InvalidTenantMetadata
    assert "names no client" in str(info.value)


def test_an_unknown_role_is_invalid_tenant_metadata(conn: Conn, world: World) -> None:
    with raising(conn, superuser=True) as info:
        add_auth_user(conn, email="owner@a.example", client_id=world.a.client_id, role="owner")
    assert type(info.value) is InvalidTenantMetadata
    assert isinstance(info.value, InvalidInput)
    assert "owner" in str(info.value)


def test_an_undocumented_custom_sqlstate_is_a_plain_database_error(conn: Conn) -> None:
    with raising(conn, superuser=True) as info:
        conn.execute(
            "do $$ begin raise exception using errcode = 'RN999', message = 'custom'; end $$"
        )
    assert type(info.value) is DatabaseError
    assert info.value.sqlstate == "RN999"
    assert str(info.value) == "[RN999] custom"


def test_the_message_starts_with_the_sqlstate_in_brackets(conn: Conn) -> None:
    with raising(conn, superuser=True) as info:
        conn.execute("select 'x'::int")
    assert str(info.value).startswith("[22P02] invalid input syntax for type integer")


def test_the_driver_error_is_kept_as_the_cause(conn: Conn) -> None:
    with raising(conn, superuser=True) as info:
        conn.execute("select 'x'::int")
    assert isinstance(info.value.__cause__, psycopg.errors.InvalidTextRepresentation)
    assert not isinstance(info.value, psycopg.Error)


def test_lock_not_available_is_retryable(conn: Conn, db_url: str, world: World) -> None:
    conn.execute("select 1 from public.clients where id = %s for update", (world.a.client_id,))
    with psycopg.connect(db_url) as other, pytest.raises(RetryableError) as info, wrap_errors():
        other.execute(
            "select 1 from public.clients where id = %s for update nowait", (world.a.client_id,)
        )
    assert info.value.sqlstate == "55P03"


def test_a_closed_connection_is_connection_failed(db_url: str) -> None:
    other = psycopg.connect(db_url)
    other.close()
    with pytest.raises(ConnectionFailed), wrap_errors():
        other.execute("select 1")


def test_errors_without_a_sqlstate_map_by_driver_class() -> None:
    assert type(translate(psycopg.OperationalError("gone"))) is ConnectionFailed
    assert type(translate(psycopg.InterfaceError("misuse"))) is DatabaseError


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("42501", PermissionDenied),
        ("P0002", NotFound),
        ("PT404", NotFound),
        ("23505", Conflict),
        ("23503", ReferenceViolation),
        ("23514", CheckViolation),
        ("23502", NotNullViolation),
        ("RNT01", TenantMoveForbidden),
        ("RNU01", InvalidTenantMetadata),
        ("RNP01", PrerequisiteMissing),
        ("40001", RetryableError),
        ("40P01", RetryableError),
        ("55P03", RetryableError),
        # no exact entry: the two-character class decides
        ("23P01", IntegrityError),
        ("22003", InvalidInput),
        ("08006", ConnectionFailed),
        ("40002", DatabaseError),  # a deferred constraint failed: retrying will not help
        # nothing matches: the base class for database errors
        ("42P01", DatabaseError),
        ("XX000", DatabaseError),
        ("RN999", DatabaseError),
        ("", DatabaseError),
        (None, DatabaseError),
    ],
)
def test_for_sqlstate_matches_the_code_then_falls_back_by_class(
    sqlstate: str | None, expected: type[RenumDBError]
) -> None:
    assert for_sqlstate(sqlstate) is expected


def test_configuration_error_is_not_a_database_error() -> None:
    assert issubclass(ConfigurationError, RenumDBError)
    assert not issubclass(ConfigurationError, DatabaseError)
    assert str(ConfigurationError("bad")) == "bad"
