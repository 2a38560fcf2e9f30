"""Uploads into the watch folder: written under a temporary name the watcher ignores
(``.upload-*.part``), then renamed in one step, so the daemon never sees half a file."""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from pathlib import Path
from typing import IO

from vidx.media import VIDEO_EXTENSIONS

MAX_NAME = 180
CHUNK = 1024 * 1024


class UploadRefused(ValueError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def safe_name(raw: str) -> str:
    """A file name with no folder part, no control or reserved characters, no leading dot;
    letters of every script are kept (a Chinese title stays readable)."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r'[<>:"|?*]', "_", name).strip().lstrip(".").strip()
    stem, ext = os.path.splitext(name)
    stem = stem[: MAX_NAME - len(ext)].rstrip(" .") or "upload"
    if stem.upper() in {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}:
        stem = f"_{stem}"
    return stem + ext.lower()


def save_upload(stream: IO[bytes], filename: str, watch_dir: Path, max_bytes: int) -> Path:
    if not filename:
        raise UploadRefused("no file was sent (multipart field 'file')", 400)
    name = safe_name(filename)
    ext = os.path.splitext(name)[1].lower()
    if ext not in VIDEO_EXTENSIONS:
        raise UploadRefused(f"{ext or 'a file without extension'} is not a video type vidx takes "
                            f"({' '.join(sorted(VIDEO_EXTENSIONS))})", 415)
    watch_dir.mkdir(parents=True, exist_ok=True)
    tmp = watch_dir / f".upload-{uuid.uuid4().hex}.part"
    size = 0
    try:
        with open(tmp, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadRefused(f"the file is larger than {max_bytes // (1024 * 1024)} MB "
                                        "(VIDX_UPLOAD_MAX_MB)", 413)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise UploadRefused("the file is empty", 400)
        return _publish(tmp, watch_dir, name)
    finally:
        tmp.unlink(missing_ok=True)


def _publish(tmp: Path, watch_dir: Path, name: str) -> Path:
    """Give the finished upload its name without ever replacing a file: a hard link fails when
    the name exists, so two uploads of one name at the same moment both keep their bytes
    (``name.mp4`` and ``name (2).mp4``)."""
    stem, ext = os.path.splitext(name)
    for n in range(1, 10_000):
        dest = watch_dir / (name if n == 1 else f"{stem} ({n}){ext}")
        try:
            os.link(tmp, dest)
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: reserve the name, then move onto it
            try:
                os.close(os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            os.replace(tmp, dest)
        return dest
    raise UploadRefused(f"too many files named {name} in the watch folder", 409)
