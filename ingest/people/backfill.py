"""``vidx reindex --people``: speakers and faces for videos indexed before (or with people
off), from what is stored, without running speech recognition or the VLM again.

Voices: the soundtrack is decoded and the stored speech events' times are the lines.
Faces: frames are read at each scene (or VLM) event's start + 0.5 s and every
``VIDX_PEOPLE_FACE_INTERVAL`` seconds inside it. Then the video's people are registered as at
ingest, and its events are written back with the names (only changed events are embedded again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ingest.people.diarize import diarize
from ingest.people.faces import FACE_WIDTH, FaceModelError, load_faces
from ingest.people.voice import VoiceModelError, load_encoder
from ingest.speech.audio import AudioError, decode_audio
from vidx.config import Settings
from vidx.people import FacePrint, PeopleDB, VoicePrint
from vidx.people_sync import FACE_SOURCES, NamedStore, TextEmbedder, apply_names

log = logging.getLogger("ingest.people")


def frame_times(events: list[tuple[float, float]], interval: float) -> list[float]:
    out: list[float] = []
    for start, end in events:
        t = start + 0.5 if end - start > 0.6 else (start + end) / 2
        while t < end:
            out.append(round(t, 3))
            t += interval
    return sorted(set(out))


def people_for_video(s: Settings, db: PeopleDB, store: NamedStore, embedder: Callable[[], TextEmbedder],
                     video_id: str, path: Path) -> tuple[int, int, int]:
    """(speakers, faces, events renamed) for one stored video."""
    from vidx.media import frame_at

    events = store.events_for_video(video_id)
    speakers = faces_n = 0
    if s.voices_on:
        speech = [e for e in events if e.source == "speech"]
        try:
            audio = decode_audio(path) if speech else None
            enc = load_encoder() if speech else None
        except (AudioError, VoiceModelError) as exc:
            log.warning("%s: voices are not read: %s", path.name, exc)
            audio = enc = None
        if audio is not None and enc is not None:
            d = diarize(audio.samples, [(e.start_sec, e.end_sec) for e in speech], enc, within=s.people_voice_split)
            turns = {e.event_id: lab for e, lab in zip(speech, d.line_speaker) if lab is not None}
            prints = [VoicePrint(sp.label, sp.print, sp.seconds, sp.sample,
                                 next((e.event_id for e, lab in zip(speech, d.line_speaker)
                                       if lab == sp.label and abs(e.start_sec - sp.sample[0]) < 0.002), ""))
                      for sp in d.speakers]
            db.register_video(video_id, prints, turns, d.model_id, across=s.people_voice_match)
            speakers = len(prints)
    if s.faces_on:
        try:
            reader = load_faces(s.people_face_detector)
        except FaceModelError as exc:
            log.warning("faces are not read: %s", exc)
        else:
            spans = [(e.start_sec, e.end_sec) for e in events if e.source in FACE_SOURCES]
            found = []
            for t in frame_times(spans, s.people_face_interval):
                rgb = frame_at(path, t, width=FACE_WIDTH)
                if rgb is not None:
                    found.extend(reader.faces(rgb, t))
            db.register_faces(video_id, [FacePrint(f.t, f.descriptor, f.score, f.box, f.thumb) for f in found],
                              reader.model_id, match=s.people_face_match, min_faces=s.people_face_min)
            faces_n = len(found)
    renamed = apply_names(db, store, embedder, video_id)
    return speakers, faces_n, renamed
