"""The Analyzer seam: a video in, events (without embeddings) out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidx.ledger import WindowRow
from vidx.media import VideoInfo
from vidx.schema import Event

log = logging.getLogger("ingest.analyzers")

ProgressFn = Callable[[float, str], None]  # fraction done (0..1), short message


class AnalysisError(RuntimeError):
    """The analysis of this video failed; the message is shown to the user."""


class Checkpoint(Protocol):
    """Per-window results of long analyses, so a crash resumes where it stopped."""

    def load(self, key: str) -> dict[int, WindowRow]: ...

    def save(self, key: str, row: WindowRow) -> None: ...


@dataclass
class VideoJob:
    path: Path
    video_id: str
    sha256: str  # the key event ids derive from: the video's identity (stable across sidecar changes)
    info: VideoInfo
    run_id: str
    checkpoint: Checkpoint | None = None
    # set when the video's analysis ends, however it ends (done, failed, stalled, daemon
    # stopping): work started beside it (speech recognition) stops and frees what it holds
    ended: threading.Event = field(default_factory=threading.Event)
    # the names of known people among the video's speakers ({speaker label: name}), for prompts
    speaker_names: Callable[[Any], dict[int, str]] | None = None


@dataclass
class Analysis:
    events: list[Event]
    thumbnails: dict[str, bytes] = field(default_factory=dict)  # event_id -> JPEG
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem (e.g. why no speech)
    busy: dict[str, float] = field(default_factory=dict)  # seconds each part of the analysis worked (they overlap)
    voices: Any = None  # ingest.people.diarize.Diarization of the speech, when voices are recognised
    turns: dict[str, int] = field(default_factory=dict)  # speech event id -> speaker label
    faces: list[Any] | None = None  # ingest.people.faces.Face found on sampled frames; None: not looked for
    faces_model: str = ""


class Analyzer(Protocol):
    name: str  # "basic", "qwen3vl", "openai"
    version: str  # goes into event ids and the ledger

    def analyze(self, job: VideoJob, progress: ProgressFn) -> Analysis: ...
