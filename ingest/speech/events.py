"""Speech as events: one event per spoken line, and the words spoken inside a span."""

from __future__ import annotations

from typing import Any

from ingest.speech.recognizer import Transcript
from vidx.schema import Event, event_id_for


def spoken_between(transcript: Transcript | None, start: float, end: float) -> str:
    """The words spoken in [start, end): by word times when known, else whole lines that overlap."""
    if transcript is None:
        return ""
    out: list[str] = []
    for line in transcript.lines:
        if line.end <= start or line.start >= end:
            continue
        if line.words:
            out.extend(w.text for w in line.words if start <= (w.start + w.end) / 2 < end)
        else:
            out.append(line.text)
    return " ".join(x for x in out if x).strip()


def speaker_turns(transcript: Transcript | None, events: list[Event]) -> dict[str, int]:
    """{speech event id: speaker label} from the transcript's speakers (events as made by
    :func:`speech_events`, one per line in order)."""
    if transcript is None or transcript.speakers is None:
        return {}
    labels = transcript.speakers.line_speaker
    return {e.event_id: lab for e, lab in zip(events, labels) if lab is not None}


def speech_events(transcript: Transcript | None, sha256: str, version: str, first_index: int,
                  common: dict[str, Any], duration: float) -> list[Event]:
    if transcript is None:
        return []
    events = []
    for i, line in enumerate(transcript.lines):
        start = round(max(0.0, line.start), 3)
        end = round(min(max(line.end, start + 0.1), max(duration, start + 0.1)), 3)
        events.append(Event(
            event_id=event_id_for(sha256, version, start, end, first_index + i), start_sec=start, end_sec=end,
            description=f"Spoken: {line.text}", dialogue=line.text, source="speech",
            language=transcript.language, model=transcript.model or common.get("model", ""),
            **{k: v for k, v in common.items() if k != "model"},
        ))
    return events
