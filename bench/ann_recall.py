#!/usr/bin/env python3
"""Vector-index recall on real sentence embeddings: the embedded store's HNSW graph (int8,
1,000 candidates scored exactly) against exact float32 search, in the same process.

Synthetic vectors flatter a graph; real embeddings cluster and are harder. The corpus is real
English prose that installs with this project: the docstrings of its Python dependencies,
split into sentences. Queries are held-out sentences of the same corpus. Every query is run
through the store's product path (a semantic query plan, threshold 0) twice: with the graph,
and with every vector compared (the baseline).

  python bench/ann_recall.py --sentences 20000 --out bench/results/ann-recall.json
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchio import write_report  # noqa: E402

from vidx.config import Settings  # noqa: E402
from vidx.embed import load_embedder  # noqa: E402
from vidx.plan import Filters, Plan  # noqa: E402
from vidx.schema import Event  # noqa: E402
from vidx.store.base import SearchMode  # noqa: E402
from vidx.store.embedded import EmbeddedStore  # noqa: E402

PACKAGES = ["numpy", "scipy", "sklearn", "torch", "transformers", "flask", "werkzeug", "jinja2", "sqlalchemy",
            "pandas", "PIL", "email", "http", "asyncio", "logging", "json", "urllib", "xml", "unittest"]


def sentences(limit: int) -> list[str]:
    """English sentences from the docstrings of installed modules (deduplicated, 6-40 words)."""
    import importlib.util

    seen: set[str] = set()
    out: list[str] = []
    roots = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            roots.extend(Path(p) for p in spec.submodule_search_locations)
        elif spec and spec.origin:
            roots.append(Path(spec.origin))
    for root in roots:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for f in files:
            try:
                tree = ast.parse(f.read_text(errors="ignore"))
            except (SyntaxError, ValueError, OSError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module, ast.AsyncFunctionDef)):
                    continue
                doc = ast.get_docstring(node) or ""
                first = doc.split("\n\n")[0]
                for s in re.split(r"(?<=[.!?])\s+", " ".join(first.split())):
                    words = s.split()
                    if 6 <= len(words) <= 40 and s not in seen and re.fullmatch(r"[A-Za-z0-9 ,.;:'()\-]+", s):
                        seen.add(s)
                        out.append(s)
                        if len(out) >= limit:
                            return out
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--model", default=Settings().embed_model)
    ap.add_argument("--out", type=Path, default=Path("bench/results/ann_recall.json"))
    a = ap.parse_args()

    texts = sentences(a.sentences + a.queries)
    corpus, queries = texts[: -a.queries], texts[-a.queries :]
    emb = load_embedder(a.model)
    t = time.perf_counter()
    vecs = np.asarray(emb.embed(corpus), dtype=np.float32)
    qv = np.asarray([emb.embed_query(q) for q in queries], dtype=np.float32)
    embed_s = time.perf_counter() - t

    db = Path(tempfile.mkdtemp(prefix="vidx-recall-")) / "events.sqlite3"
    store = EmbeddedStore(db)
    store.ensure_schema(a.model, vecs.shape[1])
    per = 500
    for v0 in range(0, len(corpus), per):
        vid = f"{v0 // per:032x}"
        store.replace_video_events(vid, [
            Event(event_id=f"{i:032x}", video_id=vid, video_path=f"/v/{vid}.mp4", start_sec=float(i),
                  end_sec=float(i) + 2, dialogue=corpus[i], source="speech", embedding=vecs[i].tolist())
            for i in range(v0, min(len(corpus), v0 + per))])
    plan = Plan(mode=SearchMode.semantic, words=(), phrase="", threshold=0.0, filters=Filters(), size=10,
                unrelated=0.0, paraphrase=0.9)

    def run(q: np.ndarray) -> tuple[set[int], float]:
        t0 = time.perf_counter()
        res = store.search(plan, q)
        return {int(h.event.event_id, 16) for h in res.hits}, (time.perf_counter() - t0) * 1000

    store.ann.min_rows = 1 << 62
    exact = [run(q) for q in qv]
    store.ann.min_rows = 1000
    run(qv[0])
    store.ann.ready.wait(3600)
    graph = [run(q) for q in qv]
    truth = [{int(x) for x in np.argsort(-(vecs @ q))[:10]} for q in qv]
    # the graph alone (its own top 10, no candidates scored): how good the int8 graph is on real embeddings
    conn = store._conn()
    basis = store.ann._basis

    def from_graph(k: int) -> list[tuple[set[int], float]]:
        """The graph's k nearest (in its reduced space), rescored with the float32 vectors."""
        out = []
        for q in qv:
            keys = [int(x) for x in store.ann._index.search(q @ basis, k).keys]
            rows = conn.execute(f"SELECT event_id FROM events WHERE rowid IN ({','.join('?' * len(keys))})", keys)
            ids = np.array([int(r[0], 16) for r in rows], dtype=np.int64)
            out.append(({int(x) for x in ids[np.argsort(-(vecs[ids] @ q))[:10]]}, 0.0))
        return out

    alone = from_graph(10)
    few = {k: from_graph(k) for k in (50, 100, 200)}

    def recall(got: list[tuple[set[int], float]]) -> float:
        return round(statistics.fmean(len(g & t) / 10 for (g, _), t in zip(got, truth)), 4)

    def p95(got: list[tuple[set[int], float]]) -> float:
        lat = sorted(ms for _, ms in got)
        return round(lat[int(0.95 * (len(lat) - 1))], 2)

    report = {
        "bench": "ann_recall",
        "model": a.model,
        "events": len(corpus),
        "queries": len(queries),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "embed_s": round(embed_s, 1),
        "graph_build_s": round(store.ann.built_in_s, 3),
        "graph_dims": int(basis.shape[1]),
        "results": {
            "graph": {"recall_at_10_vs_float32": recall(graph), "p95_ms": p95(graph)},
            "exact_int8_baseline": {"recall_at_10_vs_float32": recall(exact), "p95_ms": p95(exact)},
            "graph_alone_top10": {"recall_at_10_vs_float32": recall(alone)},
            **{f"graph_{k}_candidates_rescored": {"recall_at_10_vs_float32": recall(got)} for k, got in few.items()},
        },
        "target_recall_at_10": 0.95,
    }
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
