"""A video's summary and chapters, cached per video and rebuilt when its events change.

* Chapters come from the video itself: a new chapter where the on-screen text's first line (a
  slide's title) changes at a scene start; a video without such text gets chapters every few
  minutes. Times always come from events, never from a model.
* Without a model, a chapter's title is that first line (or the chapter's most central line)
  and the summary is the video's most central lines (closest to the video's word centroid).
* With a model (:mod:`vidx.llm`), map-reduce: each stretch of chapters is sent with its events
  (and speakers' names when known) to title the chapters and summarise the stretch; the stretch
  summaries are then merged into one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vidx.llm import ChatModel, LLMError, read_json
from vidx.schema import Event, format_ts
from vidx.text import stems

log = logging.getLogger("vidx.summary")

MAX_CHAPTERS = 40
MIN_CHAPTER = 5.0  # seconds: a title seen for less is a flash, not a chapter
SUMMARY_LINES = 3
STRETCH_CHARS = 6000  # text of one map step
TITLE_WORDS = 8

MAP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "titles": {"type": "array", "items": {
            "type": "object", "properties": {"label": {"type": "string"}, "title": {"type": "string"}},
            "required": ["label", "title"], "additionalProperties": False}},
    },
    "required": ["summary", "titles"],
    "additionalProperties": False,
}
REDUCE_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"summary": {"type": "string"}},
    "required": ["summary"], "additionalProperties": False,
}


def _title(text: str) -> str:
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    words = first.split()
    return " ".join(words[:TITLE_WORDS]) + ("…" if len(words) > TITLE_WORDS else "")


def _line(e: Event) -> str:
    who = f"{', '.join(e.people)}: " if e.source in ("speech", "subtitle") and e.people else ""
    return who + " ".join(e.dialogue.split())


def spoken(events: Sequence[Event]) -> list[Event]:
    lines = [e for e in events if e.source in ("speech", "subtitle") and e.dialogue.strip()]
    return sorted(lines, key=lambda e: (e.start_sec, e.end_sec))


def central(lines: Sequence[Event], k: int) -> list[Event]:
    """The ``k`` lines nearest the centroid of all lines' stemmed words (cosine of counts), in
    time order: what the video keeps coming back to."""
    bags = [Counter(stems(e.dialogue)) for e in lines]
    centroid: Counter[str] = Counter()
    for b in bags:
        centroid.update({t: 1 for t in b})  # document frequency: words many lines share
    cn = math.sqrt(sum(v * v for v in centroid.values())) or 1.0
    scored = []
    for i, b in enumerate(bags):
        n = math.sqrt(sum(v * v for v in b.values()))
        if n == 0:
            continue
        scored.append((sum(v * centroid[t] for t, v in b.items()) / (n * cn), i))
    best = sorted(i for _, i in sorted(scored, reverse=True)[:k])
    return [lines[i] for i in best]


def chapters_of(events: Sequence[Event]) -> list[dict[str, Any]]:
    """Chapters from scene starts whose on-screen title changes, else every few minutes."""
    if not events:
        return []
    end = max(e.end_sec for e in events)
    scenes = sorted((e for e in events if e.source in ("scene", "vlm")), key=lambda e: e.start_sec)
    out: list[dict[str, Any]] = []
    for sc in scenes:
        title = _title(sc.ocr_text)
        if not title:
            continue
        if out and out[-1]["title"].lower() == title.lower():
            continue  # the same slide, another scene (the speaker moved)
        if out and sc.start_sec - out[-1]["start_sec"] < MIN_CHAPTER:
            out[-1].update(title=title, event_id=sc.event_id)  # the one before only flashed by
            continue
        out.append({"start_sec": sc.start_sec, "title": title, "event_id": sc.event_id})
    lines = spoken(events)
    if len(out) < 2:  # no slides or titles: chapters every few minutes, named by their central line
        step = max(60.0, math.ceil(end / 8 / 30) * 30)
        out = []
        t = 0.0
        while t < end:
            inside = [e for e in lines if t <= e.start_sec < t + step]
            if inside:
                best = central(inside, 1)[0]
                out.append({"start_sec": t, "title": _title(best.dialogue), "event_id": best.event_id})
            elif not out:
                first = min(events, key=lambda e: e.start_sec)
                out.append({"start_sec": t, "title": _title(first.description) or "Start",
                            "event_id": first.event_id})
            t += step
    if out:
        out[0]["start_sec"] = 0.0  # chapter lists start at 0:00 (video sites require it)
    while len(out) > MAX_CHAPTERS:  # fold the shortest chapter into the one before it
        lengths = [(out[i + 1]["start_sec"] if i + 1 < len(out) else end) - c["start_sec"] for i, c in enumerate(out)]
        i = min(range(1, len(out)), key=lambda j: lengths[j])
        del out[i]
    for i, c in enumerate(out):
        c["end_sec"] = out[i + 1]["start_sec"] if i + 1 < len(out) else end
    return [{"start_sec": round(c["start_sec"], 3), "end_sec": round(c["end_sec"], 3), "title": c["title"],
             "event_id": c["event_id"]} for c in out]


def extractive_summary(events: Sequence[Event], chapters: Sequence[dict[str, Any]]) -> str:
    lines = spoken(events)
    if lines:
        return " ".join(_line(e) for e in central(lines, SUMMARY_LINES))
    if chapters:
        titles = "; ".join(c["title"] for c in chapters[:8])
        return f"{len(chapters)} parts: {titles}" + ("; …" if len(chapters) > 8 else "") + "."
    scenes = [e for e in events if e.source in ("scene", "vlm")]
    return f"A video of {len(scenes)} scene{'s' if len(scenes) != 1 else ''}, without speech or on-screen text."


def summarise(events: Sequence[Event], model: ChatModel | None) -> dict[str, Any]:
    """``{"summary", "chapters", "method"}`` (+ ``model`` and ``note``)."""
    chapters = chapters_of(events)
    plain = {"summary": extractive_summary(events, chapters), "chapters": chapters, "method": "extractive"}
    if model is None or not events:
        return plain
    try:
        return _with_model(events, chapters, model)
    except LLMError as exc:
        return {**plain, "note": f"{exc}; an extractive summary is shown instead"}


def _stretches(events: Sequence[Event], chapters: Sequence[dict[str, Any]]) -> list[list[tuple[str, dict[str, Any],
                                                                                              list[str]]]]:
    """Consecutive chapters (labelled S1, S2, …) with their text, cut into map steps."""
    out: list[list[tuple[str, dict[str, Any], list[str]]]] = [[]]
    size = 0
    for i, ch in enumerate(chapters, 1):
        inside = sorted((e for e in events if ch["start_sec"] <= e.start_sec < ch["end_sec"]),
                        key=lambda e: e.start_sec)
        text = []
        for e in inside:
            if e.source in ("speech", "subtitle"):
                text.append(f"{format_ts(e.start_sec)} said: {_line(e)}")
            elif e.ocr_text.strip():
                text.append(f"{format_ts(e.start_sec)} on screen: {' '.join(e.ocr_text.split())}")
            elif e.source == "vlm":
                text.append(f"{format_ts(e.start_sec)} seen: {e.description}")
        chunk = sum(len(t) for t in text)
        if out[-1] and size + chunk > STRETCH_CHARS:
            out.append([])
            size = 0
        out[-1].append((f"S{i}", ch, text[:200]))
        size += chunk
    return [s for s in out if s]


def _with_model(events: Sequence[Event], chapters: list[dict[str, Any]], model: ChatModel) -> dict[str, Any]:
    parts: list[str] = []
    titles: dict[str, str] = {}
    for stretch in _stretches(events, chapters):
        blocks = "\n\n".join(f"[{lab}] {format_ts(ch['start_sec'])}–{format_ts(ch['end_sec'])}\n" + "\n".join(text)
                             for lab, ch, text in stretch)
        raw = model.complete([
            {"role": "system", "content": "You summarise part of a video from its transcript and on-screen text. "
                                          "Use only what is given. Write in the language of the text."},
            {"role": "user", "content": f"{blocks}\n\nGive a summary of this part in one or two sentences, and a "
                                        "short title (at most eight words) for each labelled section. Answer as "
                                        "JSON: {\"summary\": \"…\", \"titles\": [{\"label\": \"S1\", \"title\": \"…\"}]}"}],
            schema=MAP_SCHEMA)
        data = read_json(raw)
        if not isinstance(data, dict) or not str(data.get("summary") or "").strip():
            raise LLMError("the language model's summary could not be read")
        parts.append(str(data["summary"]).strip())
        known = {lab for lab, _, _ in stretch}
        for t in data.get("titles") or []:
            if isinstance(t, dict) and str(t.get("label", "")).upper() in known and str(t.get("title", "")).strip():
                titles[str(t["label"]).upper()] = " ".join(str(t["title"]).split())[:120]
    if len(parts) == 1:
        summary = parts[0]
    else:
        raw = model.complete([
            {"role": "system", "content": "You merge summaries of consecutive parts of one video into one summary. "
                                          "Use only what is given."},
            {"role": "user", "content": "\n".join(f"Part {i}: {p}" for i, p in enumerate(parts, 1))
                                        + "\n\nWrite a summary of the whole video in three to five sentences. "
                                          "Answer as JSON: {\"summary\": \"…\"}"}], schema=REDUCE_SCHEMA)
        data = read_json(raw)
        summary = str(data.get("summary") or "").strip() if isinstance(data, dict) else ""
        if not summary:
            raise LLMError("the language model's summary could not be read")
    out = [dict(c, title=titles.get(f"S{i}", c["title"])) for i, c in enumerate(chapters, 1)]
    return {"summary": summary, "chapters": out, "method": "llm", "model": model.name}


def fingerprint(events: Sequence[Event], method: str) -> str:
    h = hashlib.sha256(method.encode())
    for e in sorted(events, key=lambda e: e.event_id):
        h.update(f"{e.event_id}|{e.start_sec}|{e.end_sec}|{e.dialogue}|{e.ocr_text}|{','.join(e.people)}".encode())
    return h.hexdigest()


class Summaries:
    """Summaries kept in ``summaries.sqlite3`` in the data folder, one row per video, remade
    when the video's events (or the method) change."""

    def __init__(self, path: Path, events_for_video: Callable[[str], list[Event]],
                 model: ChatModel | None) -> None:
        self.path = path
        self.events_for_video = events_for_video
        self.model = model
        self._lock = threading.Lock()
        self._ready = False

    def _db(self) -> sqlite3.Connection:
        from vidx.sqlite import connect

        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(self.path, read_only=False)
        if not self._ready:
            db.execute("CREATE TABLE IF NOT EXISTS summaries (video_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
                       "data TEXT NOT NULL, made_at TEXT NOT NULL)")
            self._ready = True
        return db

    def _method(self) -> str:
        return f"llm:{self.model.name}" if self.model is not None else "extractive"

    def _cached(self, video_id: str, fp: str) -> dict[str, Any] | None:
        with self._lock:
            db = self._db()
            try:
                row = db.execute("SELECT fingerprint, data FROM summaries WHERE video_id = ?", (video_id,)).fetchone()
            finally:
                db.close()
        return dict(json.loads(row[1]), video_id=video_id, cached=True) if row and row[0] == fp else None

    def ready(self, video_id: str, events: Sequence[Event]) -> dict[str, Any] | None:
        """The summary when it costs nothing to show now (cached, or made without a model),
        else None: a page then asks for it after it has loaded."""
        if not events:
            return None
        if self.model is None:
            return self.get(video_id, events)
        try:
            return self._cached(video_id, fingerprint(events, self._method()))
        except LLMError:  # the model's name could not be asked
            return None

    def get(self, video_id: str, events: Sequence[Event] | None = None) -> dict[str, Any] | None:
        """The video's summary (None for a video without events); made on first request.
        ``events``: the video's events when the caller has them already."""
        events = self.events_for_video(video_id) if events is None else events
        if not events:
            return None
        try:
            method = self._method()
        except LLMError as exc:  # the server cannot even name its model
            chapters = chapters_of(events)
            return {"summary": extractive_summary(events, chapters), "chapters": chapters, "method": "extractive",
                    "note": f"{exc}; an extractive summary is shown instead", "video_id": video_id, "cached": False}
        fp = fingerprint(events, method)
        hit = self._cached(video_id, fp)
        if hit is not None:
            return hit
        started = datetime.now(UTC)
        data = summarise(events, self.model)
        log.info("summarised video %s (%d events, %s) in %.1fs", video_id, len(events), data["method"],
                 (datetime.now(UTC) - started).total_seconds())
        if "note" not in data:  # a model that failed is asked again next time
            with self._lock:
                db = self._db()
                try:
                    with db:
                        db.execute("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?)",
                                   (video_id, fp, json.dumps(data, ensure_ascii=False), started.isoformat()))
                finally:
                    db.close()
        return dict(data, video_id=video_id, cached=False)


def _vtt_ts(sec: float) -> str:
    ms = int(round(max(0.0, sec) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def chapters_vtt(chapters: Sequence[dict[str, Any]]) -> str:
    """WebVTT chapters (``<track kind="chapters">``)."""
    cues = [f"{i}\n{_vtt_ts(c['start_sec'])} --> {_vtt_ts(c['end_sec'])}\n{' '.join(c['title'].split()).replace('-->', '->')}\n"
            for i, c in enumerate(chapters, 1)]
    return "WEBVTT\n\n" + "\n".join(cues)


def chapters_text(chapters: Sequence[dict[str, Any]]) -> str:
    """``0:00 Title`` per line, the list video sites read from a description."""
    return "".join(f"{format_ts(c['start_sec'])} {' '.join(c['title'].split())}\n" for c in chapters)
