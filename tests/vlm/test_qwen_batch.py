"""VIDX_QWEN_BATCH: the local provider generates several windows in one generate() call.
Real transformers path with the tiny random Qwen3-VL on the CPU."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.embedder import HashEmbedder
from tests.media import make_video
from vidx.config import Settings

WINDOW_RE = re.compile(r"covers (\d+\.\d) to (\d+\.\d) seconds")
SCENES = [(10.0, (200, 30, 30)), (10.0, (30, 160, 40)), (10.0, (30, 50, 200)), (10.0, (230, 220, 40))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fakes.tiny_qwen3vl import build_tiny_model_dir
    from vidx.torchcompat import ensure_torchvision

    ensure_torchvision()
    return build_tiny_model_dir(tmp_path_factory.mktemp("qwen-batch"))


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("film") / "film.mp4", SCENES, fps=4, size=(96, 64))


def _settings(make_settings: Callable[..., Settings], tiny: Path, batch: int) -> Settings:
    return make_settings(analyzer="qwen3vl", qwen_model=str(tiny), qwen_device="cpu", window_seconds=10,
                         window_overlap=0, vlm_fps=1, vlm_max_pixels=64 * 64, qwen_batch=batch, qwen_batch_wait=2.0,
                         vlm_max_new_tokens=16)


def test_a_batch_generates_what_each_window_generates_alone(
        tiny: Path, film: Path, make_settings: Callable[..., Settings]) -> None:
    """Greedy answers of the random model: the same tokens batched (left-padded to one
    length) as one window at a time."""
    from ingest.analyzers.base import VideoJob
    from ingest.vlm.analyzer import VlmAnalyzer
    from ingest.vlm.transformers_local import QwenLocalProvider
    from ingest.vlm.windows import Window
    from vidx.media import probe

    s = _settings(make_settings, tiny, 3)
    provider = QwenLocalProvider(s)
    analyzer = VlmAnalyzer(s, provider)
    job = VideoJob(film, "v" * 32, "0" * 64, probe(film), "r")
    items = []
    for i, (a, b) in enumerate([(0.0, 10.0), (10.0, 20.0), (20.0, 36.0)]):  # the last one is longer
        clip, _ = analyzer.clip(job, Window(i, a, b))
        items.append((clip, provider._messages(f"Window {i}: list what happens" + " please" * i, "sys")))
    batched = provider._run_batch(items)
    assert int((provider.last_prompt_ids == provider.processor.tokenizer.pad_token_id).sum()) > 0  # padded
    alone = [provider._run(c, m) for c, m in items]
    assert batched == alone
    assert all(isinstance(x, str) and x for x in batched)


def _batched_hook(answers: Callable[[float, float], str]) -> Any:
    from tests.fakes.tiny_qwen3vl import BatchScriptedLogits

    seen: list[list[tuple[float, float]]] = []

    def hook(inputs: Any, processor: Any) -> dict[str, Any]:
        prompts = processor.batch_decode(inputs["input_ids"], skip_special_tokens=False)
        keys = []
        for p in prompts:
            m = WINDOW_RE.search(p)
            assert m, p[-300:]
            keys.append((float(m.group(1)), float(m.group(2))))
        seen.append(keys)
        tok = processor.tokenizer
        scripts = [tok(answers(*k), add_special_tokens=False)["input_ids"] for k in keys]
        eos = tok.convert_tokens_to_ids("<|im_end|>")
        return {"logits_processor": [BatchScriptedLogits(scripts, inputs["input_ids"].shape[1], eos)],
                "max_new_tokens": max(len(x) for x in scripts) + 1}

    hook.seen = seen  # type: ignore[attr-defined]
    return hook


def test_windows_are_batched_through_the_pipeline_and_give_the_same_events(
        tiny: Path, film: Path, make_settings: Callable[..., Settings]) -> None:
    from ingest.pipeline import Pipeline
    from ingest.vlm.analyzer import VlmAnalyzer
    from ingest.vlm.transformers_local import QwenLocalProvider
    from vidx.ledger import Ledger
    from vidx.store.embedded import EmbeddedStore

    def answers(a: float, b: float) -> str:
        return json.dumps([{"start": a + 1, "end": a + 3, "description": f"the scene from {a:g} s"}])

    results = {}
    for batch in (1, 4):
        s = _settings(make_settings, tiny, batch)
        s = s.model_copy(update={"data_dir": s.data_dir.parent / f"data{batch}", "watch_dir":
                                 s.watch_dir.parent / f"watch{batch}"})
        s.watch_dir.mkdir(parents=True, exist_ok=True)
        dest = s.watch_dir / "film.mp4"
        shutil.copy(film, dest)
        hook = _batched_hook(answers)
        provider = QwenLocalProvider(s, generation_hook=hook)
        emb = HashEmbedder()
        p = Pipeline(s, Ledger(s.ledger_path), EmbeddedStore(s.store_path), lambda e=emb: e,  # type: ignore[misc]
                     VlmAnalyzer(s, provider))
        out = p.process(dest)
        assert out.state == "done", out.error
        results[batch] = sorted((e.start_sec, e.end_sec, e.description)
                                for e in p.store.events_for_video(p.ledger.rows()[0].video_id) if e.source == "vlm")
        if batch == 1:
            assert all(len(k) == 1 for k in hook.seen)
        else:
            assert max(len(k) for k in hook.seen) == 4  # four windows in one generate()
            assert sum(len(k) for k in hook.seen) == 4  # each window asked once
    assert results[1] == results[4] == [(a + 1, a + 3, f"the scene from {a:g} s") for a in (0.0, 10.0, 20.0, 30.0)]


def test_prompts_padded_to_a_bucket_generate_the_same_answer(
        tiny: Path, film: Path, make_settings: Callable[..., Settings]) -> None:
    """VIDX_QWEN_PAD_TO: windows of any length become a few prompt sizes (for a static KV
    cache), and the padding changes no generated token."""
    from ingest.analyzers.base import VideoJob
    from ingest.vlm.analyzer import VlmAnalyzer
    from ingest.vlm.transformers_local import QwenLocalProvider
    from ingest.vlm.windows import Window
    from vidx.media import probe

    plain = _settings(make_settings, tiny, 1)
    padded = plain.model_copy(update={"qwen_pad_to": 256})
    job = VideoJob(film, "v" * 32, "0" * 64, probe(film), "r")
    p1, p2 = QwenLocalProvider(plain), QwenLocalProvider(padded)
    for i, (a, b) in enumerate([(0.0, 10.0), (10.0, 26.0)]):
        clip, _ = VlmAnalyzer(plain, p1).clip(job, Window(i, a, b))
        msgs = p1._messages(f"Window {i}", "sys")
        n_plain = int(p1.inputs(clip, msgs)["input_ids"].shape[1])
        inputs = p2.inputs(clip, msgs)
        assert int(inputs["input_ids"].shape[1]) % 256 == 0 and int(inputs["input_ids"].shape[1]) > n_plain
        assert {k for k, v in inputs.items() if hasattr(v, "shape") and v.shape[-1] == n_plain} == set()
        assert p2._run(clip, msgs) == p1._run(clip, msgs)
