"""ClickHouse's Native format for a client's protocol version.

The embedded engine writes ``FORMAT Native`` as for a client of protocol version 0: no block info
before each block, no serialization-info byte per column, and a top-level ``DateTime('tz')``
column's type written as plain ``DateTime``. A ClickHouse server answers an HTTP client that
sends ``client_protocol_version`` (clickhouse-go v2 does, and decodes every block by it) with
the Native format of that version (``src/Formats/NativeWriter.cpp``):

- protocol version > 0: each block starts with its block info (field 1 ``is_overflows`` UInt8,
  field 2 ``bucket_num`` Int32 = -1, field 0 to end);
- version >= 54454 (``DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION``): after each column's type a
  UInt8 says whether the column has a custom (sparse) serialization; the engine's version-0
  output never has one, so it is 0;
- version >= 54337: ``DateTime`` keeps its time-zone parameter.

``for_protocol`` rewrites the engine's output accordingly. Column data is not decoded, only
measured by its type to find where the next column starts; a type whose data cannot be measured
(``Dynamic``, ``JSON``, ``Variant``, aggregate function states) is refused with ``UnsupportedType``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CUSTOM_SERIALIZATION = 54454
TIME_ZONE_IN_DATETIME = 54337

_FIXED = {
    "UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1,
    "UInt16": 2, "Int16": 2, "Enum16": 2, "Date": 2, "BFloat16": 2,
    "UInt32": 4, "Int32": 4, "Float32": 4, "DateTime": 4, "Date32": 4, "IPv4": 4, "Decimal32": 4, "Time": 4,
    "UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Decimal64": 8, "Time64": 8,
    "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "Decimal128": 16,
    "UInt256": 32, "Int256": 32, "Decimal256": 32,
}
_LC_KEY_SIZES = (1, 2, 4, 8)


class UnsupportedType(ValueError):
    """A column type whose Native data this module cannot measure."""


class NativeError(ValueError):
    """Native data that ends early or does not follow its types."""


@dataclass(frozen=True)
class DataType:
    name: str                       # "Array", "UInt64", ...
    args: tuple["DataType", ...] = ()
    params: tuple[str, ...] = ()    # raw text of the arguments


def _split_args(text: str, open_index: int) -> list[str]:
    """The arguments of a type whose '(' is at ``open_index`` (quotes and nesting respected)."""
    from dashboards.macros import MacroError, _args_at

    try:
        args, end = _args_at(text, open_index)
    except MacroError:
        raise UnsupportedType(f"cannot read the type {text}") from None
    if end != len(text):
        raise UnsupportedType(f"cannot read the type {text}")
    return [a for a in args if a]


def _strip_element_name(arg: str) -> str:
    """``a UInt8`` (a named Tuple element) -> ``UInt8``; a type alone stays as it is."""
    if arg.startswith("`"):
        end = arg.find("`", 1)
        while end > 0 and arg[end - 1] == "\\":
            end = arg.find("`", end + 1)
        return arg[end + 1:].strip() if end > 0 else arg
    if "(" in arg:
        head = arg[:arg.index("(")]
        if " " not in head.strip():
            return arg
    parts = arg.split(None, 1)
    if len(parts) == 2 and (parts[0].isidentifier() or parts[0].startswith("`")):
        return parts[1]
    return arg


def parse_type(text: str) -> DataType:
    text = text.strip()
    if "(" not in text:
        return DataType(text)
    if not text.endswith(")"):
        raise UnsupportedType(f"cannot read the type {text}")
    name = text[:text.index("(")].strip()
    params = tuple(_split_args(text, text.index("(")))
    if name in ("Nullable", "Array", "LowCardinality"):
        return DataType(name, (parse_type(params[0]),), params)
    if name == "Map":
        return DataType(name, (parse_type(params[0]), parse_type(params[1])), params)
    if name == "Tuple":
        return DataType(name, tuple(parse_type(_strip_element_name(p)) for p in params), params)
    if name == "Nested":
        return DataType("Array", (DataType("Tuple", tuple(parse_type(_strip_element_name(p)) for p in params)),))
    if name == "SimpleAggregateFunction":
        return parse_type(params[-1])
    return DataType(name, (), params)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0):
        self.data = data
        self.pos = pos

    def take(self, n: int) -> int:
        start = self.pos
        self.pos += n
        if self.pos > len(self.data):
            raise NativeError("Native data ends in the middle of a column")
        return start

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            if self.pos >= len(self.data):
                raise NativeError("Native data ends in the middle of a number")
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise NativeError("a Native variable-length number is too long")

    def uint64(self) -> int:
        return struct.unpack_from("<Q", self.data, self.take(8))[0]

    def string(self) -> bytes:
        n = self.uvarint()
        start = self.take(n)
        return bytes(self.data[start:start + n])


def _fixed_size(t: DataType) -> int | None:
    if t.name in _FIXED:
        return _FIXED[t.name]
    if t.name == "FixedString":
        return int(t.params[0])
    if t.name == "Decimal":
        precision = int(t.params[0])
        return 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32
    if t.name.startswith("Interval"):
        return 8
    if t.name == "Nothing":
        return 1
    return None


def _skip_prefix(r: _Reader, t: DataType) -> None:
    """The state prefix every nested stream writes before any data (LowCardinality's key version)."""
    if t.name == "LowCardinality":
        r.take(8)
    elif t.name in ("Array", "Nullable", "Map", "Tuple"):
        for arg in t.args:
            _skip_prefix(r, arg)
    elif t.name in ("Dynamic", "JSON", "Object", "Variant", "AggregateFunction"):
        raise UnsupportedType(f"the type {t.name} cannot be sent in the Native format of this client's protocol")


def _skip_data(r: _Reader, t: DataType, rows: int) -> None:
    if rows == 0:
        return
    size = _fixed_size(t)
    if size is not None:
        r.take(size * rows)
    elif t.name == "String":
        for _ in range(rows):
            r.take(r.uvarint())
    elif t.name == "Nullable":
        r.take(rows)
        _skip_data(r, t.args[0], rows)
    elif t.name in ("Array", "Map"):
        start = r.take(8 * rows)
        total = struct.unpack_from("<Q", r.data, start + 8 * (rows - 1))[0]
        if t.name == "Array":
            _skip_data(r, t.args[0], total)
        else:
            _skip_data(r, t.args[0], total)
            _skip_data(r, t.args[1], total)
    elif t.name == "Tuple":
        for arg in t.args:
            _skip_data(r, arg, rows)
    elif t.name == "LowCardinality":
        inner = t.args[0]
        keys_type = inner.args[0] if inner.name == "Nullable" else inner
        left = rows
        while left > 0:
            flags = r.uint64()
            if flags & (1 << 9):  # has additional keys
                _skip_data(r, keys_type, r.uint64())
            count = r.uint64()
            r.take(_LC_KEY_SIZES[flags & 0xFF] * count)
            left -= count
    else:
        raise UnsupportedType(f"the type {t.name} cannot be sent in the Native format of this client's protocol")


_BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"  # field 1 is_overflows=0, field 2 bucket_num=-1, end


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _uvarint(len(value)) + value


def columns(data: bytes) -> list[tuple[str, str]]:
    """Names and types of the first block of version-0 Native data ([] when there is none)."""
    if not data:
        return []
    r = _Reader(data)
    out = []
    ncols, rows = r.uvarint(), r.uvarint()
    for _ in range(ncols):
        name, type_name = r.string().decode("utf-8", "replace"), r.string().decode("utf-8", "replace")
        out.append((name, type_name))
        if rows:
            t = parse_type(type_name)
            _skip_prefix(r, t)
            _skip_data(r, t, rows)
    return out


def for_protocol(data: bytes, revision: int, types: list[str] | None = None) -> bytes:
    """The engine's version-0 Native output as a server writes it for a client of ``revision``.

    ``types``, when given, are the result's column types as the engine names them (with
    ``DateTime``'s time zone), used instead of the names in the data from version 54337 on.
    """
    if revision <= 0 or not data:
        return data
    view = memoryview(data)
    r = _Reader(view)
    out: list[bytes | memoryview] = []
    while r.pos < len(view):
        out.append(_BLOCK_INFO)
        head = r.pos
        ncols, rows = r.uvarint(), r.uvarint()
        out.append(view[head:r.pos])
        for i in range(ncols):
            name = r.string()
            type_name = r.string()
            t = parse_type(type_name.decode("utf-8", "replace"))
            if (types is not None and i < len(types) and revision >= TIME_ZONE_IN_DATETIME
                    and type_name == b"DateTime" and types[i].startswith("DateTime(")):
                type_name = types[i].encode()
            out.append(_string(name))
            out.append(_string(type_name))
            if revision >= CUSTOM_SERIALIZATION:
                out.append(b"\x00")
            start = r.pos
            if rows:
                _skip_prefix(r, t)
                _skip_data(r, t, rows)
            out.append(view[start:r.pos])
    return b"".join(out)


def needs_types(data: bytes) -> bool:
    """Whether a top-level column is typed plain ``DateTime`` (its time zone may have been dropped)."""
    return any(t == "DateTime" for _, t in columns(data))
