"""The README documents every setting and every command."""

from __future__ import annotations

from hub.cli.main import build_parser
from hub.settings import REPO_ROOT, describe

README = (REPO_ROOT / "README.md").read_text()


def test_readme_lists_every_setting():
    missing = [env for env, _, _ in describe() if f"`{env}`" not in README]
    assert missing == [], "add their rows to the README's settings table: `hub config --markdown` prints them"


def test_the_readme_settings_table_says_what_the_code_says():
    """Each setting's row, default and sentence included, is the one `hub config --markdown`
    prints, so a changed default or description cannot leave the README behind."""
    rows = {line.split("|")[1].strip().strip("`"): line for line in README.splitlines() if line.startswith("| `HUB_")}
    stale = [f"{rows.get(env)!r} should be {f'| `{env}` | `{default}` | {doc} |'!r}"
             for env, default, doc in describe() if rows.get(env) != f"| `{env}` | `{default}` | {doc} |"]
    assert stale == [], "replace these README rows with what `hub config --markdown` prints:\n" + "\n".join(stale)


def test_readme_documents_every_command():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = [name for name in commands if f"`hub {name}" not in README]
    assert missing == []


def _commands(parser, path=()):
    """(command path, its parser, the help its parent gives it) for the top parser and every subcommand."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


def _sections(text: str) -> dict[str, str]:
    """``docs/cli.md``: the text under each ``## `hub ...` `` heading, by command."""
    import re

    parts = re.split(r"^## `(hub[^`]*)`\s*$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_flag_of_every_command_is_documented_under_its_command():
    import argparse

    sections = _sections((REPO_ROOT / "docs" / "cli.md").read_text())
    missing = []
    for path, parser in _commands(build_parser()):
        section = sections.get(" ".join(("hub",) + path), "")
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                missing += [f"hub {' '.join(path)} {o}" for o in action.option_strings if f"`{o}`" not in section]
    assert missing == [], "add them to docs/cli.md under their command"


def test_every_subcommand_and_flag_has_help_text():
    import argparse

    silent = []
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                silent += [f"hub {' '.join(path + (name,))}" for name in action.choices if name not in helped]
            elif action.option_strings and not action.help:
                silent += [f"hub {' '.join(path)} {action.option_strings[0]}"]
    assert silent == []


def test_layout_table_lists_every_package_and_top_folder_and_only_paths_that_exist():
    import re

    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = set(re.findall(r"`([\w./-]+)`", layout))
    packages = {f"hub/{p.name}/" for p in (REPO_ROOT / "hub").iterdir() if (p / "__init__.py").is_file()}
    folders = {f"{p.name}/" for p in REPO_ROOT.iterdir()
               if p.is_dir() and not p.name.startswith(".") and not p.name.endswith(".egg-info")} - {"hub/"}
    assert sorted(packages - paths) == [] and sorted(folders - paths) == []
    listed = {p for p in paths if "/" in p and not p.startswith("hub ")}
    assert sorted(p for p in listed if not (REPO_ROOT / p).exists()) == []
