"""The VLM analyzer: windows -> frames with exact time -> provider -> parser -> merger.

Each window's parsed result (or its raw output when it failed) is checkpointed in the
ledger, so a crash resumes at the next unanalysed window and never redoes VLM work.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

import numpy as np

from ingest.analyzers.base import Analysis, ProgressFn, VideoJob
from ingest.sampling import fit_size, iter_samples
from ingest.speech.events import speaker_turns, speech_events, spoken_between
from ingest.speech.recognizer import Transcript
from ingest.speech.service import SpeechService
from ingest.subtitles import Cue, load_cues
from ingest.vlm.base import Clip, VlmOutOfMemory, VlmProvider
from ingest.vlm.merge import merge_windows
from ingest.vlm.parse import parse_events
from ingest.vlm.prompts import PROMPT_VERSION, SYSTEM, build_prompt, repair_prompt
from ingest.vlm.windows import Window, keyframe_cuts, plan_windows
from vidx.config import Settings
from vidx.ledger import WindowRow
from vidx.media import jpeg_bytes
from vidx.schema import Event, event_id_for, format_ts

log = logging.getLogger("ingest.vlm.analyzer")


OOM_SCALES = (1.0, 0.5, 0.25)  # fractions of the frame rate tried when a window does not fit


def _spoken_lines(cues: list[Cue], transcript: Transcript | None,
                  names: dict[int, str] | None = None) -> list[tuple[float, float, str]]:
    """The lines the model reads beside the frames. With speakers known, each recognised line
    says who speaks: a known person's name, else "Voice N" (so the model can tell turns apart)."""
    lines = [(c.start, c.end, c.text) for c in cues]
    if transcript is not None:
        who = transcript.speakers.line_speaker if transcript.speakers is not None else [None] * len(transcript.lines)
        for x, label in zip(transcript.lines, who):
            if label is None or names is None:
                lines.append((x.start, x.end, x.text))
            else:
                lines.append((x.start, x.end, f"{names.get(label) or f'Voice {label + 1}'}: {x.text}"))
    return sorted(lines)


def _nearest_frames(frames: dict[float, bytes], times: list[float]) -> dict[float, bytes]:
    if not frames or not times:
        return {}
    ts = np.array(sorted(frames))
    keep = {float(ts[int(np.argmin(np.abs(ts - t)))]) for t in times}
    return {t: frames[t] for t in keep}


class VlmAnalyzer:
    def __init__(self, settings: Settings, provider: VlmProvider, speech: SpeechService | None = None) -> None:
        self.settings = settings
        self.provider = provider
        self.speech = speech or SpeechService(settings)
        self.name = provider.name
        self.version = f"{provider.name}/{PROMPT_VERSION}"

    @property
    def checkpoint_key(self) -> str:
        """Every setting that changes a window's span or its frames is part of the key, so a
        cached answer is reused only for exactly the same question."""
        s = self.settings
        return (f"{self.version}|{self.provider.model_id}|w{s.window_seconds:g}o{s.window_overlap:g}"
                f"|fps{s.vlm_fps:g}|px{s.vlm_max_pixels}|n{s.vlm_max_frames}")

    def clip(self, job: VideoJob, w: Window, scale: float = 1.0) -> tuple[Clip, dict[float, bytes]]:
        """The window's frames at VIDX_VLM_FPS (times ``scale``), within the frame budget."""
        s = self.settings
        fps = min(s.vlm_fps, s.vlm_max_frames / max(w.end - w.start, 1e-3)) * scale
        frames, ts, idx, thumbs = [], [], [], {}
        size = None
        for sample in iter_samples(job.path, fps, start=w.start, end=w.end):
            if size is None:
                size = fit_size(sample.frame.width, sample.frame.height, s.vlm_max_pixels, multiple=32)
            rgb = sample.rgb(*size)
            frames.append(rgb)
            ts.append(sample.t)
            idx.append(sample.index)
            thumbs[sample.t] = jpeg_bytes(rgb)
            if len(frames) >= s.vlm_max_frames:
                break
        if not frames:
            raise RuntimeError(f"no frames decoded between {w.start:.1f}s and {w.end:.1f}s")
        total = job.info.frames or int(round(job.info.duration_sec * job.info.fps))
        return Clip(np.stack(frames), ts, idx, job.info.fps, max(total, idx[-1] + 1), w.start, w.end), thumbs

    def analyze(self, job: VideoJob, progress: ProgressFn) -> Analysis:
        s = self.settings
        duration = job.info.duration_sec
        cue_notes: list[str] = []
        cues = load_cues(job.path, duration, cue_notes)
        speech = self.speech.start(job.path, cues, should_stop=job.ended.is_set)
        cuts = keyframe_cuts(job.path) if duration > s.window_seconds else []
        # the model sees frames only: the lines spoken in each window go into its prompt
        transcript = speech.wait(lambda f, msg: progress(0.0, msg))
        names = None
        if transcript is not None and transcript.speakers is not None and job.speaker_names is not None:
            try:
                names = job.speaker_names(transcript.speakers)
            except Exception as exc:  # noqa: BLE001 (the prompt goes without names)
                log.warning("speaker names are not in the prompt: %s", exc)
        spoken = _spoken_lines(cues, transcript, names)
        windows = plan_windows(duration, s.window_seconds, s.window_overlap, cuts)
        done = job.checkpoint.load(self.checkpoint_key) if job.checkpoint else {}
        thumbs: dict[float, bytes] = {}
        rows = self._run_windows(job, windows, done, spoken, thumbs, progress)
        results: list[tuple[float, float, list[dict[str, Any]]]] = []
        warnings: list[str] = list(cue_notes)
        for w in windows:
            row = rows[w.idx]
            if row.status == "failed":
                warnings.append(f"window {w.idx} ({format_ts(w.start)}-{format_ts(w.end)}): model output could "
                                "not be parsed (raw output kept in the ledger)")
            results.append((w.start, w.end, row.result))
        merged = merge_windows(results)
        analysis = self._events(job, merged, thumbs, warnings, cues, transcript)
        if speech.note:
            analysis.notes.append(speech.note)
        return analysis

    @property
    def concurrency(self) -> int:
        """Windows in flight: what the provider can take at once (a server's batching, the
        local provider's batch), else one."""
        return max(1, int(getattr(self.provider, "in_flight", 1)))

    def _run_windows(self, job: VideoJob, windows: list[Window], done: dict[int, WindowRow],
                     spoken: list[tuple[float, float, str]], thumbs: dict[float, bytes],
                     progress: ProgressFn) -> dict[int, WindowRow]:
        """Every window's row, asking up to ``concurrency`` windows at once.

        A window's prompt carries what the windows before it found (people, last
        descriptions). With C windows in flight, window n is asked once windows up to n-C are
        answered, and its prompt carries what those found: the same prompt on every run (so a
        checkpoint matches) and, with C=1, the full chain. Answers arrive in any order; each is
        checkpointed as it arrives, by its window index. One window at a time (the local
        provider), the next window's frames are decoded while the model works."""
        c = self.concurrency
        rows: dict[int, WindowRow] = {}
        arrived: queue.Queue[tuple[int, Any]] = queue.Queue()
        clips: dict[int, Future[tuple[Clip, dict[float, bytes]]]] = {}
        known_people: list[str] = []
        previous: list[str] = []
        folded = inflight = fresh = finished = 0
        t0 = time.monotonic()

        failure: list[BaseException] = []
        if hasattr(self.provider, "on_wait"):
            setattr(self.provider, "on_wait", lambda msg: progress(finished / len(windows), msg))  # noqa: B010

        def take() -> None:
            """The next answer to arrive. After a window failed, the others in flight are
            still collected (and checkpointed) before its error is raised: none is lost."""
            nonlocal inflight, fresh, finished
            n, out = arrived.get()
            inflight -= 1
            if isinstance(out, BaseException):
                failure.append(out)
                while inflight:
                    take()
                raise failure[0]
            row, th = out
            if job.checkpoint:
                job.checkpoint.save(self.checkpoint_key, row)
            thumbs.update(th)
            rows[windows[n].idx] = row
            fresh += 1
            finished += 1
            eta = (time.monotonic() - t0) / fresh * (len(windows) - finished)
            progress(finished / len(windows), f"window {finished}/{len(windows)}"
                     f"{f' ({inflight} in flight)' if inflight else ''}, ETA {format_ts(eta)}")

        def fold(upto: int) -> None:
            nonlocal folded, previous
            while folded < upto:
                row = rows[windows[folded].idx]
                for e in row.result:
                    for person in e.get("people", []):
                        if person not in known_people:
                            known_people.append(person)
                previous = [e["description"] for e in row.result if e.get("description")][-3:]
                folded += 1

        def prefetch(n: int) -> None:
            if c == 1 and n < len(windows) and n not in clips and windows[n].idx not in done:
                fut: Future[tuple[Clip, dict[float, bytes]]] = Future()
                clips[n] = fut

                def work() -> None:
                    try:
                        fut.set_result(self.clip(job, windows[n]))
                    except BaseException as exc:  # noqa: BLE001 - decoded again when asked
                        fut.set_exception(exc)

                threading.Thread(target=work, name="vlm-frames", daemon=True).start()

        for n, w in enumerate(windows):
            while folded < n - c + 1:  # the context this window's prompt needs: windows up to n-C
                while windows[folded].idx not in rows:
                    take()
                fold(folded + 1)
            while inflight >= c:
                take()
            prompt = build_prompt(w.start, w.end, known_people, previous,
                                  [x for x in spoken if x[0] < w.end and x[1] > w.start])
            inputs = hashlib.sha256(prompt.encode()).hexdigest()[:16]
            row = done.get(w.idx)
            if row is not None and (abs(row.start_sec - w.start) > 1e-3 or abs(row.end_sec - w.end) > 1e-3
                                    or row.inputs != inputs):
                row = None  # another span, or other words spoken in it: ask again
            if row is not None and row.status in ("ok", "failed"):
                rows[w.idx] = row
                finished += 1
                progress(finished / len(windows), f"window {finished}/{len(windows)} (from the ledger)")
                continue
            inflight += 1
            ready = clips.pop(n, None)
            threading.Thread(target=self._answer, args=(n, job, w, prompt, inputs, ready, arrived),
                             name=f"vlm-window-{w.idx}", daemon=True).start()
            prefetch(n + 1)
        while inflight:
            take()
        return rows

    def _answer(self, n: int, job: VideoJob, w: Window, prompt: str, inputs: str,
                ready: Future[tuple[Clip, dict[float, bytes]]] | None, arrived: queue.Queue[tuple[int, Any]]) -> None:
        try:
            clip, th, raw = self._ask(job, w, prompt, ready)
            parsed = parse_events(raw, w.start, w.end)
            if not parsed.ok:
                log.warning("window %d (%s-%s): unreadable answer, asking once more", w.idx,
                            format_ts(w.start), format_ts(w.end))
                again = self.provider.follow_up(clip, prompt, SYSTEM, raw, repair_prompt(raw))
                parsed = parse_events(again, w.start, w.end)
                raw = f"{raw}\n--- repair answer ---\n{again}"
            # keep only the frames that can be thumbnails: a 2-hour film at 2 fps would hold
            # ~14,000 JPEGs in memory otherwise
            keep = _nearest_frames(th, [e["start_sec"] for e in parsed.events])
            row = WindowRow(w.idx, w.start, w.end, "ok" if parsed.ok else "failed", parsed.events,
                            None if parsed.ok else raw[:20000], inputs)
            arrived.put((n, (row, keep)))
        except BaseException as exc:  # noqa: BLE001 - raised in the analysis thread
            arrived.put((n, exc))

    def _ask(self, job: VideoJob, w: Window, prompt: str,
             ready: Future[tuple[Clip, dict[float, bytes]]] | None = None) -> tuple[Clip, dict[float, bytes], str]:
        """One window's answer; out of GPU memory, the same window again with fewer frames."""
        for scale in OOM_SCALES:
            if scale == 1.0 and ready is not None:
                try:
                    clip, th = ready.result()
                except Exception:  # decoding it ahead failed: decode it here, where errors are reported
                    clip, th = self.clip(job, w, scale)
            else:
                clip, th = self.clip(job, w, scale)
            try:
                return clip, th, self.provider.generate(clip, prompt, SYSTEM)
            except VlmOutOfMemory as exc:
                if scale == OOM_SCALES[-1]:
                    raise
                log.warning("window %d: %s; trying again with fewer frames", w.idx, exc)
        raise AssertionError("unreachable")

    def _events(self, job: VideoJob, merged: list[dict[str, Any]], thumbs: dict[float, bytes],
                warnings: list[str], cues: list[Cue], transcript: Transcript | None) -> Analysis:
        common: dict[str, Any] = dict(video_id=job.video_id, video_path=str(job.path), analyzer=self.version,
                                      model=self.provider.model_id, prompt_version=PROMPT_VERSION,
                                      run_id=job.run_id)
        events: list[Event] = []
        out_thumbs: dict[str, bytes] = {}
        times = np.array(sorted(thumbs)) if thumbs else np.zeros(0)
        near = max(1.0, 1.0 / self.settings.vlm_fps)  # else the pipeline decodes the frame itself
        for i, e in enumerate(merged):
            said = " ".join(c.text for c in cues if c.start < max(e["end_sec"], e["start_sec"] + 0.01)
                            and c.end > e["start_sec"])
            heard = spoken_between(transcript, e["start_sec"], max(e["end_sec"], e["start_sec"] + 0.01))
            dialogue = " ".join(x for x in (e["dialogue"], said, heard) if x)
            eid = event_id_for(job.sha256, self.version, e["start_sec"], e["end_sec"], i)
            events.append(Event(event_id=eid, source="vlm", **{**e, "dialogue": dialogue}, **common))
            if len(times):
                t = float(times[int(np.argmin(np.abs(times - e["start_sec"])))])
                if abs(t - e["start_sec"]) <= near:  # a window resumed from the ledger has no frames here
                    out_thumbs[eid] = thumbs[t]
        for j, c in enumerate(cues):  # each subtitle line stays findable at its own time
            eid = event_id_for(job.sha256, self.version, c.start, c.end, len(merged) + j)
            events.append(Event(event_id=eid, start_sec=round(c.start, 3), end_sec=round(c.end, 3),
                                description=f"Line: {c.text}", dialogue=c.text, source="subtitle",
                                language=c.lang[:2] if c.lang else "", **common))
        spoken_events = speech_events(transcript, job.sha256, self.version, len(merged) + len(cues), common,
                                      job.info.duration_sec)
        events.extend(spoken_events)
        return Analysis(events=events, thumbnails=out_thumbs, warnings=warnings,
                        voices=transcript.speakers if transcript else None,
                        turns=speaker_turns(transcript, spoken_events))
