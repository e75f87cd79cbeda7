"""The README documents every setting and every command."""

from __future__ import annotations

from hub.cli.main import build_parser
from hub.settings import REPO_ROOT, describe

README = (REPO_ROOT / "README.md").read_text()


def test_readme_lists_every_setting():
    missing = [env for env, _, _ in describe() if f"`{env}`" not in README]
    assert missing == []


def test_readme_documents_every_command():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = [name for name in commands if f"`hub {name}" not in README]
    assert missing == []
