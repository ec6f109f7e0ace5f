"""Where a run keeps its journal: beside the outputs, or on this machine's disk.

Normally the journal lives in the output folder's private state folder
(`<output_dir>/.orch-tui/journal.sqlite3`). When the output folder is on a network filesystem
(core/fstype.py: NFS, SMB, Ceph...), SQLite's WAL cannot work there, so the journal goes to a
private folder on the driver's local disk, one per output folder:
`$XDG_STATE_HOME/orch-tui/runs/<hash of the output folder>/` (default `~/.local/state/...`).
The control socket follows the same rule (control/server.py puts it in the local runtime folder).

The shared state folder then holds `journal.where`: the host and the local folder, so
`orch-tui status` on another machine says where the run's journal is instead of finding none.
The locks stay on the shared folder: they are what keeps a second driver, on any machine, out.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from orch_tui.core.fstype import network_filesystem
from orch_tui.core.statedir import PRIVATE_DIR_MODE, STATE_DIR_NAME, StateError, check_private

#: In the shared state folder: where the journal of a run on a network filesystem is.
WHERE_NAME = "journal.where"


def local_base() -> Path:
    """`$XDG_STATE_HOME/orch-tui/runs` (default `~/.local/state/orch-tui/runs`)."""
    home = os.environ.get("XDG_STATE_HOME", "")
    base = Path(home) if os.path.isabs(home) else Path.home() / ".local" / "state"
    return base / "orch-tui" / "runs"


def local_folder(output_dir: Path) -> Path:
    """The local folder of the output folder's journal: named by a hash of its absolute path."""
    digest = hashlib.sha256(os.fsencode(Path(output_dir).absolute())).hexdigest()
    return local_base() / digest[:24]


def journal_folder(output_dir: Path) -> tuple[Path, str | None]:
    """(the folder the journal of `output_dir` lives in, the network filesystem that put it on
    this machine's disk, or None). The output folder must exist (a run creates it first)."""
    output_dir = Path(output_dir)
    kind = network_filesystem(output_dir) if output_dir.is_dir() else None
    if kind is None:
        return output_dir / STATE_DIR_NAME, None
    return local_folder(output_dir), kind


def make_private(folder: Path) -> None:
    """Create `folder` and its missing parents 0o700; refuse a symlink or a folder that is not
    ours and private at the last step (StateError, one line)."""
    try:
        os.makedirs(folder.parent, mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.mkdir(folder, PRIVATE_DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StateError(f"{folder}: cannot create the local state folder: "
                         f"{exc.strerror or exc}") from None
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise StateError(f"{folder}: cannot open the local state folder (a symlink?): "
                         f"{exc.strerror or exc}") from None
    try:
        check_private(os.fstat(fd), folder, directory=True)
    finally:
        os.close(fd)


def where_text(folder: Path) -> bytes:
    """`journal.where`'s content: this host's name, then the local folder."""
    return os.fsencode(f"{socket.gethostname()}\n{folder}\n")


def read_where(output_dir: Path) -> tuple[str, str] | None:
    """(host, local folder) from the shared state folder's `journal.where`, or None."""
    try:
        fd = os.open(
            Path(output_dir) / STATE_DIR_NAME / WHERE_NAME,
            os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        lines = os.fsdecode(handle.read(8192)).splitlines()
    return (lines[0], lines[1]) if len(lines) >= 2 else None
