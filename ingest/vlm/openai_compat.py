"""Any OpenAI-compatible chat-completions server (vLLM, SGLang, hosted Qwen).

Frames travel inline as base64 JPEG ``data:`` URLs, each preceded by its
``<t seconds>`` timestamp: the server is never given a URL to fetch."""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from ingest.vlm.base import Clip, VlmError, VlmUnavailable
from vidx.config import Settings
from vidx.media import jpeg_bytes

log = logging.getLogger("ingest.vlm.openai")


UNAVAILABLE_STATUS = {502, 503, 504}  # a proxy without its backend, a server still loading
BUSY_STATUS = {429}  # rate limited / queue full: wait and ask again


def _retry_after(exc: Exception) -> float | None:
    """The server's own Retry-After (seconds), when it sent one."""
    resp = getattr(exc, "response", None)
    value = resp.headers.get("retry-after") if resp is not None and hasattr(resp, "headers") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _is_busy(exc: Exception) -> bool:
    import openai

    return isinstance(exc, openai.APITimeoutError) or (
        isinstance(exc, openai.APIStatusError) and exc.status_code in BUSY_STATUS)


def _vlm_error(exc: Exception, what: str) -> VlmError:
    """Unreachable or not ready: VlmUnavailable (the video waits); anything else: VlmError."""
    import openai

    if isinstance(exc, openai.APIConnectionError) or (
            isinstance(exc, openai.APIStatusError) and exc.status_code in UNAVAILABLE_STATUS):
        return VlmUnavailable(f"{what}: {exc}")
    return VlmError(f"{what}: {exc}")


class OpenAIProvider:
    name = "openai"

    def __init__(self, settings: Settings, client: Any = None) -> None:
        from openai import OpenAI

        if not settings.openai_base_url:
            raise VlmError("VIDX_OPENAI_BASE_URL is not set")
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "EMPTY"
        self.settings = settings
        self.in_flight = settings.vlm_concurrency  # windows asked at once: the server batches them
        # told before each try and during waits: a slow server is progress, not a hung decoder
        # (one try lasts at most VIDX_OPENAI_TIMEOUT, which the settings keep below VIDX_STALL_SECONDS)
        self.on_wait: Callable[[str], None] | None = None
        self.client = client or OpenAI(base_url=settings.openai_base_url, api_key=key,
                                       timeout=settings.openai_timeout, max_retries=0)
        self._model_id: str | None = settings.openai_model
        try:
            model = self.model_id  # asks the server when VIDX_OPENAI_MODEL is unset
        except VlmUnavailable as exc:  # a server still loading its model: the daemon starts anyway
            log.warning("%s; videos wait until it answers", exc)
        else:
            log.info("OpenAI-compatible server %s, model %s", settings.openai_base_url, model)

    @property
    def model_id(self) -> str:
        """VIDX_OPENAI_MODEL, else the first model the server lists (asked once it answers)."""
        if self._model_id is None:
            self._model_id = self._first_model()
        return self._model_id

    def _first_model(self) -> str:
        try:
            models = list(self.client.models.list())
        except Exception as exc:
            raise _vlm_error(exc, f"cannot list models at {self.settings.openai_base_url}") from exc
        if not models:
            raise VlmError(f"{self.settings.openai_base_url} serves no model; set VIDX_OPENAI_MODEL")
        return str(models[0].id)

    @staticmethod
    def content(clip: Clip, prompt: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for t, frame in zip(clip.timestamps, clip.frames):
            b64 = base64.b64encode(jpeg_bytes(frame, max_width=frame.shape[1], quality=85)).decode()
            parts.append({"type": "text", "text": f"<{t:.1f} seconds>"})
            parts.append({"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64}"}})
        parts.append({"type": "text", "text": prompt})
        return parts

    def _chat(self, messages: list[dict[str, Any]]) -> str:
        """One answer. A 429 or a timeout is asked again after a wait (Retry-After, else
        VIDX_OPENAI_BACKOFF doubling, with jitter) up to VIDX_OPENAI_RETRIES times; then the
        server counts as unavailable and the video waits (no window is lost: the finished
        ones are checkpointed)."""
        s = self.settings
        for attempt in range(s.openai_retries + 1):
            self._waiting(f"waiting for the VLM server (try {attempt + 1} of {s.openai_retries + 1})")
            try:
                resp = self.client.chat.completions.create(
                    model=self.model_id, messages=messages,  # type: ignore[arg-type]
                    temperature=0.0,
                    max_tokens=s.vlm_max_new_tokens,
                )
                return str(resp.choices[0].message.content or "")
            except Exception as exc:
                if not _is_busy(exc):
                    raise _vlm_error(exc, str(s.openai_base_url)) from exc
                if attempt == s.openai_retries:
                    raise VlmUnavailable(f"{s.openai_base_url}: still busy or timing out after "
                                         f"{s.openai_retries + 1} tries ({exc})") from exc
                wait = _retry_after(exc)
                if wait is None:
                    wait = min(120.0, s.openai_backoff * 2 ** attempt) * random.uniform(0.8, 1.2)
                log.warning("%s: %s; asking again in %.1fs (try %d of %d)", s.openai_base_url,
                            "timed out" if "Timeout" in type(exc).__name__ else "busy (429)", wait,
                            attempt + 2, s.openai_retries + 1)
                self._pause(wait, f"the VLM server is busy: asking again in {wait:.0f}s "
                                  f"(try {attempt + 2} of {s.openai_retries + 1})")
        raise AssertionError("unreachable")

    def _waiting(self, msg: str) -> None:
        if self.on_wait is not None:
            self.on_wait(msg)

    def _pause(self, seconds: float, msg: str) -> None:
        """Sleep between tries, reporting that the video is waiting (not hung) every second."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._waiting(msg)
            time.sleep(min(1.0, left))

    def generate(self, clip: Clip, prompt: str, system: str) -> str:
        return self._chat([{"role": "system", "content": system},
                           {"role": "user", "content": self.content(clip, prompt)}])

    def follow_up(self, clip: Clip, prompt: str, system: str, previous: str, message: str) -> str:
        return self._chat([{"role": "system", "content": system},
                           {"role": "user", "content": self.content(clip, prompt)},
                           {"role": "assistant", "content": previous},
                           {"role": "user", "content": message}])
