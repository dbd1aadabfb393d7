"""A row can never point into another tenant, whoever writes it: composite foreign keys
(client_id, parent_id) -> parent (client_id, id) reject it even for service_role, and API users
meet RLS first."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from renum_db.errors import PermissionDenied, ReferenceViolation, TenantMoveForbidden
from tests.support import World, acting

# (table, parent column, parent table, extra columns) for a child of tenant A pointing at B.
CHILDREN = [
    ("knowledge_collections", "knowledge_base_id", "knowledge_bases", {"name": "x"}),
    ("documents", "collection_id", "knowledge_collections", {"name": "x"}),
    ("document_chunks", "document_id", "documents", {"content": "x", "chunk_index": 7}),
    ("agent_executions", "agent_id", "agents", {}),
]


def _insert(conn: psycopg.Connection[Any], table: str, values: dict[str, Any]) -> None:
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f"insert into public.{table} ({cols}) values ({marks})", list(values.values()))


@pytest.mark.parametrize(("table", "fk", "parent", "extra"), CHILDREN, ids=[c[0] for c in CHILDREN])
def test_service_role_cannot_attach_a_child_to_another_tenants_parent(
    conn: psycopg.Connection[Any],
    world: World,
    table: str,
    fk: str,
    parent: str,
    extra: dict[str, Any],
) -> None:
    values = {"client_id": world.a.client_id, fk: world.b.rows[parent][0], **extra}
    with pytest.raises(ReferenceViolation) as err, acting(conn, world.claims("service")):
        _insert(conn, table, values)
    assert err.value.sqlstate == "23503"


@pytest.mark.parametrize(("table", "fk", "parent", "extra"), CHILDREN, ids=[c[0] for c in CHILDREN])
def test_member_cannot_attach_a_child_to_another_tenants_parent(
    conn: psycopg.Connection[Any],
    world: World,
    table: str,
    fk: str,
    parent: str,
    extra: dict[str, Any],
) -> None:
    # Own client_id passes RLS; the parent of tenant B fails the composite foreign key.
    values = {"client_id": world.a.client_id, fk: world.b.rows[parent][0], **extra}
    with pytest.raises(ReferenceViolation), acting(conn, world.claims("member")):
        _insert(conn, table, values)


def test_member_cannot_write_a_row_into_another_tenant(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with (
        pytest.raises(PermissionDenied, match="row-level security"),
        acting(conn, world.claims("member")),
    ):
        _insert(conn, "knowledge_bases", {"client_id": world.b.client_id, "name": "intruder"})


def test_member_cannot_move_a_row_to_another_tenant(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with (
        pytest.raises(PermissionDenied, match="permission denied"),
        acting(conn, world.claims("admin")),
    ):
        conn.execute(
            "update public.knowledge_bases set client_id = %s where id = %s",
            (world.b.client_id, world.a.rows["knowledge_bases"][0]),
        )


def test_service_role_cannot_move_a_leaf_row_to_another_tenant(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with pytest.raises(TenantMoveForbidden) as err, acting(conn, world.claims("service")):
        conn.execute(
            "update public.api_credentials set client_id = %s where id = %s",
            (world.b.client_id, world.a.rows["api_credentials"][0]),
        )
    assert err.value.sqlstate == "RNT01"


def test_service_role_cannot_start_an_execution_for_a_user_of_another_tenant(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with pytest.raises(ReferenceViolation), acting(conn, world.claims("service")):
        _insert(
            conn,
            "agent_executions",
            {
                "client_id": world.a.client_id,
                "agent_id": world.a.rows["agents"][0],
                "user_id": world.b.users["member"],
            },
        )


def test_usage_stats_cannot_mix_a_chunk_of_one_tenant_with_an_agent_of_another(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with pytest.raises(ReferenceViolation), acting(conn, world.claims("service")):
        _insert(
            conn,
            "document_usage_stats",
            {
                "client_id": world.a.client_id,
                "document_id": world.a.rows["documents"][0],
                "chunk_id": world.a.rows["document_chunks"][0],
                "agent_id": world.b.rows["agents"][0],
            },
        )


def test_an_investigation_belongs_to_its_owners_client(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with pytest.raises(ReferenceViolation), acting(conn, world.claims("service")):
        _insert(
            conn,
            "investigations",
            {
                "client_id": world.a.client_id,
                "user_id": world.b.users["viewer"],
                "query": "q",
                "data_source": "contracts",
            },
        )


def test_deleting_a_client_removes_all_its_data_and_nothing_else(
    conn: psycopg.Connection[Any], world: World
) -> None:
    with acting(conn, world.claims("service")):
        conn.execute("delete from public.clients where id = %s", (world.a.client_id,))
    tables = [t for t in world.a.rows if t not in ("clients", "users")]
    for table in tables:
        row = conn.execute(
            f"select count(*) filter (where client_id = %s),"
            f" count(*) filter (where client_id = %s) from public.{table}",
            (world.a.client_id, world.b.client_id),
        ).fetchone()
        assert row is not None
        assert row[0] == 0, table
        assert row[1] == len(world.b.rows[table]), table
    # Profiles survive without a tenant (their auth users still exist).
    row = conn.execute(
        "select count(*) from public.users where id = any(%s) and client_id is null",
        (list(world.a.users.values()),),
    ).fetchone()
    assert row == (3,)
