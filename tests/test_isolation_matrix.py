"""The isolation matrix: every table in `public` x select/insert/update/delete x every actor.

Actors: anon, `other` (an admin of tenant B), viewer/member/admin of tenant A, service_role, and
(tests.support.EXTRA_ACTORS) A's member through a custom API role, B's viewer and member, a user
with no client, an admin of a suspended client, and admins of A who were banned, soft-deleted or
suspended. Each action targets tenant A's rows (or inserts a row for tenant A) and must end
exactly as EXPECTED says for the actor's column (the extra actors share the column of `member`
or `other`): an int is the number of A rows returned/affected, PRIVILEGE/RLS a 42501 of that
kind. The table list comes from the catalog, so a table added without expectations fails here.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from renum_db.errors import RenumDBError
from tests.support import (
    ACTORS,
    ALL_ACTORS,
    PRIVILEGE,
    RLS,
    Denied,
    World,
    acting,
    claims_for,
    classify,
    column_of,
)

P, R = PRIVILEGE, RLS
Outcome = int | Denied
#            anon other viewer member admin service
KNOWLEDGE = {
    "select": (P, 0, "n", "n", "n", "n"),
    "insert": (P, R, R, 1, 1, 1),
    "update": (P, 0, 0, "n", "n", "n"),
    "delete": (P, 0, 0, "n", "n", "n"),
}
EXPECTED: dict[str, dict[str, tuple[Any, ...]]] = {
    "clients": {
        "select": (P, 0, 1, 1, 1, 1),
        "insert": (P, P, P, P, P, 1),
        "update": (P, 0, 0, 0, 1, 1),
        "delete": (P, P, P, P, P, 1),
    },
    "users": {  # admins may change other users' roles, never their own
        "select": (P, 0, 3, 3, 3, 3),
        "insert": (P, P, P, P, P, 1),
        "update": (P, 0, 0, 0, 2, 3),
        "delete": (P, P, P, P, P, 3),
    },
    "knowledge_bases": KNOWLEDGE,
    "knowledge_collections": KNOWLEDGE,
    "documents": KNOWLEDGE,
    "document_chunks": KNOWLEDGE,
    "document_versions": {  # history: written by trigger only, even the backend cannot forge it
        "select": (P, 0, "n", "n", "n", "n"),
        "insert": (P, P, P, P, P, P),
        "update": (P, P, P, P, P, P),
        "delete": (P, P, P, P, P, P),
    },
    "document_usage_stats": {
        "select": (P, 0, "n", "n", "n", "n"),
        "insert": (P, P, P, P, P, 1),
        "update": (P, P, P, P, P, "n"),
        "delete": (P, P, P, P, P, "n"),
    },
    "agents": {
        "select": (P, 0, "n", "n", "n", "n"),
        "insert": (P, R, R, R, 1, 1),
        "update": (P, 0, 0, 0, "n", "n"),
        "delete": (P, 0, 0, 0, "n", "n"),
    },
    "agent_executions": {  # users may only cancel (status -> cancelled): their own, or admins
        "select": (P, 0, "n", "n", "n", "n"),
        "insert": (P, R, R, 1, 1, 1),
        "update": (P, 0, 0, R, R, "n"),
        "delete": (P, P, P, P, P, "n"),
    },
    "api_credentials": {  # metadata for admins only; ciphertext for the backend only
        "select": (P, 0, 0, 0, "n", "n"),
        "insert": (P, P, P, P, P, 1),
        "update": (P, 0, 0, 0, "n", "n"),
        "delete": (P, 0, 0, 0, "n", "n"),
    },
    "embedding_cache": {  # users of the tenant read; only the backend writes (no poisoning)
        "select": (P, 0, "n", "n", "n", "n"),
        "insert": (P, P, P, P, P, 1),
        "update": (P, P, P, P, P, "n"),
        "delete": (P, P, P, P, P, "n"),
    },
    "investigations": {  # owner-only: each A user owns one of A's three investigations
        "select": (P, 0, 1, 1, 1, 3),
        "insert": (P, R, 1, 1, 1, 1),
        "update": (P, 0, 1, 1, 1, 3),
        "delete": (P, 0, 1, 1, 1, 3),
    },
}

# A column each table lets its writers update (set col = col changes nothing but proves access).
UPDATE_COLUMN = {
    "clients": "name",
    "users": "role",
    "knowledge_bases": "name",
    "knowledge_collections": "name",
    "documents": "name",
    "document_chunks": "content",
    "document_versions": "change_description",
    "document_usage_stats": "usage_count",
    "agents": "name",
    "agent_executions": "status",
    "api_credentials": "service_name",
    "investigations": "query",
    "embedding_cache": "model",
}


def insert_values(table: str, w: World, actor: str) -> dict[str, Any]:
    """Columns for a new row of tenant A; API users never send columns they may not write."""
    a = w.a
    c = a.client_id
    service = actor == "service"
    by_table: dict[str, dict[str, Any]] = {
        "clients": {"name": "New tenant"},
        "users": {"id": w.orphan_auth_user, "client_id": c, "role": "viewer"},
        "knowledge_bases": {"client_id": c, "name": f"kb-{uuid.uuid4()}"},
        "knowledge_collections": {
            "client_id": c,
            "knowledge_base_id": a.rows["knowledge_bases"][0],
            "name": "new",
        },
        "documents": {
            "client_id": c,
            "collection_id": a.rows["knowledge_collections"][0],
            "name": "new doc",
        },
        "document_chunks": {
            "client_id": c,
            "document_id": a.rows["documents"][0],
            "content": "new",
            "chunk_index": 99,
        },
        "document_versions": {
            "client_id": c,
            "document_id": a.rows["documents"][0],
            "version_number": 99,
            "change_type": "updated",
            "snapshot": "{}",
        },
        "document_usage_stats": {
            "client_id": c,
            "document_id": a.rows["documents"][1],
            "chunk_id": a.rows["document_chunks"][1],
            "agent_id": a.rows["agents"][0],
        },
        "agents": {"client_id": c, "name": f"agent-{uuid.uuid4()}"},
        "agent_executions": {"client_id": c, "agent_id": a.rows["agents"][0]},
        "api_credentials": {"client_id": c, "service_name": "new", "encrypted_value": "x"},
        "investigations": {"client_id": c, "query": "new", "data_source": "contracts"},
        "embedding_cache": {
            "client_id": c,
            "model": "test-model:3",
            "content_hash": hashlib.sha256(b"new").digest(),
            "embedding": "[1,2,3]",
        },
    }
    values = dict(by_table[table])
    if service and table in ("agent_executions", "investigations"):
        values["user_id"] = a.users["member"]
    return values


def run(conn: psycopg.Connection[Any], table: str, op: str, w: World, actor: str) -> Outcome:
    ids = [str(i) for i in w.a.rows[table]]
    t = sql.Identifier("public", table)
    key = sql.Identifier("id")
    if op == "select":
        query = sql.SQL("select {} from {} where {} = any(%s::uuid[])").format(key, t, key)
        return len(conn.execute(query, (ids,)).fetchall())
    if op == "update":
        col = sql.Identifier(UPDATE_COLUMN[table])
        query = sql.SQL("update {} set {} = {} where {} = any(%s::uuid[])").format(
            t, col, col, key, key
        )
        return conn.execute(query, (ids,)).rowcount
    if op == "delete":
        query = sql.SQL("delete from {} where {} = any(%s::uuid[])").format(t, key, key)
        return conn.execute(query, (ids,)).rowcount
    values = insert_values(table, w, actor)
    query = sql.SQL("insert into {} ({}) values ({})").format(
        t,
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    return conn.execute(query, list(values.values())).rowcount


def public_tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p')"
    ).fetchall()
    return {r[0] for r in rows}


def test_every_public_table_has_expectations(conn: psycopg.Connection[Any]) -> None:
    tables = public_tables(conn)
    assert tables == set(EXPECTED), (
        f"tables without expectations: {sorted(tables - set(EXPECTED))}; "
        f"expectations without table: {sorted(set(EXPECTED) - tables)}"
    )


CASES = [
    pytest.param(table, op, actor, id=f"{table}-{op}-{actor}")
    for table in EXPECTED
    for op in ("select", "insert", "update", "delete")
    for actor in ALL_ACTORS
]


@pytest.mark.parametrize(("table", "op", "actor"), CASES)
def test_isolation(
    conn: psycopg.Connection[Any], world: World, table: str, op: str, actor: str
) -> None:
    expected = EXPECTED[table][op][ACTORS.index(column_of(actor))]
    if expected == "n":
        expected = len(world.a.rows[table])
    claims = claims_for(conn, world, actor)
    try:
        with acting(conn, claims):
            outcome: Outcome | str = run(conn, table, op, world, actor)
    except RenumDBError as exc:
        outcome = classify(exc)
    assert outcome == expected


@pytest.mark.parametrize(
    "actor", ["viewer", "member", "admin", "custom", "other", "other_viewer", "other_member"]
)
def test_tenant_users_never_see_another_tenants_rows(
    conn: psycopg.Connection[Any], world: World, actor: str
) -> None:
    """Unfiltered reads of every readable table return no row of the other tenant."""
    in_b = column_of(actor) == "other"
    mine, theirs = (world.b, world.a) if in_b else (world.a, world.b)
    with acting(conn, claims_for(conn, world, actor)):
        for table in EXPECTED:
            t = sql.Identifier("public", table)
            try:
                with conn.transaction():
                    seen = {r[0] for r in conn.execute(sql.SQL("select id from {}").format(t))}
            except psycopg.errors.InsufficientPrivilege:
                continue
            assert not seen & set(theirs.rows[table]), table
            if table not in ("api_credentials", "investigations"):
                assert seen >= set(mine.rows[table]) or table == "clients", table


@pytest.mark.parametrize("actor", ["nobody", "suspended_client", "banned", "soft_deleted"])
def test_users_without_an_active_tenant_see_no_row_of_any_table(
    conn: psycopg.Connection[Any], world: World, actor: str
) -> None:
    """Unfiltered reads of every table: nothing at all (a user with no client or a suspended
    client still sees their own profile; a revoked one does not)."""
    claims = claims_for(conn, world, actor)
    assert claims is not None
    with acting(conn, claims):
        for table in EXPECTED:
            t = sql.Identifier("public", table)
            try:
                with conn.transaction():
                    seen = {r[0] for r in conn.execute(sql.SQL("select id from {}").format(t))}
            except psycopg.errors.InsufficientPrivilege:
                continue
            keeps_profile = actor in ("nobody", "suspended_client")
            own = {uuid.UUID(claims["sub"])} if table == "users" and keeps_profile else set()
            assert seen == own, table
