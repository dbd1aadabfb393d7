"""`list_tables` and `list_columns`: what the user may read in schema `public`, with comments.

Both run inside the user's read-only request (role `authenticated` with the user's claims), so
the privilege functions answer for that user's database role. A table is listed when the role
may select it (or some of its columns) and, if row-level security is on, some `select` policy
for `authenticated` can let a row through for the user's tenant role: policies of the form
`client_id = (select private.current_client_id('<min role>'))` (any helper taking the role
name) are compared with the user's
role (viewer < member < admin), so a viewer is not shown `api_credentials` (admins only) and a
user without a tenant is shown nothing. Columns are those the role may select, never
`encrypted_value`. Nothing outside `public` is ever listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from psycopg import Connection

from renum_db.errors import NotFound, wrap_errors

__all__ = ["ColumnInfo", "TableInfo", "list_columns", "list_tables"]

ROLE_RANK: Final = {"viewer": 1, "member": 2, "admin": 3}
# The minimum tenant role a policy names: `<helper>('viewer'|'member'|'admin'::text)`, whatever
# the tenant-resolution helper is called.
_MIN_ROLE = re.compile(r"\('(viewer|member|admin)'::text\)")
HIDDEN_COLUMNS: Final = frozenset({"encrypted_value"})


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    kind: str
    comment: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "comment": self.comment}


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    comment: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "comment": self.comment,
        }


_TABLES: Final = """
select c.relname::text,
       case c.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
       pg_catalog.obj_description(c.oid, 'pg_class'),
       c.relrowsecurity,
       coalesce((select pg_catalog.array_agg(pg_catalog.pg_get_expr(p.polqual, p.polrelid))
                   from pg_catalog.pg_policy as p
                  where p.polrelid = c.oid
                    and p.polcmd in ('r', '*')
                    and p.polpermissive
                    and (0::oid = any (p.polroles)
                         or 'authenticated'::regrole = any (p.polroles))), '{}')
  from pg_catalog.pg_class as c
 where c.relnamespace = 'public'::regnamespace
   and c.relkind in ('r', 'p', 'v', 'm')
   and (pg_catalog.has_table_privilege(c.oid, 'SELECT')
        or pg_catalog.has_any_column_privilege(c.oid, 'SELECT'))
 order by 1
"""

# The user's tenant role, if the user belongs to a client they can see (an active one: the
# clients policy hides a suspended client from its own users).
_TENANT_ROLE: Final = """
select u.role
  from public.users as u
  join public.clients as c on c.id = u.client_id
 where u.id = auth.uid()
"""

_COLUMNS: Final = """
select a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       not a.attnotnull,
       pg_catalog.col_description(c.oid, a.attnum)
  from pg_catalog.pg_attribute as a
  join pg_catalog.pg_class as c on c.oid = a.attrelid
 where c.relnamespace = 'public'::regnamespace
   and c.relname = %s
   and a.attnum > 0
   and not a.attisdropped
   and pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')
   and a.attname <> all (%s)
 order by a.attnum
"""


def _readable(rls: bool, quals: list[str | None], rank: int) -> bool:
    if not rls:
        return True
    for qual in quals:
        if qual is None:
            return True
        required = [ROLE_RANK.get(m, 99) for m in _MIN_ROLE.findall(qual)]
        if not required or " OR " in qual:
            return True  # no tenant-role condition, or a branch without one (own profile)
        if rank > 0 and min(required) <= rank:
            return True
    return False


def list_tables(conn: Connection[Any]) -> list[TableInfo]:
    """Tables and views of `public` the current (acting) user can read rows from."""
    with wrap_errors():
        rows = conn.execute(_TABLES).fetchall()
        role_row = conn.execute(_TENANT_ROLE).fetchone()
    rank = ROLE_RANK.get(str(role_row[0]), 0) if role_row and role_row[0] else 0
    return [
        TableInfo(name=name, kind=kind, comment=comment)
        for name, kind, comment, rls, quals in rows
        if _readable(bool(rls), list(quals), rank)
    ]


def _table_name(table: str) -> str:
    name = table.strip()
    if name.lower().startswith("public."):
        name = name[len("public.") :]
    return name.strip('"')


def list_columns(conn: Connection[Any], table: str) -> tuple[TableInfo, list[ColumnInfo]]:
    """The readable columns of a table `list_tables` shows; NotFound for anything else."""
    name = _table_name(table)
    visible = {t.name: t for t in list_tables(conn)}
    info = visible.get(name)
    if info is None:
        raise NotFound(f"no table or view named {table!r} that you can read (see list_tables)")
    with wrap_errors():
        rows = conn.execute(_COLUMNS, (name, list(HIDDEN_COLUMNS))).fetchall()
    return info, [
        ColumnInfo(name=n, type=t, nullable=bool(nullable), comment=comment)
        for n, t, nullable, comment in rows
    ]
