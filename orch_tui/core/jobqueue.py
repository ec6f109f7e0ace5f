"""The jobs waiting to run, in order, with the total size of their inputs kept beside them.

The scheduler asks for the typical remaining input size after every finished job and the
projected disk use on every sweep; keeping the byte total with the queue makes both O(1) at any
queue length. Every way in and out goes through here, so the total can never drift."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator


class JobQueue:
    """FIFO of job ids; `bytes` is the sum of their input sizes."""

    def __init__(self, size_of: Callable[[int], int]) -> None:
        self._size_of = size_of
        self._ids: collections.deque[int] = collections.deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __bool__(self) -> bool:
        return bool(self._ids)

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def push(self, job_id: int) -> None:
        """Queue a job at the end (a new job, a retry, a requeue)."""
        self._ids.append(job_id)
        self.bytes += self._size_of(job_id)

    def push_front(self, job_id: int) -> None:
        """Put a job back at the head, as if it had never been taken (it could not start
        through no fault of its own)."""
        self._ids.appendleft(job_id)
        self.bytes += self._size_of(job_id)

    def pop(self) -> int:
        """Take the next job (IndexError when empty)."""
        job_id = self._ids.popleft()
        self.bytes -= self._size_of(job_id)
        return job_id

    def remove(self, job_id: int) -> None:
        """Take one job out wherever it is (the operator killed it while queued)."""
        self._ids.remove(job_id)
        self.bytes -= self._size_of(job_id)

    def mean_size(self, empty: int) -> int:
        """The mean input size of the queued jobs; `empty` when there are none."""
        return self.bytes // len(self._ids) if self._ids else empty
