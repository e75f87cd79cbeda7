"""Commands that read a file or a URL answer bad input with one line and exit status 2, never a
traceback: definitions and journals that are not UTF-8 or nested thousands of levels deep (JSON
brackets or YAML block style), and Dropwizard URLs that are not http(s)."""

from __future__ import annotations

import pytest

from hub.cli.main import main

DEEP_JSON = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
DEEP_BLOCK_YAML = b"id: abc-def\ntags:\n" + b"- " * 3000 + b"1\n"
NOT_UTF8 = b"id: abc-def\ntitle: caf\xe9 \xff\xfe\n"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    for name in ("HUB_KAFKA_BOOTSTRAP", "HUB_CLICKHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # nothing here needs a broker


def one_line_error(capsys, argv) -> str:
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hub: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("content", [DEEP_JSON, DEEP_OBJECT, DEEP_BLOCK_YAML, NOT_UTF8, b"\xff" * 10])
@pytest.mark.parametrize("command", [["experiment", "validate"], ["experiment", "create"]])
def test_a_definition_file_that_cannot_be_read_is_one_line(tmp_path, capsys, content, command):
    path = tmp_path / "definition.yaml"
    path.write_bytes(content)
    line = one_line_error(capsys, [*command, str(path)])
    assert str(path) in line


@pytest.mark.parametrize("content", [DEEP_JSON, DEEP_OBJECT, NOT_UTF8, b"\xff" * 10, b"{", DEEP_BLOCK_YAML])
def test_a_chaostoolkit_journal_that_cannot_be_read_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    line = one_line_error(capsys, ["import", "chaostoolkit", str(path), "--experiment", "abc-def"])
    assert str(path) in line


@pytest.mark.parametrize("content", [DEEP_JSON, DEEP_BLOCK_YAML, NOT_UTF8])
def test_a_gateway_configuration_that_cannot_be_read_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "gateway.yaml"
    path.write_bytes(content)
    one_line_error(capsys, ["gateway", "--config", str(path), "--check"])


@pytest.mark.parametrize("url", ["file:///etc/passwd", "FILE:///etc/passwd", "/etc/passwd", "ftp://example.com/x",
                                 "data:,{}", "http://"])
def test_dropwizard_reads_only_http_urls(capsys, url):
    line = one_line_error(capsys, ["import", "dropwizard", url, "--service", "svc", "--count", "1"])
    assert "http" in line


def test_dropwizard_does_not_follow_a_redirect_to_a_file(monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from hub.errors import HubError
    from hub.integrations.dropwizard import fetch

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(HubError):
            fetch(f"http://127.0.0.1:{server.server_address[1]}/metrics")
    finally:
        server.shutdown()

