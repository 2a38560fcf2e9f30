"""OCR's cost follows changes of the text, not of the picture (defect 19): with the real
RapidOCR, a read recognises only the text lines whose pixels changed since the last read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ingest.analyzers.ocr import OcrEngine, TextRegions


def _frame(clock: str, bullet: str, seed: int) -> np.ndarray:
    w, h = 960, 540
    im = Image.new("RGB", (w, h), (245, 245, 238))
    d = ImageDraw.Draw(im)
    d.text((60, 45), "Heat pumps in cold climates", fill=(25, 25, 30), font=ImageFont.load_default(size=40))
    d.text((80, 200), f"- {bullet}", fill=(25, 25, 30), font=ImageFont.load_default(size=28))
    d.rectangle((700, 4, 956, 44), fill=(0, 0, 0))
    d.text((708, 8), clock, fill=(255, 255, 255), font=ImageFont.load_default(size=26))
    arr = np.array(im)
    rng = np.random.default_rng(seed)  # a noisy camera window beside the text
    arr[300:480, 600:900] = (90 + rng.integers(0, 60, (180, 300, 1))).astype(np.uint8)
    return arr


def test_only_changed_text_lines_are_recognised_again() -> None:
    regions = TextRegions()
    first = OcrEngine.read(_frame("LIVE 10:00:05", "Ground loops stay near 3.2", 1), 1, regions)
    assert "10:00:05" in first and "Heat pumps" in first and "3.2" in first
    assert regions.recognised == 3 and regions.reused == 0

    # the clock ticked and the camera window moved: one line is recognised, two are kept
    second = OcrEngine.read(_frame("LIVE 10:00:06", "Ground loops stay near 3.2", 2), 1, regions)
    assert "10:00:06" in second and "Heat pumps" in second and "3.2" in second
    assert (regions.recognised, regions.reused) == (4, 2)

    # one digit of a bullet changed: that line is read again, not missed
    third = OcrEngine.read(_frame("LIVE 10:00:06", "Ground loops stay near 3.4", 3), 1, regions)
    assert "3.4" in third and "3.2" not in third
    assert (regions.recognised, regions.reused) == (5, 4)

    # without regions every line is recognised on every read: the same text
    assert OcrEngine.read(_frame("LIVE 10:00:06", "Ground loops stay near 3.4", 3), 1) == third


def test_a_thumbnail_sized_video_is_read_at_three_times_its_size_not_at_full_width(tmp_path: Path) -> None:
    """Growing a 128 px frame to 960 px made every read cost 0.3 s (finding text costs the same
    at any source size) for nothing: at 3 times its size the same text is read."""
    import av

    from ingest.analyzers.basic import ocr_size
    from tests.media import make_video

    assert ocr_size(1920, 1080) == (960, 540) and ocr_size(320, 180) == (960, 540)
    assert ocr_size(128, 72) == (384, 216)
    path = make_video(tmp_path / "small.mp4", scenes=[(2.0, (20, 30, 90))], fps=2, size=(128, 72),
                      texts={0: "EXIT 42"})
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    assert OcrEngine.read(frame.to_ndarray(format="rgb24", width=384, height=216), 1, TextRegions()) == "EXIT 42"
