"""Database-owned behaviour: profiles from auth.users, document history, updated_at, tenant
status and the role rules that the policies build on."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from renum_db.errors import InvalidTenantMetadata, PermissionDenied, wrap_errors
from tests.support import World, acting, add_auth_user, wait_until_blocked


def _one(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


# --- auth.users -> public.users ------------------------------------------------------------


def test_signing_up_with_app_metadata_creates_the_profile_in_that_client(
    conn: psycopg.Connection[Any], world: World
) -> None:
    uid = add_auth_user(conn, email="new@a.example", client_id=world.a.client_id, role="member")
    profile = conn.execute(
        "select client_id, role, email from public.users where id = %s", (uid,)
    ).fetchone()
    assert profile == (world.a.client_id, "member", "new@a.example")


def test_a_profile_without_role_metadata_is_a_viewer(
    conn: psycopg.Connection[Any], world: World
) -> None:
    uid = add_auth_user(conn, email="v@a.example", client_id=world.a.client_id)
    assert _one(conn, "select role from public.users where id = %s", uid) == "viewer"


def test_a_user_without_client_gets_a_profile_but_no_tenant_data(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with acting(conn, world.claims("nobody")):
        own = conn.execute("select id, client_id from public.users").fetchall()
        kbs = conn.execute("select id from public.knowledge_bases").fetchall()
        clients = conn.execute("select id from public.clients").fetchall()
    assert own == [(world.no_client_user, None)]
    assert kbs == []
    assert clients == []


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"client_id": "not-a-uuid"}, "is not a uuid"),
        ({"client_id": str(uuid.uuid4())}, "names no client"),
        ({"role": "owner"}, "is not one of viewer, member, admin"),
    ],
)
def test_bad_app_metadata_aborts_the_sign_up_with_rnu01(
    conn: psycopg.Connection[Any], meta: dict[str, str], message: str
) -> None:
    # GoTrue inserts as supabase_auth_admin; the suite runs as hosted Supabase's postgres, which
    # may not become that role (and needs not: the trigger fires whoever inserts).
    with pytest.raises(InvalidTenantMetadata, match=message), wrap_errors(), conn.transaction():
        conn.execute(
            "insert into auth.users (id, email, raw_app_meta_data) values (%s, %s, %s)",
            (uuid.uuid4(), "bad@example.com", json.dumps(meta)),
        )


def test_sign_in_and_email_change_are_copied_to_the_profile(
    conn: psycopg.Connection[Any], world: World
) -> None:
    uid = world.a.users["viewer"]
    conn.execute(
        "update auth.users set last_sign_in_at = '2026-01-02T03:04:05Z', email = 'moved@a.example' "
        "where id = %s",
        (uid,),
    )
    row = conn.execute(
        "select email, last_login = '2026-01-02T03:04:05Z'::timestamptz from public.users "
        "where id = %s",
        (uid,),
    ).fetchone()
    assert row == ("moved@a.example", True)


def test_deleting_the_auth_user_deletes_the_profile(
    conn: psycopg.Connection[Any], world: World
) -> None:
    uid = world.a.users["viewer"]
    conn.execute("delete from auth.users where id = %s", (uid,))
    assert _one(conn, "select count(*) from public.users where id = %s", uid) == 0


# --- roles and tenant status ---------------------------------------------------------------


def test_an_admin_cannot_change_their_own_role(conn: psycopg.Connection[Any], world: World) -> None:
    with acting(conn, world.claims("admin")):
        changed = conn.execute(
            "update public.users set role = 'viewer' where id = %s", (world.a.users["admin"],)
        ).rowcount
    assert changed == 0


def test_an_admin_promotes_a_viewer_of_their_tenant(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with acting(conn, world.claims("admin")):
        conn.execute(
            "update public.users set role = 'member' where id = %s", (world.a.users["viewer"],)
        )
    with acting(conn, world.claims("viewer")):
        conn.execute(
            "insert into public.knowledge_bases (name) values ('written by a promoted viewer')"
        )


def test_a_user_cannot_change_their_own_client(conn: psycopg.Connection[Any], world: World) -> None:
    with (
        pytest.raises(PermissionDenied, match="permission denied"),
        acting(conn, world.claims("admin")),
    ):
        conn.execute(
            "update public.users set client_id = %s where id = %s",
            (world.b.client_id, world.a.users["admin"]),
        )


def test_a_suspended_client_gives_its_users_no_access(
    conn: psycopg.Connection[Any], world: World
) -> None:
    conn.execute(
        "update public.clients set status = 'suspended' where id = %s", (world.a.client_id,)
    )
    with acting(conn, world.claims("admin")):
        assert conn.execute("select id from public.knowledge_bases").fetchall() == []
        assert conn.execute("select id from public.clients").fetchall() == []


def test_client_id_defaults_to_the_callers_tenant(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with acting(conn, world.claims("member")):
        kb = _one(
            conn, "insert into public.knowledge_bases (name) values ('d') returning client_id"
        )
    assert kb == world.a.client_id


# --- updated_at ----------------------------------------------------------------------------


def test_updated_at_is_set_by_the_database_on_update(
    conn: psycopg.Connection[Any], world: World
) -> None:
    kb = world.a.rows["knowledge_bases"][0]
    before = _one(conn, "select updated_at from public.knowledge_bases where id = %s", kb)
    conn.execute("update public.knowledge_bases set updated_at = '2000-01-01' where id = %s", (kb,))
    after = _one(conn, "select updated_at from public.knowledge_bases where id = %s", kb)
    assert after.year != 2000
    assert after >= before


# --- document_versions ---------------------------------------------------------------------


def _versions(conn: psycopg.Connection[Any], doc: uuid.UUID) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select version_number, change_type, changed_by, change_description "
        "from public.document_versions where document_id = %s order by version_number",
        (doc,),
    ).fetchall()


def test_document_changes_are_versioned_with_the_author(
    conn: psycopg.Connection[Any], world: World
) -> None:
    member = world.a.users["member"]
    with acting(conn, world.claims("member")):
        doc = _one(
            conn,
            "insert into public.documents (collection_id, name) values (%s, 'v') returning id",
            world.a.rows["knowledge_collections"][0],
        )
        conn.execute("update public.documents set status = 'ready' where id = %s", (doc,))
        conn.execute("update public.documents set name = name where id = %s", (doc,))  # no change
        conn.execute("delete from public.documents where id = %s", (doc,))
    assert _versions(conn, doc) == [
        (1, "created", member, None),
        (2, "updated", member, "changed: status"),
        (3, "deleted", member, None),
    ]


def test_history_outlives_the_document_and_stays_in_its_tenant(
    conn: psycopg.Connection[Any], world: World
) -> None:
    doc = world.a.rows["documents"][0]
    with acting(conn, world.claims("member")):
        conn.execute("delete from public.documents where id = %s", (doc,))
        mine = conn.execute(
            "select count(*) from public.document_versions where document_id = %s", (doc,)
        ).fetchone()
    with acting(conn, world.claims("other")):
        theirs = conn.execute(
            "select count(*) from public.document_versions where document_id = %s", (doc,)
        ).fetchone()
    assert mine == (2,)
    assert theirs == (0,)


def test_backend_changes_are_versioned_without_an_author(
    conn: psycopg.Connection[Any], world: World
) -> None:
    doc = world.a.rows["documents"][1]
    with acting(conn, world.claims("service")):
        conn.execute("update public.documents set metadata = '{\"k\": 1}' where id = %s", (doc,))
    assert _versions(conn, doc)[-1] == (2, "updated", None, "changed: metadata")


def test_concurrent_updates_get_distinct_version_numbers(db_url: str, world: World) -> None:
    """Two transactions updating one document serialise on its row lock: versions 2 and 3."""
    with psycopg.connect(db_url) as setup:
        doc = _one(
            setup,
            "insert into public.documents (client_id, collection_id, name) values (%s, %s, 'c') "
            "returning id",
            world.a.client_id,
            world.a.rows["knowledge_collections"][1],
        )
        setup.commit()
    with psycopg.connect(db_url) as c1, psycopg.connect(db_url) as c2:
        c1.execute("update public.documents set name = 'one' where id = %s", (doc,))
        c2.execute("set lock_timeout = '5s'")
        c2.commit()
        # c2 blocks on the row lock until c1 commits; run it in a thread.
        import threading

        errors: list[BaseException] = []

        def second() -> None:
            try:
                c2.execute("update public.documents set name = 'two' where id = %s", (doc,))
                c2.commit()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        t = threading.Thread(target=second)
        t.start()
        wait_until_blocked(db_url, c2.info.backend_pid)  # c2 waits on c1's row lock
        c1.commit()
        t.join(10)
        assert not errors
        numbers = [r[0] for r in _versions(c1, doc)]
    assert numbers == [1, 2, 3]
