#!/usr/bin/env python3
"""Embedded-store benchmark: keyword, kNN (with recall@10) and hybrid latency at N events.

Baselines run side by side on the same data, and every figure is also given as a ratio
against them:
  keyword  vs  a LIKE scan over the same rows (what a store without FTS does)
  kNN      vs  reading every vector from SQLite per query (no in-memory matrix)
  hybrid   vs  the sum of the two baselines
Synthetic events: ~25 words from a Zipf vocabulary (10% of events Chinese), 384-dim
vectors of rank 48 plus noise (uniform random vectors make recall meaningless).

  python bench/store_bench.py --events 1000000 --out bench/results/store-1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidx.schema import Event  # noqa: E402
from vidx.store.embedded import EmbeddedStore  # noqa: E402

DIMS = 384
WORDS = [w.strip() for w in """time person year way day thing man world life hand part child eye woman place
work week case point government company number group problem fact door car road house
window light keeper lighthouse stairs dawn harbour ship river forest kitchen table chair
phone letter money train station morning night city street market music song dance
teacher student lecture board screen slide chart budget meeting report plan storm rain
sun snow fire water dog cat horse bird garden tree flower doctor nurse police camera""".split()]
ZH = ["我们", "明天", "早上", "火车站", "见面", "老师", "学生", "会议", "预算", "灯塔", "看守人", "楼梯"]


def vocabulary(size: int = 20_000, seed: int = 7) -> list[str]:
    """The named words first (the most frequent), then pronounceable pseudo-words."""
    rng = random.Random(seed)
    cons, vow = "bcdfghjklmnprstvwz", "aeiou"
    words = list(dict.fromkeys(WORDS))
    seen = set(words)
    while len(words) < size:
        w = "".join(rng.choice(cons) + rng.choice(vow) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


VOCAB = vocabulary()


def make_events(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    cum = list(np.cumsum([1 / (i + 1) for i in range(len(VOCAB))]))  # Zipf
    texts = []
    for i in range(n):
        if i % 10 == 0:
            texts.append("".join(rng.choices(ZH, k=6)))
        else:
            texts.append(" ".join(rng.choices(VOCAB, cum_weights=cum, k=25)))
    basis = nrng.standard_normal((48, DIMS)).astype(np.float32)
    coef = nrng.standard_normal((n, 48)).astype(np.float32)
    vecs = coef @ basis + 0.3 * nrng.standard_normal((n, DIMS)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return texts, vecs


def memory() -> dict[str, float]:
    """This process's resident memory (MB): all, private (anonymous) and file-backed (mapped
    files such as the shared vector graph, which the page cache shares between processes)."""
    out = {"rss": 0.0, "anon": 0.0, "file": 0.0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, val = line.partition(":")
            name = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"}.get(key)
            if name:
                out[name] = round(int(val.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def memory_probe(db: Path, queries: int) -> dict[str, object]:
    """The store's memory in a process of its own (as the UI holds it): open, load the columns
    and vectors, map the graph, then run keyword, semantic and hybrid plans."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--probe", str(db), "--queries", str(queries)],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"error": out.stderr[-500:]}
    result: dict[str, object] = json.loads(out.stdout)
    return result


def probe(db: Path, queries: int) -> int:
    from vidx.plan import build
    from vidx.query import parse
    from vidx.store.base import SearchMode

    start = memory()
    store = EmbeddedStore(db, read_only=True)
    store._sync()
    loaded = memory()
    conn = store._conn()
    rng = np.random.default_rng(5)
    n = store.count()
    qv = []
    for rid in rng.integers(1, n, queries):
        row = conn.execute("SELECT vec FROM vectors WHERE rowid = ?", (int(rid),)).fetchone()
        if row:
            v = np.frombuffer(row[0], dtype=np.float16).astype(np.float32)
            v = v + 0.5 * rng.standard_normal(len(v)).astype(np.float32) / np.sqrt(len(v))
            qv.append(v / np.linalg.norm(v))
    words = random.Random(5)
    for mode in ("keyword", "semantic", "hybrid"):
        for v in qv:
            store.search(build(parse(" ".join(words.sample(VOCAB[100:5000], 2))), SearchMode(mode), 0.25, size=10),
                         None if mode == "keyword" else v)
        if mode == "semantic" and store.count() >= store.ann.min_rows and store.ann.available():
            store.ann.ready.wait(3600)  # a graph being built: measure with it, as a running UI holds it
    searched = memory()
    from vidx.store.catalog import trim_memory

    trim_memory()
    trimmed = memory()
    print(json.dumps({"start": start, "columns_and_vectors_loaded": loaded, "after_searches": searched, "after_searches_trimmed": trimmed,
                      "graph_mapped": store.ann.mapped,
                      "store_private": round(searched["anon"] - start["anon"], 1),
                      "store_file_backed": round(searched["file"] - start["file"], 1),
                      "store_total": round(searched["rss"] - start["rss"], 1)}))
    return 0


def disk_breakdown(conn, events: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Bytes per event by table (SQLite's dbstat), and the text itself (document + words)."""
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except Exception:  # noqa: BLE001 (dbstat not compiled in)
        return {}
    per = {name: round(size / max(1, events), 1) for name, size in rows if size > 1e6}
    text = conn.execute("SELECT avg(length(CAST(doc AS BLOB))) FROM (SELECT doc FROM events LIMIT 20000)").fetchone()[0]
    return {"bytes_per_event_by_table": per, "document_json_bytes_per_event": round(text or 0, 1),
            "bytes_per_event": round(sum(s for _, s in rows) / max(1, events), 1)}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed(fn, queries) -> tuple[list[float], list]:  # type: ignore[no-untyped-def]
    lat, out = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        lat.append((time.perf_counter() - t) * 1000)
    return lat, out


def summary(lat: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(lat), 2), "p95_ms": round(pct(lat, 95), 2),
            "mean_ms": round(statistics.fmean(lat), 2)}


def cached_share(path: Path) -> float | None:
    """The share of ``path``'s pages in the page cache (mincore over a mapping of it)."""
    import ctypes
    import mmap

    from vidx.store import vecfile

    if vecfile._MINCORE is None or not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = np.frombuffer(mm, dtype=np.uint8)
        pages = (len(mm) + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vec = np.zeros(pages, dtype=np.uint8)
        ok = vecfile._MINCORE(ctypes.c_void_p(view.ctypes.data), len(mm), vec.ctypes.data) == 0
        del view
    return round(float((vec & 1).mean()), 4) if ok else None


def cold_vector_file(store: EmbeddedStore, run_plan, pairs: list) -> dict[str, object] | None:  # type: ignore[no-untyped-def,type-arg]
    """Semantic and hybrid searches right after the vector file left the page cache (as after
    an idle night or under memory pressure), with the missing pages asked for at once and, as the
    same-run baseline, read one fault at a time; the two alternate query by query."""
    from vidx.store import vecfile

    vf = store._catalog.vfile
    if vf is None or not hasattr(os, "posix_fadvise"):
        return None
    before = cached_share(vf.path)

    def evict() -> None:
        fd = os.open(vf.path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    lat: dict[str, list[float]] = {}
    asked = 0
    for mode in ("semantic", "hybrid"):
        for text, vec in pairs:
            for on in (True, False):
                vecfile.prefetching = on
                evict()
                n0 = vf.prefetched
                t = time.perf_counter()
                run_plan(mode, text, vec)
                lat.setdefault(f"{mode}{'' if on else '_one_fault_at_a_time_baseline'}", []).append(
                    (time.perf_counter() - t) * 1000)
                asked += vf.prefetched - n0
    vecfile.prefetching = True
    return {"cached_share_before": before, "pages_asked_per_search": round(asked / max(1, len(pairs) * 2), 1),
            **{k: summary(v) for k, v in lat.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--baseline-queries", type=int, default=20)
    ap.add_argument("--per-video", type=int, default=500)
    ap.add_argument("--db", type=Path, help="reuse/keep the store here (default: a temporary file)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.probe:
        return probe(a.probe, a.queries)

    db = a.db or Path(tempfile.mkdtemp(prefix="vidx-bench-")) / "events.sqlite3"
    t = time.perf_counter()
    store = EmbeddedStore(db)  # an existing store of an older vidx is upgraded here
    upgrade_s = time.perf_counter() - t
    store.ensure_schema("bench/synthetic", DIMS)
    texts, vecs = make_events(a.events)
    build_s = 0.0
    if store.count() != a.events:
        t = time.perf_counter()
        for v0 in range(0, a.events, a.per_video):
            vid = f"{v0 // a.per_video:032x}"
            evs = [Event(event_id=f"{i:032x}", video_id=vid, video_path=f"/v/{vid}.mp4", start_sec=float(i % 3600),
                         end_sec=float(i % 3600) + 2, description=texts[i], embedding=vecs[i].tolist(),
                         people=["Ada Quill"] if i % 1000 == 7 else [], source="speech" if i % 3 else "scene",
                         indexed_at="2026-12-01T10:00:00+00:00")
                   for i in range(v0, min(a.events, v0 + a.per_video))]
            store.replace_video_events(vid, evs)
        build_s = time.perf_counter() - t
    t = time.perf_counter()
    store.optimize_index()  # what the idle daemon does once writes have split the full-text index
    optimize_s = time.perf_counter() - t
    t = time.perf_counter()
    store._sync()
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    if store._catalog.warming:  # a large store remembers its most common words in the background at start
        store._catalog.warmed.wait(600)
    warm_s = time.perf_counter() - t

    rng = random.Random(1)
    kw_q = [" ".join(rng.sample(VOCAB[100:5000], 2)) for _ in range(a.queries)]  # typical terms
    kw_common = [" ".join(rng.sample(VOCAB[:30], 2)) for _ in range(a.queries // 2)]  # worst case (50 of 100: its p95 is not the second slowest of 25)
    qi = rng.sample(range(a.events), a.queries)
    nrng = np.random.default_rng(2)
    knn_q = []
    for i in qi:
        v = vecs[i] + 0.5 * nrng.standard_normal(DIMS).astype(np.float32) / np.sqrt(DIMS)
        knn_q.append((v / np.linalg.norm(v)).astype(np.float32))

    store.search_keyword(kw_q[0], 10)
    kw_lat, _ = timed(lambda q: store.search_keyword(q, 10), kw_q)
    kwc_lat, _ = timed(lambda q: store.search_keyword(q, 10), kw_common)
    zh_lat, _ = timed(lambda q: store.search_keyword(q, 10), [rng.choice(ZH) for _ in range(50)])
    knn_lat, knn_res = timed(lambda q: store.search_knn(q, 10), knn_q)
    hy_lat, _ = timed(lambda qq: store.search_hybrid(qq[0], qq[1], 10), list(zip(kw_q, knn_q)))
    # recall@10 against exact brute force over the source vectors
    rec = []
    for q, res in zip(knn_q, knn_res):
        truth = set(int(x) for x in np.argsort(-(vecs @ q))[:10])
        got = {int(h.event.event_id, 16) for h in res.hits}
        rec.append(len(truth & got) / 10)
    vid0 = f"{0:032x}"
    kwf_lat, _ = timed(lambda q: store.search_keyword(q, 10, video_id=vid0), kw_q[:50])
    knnf_lat, _ = timed(lambda q: store.search_knn(q, 10, video_id=vid0), knn_q[:50])

    # the product path: a query plan executed by the store (filters, threshold, exact totals, facets)
    from vidx.plan import Filters, Plan
    from vidx.store.base import SearchMode

    def plan(mode: str, text: str, **flt: object) -> Plan:
        from vidx.plan import build
        from vidx.query import parse

        p = build(parse(text), SearchMode(mode), 0.25, size=10)
        return Plan(**{**p.__dict__, "filters": Filters(**flt)}) if flt else p  # type: ignore[arg-type]

    def run_plan(mode: str, text: str, vec: np.ndarray | None, **flt: object) -> object:
        return store.search(plan(mode, text, **flt), vec)

    run_plan("keyword", kw_q[0], None)
    # the same-run baseline of the vector index: every allowed vector compared (the graph kept out)
    store.ann.min_rows = 1 << 62
    pairs = list(zip(kw_q, knn_q))
    sem_exact_lat, sem_exact = timed(lambda qq: run_plan("semantic", qq[0], qq[1]), pairs)
    hy_exact_lat, hy_exact = timed(lambda qq: run_plan("hybrid", qq[0], qq[1]), pairs)
    from vidx.store import ann as ann_mod

    store.ann.min_rows = ann_mod.MIN_ROWS
    ann_build_s = None
    if a.events >= ann_mod.MIN_ROWS and store.ann.available():
        run_plan("semantic", kw_q[0], knn_q[0])  # starts the build in the background
        store.ann.ready.wait(3600)
        ann_build_s = round(store.ann.built_in_s, 1)
    vf_cached = cached_share(db.with_suffix(".vectors.i8.npy"))  # explains the warm figures below
    sem_plan_lat, sem_ann = timed(lambda qq: run_plan("semantic", qq[0], qq[1]), pairs)
    hy_plan_lat, hy_ann = timed(lambda qq: run_plan("hybrid", qq[0], qq[1]), pairs)
    # the product path against float32 brute force over the source vectors
    sem_truth = []
    for q, res in zip(knn_q, sem_ann):
        truth = {int(x) for x in np.argsort(-(vecs @ q))[:10]}
        sem_truth.append(len(truth & {int(h.event.event_id, 16) for h in res.hits}) / 10)

    def agree(xs: list, ys: list) -> float:  # type: ignore[type-arg]
        return round(statistics.fmean(
            len({h.event.event_id for h in x.hits} & {h.event.event_id for h in y.hits}) / max(1, len(y.hits))
            for x, y in zip(xs, ys)), 4)

    ann_report = {"build_s": ann_build_s, "min_rows": ann_mod.MIN_ROWS, "candidates": ann_mod.CANDIDATES,
                  "semantic_recall_at_10_vs_exact": agree(sem_ann, sem_exact),
                  "hybrid_recall_at_10_vs_exact": agree(hy_ann, hy_exact),
                  "semantic_recall_at_10_vs_float32": round(statistics.fmean(sem_truth), 4),
                  "graph_file_mb": round(sum(p.stat().st_size for p in db.parent.glob("*.vectors.usearch")) / 1e6, 1),
                  "vector_file_mb": round(sum(p.stat().st_size for p in db.parent.glob("*.vectors.i8.npy")) / 1e6, 1),
                  "reduced_dims": ann_mod.REDUCED_DIMS,
                  "vectors_read_from_file": store._catalog.vec_base,
                  "vector_file_cached_share_before_timing": vf_cached,
                  "mapped": store.ann.mapped}
    plan_res = {
        "keyword": timed(lambda q: run_plan("keyword", q, None), kw_q)[0],
        "keyword_most_common_words": timed(lambda q: run_plan("keyword", q, None), kw_common)[0],
        "keyword_chinese": timed(lambda q: run_plan("keyword", q, None), [rng.choice(ZH) for _ in range(50)])[0],
        "semantic": sem_plan_lat,
        "semantic_exact_baseline": sem_exact_lat,
        "hybrid": hy_plan_lat,
        "hybrid_exact_baseline": hy_exact_lat,
        "keyword_video_filter": timed(lambda q: run_plan("keyword", q, None, video_ids=(vid0,)), kw_q[:50])[0],
        "hybrid_video_filter": timed(lambda qq: run_plan("hybrid", qq[0], qq[1], video_ids=(vid0,)),
                                     list(zip(kw_q, knn_q))[:50])[0],
        "keyword_person_filter": timed(lambda q: run_plan("keyword", q, None, person=("ada",)), kw_q[:50])[0],
        "hybrid_person_filter": timed(lambda qq: run_plan("hybrid", qq[0], qq[1], person=("ada",)),
                                      list(zip(kw_q, knn_q))[:50])[0],
        "filters_only_person": timed(lambda q: run_plan("keyword", "", None, person=("ada",)), kw_q[:20])[0],
    }
    plan_summary = {k: summary(v) for k, v in plan_res.items()}
    cold = cold_vector_file(store, run_plan, pairs[:30])
    import resource

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # baselines, side by side on the same store
    conn = store._conn()
    nb = a.baseline_queries

    def like_scan(q: str) -> list:  # type: ignore[type-arg]
        w = q.split()
        # a store without a text index must scan every row to rank them
        return conn.execute("SELECT rowid FROM events WHERE doc LIKE ? OR doc LIKE ? "
                            "ORDER BY (doc LIKE ?) + (doc LIKE ?) DESC LIMIT 10",
                            (f"%{w[0]}%", f"%{w[1]}%", f"%{w[0]}%", f"%{w[1]}%")).fetchall()

    def sql_vectors(q: np.ndarray) -> list:  # type: ignore[type-arg]
        best: list[tuple[float, int]] = []
        for chunk in iter(lambda c=conn.execute("SELECT rowid, vec FROM vectors"): c.fetchmany(50_000), []):
            m = np.frombuffer(b"".join(r[1] for r in chunk), dtype=np.float16).reshape(len(chunk), DIMS)
            m = m.astype(np.float32)
            s = m @ q
            top = np.argsort(-s)[:10]
            best.extend((float(s[j]), chunk[j][0]) for j in top)
        return sorted(best, reverse=True)[:10]

    base_kw, _ = timed(like_scan, kw_q[:nb])
    base_knn, _ = timed(sql_vectors, knn_q[:nb])
    ours = {"keyword": summary(kw_lat), "keyword_most_common_words": summary(kwc_lat),
            "keyword_chinese": summary(zh_lat), "knn": {**summary(knn_lat), "recall_at_10": round(statistics.fmean(rec), 4)},
            "hybrid": summary(hy_lat), "keyword_filtered_by_video": summary(kwf_lat),
            "knn_filtered_by_video": summary(knnf_lat)}
    base = {"keyword_like_scan": summary(base_kw), "knn_vectors_from_sqlite": summary(base_knn)}
    base_hy_p95 = base["keyword_like_scan"]["p95_ms"] + base["knn_vectors_from_sqlite"]["p95_ms"]
    report = {
        "bench": "embedded_store",
        "events": a.events,
        "queries": a.queries,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "build_s": round(build_s, 1),
        "upgrade_s": round(upgrade_s, 1),
        "vector_load_s": round(load_s, 2),
        "common_words_warm_s": round(warm_s, 2), "fts_optimize_s": round(optimize_s, 2),
        "disk_mb": round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6, 1),
        "disk": disk_breakdown(conn, a.events),
        "memory_mb": memory_probe(db, a.queries),
        "results": ours,
        "plan": plan_summary,
        "vector_index": ann_report,
        "cold_vector_file": cold,
        "peak_rss_mb": round(rss_mb, 1),
        "baseline": base,
        "speedup_p95_vs_baseline": {
            "keyword": round(base["keyword_like_scan"]["p95_ms"] / ours["keyword"]["p95_ms"], 1),
            "knn": round(base["knn_vectors_from_sqlite"]["p95_ms"] / ours["knn"]["p95_ms"], 1),
            "hybrid": round(base_hy_p95 / ours["hybrid"]["p95_ms"], 1),
        },
        "targets_1m": {"keyword_p95_ms": 50, "knn_p95_ms": 100, "knn_recall_at_10": 0.95, "hybrid_p95_ms": 120},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
