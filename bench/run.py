#!/usr/bin/env python3
"""`make bench`: every benchmark, its JSON under bench/results/, and the report docs/benchmarks.md.

  python bench/run.py                  # the full run (about 10 minutes on 2 cores)
  python bench/run.py --quick --results /tmp/r --report /tmp/r/benchmarks.md   # the CI check (< 3 min)

The quick form runs the same scripts on small inputs: it checks the harness, never a speed.
The GPU part runs when a CUDA GPU is present (else it is reported as unmeasured); in the
quick form it is a dry run of the same code on the CPU with a tiny random Qwen3-VL.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from benchio import last_json  # noqa: E402


def run(args: list[str], out: Path, timeout: float) -> None:
    t0 = time.perf_counter()
    print(f"--> {' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{args[0]} failed (exit {proc.returncode})")
    if not out.exists():  # a script that only prints (gpu_smoke when it skips)
        out.write_text(json.dumps(last_json(proc.stdout), indent=2))
    json.loads(out.read_text())  # valid JSON, or the run fails here
    print(f"    {out} ({time.perf_counter() - t0:.0f} s)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small inputs: check the harness (CI)")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks.md")
    a = ap.parse_args()
    res = a.results.resolve()
    res.mkdir(parents=True, exist_ok=True)
    work = res / "work"
    if a.quick:
        ingest = ["--seconds", "24", "--size", "320x180", "--fps", "10"]
        store = ["--events", "3000", "--queries", "20", "--baseline-queries", "3"]
        load = ["--events", "2000", "--clients", "2", "--seconds", "1"]
        gpu = ["--sizes", "tiny", "--device", "cpu", "--video-size", "192x108", "--new-tokens", "16", "--batch", "1,2"]
        decoders = ["--repeat", "1"]
    else:
        ingest = ["--seconds", "180"]
        store = ["--events", "100000"]
        load = ["--events", "100000", "--clients", "8", "--seconds", "30"]
        gpu = ["--sizes", "2b,8b", "--new-tokens", "256", "--cache", "dynamic,static", "--batch", "1,4,8"]
        decoders = ["--repeat", "2"]
    run(["bench/ingest_bench.py", *ingest, "--workdir", str(work / "ingest"), "--out", str(res / "ingest.json")],
        res / "ingest.json", 1800)
    run(["bench/decoders.py", "--film", str(work / "ingest" / "film.mp4"), *decoders,
         "--out", str(res / "decoders.json")], res / "decoders.json", 900)
    run(["bench/store_bench.py", *store, "--db", str(work / "store" / "events.sqlite3"),
         "--out", str(res / "store.json")], res / "store.json", 1800)
    run(["bench/load_bench.py", *load, "--data-dir", str(work / "load"), "--out", str(res / "load.json")],
        res / "load.json", 1800)
    run(["bench/embed_bench.py", "--out", str(res / "embed.json")], res / "embed.json", 600)
    run(["bench/ann_recall.py", *(["--sentences", "1500", "--queries", "30"] if a.quick else []),
         "--out", str(res / "ann_recall.json")], res / "ann_recall.json", 1800)
    run(["bench/speech_times.py", "--out", str(res / "speech_times.json")], res / "speech_times.json", 600)
    run(["bench/ask_bench.py", *(["--no-model"] if a.quick else []), "--out", str(res / "ask.json")],
        res / "ask.json", 1200)
    run(["bench/people_bench.py", *(["--quick"] if a.quick else []), "--out", str(res / "people.json")],
        res / "people.json", 900)
    (res / "gpu.json").unlink(missing_ok=True)
    run(["bench/gpu_smoke.py", *gpu, "--workdir", str(work / "gpu"), "--out", str(res / "gpu.json")],
        res / "gpu.json", 3600)
    from report import render

    render(res, a.report.resolve())
    print(f"wrote {a.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
