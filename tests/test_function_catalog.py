"""Every function in schema `public` (the RPC surface PostgREST exposes) must be tested as anon,
another tenant's user, viewer, member, admin and service_role. Test modules declare the
functions they cover that way in a module-level `EXPOSED_FUNCTIONS` mapping; this test fails when
a function is added to `public` without such coverage."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import psycopg


def covered_functions() -> set[str]:
    names: set[str] = set()
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        names.update(getattr(module, "EXPOSED_FUNCTIONS", {}))
    return names


def test_every_public_function_is_tested_for_every_actor(
    conn: psycopg.Connection[Any],
) -> None:
    rows = conn.execute(
        "select p.proname from pg_catalog.pg_proc as p "
        "join pg_catalog.pg_namespace as n on n.oid = p.pronamespace "
        "where n.nspname = 'public'"
    ).fetchall()
    exposed = {r[0] for r in rows}
    assert exposed, "no function in public: the check would be vacuous"
    assert exposed == covered_functions()
