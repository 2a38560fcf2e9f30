#!/usr/bin/env python3
"""GPU smoke benchmark: a Qwen3-VL with the real 2B/8B architecture and random weights
(no download) runs one 60 s window at 2 fps through vidx's own provider code.

Reports load time, peak GPU memory, prefill tokens/s, decode tokens/s and seconds per
video-minute as JSON; the baseline run beside it is the same prefill with eager
attention (ratio = eager time / our time). Random weights give the real compute cost,
not real answers. Without a CUDA GPU it prints {"skipped": true, ...} and exits 0.

  python bench/gpu_smoke.py --sizes 2b,8b --out bench/results/gpu.json
  python bench/gpu_smoke.py --sizes tiny --device cpu --video-size 320x180   # dry run of the same path
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# real architectures (config.json of Qwen/Qwen3-VL-2B-Instruct and -8B-Instruct)
CONFIGS: dict[str, dict[str, Any]] = {
    "2b": {"text": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                        num_key_value_heads=8, head_dim=128), "tie": True,
           "vision": dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                          deepstack_visual_indexes=[5, 11, 17])},
    "8b": {"text": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                        num_key_value_heads=8, head_dim=128), "tie": False,
           "vision": dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
                          deepstack_visual_indexes=[8, 16, 24])},
    # a few-MB model with the same structure: checks the whole path on a CPU in seconds
    "tiny": {"text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=16), "tie": False, "mrope": [4, 2, 2],
             "vision": dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                            deepstack_visual_indexes=[0, 1])},
}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_folder(size: str, folder: Path, device: str) -> dict[str, float]:
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    from tests.fakes.tiny_qwen3vl import CHAT_TEMPLATE, QWEN_SPECIAL, build_tokenizer

    tok = build_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    c = CONFIGS[size]
    config = Qwen3VLConfig(
        text_config=dict(**c["text"], vocab_size=151936, max_position_embeddings=262144, hidden_act="silu",
                         rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0,
                                                             "mrope_section": c.get("mrope", [24, 20, 20]),
                                                             "mrope_interleaved": True},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(**c["vision"], in_channels=3, patch_size=16, temporal_patch_size=2, spatial_merge_size=2,
                           num_position_embeddings=2304, hidden_act="gelu_pytorch_tanh"),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=c["tie"],
    )
    t = time.perf_counter()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration(config).to(dtype).eval()
    build_s = time.perf_counter() - t
    # the checkpoint's own video budget (size is a total over all frames)
    vproc = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5] * 3,
                                  image_std=[0.5] * 3, size={"shortest_edge": 4096, "longest_edge": 25165824},
                                  fps=2, min_frames=4, max_frames=768, cap_pixels_per_frame=True)
    iproc = Qwen2VLImageProcessor(patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5] * 3,
                                  image_std=[0.5] * 3)
    Qwen3VLProcessor(image_processor=iproc, tokenizer=tok, video_processor=vproc,
                     chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    t = time.perf_counter()
    model.save_pretrained(folder)
    save_s = time.perf_counter() - t
    n_params = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"build_s": round(build_s, 2), "save_s": round(save_s, 2), "params_b": round(n_params / 1e9, 3)}


def make_video(path: Path, size: tuple[int, int], seconds: int = 60, fps: int = 25) -> Path:
    from tests.media import make_video as mk

    colours = [(200, 40, 40), (40, 160, 60), (40, 60, 200), (220, 200, 40), (120, 120, 120), (20, 20, 20)]
    return mk(path, scenes=[(seconds / 6, c) for c in colours], fps=fps, size=size)


def run_size(size: str, work: Path, video: Path, new_tokens: int, device: str,
             caches: tuple[str, ...] = ("dynamic",), batches: tuple[int, ...] = (1,)) -> dict[str, Any]:
    import torch

    from ingest.analyzers.base import VideoJob
    from ingest.vlm.analyzer import VlmAnalyzer
    from ingest.vlm.prompts import SYSTEM, build_prompt
    from ingest.vlm.transformers_local import QwenLocalProvider, _models
    from ingest.vlm.windows import Window
    from vidx.config import load_settings
    from vidx.media import probe

    folder = work / f"qwen3vl-{size}"
    out: dict[str, Any] = {"size": size, "device": device, **build_folder(size, folder, device)}
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    settings = load_settings(qwen_model=str(folder), qwen_device=device, vlm_fps=2, vlm_max_frames=240,
                             vlm_max_new_tokens=new_tokens, analyzer="qwen3vl")
    t = time.perf_counter()
    budget = {"n": new_tokens}
    provider = QwenLocalProvider(settings, generation_hook=lambda i, p: {"min_new_tokens": budget["n"],
                                                                          "max_new_tokens": budget["n"]})
    sync(device)
    out["load_s"] = round(time.perf_counter() - t, 2)
    out["attention"] = provider.attn
    analyzer = VlmAnalyzer(settings, provider)
    info = probe(video)
    job = VideoJob(video, "b" * 32, "0" * 64, info, "bench")
    t = time.perf_counter()
    clip, _ = analyzer.clip(job, Window(0, 0.0, 60.0))
    out["decode_frames_s"] = round(time.perf_counter() - t, 2)
    out["frames"] = len(clip.timestamps)
    out["frame_size"] = list(clip.frames.shape[1:3])
    messages = provider._messages(build_prompt(0.0, 60.0, [], []), SYSTEM)
    t = time.perf_counter()
    inputs = provider.inputs(clip, messages).to(device)
    out["preprocess_s"] = round(time.perf_counter() - t, 2)
    n_in = int(inputs["input_ids"].shape[1])
    out["prompt_tokens"] = n_in
    out["video_grid_thw"] = inputs["video_grid_thw"].tolist()

    def prefill() -> float:
        sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            provider.model(**inputs)
        sync(device)
        return time.perf_counter() - t0

    prefill()  # warm-up
    pre = min(prefill() for _ in range(3))
    out["prefill_s"] = round(pre, 3)
    out["prefill_tokens_per_s"] = round(n_in / pre, 1)

    def gen(n: int) -> float:
        budget["n"] = n
        sync(device)
        t0 = time.perf_counter()
        provider.generate(clip, build_prompt(0.0, 60.0, [], []), SYSTEM)
        sync(device)
        return time.perf_counter() - t0

    gen(8)
    g1, gn = gen(1), gen(new_tokens)
    out["generate_s"] = round(gn, 2)
    out["decode_tokens_per_s"] = round((new_tokens - 1) / max(gn - g1, 1e-6), 1)
    # the same generation with a static (compiled) KV cache, beside the dynamic one
    for cache in caches:
        if cache == "dynamic":
            continue
        try:
            settings_c = settings.model_copy(update={"qwen_cache": cache})
            provider.settings = settings_c
            t0 = time.perf_counter()
            gen(new_tokens)  # warm-up at the measured length: a static cache compiles per cache size
            out[f"{cache}_cache_warmup_s"] = round(time.perf_counter() - t0, 2)
            cn = min(gen(new_tokens) for _ in range(2))
            out[f"{cache}_cache_generate_s"] = round(cn, 2)
            # the prefill is the same work with either cache: take it out to get the decode rate
            out[f"{cache}_cache_decode_tokens_per_s"] = round((new_tokens - 1) / max(cn - pre, 1e-6), 1)
            out[f"{cache}_cache_decode_speedup"] = round(out[f"{cache}_cache_decode_tokens_per_s"]
                                                         / max(out["decode_tokens_per_s"], 1e-6), 2)
        except Exception as exc:
            out[f"{cache}_cache_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        finally:
            provider.settings = settings
    # several windows in one generate() (VIDX_QWEN_BATCH), beside one window at a time (gn)
    for b in batches:
        if b <= 1:
            continue
        try:
            budget["n"] = new_tokens
            items = [(clip, messages)] * b
            provider._run_batch(items)  # warm-up at this batch size
            sync(device)
            t0 = time.perf_counter()
            provider._run_batch(items)
            sync(device)
            tb = time.perf_counter() - t0
            out[f"batch{b}_generate_s"] = round(tb, 2)
            out[f"batch{b}_window_speedup"] = round(b * gn / tb, 2)  # windows per second vs one at a time
            out[f"batch{b}_x_real_time"] = round(b * 60.0 / (tb + b * (out["decode_frames_s"] + out["preprocess_s"])), 2)
        except Exception as exc:
            out[f"batch{b}_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if cuda:
        out["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    out["seconds_per_video_minute"] = round(out["decode_frames_s"] + out["preprocess_s"] + gn, 2)
    out["x_real_time"] = round(60.0 / out["seconds_per_video_minute"], 2)
    # baseline side by side: the same prefill with eager attention
    try:
        provider.model.set_attn_implementation("eager")
        prefill()
        eager = min(prefill() for _ in range(2))
        out["baseline_eager_prefill_s"] = round(eager, 3)
        out["prefill_speedup_vs_eager"] = round(eager / pre, 2)
    except Exception as exc:  # eager may not fit at this length
        out["baseline_eager_prefill_s"] = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
    _models.clear()  # the caller frees the GPU memory once this frame's references are gone
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2b,8b")
    ap.add_argument("--new-tokens", type=int, default=512, help="generated tokens per window (a typical answer)")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run, with --sizes tiny)")
    ap.add_argument("--video-size", default="1280x720", help="WIDTHxHEIGHT of the generated test video")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--cache", default="dynamic", help="KV caches to compare, e.g. dynamic,static")
    ap.add_argument("--batch", default="1", help="windows per generate() to compare, e.g. 1,4,8 (VIDX_QWEN_BATCH)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print(json.dumps({"skipped": True, "reason": "torch is not installed"}))
        return 0
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"skipped": True, "reason": "no CUDA GPU: this benchmark needs an NVIDIA GPU"}))
        return 0
    from vidx.torchcompat import ensure_torchvision

    ensure_torchvision()
    import transformers

    work = a.workdir or Path(tempfile.mkdtemp(prefix="vidx-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in a.video_size.lower().split("x"))
    video = make_video(work / "minute.mp4", (w, h))
    gpu = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else None
    report: dict[str, Any] = {"bench": "gpu_smoke", "gpu": gpu, "torch": torch.__version__,
                              "transformers": transformers.__version__, "window_s": 60, "fps": 2, "runs": []}
    for size in a.sizes.split(","):
        try:
            report["runs"].append(run_size(size.strip(), work, video, a.new_tokens, a.device, tuple(a.cache.split(",")),
                                        tuple(int(x) for x in a.batch.split(","))))
        except Exception as exc:
            report["runs"].append({"size": size, "error": f"{type(exc).__name__}: {exc}"[:500]})
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        print(json.dumps(report["runs"][-1]), flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    return 1 if any("error" in r for r in report["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
