"""The alert record format on hub.alerts is documented where the other record formats are
(schemas/README.md): every field of the decoder's model, both kinds, and who may write the topic."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from hub.abort.records import AlertRecord

ROOT = Path(__file__).parents[2]


def _section() -> str:
    text = (ROOT / "schemas/README.md").read_text()
    start = text.index("## Alert record (topic `hub.alerts`)")
    return text[start:text.index("\n## ", start + 1)]


def test_every_field_of_an_alert_record_and_both_kinds_are_documented():
    section = _section()
    documented = set(re.findall(r"`(\w+)`", "\n".join(l.split("|")[1] for l in section.splitlines()
                                                     if l.startswith("| `"))))
    assert documented == set(AlertRecord.__struct_fields__)
    assert set(typing.get_args(typing.get_type_hints(AlertRecord)["kind"])) == {"alert", "action"}
    assert '`"alert"` \\| `"action"`' in section


def test_forged_alerts_are_explained_with_a_pointer_to_the_kafka_acls():
    section = " ".join(_section().split())
    assert "forged alert" in section and "stored as an alert" in section
    assert "deploy/README.md" in section and "Kafka ACLs" in section
    deploy = (ROOT / "deploy/README.md").read_text()
    assert "### Who may write the hub's topics (Kafka ACLs)" in deploy
    assert "only the worker should have Write on it" in " ".join(deploy.split())
