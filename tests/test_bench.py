"""The benchmark scripts run and report what their docs promise (figures are not asserted:
speed is measured in bench/, never in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], tmp_path: Path) -> dict:
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, *args, "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_gpu_smoke_dry_run_on_cpu_goes_through_the_provider(tmp_path: Path) -> None:
    rep = _run(["bench/gpu_smoke.py", "--sizes", "tiny", "--device", "cpu", "--video-size", "192x108",
                "--new-tokens", "16", "--workdir", str(tmp_path / "w")], tmp_path)
    run = rep["runs"][0]
    assert "error" not in run, run
    assert run["frames"] == 120  # 60 s at 2 fps
    t, h, w = run["video_grid_thw"][0]
    assert t == 60 and run["prompt_tokens"] > t * h * w // 4  # the visual tokens are in the prompt
    for key in ("load_s", "prefill_tokens_per_s", "decode_tokens_per_s", "seconds_per_video_minute",
                "prefill_speedup_vs_eager"):
        assert isinstance(run[key], float) and run[key] > 0, key


def test_gpu_smoke_without_a_gpu_skips_cleanly() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = subprocess.run([sys.executable, "bench/gpu_smoke.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    rep = json.loads(proc.stdout)
    assert rep["skipped"] is True and "GPU" in rep["reason"]


def test_store_bench_reports_latency_recall_and_baseline_ratios(tmp_path: Path) -> None:
    rep = _run(["bench/store_bench.py", "--events", "3000", "--queries", "20", "--baseline-queries", "3",
                "--per-video", "300"], tmp_path)
    assert rep["events"] == 3000
    for key in ("keyword", "knn", "hybrid"):
        assert rep["results"][key]["p95_ms"] > 0, key
        assert rep["speedup_p95_vs_baseline"][key] > 0, key
    assert 0.5 <= rep["results"]["knn"]["recall_at_10"] <= 1.0


@pytest.mark.slow
def test_ingest_bench_reports_stages_speech_and_baselines(tmp_path: Path) -> None:
    from tests.media import espeak_available

    if not espeak_available():
        pytest.skip("espeak-ng is not installed (the film's speech is synthesised with it)")
    rep = _run(["bench/ingest_bench.py", "--seconds", "24", "--size", "320x180", "--fps", "10",
                "--workdir", str(tmp_path / "w")], tmp_path)
    assert rep["film"]["spoken_lines"] >= 2 and rep["decode_every_frame_one_thread_s"] > 0
    assert rep["speech_alone"]["lines"] >= 1 and rep["speech_alone"]["real_time_factor"] > 0
    for run in ("pipeline_ocr", "pipeline_no_ocr", "sequential_ocr"):
        assert set(rep["runs"][run]["stages"]) >= {"probe", "hash", "analyse", "embed", "store"}
        assert rep["real_time_factor"][run] > 0 and rep["vs_decode_baseline"][run] > 0
