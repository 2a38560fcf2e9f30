"""The real transformers path with a tiny random Qwen3-VL (dense and MoE): from_pretrained,
processor with VideoMetadata, generate() with forced tokens, decode, parse, merge, store."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fakes.embedder import HashEmbedder
from tests.media import make_video
from vidx.config import Settings
from vidx.torchcompat import ensure_torchvision

pytestmark = pytest.mark.slow

WINDOW_RE = re.compile(r"covers (\d+\.\d) to (\d+\.\d) seconds")
MARKER_RE = re.compile(r"<(\d+\.\d) seconds>")


@pytest.fixture(scope="session", params=["dense", "moe"])
def tiny_qwen(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure_torchvision()
    from tests.fakes.tiny_qwen3vl import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp(f"qwen-{request.param}"), moe=request.param == "moe")


def scripted_hook(answers: Callable[[float, float, int], str]) -> Any:
    """A generation hook that forces the tiny model to emit a realistic answer per window."""
    from tests.fakes.tiny_qwen3vl import ScriptedLogits

    calls: dict[tuple[float, float], int] = {}
    prompts: list[str] = []

    def hook(inputs: Any, processor: Any) -> dict[str, Any]:
        prompt = processor.batch_decode(inputs["input_ids"], skip_special_tokens=False)[0]
        prompts.append(prompt)
        m = WINDOW_RE.search(prompt)
        key = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
        n = calls.get(key, 0)
        calls[key] = n + 1
        text = answers(key[0], key[1], n)
        ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return {"logits_processor": [ScriptedLogits(ids, inputs["input_ids"].shape[1], eos)],
                "max_new_tokens": len(ids) + 1}

    hook.calls = calls  # type: ignore[attr-defined]
    hook.prompts = prompts  # type: ignore[attr-defined]
    return hook


def _pipeline(settings: Settings, hook: Any) -> Any:
    from ingest.pipeline import Pipeline
    from ingest.vlm.analyzer import VlmAnalyzer
    from ingest.vlm.transformers_local import QwenLocalProvider
    from vidx.ledger import Ledger
    from vidx.store.embedded import EmbeddedStore

    provider = QwenLocalProvider(settings, generation_hook=hook)
    emb = HashEmbedder()
    return Pipeline(settings, Ledger(settings.ledger_path), EmbeddedStore(settings.store_path), lambda: emb,
                    VlmAnalyzer(settings, provider))


def test_tiny_qwen_end_to_end_with_a_garbage_window(tiny_qwen: Path, make_settings: Callable[..., Settings],
                                                    talk_video: Path) -> None:
    def answers(start: float, end: float, n: int) -> str:
        if start == 0.0:
            return json.dumps([{"start": "00:01.0", "end": "00:04.0", "description": "a man waves at the camera",
                                "people": ["Tom"], "location": "red room", "objects": ["cup"]}])
        return "zzz garbage zzz"  # the second window never parses, even after the repair retry

    s = make_settings(analyzer="qwen3vl", qwen_model=str(tiny_qwen), qwen_device="cpu", window_seconds=20,
                      window_overlap=4, vlm_fps=1, vlm_max_pixels=64 * 64)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    shutil.copy(talk_video.with_suffix(".srt"), dest.with_suffix(".srt"))
    hook = scripted_hook(answers)
    pipeline = _pipeline(s, hook)
    out = pipeline.process(dest)
    assert out.state == "done" and out.warnings == 1
    assert hook.calls == {(0.0, 16.0): 1, (12.0, 32.0): 2}  # one repair retry for the garbage window
    events = pipeline.store.events_for_video(pipeline.ledger.rows()[0].video_id)
    (vlm,) = [e for e in events if e.source == "vlm"]
    assert (vlm.start_sec, vlm.end_sec, vlm.people) == (1.0, 4.0, ["Tom"])
    assert vlm.analyzer == "qwen3vl/events-v3" and vlm.prompt_version == "events-v3" and vlm.model
    assert "Welcome aboard" in vlm.dialogue  # the subtitle line at 1-4 s
    assert "Tom" in hook.prompts[1]  # names from the first window reach the next prompt
    row = pipeline.ledger.rows()[0]
    assert row.warnings == 1 and row.state == "done"


def test_timestamps_given_to_the_model_are_true(tiny_qwen: Path, make_settings: Callable[..., Settings],
                                                tmp_path: Path) -> None:
    """Scenes change at known seconds; every frame the provider gets shows the scene of its
    timestamp, and the <t seconds> markers in the prompt match within one source frame."""
    from ingest.analyzers.base import VideoJob
    from ingest.vlm.analyzer import VlmAnalyzer
    from ingest.vlm.transformers_local import QwenLocalProvider
    from ingest.vlm.windows import Window
    from vidx.media import probe

    fps = 25
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    bounds = [0.0, 2.6, 5.3, 7.1, 10.0]
    scenes = [(bounds[i + 1] - bounds[i], colours[i]) for i in range(4)]
    video = make_video(tmp_path / "scenes.mp4", scenes=scenes, fps=fps, size=(128, 96))
    s = make_settings(analyzer="qwen3vl", qwen_model=str(tiny_qwen), qwen_device="cpu", vlm_fps=2,
                      vlm_max_pixels=64 * 64, window_seconds=20, window_overlap=4)
    hook = scripted_hook(lambda a, b, n: "[]")
    provider = QwenLocalProvider(s, generation_hook=hook)
    analyzer = VlmAnalyzer(s, provider)
    info = probe(video)
    job = VideoJob(video, "v" * 32, "0" * 64, info, "r")
    clip, _ = analyzer.clip(job, Window(0, 0.0, info.duration_sec))
    frame_dt = 1 / fps
    for t, idx, frame in zip(clip.timestamps, clip.indices, clip.frames):
        scene = max(i for i in range(4) if bounds[i] <= t + 1e-6)
        centre = frame[frame.shape[0] // 3, frame.shape[1] // 2].astype(int)
        assert np.abs(centre - np.array(colours[scene])).max() < 60, (t, centre)
        assert abs(idx / fps - t) <= frame_dt / 2
    # the markers Qwen3-VL reads: one per pair of frames, (t_a + t_b) / 2
    provider.generate(clip, "describe", "sys")
    prompt = provider.processor.batch_decode(provider.last_prompt_ids, skip_special_tokens=False)[0]
    markers = [float(x) for x in MARKER_RE.findall(prompt)]
    ts = clip.timestamps + ([clip.timestamps[-1]] if len(clip.timestamps) % 2 else [])
    truth = [(ts[i] + ts[i + 1]) / 2 for i in range(0, len(ts), 2)]
    assert len(markers) == len(truth)
    assert all(abs(m - t) <= frame_dt + 0.05 for m, t in zip(markers, truth)), (markers, truth)


def test_out_of_gpu_memory_retries_the_window_with_fewer_frames(
        tiny_qwen: Path, make_settings: Callable[..., Settings], talk_video: Path) -> None:
    import torch

    answer = json.dumps([{"start": 26.0, "end": 29.0, "description": "the keeper climbs the stairs"}])
    scripted = scripted_hook(lambda start, end, n: answer)
    frames_seen: list[int] = []

    class OutOfMemory:
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    def hook(inputs: Any, processor: Any) -> dict[str, Any]:
        frames = int(inputs["video_grid_thw"][0][0]) * 2  # temporal patches of two frames
        frames_seen.append(frames)
        if frames > 10:  # this "GPU" fits ten frames
            return {"logits_processor": [OutOfMemory()], "max_new_tokens": 2}
        return scripted(inputs, processor)  # type: ignore[no-any-return]

    s = make_settings(analyzer="qwen3vl", qwen_model=str(tiny_qwen), qwen_device="cpu", window_seconds=40,
                      vlm_fps=1, vlm_max_pixels=64 * 64)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    pipeline = _pipeline(s, hook)
    out = pipeline.process(dest)
    assert out.state == "done", out.error
    assert frames_seen == [32, 16, 8]  # the whole window each time, at 1, 1/2 and 1/4 of VIDX_VLM_FPS
    (vlm,) = [e for e in pipeline.store.events_for_video(pipeline.ledger.rows()[0].video_id) if e.source == "vlm"]
    assert (vlm.start_sec, vlm.end_sec) == (26.0, 29.0)


def test_a_window_that_never_fits_fails_the_video_clearly(
        tiny_qwen: Path, make_settings: Callable[..., Settings], talk_video: Path) -> None:
    import torch

    class OutOfMemory:
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            raise torch.OutOfMemoryError("CUDA out of memory")

    s = make_settings(analyzer="qwen3vl", qwen_model=str(tiny_qwen), qwen_device="cpu", window_seconds=40,
                      vlm_fps=1, vlm_max_pixels=64 * 64, max_attempts=1)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    out = _pipeline(s, lambda i, p: {"logits_processor": [OutOfMemory()], "max_new_tokens": 2}).process(dest)
    assert out.state == "failed" and "out of GPU memory" in (out.error or "") and "VIDX_VLM_MAX_FRAMES" in out.error
