"""Masked ids keep one digest across processes and restarts: the key is the hub's, not the process's."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction import Redactor
from hub.redaction.key import KEY_FILE, ensure_key

_DIGEST = """
import sys
from hub.redaction import Redactor
from hub.redaction.key import ensure_key
r = Redactor(key=ensure_key(sys.argv[1], sys.argv[2]))
print(r._engine.struct("id", "MRN-00441782", []))
"""


def _digest_in_a_new_process(home, configured: str = "") -> str:
    out = subprocess.run([sys.executable, "-c", _DIGEST, str(home), configured],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_two_processes_with_one_home_give_one_digest(tmp_path):
    first = _digest_in_a_new_process(tmp_path / "home")
    second = _digest_in_a_new_process(tmp_path / "home")
    assert first.startswith("[REDACTED:id:") and first == second
    assert stat.S_IMODE(os.stat(tmp_path / "home" / KEY_FILE).st_mode) == 0o600
    # another home, another key: another digest
    assert _digest_in_a_new_process(tmp_path / "other") != first


def test_a_configured_key_is_shared_by_workers_with_different_homes(tmp_path):
    a = _digest_in_a_new_process(tmp_path / "a", "shared-secret")
    b = _digest_in_a_new_process(tmp_path / "b", "shared-secret")
    assert a == b
    assert not (tmp_path / "a" / KEY_FILE).exists()


def test_redactors_with_one_key_store_one_gateway_under_one_digest(tmp_path):
    key = ensure_key(tmp_path)
    row = tuple("MRN-00441782" if c == "gateway" else "" for c in REQUEST_COLUMNS)
    i = REQUEST_COLUMNS.index("gateway")
    a = Redactor(key=key)._engine.rows("requests", "requests", REQUEST_COLUMNS, [row], None)[0][i]
    b = Redactor(key=ensure_key(tmp_path))._engine.rows("requests", "requests", REQUEST_COLUMNS, [row], None)[0][i]
    assert a == b and a.startswith("[REDACTED:id:")


def test_hub_config_does_not_print_the_key():
    env = {**os.environ, "HUB_REDACTION_KEY": "shared-secret"}
    out = subprocess.run([sys.executable, "-m", "hub.cli.main", "config"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "HUB_REDACTION_KEY=***" in out and "shared-secret" not in out
