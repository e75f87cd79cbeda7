"""`hub gateway --check` warns about a listener that is not on loopback."""

import subprocess
import sys


def run_check(tmp_path, listen: str, admin: str = "") -> subprocess.CompletedProcess:
    config = tmp_path / "g.yaml"
    extra = f", admin_listen: '{admin}'" if admin else ""
    config.write_text(f"gateway: {{name: g, listen: '{listen}'{extra}}}\n"
                      "backends: {b: {url: 'http://127.0.0.1:9'}}\nroutes: [{path: /x, backend: b}]\n")
    return subprocess.run([sys.executable, "-m", "hub.cli.main", "gateway", "--config", str(config), "--check"],
                          capture_output=True, text=True, timeout=60)


def test_a_non_loopback_listener_is_warned_about(tmp_path):
    public = run_check(tmp_path, "0.0.0.0:8080", admin="10.0.0.5:9100")
    assert public.returncode == 0
    assert "gateway.listen 0.0.0.0 is not a loopback address" in public.stderr
    assert "gateway.admin_listen 10.0.0.5" in public.stderr
    local = run_check(tmp_path, "127.0.0.1:8080", admin="[::1]:9100")
    assert local.returncode == 0 and local.stderr == ""


def test_shadow_methods_that_are_never_shadowed_are_warned_about(tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text("gateway: {name: g, listen: '127.0.0.1:8080'}\n"
                      "backends: {b: {url: 'http://127.0.0.1:9'}, s: {url: 'http://127.0.0.1:10'}}\n"
                      "routes: [{path: /x, backend: b, shadow: {backend: s, percent: 5, methods: [GET, HEAD, DELETE]}}]\n")
    done = subprocess.run([sys.executable, "-m", "hub.cli.main", "gateway", "--config", str(config), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "routes[0].shadow.methods: DELETE is never shadowed" in done.stderr
