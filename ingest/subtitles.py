"""Sidecar subtitles: ``<stem>.srt``, ``<stem>.vtt``, ``<stem>.<lang>.srt`` next to a video."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ingest.subtitles")

SUB_EXTENSIONS = (".srt", ".vtt")
MAX_SUB_BYTES = 20 * 1024 * 1024

_TIME = re.compile(
    r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})\s*-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
)
_TAG = re.compile(r"<[^>]{0,200}>|\{\\[^}]{0,200}\}")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    lang: str = ""


def _secs(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xff\xfe") or raw.startswith(b"\xfe\xff"):
        return raw.decode("utf-16")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def parse_subtitles(text: str, lang: str = "") -> list[Cue]:
    """Parse SRT or WebVTT text. Markup tags are removed; text is kept verbatim otherwise
    (it is escaped where it is shown)."""
    cues: list[Cue] = []
    blocks = re.split(r"\r?\n\s*\r?\n", text.replace("\r\n", "\n"))
    for block in blocks:
        lines = [ln for ln in block.split("\n")]
        for i, line in enumerate(lines):
            m = _TIME.search(line)
            if not m:
                continue
            start = _secs(*m.group(1, 2, 3, 4))
            end = _secs(*m.group(5, 6, 7, 8))
            body = " ".join(_TAG.sub("", ln).strip() for ln in lines[i + 1 :] if ln.strip())
            body = re.sub(r"\s+", " ", body).strip()
            if body and end > start:
                cues.append(Cue(start, end, body, lang))
            break
    cues.sort(key=lambda c: (c.start, c.end))
    return cues


def sidecars_for(video: Path, siblings: list[Path] | None = None) -> list[Path]:
    """Subtitle files that belong to ``video`` (same folder, same stem). ``siblings`` is the
    folder's listing when the caller already has it (a rescan lists each folder once)."""
    stem = video.stem
    out = []
    if siblings is None:
        try:
            siblings = list(video.parent.iterdir())
        except OSError:
            return []
    for p in siblings:
        if p.suffix.lower() not in SUB_EXTENSIONS or not p.is_file():
            continue
        name = p.name[: -len(p.suffix)]
        if name == stem or (name.startswith(stem + ".") and 1 < len(name) - len(stem) <= 12):
            out.append(p)
    return sorted(out)


def sidecar_signature(video: Path, siblings: list[Path] | None = None) -> str:
    """Changes when a subtitle file appears, changes or goes away (triggers re-enrichment)."""
    parts = []
    for p in sidecars_for(video, siblings):
        try:
            st = p.stat()
        except OSError:
            continue
        parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def video_for_sidecar(sub: Path, video_exts: frozenset[str]) -> Path | None:
    name = sub.name[: -len(sub.suffix)]
    candidates = [name]
    if "." in name:
        candidates.append(name.rsplit(".", 1)[0])
    for stem in candidates:
        for ext in video_exts:
            for e in (ext, ext.upper()):
                p = sub.with_name(stem + e)
                if p.is_file():
                    return p
    return None


def load_cues(video: Path) -> list[Cue]:
    cues: list[Cue] = []
    for p in sidecars_for(video):
        name = p.name[: -len(p.suffix)]
        lang = name[len(video.stem) + 1 :] if len(name) > len(video.stem) else ""
        try:
            if p.stat().st_size > MAX_SUB_BYTES:
                log.warning("subtitle file %s is larger than %d bytes; skipped", p, MAX_SUB_BYTES)
                continue
            cues.extend(parse_subtitles(_decode(p.read_bytes()), lang))
        except OSError as exc:
            log.warning("cannot read subtitles %s: %s", p, exc)
    cues.sort(key=lambda c: (c.start, c.end))
    return cues
