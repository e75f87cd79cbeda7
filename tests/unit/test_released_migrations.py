"""Released migrations are pinned: ``schemas/clickhouse/RELEASED`` lists every migration file with its
checksum as the migration runner records it in a store, so an edit to a released file fails here,
not later when ``hub migrate`` refuses a store that applied the file before the edit."""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.storage.migrations import MIGRATIONS_DIR, RETIRED, discover

RELEASED = MIGRATIONS_DIR / "RELEASED"


def released(path: Path = RELEASED) -> dict[str, str]:
    """File name -> checksum of each line of the list (``#`` lines are comments)."""
    pinned: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, checksum = line.split()
            pinned[name] = checksum
    return pinned


def problems(directory: Path = MIGRATIONS_DIR, listed: Path = RELEASED) -> list[str]:
    """What is wrong between the migration files and the list of released ones, one sentence each."""
    pinned = released(listed)
    found = {m.path.name: m.checksum for m in discover(directory, RETIRED)}
    out = []
    for name, checksum in pinned.items():
        if name not in found:
            out.append(f"migration {name} was released but its file is gone: restore it")
        elif found[name] != checksum:
            out.append(f"migration {name} was released: restore it and add a new migration instead "
                       f"(released checksum {checksum}, file now {found[name]})")
    for name, checksum in found.items():
        if name not in pinned:
            out.append(f"migration {name} is not in {listed.name}: add the line `{name} {checksum}` "
                       f"to {listed}")
    return out


def test_every_migration_is_released_and_unchanged():
    found = problems()
    assert not found, "\n".join(found)
    assert list(released()) == [m.path.name for m in discover()]  # in order, one line each


def copy(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "clickhouse"
    shutil.copytree(MIGRATIONS_DIR, folder)
    return folder, folder / "RELEASED"


def test_an_edited_released_migration_is_named_with_what_to_do(tmp_path):
    folder, listed = copy(tmp_path)
    sql = folder / "0002_requests.sql"
    sql.write_text(sql.read_text().replace("    source          LowCardinality(String)\n",
                                           "    source          LowCardinality(String),\n"
                                           "    tenant          LowCardinality(String)\n"))
    [problem] = problems(folder, listed)
    assert problem.startswith("migration 0002_requests.sql was released: restore it and add a new migration instead")


def next_number(folder: Path) -> int:
    """The number the next migration in ``folder`` takes."""
    return max(m.number for m in discover(folder, RETIRED)) + 1


def assert_an_unlisted_migration_gets_its_line(folder: Path, listed: Path) -> None:
    name = f"{next_number(folder):04d}_requests_tenant.sql"
    new = folder / name
    new.write_text("ALTER TABLE {db}.requests ADD COLUMN IF NOT EXISTS tenant LowCardinality(String) DEFAULT ''\n")
    [migration] = [m for m in discover(folder, RETIRED) if m.path.name == new.name]
    [problem] = problems(folder, listed)
    assert f"add the line `{name} {migration.checksum}`" in problem
    listed.write_text(listed.read_text() + f"{name} {migration.checksum}\n")
    assert problems(folder, listed) == []


def test_a_migration_missing_from_the_list_gets_the_exact_line_to_add(tmp_path):
    folder, listed = copy(tmp_path)
    assert_an_unlisted_migration_gets_its_line(folder, listed)


def test_the_unlisted_migration_takes_the_next_free_number_after_more_are_released(tmp_path):
    """The check above still holds once the next migrations (0019 and on) are released."""
    folder, listed = copy(tmp_path)
    for _ in range(2):
        number = next_number(folder)
        released_next = folder / f"{number:04d}_released_later.sql"
        released_next.write_text(f"SELECT {number}\n")
        [migration] = [m for m in discover(folder, RETIRED) if m.path.name == released_next.name]
        listed.write_text(listed.read_text() + f"{released_next.name} {migration.checksum}\n")
    assert problems(folder, listed) == []
    assert_an_unlisted_migration_gets_its_line(folder, listed)
