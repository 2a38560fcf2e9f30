"""The event: one timestamped thing that happens in a video.

Every analyzer (CPU or VLM) produces :class:`Event` objects; every store keeps
them.  Ids are deterministic, so re-running the same analysis overwrites the
same events and never duplicates them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 2  # 2: language

# Caps keep one hostile subtitle or model answer from bloating the index.
MAX_TEXT = 8000
MAX_LIST = 50
MAX_ITEM = 200


def _clean_text(v: Any) -> str:
    if v is None:
        return ""
    s = str(v).replace("\x00", "").strip()
    return s[:MAX_TEXT]


def _clean_list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        v = [p for p in v.replace("，", ",").split(",")]
    out: list[str] = []
    for item in v:
        s = _clean_text(item)[:MAX_ITEM]
        if s and s not in out:
            out.append(s)
        if len(out) >= MAX_LIST:
            break
    return out


def event_id_for(video_sha256: str, analyzer_version: str, start_sec: float, end_sec: float, index: int) -> str:
    """sha256(content | analyzer version | span | index), hex, 32 chars."""
    key = f"{video_sha256}|{analyzer_version}|{start_sec:.3f}|{end_sec:.3f}|{index}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def video_id_for(sha256_hex: str) -> str:
    """A video's id is the first 32 hex digits of its content SHA-256."""
    return sha256_hex[:32]


class Event(BaseModel):
    """One event, exactly as it is stored and returned by search."""

    model_config = ConfigDict(extra="ignore")

    event_id: str
    video_id: str
    video_path: str
    start_sec: float = Field(ge=0)
    end_sec: float = Field(ge=0)
    description: str = ""
    people: list[str] = Field(default_factory=list)
    location: str = ""
    action: str = ""
    dialogue: str = ""
    objects: list[str] = Field(default_factory=list)
    ocr_text: str = ""
    emotion: str = ""
    source: str = "scene"  # scene | subtitle | speech | vlm
    language: str = ""  # language of the dialogue (speech: detected; subtitles: from the track or file name)
    analyzer: str = ""  # e.g. basic/1, qwen3vl, openai
    model: str = ""  # model id that produced the text
    prompt_version: str = ""
    embedding_model: str = ""
    embedding: list[float] | None = None
    run_id: str = ""
    indexed_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())

    # a class constant, not a private attribute: pydantic deep-copies those into every instance
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ("description", "location", "action", "dialogue", "ocr_text", "emotion")

    @field_validator("description", "location", "action", "dialogue", "ocr_text", "emotion", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str:
        return _clean_text(v)

    @field_validator("people", "objects", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> list[str]:
        return _clean_list(v)

    @model_validator(mode="after")
    def _span(self) -> Event:
        if self.end_sec < self.start_sec:
            raise ValueError(f"end_sec {self.end_sec} is before start_sec {self.start_sec}")
        return self

    @property
    def duration_sec(self) -> float:
        return self.end_sec - self.start_sec

    def embedding_text(self) -> str:
        return embedding_text(self)

    def doc(self, with_embedding: bool = True) -> dict[str, Any]:
        d = self.model_dump()
        if not with_embedding:
            d.pop("embedding", None)
        return d


def embedding_text(e: Event) -> str:
    """The text that is embedded for semantic search, documented in README.

    ``description. People: a, b. Location: l. Action: a. Objects: x, y.
    Dialogue: d. On-screen text: t. Mood: m.``; empty parts are left out.
    """
    parts: list[str] = []
    if e.description:
        parts.append(e.description.rstrip(".") + ".")
    if e.people:
        parts.append("People: " + ", ".join(e.people) + ".")
    if e.location:
        parts.append("Location: " + e.location + ".")
    if e.action:
        parts.append("Action: " + e.action + ".")
    if e.objects:
        parts.append("Objects: " + ", ".join(e.objects) + ".")
    if e.dialogue:
        parts.append("Dialogue: " + e.dialogue)
    if e.ocr_text:
        parts.append("On-screen text: " + e.ocr_text)
    if e.emotion:
        parts.append("Mood: " + e.emotion + ".")
    return " ".join(parts)[:MAX_TEXT]


def format_ts(sec: float) -> str:
    """00:26 or 1:02:03."""
    sec = max(0, int(sec))
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
