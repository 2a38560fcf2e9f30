"""Qwen3-VL with transformers on a local GPU (dense and MoE), one model load per process.

Frames are decoded by vidx with exact source indices and passed with a VideoMetadata,
so the ``<t seconds>`` markers Qwen3-VL reads are the true times (a wrong fps would
silently shift every timestamp)."""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable
from typing import Any

from ingest.vlm.base import Clip, VlmError, VlmOutOfMemory
from vidx.config import Settings
from vidx.torchcompat import ensure_torchvision

log = logging.getLogger("ingest.vlm.qwen3vl")

GenerationHook = Callable[[Any, Any], dict[str, Any]]  # (inputs, processor) -> extra generate() kwargs

_models: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_lock = threading.Lock()


def pick_device(choice: str) -> str:
    import torch

    if choice != "auto":
        return choice
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_attention(choice: str, device: str) -> str:
    if choice != "auto":
        return choice
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load(path: str, device: str, attn: str) -> tuple[Any, Any]:
    """(processor, model), cached per process."""
    with _lock:
        key = (path, device, attn)
        if key not in _models:
            ensure_torchvision()
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
            try:
                processor = AutoProcessor.from_pretrained(path)
                model: Any = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype,
                                                                         attn_implementation=attn)
            except Exception as exc:
                raise VlmError(f"cannot load Qwen3-VL from {path!r}: {exc}") from exc
            model = model.to(device).eval()
            log.info("loaded %s (%s) on %s, %s, attention %s", path, type(model).__name__, device, dtype, attn)
            _models[key] = (processor, model)
        return _models[key]


class QwenLocalProvider:
    name = "qwen3vl"

    def __init__(self, settings: Settings, generation_hook: GenerationHook | None = None) -> None:
        if not settings.qwen_model:
            raise VlmError("VIDX_QWEN_MODEL is not set (a local folder or a cached model id)")
        self.settings = settings
        self.device = pick_device(settings.qwen_device)
        self.attn = pick_attention(settings.qwen_attn, self.device)
        self.processor, self.model = load(settings.qwen_model, self.device, self.attn)
        self.model_id = settings.qwen_model.rstrip("/").split("/")[-1] if "/" in settings.qwen_model else \
            settings.qwen_model
        cfg = getattr(self.model.config, "_name_or_path", "")
        if cfg and not cfg.startswith("/"):
            self.model_id = cfg
        self.generation_hook = generation_hook
        self.last_prompt_ids: Any = None  # for diagnostics and tests

    def inputs(self, clip: Clip, messages: list[dict[str, Any]]) -> Any:
        import numpy as np
        from transformers.video_utils import VideoMetadata

        if len(clip.indices) % 2:  # Qwen3-VL pairs frames (temporal patch 2): repeat the last one
            clip = Clip(np.concatenate([clip.frames, clip.frames[-1:]]), [*clip.timestamps, clip.timestamps[-1]],
                        [*clip.indices, clip.indices[-1]], clip.source_fps, clip.total_frames, clip.start, clip.end)

        h, w = clip.frames.shape[1:3]
        meta = VideoMetadata(total_num_frames=clip.total_frames, fps=clip.source_fps,
                             frames_indices=list(clip.indices), height=h, width=w,
                             duration=clip.total_frames / clip.source_fps)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.processor(text=[text], videos=[clip.frames], video_metadata=[meta], do_sample_frames=False,
                              return_tensors="pt")

    def _run(self, clip: Clip, messages: list[dict[str, Any]]) -> str:
        import torch

        inputs = self.inputs(clip, messages)
        self.last_prompt_ids = inputs["input_ids"]
        extra = self.generation_hook(inputs, self.processor) if self.generation_hook else {}
        kw: dict[str, Any] = {"max_new_tokens": self.settings.vlm_max_new_tokens, "do_sample": False,
                              "repetition_penalty": 1.05, **extra}
        if self.settings.qwen_cache == "static":
            kw.setdefault("cache_implementation", "static")
        try:
            with torch.inference_mode():
                out = self.model.generate(**inputs.to(self.device), **kw)
        except torch.OutOfMemoryError as exc:
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            raise VlmOutOfMemory(f"out of GPU memory on a {len(clip.timestamps)}-frame window; lower "
                                 "VIDX_VLM_MAX_FRAMES or VIDX_VLM_MAX_PIXELS") from exc
        new = out[:, inputs["input_ids"].shape[1]:]
        return str(self.processor.batch_decode(new, skip_special_tokens=True)[0])

    @staticmethod
    def _messages(prompt: str, system: str) -> list[dict[str, Any]]:
        return [{"role": "system", "content": [{"type": "text", "text": system}]},
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]

    def generate(self, clip: Clip, prompt: str, system: str) -> str:
        return self._run(clip, self._messages(prompt, system))

    def follow_up(self, clip: Clip, prompt: str, system: str, previous: str, message: str) -> str:
        msgs = self._messages(prompt, system) + [
            {"role": "assistant", "content": [{"type": "text", "text": previous[:4000]}]},
            {"role": "user", "content": [{"type": "text", "text": message}]},
        ]
        return self._run(clip, msgs)
