"""Realtime: what Supabase Realtime would stream for public.investigations.

Supabase Realtime (postgres_changes) reads a logical replication slot with the `pgoutput` plugin
and the publication `supabase_realtime`. The embedded test server runs with wal_level=logical, so
this module creates such a slot in its own database, commits changes through the workflow
functions, reads the slot with SQL and decodes the pgoutput protocol (version 1: Relation,
Insert, Update, ... with tuple data in text format) well enough to see which rows of which tables
would be broadcast. No Realtime service is involved.

The slot is temporary and belongs to one autocommit connection, and is dropped explicitly at the
end: a leftover slot would retain WAL and keep the module's database from being dropped.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from renum_db.db import act_as
from renum_db.repositories import InvestigationRepository
from tests.support import World

# --- a minimal pgoutput (protocol version 1) decoder --------------------------------------------


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """An Insert ('I') or Update ('U') of one row: column name -> text value (None for null,
    the marker UNCHANGED for an unchanged TOASTed value)."""

    kind: str
    relation: Relation
    new: dict[str, str | None]


UNCHANGED = "<unchanged toast>"


@dataclass
class Decoded:
    relations: dict[int, Relation] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # every message type seen, in order


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        (value,) = struct.unpack_from("!" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("!" + fmt)
        return value

    def byte(self) -> str:
        return bytes([self.take("B")]).decode()

    def string(self) -> str:
        end = self.data.index(b"\0", self.pos)
        value = self.data[self.pos : end].decode()
        self.pos = end + 1
        return value

    def raw(self, length: int) -> bytes:
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value


def _tuple(r: _Reader, relation: Relation) -> dict[str, str | None]:
    count = r.take("h")
    assert count == len(relation.columns)
    values: dict[str, str | None] = {}
    for name in relation.columns:
        kind = r.byte()
        if kind == "n":
            values[name] = None
        elif kind == "u":
            values[name] = UNCHANGED
        elif kind == "t":
            values[name] = r.raw(r.take("i")).decode()
        else:
            raise AssertionError(f"unexpected tuple column kind {kind!r} (binary mode is off)")
    return values


def decode(messages: list[bytes]) -> Decoded:
    """Decode pgoutput protocol-1 messages (one per row of pg_logical_slot_get_binary_changes)."""
    out = Decoded()
    for message in messages:
        r = _Reader(message)
        kind = r.byte()
        out.kinds.append(kind)
        if kind == "R":
            oid, namespace, name = r.take("I"), r.string(), r.string()
            r.take("B")  # replica identity setting
            columns = []
            for _ in range(r.take("h")):
                r.take("B")  # flags (1 = part of the key)
                columns.append(r.string())
                r.take("I")  # type oid
                r.take("i")  # type modifier
            out.relations[oid] = Relation(oid, namespace, name, tuple(columns))
        elif kind == "I":
            relation = out.relations[r.take("I")]
            assert r.byte() == "N"
            out.changes.append(Change("I", relation, _tuple(r, relation)))
        elif kind == "U":
            relation = out.relations[r.take("I")]
            marker = r.byte()
            if marker in ("K", "O"):  # old key or old row, then the new row
                _tuple(r, relation)
                marker = r.byte()
            assert marker == "N"
            out.changes.append(Change("U", relation, _tuple(r, relation)))
        elif kind in ("B", "C", "D", "T", "Y", "O"):
            continue  # begin, commit, delete, truncate, type, origin: not needed here
        else:
            raise AssertionError(f"unexpected pgoutput message {kind!r}")
    return out


# --- the slot -----------------------------------------------------------------------------------


@pytest.fixture
def slot(db_url: str) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """A temporary pgoutput slot in this module's database, on its own autocommit connection
    (a slot cannot be created in a transaction that has written). Dropped at the end."""
    name = f"renum_test_{uuid.uuid4().hex}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "select pg_catalog.pg_create_logical_replication_slot(%s, 'pgoutput', true)", (name,)
        )
        try:
            yield conn, name
        finally:
            conn.execute(
                "select pg_catalog.pg_drop_replication_slot(slot_name) "
                "from pg_catalog.pg_replication_slots where slot_name = %s",
                (name,),
            )
    with psycopg.connect(db_url) as check:
        left = check.execute(
            "select count(*) from pg_catalog.pg_replication_slots where slot_name = %s", (name,)
        ).fetchone()
    assert left == (0,), "the replication slot was not dropped"


def read_slot(conn: psycopg.Connection[Any], name: str) -> Decoded:
    rows = conn.execute(
        "select data from pg_catalog.pg_logical_slot_get_binary_changes(%s, null, null, "
        "'proto_version', '1', 'publication_names', 'supabase_realtime')",
        (name,),
    ).fetchall()
    return decode([bytes(r[0]) for r in rows])


def writer(db_url: str) -> psycopg.Connection[Any]:
    """A connection whose commits are flushed at once: the ephemeral test cluster runs with
    synchronous_commit = off, and logical decoding only reads WAL that has been flushed."""
    return psycopg.connect(db_url, options="-c synchronous_commit=on")


def changes_of(decoded: Decoded, table: str) -> list[Change]:
    return [
        c for c in decoded.changes if (c.relation.namespace, c.relation.name) == ("public", table)
    ]


# --- tests --------------------------------------------------------------------------------------


def test_investigation_inserts_and_progress_reach_the_realtime_publication(
    db_url: str, world: World, slot: tuple[psycopg.Connection[Any], str]
) -> None:
    slot_conn, name = slot
    owner = world.a.users["member"]
    with writer(db_url) as conn:
        with act_as(conn, {"sub": str(owner), "role": "authenticated"}):
            inv = InvestigationRepository(conn).create(
                query="Contratos emergenciais sem licitação", data_source="contracts"
            )
        conn.commit()
        with act_as(conn, world.claims("service")):
            repo = InvestigationRepository(conn)
            repo.start(inv.id)
            repo.report_progress(inv.id, progress=0.42, current_phase="analysis")
        conn.commit()
        with act_as(conn, world.claims("service")):  # a table outside the publication
            conn.execute(
                "update public.knowledge_bases set description = 'realtime probe' where id = %s",
                (world.a.rows["knowledge_bases"][0],),
            )
        conn.commit()

    decoded = read_slot(slot_conn, name)

    investigations = [
        c for c in changes_of(decoded, "investigations") if c.new["id"] == str(inv.id)
    ]
    assert [c.kind for c in investigations] == ["I", "U", "U"]
    inserted, started, progressed = investigations
    assert inserted.new["status"] == "pending"
    assert inserted.new["user_id"] == str(owner)
    assert inserted.new["query"] == "Contratos emergenciais sem licitação"
    assert started.new["status"] == "processing"
    assert started.new["started_at"] is not None
    assert progressed.new["progress"] == "0.42"
    assert progressed.new["current_phase"] == "analysis"
    # What Realtime broadcasts is the whole new row (replica identity: the primary key).
    assert set(progressed.new) == set(inserted.relation.columns)
    assert "error" in progressed.new
    assert changes_of(decoded, "knowledge_bases") == []


def test_tables_outside_the_publication_are_not_streamed(
    db_url: str, world: World, slot: tuple[psycopg.Connection[Any], str]
) -> None:
    slot_conn, name = slot
    inv = world.a.rows["investigations"][1]
    with writer(db_url) as conn:
        with act_as(conn, world.claims("service")):  # one transaction, two tables
            conn.execute(
                "update public.knowledge_bases set description = 'not published' where id = %s",
                (world.a.rows["knowledge_bases"][0],),
            )
            conn.execute(
                "update public.investigations set session_id = 'published' where id = %s", (inv,)
            )
        conn.commit()

    decoded = read_slot(slot_conn, name)

    # The transaction was decoded (its investigations change is there)...
    assert [(c.kind, c.new["session_id"]) for c in changes_of(decoded, "investigations")] == [
        ("U", "published")
    ]
    # ...but nothing of knowledge_bases: no row, not even its relation description.
    assert changes_of(decoded, "knowledge_bases") == []
    assert all(r.name != "knowledge_bases" for r in decoded.relations.values())


def test_the_publication_holds_exactly_the_tables_meant_for_realtime(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select schemaname, tablename from pg_catalog.pg_publication_tables "
            "where pubname = 'supabase_realtime' order by 1, 2"
        ).fetchall()
    # Exactly: adding any other table (api_credentials, say) would stream its rows to every
    # subscriber whose RLS lets the change through; that must be a reviewed change of this test.
    assert rows == [("public", "investigations")]
