"""pgvector's `extensions.vector` for psycopg: send embeddings as text or binary, read them back.

`Vector` wraps a sequence of floats so psycopg knows to send it as a vector (a plain list would be
sent as a float8[] array). `register_vector(conn)` teaches a connection the type's OID (it lives in
schema `extensions`, as on Supabase) and registers text and binary dumpers and loaders, so
`Vector` values work in parameters and in binary COPY, and vector columns load as tuples of
floats. The binary format is pgvector's: int16 dimensions, int16 unused, then float4 values, all
big-endian.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Connection
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo

from renum_db.errors import ConfigurationError, InvalidInput

__all__ = ["Vector", "register_vector"]

_HEADER = struct.Struct(">HH")


class Vector:
    """An embedding to send to Postgres as `extensions.vector`."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable[float]) -> None:
        self.values: tuple[float, ...] = tuple(float(v) for v in values)
        if not self.values:
            raise InvalidInput("a vector needs at least one dimension")
        if not all(math.isfinite(v) for v in self.values):
            raise InvalidInput("vector components must be finite (no NaN or infinity)")

    def __len__(self) -> int:
        return len(self.values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vector) and other.values == self.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"Vector(<{len(self.values)} dims>)"

    def to_text(self) -> str:
        return "[" + ",".join(repr(v) for v in self.values) + "]"


class _VectorTextDumper(Dumper):
    format = Format.TEXT

    def dump(self, obj: Any) -> Buffer:
        return obj.to_text().encode()  # type: ignore[no-any-return]


class _VectorBinaryDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        values: Sequence[float] = obj.values
        return _HEADER.pack(len(values), 0) + struct.pack(f">{len(values)}f", *values)


class _VectorTextLoader(Loader):
    format = Format.TEXT

    def load(self, data: Buffer) -> tuple[float, ...]:
        text = bytes(data).decode()
        return tuple(float(v) for v in text.strip("[]").split(",")) if text != "[]" else ()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> tuple[float, ...]:
        raw = bytes(data)
        dims, _ = _HEADER.unpack_from(raw)
        return struct.unpack_from(f">{dims}f", raw, _HEADER.size)


def register_vector(conn: Connection[Any], context: AdaptContext | None = None) -> None:
    """Register the vector adapters on `conn` (or on `context`, e.g. a cursor)."""
    info = TypeInfo.fetch(conn, "extensions.vector")
    if info is None:
        raise ConfigurationError("type extensions.vector not found: is pgvector installed?")
    info.register(context or conn)  # COPY's set_types() then knows "vector" by name
    adapters = (context or conn).adapters
    for dumper in (_VectorTextDumper, _VectorBinaryDumper):
        cls = type(dumper.__name__, (dumper,), {"oid": info.oid})
        adapters.register_dumper(Vector, cls)
    adapters.register_loader(info.oid, _VectorTextLoader)
    adapters.register_loader(info.oid, _VectorBinaryLoader)
