"""A video's transcript (human subtitles or recognised speech) as JSON, SRT or WebVTT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidx.schema import Event

FORMATS = ("json", "srt", "vtt")


def transcript_lines(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The spoken lines of a video in time order: subtitle lines when the video has them
    (human-made), else recognised speech; both when both were indexed (VIDX_ASR=on)."""
    lines = [e for e in events if e.source in ("subtitle", "speech") and e.dialogue.strip()]
    lines.sort(key=lambda e: (e.start_sec, e.end_sec, e.source))
    return [{"start_sec": e.start_sec, "end_sec": e.end_sec, "text": e.dialogue.strip(), "source": e.source,
             "language": e.language, "event_id": e.event_id} for e in lines]


def _ts(sec: float, sep: str) -> str:
    ms = int(round(max(0.0, sec) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _one_line(text: str) -> str:
    # a blank line ends a cue in both formats, and "-->" starts a timing line in WebVTT
    return " ".join(text.split()).replace("-->", "->")


def to_srt(lines: Sequence[dict[str, Any]]) -> str:
    blocks = [f"{i}\n{_ts(x['start_sec'], ',')} --> {_ts(x['end_sec'], ',')}\n{_one_line(x['text'])}\n"
              for i, x in enumerate(lines, 1)]
    return "\n".join(blocks)


def to_vtt(lines: Sequence[dict[str, Any]]) -> str:
    blocks = [f"{_ts(x['start_sec'], '.')} --> {_ts(x['end_sec'], '.')}\n{_one_line(x['text'])}\n" for x in lines]
    return "WEBVTT\n\n" + "\n".join(blocks)
