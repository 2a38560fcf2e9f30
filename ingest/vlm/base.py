"""The VlmProvider seam and what a provider is given for one window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vidx.errors import ServiceUnavailable


class VlmError(RuntimeError):
    """The provider could not answer (server down, out of memory...)."""


class VlmUnavailable(VlmError, ServiceUnavailable):
    """The VLM server cannot be reached (down, still loading the model, timed out)."""


class VlmOutOfMemory(VlmError):
    """The window did not fit in GPU memory: the same window with fewer frames may."""


@dataclass
class Clip:
    """Frames of one window with exact time: ``timestamps[i]`` is the presentation time of
    ``frames[i]`` (seconds from the start of the video) and ``indices[i]`` its source frame
    index at ``source_fps``."""

    frames: np.ndarray  # T x H x W x 3 uint8
    timestamps: list[float]
    indices: list[int]
    source_fps: float
    total_frames: int
    start: float
    end: float


class VlmProvider(Protocol):
    """``in_flight`` (optional attribute, default 1): how many windows the provider takes at
    once; the analyzer then asks that many concurrently, from as many threads.
    ``on_wait`` (optional attribute): a remote provider calls it before each try and while it
    waits between tries, so a slow server keeps the video alive (each try has its own timeout)."""

    name: str  # "qwen3vl" | "openai"

    @property
    def model_id(self) -> str:
        """The model that answers, as stamped on every event."""

    def generate(self, clip: Clip, prompt: str, system: str) -> str:
        """The model's raw text answer for this clip and prompt."""

    def follow_up(self, clip: Clip, prompt: str, system: str, previous: str, message: str) -> str:
        """Ask again in the same conversation (used for one repair retry)."""
