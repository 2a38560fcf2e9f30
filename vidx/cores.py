"""How much of the machine this process may use: cores (CPU affinity and a container's CPU
quota) and available memory. ``vidx serve`` sizes its worker processes from it."""

from __future__ import annotations

import math
import os
from pathlib import Path

MAX_AUTO_WORKERS = 4  # beyond this a search server is rarely CPU-bound; memory grows per process
GIB_PER_WORKER = 1.0  # a process holds the embedding model and the store's columns (~0.65 GB at 100 k events)


CGROUP = Path("/sys/fs/cgroup")


def usable_cores(cgroup_root: Path = CGROUP) -> int:
    """Cores this process may run on: its CPU affinity, lowered to a cgroup v2 CPU quota
    (``cpu.max``, what ``docker run --cpus`` sets) when there is one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def available_gib(meminfo: Path = Path("/proc/meminfo"), cgroup_root: Path = CGROUP) -> float | None:
    """``MemAvailable`` in GiB, lowered to what a cgroup v2 memory limit (``memory.max``, what
    ``docker run --memory`` sets) leaves; None where the kernel says neither."""
    free: float | None = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) / (1 << 20)
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (cgroup_root / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup_root / "memory.current").read_text().strip())
            left = max(0, int(limit) - used) / (1 << 30)
            free = left if free is None else min(free, left)
    except (OSError, ValueError):
        pass
    return free


def serve_processes(setting: int | str, cores: int | None = None, memory_gib: float | None = None) -> int:
    """The number of web processes for ``VIDX_WEB_WORKERS``: a number as given; ``auto``: one per
    usable core, at most :data:`MAX_AUTO_WORKERS` and one per :data:`GIB_PER_WORKER` of
    available memory, at least one."""
    if setting != "auto":
        return int(setting)
    cores = usable_cores() if cores is None else cores
    memory_gib = available_gib() if memory_gib is None else memory_gib
    n = min(cores, MAX_AUTO_WORKERS)
    if memory_gib is not None:
        n = min(n, int(memory_gib // GIB_PER_WORKER))
    return max(1, n)
