"""The versioned prompt. Bump PROMPT_VERSION whenever the text changes: it is stamped on
every event, so `vidx reindex` can find events made by an older prompt."""

from __future__ import annotations

import json

PROMPT_VERSION = "events-v3"  # v2: the lines spoken in the window; v3: who speaks each line

_EXAMPLE = {
    "start": 12.5,
    "end": 18.0,
    "description": "A woman in a red coat opens the front door and greets a delivery man.",
    "people": ["woman in red coat", "delivery man"],
    "location": "front door of a house",
    "action": "opening the door, handing over a parcel",
    "dialogue": "She thanks him for the parcel.",
    "objects": ["door", "parcel"],
    "ocr_text": "FRAGILE",
    "emotion": "friendly",
}

SYSTEM = "You are a precise video analyst. You answer with JSON only."


MAX_SPOKEN_CHARS = 4000


def build_prompt(start: float, end: float, known_people: list[str], previous: list[str],
                 spoken: list[tuple[float, float, str]] | None = None) -> str:
    lines = [
        f"This clip covers {start:.1f} to {end:.1f} seconds of a longer video. Each frame is preceded by its "
        "timestamp, e.g. <12.5 seconds>.",
        "Localize every distinct event in the clip: what happens, who is there, where, what they do, what is "
        "said, which objects matter and any text visible on screen.",
        "Answer with a JSON array only. One object per event, with start and end in seconds of the whole video "
        f"(between {start:.1f} and {end:.1f}), exactly these keys:",
        json.dumps(_EXAMPLE, ensure_ascii=False),
        "Use only what is visible or audible; leave a field empty (\"\" or []) when unknown. Never invent times "
        "outside the clip. Write field values in the language spoken in the video when it is not English.",
    ]
    if known_people:
        lines.append("People already named earlier in this video (reuse these names when they appear): "
                     + ", ".join(known_people[:30]) + ".")
    if previous:
        lines.append("The previous clip ended with: " + " | ".join(previous[-3:]))
    if spoken:
        said, used = [], 0
        for a, b, text in spoken:
            item = f"[{a:.1f}-{b:.1f}] {text}"
            used += len(item)
            if used > MAX_SPOKEN_CHARS:
                break
            said.append(item)
        lines.append("You cannot hear the soundtrack. These lines are spoken in this clip (seconds, text); use them "
                     "for dialogue and to tell who speaks, and keep their wording; a name (or 'Voice N') before a "
                     "line is who speaks it: put named speakers in people:\n" + "\n".join(said))
    return "\n".join(lines)


def repair_prompt(bad_output: str) -> str:
    return (
        "Your previous answer could not be read as a JSON array of events. Answer again with only the JSON "
        "array (no prose, no code fences), same keys as asked. Your previous answer was:\n"
        + bad_output[:4000]
    )
