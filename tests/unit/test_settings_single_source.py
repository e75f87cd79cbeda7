"""Every HUB_* setting is read in one place: hub/settings.py.

The code outside it gets its settings from ``Settings`` (so ``hub config`` shows them and
``<home>/hub.env`` applies to them); this scans the product's code for reads of ``HUB_*``
variables from the process environment anywhere else.
"""

from __future__ import annotations

import argparse
import ast

from hub.settings import REPO_ROOT, load_settings

PACKAGES = ("hub", "streams", "dashboards")
#: the one reader, and the test helpers that clear HUB_* variables for the processes they start
ALLOWED = {"hub/settings.py", "hub/testing.py"}
#: reads not yet moved to Settings (file, variable): this list may only shrink
PENDING: set[tuple[str, str]] = set()


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _walk_scope(scope: ast.AST):
    """The nodes of one scope, without those of the functions defined in it."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, FUNCTIONS):
            todo.extend(ast.iter_child_nodes(node))


ENVIRON_NAMES = ("environ", "getenv", "environb", "getenvb")


def _environ_aliases(tree: ast.AST) -> set[str]:
    """Names bound to the environment by ``from os import environ`` (``as`` aliases too)."""
    return {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module == "os" for alias in node.names if alias.name in ENVIRON_NAMES}


def _mentions_environ(node: ast.AST, aliases: set[str] | frozenset[str] = frozenset()) -> bool:
    for sub in _walk_scope(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "os" \
                and sub.attr in ENVIRON_NAMES:
            return True
        if isinstance(sub, ast.Name) and sub.id in aliases:
            return True
    return False


def _hub_name(node: ast.AST | None) -> str | None:
    """The HUB_* name a key spells: a constant, or the constant start of a name built by ``+`` or
    an f-string (``"HUB_" + kind``, ``f"HUB_{kind}"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("HUB_"):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        start = _hub_name(node.left)
        return start + "..." if start else None
    if isinstance(node, ast.JoinedStr) and node.values:
        start = _hub_name(node.values[0])
        return start + "..." if start else None
    return None


def hub_environ_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable) of each read of a HUB_* name (a call with it as first argument, ``[...]``
    or ``in``) within a scope (module or function) that touches ``os.environ``/``os.getenv``:
    direct reads, reads through a name bound to the environment (``env = os.environ``) and
    through a local helper (``get("HUB_X")``) alike."""
    tree = ast.parse(source)
    aliases = _environ_aliases(tree)
    found: set[tuple[int, str]] = set()
    scopes = [tree] + [n for n in ast.walk(tree) if isinstance(n, FUNCTIONS)]
    for scope in scopes:
        if not _mentions_environ(scope, aliases):
            continue
        for node in _walk_scope(scope):
            name = None
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called not in ("startswith", "endswith"):  # .get, os.getenv, a local get(name) helper
                    name = _hub_name(node.args[0])
            elif isinstance(node, ast.Subscript):
                name = _hub_name(node.slice)
            elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                name = _hub_name(node.left)
            if name:
                found.add((node.lineno, name))
    return sorted(found)


def test_the_scanner_finds_direct_and_aliased_reads():
    source = (
        "import os\n"
        "A = os.environ.get('HUB_A', '')\n"
        "B = os.getenv('HUB_B')\n"
        "C = os.environ['HUB_C']\n"
        "def f(env=None):\n"
        "    env = os.environ if env is None else env\n"
        "    get = lambda name: env.get(name, '')\n"
        "    return env.get('HUB_D'), 'HUB_E' in env, get('HUB_G')\n"
        "def g(env):\n"
        "    return env.get('HUB_F')\n"  # not the process environment
        "KEEP = {k: v for k, v in os.environ.items() if not k.startswith('HUB_')}\n"
    )
    assert [name for _, name in hub_environ_reads(source)] == ["HUB_A", "HUB_B", "HUB_C", "HUB_D", "HUB_E", "HUB_G"]


def test_the_scanner_finds_reads_through_from_imports_and_built_names():
    source = (
        "from os import environ, getenv as ge\n"
        "A = environ.get('HUB_A')\n"
        "B = ge('HUB_B')\n"
        "def f(kind):\n"
        "    a = environ['HUB_' + kind]\n"
        "    return a, environ.get(f'HUB_{kind}_X')\n"
    )
    assert [name for _, name in hub_environ_reads(source)] == ["HUB_A", "HUB_B", "HUB_...", "HUB_..."]


def test_no_hub_variable_is_read_from_the_environment_outside_settings():
    reads = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel in ALLOWED:
                continue
            reads += [f"{rel}:{line}: {name}" for line, name in hub_environ_reads(path.read_text())
                      if (rel, name) not in PENDING]
    assert reads == [], "read these through hub.settings.Settings instead"


def test_grafana_and_actor_settings_come_from_settings_and_show_in_hub_config(tmp_path, capsys):
    from dashboards.config import grafana_config
    from hub.experiments.service import default_actor

    (tmp_path / "hub.env").write_text("HUB_GRAFANA_URL=http://grafana.test:3000/\nHUB_ACTOR=alice\n"
                                      "HUB_GRAFANA_CLICKHOUSE_PASSWORD=s3cret\nHUB_GRAFANA_REFRESH=10s\n")
    settings = load_settings({"HUB_HOME": str(tmp_path)})
    cfg = grafana_config(settings)
    assert (cfg.url, cfg.refresh, cfg.clickhouse_password) == ("http://grafana.test:3000", "10s", "s3cret")
    assert default_actor(settings) == "alice"
    from hub.cli.config import cmd_config

    assert cmd_config(argparse.Namespace(markdown=False), settings) == 0
    shown = capsys.readouterr().out
    assert "HUB_GRAFANA_URL=http://grafana.test:3000/" in shown and "HUB_ACTOR=alice" in shown
    assert "HUB_GRAFANA_CLICKHOUSE_PASSWORD=***" in shown and "s3cret" not in shown
