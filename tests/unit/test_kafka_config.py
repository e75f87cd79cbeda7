"""The embedded broker's server.properties and file layout, without starting anything."""

from __future__ import annotations

import re
import socket

import pytest

from hub.errors import UserError
from hub.runtime.kafka import KafkaRuntime, new_cluster_id, render_server_properties
from hub.settings import Settings


def parse(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key] = value
    return props


def test_listeners_are_on_loopback_with_controller_on_the_next_port(tmp_path):
    props = parse(render_server_properties(29092, tmp_path / "data"))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["process.roles"] == "broker,controller"
    assert "0.0.0.0" not in render_server_properties(29092, tmp_path / "data")


def test_single_node_replication_settings(tmp_path):
    props = parse(render_server_properties(19092, tmp_path))
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr"):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["node.id"] == "1"


def test_runtime_paths_follow_the_settings(tmp_path):
    settings = Settings(home=tmp_path / "home", kafka_port=23456, kafka_cache=tmp_path / "cache",
                        kafka_version="4.1.1")
    runtime = KafkaRuntime(settings)
    home = (tmp_path / "home").resolve()
    assert runtime.data_dir == home / "kafka" / "data"
    assert runtime.config_file == home / "kafka" / "server.properties"
    assert runtime.pid_file == home / "run" / "kafka.pid"
    assert runtime.out_file == home / "logs" / "kafka.out"
    assert runtime.libs_dir == (tmp_path / "cache").resolve() / "4.1.1" / "libs"
    assert runtime.bootstrap == "127.0.0.1:23456"
    props = parse(render_server_properties(settings.kafka_port, runtime.data_dir))
    assert props["log.dirs"] == str(home / "kafka" / "data")
    assert not runtime.is_installed()
    status = runtime.status()
    assert status["running"] is False and status["pid"] is None
    assert status["data_dir"] == str(runtime.data_dir)


def test_cluster_id_has_kafkas_uuid_format():
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) and not i.startswith("-") for i in ids)


def test_start_refuses_when_an_external_cluster_is_configured(tmp_path):
    runtime = KafkaRuntime(Settings(home=tmp_path, kafka_bootstrap="kafka.example:9092"))
    with pytest.raises(UserError, match="HUB_KAFKA_BOOTSTRAP"):
        runtime.start()


def test_a_taken_port_is_reported_clearly(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        runtime = KafkaRuntime(Settings(home=tmp_path, kafka_port=port))
        with pytest.raises(UserError, match=f"port {port} .*already in use"):
            runtime._check_ports()


def test_stale_pid_file_means_not_running(tmp_path):
    runtime = KafkaRuntime(Settings(home=tmp_path))
    runtime.pid_file.parent.mkdir(parents=True)
    runtime.pid_file.write_text("999999999\n")
    assert not runtime.is_running()
    assert not runtime.pid_file.exists()
