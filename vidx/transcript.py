"""A video's transcript (human subtitles or recognised speech) as JSON, SRT or WebVTT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidx.schema import Event

FORMATS = ("json", "srt", "vtt")


def transcript_lines(events: Sequence[Event],
                     speakers: dict[str, tuple[int, str, bool]] | None = None) -> list[dict[str, Any]]:
    """The spoken lines of a video in time order: subtitle lines when the video has them
    (human-made), else recognised speech; both when both were indexed (VIDX_ASR=on).
    ``speakers`` ({event id: (person id, name, hidden)}) gives speech lines their speaker."""
    lines = [e for e in events if e.source in ("subtitle", "speech") and e.dialogue.strip()]
    lines.sort(key=lambda e: (e.start_sec, e.end_sec, e.source))
    out = []
    for e in lines:
        d: dict[str, Any] = {"start_sec": e.start_sec, "end_sec": e.end_sec, "text": e.dialogue.strip(),
                             "source": e.source, "language": e.language, "event_id": e.event_id, "speaker": None}
        who = (speakers or {}).get(e.event_id)
        if who is not None and not who[2]:
            d["speaker"] = {"id": who[0], "name": who[1]}
        out.append(d)
    return out


def _ts(sec: float, sep: str) -> str:
    ms = int(round(max(0.0, sec) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _one_line(text: str) -> str:
    # a blank line ends a cue in both formats, and "-->" starts a timing line in WebVTT
    return " ".join(text.split()).replace("-->", "->")


def _who(x: dict[str, Any]) -> str:
    sp = x.get("speaker")
    return _one_line(str(sp["name"])) if sp else ""


def to_srt(lines: Sequence[dict[str, Any]]) -> str:
    blocks = [f"{i}\n{_ts(x['start_sec'], ',')} --> {_ts(x['end_sec'], ',')}\n"
              f"{_who(x) + ': ' if _who(x) else ''}{_one_line(x['text'])}\n"
              for i, x in enumerate(lines, 1)]
    return "\n".join(blocks)


def _vtt_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(lines: Sequence[dict[str, Any]]) -> str:
    """WebVTT; a known speaker is a voice tag (``<v Ada Quill>…``). Cue text is escaped, as
    WebVTT requires for ``&``, ``<`` and ``>``."""
    def cue(x: dict[str, Any]) -> str:
        who = _who(x)
        text = _vtt_text(_one_line(x["text"]))
        return f"<v {_vtt_text(who)}>{text}" if who else text

    blocks = [f"{_ts(x['start_sec'], '.')} --> {_ts(x['end_sec'], '.')}\n{cue(x)}\n" for x in lines]
    return "WEBVTT\n\n" + "\n".join(blocks)
