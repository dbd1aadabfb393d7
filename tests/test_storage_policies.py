"""The `documents` bucket policies of migration 0012 on storage.objects, run as Storage runs them:
the caller's JWT role and claims set transaction-locally (`acting`), then plain SQL on
storage.objects.

Objects: A's folder (`<A>/...`), B's folder (`<B>/...`) and no folder (`loose.txt`) in the
documents bucket, and A's folder in another app's bucket, which these policies must not open.
Actors: anon, other (admin of tenant B), viewer/member/admin of A, service_role, and nobody (a
user without a client).
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

import psycopg
import pytest

from renum_db.errors import PermissionDenied, RenumDBError, wrap_errors
from tests.support import RLS, Denied, World, acting, allow_storage_delete, classify
from tests.test_structure import unwrapped_helper_calls

Conn = psycopg.Connection[Any]
Outcome = int | Denied
ACTORS = ("anon", "other", "viewer", "member", "admin", "service", "nobody")
OTHER_BUCKET = "someone-elses-app"
POLICIES = {
    "renum_documents_objects_select": "SELECT",
    "renum_documents_objects_insert": "INSERT",
    "renum_documents_objects_update": "UPDATE",
    "renum_documents_objects_delete": "DELETE",
}


def folder(world: World, where: str) -> str:
    """The object name prefix for `where`: A, B or none."""
    if where == "A":
        return f"{world.a.client_id}/"
    if where == "B":
        return f"{world.b.client_id}/"
    return ""


@pytest.fixture
def objects(conn: Conn, world: World) -> dict[str, str]:
    """One object per place, inserted as the superuser (rolled back with the test)."""
    conn.execute(
        "insert into storage.buckets (id, name, public) values (%s, %s, false)",
        (OTHER_BUCKET, OTHER_BUCKET),
    )
    names = {
        "A": f"{folder(world, 'A')}{uuid.uuid4()}/a.txt",
        "B": f"{folder(world, 'B')}{uuid.uuid4()}/b.txt",
        "none": "loose.txt",
        "other-bucket": f"{folder(world, 'A')}{uuid.uuid4()}/elsewhere.txt",
    }
    for place, name in names.items():
        bucket = OTHER_BUCKET if place == "other-bucket" else "documents"
        conn.execute(
            "insert into storage.objects (bucket_id, name) values (%s, %s)", (bucket, name)
        )
    return names


def run(conn: Conn, claims: dict[str, Any] | None, query: str, params: tuple[Any, ...]) -> Outcome:
    """The number of rows returned or affected, or the 42501 kind."""
    try:
        with acting(conn, claims):
            cur = conn.execute(query, params)
            return cur.rowcount
    except RenumDBError as exc:
        outcome = classify(exc)
        assert isinstance(outcome, Denied), outcome
        return outcome


# --- the bucket and the catalog -------------------------------------------------------------------


def test_the_documents_bucket_exists_and_is_private(conn: Conn) -> None:
    row = conn.execute("select name, public from storage.buckets where id = 'documents'").fetchone()
    assert row == ("documents", False)


def test_there_is_one_policy_per_operation_for_authenticated_only(conn: Conn) -> None:
    rows = conn.execute(
        """
        select policyname, cmd, roles::text[], permissive from pg_catalog.pg_policies
        where schemaname = 'storage' and tablename = 'objects' and policyname like 'renum\\_%%'
        """
    ).fetchall()
    assert {r[0]: r[1] for r in rows} == POLICIES
    assert all(r[2] == ["authenticated"] and r[3] == "PERMISSIVE" for r in rows)


def test_every_policy_is_limited_to_the_documents_bucket(conn: Conn) -> None:
    rows = conn.execute(
        """
        select policyname, qual, with_check from pg_catalog.pg_policies
        where schemaname = 'storage' and policyname like 'renum\\_%%'
        """
    ).fetchall()
    assert rows
    for name, qual, check in rows:
        for expression in (qual, check):
            if expression is not None:
                assert "bucket_id = 'documents'::text" in expression, name


def test_the_tenant_helper_runs_once_per_statement_in_every_policy(conn: Conn) -> None:
    rows = conn.execute(
        "select policyname, qual, with_check from pg_catalog.pg_policies "
        "where schemaname = 'storage' and policyname like 'renum\\_%%'"
    ).fetchall()
    assert rows
    for name, qual, check in rows:
        assert unwrapped_helper_calls(qual) == [], name
        assert unwrapped_helper_calls(check) == [], name


# --- select ---------------------------------------------------------------------------------------

#                  anon other viewer member admin service nobody
SELECT: dict[str, tuple[int, ...]] = {
    "A": (0, 0, 1, 1, 1, 1, 0),
    "B": (0, 1, 0, 0, 0, 1, 0),
    "none": (0, 0, 0, 0, 0, 1, 0),
    "other-bucket": (0, 0, 0, 0, 0, 1, 0),
}


@pytest.mark.parametrize("place", sorted(SELECT))
@pytest.mark.parametrize("actor", ACTORS)
def test_select(conn: Conn, world: World, objects: dict[str, str], place: str, actor: str) -> None:
    expected = SELECT[place][ACTORS.index(actor)]
    got = run(
        conn,
        world.claims(actor),
        "select id from storage.objects where name = %s",
        (objects[place],),
    )
    assert got == expected


# --- insert ---------------------------------------------------------------------------------------

#                  anon other viewer member admin service nobody
INSERT: dict[str, tuple[Outcome, ...]] = {
    "A": (RLS, RLS, RLS, 1, 1, 1, RLS),
    "B": (RLS, 1, RLS, RLS, RLS, 1, RLS),
    "none": (RLS, RLS, RLS, RLS, RLS, 1, RLS),
}


@pytest.mark.parametrize("place", sorted(INSERT))
@pytest.mark.parametrize("actor", ACTORS)
def test_insert_into_the_documents_bucket(
    conn: Conn, world: World, objects: dict[str, str], place: str, actor: str
) -> None:
    del objects
    expected = INSERT[place][ACTORS.index(actor)]
    name = f"{folder(world, place)}{uuid.uuid4()}/new.txt"
    got = run(
        conn,
        world.claims(actor),
        "insert into storage.objects (bucket_id, name) values ('documents', %s)",
        (name,),
    )
    assert got == expected


@pytest.mark.parametrize("actor", ["viewer", "member", "admin"])
def test_these_policies_let_no_one_into_another_bucket(
    conn: Conn, world: World, objects: dict[str, str], actor: str
) -> None:
    del objects
    name = f"{folder(world, 'A')}{uuid.uuid4()}/new.txt"
    got = run(
        conn,
        world.claims(actor),
        "insert into storage.objects (bucket_id, name) values (%s, %s)",
        (OTHER_BUCKET, name),
    )
    assert got == RLS


def test_an_upload_path_with_the_tenant_id_further_down_is_refused(
    conn: Conn, world: World
) -> None:
    name = f"uploads/{world.a.client_id}/x.txt"
    got = run(
        conn,
        world.claims("member"),
        "insert into storage.objects (bucket_id, name) values ('documents', %s)",
        (name,),
    )
    assert got == RLS


def test_a_member_of_a_suspended_client_can_neither_read_nor_write(
    conn: Conn, world: World, objects: dict[str, str]
) -> None:
    conn.execute(
        "update public.clients set status = 'suspended' where id = %s", (world.a.client_id,)
    )
    claims = world.claims("member")
    assert run(conn, claims, "select 1 from storage.objects where name = %s", (objects["A"],)) == 0
    name = f"{folder(world, 'A')}{uuid.uuid4()}/new.txt"
    insert = "insert into storage.objects (bucket_id, name) values ('documents', %s)"
    assert run(conn, claims, insert, (name,)) == RLS


# --- update ---------------------------------------------------------------------------------------

#                  anon other viewer member admin service nobody
UPDATE: dict[str, tuple[int, ...]] = {
    "A": (0, 0, 0, 1, 1, 1, 0),
    "B": (0, 1, 0, 0, 0, 1, 0),
    "none": (0, 0, 0, 0, 0, 1, 0),
    "other-bucket": (0, 0, 0, 0, 0, 1, 0),
}


@pytest.mark.parametrize("place", sorted(UPDATE))
@pytest.mark.parametrize("actor", ACTORS)
def test_update_in_place(
    conn: Conn, world: World, objects: dict[str, str], place: str, actor: str
) -> None:
    expected = UPDATE[place][ACTORS.index(actor)]
    got = run(
        conn,
        world.claims(actor),
        "update storage.objects set metadata = '{\"touched\": true}' where name = %s",
        (objects[place],),
    )
    assert got == expected


@pytest.mark.parametrize(
    ("actor", "target", "expected"),
    [
        ("member", "A", 1),  # a move inside the own folder
        ("member", "B", RLS),  # out of the own folder: the with check refuses
        ("member", "none", RLS),
        ("admin", "B", RLS),
        ("service", "B", 1),
    ],
)
def test_moving_an_object_of_a(
    conn: Conn,
    world: World,
    objects: dict[str, str],
    actor: str,
    target: str,
    expected: Outcome,
) -> None:
    new_name = f"{folder(world, target)}{uuid.uuid4()}/moved.txt"
    got = run(
        conn,
        world.claims(actor),
        "update storage.objects set name = %s where name = %s",
        (new_name, objects["A"]),
    )
    assert got == expected


def test_moving_an_object_of_a_to_another_bucket_is_refused(
    conn: Conn, world: World, objects: dict[str, str]
) -> None:
    got = run(
        conn,
        world.claims("member"),
        "update storage.objects set bucket_id = %s where name = %s",
        (OTHER_BUCKET, objects["A"]),
    )
    assert got == RLS


# --- delete ---------------------------------------------------------------------------------------

DELETE = UPDATE


@pytest.mark.parametrize("place", sorted(DELETE))
@pytest.mark.parametrize("actor", ACTORS)
def test_delete(conn: Conn, world: World, objects: dict[str, str], place: str, actor: str) -> None:
    """A delete through the Storage service's path (storage.allow_delete_query set)."""
    expected = DELETE[place][ACTORS.index(actor)]
    allow_storage_delete(conn)
    got = run(
        conn, world.claims(actor), "delete from storage.objects where name = %s", (objects[place],)
    )
    assert got == expected


@pytest.mark.parametrize("actor", [*ACTORS, "postgres"])
def test_a_direct_delete_outside_the_storage_service_is_refused(
    conn: Conn, world: World, objects: dict[str, str], actor: str
) -> None:
    """As on Supabase: storage.protect_objects_delete refuses any DELETE that did not come
    through the Storage service, whoever asks (postgres included; RLS is not even consulted)."""
    as_actor = nullcontext() if actor == "postgres" else acting(conn, world.claims(actor))
    with (
        pytest.raises(PermissionDenied, match="direct deletion"),
        wrap_errors(),
        conn.transaction(),
        as_actor,
    ):
        conn.execute("delete from storage.objects where name = %s", (objects["A"],))
