"""Merge events from overlapping windows: same span and same content -> one event."""

from __future__ import annotations

from typing import Any

from vidx.store.base import tokens

IOU_MIN = 0.3
TEXT_MIN = 0.3


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return 1.0 if a == b else 0.0
    return inter / union


def _words(e: dict[str, Any]) -> set[str]:
    return set(tokens(" ".join([e.get("description", ""), e.get("action", "")])))


def similar(a: dict[str, Any], b: dict[str, Any]) -> bool:
    wa, wb = _words(a), _words(b)
    if wa and wb and len(wa & wb) / len(wa | wb) >= TEXT_MIN:
        return True
    pa, pb = {p.lower() for p in a.get("people", [])}, {p.lower() for p in b.get("people", [])}
    oa, ob = {o.lower() for o in a.get("objects", [])}, {o.lower() for o in b.get("objects", [])}
    return bool(pa & pb) and bool(oa & ob or a.get("action") and a.get("action") == b.get("action"))


def merge_windows(windows: list[tuple[float, float, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """``windows``: (start, end, events) with absolute times. Events seen in two
    overlapping windows become one with the union span; its text comes from the window
    where it sat farther from the edge (the model saw more context there)."""
    tagged = []
    for ws, we, events in windows:
        for e in events:
            margin = min(e["start_sec"] - ws, we - e["end_sec"])
            tagged.append((e, margin))
    tagged.sort(key=lambda t: (t[0]["start_sec"], t[0]["end_sec"]))
    out: list[tuple[dict[str, Any], float]] = []
    for e, margin in tagged:
        for i, (kept, kept_margin) in enumerate(out):
            span_k, span_e = (kept["start_sec"], kept["end_sec"]), (e["start_sec"], e["end_sec"])
            if iou(span_k, span_e) >= IOU_MIN and similar(kept, e):
                base = dict(e if margin > kept_margin else kept)
                base["start_sec"] = min(span_k[0], span_e[0])
                base["end_sec"] = max(span_k[1], span_e[1])
                for f in ("people", "objects"):
                    base[f] = list(dict.fromkeys([*kept.get(f, []), *e.get(f, [])]))
                out[i] = (base, max(margin, kept_margin))
                break
        else:
            out.append((dict(e), margin))
    return sorted((e for e, _ in out), key=lambda e: (e["start_sec"], e["end_sec"]))
