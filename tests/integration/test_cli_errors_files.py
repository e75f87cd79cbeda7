"""A command that cannot write its output file says so in one line with exit status 2 (the real
broker holds the, empty, experiment log it reads first)."""

from __future__ import annotations

import pytest

from hub.cli.main import main
from hub.testing import isolated_env

pytestmark = pytest.mark.kafka


def test_dashboards_export_to_a_path_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch,
                                                                        kafka_bootstrap):
    for name, value in isolated_env(tmp_path / "home", kafka_bootstrap).items():
        if name.startswith("HUB_"):
            monkeypatch.setenv(name, value)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status = main(["dashboards", "export", str(blocker / "dashboards")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("hub: error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert str(blocker) in errors[0]
