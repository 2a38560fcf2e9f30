#!/usr/bin/env python3
"""Decoders side by side: frames at the basic analyzer's sampling rate from one 720p H.264 file.

Each way gives the frames of a ``--fps`` grid (the first frame at or after each step) as
decoded pictures in memory (PyAV: YUV planes; decord: RGB arrays, its only output; ffmpeg:
raw YUV read from its pipe), from one process, on the same file (read once before, so it is cached):

  pyav-every-1t     PyAV, every frame decoded, one thread          (the baseline: decode-every-frame)
  pyav-every        PyAV, every frame decoded, frame threads
  pyav-nonref-1t    PyAV, frames nothing refers to skipped, one thread
  pyav-nonref       the same with frame threads
  pyav-keyframes    PyAV, keyframes only (not exact: one frame per GOP; for reference)
  decord            decord VideoReader.get_batch on the grid's frame indices (when installed)
  decord-seq        decord, one frame at a time in order (when installed)
  ffmpeg            an ffmpeg subprocess with -vf fps=N, raw YUV on a pipe (when ffmpeg is on PATH)
  vidx              vidx's sampler (ingest.sampling.iter_samples, mode auto)

"exact" says whether the frames' times are within one frame of the grid (checked against
pyav-every-1t). Prints and writes JSON (``--out``).

  python bench/decoders.py --film bench/results/lecture-180s.mp4 --out bench/results/decoders.json
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchio import machine, write_report  # noqa: E402


def _grid(times: list[float], fps: float) -> list[float]:
    out, nxt = [], times[0] if times else 0.0
    for t in times:
        if t < nxt - 1e-6:
            continue
        out.append(t)
        while nxt <= t + 1e-6:
            nxt += 1 / fps
    return out


def pyav(path: Path, fps: float, threads: bool, skip: str | None) -> list[float]:
    import av

    times: list[float] = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        if skip:
            vs.codec_context.skip_frame = skip
        if threads:
            vs.thread_type = "AUTO"
        else:
            vs.thread_count = 1
        nxt = 0.0
        start = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        for frame in c.decode(vs):
            t = float(frame.time) - start
            if t < nxt - 1e-6:
                continue
            frame.planes  # noqa: B018 - the decoded picture, as vidx's sampler hands it on
            times.append(round(t, 4))
            while nxt <= t + 1e-6:
                nxt += 1 / fps
    return times


def decord_batch(path: Path, fps: float, seq: bool) -> list[float]:
    import decord

    vr = decord.VideoReader(str(path), num_threads=1 if seq else 0)
    src = vr.get_avg_fps()
    idx = [int(round(i * src / fps)) for i in range(int(len(vr) / src * fps) + 1)]
    idx = [i for i in idx if i < len(vr)]
    if seq:
        for i in idx:
            vr[i].asnumpy()
    else:
        for k in range(0, len(idx), 32):
            vr.get_batch(idx[k:k + 32]).asnumpy()
    return [round(i / src, 4) for i in idx]


def ffmpeg_pipe(path: Path, fps: float, w: int, h: int) -> list[float]:
    cmd = ["ffmpeg", "-loglevel", "error", "-i", str(path), "-vf", f"fps={fps}",
           "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"]
    size = w * h * 3 // 2
    times: list[float] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        n = 0
        while len(proc.stdout.read(size)) == size:
            times.append(round(n / fps, 4))
            n += 1
    return times


def vidx_sampler(path: Path, fps: float) -> list[float]:
    from ingest.sampling import iter_samples

    times = []
    for s in iter_samples(path, fps, mode="auto"):
        times.append(s.t)
    return times


def _exact(got: list[float], ref: list[float], frame: float) -> bool:
    if abs(len(got) - len(ref)) > 1:
        return False
    return all(abs(a - b) <= frame + 1e-3 for a, b in zip(got, ref))


def compare(film: Path, fps: float, repeat: int = 1) -> dict[str, Any]:
    import av

    with av.open(str(film)) as c:
        vs = c.streams.video[0]
        w, h = vs.codec_context.width, vs.codec_context.height
        src_fps = float(vs.average_rate or 25)
        duration = float(vs.duration * vs.time_base) if vs.duration else float(c.duration or 0) / 1e6
    film.read_bytes()  # in the page cache for everyone
    ways: dict[str, Callable[[], list[float]]] = {
        "pyav-every-1t": lambda: pyav(film, fps, False, None),
        "pyav-every": lambda: pyav(film, fps, True, None),
        "pyav-nonref-1t": lambda: pyav(film, fps, False, "NONREF"),
        "pyav-nonref": lambda: pyav(film, fps, True, "NONREF"),
        "pyav-keyframes": lambda: pyav(film, fps, True, "NONKEY"),
        "vidx": lambda: vidx_sampler(film, fps),
    }
    skipped: dict[str, str] = {}
    try:
        import decord  # noqa: F401

        ways["decord"] = lambda: decord_batch(film, fps, False)
        ways["decord-seq"] = lambda: decord_batch(film, fps, True)
    except ImportError:
        skipped["decord"] = "not installed (pip install decord: x86-64 Linux wheels only)"
    if shutil.which("ffmpeg"):
        ways["ffmpeg"] = lambda: ffmpeg_pipe(film, fps, w, h)
    else:
        skipped["ffmpeg"] = "no ffmpeg on PATH"
    results: dict[str, Any] = {}
    best: dict[str, float] = {}
    got: dict[str, list[float]] = {}
    for _ in range(repeat):  # round-robin, so a busy moment of the machine does not hit one decoder only
        for name, fn in ways.items():
            t0 = time.perf_counter()
            got[name] = fn()
            dt = time.perf_counter() - t0
            best[name] = min(best.get(name, dt), dt)
    ref = _grid(got["pyav-every-1t"], fps)
    for name in ways:
        dt = best[name]
        results[name] = {"seconds": round(dt, 3), "frames": len(got[name]),
                         "x_real_time": round(duration / dt, 1) if dt else None,
                         "exact": _exact(got[name], ref, 1 / src_fps)}
    base = results["pyav-every-1t"]["seconds"]
    exact = {k: v["seconds"] for k, v in results.items() if v["exact"]}
    fastest = min(exact, key=lambda k: exact[k])
    for v in results.values():
        v["vs_baseline"] = round(v["seconds"] / base, 3)
    return {
        "bench": "decoders", "film": {"path": film.name, "size": f"{w}x{h}", "fps": src_fps,
                                      "seconds": round(duration, 2)},
        "sample_fps": fps, "machine": machine(),
        "results": results, "skipped": skipped, "fastest_exact": fastest,
        "vidx_vs_fastest_exact": round(results["vidx"]["seconds"] / exact[fastest], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--film", type=Path, required=True, help="an H.264 video (bench/ingest_bench.py makes one)")
    ap.add_argument("--fps", type=float, default=4.0, help="sampling rate (VIDX_SCENE_FPS's default)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds over all decoders; each one's best is kept")
    ap.add_argument("--out", type=Path, default=Path("bench/results/decoders.json"))
    args = ap.parse_args()
    rep = compare(args.film, args.fps, args.repeat)
    write_report(args.out, rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
