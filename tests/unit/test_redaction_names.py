"""Names without a cue word: census given names and names next to clinical record words are masked;
operations text made of capitalised words and component names is left as it is."""

from __future__ import annotations

import pytest

from hub.redaction import redact_text


@pytest.mark.parametrize("text, surname", [
    ("Abbey Wexcombe called the front desk", "Wexcombe"),
    ("retry after Delphine Quillfen failed", "Quillfen"),
    ("Abbey J. Brambleford left a message", "Brambleford"),
    ("bed 4: Zebulon Ottoline", "Ottoline"),
    ("Ward 7B Zebulon Ottoline", "Ottoline"),
    ("Zebulon Ottoline, DOB unknown", "Ottoline"),
    ("Zebulon Ottoline (MRN pending)", "Ottoline"),
    ("Zebulon Ottoline was admitted", "Ottoline"),
])
def test_names_without_a_cue_word_are_masked(text, surname):
    assert surname not in redact_text(None, text)


@pytest.mark.parametrize("text", [
    "Primary Database failover started", "Canary Deploy promoted to 50%", "Redis Cluster lost a node",
    "Blue Green switch done", "North Europe region degraded", "grace-scheduler restarted",
    "Grace Scheduler restarted", "rose-db replica lagging", "jack-gateway drained", "April Batch finished",
    "victoria-gw returned 502", "Mark Sweep GC paused 40 ms", "Failover seen by the on-call",
    "Patient API sheds load", "Kafka Connect restarted",
])
def test_operations_text_is_left_as_it_is(text):
    assert redact_text(None, text) == text
