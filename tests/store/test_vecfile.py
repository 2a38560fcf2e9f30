"""The vector file a large store's processes share: written once, mapped, read by row, and
refused when it is damaged or belongs to another graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidx.store.vecfile import PAGE, VectorFile, scan


def _write(tmp_path: Path, rows: np.ndarray, rowids: np.ndarray, token: str = "t1") -> tuple[Path, Path]:
    path, side = tmp_path / "v.i8.npy", tmp_path / "v.rows.npz"
    f = VectorFile.begin(path, len(rows), rows.shape[1])
    for i in range(0, len(rows), 7):  # written in pieces, as the builder does
        f.write(rows[i : i + 7].tobytes())
    VectorFile.finish(f, path, side, rowids, np.ones(len(rows), dtype=np.float32), token,
                      basis=np.eye(rows.shape[1], dtype=np.float32))
    return path, side


def test_rows_are_read_back_by_rowid(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = rng.integers(-127, 128, (100, 16)).astype(np.int8)
    rowids = np.arange(1, 201, 2, dtype=np.int64)  # gaps: deleted rows
    path, side = _write(tmp_path, rows, rowids)
    assert np.load(path).shape == (100, 16)  # an ordinary .npy file
    vf = VectorFile.open(path, side, 16, "t1")
    assert vf is not None and vf.extra["basis"].shape == (16, 16)
    at = vf.rows_of(np.array([1, 2, 199, 201, 51]))
    assert at.tolist() == [0, -1, 99, -1, 25]
    assert np.array_equal(vf.take(np.array([99, 0, 25])), rows[[99, 0, 25]])
    seen: dict[int, np.ndarray] = {}
    scan(vf, np.arange(100), lambda i, block: seen.__setitem__(i, block.copy()))
    assert np.array_equal(np.vstack([seen[i] for i in sorted(seen)]), rows)
    vf.release()
    assert np.array_equal(vf.take(np.array([3])), rows[[3]])  # released pages are read again


def test_a_damaged_or_foreign_file_is_refused(tmp_path: Path) -> None:
    rows = np.ones((10, 8), dtype=np.int8)
    path, side = _write(tmp_path, rows, np.arange(10, dtype=np.int64))
    assert VectorFile.open(path, side, 8, "another graph") is None
    assert VectorFile.open(path, side, 16, "t1") is None  # other dims
    path.write_bytes(path.read_bytes()[:100])  # cut short
    assert VectorFile.open(path, side, 8, "t1") is None
    side.unlink()
    assert VectorFile.open(path, side, 8, "t1") is None


def test_rows_evicted_from_the_page_cache_are_asked_for_at_once(tmp_path: Path) -> None:
    """After the kernel dropped the file's pages, a read of scattered rows asks for exactly the
    pages those rows lie on, in one pass, and reads the same rows; cached pages are not asked for."""
    import os

    rng = np.random.default_rng(2)
    dims = 384
    rows = rng.integers(-127, 128, (4000, dims)).astype(np.int8)
    path, side = _write(tmp_path, rows, np.arange(1, 4001, dtype=np.int64))
    vf = VectorFile.open(path, side, dims, "t1")
    assert vf is not None
    pick = np.sort(rng.choice(4000, 60, replace=False))
    vf.release()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert vf.prefetch(np.arange(100, 400)) == 0  # a dense read is left to the kernel's read-ahead
    first = vf.prefetch(pick)
    if first == 0:
        pytest.skip("the kernel kept the file's pages cached (or mincore is missing): nothing to ask for")
    start = 128 + pick * dims  # the .npy header is 128 bytes
    pages = np.unique(np.concatenate([start // PAGE, (start + dims - 1) // PAGE]))
    assert first == len(pages)
    assert np.array_equal(vf.take(pick), rows[pick])
    assert vf.prefetch(pick) == 0  # now cached
