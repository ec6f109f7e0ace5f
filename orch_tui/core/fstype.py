"""Is a folder on a network filesystem? Then SQLite's WAL and Unix sockets cannot live there.

SQLite's WAL keeps its index in shared memory (`-shm`, mmap'ed), which only works when every
process using the journal is on one machine and the filesystem keeps mmap coherent: not NFS,
SMB, Ceph or 9p. A Unix socket is a local kernel object: on a network filesystem it cannot be
created, or other machines see a name they cannot connect to. So when the output folder is on
one of these, the run keeps its journal and its control socket on the driver's local disk
(`statehome.py`).

The type comes from statfs(2)'s `f_type` (through libc: Python's os.statvfs has no f_type), and
for FUSE from the mount's subtype in /proc/self/mountinfo (sshfs and GlusterFS are network
filesystems; a local FUSE filesystem is not). `ORCH_TUI_NETWORK_FS=1` (or `0`) overrides the
answer: for a filesystem this list does not know, and for the tests, which cannot mount NFS.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

#: Overrides the detection: "1" treats the output folder as on a network filesystem, "0" not.
OVERRIDE_VARIABLE = "ORCH_TUI_NETWORK_FS"

#: statfs magic numbers (linux/magic.h and the filesystems' own headers) of network filesystems.
NETWORK_MAGIC = {
    0x6969: "nfs",
    0x517B: "smb",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x00C36400: "ceph",
    0x5346414F: "afs",
    0x6B414653: "afs",
    0x0BD00BD0: "lustre",
    0x01021997: "9p",
    0x013111A8: "ibrix",
    0x47504653: "gpfs",
    0x19830326: "fhgfs",
    0xAAD7AAEA: "panfs",
}
FUSE_MAGIC = 0x65735546
#: FUSE subtypes (mountinfo's `fuse.<subtype>`) that are network filesystems.
NETWORK_FUSE = frozenset({"sshfs", "glusterfs", "s3fs", "rclone", "cephfs", "moosefs", "lizardfs"})

_STATFS_SIZE = 256  # larger than any architecture's struct statfs; f_type is its first word


def _statfs_type(path: Path) -> int | None:
    """statfs(2)'s f_type for `path`, or None when libc cannot be asked."""
    try:
        # The process's own symbols, libc's among them: find_library("c") would run
        # `ldconfig -p` (a fork and an exec) at every run's start.
        libc = ctypes.CDLL(None, use_errno=True)
        statfs = libc.statfs
    except (OSError, AttributeError):
        return None
    buffer = ctypes.create_string_buffer(_STATFS_SIZE)
    if statfs(os.fsencode(path), buffer) != 0:
        return None
    # `f_type` is the first member, a long (__fsword_t) on every Linux architecture.
    return ctypes.c_ulong.from_buffer(buffer).value & 0xFFFFFFFF


def _mount_type(path: Path) -> str | None:
    """The filesystem type of the mount holding `path`, from /proc/self/mountinfo (the longest
    mount point that is a prefix of its real path)."""
    try:
        real = os.path.realpath(path)
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    best, found = -1, None
    for line in lines:
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not tail:
            continue
        mount = parts[4].replace("\\040", " ")
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) > best:
            best, found = len(mount), tail.split()[0]
    return found


def network_filesystem(path: Path) -> str | None:
    """The network filesystem `path` is on (`nfs`, `cifs`, `fuse.sshfs`...), or None for a local
    one. `path` must exist (the output folder, once created)."""
    override = os.environ.get(OVERRIDE_VARIABLE, "").strip().lower()
    if override in ("1", "yes", "true"):
        return f"a network filesystem ({OVERRIDE_VARIABLE}={override})"
    if override in ("0", "no", "false"):
        return None
    magic = _statfs_type(path)
    if magic is not None and magic != FUSE_MAGIC:
        return NETWORK_MAGIC.get(magic)
    kind = _mount_type(path)
    if kind is None:
        return None
    if kind.startswith("fuse."):
        return kind if kind.split(".", 1)[1] in NETWORK_FUSE else None
    base = kind.split(".", 1)[0]
    return kind if base in {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "9p", "afs"} else None
