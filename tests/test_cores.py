"""How many web processes `vidx serve` starts: VIDX_WEB_WORKERS=auto follows the cores this
process may use (affinity and a container's CPU quota) and the memory available."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from vidx.config import load_settings
from vidx.cores import MAX_AUTO_WORKERS, available_gib, serve_processes, usable_cores


def test_auto_is_one_process_per_core_within_memory_and_a_cap() -> None:
    assert serve_processes("auto", cores=2, memory_gib=20.0) == 2
    assert serve_processes("auto", cores=64, memory_gib=200.0) == MAX_AUTO_WORKERS
    assert serve_processes("auto", cores=8, memory_gib=2.5) == 2  # one per GiB available
    assert serve_processes("auto", cores=1, memory_gib=20.0) == 1
    assert serve_processes("auto", cores=4, memory_gib=0.3) == 1  # never none
    assert serve_processes("auto", cores=3, memory_gib=None) == 3  # memory unknown: cores decide


def test_a_number_is_taken_as_given() -> None:
    assert serve_processes(1, cores=16, memory_gib=64.0) == 1
    assert serve_processes(6, cores=2, memory_gib=1.0) == 6


def test_a_container_cpu_quota_lowers_the_core_count(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # docker run --cpus 1.5
    assert usable_cores(tmp_path) == min(2, usable_cores(tmp_path / "none"))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cores(tmp_path) == usable_cores(tmp_path / "none") >= 1
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a core still runs one process
    assert usable_cores(tmp_path) == 1


def test_available_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text("MemTotal:       24000000 kB\nMemAvailable:    3145728 kB\n")
    no_cgroup = tmp_path / "no-cgroup"
    assert available_gib(tmp_path / "meminfo", no_cgroup) == 3.0
    assert available_gib(tmp_path / "missing", no_cgroup) is None
    (tmp_path / "memory.max").write_text(f"{2 << 30}\n")  # docker run --memory 2g, 0.5 GiB in use
    (tmp_path / "memory.current").write_text(f"{1 << 29}\n")
    assert available_gib(tmp_path / "meminfo", tmp_path) == 1.5
    (tmp_path / "memory.max").write_text("max\n")
    assert available_gib(tmp_path / "meminfo", tmp_path) == 3.0


def test_the_setting_takes_auto_or_a_number_and_nothing_else(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().web_workers == "auto"
    monkeypatch.setenv("VIDX_WEB_WORKERS", "3")
    assert load_settings().web_workers == 3
    for bad in ("0", "many", "65"):
        monkeypatch.setenv("VIDX_WEB_WORKERS", bad)
        with pytest.raises(ValidationError):
            load_settings()
