"""The store server's Native format for a client's protocol version, ClickHouse's compressed
blocks, and where the exported datasource points in embedded mode."""

from __future__ import annotations

import struct

import pytest

from dashboards.config import grafana_config
from dashboards.provisioning import datasource_json
from hub.settings import load_settings
from hub.storage import compression, native
from hub.storage.server import endpoint_problem

# The engine's FORMAT Native answer (protocol 0) to
# SELECT toLowCardinality(toString(number % 2)) a, [number] b, toNullable(number) c FROM numbers(3)
ENGINE_NATIVE = (
    b"\x03\x03"
    b"\x01a\x16LowCardinality(String)"
    b"\x01\x00\x00\x00\x00\x00\x00\x00"                       # key version (state prefix)
    b"\x00\x06\x00\x00\x00\x00\x00\x00"                       # index type: UInt8 keys, additional keys
    b"\x03\x00\x00\x00\x00\x00\x00\x00\x00\x010\x011"         # 3 keys: '', '0', '1'
    b"\x03\x00\x00\x00\x00\x00\x00\x00\x01\x02\x01"           # 3 rows of indexes
    b"\x01b\rArray(UInt64)"
    b"\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00"
    b"\x01c\x10Nullable(UInt64)"
    b"\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00"
)


def test_a_clients_protocol_gets_block_info_and_a_serialization_byte_per_column():
    out = native.for_protocol(ENGINE_NATIVE + ENGINE_NATIVE, 54460)
    block_info = b"\x01\x00\x02\xff\xff\xff\xff\x00"
    # Each block: block info, then the same columns with a 0 (no custom serialization) after each type.
    a_start = ENGINE_NATIVE.index(b"\x01a")
    b_start = ENGINE_NATIVE.index(b"\x01b\r")
    c_start = ENGINE_NATIVE.index(b"\x01c\x10")
    a_type_end = a_start + 2 + 1 + len("LowCardinality(String)")
    b_type_end = b_start + 2 + 1 + len("Array(UInt64)")
    c_type_end = c_start + 2 + 1 + len("Nullable(UInt64)")
    block = (block_info + ENGINE_NATIVE[:a_type_end] + b"\x00" + ENGINE_NATIVE[a_type_end:b_type_end] + b"\x00"
             + ENGINE_NATIVE[b_type_end:c_type_end] + b"\x00" + ENGINE_NATIVE[c_type_end:])
    assert out == block + block
    # Protocol 0 (no client_protocol_version) is the engine's own answer; an older protocol has no
    # serialization byte.
    assert native.for_protocol(ENGINE_NATIVE, 0) == ENGINE_NATIVE
    assert native.for_protocol(ENGINE_NATIVE, 54453) == block_info + ENGINE_NATIVE
    assert native.columns(ENGINE_NATIVE) == [("a", "LowCardinality(String)"), ("b", "Array(UInt64)"),
                                            ("c", "Nullable(UInt64)")]


def test_datetime_gets_its_time_zone_back_and_unreadable_types_are_refused():
    data = b"\x01\x01\x01t\x08DateTime\x00\x00\x00\x00"
    assert native.needs_types(data)
    out = native.for_protocol(data, 54460, ["DateTime('Asia/Tokyo')"])
    assert out == b"\x01\x00\x02\xff\xff\xff\xff\x00\x01\x01\x01t\x16DateTime('Asia/Tokyo')\x00\x00\x00\x00\x00"
    with pytest.raises(native.UnsupportedType):
        native.for_protocol(b"\x01\x01\x01d\x07Dynamic\x00", 54460)
    with pytest.raises(native.NativeError):
        native.for_protocol(b"\x01\x02\x01x\x06UInt32\x00\x00\x00\x00", 54460)  # two rows, one value


@pytest.mark.parametrize("type_name, rows, data", [
    ("Tuple(a UInt8, b String)", 2, b"\x01\x02\x01x\x00"),
    ("Tuple(`a b` UInt8, `c` Nullable(String))", 2, b"\x01\x02\x00\x01\x01x\x00"),
    ("Map(String, UInt16)", 1, struct.pack("<Q", 2) + b"\x01a\x01b" + b"\x01\x00\x02\x00"),
    ("FixedString(3)", 2, b"abcdef"),
    ("Decimal(38, 2)", 1, bytes(16)),
    ("Array(LowCardinality(Nullable(String)))", 1,
     b"\x01" + bytes(7) + struct.pack("<Q", 1) + b"\x00\x06" + bytes(6) + struct.pack("<Q", 2) + b"\x00\x01x"
     + struct.pack("<Q", 1) + b"\x01"),
])
def test_column_data_of_nested_types_is_measured(type_name, rows, data):
    name = type_name.encode()
    block = bytes([1, rows, 1]) + b"c" + bytes([len(name)]) + name + data
    tail = bytes([1, 0, 1]) + b"z\x05UInt8"  # a second block, empty
    out = native.for_protocol(block + tail, 54460)
    assert out.endswith(b"\x01\x00\x02\xff\xff\xff\xff\x00" + tail + b"\x00")
    assert data in out


def test_compressed_blocks_round_trip_and_a_changed_byte_fails_the_checksum():
    data = bytes(range(256)) * 5000  # more than one 1 MiB block
    for method in (compression.LZ4, compression.ZSTD, compression.NONE):
        packed = compression.compress(data, method)
        assert packed[16] == method
        assert compression.decompress(packed) == data
        pieces = compression.Decompressor()
        assert b"".join(pieces.feed(packed[i:i + 1000]) for i in range(0, len(packed), 1000)) == data
        pieces.finish()
    packed = bytearray(compression.compress(b"hello" * 100))
    packed[-1] ^= 1
    with pytest.raises(compression.CompressionError, match="checksum"):
        compression.decompress(bytes(packed))
    assert compression.decompress(bytes(packed), verify=False) != b"hello" * 100
    with pytest.raises(compression.CompressionError, match="middle"):
        compression.decompress(compression.compress(b"x" * 10)[:-1])


def test_blocks_are_those_of_clickhouses_format():
    # Reference blocks of "Hello!\n" * 25 (the golden files of ch-go, ClickHouse's Go protocol library).
    data = b"Hello!\n" * 25
    lz4_block = bytes.fromhex("c5bcbc07c11ec471fd74af8d5b0f00c58226000000af0000007f48656c6c6f210a070082009300009a00b06c6f"
                              "210a48656c6c6f210a")
    assert compression.decompress(lz4_block) == data  # its checksum verified
    none_block = compression.compress(data, compression.NONE)
    assert none_block[:16].hex() == "fced07b8c559e98c1661170f6c5272df"
    assert none_block[16:] == b"\x02" + struct.pack("<II", 9 + len(data), len(data)) + data


def test_the_exported_datasource_points_at_the_embedded_stores_endpoint(tmp_path):
    settings = load_settings({"HUB_HOME": str(tmp_path), "HUB_STORE_PORT": "37999"})
    ds = datasource_json(grafana_config(settings, env={}))
    assert ds["jsonData"]["host"] == "127.0.0.1" and ds["jsonData"]["port"] == 37999
    assert ds["jsonData"]["protocol"] == "http" and ds["jsonData"]["username"] == "hub_grafana"
    # With a ClickHouse server, its address.
    server = load_settings({"HUB_HOME": str(tmp_path), "HUB_CLICKHOUSE_URL": "http://u:p@ch.internal:8123"})
    assert datasource_json(grafana_config(server, env={}))["jsonData"]["host"] == "ch.internal"


def test_off_loopback_the_endpoint_needs_the_token_and_the_readers_password(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_GRAFANA_CLICKHOUSE_PASSWORD", raising=False)
    on_loopback = load_settings({"HUB_HOME": str(tmp_path)})
    assert endpoint_problem(on_loopback) is None
    open_ = load_settings({"HUB_HOME": str(tmp_path), "HUB_STORE_HOST": "0.0.0.0"})
    assert "HUB_STORE_TOKEN" in endpoint_problem(open_)
    with_token = load_settings({"HUB_HOME": str(tmp_path), "HUB_STORE_HOST": "0.0.0.0", "HUB_STORE_TOKEN": "s3cret"})
    assert "HUB_GRAFANA_CLICKHOUSE_PASSWORD" in endpoint_problem(with_token)
    with_password = load_settings({"HUB_HOME": str(tmp_path), "HUB_STORE_HOST": "0.0.0.0", "HUB_STORE_TOKEN": "s3cret",
                                   "HUB_GRAFANA_CLICKHOUSE_PASSWORD": "reader-secret"})
    assert endpoint_problem(with_password) is None
