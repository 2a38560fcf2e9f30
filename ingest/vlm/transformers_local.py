"""Qwen3-VL with transformers on a local GPU (dense and MoE), one model load per process.

Frames are decoded by vidx with exact source indices and passed with a VideoMetadata,
so the ``<t seconds>`` markers Qwen3-VL reads are the true times (a wrong fps would
silently shift every timestamp)."""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
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
        self.in_flight = settings.qwen_batch  # the analyzer asks this many windows at once
        self._cv = threading.Condition()
        self._pending: list[tuple[Clip, list[dict[str, Any]], Future[str]]] = []
        self._batcher: threading.Thread | None = None
        self.batches: list[int] = []  # sizes of the batches run (diagnostics, tests)

    def inputs(self, clip: Clip, messages: list[dict[str, Any]]) -> Any:
        return self.batch_inputs([(clip, messages)])

    def batch_inputs(self, items: list[tuple[Clip, list[dict[str, Any]]]]) -> Any:
        """Processor inputs for one or more windows (left-padded to one length)."""
        import numpy as np
        from transformers.video_utils import VideoMetadata

        texts, videos, metas = [], [], []
        for clip, messages in items:
            if len(clip.indices) % 2:  # Qwen3-VL pairs frames (temporal patch 2): repeat the last one
                clip = Clip(np.concatenate([clip.frames, clip.frames[-1:]]), [*clip.timestamps, clip.timestamps[-1]],
                            [*clip.indices, clip.indices[-1]], clip.source_fps, clip.total_frames, clip.start,
                            clip.end)
            h, w = clip.frames.shape[1:3]
            metas.append(VideoMetadata(total_num_frames=clip.total_frames, fps=clip.source_fps,
                                       frames_indices=list(clip.indices), height=h, width=w,
                                       duration=clip.total_frames / clip.source_fps))
            texts.append(self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            videos.append(clip.frames)
        kw: dict[str, Any] = {"padding": True, "padding_side": "left"} if len(items) > 1 else {}
        inputs = self.processor(text=texts, videos=videos, video_metadata=metas, do_sample_frames=False,
                                return_tensors="pt", **kw)
        return self._pad_to_bucket(inputs)

    def _pad_to_bucket(self, inputs: Any) -> Any:
        """VIDX_QWEN_PAD_TO: left-pad to the next multiple of that many tokens, so windows of
        different lengths share a few static-cache sizes (and their compiled decode step)."""
        import torch

        bucket = self.settings.qwen_pad_to
        n = int(inputs["input_ids"].shape[1])
        if bucket <= 0 or n % bucket == 0:
            return inputs
        extra = bucket - n % bucket
        pad_id = self.processor.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.processor.tokenizer.eos_token_id or 0
        for key in list(inputs.keys()):  # input_ids, attention_mask, mm_token_type_ids, ...: one per token
            v = inputs[key]
            if not isinstance(v, torch.Tensor) or v.dim() != 2 or v.shape[1] != n:
                continue
            fill = pad_id if key == "input_ids" else 0
            inputs[key] = torch.cat([torch.full((v.shape[0], extra), fill, dtype=v.dtype), v], dim=1)
        return inputs

    def _run(self, clip: Clip, messages: list[dict[str, Any]]) -> str:
        out = self._run_batch([(clip, messages)])[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def _run_batch(self, items: list[tuple[Clip, list[dict[str, Any]]]]) -> list[str | BaseException]:
        """One generate() for every window in ``items``; the answers in the same order (a
        window that failed alone after its batch ran out of memory has its error there)."""
        import torch

        inputs = self.batch_inputs(items)
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
            if len(items) > 1:  # the batch did not fit: each window alone may
                log.warning("out of GPU memory on a batch of %d windows; asking them one by one", len(items))
                outs: list[str | BaseException] = []
                for c, m in items:
                    try:
                        outs.append(self._run(c, m))
                    except VlmOutOfMemory as one:
                        outs.append(one)
                return outs
            raise VlmOutOfMemory(f"out of GPU memory on a {len(items[0][0].timestamps)}-frame window; lower "
                                 "VIDX_VLM_MAX_FRAMES or VIDX_VLM_MAX_PIXELS") from exc
        new = out[:, inputs["input_ids"].shape[1]:]
        return [str(t) for t in self.processor.batch_decode(new, skip_special_tokens=True)]

    def _ask(self, clip: Clip, messages: list[dict[str, Any]]) -> str:
        """One window's answer. With VIDX_QWEN_BATCH > 1 the windows asked at the same time
        (from the analyzer's threads) are generated together: the first waits up to
        VIDX_QWEN_BATCH_WAIT seconds for the batch to fill."""
        if self.in_flight <= 1:
            return self._run(clip, messages)
        fut: Future[str] = Future()
        with self._cv:
            self._pending.append((clip, messages, fut))
            self._cv.notify_all()
            if self._batcher is None or not self._batcher.is_alive():
                self._batcher = threading.Thread(target=self._batch_loop, name="qwen-batcher", daemon=True)
                self._batcher.start()
        return fut.result()

    def _batch_loop(self) -> None:
        while True:
            with self._cv:
                if not self._cv.wait_for(lambda: bool(self._pending), timeout=30):
                    self._batcher = None
                    return
                deadline = time.monotonic() + self.settings.qwen_batch_wait
                while len(self._pending) < self.in_flight and (left := deadline - time.monotonic()) > 0:
                    self._cv.wait(left)
                batch, self._pending = self._pending[:self.in_flight], self._pending[self.in_flight:]
            self.batches.append(len(batch))
            try:
                answers = self._run_batch([(c, m) for c, m, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - each caller gets it
                for _, _, f in batch:
                    f.set_exception(exc)
            else:
                for (_, _, f), a in zip(batch, answers):
                    if isinstance(a, BaseException):
                        f.set_exception(a)
                    else:
                        f.set_result(a)

    @staticmethod
    def _messages(prompt: str, system: str) -> list[dict[str, Any]]:
        return [{"role": "system", "content": [{"type": "text", "text": system}]},
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]

    def generate(self, clip: Clip, prompt: str, system: str) -> str:
        return self._ask(clip, self._messages(prompt, system))

    def follow_up(self, clip: Clip, prompt: str, system: str, previous: str, message: str) -> str:
        msgs = self._messages(prompt, system) + [
            {"role": "assistant", "content": [{"type": "text", "text": previous[:4000]}]},
            {"role": "user", "content": [{"type": "text", "text": message}]},
        ]
        return self._ask(clip, msgs)
