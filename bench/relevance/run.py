#!/usr/bin/env python3
"""Relevance benchmark: how well each search mode finds the labelled moments.

Builds the corpus (bench/relevance/corpus.py: generated videos with spoken lines, English
and Chinese subtitles, on-screen text), indexes it with the real pipeline (CPU analyzer with
OCR and speech, the configured embedding model, the embedded store), then runs every query
of queries.json in keyword, semantic and hybrid mode through vidx's SearchService.

Per mode: recall@1, recall@5, MRR and nDCG@10 over the answerable queries (a hit counts when
it is in the labelled video and its time overlaps the labelled span; ranks are taken with no
threshold), and for the no-answer queries the share that returns nothing above the default
threshold (VIDX_MIN_SCORE), and for the answerable ones the share whose labelled moment is
among the hits shown, above that threshold (what a person sees). Also per query kind. JSON out.

  python bench/relevance/run.py --out bench/results/relevance.json
  python bench/relevance/run.py --embed-model /path/to/model      # another embedding model
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODES = ("keyword", "semantic", "hybrid")


def index_corpus(workdir: Path, embed_model: str) -> tuple[Any, Any, float]:
    import corpus  # type: ignore[import-not-found]

    from ingest.daemon import build_pipeline
    from vidx.config import load_settings
    from vidx.embed import load_embedder
    from vidx.store.embedded import EmbeddedStore

    media = workdir / "media"
    files = corpus.build(media)
    slug = "".join(c if c.isalnum() else "_" for c in embed_model)[-60:]
    s = load_settings(watch_dir=media, data_dir=workdir / f"data-{slug}", models_dir=workdir / "models",
                      analyzer="basic", ocr=True, embed_model=embed_model)
    store = EmbeddedStore(s.store_path)
    emb = load_embedder(embed_model)
    pipeline = build_pipeline(s, store=store, embedder_factory=lambda: emb)
    t0 = time.perf_counter()
    for f in files:
        out = pipeline.process(f)
        if out.state != "done":
            raise SystemExit(f"{f.name}: {out.state}: {out.error}")
    return store, emb, time.perf_counter() - t0


def hit_matches(h: dict[str, Any], labels: list[tuple[str, float, float]]) -> int | None:
    name = Path(h["video_path"]).stem
    for i, (stem, a, b) in enumerate(labels):
        if name == stem and h["start_sec"] < b and h["end_sec"] > a:
            return i
    return None


def evaluate(service: Any, queries: list[dict[str, Any]], min_score: float) -> dict[str, Any]:
    import corpus  # type: ignore[import-not-found]

    from vidx.search import Query
    from vidx.store.base import SearchMode

    out: dict[str, Any] = {}
    for mode in MODES:
        per_kind: dict[str, dict[str, list[float]]] = {}
        rows = []
        for q in queries:
            labels = corpus.labels(q)
            kind = q["kind"]
            agg = per_kind.setdefault(kind, {"r1": [], "r5": [], "rr": [], "ndcg": [], "none_ok": [], "shown": []})
            if not labels:
                res = service.search(Query(q=q["q"], mode=SearchMode(mode), size=10, video_id=None))
                ok = 1.0 if not res["hits"] else 0.0
                agg["none_ok"].append(ok)
                rows.append({"q": q["q"], "kind": kind, "returned": len(res["hits"]),
                             "top_score": res["hits"][0]["score"] if res["hits"] else None})
                continue
            res = service.search(Query(q=q["q"], mode=SearchMode(mode), size=10, video_id=None, min_score=0.0))
            ranks = []
            seen: set[int] = set()
            for rank, h in enumerate(res["hits"], start=1):
                m = hit_matches(h, labels)
                if m is not None and m not in seen:
                    seen.add(m)
                    ranks.append(rank)
            first = ranks[0] if ranks else None
            agg["r1"].append(1.0 if first == 1 else 0.0)
            agg["r5"].append(1.0 if first is not None and first <= 5 else 0.0)
            agg["rr"].append(1.0 / first if first else 0.0)
            dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= 10)
            idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(labels), 10) + 1))
            agg["ndcg"].append(dcg / idcg if idcg else 0.0)
            # what a person sees: the labelled moment among the hits above the default threshold
            agg["shown"].append(1.0 if first and res["hits"][first - 1]["score"] >= min_score else 0.0)
            top = res["hits"][0] if res["hits"] else None
            rows.append({"q": q["q"], "kind": kind, "first_relevant_rank": first,
                         "top": f"{Path(top['video_path']).stem}@{top['start_sec']:.1f} ({top['score']:.2f})"
                         if top else None,
                         "relevant_score": res["hits"][first - 1]["score"] if first else None})
        def mean(xs: list[float]) -> float:
            return round(sum(xs) / len(xs), 3) if xs else 0.0

        allv = {k: [x for a in per_kind.values() for x in a[k]] for k in ("r1", "r5", "rr", "ndcg", "none_ok", "shown")}
        out[mode] = {
            "recall@1": mean(allv["r1"]), "recall@5": mean(allv["r5"]), "mrr": mean(allv["rr"]),
            "ndcg@10": mean(allv["ndcg"]), "no_answer_empty": mean(allv["none_ok"]),
            "shown_above_threshold": mean(allv["shown"]),
            "by_kind": {k: ({"mrr": mean(a["rr"]), "recall@5": mean(a["r5"])} if a["rr"] else
                            {"no_answer_empty": mean(a["none_ok"])}) for k, a in per_kind.items()},
            "queries": rows,
        }
    return out


class StoreRanking:
    """The baseline: each store's own ranking (BM25, cosine, reciprocal-rank fusion), no
    calibration, no threshold: what vidx did before its scores were calibrated."""

    def __init__(self, store: Any, emb: Any) -> None:
        self.store, self.emb = store, emb

    def search(self, q: Any) -> dict[str, Any]:
        from vidx.search import hit_dict
        from vidx.store.base import SearchMode

        if q.mode == SearchMode.keyword:
            res = self.store.search_keyword(q.q, q.size)
        elif q.mode == SearchMode.semantic:
            res = self.store.search_knn(self.emb.embed_query(q.q), q.size, text=q.q)
        else:
            res = self.store.search_hybrid(q.q, self.emb.embed_query(q.q), q.size)
        return {"hits": [hit_dict(h) for h in res.hits]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/relevance.json")
    ap.add_argument("--workdir", type=Path, help="keeps the generated corpus and index between runs")
    ap.add_argument("--embed-model", default=None, help="default: VIDX_EMBED_MODEL's default")
    ap.add_argument("--min-score", type=float, default=None, help="default: VIDX_MIN_SCORE's default")
    ap.add_argument("--queries", type=Path, default=Path(__file__).resolve().parent / "queries.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vidx.config import Settings
    from vidx.search import SearchService

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vidx-relevance-"))
    queries = json.loads(args.queries.read_text(encoding="utf-8"))
    store, emb, index_s = index_corpus(workdir, args.embed_model or Settings.model_fields["embed_model"].default)
    min_score = args.min_score if args.min_score is not None else Settings.model_fields["min_score"].default
    service = SearchService(store, lambda: emb, min_score=min_score)
    t0 = time.perf_counter()
    results = evaluate(service, queries, min_score)
    search_s = time.perf_counter() - t0
    baseline = evaluate(StoreRanking(store, emb), queries, min_score)
    for r in baseline.values():
        r.pop("queries", None)
    report = {"bench": "relevance", "embedding_model": emb.model_id, "query_engine": getattr(emb, "engine", "unknown"),
              "queries": len(queries),
              "answerable": sum(1 for q in queries if q["answers"]), "min_score": min_score,
              "index_s": round(index_s, 1), "search_s": round(search_s, 2), "results": results,
              "baseline_store_ranking": baseline}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    table = ["| mode | recall@1 | recall@5 | MRR | nDCG@10 | no-answer queries with no hit | answer shown above the threshold |",
             "|---|---|---|---|---|---|---|"]
    for label, res in (("", results), (" (baseline: store ranking)", baseline)):
        for m in MODES:
            r = res[m]
            table.append(f"| {m}{label} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['mrr']:.3f} | "
                         f"{r['ndcg@10']:.3f} | {r['no_answer_empty']:.2f} | "
                         + (f"{r['shown_above_threshold']:.2f} |" if not label else "– |"))
    print("\n".join(table))
    kinds = list(results["hybrid"]["by_kind"])
    print("\n| kind | " + " | ".join(f"{m} MRR" for m in MODES) + " |")
    print("|---|" + "---|" * len(MODES))
    for k in kinds:
        vals = [results[m]["by_kind"][k].get("mrr", results[m]["by_kind"][k].get("no_answer_empty")) for m in MODES]
        print(f"| {k} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
