"""A speaker encoder: 256-d voice embeddings from 16 kHz speech.

The network and its weights are Resemblyzer's GE2E encoder (``resemblyzer/pretrained.pt``,
Apache-2.0, installed with the ``Resemblyzer`` package). vidx does not import that package
(it imports ``webrtcvad`` -> ``pkg_resources`` and librosa): it reads the weights file into
the same three-layer LSTM and computes the same mel spectrogram with NumPy (librosa's Slaney
filterbank: 25 ms windows, 10 ms hop, 40 bands, power 2, not log; checked against librosa).

An utterance is cut into 1.6 s windows (1.3 per second); its embedding is the normalised
mean of the windows' embeddings, as Resemblyzer's ``embed_utterance`` does.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("ingest.people.voice")

RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s windows
WINDOWS_PER_S = 1.3
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0
DIMS = 256
INSTALL_HINT = "pip install --no-deps Resemblyzer==0.1.4 (its weights file; vidx does not import the package)"


class VoiceModelError(RuntimeError):
    """The speaker encoder's weights are not installed or cannot be read."""


class SpeakerEncoder(Protocol):
    model_id: str

    def embed_many(self, utterances: list[np.ndarray]) -> np.ndarray:
        """One L2-normalised row per utterance (16 kHz float32 samples)."""
        ...


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """(40, 201): Slaney mel bands with Slaney area normalisation, 0 to 8 kHz."""
    fft_freqs = np.linspace(0, RATE / 2, 1 + N_FFT // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(RATE / 2)), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((N_MELS, len(fft_freqs)))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS])
    return (weights * enorm[:, None]).astype(np.float32)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram of 16 kHz samples (centred frames, zero padding)."""
    wav = np.asarray(wav, dtype=np.float32)
    pad = N_FFT // 2
    y = np.pad(wav, (pad, pad))
    n_frames = 1 + (len(y) - N_FFT) // HOP
    if n_frames <= 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    spec = np.abs(np.fft.rfft(y[idx] * window, axis=1)) ** 2
    return (spec.astype(np.float32) @ mel_filters().T).astype(np.float32)


def normalise_volume(wav: np.ndarray) -> np.ndarray:
    """Raise quiet audio to -30 dBFS (never lowers it), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(wav.astype(np.float64))))) if len(wav) else 0.0
    if rms <= 1e-9:
        return wav
    change = TARGET_DBFS - 20 * np.log10(rms)
    return wav if change < 0 else (wav * (10 ** (change / 20))).astype(np.float32)


def partial_slices(n_samples: int) -> list[slice]:
    """The mel-frame ranges of the 1.6 s windows that cover an utterance."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((RATE / WINDOWS_PER_S) / HOP))
    out = [slice(i, i + PARTIAL_FRAMES) for i in range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)]
    last = out[-1]
    coverage = (n_samples - last.start * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(out) > 1:
        out = out[:-1]
    return out


def weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise VoiceModelError(f"the speaker model is not installed ({INSTALL_HINT})")
    p = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not p.is_file():
        raise VoiceModelError(f"the speaker model's weights are missing: {p} ({INSTALL_HINT})")
    return p


class VoiceEncoder:
    """Resemblyzer's GE2E network on CPU; thread-safe (one forward pass at a time)."""

    model_id = "resemblyzer-ge2e/0.1.4"

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        import torch
        from torch import nn

        self._torch = torch
        path = path or weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        except Exception as exc:  # a damaged file: say which
            raise VoiceModelError(f"cannot read the speaker model {path}: {exc}") from exc

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
                self.linear = nn.Linear(256, DIMS)
                self.relu = nn.ReLU()

            def forward(self, mels: Any) -> Any:
                _, (hidden, _) = self.lstm(mels)
                raw = self.relu(self.linear(hidden[-1]))
                return raw / torch.clamp(torch.norm(raw, dim=1, keepdim=True), min=1e-9)

        net = Net()
        missing = net.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")},
                                      strict=True)
        del missing
        self.net = net.eval()
        self.threads = threads
        self._lock = threading.Lock()

    def _windows(self, wav: np.ndarray) -> np.ndarray:
        wav = normalise_volume(np.asarray(wav, dtype=np.float32))
        slices = partial_slices(len(wav))
        need = slices[-1].stop * HOP
        if need > len(wav):
            wav = np.pad(wav, (0, need - len(wav)))
        mel = mel_spectrogram(wav)
        return np.stack([mel[s] for s in slices])

    def embed_many(self, utterances: list[np.ndarray]) -> np.ndarray:
        if not utterances:
            return np.zeros((0, DIMS), dtype=np.float32)
        torch = self._torch
        wins = [self._windows(u) for u in utterances]
        counts = [len(w) for w in wins]
        batch = torch.from_numpy(np.concatenate(wins))
        with self._lock:
            old = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    parts = self.net(batch).numpy()
            finally:
                torch.set_num_threads(old)
        out = np.zeros((len(utterances), DIMS), dtype=np.float32)
        at = 0
        for i, c in enumerate(counts):
            m = parts[at : at + c].mean(axis=0)
            out[i] = m / max(float(np.linalg.norm(m)), 1e-9)
            at += c
        return out

    def embed(self, wav: np.ndarray) -> np.ndarray:
        return self.embed_many([wav])[0]


_cached: VoiceEncoder | None = None
_cached_lock = threading.Lock()


def load_encoder() -> VoiceEncoder:
    """One encoder per process (1-2 s to load)."""
    global _cached
    with _cached_lock:
        if _cached is None:
            _cached = VoiceEncoder()
            log.info("speaker model: %s", _cached.model_id)
        return _cached
