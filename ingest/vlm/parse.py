"""Model text -> events. Untrusted input: tolerant of format, strict about truth.

Accepts code fences, a JSON array or an object holding one, the cookbook's
time-range-keyed objects (``{"00:23.00 - 00:48.00": "..."}``), truncated arrays (the
complete objects are kept), times as seconds, ``"12.3"``, ``"12.3s"``, ``"<12.3 seconds>"``,
``mm:ss``, ``mm:ss.ff``, ``hh:mm:ss(.fff)``, ``12.3秒``, and English or Chinese keys.
Answers that ignore the JSON instruction and come as plain text, one event per line with a
time range (``00:05-00:12 A man enters``, ``[5.0s - 12.0s] …``, ``From 5 to 12 seconds: …``),
are read too. Clamps times into the window; drops events whose times are missing or
impossible; never invents a timestamp or text.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("ingest.vlm.parse")

MAX_EVENTS_PER_WINDOW = 100
EDGE_TOLERANCE = 2.0  # seconds a model may overshoot the window before an event is impossible

_KEYS: dict[str, tuple[str, ...]] = {
    "start": ("start", "start_time", "start_sec", "start_seconds", "begin", "from", "开始", "开始时间", "起始时间"),
    "end": ("end", "end_time", "end_sec", "end_seconds", "stop", "to", "结束", "结束时间"),
    "range": ("time", "timestamp", "time_range", "timerange", "span", "时间", "时间段"),
    "description": ("description", "event", "caption", "summary", "desc", "事件", "描述", "内容"),
    "people": ("people", "characters", "persons", "person", "who", "人物", "角色"),
    "location": ("location", "place", "setting", "scene", "where", "地点", "场景"),
    "action": ("action", "actions", "activity", "动作", "行为"),
    "dialogue": ("dialogue", "dialogue_summary", "speech", "dialog", "said", "对话", "台词"),
    "objects": ("objects", "items", "props", "物体", "物品"),
    "ocr_text": ("ocr_text", "on_screen_text", "screen_text", "text", "ocr", "文字", "屏幕文字"),
    "emotion": ("emotion", "mood", "tone", "情绪", "情感"),
}
_TIME_RE = re.compile(
    r"^\s*<?\s*(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:[.,]\d+)?)\s*>?\s*$"
    r"|^\s*<?\s*(?P<sec>\d+(?:\.\d+)?)\s*(?:s|sec|secs|second|seconds|秒)?\s*>?\s*$",
    re.IGNORECASE,
)
_RANGE_RE = re.compile(r"^\s*(.+?)\s*(?:-|–|—|~|to|至|到)\s*(.+?)\s*$")


@dataclass
class ParseResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    ok: bool = True  # False: nothing JSON-like could be read at all


def parse_time(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if v == v and v >= 0 else None  # NaN, negative -> None
    m = _TIME_RE.match(str(v))
    if not m:
        return None
    if m.group("sec") is not None:
        return float(m.group("sec"))
    h = int(m.group("h") or 0)
    mins, secs = int(m.group("m")), float(m.group("s").replace(",", "."))
    if secs >= 60 or (m.group("h") is not None and mins >= 60):
        return None
    return h * 3600 + mins * 60 + secs


def parse_range(v: Any) -> tuple[float, float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        a, b = parse_time(v[0]), parse_time(v[1])
        return (a, b) if a is not None and b is not None else None
    if not isinstance(v, str):
        return None
    m = _RANGE_RE.match(v)
    if not m:
        return None
    a, b = parse_time(m.group(1)), parse_time(m.group(2))
    return (a, b) if a is not None and b is not None else None


def _strip(text: str) -> str:
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL | re.IGNORECASE)
    fence = re.search(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", text, re.DOTALL)
    return fence.group(1) if fence else text


def _salvage_array(text: str, start: int) -> list[Any]:
    """Complete elements of a possibly truncated JSON array starting at text[start] == '['."""
    dec = json.JSONDecoder()
    out: list[Any] = []
    i = start + 1
    while i < len(text):
        while i < len(text) and text[i] in " \r\n\t,":
            i += 1
        if i >= len(text) or text[i] == "]":
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        out.append(obj)
    return out


def _load(text: str) -> Any:
    body = _strip(text).strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        pass
    dec = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", body):
        try:
            return dec.raw_decode(body, m.start())[0]
        except json.JSONDecodeError:
            if body[m.start()] == "[":
                items = _salvage_array(body, m.start())
                if items:
                    return items
    return None


def _items(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for k in ("events", "results", "items", "data", "事件"):
            if isinstance(data.get(k), list):
                return data[k]  # type: ignore[no-any-return]
        ranged = [(k, v) for k, v in data.items() if parse_range(k)]
        if ranged:  # cookbook style: {"00:23.00 - 00:48.00": "..."}
            out = []
            for k, v in ranged:
                item = dict(v) if isinstance(v, dict) else {"description": v}
                item["_range"] = k
                out.append(item)
            return out
        if any(k in data for k in _KEYS["description"]):
            return [data]
    return []


def _get(item: dict[str, Any], name: str) -> Any:
    low = {str(k).strip().lower(): v for k, v in item.items()}
    for k in _KEYS[name]:
        if k in low and low[k] not in (None, ""):
            return low[k]
    return None


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return "; ".join(_text(x) for x in v if x not in (None, ""))
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_text(x)}" for k, x in v.items())
    return str(v).strip()


def _list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [p.strip() for p in re.split(r"[,，、;；]", v) if p.strip()]
    if isinstance(v, list):
        return [_text(x) for x in v if _text(x)]
    return [_text(v)]


_T = r"(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d+)?|\d+(?:\.\d+)?"
_UNIT = r"(?:seconds|second|secs|sec|s|秒)?"
_RANGE_AT = (rf"(?:from\s+)?[\[(<]?\s*(?P<a>{_T})\s*{_UNIT}\s*>?\s*(?:-|–|—|~|to|至|到)\s*<?\s*"
             rf"(?P<b>{_T})\s*{_UNIT}\s*[\])>]?\s*(?:seconds)?\s*[:,.\-–—|]?\s*")
# a list marker must be followed by a space ("4." of "4.5 - 8.0" is a decimal, not item 4)
_PLAIN_RE = re.compile(rf"^\s*(?:[-*•]\s*|\d+[.)]\s+)?{_RANGE_AT}(?P<text>\S.*)$", re.IGNORECASE)
# the same range starting a later sentence of the same paragraph
_NEXT_RE = re.compile(rf"(?<=[.!?。！？])\s+{_RANGE_AT}(?=\S)", re.IGNORECASE)


def _plain_lines(text: str) -> list[dict[str, Any]]:
    """Dense captions as plain text, one event per time-ranged sentence (the styles Qwen-family
    models are trained on): ``00:05-00:12 A man enters.``, ``[5.0s - 12.0s] …``, ``From 5 to
    12 seconds: …``, ``4.5 - 8.0 seconds, a cyclist crosses … 10.5 - 14.0 seconds, …``."""
    out = []
    for line in _strip(text).splitlines():
        m = _PLAIN_RE.match(line.strip().strip("*"))
        if not m or not m.group("text").strip():
            continue
        a, b, rest = m.group("a"), m.group("b"), m.group("text")
        for nxt in _NEXT_RE.finditer(rest):
            head = rest[: nxt.start()].strip()
            if head:
                out.append({"start": a, "end": b, "description": head})
            a, b, rest = nxt.group("a"), nxt.group("b"), rest[nxt.end():]
            break
        else:
            out.append({"start": a, "end": b, "description": rest.strip()})
            continue
        # more sentences: parse what is left as a line of its own
        out.extend(_plain_lines(f"{a} - {b} seconds, {rest}"))
    return out


def parse_events(text: str, win_start: float, win_end: float) -> ParseResult:
    data = _load(text or "")
    if data is None or not any(isinstance(i, dict) for i in _items(data)):
        plain = _plain_lines(text or "")
        if plain:
            data = plain
        elif data is None:
            return ParseResult(ok=False, dropped=["no JSON and no timed lines found in the answer"])
    items = _items(data)
    res = ParseResult(ok=True)
    if not items and data not in ([], {}):
        res.ok = False
        res.dropped.append("JSON holds no list of events")
        return res
    if items and not any(isinstance(i, dict) for i in items):
        return ParseResult(ok=False, dropped=["the list holds no event objects"])
    raw = []
    for item in items:
        if not isinstance(item, dict):
            res.dropped.append(f"not an object: {str(item)[:80]}")
            continue
        span = parse_range(item.pop("_range")) if "_range" in item else None
        start = parse_time(_get(item, "start"))
        end = parse_time(_get(item, "end"))
        if start is None and span is None:
            span = parse_range(_get(item, "range"))
        if span is not None and start is None:
            start, end = span
        if start is None:
            res.dropped.append(f"no readable start time: {json.dumps(item, ensure_ascii=False)[:120]}")
            continue
        if end is None:
            end = start  # a moment, not an invented duration
        raw.append((start, end, item))
    # a model may answer in clip-relative time: accept that only when every time fits
    length = win_end - win_start
    if win_start > 0 and raw and all(e <= length + EDGE_TOLERANCE for _, e, _ in raw) and not any(
        win_start - EDGE_TOLERANCE <= s <= win_end + EDGE_TOLERANCE for s, _, _ in raw
    ):
        raw = [(s + win_start, e + win_start, it) for s, e, it in raw]
    for start, end, item in raw:
        if end < start:
            res.dropped.append(f"end {end} before start {start}")
            continue
        if start > win_end + EDGE_TOLERANCE or end < win_start - EDGE_TOLERANCE:
            res.dropped.append(f"time {start:.1f}-{end:.1f} outside the clip {win_start:.1f}-{win_end:.1f}")
            continue
        start = min(max(start, win_start), win_end)
        end = max(min(end, win_end), start)
        ev = {
            "start_sec": round(start, 3),
            "end_sec": round(end, 3),
            "description": _text(_get(item, "description")),
            "people": _list(_get(item, "people")),
            "location": _text(_get(item, "location")),
            "action": _text(_get(item, "action")),
            "dialogue": _text(_get(item, "dialogue")),
            "objects": _list(_get(item, "objects")),
            "ocr_text": _text(_get(item, "ocr_text")),
            "emotion": _text(_get(item, "emotion")),
        }
        if not any(ev[k] for k in ("description", "action", "dialogue", "ocr_text", "people", "objects")):
            res.dropped.append("event has no text")
            continue
        res.events.append(ev)
        if len(res.events) >= MAX_EVENTS_PER_WINDOW:
            res.dropped.append(f"more than {MAX_EVENTS_PER_WINDOW} events in one clip; the rest ignored")
            break
    for d in res.dropped:
        log.info("dropped from model output: %s", d)
    return res
