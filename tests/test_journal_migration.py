"""A journal from the previous release is resumed, never refused; later schemas migrate it."""
# pylint: disable=missing-function-docstring

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from orch_tui.core.journal import JOURNAL_NAME, SCHEMA_VERSION, Journal, JournalError
from orch_tui.core.journal.schema import check_schema
from tests.fixtures.make_journal_v1 import NAMES, write_workspace
from tests.helpers import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "journal_v1.sql"
#: Records the input it ran; succeeds this time (bad.bin failed in the old run).
SCRIPT = "import os, sys; open(sys.argv[2], 'a').write(os.path.basename(sys.argv[1]) + '\\n')"


def old_workspace(root: Path) -> Path:
    """The fixture run's workspace, its journal loaded where the old release left it; the config
    path."""
    config = write_workspace(root, SCRIPT)
    # The old release made its folder 0o775 and its journal through the umask (022 here).
    state = root / "out" / ".orch-tui"
    state.mkdir(parents=True, mode=0o755)
    conn = sqlite3.connect(state / JOURNAL_NAME)
    try:
        conn.executescript(FIXTURE.read_text(encoding="utf-8").replace("@WORKSPACE@", str(root)))
    finally:
        conn.close()
    os.chmod(state / JOURNAL_NAME, 0o644)
    return config


def test_the_fixture_is_the_previous_release_s_interrupted_run():
    dump = FIXTURE.read_text(encoding="utf-8")
    assert "INSERT INTO \"meta\" VALUES('schema_version','1');" in dump
    for state in ("succeeded", "failed", "killed"):
        assert f"'{state}'" in dump
    assert "'calibration'" in dump  # the old source name for a window calibration


def test_a_journal_written_by_the_previous_release_is_resumed(tmp_path):
    root = tmp_path.resolve() / "ws"
    config = old_workspace(root)
    done = {
        Path(line.split("'")[1]).name
        for line in FIXTURE.read_text(encoding="utf-8").splitlines()
        if line.startswith('INSERT INTO "jobs"') and "'succeeded'" in line
    }
    assert done and len(done) < len(NAMES)
    result = run_cli("--headless", str(config), cwd=root, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # Done jobs are not redone; the failed, the killed and the never started run, once each.
    ran = (root / "record").read_text(encoding="utf-8").split()
    assert sorted(ran) == sorted(set(NAMES) - done)
    assert f"{len(done)} jobs done in a previous run are skipped" in result.stdout
    # The old release's calibration row seeds this run instead of a new calibration.
    assert "figures learned in a previous run" in result.stdout
    assert "calibrating:" not in result.stdout
    conn = sqlite3.connect(root / "out" / ".orch-tui" / JOURNAL_NAME)
    try:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        states = dict(conn.execute("SELECT input, state FROM jobs").fetchall())
        reasons = dict(conn.execute("SELECT input, reason FROM jobs").fetchall())
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        conn.close()
    assert version == (str(SCHEMA_VERSION), )
    assert runs == 2
    assert states == {str(root / "in" / name): "succeeded" for name in NAMES}
    # Schema 2's reason column: NULL in the rows the old release wrote and this run skipped, how
    # the job ended ('' for a success) in the rows this run wrote; read back as text either way.
    assert {reasons[str(root / "in" / name)] for name in done} == {None}
    assert {reasons[str(root / "in" / name)] for name in set(NAMES) - done} == {""}
    with Journal.open(root / "out" / ".orch-tui") as journal:
        records = journal.previous_jobs().values()
    assert {(record.reason, record.detail) for record in records} == {("", "")}


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])


def test_migrations_run_in_order_each_with_its_version_bump(tmp_path):
    Journal.open(tmp_path).close()
    path = tmp_path / JOURNAL_NAME
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        steps = {
            SCHEMA_VERSION: "ALTER TABLE jobs ADD COLUMN note TEXT",
            SCHEMA_VERSION + 1: "UPDATE jobs SET note = 'migrated'; CREATE TABLE extra(x)",
        }
        check_schema(conn, path, version=SCHEMA_VERSION + 2, migrations=steps)
        assert schema_version(conn) == SCHEMA_VERSION + 2
        assert "note" in [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
        assert conn.execute("SELECT count(*) FROM extra").fetchone() == (0, )
        check_schema(conn, path, version=SCHEMA_VERSION + 2, migrations=steps)  # nothing to do
        assert schema_version(conn) == SCHEMA_VERSION + 2
    finally:
        conn.close()


def test_a_failed_migration_changes_nothing_and_a_missing_one_is_one_line(tmp_path):
    Journal.open(tmp_path).close()
    path = tmp_path / JOURNAL_NAME
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        broken = {SCHEMA_VERSION: "ALTER TABLE jobs ADD COLUMN note TEXT; SELECT * FROM nowhere"}
        with pytest.raises(sqlite3.OperationalError):
            check_schema(conn, path, version=SCHEMA_VERSION + 1, migrations=broken)
        assert not conn.in_transaction and schema_version(conn) == SCHEMA_VERSION
        assert "note" not in [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
        with pytest.raises(JournalError,
                           match=f"cannot migrate a journal of schema version "
                           f"{SCHEMA_VERSION}"):
            check_schema(conn, path, version=SCHEMA_VERSION + 1, migrations={})
    finally:
        conn.close()
