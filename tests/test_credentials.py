"""Encrypted API credentials: round trip, binding of each ciphertext to its row, who may see what,
key rotation (batched, idempotent, resumable), and that no secret or key ever leaks."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from renum_db.cli import main
from renum_db.credentials import (
    CredentialKeys,
    CredentialService,
    RotationReport,
    Secret,
    inspect_credentials,
    list_credentials,
    rotate_credentials,
)
from renum_db.db import Database, act_as
from renum_db.errors import (
    ConfigurationError,
    Conflict,
    CredentialBindingError,
    CredentialDecryptionError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from tests.support import World, create_database, drop_database, wait_for_lock_waiter

KEY_OLD = CredentialKeys.generate()
KEY_NEW = CredentialKeys.generate()
SECRET = "sk-live-51HdYvPq7EXAMPLEsecretValue0123456789"
Conn = psycopg.Connection[Any]


def name(prefix: str = "svc") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def db(db_url: str, world: World) -> Iterator[Database]:
    with Database(db_url, min_size=1, max_size=4) as database:
        yield database


@pytest.fixture(scope="module")
def service(db: Database) -> CredentialService:
    return CredentialService(db, CredentialKeys([KEY_OLD]))


def raw(db_url: str, credential_id: uuid.UUID) -> str:
    with psycopg.connect(db_url) as c:
        row = c.execute(
            "select encrypted_value from public.api_credentials where id = %s", (credential_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def force(db_url: str, credential_id: uuid.UUID, ciphertext: str) -> None:
    """Write a ciphertext straight into a row, as an attacker with table access would."""
    with psycopg.connect(db_url) as c:
        c.execute(
            "update public.api_credentials set encrypted_value = %s where id = %s",
            (ciphertext, credential_id),
        )


# --- round trip ---------------------------------------------------------------------------------


def test_a_stored_secret_reads_back(service: CredentialService, world: World) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    cred = service.read(info.id, client_id=world.a.client_id)
    assert cred.secret.reveal() == SECRET
    assert (cred.id, cred.client_id, cred.service_name) == (
        info.id,
        info.client_id,
        info.service_name,
    )
    assert cred.credential_type == "api_key"


def test_a_secret_is_found_by_service_and_type(service: CredentialService, world: World) -> None:
    svc = name()
    service.store(
        client_id=world.a.client_id, service_name=svc, secret="t1", credential_type="bearer_token"
    )
    service.store(client_id=world.a.client_id, service_name=svc, secret="k1")
    cred = service.read_by_service(
        client_id=world.a.client_id, service_name=svc, credential_type="bearer_token"
    )
    assert cred.secret.reveal() == "t1"


def test_the_ciphertext_is_a_fernet_token_not_the_secret(
    service: CredentialService, world: World, db_url: str
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    token = raw(db_url, info.id)
    assert token.startswith("gAAAAA")
    assert SECRET not in token
    envelope = json.loads(CredentialKeys([KEY_OLD]).decrypt(token))
    assert envelope == {
        "v": 1,
        "id": str(info.id),
        "client_id": str(world.a.client_id),
        "service_name": info.service_name,
        "credential_type": "api_key",
        "secret": SECRET,
    }


def test_storing_the_same_service_and_type_twice_is_a_conflict(
    service: CredentialService, world: World
) -> None:
    svc = name()
    service.store(client_id=world.a.client_id, service_name=svc, secret="one")
    with pytest.raises(Conflict) as info:
        service.store(client_id=world.a.client_id, service_name=svc, secret=SECRET)
    assert SECRET not in str(info.value)


def test_an_empty_secret_is_refused(service: CredentialService, world: World) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        service.store(client_id=world.a.client_id, service_name=name(), secret="")


# --- binding ------------------------------------------------------------------------------------


def test_a_ciphertext_copied_into_another_tenants_row_does_not_decrypt(
    service: CredentialService, world: World, db_url: str
) -> None:
    svc = name()
    mine = service.store(client_id=world.a.client_id, service_name=svc, secret=SECRET)
    theirs = service.store(client_id=world.b.client_id, service_name=svc, secret="b-secret")
    force(db_url, theirs.id, raw(db_url, mine.id))
    with pytest.raises(CredentialBindingError, match="client_id") as info:
        service.read(theirs.id, client_id=world.b.client_id)
    assert SECRET not in str(info.value)
    assert str(world.a.client_id) not in str(info.value)  # says nothing about the other tenant


def test_a_ciphertext_copied_into_another_services_row_does_not_decrypt(
    service: CredentialService, world: World, db_url: str
) -> None:
    stripe = service.store(client_id=world.a.client_id, service_name=name("stripe"), secret=SECRET)
    openai = service.store(client_id=world.a.client_id, service_name=name("openai"), secret="o")
    force(db_url, openai.id, raw(db_url, stripe.id))
    with pytest.raises(CredentialBindingError, match="service_name"):
        service.read(openai.id, client_id=world.a.client_id)


def test_a_ciphertext_copied_into_another_credential_type_does_not_decrypt(
    service: CredentialService, world: World, db_url: str
) -> None:
    svc = name()
    key = service.store(client_id=world.a.client_id, service_name=svc, secret=SECRET)
    token = service.store(
        client_id=world.a.client_id, service_name=svc, secret="t", credential_type="oauth_token"
    )
    force(db_url, token.id, raw(db_url, key.id))
    with pytest.raises(CredentialBindingError, match="credential_type"):
        service.read(token.id, client_id=world.a.client_id)


def test_an_old_ciphertext_replayed_into_a_new_row_of_the_same_service_does_not_decrypt(
    service: CredentialService, world: World, db_url: str
) -> None:
    svc = name()
    old = service.store(client_id=world.a.client_id, service_name=svc, secret="revoked-key")
    stolen = raw(db_url, old.id)
    service.delete(old.id, client_id=world.a.client_id)
    new = service.store(client_id=world.a.client_id, service_name=svc, secret=SECRET)
    force(db_url, new.id, stolen)
    with pytest.raises(CredentialBindingError, match=r"its id differ"):
        service.read(new.id, client_id=world.a.client_id)


def test_a_tampered_ciphertext_does_not_decrypt(
    service: CredentialService, world: World, db_url: str
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    token = raw(db_url, info.id)
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    force(db_url, info.id, flipped)
    with pytest.raises(CredentialDecryptionError, match="does not verify"):
        service.read(info.id, client_id=world.a.client_id)


def test_a_ciphertext_under_an_unknown_key_does_not_decrypt(
    db: Database, service: CredentialService, world: World
) -> None:
    stranger = CredentialService(db, CredentialKeys([KEY_NEW]))
    info = stranger.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    with pytest.raises(CredentialDecryptionError, match="missing from ENCRYPTION_KEY"):
        service.read(info.id, client_id=world.a.client_id)


def test_a_row_that_is_not_a_fernet_token_does_not_decrypt(
    service: CredentialService, world: World
) -> None:
    seeded = world.a.rows["api_credentials"][0]  # 'gAAAA-ciphertext'
    with pytest.raises(CredentialDecryptionError):
        service.read(seeded, client_id=world.a.client_id)


def test_renaming_without_re_encrypting_is_refused_by_the_database(
    db: Database, service: CredentialService, world: World
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    with pytest.raises(CredentialBindingError) as exc, db.as_service_role() as conn:
        conn.execute(
            "update public.api_credentials set service_name = 'other' where id = %s", (info.id,)
        )
    assert exc.value.sqlstate == "RNC01"
    with pytest.raises(CredentialBindingError) as exc, db.as_user(world.a.users["admin"]) as conn:
        conn.execute(
            "update public.api_credentials set credential_type = 'secret' where id = %s",
            (info.id,),
        )
    assert exc.value.sqlstate == "RNC01"
    assert service.read(info.id, client_id=world.a.client_id).secret.reveal() == SECRET


def test_update_re_encrypts_and_may_rename(
    service: CredentialService, world: World, db_url: str
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret="first")
    before = raw(db_url, info.id)
    renamed = name("renamed")
    updated = service.update(
        info.id,
        client_id=world.a.client_id,
        secret=SECRET,
        service_name=renamed,
        credential_type="secret",
    )
    assert (updated.service_name, updated.credential_type) == (renamed, "secret")
    assert raw(db_url, info.id) != before
    cred = service.read(info.id, client_id=world.a.client_id)
    assert (cred.secret.reveal(), cred.service_name) == (SECRET, renamed)


def test_a_tenant_cannot_read_update_or_delete_another_tenants_credential(
    service: CredentialService, world: World
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    with pytest.raises(NotFound):
        service.read(info.id, client_id=world.b.client_id)
    with pytest.raises(NotFound):
        service.update(info.id, client_id=world.b.client_id, secret="x")
    with pytest.raises(NotFound):
        service.delete(info.id, client_id=world.b.client_id)
    assert service.read(info.id, client_id=world.a.client_id).secret.reveal() == SECRET


def test_delete_removes_the_credential(service: CredentialService, world: World) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    service.delete(info.id, client_id=world.a.client_id)
    with pytest.raises(NotFound):
        service.read(info.id, client_id=world.a.client_id)
    with pytest.raises(NotFound):
        service.delete(info.id, client_id=world.a.client_id)


# --- last_used_at -------------------------------------------------------------------------------


def test_read_records_last_used_at_and_keeps_updated_at(
    service: CredentialService, world: World
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    assert info.last_used_at is None
    cred = service.read(info.id, client_id=world.a.client_id)
    assert cred.last_used_at is not None
    assert cred.last_used_at >= info.created_at
    assert cred.updated_at == info.updated_at  # usage is not a change
    (listed,) = [c for c in service.list(client_id=world.a.client_id) if c.id == info.id]
    assert listed.last_used_at == cred.last_used_at


def test_a_refused_read_does_not_record_last_used_at(
    service: CredentialService, world: World, db_url: str
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    force(db_url, info.id, raw(db_url, info.id)[:-4] + "AAAA")
    with pytest.raises(CredentialDecryptionError):
        service.read(info.id, client_id=world.a.client_id)
    (listed,) = [c for c in service.list(client_id=world.a.client_id) if c.id == info.id]
    assert listed.last_used_at is None


def test_read_inside_the_callers_service_role_transaction(
    service: CredentialService, world: World, db: Database
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    with db.as_service_role() as conn:
        cred = service.read(info.id, client_id=world.a.client_id, conn=conn)
        row = conn.execute(
            "select last_used_at from public.api_credentials where id = %s", (info.id,)
        ).fetchone()
    assert cred.secret.reveal() == SECRET
    assert row == (cred.last_used_at,)


# --- list and who sees what ---------------------------------------------------------------------


def test_list_returns_metadata_of_one_tenant_without_ciphertext(
    service: CredentialService, world: World, db_url: str
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    listed = service.list(client_id=world.a.client_id)
    assert info.id in {c.id for c in listed}
    assert {c.client_id for c in listed} == {world.a.client_id}
    assert not any(hasattr(c, "encrypted_value") or hasattr(c, "secret") for c in listed)
    assert raw(db_url, info.id) not in repr(listed)


def test_the_backend_must_name_the_tenant_to_list(db: Database) -> None:
    with pytest.raises(InvalidInput, match="client_id is required"), db.as_service_role() as c:
        list_credentials(c)


def test_a_tenant_admin_lists_own_tenants_metadata_through_rls(
    service: CredentialService, world: World, db: Database
) -> None:
    mine = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    theirs = service.store(client_id=world.b.client_id, service_name=name(), secret="b")
    with db.as_user(world.a.users["admin"]) as conn:
        listed = list_credentials(conn)
        filtered = list_credentials(conn, client_id=world.b.client_id)
    ids = {c.id for c in listed}
    assert mine.id in ids
    assert theirs.id not in ids
    assert {c.client_id for c in listed} == {world.a.client_id}
    assert filtered == []


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_non_admins_list_nothing(
    service: CredentialService, world: World, db: Database, role: str
) -> None:
    service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    with db.as_user(world.a.users[role]) as conn:
        assert list_credentials(conn) == []


@pytest.mark.parametrize("actor", ["anon", "viewer", "member", "admin", "other"])
@pytest.mark.parametrize(
    "query",
    [
        "select encrypted_value from public.api_credentials",
        "select * from public.api_credentials",
        "select id from public.api_credentials where encrypted_value is not null",
        "update public.api_credentials set last_used_at = now() returning encrypted_value",
    ],
)
def test_api_users_never_obtain_the_ciphertext(
    service: CredentialService, world: World, db: Database, actor: str, query: str
) -> None:
    service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    with pytest.raises(PermissionDenied), db.as_claims(world.claims(actor)) as conn:
        conn.execute(query)


@pytest.mark.parametrize("actor", ["anon", "admin"])
def test_the_service_refuses_a_connection_acting_as_an_api_user(
    service: CredentialService, world: World, db: Database, actor: str
) -> None:
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    with db.connection() as conn, act_as(conn, world.claims(actor)):
        with pytest.raises(ConfigurationError, match="service_role"):
            service.read(info.id, client_id=world.a.client_id, conn=conn)
        with pytest.raises(ConfigurationError, match="service_role"):
            service.store(client_id=world.a.client_id, service_name=name(), secret="x", conn=conn)


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not-a-key", "key 1 of 1 is not a valid Fernet key"),
        (f"{KEY_NEW},{KEY_OLD[:-3]}", "key 2 of 2 is not a valid Fernet key"),
        (f"{KEY_NEW},,{KEY_OLD}", "key 2 of 3 is empty"),
        (f"{KEY_NEW},{KEY_OLD}!", "key 2 of 2 is not a valid Fernet key"),
    ],
    ids=["garbage", "truncated", "stray-comma", "bad-character"],
)
def test_invalid_key_material_is_a_configuration_error_that_never_shows_the_key(
    value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        CredentialKeys.from_string(value)
    for text in (str(info.value), repr(info.value)):
        assert KEY_NEW not in text
        assert KEY_OLD[:-3] not in text
        assert "not-a-key" not in text
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_a_missing_encryption_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEY is not set"):
        CredentialKeys.from_env({})


def test_several_keys_encrypt_with_the_first_and_decrypt_with_all() -> None:
    old = CredentialKeys([KEY_OLD])
    both = CredentialKeys.from_env({"ENCRYPTION_KEY": f" {KEY_NEW} , {KEY_OLD} "})
    legacy = old.encrypt(b"x")
    fresh = both.encrypt(b"y")
    assert both.decrypt(legacy) == b"x"
    assert (both.key_index(legacy), both.key_index(fresh)) == (1, 0)
    with pytest.raises(CredentialDecryptionError):
        old.decrypt(fresh)


# --- rotation -----------------------------------------------------------------------------------


@pytest.fixture
def fresh_db(admin_url: str, template_url: str) -> Iterator[tuple[Database, str, uuid.UUID]]:
    """An empty migrated database (no seeded fake ciphertexts) with one tenant."""
    template = template_url.partition("?")[0].rsplit("/", 1)[1]
    dbname = f"cred_rot_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, dbname, template=template)
    with psycopg.connect(url) as c:
        row = c.execute("insert into public.clients (name) values ('R') returning id").fetchone()
    assert row is not None
    with Database(url, min_size=1, max_size=4) as database:
        yield database, url, row[0]
    drop_database(admin_url, dbname)


class Interrupted(Exception):
    pass


def ciphertexts(url: str) -> dict[uuid.UUID, str]:
    with psycopg.connect(url) as c:
        return dict(c.execute("select id, encrypted_value from public.api_credentials").fetchall())


def seed_under_old_key(database: Database, client_id: uuid.UUID, count: int) -> dict[str, str]:
    old = CredentialService(database, CredentialKeys([KEY_OLD]))
    secrets = {f"svc{i:02d}": f"{SECRET}-{i}" for i in range(count)}
    for svc, secret in secrets.items():
        old.store(client_id=client_id, service_name=svc, secret=secret)
    return secrets


def test_rotation_interrupted_resumed_then_old_key_removed(
    fresh_db: tuple[Database, str, uuid.UUID],
) -> None:
    database, _, client_id = fresh_db
    secrets = seed_under_old_key(database, client_id, 7)
    both = CredentialKeys([KEY_NEW, KEY_OLD])

    def fail_after_two(report: RotationReport) -> None:
        if report.batches == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        rotate_credentials(database, both, batch_size=2, after_batch=fail_after_two)
    assert inspect_credentials(database, both).per_key == (4, 3)  # two committed batches

    resumed = rotate_credentials(database, both, batch_size=2)
    assert (resumed.examined, resumed.rotated, resumed.already_current) == (7, 3, 4)
    usage = inspect_credentials(database, both)
    assert usage.per_key == (7, 0)
    assert usage.old_keys_removable

    only_new = CredentialService(database, CredentialKeys([KEY_NEW]))
    read = {
        c.service_name: only_new.read(c.id, client_id=client_id).secret.reveal()
        for c in only_new.list(client_id=client_id)
    }
    assert read == secrets


def test_rotation_twice_changes_nothing_the_second_time(
    fresh_db: tuple[Database, str, uuid.UUID],
) -> None:
    database, url, client_id = fresh_db
    seed_under_old_key(database, client_id, 5)
    both = CredentialKeys([KEY_NEW, KEY_OLD])
    first = rotate_credentials(database, both, batch_size=3)
    assert (first.rotated, first.batches) == (5, 2)
    after_first = ciphertexts(url)
    second = rotate_credentials(database, both, batch_size=3)
    assert (second.rotated, second.already_current, second.undecryptable) == (0, 5, [])
    assert ciphertexts(url) == after_first


def test_rotation_reports_undecryptable_rows_and_leaves_them(
    fresh_db: tuple[Database, str, uuid.UUID],
) -> None:
    database, url, client_id = fresh_db
    seed_under_old_key(database, client_id, 2)
    with psycopg.connect(url) as c:
        row = c.execute(
            "insert into public.api_credentials (client_id, service_name, encrypted_value)"
            " values (%s, 'garbage', 'gAAAA-not-a-token') returning id",
            (client_id,),
        ).fetchone()
    assert row is not None
    report = rotate_credentials(database, CredentialKeys([KEY_NEW, KEY_OLD]))
    assert (report.rotated, report.undecryptable) == (2, [row[0]])
    assert ciphertexts(url)[row[0]] == "gAAAA-not-a-token"
    assert not inspect_credentials(database, CredentialKeys([KEY_NEW])).old_keys_removable


def test_rotation_waits_for_a_row_locked_by_a_concurrent_transaction(
    fresh_db: tuple[Database, str, uuid.UUID],
) -> None:
    database, url, client_id = fresh_db
    seed_under_old_key(database, client_id, 4)
    both = CredentialKeys([KEY_NEW, KEY_OLD])
    locked_id = min(ciphertexts(url))
    done: list[RotationReport] = []
    with psycopg.connect(url) as holder:
        holder.execute(
            "select 1 from public.api_credentials where id = %s for update", (locked_id,)
        )
        worker = threading.Thread(
            target=lambda: done.append(rotate_credentials(database, both, batch_size=2))
        )
        worker.start()
        # The first pass skips the locked row; the retry waits for it: commit only once it does.
        wait_for_lock_waiter(url, holder.info.backend_pid)
        holder.commit()
    worker.join(timeout=30)
    assert len(done) == 1
    assert (done[0].rotated, done[0].batches) == (4, 3)  # 2 batches + 1 retry of the locked row
    assert inspect_credentials(database, both).per_key == (4, 0)


def test_cli_rotates_and_checks(
    fresh_db: tuple[Database, str, uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database, url, client_id = fresh_db
    seed_under_old_key(database, client_id, 3)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ENCRYPTION_KEY", f"{KEY_NEW},{KEY_OLD}")
    assert main(["credentials", "check"]) == 1
    assert main(["credentials", "rotate", "--batch-size", "2"]) == 0
    assert main(["credentials", "check"]) == 0
    monkeypatch.setenv("ENCRYPTION_KEY", KEY_NEW)
    assert main(["credentials", "check"]) == 0
    out = capsys.readouterr()
    assert "3 re-encrypted" in out.out
    assert "old keys can be removed" in out.out
    for text in (out.out, out.err):
        assert KEY_NEW not in text
        assert KEY_OLD not in text


def test_cli_rejects_a_bad_key_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", "Zm9vYmFy-not-valid")
    assert main(["credentials", "rotate"]) == 2
    err = capsys.readouterr().err
    assert "not a valid Fernet key" in err
    assert "Zm9vYmFy-not-valid" not in err


# --- nothing leaks ------------------------------------------------------------------------------


def test_no_secret_or_key_in_reprs_errors_or_logs(
    db: Database, world: World, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = CredentialKeys([KEY_NEW, KEY_OLD])
    service = CredentialService(db, keys)
    info = service.store(client_id=world.a.client_id, service_name=name(), secret=SECRET)
    cred = service.read(info.id, client_id=world.a.client_id)
    service.update(info.id, client_id=world.a.client_id, secret=Secret(SECRET + "2"))
    other = service.store(client_id=world.b.client_id, service_name=name(), secret=SECRET + "3")
    force(db_url, other.id, raw(db_url, info.id))
    errors: list[Exception] = []
    failing: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: service.read(other.id, client_id=world.b.client_id), CredentialBindingError),
        (
            lambda: service.store(
                client_id=world.a.client_id, service_name=info.service_name, secret=SECRET
            ),
            Conflict,
        ),
        (lambda: CredentialKeys.from_string(f"{KEY_NEW},{KEY_OLD}x"), ConfigurationError),
    ]
    for call, expected in failing:
        with pytest.raises(expected) as exc:
            call()
        errors.append(exc.value)
    secret_obj = Secret(SECRET)
    texts = [
        repr(cred),
        str(cred),
        f"{cred}",
        repr(cred.secret),
        str(cred.secret),
        f"{secret_obj}",
        repr(keys),
        str(keys),
        repr(service),
        caplog.text,
        *(str(e) for e in errors),
        *(repr(e) for e in errors),
        *(repr(e.args) for e in errors),
    ]
    for text in texts:
        assert SECRET not in text
        assert KEY_NEW not in text
        assert KEY_OLD not in text
    assert "stored credential" in caplog.text  # the log is there, only without secrets
    assert cred.secret.reveal() == SECRET
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret_obj)
