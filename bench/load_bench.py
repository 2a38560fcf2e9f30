#!/usr/bin/env python3
"""Search under load: `vidx serve` on an embedded store, N concurrent clients on loopback.

The store holds ``--events`` synthetic events (store_bench's Zipf texts and rank-48 vectors,
stamped with the embedding model, by default vidx's default (multilingual-e5-small), so
semantic queries are embedded by the real model). The server is the real `vidx serve` (waitress) in its own process. For each target,
``--clients`` threads with keep-alive connections send queries for ``--seconds``:

  healthz    GET /healthz (the baseline: the server's floor for one request)
  keyword    GET /api/search?mode=keyword
  semantic   GET /api/search?mode=semantic
  hybrid     GET /api/search?mode=hybrid
  page       GET /?q=...  (the search page, HTML)

Reported: requests/s, p50/p95 latency, errors, and the server's resident memory before the
first and after the last run.

  python bench/load_bench.py --events 100000 --clients 8 --seconds 30 --out bench/results/load.json
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchio import machine, write_report  # noqa: E402


def build_store(data_dir: Path, n: int, model: str, per_video: int = 500) -> float:
    from store_bench import DIMS, make_events

    from vidx.embed import canonical_model_id
    from vidx.schema import Event
    from vidx.store.embedded import EmbeddedStore

    data_dir.mkdir(parents=True, exist_ok=True)
    store = EmbeddedStore(data_dir / "events.sqlite3")
    if store.count() and store.embedding_model() != canonical_model_id(model):  # synthetic vectors: restamp
        with store._write() as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'embedding_model'", (canonical_model_id(model),))
    store.ensure_schema(canonical_model_id(model), DIMS)
    if store.count() == n:
        store.optimize_index()  # as the idle daemon does
        prepare_graph(store)
        return 0.0
    texts, vecs = make_events(n)
    t0 = time.perf_counter()
    for v0 in range(0, n, per_video):
        vid = f"{v0 // per_video:016x}"
        evs = [Event(event_id=f"{i:032x}", video_id=vid, video_path=f"/videos/{vid}.mp4", start_sec=float(i % 3600),
                     end_sec=float(i % 3600) + 2, description=texts[i], embedding=vecs[i].tolist())
               for i in range(v0, min(n, v0 + per_video))]
        store.replace_video_events(vid, evs)
    store.optimize_index()  # as the idle daemon does
    prepare_graph(store)
    store.close()
    return time.perf_counter() - t0


def prepare_graph(store: Any) -> None:
    """Build the vector graph file before the server starts (as a running daemon would have),
    so no measured request runs while it is being built."""
    import numpy as np

    from vidx.plan import Filters, Plan
    from vidx.store.base import SearchMode

    if store.count() < store.ann.min_rows or not store.ann.available():
        return
    plan = Plan(mode=SearchMode.semantic, words=(), phrase="", threshold=0.0, filters=Filters(), size=10,
                unrelated=0.0, paraphrase=0.9)
    q = np.ones(384, dtype=np.float32) / np.sqrt(384)
    store.search(plan, q)
    store.ann.ready.wait(3600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def hammer(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < stop_at:
            path = rng.choice(paths)
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            lat.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"requests": len(lat), "errors": errors[0], "rps": round(len(lat) / wall, 1),
            "p50_ms": round(1000 * pct(lat, 50), 1), "p95_ms": round(1000 * pct(lat, 95), 1)}


def serve_and_hammer(data: Path, workers: int, targets: dict[str, list[str]],
                     args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    port = free_port()
    env = {**os.environ, "VIDX_DATA_DIR": str(data), "VIDX_WATCH_DIR": str(data / "watch"), "VIDX_PORT": str(port),
           "VIDX_HOST": "127.0.0.1", "HF_HUB_OFFLINE": "1", "VIDX_LOG_LEVEL": "WARNING",
           "VIDX_WEB_WORKERS": str(workers)}
    env.pop("VIDX_UI_API_KEY", None)  # the benchmark signs in nowhere
    # the server's log goes to a file: a pipe nobody reads fills up and blocks the server
    errlog = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "vidx", "serve"], env=env, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=errlog)
    try:
        deadline = time.time() + 120
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                errlog.seek(0)
                err = errlog.read().decode(errors="replace")
                raise SystemExit(f"vidx serve did not start: {err[-2000:]}")
            time.sleep(0.3)
        # warm-up: the embedder and the columns are loaded once per process, by its first requests
        for name, paths in targets.items():
            warm = hammer(port, paths[-200:], max(2, workers * 4), min(3.0, args.seconds))
            if warm["errors"]:
                raise SystemExit(f"{name}: {warm['errors']} errors while warming up")
        before = server_rss(proc.pid)
        results: dict[str, dict[str, Any]] = {}
        for name, paths in targets.items():
            cpu0 = server_cpu_s(proc.pid)
            results[name] = r = hammer(port, paths, args.clients, args.seconds)
            r["server_cpu_ms_per_request"] = round(1000 * (server_cpu_s(proc.pid) - cpu0) / max(1, r["requests"]), 2)
        after = server_rss(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return results, {"before": before, "after": after}


def server_pids(pid: int) -> list[int]:
    """The server and its worker processes."""
    out = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def server_rss(pid: int) -> float:
    """Resident memory of the server and its worker processes (MB)."""
    return round(sum(rss_mb(p) for p in server_pids(pid)), 1)


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server and its worker processes have used so far: a
    figure per request that a busy neighbour on the machine disturbs less than latency."""
    total = 0
    for p in server_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def long_query_cpu(data: Path, model: str, inference_threads: int, rounds: int = 5) -> dict[str, Any]:
    """CPU milliseconds (every thread of this process, torch's included) of one 4,000-character
    query (2,000 words drawn from 30 distinct ones) per mode, in process on the same store,
    beside a two-word query in the same run. Inference runs on ``inference_threads`` (what each
    process of ``vidx serve`` gives it by default), and the store has finished its start-up work."""
    import torch
    from store_bench import VOCAB

    from vidx.embed import load_embedder
    from vidx.search import Query, SearchService
    from vidx.store.base import SearchMode
    from vidx.store.embedded import EmbeddedStore

    threads = torch.get_num_threads()
    torch.set_num_threads(inference_threads)
    emb = load_embedder(model)
    store = EmbeddedStore(data / "events.sqlite3", read_only=True)
    svc = SearchService(store, lambda: emb)
    rng = random.Random(11)
    out: dict[str, Any] = {}
    for mode in ("keyword", "hybrid"):
        svc.search(Query(q="warm up", mode=SearchMode(mode), size=10, video_id=None))
        if store._catalog is not None and store._catalog.warming:  # common words, remembered at start
            store._catalog.warmed.wait(600)
        for label, words in (("two_words", 2), ("4000_chars", 0)):
            cpu = []
            for _ in range(rounds):
                if words:
                    q = " ".join(rng.sample(VOCAB[100:5000], words))
                else:
                    pool = rng.sample(VOCAB[100:5000], 30)
                    q = " ".join(rng.choice(pool) for _ in range(2000))[:4000]
                t0 = time.process_time()
                svc.search(Query(q=q, mode=SearchMode(mode), size=10, video_id=None))
                cpu.append(1000 * (time.process_time() - t0))
            out[f"{mode}_{label}"] = {"cpu_ms_max": round(max(cpu), 1), "cpu_ms_median": round(sorted(cpu)[len(cpu) // 2], 1)}
    torch.set_num_threads(threads)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0, help="per target")
    ap.add_argument("--data-dir", type=Path, default=None, help="keep/reuse the store here")
    ap.add_argument("--out", type=Path, default=Path("bench/results/load.json"))
    ap.add_argument("--workers", default="1,2", help="VIDX_WEB_WORKERS values to run, in the same run")
    ap.add_argument("--embed-model", default=None, help="default: VIDX_EMBED_MODEL's default")
    args = ap.parse_args()
    from vidx.config import Settings
    from vidx.cores import serve_processes, usable_cores

    model = args.embed_model or str(Settings.model_fields["embed_model"].default)

    from store_bench import VOCAB

    data = args.data_dir or Path(tempfile.mkdtemp(prefix="vidx-load-"))
    build_s = build_store(data, args.events, model)
    rng = random.Random(3)
    # a fresh query for nearly every request: no cache of the server's can answer from memory
    queries = [" ".join(rng.sample(VOCAB[100:5000], 2)) for _ in range(20_000)]

    def api(mode: str) -> list[str]:
        return [f"/api/search?{urllib.parse.urlencode({'q': q, 'mode': mode})}" for q in queries]

    targets = {"healthz": ["/healthz"], "keyword": api("keyword"), "semantic": api("semantic"),
               "hybrid": api("hybrid"), "page": [f"/?{urllib.parse.urlencode({'q': q})}" for q in queries]}
    inference_threads = max(1, usable_cores() // serve_processes("auto"))  # as each vidx serve process
    long_query = long_query_cpu(data, model, inference_threads)
    results: dict[str, dict[str, Any]] = {}
    memory: dict[str, dict[str, float]] = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        res, mem = serve_and_hammer(data, workers, targets, args)
        label = "" if workers == 1 else f" ({workers} processes)"
        for name, r in res.items():
            r["p95_vs_healthz"] = round(r["p95_ms"] / (res["healthz"]["p95_ms"] or 1.0), 1)
            results[name + label] = r
        memory[str(workers)] = mem
    report = {
        "bench": "load", "events": args.events, "embedding_model": model, "clients": args.clients,
        "seconds_per_target": args.seconds,
        "machine": machine(),
        "store_build_s": round(build_s, 1), "server_rss_mb": memory["1"] if "1" in memory else next(iter(memory.values())),
        "server_rss_mb_by_processes": memory,
        "default_processes": serve_processes("auto"),  # what `vidx serve` starts here (VIDX_WEB_WORKERS=auto)
        "results": results,
        "long_query_cpu_ms": long_query, "long_query_target_cpu_ms": 100,
        "long_query_inference_threads": inference_threads,
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
