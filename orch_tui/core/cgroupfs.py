"""The limits of the orchestrator's own cgroup: memory, CPU quota and memory pressure.

A container or a systemd slice gives a process far less than the host's figures say: the scaling
rule, the gauges and the memory guard must divide the group's memory, or the kernel's OOM killer
divides it for them. Cgroup v2 (the unified hierarchy) and v1 (one hierarchy per controller) are
both read; every ancestor's limit binds too, so the tightest along the path wins.

Every path is read under `root` (normally `/`), so tests build a fake tree in a temporary folder.
Nothing here raises for a missing or unreadable file: no cgroup file system means no limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

#: v1 writes "no limit" as the largest page-aligned 64-bit value; anything above this is none.
_UNLIMITED = 1 << 60


@dataclass(frozen=True, slots=True)
class CgroupLimits:
    """What the group (and its ancestors) allows; None where nothing limits."""

    memory_limit: int | None = None  # bytes: the tightest memory limit on the path
    available_memory: int | None = None  # bytes: the least headroom on the path (page cache free)
    cpu_quota: float | None = None  # cores: quota / period, the tightest on the path
    memory_pressure: float | None = None  # `some avg10` of memory.pressure (v2), percent

    @property
    def cores(self) -> int | None:
        """Whole cores the quota allows (1.5 cores of quota can keep 2 jobs busy)."""
        return None if self.cpu_quota is None else max(1, math.ceil(self.cpu_quota))


@dataclass(frozen=True, slots=True)
class Groups:
    """Where the orchestrator's groups are: directories under `root`, innermost first, up to the
    mount (exclusive of nothing: the mount's own directory is the last entry)."""

    unified: tuple[Path, ...] = ()  # cgroup v2
    memory: tuple[Path, ...] = ()  # cgroup v1 memory controller
    cpu: tuple[Path, ...] = ()  # cgroup v1 cpu controller


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except (OSError, ValueError):
        return None


def _number(path: Path) -> int | None:
    text = _read(path)
    if text is None or not text.lstrip("-").isdigit():
        return None
    return int(text)


def _stat(path: Path, *keys: str) -> int:
    """The first of `keys` found in a `memory.stat` file, else 0."""
    values: dict[str, str] = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        values[key] = value
    for key in keys:
        if values.get(key, "").isdigit():
            return int(values[key])
    return 0


def _octal(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as `\\ooo`."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _chain(mount: Path, mount_root: str, own: str) -> tuple[Path, ...]:
    """Our group's directory and each ancestor's, up to the mount. A mount of a subtree (a
    container's namespace) shows paths relative to it; a path outside it (another namespace)
    leaves only the mount itself, which is the container's group."""
    path = PurePosixPath(own)
    base = PurePosixPath(mount_root)
    if base != PurePosixPath("/"):
        path = PurePosixPath("/", path.relative_to(base)) if path.is_relative_to(base) else \
            PurePosixPath("/")
    parts = path.parts[1:]
    return tuple(mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1))


def find_groups(root: Path = Path("/")) -> Groups:
    """Our groups from /proc/self/cgroup and the mounts from /proc/self/mountinfo."""
    memberships: dict[str, str] = {}
    for line in (_read(root / "proc/self/cgroup") or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            for controller in fields[1].split(",") if fields[1] else [""]:
                memberships[controller] = fields[2]
    found: dict[str, tuple[Path, ...]] = {}
    for line in (_read(root / "proc/self/mountinfo") or "").splitlines():
        head, _, tail = line.partition(" - ")
        parts, kind = head.split(), tail.split()
        if len(parts) < 5 or len(kind) < 3:
            continue
        mount = root / _octal(parts[4]).lstrip("/")
        if kind[0] == "cgroup2":
            names = [""]
        elif kind[0] == "cgroup":
            names = [name for name in kind[2].split(",") if name in ("memory", "cpu")]
        else:
            continue
        for name in names:
            if name in memberships and name not in found:
                found[name] = _chain(mount, _octal(parts[3]), memberships[name])
    return Groups(unified=found.get("", ()),
                  memory=found.get("memory", ()),
                  cpu=found.get("cpu", ()))


def _tightest(pairs: list[tuple[int, int]]) -> tuple[int | None, int | None]:
    """(tightest limit, least headroom) of (limit, headroom) pairs; (None, None) if empty."""
    if not pairs:
        return None, None
    return min(limit for limit, _ in pairs), max(0, min(room for _, room in pairs))


def _memory_v2(groups: tuple[Path, ...]) -> tuple[int | None, int | None]:
    pairs = []
    for group in groups:
        limit, used = _number(group / "memory.max"), _number(group / "memory.current")
        if limit is not None and used is not None and limit < _UNLIMITED:
            pairs.append((limit, limit - used + _stat(group / "memory.stat", "inactive_file")))
    return _tightest(pairs)


def _memory_v1(groups: tuple[Path, ...]) -> tuple[int | None, int | None]:
    pairs = []
    for group in groups:
        limit = _number(group / "memory.limit_in_bytes")
        used = _number(group / "memory.usage_in_bytes")
        if limit is not None and used is not None and limit < _UNLIMITED:
            reclaimable = _stat(group / "memory.stat", "total_inactive_file", "inactive_file")
            pairs.append((limit, limit - used + reclaimable))
    return _tightest(pairs)


def _quota_v2(groups: tuple[Path, ...]) -> float | None:
    quotas = []
    for group in groups:
        fields = (_read(group / "cpu.max") or "").split()
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit() and int(fields[1]):
            quotas.append(int(fields[0]) / int(fields[1]))
    return min(quotas, default=None)


def _quota_v1(groups: tuple[Path, ...]) -> float | None:
    quotas = []
    for group in groups:
        quota, period = _number(group / "cpu.cfs_quota_us"), _number(group / "cpu.cfs_period_us")
        if quota is not None and period and quota > 0:
            quotas.append(quota / period)
    return min(quotas, default=None)


def _pressure(group: Path) -> float | None:
    """`some avg10` of a v2 group's memory.pressure: the share of the last 10 s in which some
    task waited for memory."""
    for line in (_read(group / "memory.pressure") or "").splitlines():
        fields = line.split()
        if fields[:1] == ["some"]:
            for field in fields[1:]:
                name, _, value = field.partition("=")
                if name == "avg10":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None


def read_limits(groups: Groups) -> CgroupLimits:
    """The limits on `groups` now (v2 figures first; v1 where v2 has no controller)."""
    limit, available = _memory_v2(groups.unified)
    if limit is None:
        limit, available = _memory_v1(groups.memory)
    quota = _quota_v2(groups.unified)
    if quota is None:
        quota = _quota_v1(groups.cpu)
    pressure = _pressure(groups.unified[0]) if groups.unified else None
    return CgroupLimits(memory_limit=limit,
                        available_memory=available,
                        cpu_quota=quota,
                        memory_pressure=pressure)
