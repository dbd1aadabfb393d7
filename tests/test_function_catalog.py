"""Every function in schema `public` (the RPC surface PostgREST exposes to browsers) and in schema
`backend` (the backend's entry points) must be tested as anon, another tenant's user, viewer,
member, admin and service_role. Test modules declare the functions they cover that way in
module-level `EXPOSED_FUNCTIONS` (public) and `BACKEND_FUNCTIONS` (backend) mappings; this test
fails when a function is added to either schema without such coverage."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import psycopg
import pytest


def covered_functions(attribute: str) -> set[str]:
    names: set[str] = set()
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        names.update(getattr(module, attribute, {}))
    return names


@pytest.mark.parametrize(
    ("schema", "attribute"), [("public", "EXPOSED_FUNCTIONS"), ("backend", "BACKEND_FUNCTIONS")]
)
def test_every_public_and_backend_function_is_tested_for_every_actor(
    conn: psycopg.Connection[Any], schema: str, attribute: str
) -> None:
    rows = conn.execute(
        "select p.proname from pg_catalog.pg_proc as p "
        "join pg_catalog.pg_namespace as n on n.oid = p.pronamespace "
        "where n.nspname = %s",
        (schema,),
    ).fetchall()
    exposed = {r[0] for r in rows}
    assert exposed, f"no function in {schema}: the check would be vacuous"
    assert exposed == covered_functions(attribute)


def test_only_service_role_may_use_the_backend_schema(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select r.rolname from pg_catalog.pg_roles as r "
        "where r.rolname in ('anon', 'authenticated', 'service_role') "
        "and pg_catalog.has_schema_privilege(r.rolname, 'backend', 'usage') order by 1"
    ).fetchall()
    assert rows == [("service_role",)]


def test_no_backend_function_is_executable_by_browser_roles(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select p.oid::regprocedure::text, r.rolname from pg_catalog.pg_proc as p "
        "join pg_catalog.pg_namespace as n on n.oid = p.pronamespace "
        "cross join pg_catalog.pg_roles as r "
        "where n.nspname = 'backend' and r.rolname in ('anon', 'authenticated') "
        "and pg_catalog.has_function_privilege(r.rolname, p.oid, 'execute')"
    ).fetchall()
    assert rows == []


def test_no_public_function_takes_a_client_id(conn: psycopg.Connection[Any]) -> None:
    """A browser's tenant is its own: only backend functions name a client."""
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_catalog.pg_proc as p "
        "join pg_catalog.pg_namespace as n on n.oid = p.pronamespace "
        "where n.nspname = 'public' and 'client_id' = any (p.proargnames)"
    ).fetchall()
    assert rows == []


@pytest.mark.parametrize("schema", ["public", "backend"])
def test_no_function_name_is_overloaded(conn: psycopg.Connection[Any], schema: str) -> None:
    """PostgREST resolves an RPC by its name and argument names: an overload can make a call
    ambiguous (PGRST203) and makes the generated types a union of signatures."""
    rows = conn.execute(
        "select p.proname from pg_catalog.pg_proc as p "
        "join pg_catalog.pg_namespace as n on n.oid = p.pronamespace "
        "where n.nspname = %s group by p.proname having count(*) > 1",
        (schema,),
    ).fetchall()
    assert rows == []
