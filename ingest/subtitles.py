"""Human-made subtitles: sidecars (``<stem>.srt``, ``.vtt``, ``.ass``, ``.ssa``, also
``<stem>.<lang>.srt``) next to a video, and text subtitle tracks inside the file."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidx.media import open_tolerant

log = logging.getLogger("ingest.subtitles")

SUB_EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa")
MAX_SUB_BYTES = 20 * 1024 * 1024

_TAG = re.compile(r"<[^>]{0,200}>|\{\\[^}]{0,200}\}")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    lang: str = ""


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xff\xfe") or raw.startswith(b"\xfe\xff"):
        return raw.decode("utf-16")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def parse_subtitles(text: str, lang: str = "", fmt: str | None = None) -> list[Cue]:
    """Parse SRT, WebVTT, ASS or SSA text with pysubs2 (a maintained parser). Markup and
    override tags are removed; text is kept verbatim otherwise (it is escaped where shown)."""
    import pysubs2

    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as exc:  # pysubs2 raises several types on malformed input
        log.warning("unreadable subtitles (%s)", exc)
        return []
    cues: list[Cue] = []
    for ev in subs.events:
        if ev.is_comment:
            continue
        body = clean_line(ev.plaintext)
        start, end = ev.start / 1000, ev.end / 1000
        if body and end > start:
            cues.append(Cue(start, end, body, lang))
    cues.sort(key=lambda c: (c.start, c.end))
    return cues


def clean_line(text: str) -> str:
    text = _TAG.sub("", text.replace("\\N", " ").replace("\\n", " "))
    return re.sub(r"\s+", " ", text).strip()


def _ass_text(dialogue: str) -> str:
    """The text of an ASS ``Dialogue``/event line as FFmpeg hands it out
    (``ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text``)."""
    parts = dialogue.split(",", 8)
    return clean_line(parts[8] if len(parts) == 9 else dialogue)


def embedded_cues(video: Path, max_cues: int = 20000) -> list[Cue]:
    """Text subtitle tracks inside the file (mov_text, subrip, ass/ssa, webvtt in MP4, MKV,
    MOV), read with PyAV, on the video's clock. Image subtitles (PGS, DVB) are skipped."""
    import av

    from vidx.clock import StreamClock

    tracks: dict[int, list[Cue]] = {}
    n = 0
    try:
        with open_tolerant(video) as c:
            subs = [st for st in c.streams if st.type == "subtitle"
                    and st.codec_context.name in ("mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text")]
            if not subs:
                return []
            vs = next((st for st in c.streams if st.type == "video"), None)
            offset = StreamClock.of(vs, c).start if vs is not None else 0.0
            langs = {st.index: language_code(str(st.metadata.get("language", "") or "")) for st in subs}
            for packet in c.demux(*subs):
                if packet.pts is None or packet.time_base is None:
                    continue
                start = float(packet.pts * packet.time_base) - offset
                dur = float((packet.duration or 0) * packet.time_base)
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    continue
                for subset in decoded:  # PyAV versions differ: sets of rects, or the rects themselves
                    rects = subset.rects if hasattr(subset, "rects") else [subset]
                    for rect in rects:
                        raw = getattr(rect, "ass", None) or getattr(rect, "dialogue", None) or getattr(rect, "text", b"")
                        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
                        body = _ass_text(text) if text.count(",") >= 8 else clean_line(text)
                        end = start + (dur if dur > 0 else 2.0)
                        if body and end > start >= -0.5:
                            tracks.setdefault(packet.stream.index, []).append(
                                Cue(max(0.0, start), end, body, langs.get(packet.stream.index, "")))
                            n += 1
                if n >= max_cues:
                    break
    except (av.error.FFmpegError, OSError) as exc:
        log.warning("cannot read subtitle tracks of %s: %s", video.name, exc)
        return []
    cues = [c for track in tracks.values() for c in with_language(track)]
    cues.sort(key=lambda c: (c.start, c.end))
    return cues


def dedupe(cues: list[Cue]) -> list[Cue]:
    """The same line from a sidecar and from a track inside the file is kept once."""
    seen: set[tuple[float, str]] = set()
    out = []
    for c in sorted(cues, key=lambda c: (c.start, c.end)):
        key = (round(c.start * 2) / 2, re.sub(r"\W+", "", c.text.lower()))
        near = {(key[0] + d, key[1]) for d in (-0.5, 0.0, 0.5)}
        if seen & near:
            continue
        seen.add(key)
        out.append(c)
    return out


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


ISO639_2 = {"eng": "en", "chi": "zh", "zho": "zh", "ger": "de", "deu": "de", "fre": "fr", "fra": "fr", "jpn": "ja",
            "kor": "ko", "spa": "es", "ita": "it", "rus": "ru", "por": "pt", "dut": "nl", "nld": "nl", "ara": "ar",
            "hin": "hi", "pol": "pl", "tur": "tr", "swe": "sv", "vie": "vi", "tha": "th", "ukr": "uk", "cze": "cs",
            "ces": "cs", "gre": "el", "ell": "el", "heb": "he", "ind": "id", "may": "ms", "msa": "ms"}
DETECT_MIN_CHARS = 20  # less text than this is not enough to tell a language
DETECT_MIN_PROB = 0.8
GROUP_MIN_PROB = 0.5  # for the lines of one writing system in a file of several


def language_code(tag: str) -> str:
    """A two-letter language code from a file-name part or a track tag (``zh``, ``en-US``, ``chi``,
    ``zh-Hans``), or "" when the tag is not a language (``forced``, ``sdh``)."""
    first = re.split(r"[._\-]", tag.strip().lower(), maxsplit=1)[0]
    if len(first) == 2 and first.isalpha():
        return first
    return ISO639_2.get(first, "")


_identifier: Any = None


def detect_language(texts: list[str], min_chars: int = DETECT_MIN_CHARS, min_prob: float = DETECT_MIN_PROB) -> str:
    """The language of subtitle lines that do not say theirs, with py3langid (a maintained
    identifier whose model ships in the package): a code when it is sure, else ""."""
    global _identifier
    text = " ".join(texts)[:5000]
    if len(text.strip()) < min_chars:
        return ""
    if _identifier is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    lang, prob = _identifier.classify(text)
    return str(lang) if prob >= min_prob else ""


# writing systems told apart before detection (code point ranges); every other letter is "latin"
_SCRIPTS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("han", ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))),
    ("kana", ((0x3040, 0x30FF), (0x31F0, 0x31FF))),
    ("hangul", ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))),
    ("cyrillic", ((0x0400, 0x052F),)),
    ("greek", ((0x0370, 0x03FF),)),
    ("arabic", ((0x0600, 0x06FF), (0x0750, 0x077F))),
    ("hebrew", ((0x0590, 0x05FF),)),
    ("devanagari", ((0x0900, 0x097F),)),
    ("thai", ((0x0E00, 0x0E7F),)),
)
_CJK = ("han", "kana", "hangul")


def script_of(text: str) -> str:
    """The writing system of most of a line's letters: "kana" (Japanese: kana among the Han
    characters), "hangul", "han", "cyrillic", ..., or "latin" for Latin letters or none. A CJK
    character counts as a word's worth (two letters)."""
    counts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        cp = ord(ch)
        name = next((n for n, ranges in _SCRIPTS if any(a <= cp <= b for a, b in ranges)), "latin")
        counts[name] = counts.get(name, 0) + (2 if name in _CJK else 1)
    if not counts:
        return "latin"
    cjk = sum(counts.get(k, 0) for k in _CJK)
    best = max(counts, key=lambda k: counts[k])
    if cjk >= counts[best]:
        return "kana" if counts.get("kana") else "hangul" if counts.get("hangul") else "han"
    return best


def with_language(cues: list[Cue]) -> list[Cue]:
    """Every line of one file or track gets its language: the one it states, else the one detected
    on the file's lines of the same writing system (a bilingual file: its Chinese lines zh, its
    English lines en), else the one detected on all its lines."""
    if not cues or all(c.lang for c in cues):
        return cues
    scripts = [script_of(c.text) if not c.lang else "" for c in cues]
    groups: dict[str, list[str]] = {}
    for c, script in zip(cues, scripts):
        if script:
            groups.setdefault(script, []).append(c.text)
    whole = detect_language([t for texts in groups.values() for t in texts])
    # one writing system among others narrows the choice: a weaker lead is enough, and a CJK
    # character carries about a word
    found = {k: (detect_language(v, 8 if k in _CJK else DETECT_MIN_CHARS, GROUP_MIN_PROB) if len(groups) > 1
                 else whole) or whole for k, v in groups.items()}
    return [c if c.lang else Cue(c.start, c.end, c.text, found[script]) for c, script in zip(cues, scripts)]


def load_cues(video: Path, duration: float | None = None, warnings: list[str] | None = None) -> list[Cue]:
    """Every human-made subtitle line for ``video``: sidecars and tracks inside the file,
    each line once, inside the video's ``duration`` (see :func:`fit_to_video`)."""
    cues = dedupe(sidecar_cues(video) + embedded_cues(video))
    if duration is None:
        return cues
    cues, note = fit_to_video(cues, duration)
    if note:
        log.warning("%s: %s", video.name, note)
        if warnings is not None:
            warnings.append(note)
    return cues


def fit_to_video(cues: list[Cue], duration: float) -> tuple[list[Cue], str | None]:
    """Lines with impossible times are clamped to the video (a line starting before 0, or ending
    after the end) or dropped (nothing left of it inside the video): one bad line never fails a
    whole video. Returns the lines and one sentence about what was changed, if anything."""
    out: list[Cue] = []
    clamped = dropped = 0
    for c in cues:
        start, end = max(0.0, c.start), min(c.end, duration) if duration > 0 else c.end
        if end - start <= 0.0 or start >= duration > 0:
            dropped += 1
            continue
        if (start, end) != (c.start, c.end):
            clamped += 1
        out.append(Cue(start, end, c.text, c.lang))
    if not (clamped or dropped):
        return out, None
    parts = [f"{n} {what}" for n, what in ((clamped, "clamped to the video"), (dropped, "dropped")) if n]
    return out, f"subtitle lines with times outside the video ({duration:.1f}s): {' and '.join(parts)}"


def sidecar_cues(video: Path) -> list[Cue]:
    cues: list[Cue] = []
    for p in sidecars_for(video):
        name = p.name[: -len(p.suffix)]
        lang = language_code(name[len(video.stem) + 1 :]) if len(name) > len(video.stem) else ""
        try:
            if p.stat().st_size > MAX_SUB_BYTES:
                log.warning("subtitle file %s is larger than %d bytes; skipped", p, MAX_SUB_BYTES)
                continue
            fmt = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa"}.get(p.suffix.lower())
            cues.extend(with_language(parse_subtitles(_decode(p.read_bytes()), lang, fmt)))
        except OSError as exc:
            log.warning("cannot read subtitles %s: %s", p, exc)
    cues.sort(key=lambda c: (c.start, c.end))
    return cues
