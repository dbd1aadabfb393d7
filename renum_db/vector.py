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
import sys
from array import array
from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection, Connection, ProgrammingError
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Dumper, Loader, PyFormat
from psycopg.pq import Format
from psycopg.types import TypeInfo

from renum_db.errors import ConfigurationError, InvalidInput

__all__ = [
    "Vector",
    "VectorLike",
    "as_vector",
    "ensure_vector_adapters",
    "ensure_vector_adapters_async",
    "register_vector",
    "register_vector_async",
]

_HEADER = struct.Struct(">HH")


class Vector:
    """An embedding to send to Postgres as `extensions.vector`.

    Values are kept as float4, the precision pgvector stores, in an `array('f')`, so sending a
    1536-d vector in binary is a byte swap rather than 1536 Python-level conversions (this is on
    the ingestion hot path: tens of thousands of rows per COPY).
    """

    __slots__ = ("_data",)

    def __init__(self, values: Iterable[float]) -> None:
        try:
            data = values if isinstance(values, array) and values.typecode == "f" else None
            self._data: array[float] = array("f", values) if data is None else array("f", data)
        except (TypeError, OverflowError) as exc:
            raise InvalidInput(f"vector components must be finite numbers: {exc}") from None
        if not self._data:
            raise InvalidInput("a vector needs at least one dimension")
        # One C-speed sum catches NaN and infinity (the sum of finite float4 values cannot
        # overflow a double); only then is the slow per-element check worth running.
        if not math.isfinite(sum(self._data)):
            raise InvalidInput("vector components must be finite (no NaN or infinity)")

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(self._data)

    @property
    def float4(self) -> array[float]:
        """A copy of the values as `array('f')` (float4, as pgvector stores them)."""
        return array("f", self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vector) and other._data == self._data

    def __hash__(self) -> int:
        return hash(self._data.tobytes())

    def __repr__(self) -> str:
        return f"Vector(<{len(self._data)} dims>)"

    def to_text(self) -> str:
        # 9 significant digits round-trip any float4 exactly.
        return "[" + ",".join(format(v, ".9g") for v in self._data) + "]"

    def to_binary(self) -> bytes:
        """pgvector's binary format: int16 dims, int16 unused, big-endian float4 values."""
        payload = array("f", self._data)
        if sys.byteorder == "little":
            payload.byteswap()
        return _HEADER.pack(len(payload), 0) + payload.tobytes()


VectorLike = Vector | Iterable[float]
"""Anything accepted where an embedding is: a Vector, a list/tuple of floats, an array('f'), a
numpy array (any float dtype, one dimension)."""


def as_vector(value: VectorLike) -> Vector:
    """`value` as a Vector (InvalidInput for a non-numeric, empty, nested or non-finite one)."""
    if isinstance(value, Vector):
        return value
    if isinstance(value, str | bytes):
        raise InvalidInput("an embedding must be a sequence of numbers, not a string")
    if getattr(value, "ndim", 1) != 1:
        raise InvalidInput("an embedding must be one-dimensional")
    tolist = getattr(value, "tolist", None)  # numpy: one C-level conversion to floats
    return Vector(tolist() if callable(tolist) else value)


def ensure_vector_adapters(conn: Connection[Any]) -> None:
    """`register_vector(conn)` unless it was done already on this connection."""
    if not _registered(conn):
        register_vector(conn)


class _VectorTextDumper(Dumper):
    format = Format.TEXT

    def dump(self, obj: Any) -> Buffer:
        return obj.to_text().encode()  # type: ignore[no-any-return]


class _VectorBinaryDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return obj.to_binary()  # type: ignore[no-any-return]


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
        values = array("f")
        values.frombytes(raw[_HEADER.size : _HEADER.size + 4 * dims])
        if sys.byteorder == "little":
            values.byteswap()
        return tuple(values)


def _register(info: TypeInfo | None, context: AdaptContext) -> None:
    if info is None:
        raise ConfigurationError("type extensions.vector not found: is pgvector installed?")
    info.register(context)  # COPY's set_types() then knows "vector" by name
    adapters = context.adapters
    for dumper in (_VectorTextDumper, _VectorBinaryDumper):
        cls = type(dumper.__name__, (dumper,), {"oid": info.oid})
        adapters.register_dumper(Vector, cls)
    adapters.register_loader(info.oid, _VectorTextLoader)
    adapters.register_loader(info.oid, _VectorBinaryLoader)


def register_vector(conn: Connection[Any], context: AdaptContext | None = None) -> None:
    """Register the vector adapters on `conn` (or on `context`, e.g. a cursor)."""
    _register(TypeInfo.fetch(conn, "extensions.vector"), context or conn)


def _registered(conn: AdaptContext) -> bool:
    try:
        conn.adapters.get_dumper(Vector, PyFormat.BINARY)
    except ProgrammingError:
        return False
    return True


async def register_vector_async(conn: AsyncConnection[Any]) -> None:
    """`register_vector` for an AsyncConnection."""
    _register(await TypeInfo.fetch(conn, "extensions.vector"), conn)


async def ensure_vector_adapters_async(conn: AsyncConnection[Any]) -> None:
    """`ensure_vector_adapters` for an AsyncConnection."""
    if not _registered(conn):
        await register_vector_async(conn)
