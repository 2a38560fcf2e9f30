"""Speech recognition behind a Protocol; faster-whisper (CTranslate2, VAD built in) is the
one the program runs."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ingest.speech.audio import RATE

log = logging.getLogger("ingest.speech")


@dataclass
class Word:
    start: float
    end: float
    text: str


@dataclass
class SpokenLine:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    language: str
    probability: float
    lines: list[SpokenLine]
    audio_seconds: float = 0.0
    model: str = ""
    speakers: Any = None  # ingest.people.diarize.Diarization, when voices are recognised


class SpeechRecognizer(Protocol):
    model_id: str

    def transcribe(self, samples: np.ndarray, language: str | None,
                   progress: Callable[[float], None]) -> Transcript:
        """``progress(seconds_done)`` is called as the audio is worked through; it may raise
        to stop (the daemon is stopping)."""


class WhisperRecognizer:
    def __init__(self, model: str, label: str, device: str = "auto", compute_type: str = "auto",
                 cpu_threads: int = 0, beam_size: int = 1) -> None:
        from faster_whisper import WhisperModel

        if device == "auto":
            device = "cuda" if _cuda_devices() > 0 else "cpu"
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        self.device, self.compute_type, self.beam_size = device, compute_type, beam_size
        self.model_id = label
        self._model = WhisperModel(model, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                   local_files_only=_is_local(model))
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray, language: str | None,
                   progress: Callable[[float], None]) -> Transcript:
        total = len(samples) / RATE
        with self._lock:
            segments, info = self._model.transcribe(
                samples, language=language, beam_size=self.beam_size, vad_filter=True, word_timestamps=True,
                condition_on_previous_text=False,
            )
            lines: list[SpokenLine] = []
            for seg in segments:
                text = str(seg.text).strip()
                if text:
                    words = [Word(float(w.start), float(w.end), str(w.word).strip()) for w in (seg.words or [])]
                    lines.append(SpokenLine(float(seg.start), float(seg.end), text, words))
                progress(min(total, float(seg.end)))
        return Transcript(language=str(info.language or ""), probability=float(info.language_probability or 0),
                          lines=lines, audio_seconds=total, model=self.model_id)


def _is_local(model: str) -> bool:
    from pathlib import Path

    return Path(model).is_dir()


def _cuda_devices() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # no CUDA build or driver
        return 0


_cache: dict[tuple[Any, ...], WhisperRecognizer] = {}
_cache_lock = threading.Lock()


def cached_whisper(model: str, label: str, device: str, compute_type: str, beam_size: int) -> WhisperRecognizer:
    key = (model, device, compute_type, beam_size)
    with _cache_lock:
        if key not in _cache:
            # one thread per core: CTranslate2's default (4) oversubscribes small machines, where
            # speech shares the cores with decoding and OCR (bench/README.md: 14.5 vs 13.5 CPU-s)
            _cache[key] = WhisperRecognizer(model, label, device, compute_type, beam_size=beam_size,
                                            cpu_threads=min(8, os.cpu_count() or 1))
        return _cache[key]
