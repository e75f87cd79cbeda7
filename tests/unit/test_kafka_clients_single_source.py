"""Every Kafka client of the hub is made in one module: hub/runtime/clients.py.

A producer, consumer or admin client built anywhere else would carry its own bootstrap,
client id and request sizes; this scans the product's code for constructions of kafka-python's
and aiokafka's client classes outside that module.
"""

from __future__ import annotations

import ast

from hub.settings import REPO_ROOT

PACKAGES = ("hub", "streams")
THE_MODULE = "hub/runtime/clients.py"
CLIENT_CLASSES = {"KafkaProducer", "KafkaConsumer", "KafkaAdminClient", "KafkaClient",
                  "AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}


def client_constructions(source: str) -> list[tuple[int, str]]:
    """(line, class) of each call of a Kafka client class, by name (``KafkaProducer(...)``), as an
    attribute (``kafka.KafkaProducer(...)``) or through a name it was imported as."""
    tree = ast.parse(source)
    aliases = set(CLIENT_CLASSES)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for name in node.names:
                if name.name in CLIENT_CLASSES and name.asname:
                    aliases.add(name.asname)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name in aliases:
            found.append((node.lineno, name))
    return found


def test_the_scan_finds_every_form():
    source = ("from kafka import KafkaConsumer as C\nimport kafka\nimport aiokafka\n"
              "a = C(bootstrap_servers='x')\nb = kafka.KafkaProducer()\nc = aiokafka.AIOKafkaProducer()\n"
              "def f():\n    from kafka import KafkaAdminClient\n    return KafkaAdminClient(**{})\n"
              "d = clients.producer('x')\n")
    assert [line for line, _ in client_constructions(source)] == [4, 5, 6, 9]


def test_kafka_clients_are_made_only_in_the_clients_module():
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel == THE_MODULE:
                continue
            offenders += [f"{rel}:{line} {name}(...)" for line, name in client_constructions(path.read_text())]
    assert not offenders, "Kafka clients made outside hub.runtime.clients:\n" + "\n".join(offenders)


def test_the_clients_module_makes_them():
    assert {name for _, name in client_constructions((REPO_ROOT / THE_MODULE).read_text())} == \
        {"KafkaProducer", "KafkaConsumer", "KafkaAdminClient", "AIOKafkaProducer"}
