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
        dest = watch_dir / name
        stem, ext = os.path.splitext(name)
        n = 2
        while dest.exists():  # never overwrite a video already there
            dest = watch_dir / f"{stem} ({n}){ext}"
            n += 1
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)
