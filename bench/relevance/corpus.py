"""The labelled corpus of the relevance benchmark: generated videos with known content.

Each video is generated here (no binary in git): spoken lines (espeak-ng), English and
Chinese subtitle lines, burned-in on-screen text, scene changes. A label names a video and
a time span; a hit counts when it is in that video and its time overlaps the span.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# video stem -> what it holds
SPEECH: dict[str, list[tuple[float, str]]] = {
    "budget_meeting": [
        (2.0, "Good morning everyone, welcome to the budget meeting."),
        (10.0, "Maria will present the marketing numbers for the third quarter."),
        (18.0, "Our travel expenses doubled because of the conference in Berlin."),
        (26.0, "We need to cut the software licence costs by twenty percent."),
        (34.0, "Let us meet again next Tuesday at ten o'clock."),
    ],
    "lighthouse": [
        (3.0, "The lighthouse keeper climbed the stairs at dawn."),
        (12.0, "A storm was coming from the north sea."),
        (21.0, "The fishing boats returned to the harbour before night."),
    ],
}
SUBTITLES: dict[str, list[tuple[float, float, str]]] = {
    "cooking": [
        (1.0, 4.0, "First, chop the onions and garlic finely."),
        (8.0, 11.0, "Heat the olive oil in a large pan."),
        (15.0, 18.0, "Add the tomatoes and let the sauce simmer for twenty minutes."),
        (22.0, 26.0, "Season with salt, pepper and fresh basil."),
    ],
    "travel_zh": [
        (1.0, 4.0, "我们明天早上在火车站见面。"),
        (8.0, 11.0, "这家餐厅的烤鸭非常有名。"),
        (15.0, 18.0, "下午我们去长城爬山。"),
        (22.0, 26.0, "晚上的飞机飞往上海。"),
    ],
    "football": [
        (2.0, 5.0, "The football match was cancelled because of heavy rain."),
        (10.0, 13.0, "Tickets will be refunded within two weeks."),
        (18.0, 21.0, "The coach said the team will train indoors."),
    ],
}
SLIDES = ["QUARTERLY REVENUE", "SAFETY FIRST", "EXIT 42", "SOLAR PANELS"]  # 8 s each, one per scene
DURATION = {"budget_meeting": 42.0, "lighthouse": 30.0, "cooking": 30.0, "travel_zh": 30.0, "football": 25.0,
            "slides": 32.0}
COLOURS = [(200, 30, 30), (30, 160, 40), (30, 50, 200), (230, 220, 40), (120, 40, 160), (200, 120, 40),
           (40, 180, 180), (90, 90, 90)]


def build(folder: Path) -> list[Path]:
    """Generate every video (and sidecar) into ``folder``; existing files are kept."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.media import make_speech_video, make_video, write_srt

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for stem, lines in SPEECH.items():
        p = folder / f"{stem}.mp4"
        if not p.exists():
            d = DURATION[stem]
            scenes = [(d / 2, COLOURS[0]), (d / 2, COLOURS[2])]
            make_speech_video(p, lines, d, scenes=scenes, fps=10)
        out.append(p)
    for n, (stem, cues) in enumerate(SUBTITLES.items()):
        p = folder / f"{stem}.mp4"
        if not p.exists():
            d = DURATION[stem]
            make_video(p, scenes=[(d / 3, COLOURS[(n + k) % len(COLOURS)]) for k in (1, 3, 5)], fps=10)
            write_srt(p.with_suffix(".srt"), cues)
        out.append(p)
    p = folder / "slides.mp4"
    if not p.exists():
        make_video(p, scenes=[(8.0, COLOURS[i % len(COLOURS)]) for i in range(len(SLIDES))], fps=10,
                   size=(640, 360), texts=dict(enumerate(SLIDES)))
    out.append(p)
    return out


def span_of(stem: str, index: int) -> tuple[float, float]:
    if stem in SPEECH:
        t = SPEECH[stem][index][0]
        return t, t + 3.5
    if stem in SUBTITLES:
        a, b, _ = SUBTITLES[stem][index]
        return a, b
    if stem == "slides":
        return 8.0 * index + 0.5, 8.0 * index + 7.5
    raise KeyError(stem)


def labels(q: dict[str, Any]) -> list[tuple[str, float, float]]:
    """[(video stem, start, end)] that answer the query ([] = no answer)."""
    return [(stem, *span_of(stem, i)) for stem, i in q.get("answers", [])]
