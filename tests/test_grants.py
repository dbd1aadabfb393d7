"""Grants match docs/roles.md exactly.

docs/roles.md holds a machine-readable grant matrix between `<!-- grants:begin -->` and
`<!-- grants:end -->`: one row per table or view of `public` and per function of `public` and
`private`, one column per role that matters on Supabase (PUBLIC, anon, authenticated,
service_role). These tests read the privileges from the catalog (table-level and column-level ACLs,
function ACLs with PostgreSQL's defaults filled in) and compare them with the docs cell by cell, so
a grant added, dropped or widened anywhere, or an object added without a row, fails the suite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

DOC = Path(__file__).resolve().parent.parent / "docs" / "roles.md"
ROLES = ("PUBLIC", "anon", "authenticated", "service_role")
NONE = "—"
ORDER = ("select", "insert", "update", "delete", "truncate", "references", "trigger", "maintain")

Matrix = dict[str, dict[str, str]]


def documented() -> Matrix:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- grants:begin -->\n(.*?)<!-- grants:end -->", text, re.S)
    assert match, "docs/roles.md has no grant matrix between the grants markers"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header == ["object", *ROLES], header
    matrix: Matrix = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        assert name not in matrix, f"{name} appears twice in docs/roles.md"
        matrix[name] = dict(zip(ROLES, (c.replace("`", "") for c in cells[1:]), strict=True))
    return matrix


def _cell(table_level: set[str], columns: dict[str, list[str]]) -> str:
    parts = [p for p in ORDER if p in table_level]
    parts += [f"{p}({', '.join(columns[p])})" for p in ORDER if p in columns]
    return ", ".join(parts) or NONE


def relation_grants(conn: psycopg.Connection[Any]) -> Matrix:
    rel_rows = conn.execute(
        """
        select c.relname, coalesce(g.rolname, 'PUBLIC'), lower(a.privilege_type)
          from pg_catalog.pg_class as c
          cross join lateral pg_catalog.aclexplode(c.relacl) as a
          left join pg_catalog.pg_roles as g on g.oid = a.grantee
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
        """
    ).fetchall()
    col_rows = conn.execute(
        """
        select c.relname, coalesce(g.rolname, 'PUBLIC'), lower(a.privilege_type), t.attname
          from pg_catalog.pg_class as c
          join pg_catalog.pg_attribute as t on t.attrelid = c.oid and t.attnum > 0
          cross join lateral pg_catalog.aclexplode(t.attacl) as a
          left join pg_catalog.pg_roles as g on g.oid = a.grantee
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
           and not t.attisdropped
         order by c.relname, t.attnum
        """
    ).fetchall()
    names = conn.execute(
        "select relname from pg_catalog.pg_class "
        "where relnamespace = 'public'::regnamespace and relkind in ('r', 'p', 'v', 'm')"
    ).fetchall()
    table_level: dict[tuple[str, str], set[str]] = {}
    for rel, role, priv in rel_rows:
        table_level.setdefault((rel, role), set()).add(priv)
    columns: dict[tuple[str, str], dict[str, list[str]]] = {}
    for rel, role, priv, col in col_rows:
        columns.setdefault((rel, role), {}).setdefault(priv, []).append(col)
    return {
        f"public.{rel}": {
            role: _cell(table_level.get((rel, role), set()), columns.get((rel, role), {}))
            for role in ROLES
        }
        for (rel,) in names
    }


def function_grants(conn: psycopg.Connection[Any]) -> Matrix:
    rows = conn.execute(
        """
        select n.nspname || '.' || p.proname,
               array(select coalesce(g.rolname, 'PUBLIC')
                       from pg_catalog.aclexplode(coalesce(p.proacl,
                                                           pg_catalog.acldefault('f', p.proowner)))
                            as a
                       left join pg_catalog.pg_roles as g on g.oid = a.grantee
                      where a.privilege_type = 'EXECUTE')
          from pg_catalog.pg_proc as p
          join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
         where n.nspname in ('public', 'private', 'backend')
           and not exists (select from pg_catalog.pg_depend as d
                            where d.classid = 'pg_catalog.pg_proc'::regclass
                              and d.objid = p.oid and d.deptype = 'e')
        """
    ).fetchall()
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)), "an overloaded function: key the matrix by signature"
    return {name: {r: "execute" if r in set(g) else NONE for r in ROLES} for name, g in rows}


def _diff(actual: Matrix, docs: Matrix) -> list[str]:
    problems = [f"{k}: in the database, not in docs/roles.md" for k in sorted(actual.keys() - docs)]
    problems += [
        f"{k}: in docs/roles.md, not in the database" for k in sorted(docs.keys() - actual)
    ]
    for key in sorted(actual.keys() & docs.keys()):
        for role in ROLES:
            if actual[key][role] != docs[key][role]:
                problems.append(
                    f"{key} / {role}: database {actual[key][role]!r}, docs {docs[key][role]!r}"
                )
    return problems


def test_every_table_and_view_privilege_matches_the_matrix_in_docs(
    conn: psycopg.Connection[Any],
) -> None:
    docs = {k: v for k, v in documented().items() if not k.endswith("()")}
    actual = relation_grants(conn)
    assert actual, "no table in public: the check would be vacuous"
    assert _diff(actual, docs) == []


def test_every_function_execute_grant_matches_the_matrix_in_docs(
    conn: psycopg.Connection[Any],
) -> None:
    docs = {k.removesuffix("()"): v for k, v in documented().items() if k.endswith("()")}
    actual = function_grants(conn)
    assert len(actual) > 20, "too few functions found: the check would be vacuous"
    assert _diff(actual, docs) == []


def test_the_grant_check_notices_a_widened_grant(conn: psycopg.Connection[Any]) -> None:
    """Drift is caught: grant one more privilege in this (rolled back) transaction."""
    conn.execute("grant insert on public.document_usage_stats to authenticated")
    conn.execute("grant execute on function backend.complete_agent_execution to authenticated")
    tables = _diff(relation_grants(conn), {k: v for k, v in documented().items() if "()" not in k})
    docs = {k.removesuffix("()"): v for k, v in documented().items() if k.endswith("()")}
    functions = _diff(function_grants(conn), docs)
    assert tables == [
        "public.document_usage_stats / authenticated: database 'select, insert', docs 'select'"
    ]
    assert functions == [
        "backend.complete_agent_execution / authenticated: database 'execute', docs '—'"
    ]
