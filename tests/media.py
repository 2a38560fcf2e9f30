"""Synthesise test videos with PyAV (no binary fixtures in git)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

# (seconds, RGB) of each scene
DEFAULT_SCENES: list[tuple[float, tuple[int, int, int]]] = [
    (8.0, (200, 30, 30)),
    (8.0, (30, 160, 40)),
    (8.0, (30, 50, 200)),
    (8.0, (230, 220, 40)),
]


def make_video(
    path: Path,
    scenes: Sequence[tuple[float, tuple[int, int, int]]] = DEFAULT_SCENES,
    fps: int = 10,
    size: tuple[int, int] = (320, 180),
    codec: str = "libx264",
    texts: dict[int, str] | None = None,
    container: str | None = None,
    audio: str | None = None,
    options: dict[str, str] | None = None,
    start_offset: float = 0.0,
) -> Path:
    """Solid-colour scenes with a moving square (so frames differ within a scene).
    ``texts`` draws large white text on the scene with that index. ``container`` overrides
    the format (e.g. "avi", "mpegts"); ``audio`` adds a 440 Hz tone with that codec
    (e.g. "aac", "mp3", "pcm_s16le"); ``options`` are muxer options (e.g. movflags);
    ``start_offset`` makes the streams start at that time (as MPEG-TS recordings do)."""
    import av
    from PIL import Image, ImageDraw, ImageFont

    w, h = size
    container_fmt = container or {"libx264": "mp4", "mpeg4": "mp4", "libvpx-vp9": "webm",
                                  "mpeg2video": "mpeg"}.get(codec, None)
    with av.open(str(path), "w", format=container_fmt, options=options or {}) as out:
        st = out.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            st.options = {"preset": "ultrafast", "g": str(fps)}
        ast = None
        if audio:
            ast = out.add_stream(audio, rate=16000)
            ast.layout = "mono"
        total = sum(d for d, _ in scenes)
        n = 0
        for si, (dur, rgb) in enumerate(scenes):
            base = Image.new("RGB", (w, h), rgb)
            if texts and si in texts:
                font = ImageFont.load_default(size=max(16, h // 6))
                ImageDraw.Draw(base).text((w // 12, h // 3), texts[si], fill=(255, 255, 255), font=font)
            arr0 = np.array(base)
            for _ in range(int(round(dur * fps))):
                arr = arr0.copy()
                x = (n * 3) % (w - 16)
                arr[h - 20 : h - 4, x : x + 16] = 255 - np.array(rgb, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                frame.pts = n + int(round(start_offset * fps))
                frame.time_base = Fraction(1, fps)
                for pkt in st.encode(frame):
                    out.mux(pkt)
                n += 1
        for pkt in st.encode():
            out.mux(pkt)
        if ast is not None:
            fmt = ast.codec_context.format.name if ast.codec_context.format else "s16"
            rate, chunk = 16000, 1024
            t = np.arange(int(total * rate)) / rate
            wave = 0.3 * np.sin(2 * np.pi * 440 * t)
            for i in range(0, len(wave), chunk):
                part = wave[i : i + chunk]
                if fmt.startswith("s16"):
                    arr = (part * 32767).astype(np.int16)[None, :]
                elif fmt.startswith("s32"):
                    arr = (part * 2147483647).astype(np.int32)[None, :]
                else:
                    arr = part.astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
                af.sample_rate = rate
                af.pts = i + int(round(start_offset * rate))
                af.time_base = Fraction(1, rate)
                for pkt in ast.encode(af):
                    out.mux(pkt)
            for pkt in ast.encode():
                out.mux(pkt)
    return path


def srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def write_srt(path: Path, cues: Sequence[tuple[float, float, str]]) -> Path:
    blocks = [f"{i}\n{srt_time(a)} --> {srt_time(b)}\n{text}\n" for i, (a, b, text) in enumerate(cues, 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


TALK_CUES = [
    (1.0, 4.0, "Welcome aboard, everyone, and thank you for coming."),
    (9.0, 12.5, "The quarterly budget numbers look strong this year."),
    (17.0, 20.0, "我们明天早上在火车站见面。"),
    (26.0, 29.0, "The lighthouse keeper climbed the stairs at dawn."),
]


def espeak_available() -> bool:
    import shutil

    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", rate: int = 150) -> tuple[np.ndarray, int]:
    """Synthetic speech from Debian's espeak-ng: (int16 samples, sample rate)."""
    import subprocess
    import tempfile
    import wave

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", f.name, text], check=True,
                       capture_output=True)
        with wave.open(f.name) as w:
            rate_hz = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return data, rate_hz


SPEECH_RATE = 16000


def speech_onset(text: str, voice: str = "en-us") -> float:
    """Seconds of silence espeak-ng puts before ``text``: a line placed at t is heard from t + this."""
    data, hz = speak(text, voice)
    loud = np.flatnonzero(np.abs(data.astype(np.float32)) > 0.02 * 32768)
    return float(loud[0]) / hz if len(loud) else 0.0


def back_to_back(start: float, sentences: Sequence[str], gap: float = 0.25) -> list[tuple[float, str]]:
    """``(second, text)`` for sentences spoken one after another with ``gap`` seconds between."""
    out, t = [], start
    for text in sentences:
        out.append((t, text))
        data, hz = speak(text)
        t += len(data) / hz + gap
    return out


def meeting_lines() -> list[tuple[float, str]]:
    """A 90 s meeting: single lines with pauses, and runs of sentences spoken back to back
    (which a recogniser returns as one segment), at known seconds."""
    return [(2.0, "Good morning everyone, thanks for joining the planning call."),
            *back_to_back(9.0, ["First item is the warehouse move.", "We signed the lease on Tuesday.",
                                "The trucks arrive at seven in the morning.", "Nobody parks in the loading bay."]),
            (31.0, "Second item is hiring for the support team."),
            *back_to_back(45.0, ["Maria will interview three candidates next week.", "Any questions so far?",
                                 "Good, then let us move on to the budget."]),
            (62.0, "The budget for the spring campaign is still open."),
            (76.0, "Please send your numbers to finance by Friday."),
            (84.0, "Thanks, talk to you tomorrow.")]


def speech_track(lines: Sequence[tuple[Any, ...]], duration: float, rate: int = SPEECH_RATE) -> np.ndarray:
    """A mono float track of ``duration`` seconds that says each ``(second, text)`` or
    ``(second, text, espeak-ng voice)``."""
    track = np.zeros(int(duration * rate), dtype=np.float32)
    for t, text, *voice in lines:
        data, hz = speak(text, voice=voice[0] if voice else "en-us")
        x = data.astype(np.float32) / 32768.0
        if hz != rate:  # espeak-ng speaks at 22050 Hz: resample linearly
            x = np.interp(np.arange(0, len(x) * rate / hz) * hz / rate, np.arange(len(x)), x).astype(np.float32)
        a = int(t * rate)
        track[a : a + len(x)] = x[: max(0, len(track) - a)]
    return track


def mux_track(out: Any, ast: Any, track: np.ndarray, rate: int = SPEECH_RATE) -> None:
    """Encode a mono float track into the audio stream ``ast`` of ``out``."""
    import av

    fmt = ast.codec_context.format.name if ast.codec_context.format else "fltp"
    for i in range(0, len(track), 1024):
        part = track[i : i + 1024]
        arr = (part * 32767).astype(np.int16)[None, :] if fmt.startswith("s16") else part[None, :]
        af = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, i, Fraction(1, rate)
        for pkt in ast.encode(af):
            out.mux(pkt)
    for pkt in ast.encode():
        out.mux(pkt)


def make_speech_video(path: Path, lines: Sequence[tuple[Any, ...]], duration: float,
                      scenes: Sequence[tuple[float, tuple[int, int, int]]] | None = None, fps: int = 10,
                      size: tuple[int, int] = (320, 180), container: str | None = None,
                      audio_codec: str = "aac") -> Path:
    """A video whose soundtrack says each ``(second, text)`` at that second (espeak-ng)."""
    import av

    rate = SPEECH_RATE
    track = speech_track(lines, duration, rate)
    scenes = scenes or [(duration, (60, 60, 70))]
    w, h = size
    with av.open(str(path), "w", format=container) as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"preset": "ultrafast", "g": str(fps)}
        ast = out.add_stream(audio_codec, rate=rate)
        ast.layout = "mono"
        n = 0
        for dur, rgb in scenes:
            arr0 = np.full((h, w, 3), rgb, dtype=np.uint8)
            for _ in range(int(round(dur * fps))):
                arr = arr0.copy()
                x0 = (n * 3) % (w - 16)
                arr[h - 20 : h - 4, x0 : x0 + 16] = 255
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                frame.pts, frame.time_base = n, Fraction(1, fps)
                for pkt in st.encode(frame):
                    out.mux(pkt)
                n += 1
        for pkt in st.encode():
            out.mux(pkt)
        mux_track(out, ast, track, rate)
    return path


LECTURE_SLIDES = [
    ("Heat pumps in cold climates", ["Efficiency falls below minus fifteen degrees", "Ground loops stay near 3.2"]),
    ("Wind turbine maintenance", ["Blades are inspected by drone", "Winter icing costs output"]),
    ("Grid storage options", ["Pumped hydro holds most capacity", "Batteries answer in milliseconds"]),
    ("Solar panel recycling", ["Glass and aluminium are recovered", "Silver is the valuable part"]),
    ("District heating networks", ["Waste heat from data centres", "Pipes lose two percent per kilometre"]),
    ("Exam preparation", ["Read chapter four", "Questions by email on Friday"]),
]


def make_lecture(path: Path, seconds: float, slide_seconds: float = 20.0, fps: int = 25,
                 size: tuple[int, int] = (1280, 720), preset: str = "veryfast",
                 lines: Sequence[tuple[float, str]] = (), busy: bool = False) -> list[tuple[float, str]]:
    """A recorded lecture: text slides (most on the same pale background, so a slide change is
    not a colour change), a speaker picture-in-picture that moves, x264 with B-frames as
    encoders make them by default (``preset``). ``lines`` adds speech. ``busy``: something
    moves in every frame, as in a screen recording of a live event: a burned-in clock that
    ticks every second, a ball that crosses the picture, and a noisy camera window beside the
    slide's text. Returns (start, title)."""
    import av
    from PIL import Image, ImageDraw, ImageFont

    w, h = size
    rate = SPEECH_RATE
    track = speech_track(lines, seconds, rate) if lines else np.zeros(0, np.float32)
    big = ImageFont.load_default(size=max(14, h // 13))
    small = ImageFont.load_default(size=max(10, h // 20))
    shown: list[tuple[float, str]] = []
    slides: list[np.ndarray] = []
    for i in range(max(1, int(np.ceil(seconds / slide_seconds)))):
        title, bullets = LECTURE_SLIDES[i % len(LECTURE_SLIDES)]
        bg = (40, 60, 110) if i % 4 == 3 else (245, 245, 238)  # every fourth slide is a dark section title
        ink = (250, 250, 250) if i % 4 == 3 else (25, 25, 30)
        im = Image.new("RGB", (w, h), bg)
        d = ImageDraw.Draw(im)
        d.text((w // 16, h // 12), f"{i + 1}. {title}", fill=ink, font=big)
        for j, b in enumerate(bullets):
            d.text((w // 12, h // 3 + j * h // 8), f"- {b}", fill=ink, font=small)
        slides.append(np.array(im))
        shown.append((i * slide_seconds, title))
    pw, ph = w // 6 // 2 * 2, h // 5 // 2 * 2
    clock_font = ImageFont.load_default(size=max(10, h // 24))
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"preset": preset}
        ast = out.add_stream("aac", rate=rate) if lines else None
        if ast is not None:
            ast.layout = "mono"
        for n in range(int(round(seconds * fps))):
            t = n / fps
            arr = slides[min(len(slides) - 1, int(t // slide_seconds))].copy()
            # the speaker: a box in the corner that sways, with a face-like blob that nods
            x0 = w - pw - 20 + int(8 * np.sin(t * 1.3))
            y0 = h - ph - 20
            arr[y0: y0 + ph, x0: x0 + pw] = (90, 70, 60)
            cy = y0 + ph // 3 + int(4 * np.sin(t * 3.1))
            arr[cy: cy + ph // 3, x0 + pw // 3: x0 + 2 * pw // 3] = (220, 180, 150)
            if busy:
                _busy_layer(arr, t, n, clock_font)
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
        if ast is not None:
            mux_track(out, ast, track, rate)
    return shown


def _busy_layer(arr: np.ndarray, t: float, n: int, font: Any) -> None:
    """Draw what moves in every frame of a busy film (see ``make_lecture``) onto ``arr``."""
    from PIL import Image, ImageDraw

    h, w = arr.shape[:2]
    # a burned-in clock, top right: new text every second
    sec = int(t)
    label = f"LIVE {10 + sec // 3600:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d}"
    cw, ch = w // 4, h // 14
    box = Image.new("RGB", (cw, ch), (0, 0, 0))
    ImageDraw.Draw(box).text((6, 2), label, fill=(255, 255, 255), font=font)
    arr[4: 4 + ch, w - cw - 4: w - 4] = np.array(box)
    # a ball crossing the lower band of the picture
    r = max(6, h // 30)
    bx = int((t * w / 7) % (w - 2 * r)) + r
    by = int(h * 0.8 + h * 0.05 * np.sin(t * 2.0))
    arr[by - r: by + r, bx - r: bx + r] = (200, 40, 40)
    # a noisy camera window on the left, beside the slide's text
    rng = np.random.default_rng(n)
    nh, nw = h // 3, w // 4
    y0, x0 = h // 2 - 20, w // 2 + 40
    arr[y0: y0 + nh, x0: x0 + nw] = (90 + rng.integers(0, 50, (nh, nw, 1))).astype(np.uint8)


def face_photo(name: str) -> Any:
    """A real face photo that ships inside an installed package, as a PIL image: ``hopper``
    (matplotlib's sample data) or ``astronaut`` (scikit-image's data, public domain). None
    when the package is missing."""
    import importlib.util

    from PIL import Image

    if name == "hopper":
        spec = importlib.util.find_spec("matplotlib")
        rel = "mpl-data/sample_data/grace_hopper.jpg"
    else:
        spec = importlib.util.find_spec("skimage")
        rel = "data/astronaut.png"
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        return None
    img = Image.open(path).convert("RGB")
    if name == "astronaut":  # the photo's upper part: her face, not the mission patch
        img = img.crop((100, 0, 412, 320))
    return img


def face_frame(photo: Any, scale: float, pos: tuple[float, float], brightness: float,
               size: tuple[int, int] = (1280, 720), bg: tuple[int, int, int] = (40, 60, 90)) -> np.ndarray:
    """A frame with ``photo`` at ``scale`` of the frame's height, placed at ``pos`` (0-1 each way)."""
    from PIL import Image, ImageEnhance

    w, h = size
    frame = Image.new("RGB", size, bg)
    if photo is not None:
        ph = int(h * scale)
        pw = int(photo.width * ph / photo.height)
        im = ImageEnhance.Brightness(photo.resize((pw, ph))).enhance(brightness)
        frame.paste(im, (int((w - pw) * pos[0]), int((h - ph) * pos[1])))
    return np.asarray(frame)


def make_face_video(path: Path, scenes: Sequence[tuple[float, str | None, float, tuple[float, float], float]],
                    fps: int = 10, size: tuple[int, int] = (1280, 720)) -> Path:
    """Scenes ``(seconds, photo name or None, scale, position, brightness)``, each a still picture
    on its own background colour (a hard cut between scenes)."""
    import av

    colours = [(40, 60, 90), (90, 50, 40), (40, 90, 50), (80, 80, 30), (30, 30, 30)]
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
        st.options = {"preset": "ultrafast", "g": str(fps)}
        n = 0
        for k, (secs, name, scale, pos, bright) in enumerate(scenes):
            arr = face_frame(face_photo(name) if name else None, scale, pos, bright, size, colours[k % len(colours)])
            for _ in range(int(round(secs * fps))):
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                frame.pts, frame.time_base = n, Fraction(1, fps)
                for pkt in st.encode(frame):
                    out.mux(pkt)
                n += 1
        for pkt in st.encode():
            out.mux(pkt)
    return path
