"""How much of the machine this process may use: cores (CPU affinity and a container's CPU
quota) and available memory. ``vidx serve`` sizes its worker processes from it."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

log = logging.getLogger("vidx.cores")

MAX_AUTO_WORKERS = 4  # beyond this a search server is rarely CPU-bound; memory grows per process
GIB_PER_WORKER = 1.0  # a process holds the embedding model (~0.3 GB) and the store's columns


def usable_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
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


def available_gib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """``MemAvailable`` in GiB, or None where the kernel does not say."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / (1 << 20)
    except (OSError, ValueError, IndexError):
        return None
    return None


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
