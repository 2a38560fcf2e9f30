"""The ``vidx`` command. The one module that wires ``ingest`` and ``search_ui`` together
(imports are lazy, inside the subcommands)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidx import __version__
from vidx.config import Settings, analyzer_names, load_settings

log = logging.getLogger("vidx.cli")

EPILOG = """\
Settings come from VIDX_* environment variables or vidx.toml (see `vidx config`).
Examples:
  vidx run                          daemon + web UI on http://127.0.0.1:8080
  vidx index talk.mp4 lectures/     analyse files now, with progress bars
  vidx search "lighthouse keeper" --mode keyword --json
  vidx ask "when do the trucks arrive?"   an answer with cited moments
  vidx mcp                          the library as MCP tools for an agent (stdio)
"""


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("watch_dir", "data_dir", "host", "port", "analyzer"):
        v = getattr(args, name, None)
        if v is not None:
            overrides[name] = v
    return load_settings(**overrides)


# --------------------------------------------------------------------------- commands
def cmd_config(args: argparse.Namespace, s: Settings) -> int:
    from ingest.speech.service import describe_settings

    data = s.masked()
    speech = describe_settings(s)
    if args.json:
        print(json.dumps({**data, "speech_model_in_use": speech}, indent=2, default=str))
    else:
        width = max(len(k) for k in data)
        for k, v in data.items():
            print(f"VIDX_{k.upper():<{width}}  {'' if v is None else v}")
        print(f"# speech recognition: {speech}")
    return 0


def cmd_status(args: argparse.Namespace, s: Settings) -> int:
    from vidx.ledger import Ledger

    if args.check:  # liveness of the ingest daemon (container healthcheck)
        import time

        beat = s.data_dir / "daemon.heartbeat"
        try:
            age = time.time() - beat.stat().st_mtime
        except OSError:
            print(f"no ingest daemon has run with data folder {s.data_dir}", file=sys.stderr)
            return 1
        if age > args.max_age:
            print(f"the ingest daemon has not reported for {age:.0f}s (stuck or stopped)", file=sys.stderr)
            return 1
        print(f"ingest daemon alive (last report {age:.0f}s ago)")
        return 0

    if not s.ledger_path.exists():
        data: dict[str, Any] = {"videos": [], "forgetting_paused": None}
    else:
        data = Ledger(s.ledger_path, read_only=True).status()
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    if data.get("forgetting_paused"):
        print(f"deleted files are not forgotten: {data['forgetting_paused']['reason']}")
    if not data["videos"]:
        print(f"no videos yet: drop files into {s.watch_dir}")
        return 0
    for v in data["videos"]:
        extra = f"  {v['error']}" if v["error"] else ""
        pct = f"{v['progress'] * 100:3.0f}%" if v["state"] == "processing" else ""
        print(f"{v['state']:<10} {v['events']:>5} events {pct:>4}  {v['path']}{extra}")
    return 0


def _search_service(s: Settings) -> Any:
    from vidx.embed import store_embedder
    from vidx.search import SearchService
    from vidx.store import open_store

    store = open_store(s, read_only=True)
    return SearchService(store, lambda: store_embedder(s, store), min_score=s.min_score)


def cmd_search(args: argparse.Namespace, s: Settings) -> int:
    from search_ui import create_app
    from vidx.schema import format_ts

    params = {"q": args.query, "mode": args.mode, "size": args.size, "page": args.page, "video_id": args.video_id,
              "min_score": args.min_score, "from": args.from_, "to": args.to, "added_from": args.added_from,
              "added_to": args.added_to, "group": args.group}
    # the web app's own /api/search, in-process: `--json` prints exactly what the API answers
    app = create_app(s)
    resp = app.test_client().get("/api/search", query_string={k: str(v) for k, v in params.items() if v is not None},
                                 headers=_local_auth(s))
    result = resp.get_json(silent=True) or {}
    if resp.status_code != 200:
        print(f"vidx search: {result.get('error') or resp.status}", file=sys.stderr)
        return 2 if resp.status_code == 400 else 1
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    if not result["hits"]:
        if result.get("filter_total") == 0:
            print("no indexed event passes the filters (video:, person:, source:, lang:, --from/--to, dates): "
                  "remove or change one to see matches")
            return 0
        print("nothing relevant" + (f" ({result['below_threshold']} weaker matches below --min-score "
                                    f"{result['min_score']})" if result.get("below_threshold") else ""))
        return 0
    more = "+" if result.get("total_relation") == "gte" else ""
    what = "moments" if result.get("group") == "moment" else "events"
    print(f"{result['total']:,}{more} {what} match; page {result['page']} of {result['pages']}", file=sys.stderr)
    for h in result["hits"]:
        text = h["dialogue"] or h["description"]
        also = f"  (+{len(h['context'])} in this moment)" if h.get("context") else ""
        print(f"{format_ts(h['start_sec'])}–{format_ts(h['end_sec'])}  {h['score']:.2f}  "
              f"{Path(h['video_path']).name}  {text[:100]}{also}")
    return 0


def _video_id(target: str, s: Settings) -> str | None:
    """A video's id from its 32-digit id or its path (as the ledger knows it)."""
    from vidx.ledger import Ledger
    from vidx.search import VIDEO_ID_RE

    if VIDEO_ID_RE.match(target.lower()):
        return target.lower()
    row = Ledger(s.ledger_path, read_only=True).get(str(Path(target).absolute()))
    return row.video_id if row is not None and row.video_id else None


def cmd_ask(args: argparse.Namespace, s: Settings) -> int:
    """Ask the library; the answer is printed as the model writes it, then its citations."""
    from search_ui import create_app
    from vidx.schema import format_ts

    body = {"question": args.question, "video": args.video, "person": args.person, "source": args.source,
            "lang": args.lang, "from": args.from_, "to": args.to}
    body = {k: v for k, v in body.items() if v is not None}
    app = create_app(s)
    client = app.test_client()
    if args.json:  # exactly what POST /api/ask answers
        resp = client.post("/api/ask", json=body, headers=_local_auth(s))
        result = resp.get_json(silent=True) or {}
        if resp.status_code != 200:
            print(f"vidx ask: {result.get('error') or resp.status}", file=sys.stderr)
            return 2 if resp.status_code == 400 else 1
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    resp = client.post("/api/ask", json={**body, "stream": True}, headers=_local_auth(s), buffered=False)
    if resp.status_code != 200:
        err = resp.get_json(silent=True) or {}
        print(f"vidx ask: {err.get('error') or resp.status}", file=sys.stderr)
        return 2 if resp.status_code == 400 else 1
    done: dict[str, Any] = {}
    streamed = False
    buf = b""
    for chunk in resp.response:
        buf += chunk if isinstance(chunk, bytes) else str(chunk).encode()
        *lines, buf = buf.split(b"\n")
        for line in lines:
            item = json.loads(line) if line.strip() else {}
            if item.get("type") == "delta" and sys.stdout.isatty():
                print(item["text"], end="", flush=True)  # as it is written; the numbered answer follows
                streamed = True
            elif item.get("type") == "done":
                done = item
            elif item.get("type") == "error":
                print(f"vidx ask: {item['error']}", file=sys.stderr)
                return 1
    if streamed:
        print("\r\033[J", end="")
    print(done.get("answer", ""))
    if done.get("note"):
        print(f"({done['note']})", file=sys.stderr)
    for c in done.get("citations", []):
        print(f"  [{c['n']}] {Path(c['video_path']).name} {format_ts(c['start_sec'])}–{format_ts(c['end_sec'])}  "
              f"{c['text'][:120]}")
    return 0


def cmd_summary(args: argparse.Namespace, s: Settings) -> int:
    """A video's summary and chapters (made once, then cached until its events change)."""
    from search_ui import create_app

    vid = _video_id(args.video, s)
    if vid is None:
        print(f"vidx summary: {args.video} is not an indexed video (give its path or its 32-digit id)",
              file=sys.stderr)
        return 2
    client = create_app(s).test_client()
    if args.format in ("vtt", "txt"):
        resp = client.get(f"/api/videos/{vid}/chapters", query_string={"format": args.format},
                          headers=_local_auth(s))
        if resp.status_code != 200:
            print(f"vidx summary: {(resp.get_json(silent=True) or {}).get('error')}", file=sys.stderr)
            return 1
        sys.stdout.write(resp.get_data(as_text=True))
        return 0
    resp = client.get(f"/api/videos/{vid}/summary", headers=_local_auth(s))
    data = resp.get_json(silent=True) or {}
    if resp.status_code != 200:
        print(f"vidx summary: {data.get('error') or resp.status}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    from vidx.summary import chapters_text

    print(data["summary"])
    if len(data["chapters"]) > 1:
        print()
        sys.stdout.write(chapters_text(data["chapters"]))
    if data.get("note"):
        print(f"({data['note']})", file=sys.stderr)
    return 0


def cmd_people(args: argparse.Namespace, s: Settings) -> int:
    """List, name, hide, merge and delete the people vidx recognises by voice."""
    from vidx.people import PeopleDB, PeopleError, PersonNotFound
    from vidx.schema import format_ts
    from vidx.writelock import WriterBusy, WriterLock

    if not s.people_path.exists() and args.action != "list":
        print("vidx people: no people yet (voices are recognised in videos with speech)", file=sys.stderr)
        return 2
    db = PeopleDB(s.people_path, read_only=args.action == "list" and not s.people_path.exists())
    try:
        if args.action == "list":
            people = db.persons(include_hidden=args.all) if s.people_path.exists() else []
            if args.json:
                print(json.dumps([{"id": p.id, "name": p.display, "named": p.name is not None, "hidden": p.hidden,
                                   "has_voice": p.has_voice, "has_face": p.has_face, "lines": p.moments,
                                   "faces": p.faces, "videos": p.videos, "speech_seconds": p.seconds}
                                  for p in people], indent=2, ensure_ascii=False))
                return 0
            if not people:
                print("no people yet")
            for p in people:
                what = [f"{p.moments} line(s), {format_ts(p.seconds)} of speech" if p.has_voice else "",
                        f"seen {p.faces} time(s)" if p.has_face else ""]
                print(f"{p.id:>5}  {p.display}{'  (hidden)' if p.hidden else ''}  "
                      f"{'; '.join(w for w in what if w)} in {p.videos} video(s)")
            return 0
        if args.person is None:
            print(f"vidx people {args.action}: give the person's id (see vidx people list)", file=sys.stderr)
            return 2
        if args.action == "rename":
            db.rename(args.person, args.value or None)
        elif args.action in ("hide", "show"):
            db.hide(args.person, args.action == "hide")
        elif args.action == "merge":
            if args.value is None or not args.value.isdigit():
                print("vidx people merge: give the id of the person to keep: vidx people merge ID INTO", file=sys.stderr)
                return 2
            db.merge(args.person, int(args.value))
        elif args.action == "split":
            if not args.value:
                print("vidx people split: give the video (its id) where the person is someone else", file=sys.stderr)
                return 2
            vid = _video_id(args.value, s) or args.value
            print(f"split off as person {db.split(args.person, vid)}")
        elif args.action == "delete":
            db.delete(args.person)
    except PersonNotFound:
        print(f"vidx people: no person {args.person}", file=sys.stderr)
        return 1
    except PeopleError as exc:
        print(f"vidx people: {exc}", file=sys.stderr)
        return 2
    # the names go into the stored events now when no daemon runs, else the daemon does it
    try:
        with WriterLock(s.data_dir, "people"):
            from vidx.embed import store_embedder
            from vidx.people_sync import sync_pending
            from vidx.store import open_store

            people_store = open_store(s)
            n = sync_pending(db, people_store, lambda: store_embedder(s, people_store))
            print(f"done: {n} line(s) now carry the new name")
    except WriterBusy:
        print("done: the running daemon writes the name into the lines within seconds")
    return 0


def cmd_mcp(args: argparse.Namespace, s: Settings) -> int:
    """The library as MCP tools: stdio by default, Streamable HTTP with --http."""
    from search_ui.mcp_server import serve_http, serve_stdio

    if args.http:
        serve_http(s, args.mcp_host, args.mcp_port)
    else:
        serve_stdio(s)
    return 0


def _local_auth(s: Settings) -> dict[str, str]:
    """The API key header, when the API needs one (the CLI runs on the server itself)."""
    return {"Authorization": f"Bearer {s.ui_api_key.get_secret_value()}"} if s.ui_api_key else {}


def _process_files(pipeline: Any, files: list[Path], progress: Any, quiet: bool) -> list[Path]:
    """Run each file through the pipeline with a progress bar; returns the files that failed."""
    failed: list[Path] = []
    for f in files:
        progress.start(str(f.absolute()), f.name)
        out = pipeline.process(f)
        progress.finish(str(f.absolute()), out.state, out.events, out.error)
        if out.state != "done":
            failed.append(f)
            print(f"FAILED {f}: {out.error}", file=sys.stderr)
        elif not quiet:
            print(f"done   {f}: {out.events} events in {out.seconds:.1f}s"
                  + (f" ({out.warnings} warnings)" if out.warnings else ""), file=sys.stderr)
    print(f"{len(files) - len(failed)} indexed, {len(failed)} failed", file=sys.stderr)
    return failed


def cmd_index(args: argparse.Namespace, s: Settings) -> int:
    from ingest.daemon import build_pipeline
    from ingest.progress import ConsoleProgress
    from ingest.watcher import is_ignored, is_video_name

    files: list[Path] = []
    for p in map(Path, args.paths):
        if p.is_dir():
            files.extend(f for f in sorted(p.rglob("*")) if f.is_file() and not is_ignored(f, p)
                         and is_video_name(f))
        elif p.is_file():
            files.append(p)
        else:
            print(f"vidx index: {p}: no such file or folder", file=sys.stderr)
            return 2
    with _writer(s, "index"):
        progress = ConsoleProgress(enabled=not args.quiet)
        pipeline = build_pipeline(s, progress=progress)
        pipeline.preflight()
        return 1 if _process_files(pipeline, files, progress, args.quiet) else 0


def _writer(s: Settings, purpose: str) -> Any:
    """The data folder's writer lock (one writer at a time)."""
    from vidx.writelock import WriterLock

    return WriterLock(s.data_dir, purpose)


def _daemon(s: Settings) -> Any:
    from ingest.daemon import Daemon, build_pipeline
    from ingest.progress import ConsoleProgress

    progress = ConsoleProgress()
    stop = threading.Event()
    pipeline = build_pipeline(s, progress=progress, should_stop=stop.is_set)
    daemon = Daemon(s, pipeline, progress)
    daemon.stop_event = stop
    return daemon


class PortUnavailable(RuntimeError):
    """The web UI's address cannot be bound (taken, or not ours to use)."""


def _bind_ui(s: Settings) -> Any:
    """The web UI's server, bound to VIDX_HOST:VIDX_PORT (before anything announces the URL)."""
    from waitress.server import create_server

    from search_ui import create_app, warm_in_background

    app = create_app(s)
    warm_in_background(app)
    # waitress warns "Task queue depth is N" for every request queued behind 8 busy threads:
    # under load that is a line per request in the log, and a normal state, not a fault
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        return create_server(app, host=s.host, port=s.port, threads=8)
    except OSError as exc:
        raise _port_error(s, exc) from None


def _check_port(s: Settings) -> None:
    """Fail with vidx's own message when VIDX_HOST:VIDX_PORT cannot be bound."""
    import socket

    try:
        infos = socket.getaddrinfo(s.host, s.port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(infos[0][4])
    except OSError as exc:
        raise _port_error(s, exc) from None


def _port_error(s: Settings, exc: OSError) -> BaseException:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return PortUnavailable(f"port {s.port} on {s.host} is already in use (another vidx?): stop it, or set "
                               "VIDX_PORT to a free port")
    if exc.errno in (errno.EACCES, errno.EADDRNOTAVAIL):
        return PortUnavailable(f"cannot listen on {s.host}:{s.port} ({exc.strerror}): set VIDX_HOST and "
                               "VIDX_PORT to an address of this machine and a free port above 1023")
    return exc


def _serve_ui(s: Settings, stop: threading.Event, server: Any = None) -> None:
    server = server or _bind_ui(s)
    log.info("web UI on http://%s:%d", s.host, s.port)
    t = threading.Thread(target=server.run, name="ui", daemon=True)
    t.start()
    stop.wait()
    server.close()


def _on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: Any) -> None:
        log.info("stopping (signal %d)", signum)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_ingest(args: argparse.Namespace, s: Settings) -> int:
    with _writer(s, "ingest"):
        daemon = _daemon(s)
        _on_signals(daemon.stop)
        daemon.run()
    return 0


def cmd_serve(args: argparse.Namespace, s: Settings) -> int:
    from vidx.cores import serve_processes

    workers = serve_processes(s.web_workers)
    if workers > 1:
        return _serve_workers(s, workers)
    stop = threading.Event()
    _on_signals(stop.set)
    _serve_ui(s, stop)
    return 0


def _serve_workers(s: Settings, workers: int) -> int:
    """`vidx serve` with ``workers`` processes (VIDX_WEB_WORKERS): gunicorn's pre-fork arbiter (it restarts a
    worker that dies, and stops them all on SIGTERM/SIGINT) with threaded workers. Each worker
    creates its own app after the fork, so no model or database handle crosses a fork."""
    from gunicorn.app.base import BaseApplication

    from vidx.cores import usable_cores

    _check_port(s)  # a taken or foreign address fails here with vidx's own message

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            cfg = {"bind": f"{s.host}:{s.port}", "workers": workers, "worker_class": "gthread",
                   "threads": 8, "timeout": 120, "graceful_timeout": 10, "keepalive": 5,
                   "accesslog": None, "errorlog": "-", "loglevel": s.log_level.lower(),
                   "proc_name": "vidx-serve",
                   # a long query (4,000 Chinese characters are 36 KB in a URL) reaches the app,
                   # which answers vidx's own 400 over its length limit, not gunicorn's 414 page
                   "limit_request_line": 0}
            for k, v in cfg.items():
                self.cfg.set(k, v)

        def load(self) -> Any:
            from search_ui import create_app, warm_in_background

            try:  # the workers share the cores: one inference thread each when there are as many as cores
                import torch

                torch.set_num_threads(max(1, usable_cores() // workers))
            except ImportError:  # pragma: no cover
                pass
            app = create_app(s)
            warm_in_background(app)  # in each worker, after the fork
            return app

    log.info("web UI on http://%s:%d (%d processes)", s.host, s.port, workers)
    _App().run()
    return 0


def cmd_run(args: argparse.Namespace, s: Settings) -> int:
    s.watch_dir.mkdir(parents=True, exist_ok=True)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    with _writer(s, "run"):
        return _run(s)


def _run(s: Settings) -> int:
    daemon = _daemon(s)
    daemon.pipeline.preflight()  # a schema or model mismatch stops here, before the UI looks healthy
    server = _bind_ui(s)  # a taken port stops here too, before the URL is announced
    crashed: list[BaseException] = []

    def work() -> None:
        try:
            daemon.run()
        except BaseException as exc:  # a dead worker must not leave a UI that looks healthy
            log.exception("the ingest daemon stopped unexpectedly")
            crashed.append(exc)
            daemon.stop()

    _on_signals(daemon.stop)
    t = threading.Thread(target=work, name="ingest", daemon=True)
    t.start()
    print(f"vidx {__version__}: watching {s.watch_dir.absolute()}, UI on http://{s.host}:{s.port}", file=sys.stderr)
    _serve_ui(s, daemon.stop_event, server)
    t.join(timeout=8)  # bounded shutdown: work in flight is abandoned and resumes on the next start
    if crashed:
        exc = crashed[0]
        print(f"vidx: the ingest daemon stopped: {exc}", file=sys.stderr)
    return 1 if crashed else 0


def cmd_requeue_failed(args: argparse.Namespace, s: Settings) -> int:
    from vidx.ledger import Ledger

    n = Ledger(s.ledger_path).requeue_failed()
    print(f"{n} failed video(s) will be retried by the daemon")
    return 0


def cmd_reindex(args: argparse.Namespace, s: Settings) -> int:
    """Re-analyse and re-embed indexed videos now; rebuild the store after a model change."""
    if args.only_other and not args.analyzer:
        print("vidx reindex: --only-other needs --analyzer", file=sys.stderr)
        return 2
    if args.analyzer:
        s = s.model_copy(update={"analyzer": args.analyzer})
    with _writer(s, "reindex"):
        return _reindex(args, s)


def _reindex(args: argparse.Namespace, s: Settings) -> int:
    from ingest.daemon import build_pipeline
    from ingest.progress import ConsoleProgress
    from vidx.embed import load_embedder, store_embedder
    from vidx.ledger import Ledger
    from vidx.store import open_store

    ledger = Ledger(s.ledger_path)
    rows = [r for r in ledger.rows() if r.state in ("done", "failed")]
    store = open_store(s)
    # --embed-only and --rebuild move the store to VIDX_EMBED_MODEL (or the default); any other
    # reindex keeps the model whose vectors the store holds
    embedder = (load_embedder(s.embed_model, s.embed_batch_size, s.embed_device) if args.embed_only or args.rebuild
                else store_embedder(s, store))
    if args.embed_only:
        return _reembed_store(args, store, embedder)
    if args.people:
        return _reindex_people(args, s, rows, store, embedder)
    rebuild = args.rebuild or not store.schema_matches(embedder.model_id, embedder.dims)
    if rebuild and args.only_other:
        print(f"vidx reindex: the store must be rebuilt for {embedder.model_id} ({embedder.dims} dims), which "
              "re-indexes every video: drop --only-other", file=sys.stderr)
        return 2
    if args.only_other:
        rows = [r for r in rows if not (r.analyzer or "").startswith(args.analyzer + "/")]
    gone = [r.path for r in rows if not Path(r.path).exists()]
    files = [Path(r.path) for r in rows if Path(r.path).exists()]
    was_done = {Path(r.path) for r in rows if r.state == "done"}
    if not files and not rebuild:
        print("nothing to reindex")
        return 0
    if gone:
        print(f"{len(gone)} video(s) whose files are gone are skipped", file=sys.stderr)
    target = store.begin_rebuild(embedder.model_id, embedder.dims) if rebuild else store
    progress = ConsoleProgress(enabled=not args.quiet)
    pipeline = build_pipeline(s, store=target, ledger=ledger, embedder_factory=lambda: embedder, progress=progress,
                              force_analysis=True)
    try:
        failed = _process_files(pipeline, files, progress, args.quiet)
    except BaseException:  # interrupted (Ctrl-C, an error): never leave a half-built index behind
        if rebuild:
            print(f"vidx reindex: interrupted; {store.abort_rebuild(target)}", file=sys.stderr)
        raise
    if rebuild:
        lost = [f for f in failed if f in was_done]
        if lost:  # a video that was searchable would vanish: keep what users search now
            print(f"vidx reindex: {len(lost)} indexed video(s) failed; {store.abort_rebuild(target)}",
                  file=sys.stderr)
            return 1
        print(store.finish_rebuild(target, keep_old=args.keep_old))
    return 1 if failed else 0


def _reindex_people(args: argparse.Namespace, s: Settings, rows: list[Any], store: Any, embedder: Any) -> int:
    """``vidx reindex --people``: speakers and faces from what is stored (no speech recognition, no VLM)."""
    from ingest.people.backfill import people_for_video
    from vidx.people import PeopleDB
    from vidx.people_sync import sync_pending

    if s.people == "off":
        print("vidx reindex --people: VIDX_PEOPLE=off", file=sys.stderr)
        return 2
    db = PeopleDB(s.people_path)
    todo = [r for r in rows if r.state == "done" and r.video_id and Path(r.path).exists()]
    seen: set[str] = set()
    failed = 0
    for i, r in enumerate(todo, 1):
        if r.video_id in seen:  # a copy of content already done
            continue
        seen.add(r.video_id)
        try:
            sp, fc, n = people_for_video(s, db, store, lambda: embedder, r.video_id, Path(r.path))
        except Exception as exc:  # noqa: BLE001 (one video's failure is reported, the others go on)
            failed += 1
            print(f"[{i}/{len(todo)}] {Path(r.path).name}: failed: {exc}", file=sys.stderr)
            continue
        if not args.quiet:
            print(f"[{i}/{len(todo)}] {Path(r.path).name}: {sp} speaker(s), {fc} face(s), {n} event(s) named")
    sync_pending(db, store, lambda: embedder)  # videos whose waiting faces became a person meanwhile
    people = db.persons()
    print(f"{len(people)} people in the library (vidx people list)")
    return 1 if failed else 0


def _reembed_store(args: argparse.Namespace, store: Any, embedder: Any) -> int:
    """``vidx reindex --embed-only``: a new store from the stored events with the embedding
    model of VIDX_EMBED_MODEL; nothing is decoded or analysed again."""
    from vidx.reembed import reembed

    if args.analyzer or args.only_other:
        print("vidx reindex: --embed-only keeps every event as analysed: drop --analyzer/--only-other",
              file=sys.stderr)
        return 2
    have = store.embedding_model()
    if have == embedder.model_id and not args.rebuild:
        print(f"the store already holds vectors of {embedder.model_id}: nothing to re-embed "
              "(set VIDX_EMBED_MODEL to another model, or add --rebuild)")
        return 0
    videos = sorted(store.video_event_counts())
    t0 = time.monotonic()
    source, snapshot = store, None
    from vidx.store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):  # rebuilt in place: read the events from a snapshot of the file
        snapshot = store.path.with_name(store.path.name + ".reembed-source")
        source = store.snapshot(snapshot)
    target = store.begin_rebuild(embedder.model_id, embedder.dims)

    def progress(done: int, total: int, vid: str) -> None:
        if not args.quiet and (done == total or done % 10 == 0):
            print(f"re-embedding: {done}/{total} videos ({time.monotonic() - t0:.0f} s)", file=sys.stderr)

    def undo() -> str:
        if snapshot is not None:  # the file as it was, vectors of the old model and all
            store.restore_from(snapshot)
            snapshot.unlink(missing_ok=True)
            return f"{store.path} is back as it was"
        return store.abort_rebuild(target)

    try:
        report = reembed(source, target, embedder, videos, progress)
    except BaseException:  # never leave a half-built index in place of the one users search
        print(f"vidx reindex: interrupted; {undo()}", file=sys.stderr)
        raise
    if report.failed:
        print(f"vidx reindex: {len(report.failed)} video(s) could not be written; {undo()}", file=sys.stderr)
        return 1
    if snapshot is not None:
        snapshot.unlink(missing_ok=True)
    print(f"re-embedded {report.events:,} events of {report.videos:,} videos with {embedder.model_id} "
          f"(from {have or 'nothing'}) in {time.monotonic() - t0:.1f} s; {store.finish_rebuild(target)}")
    return 0


def cmd_verify(args: argparse.Namespace, s: Settings) -> int:
    """Check that the ledger, the store and the watch folder agree; exit 1 if they do not."""
    from vidx.ledger import Ledger, LedgerError

    if not s.ledger_path.exists():
        print(f"no videos yet: drop files into {s.watch_dir}")
        return 0
    if args.confirm_deletions and not args.fix:
        print("vidx verify: --confirm-deletions needs --fix", file=sys.stderr)
        return 2
    try:
        if args.fix:
            with _writer(s, "verify --fix"):
                return _verify(args, s, Ledger(s.ledger_path))
        return _verify(args, s, Ledger(s.ledger_path, read_only=True))
    except LedgerError as exc:  # never act on (or report from) a ledger that cannot be read
        print(f"vidx verify: {exc}; nothing was changed", file=sys.stderr)
        return 1


def _verify(args: argparse.Namespace, s: Settings, ledger: Any) -> int:
    from vidx.embed import store_embedder
    from vidx.store import open_store
    from vidx.verify import verify

    store = open_store(s, read_only=not args.fix)
    emb = store_embedder(s, store)
    report = verify(ledger, store, emb.model_id, emb.dims)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"{report.videos} video(s) in the ledger")
        for what, items in (("events missing from the store", report.missing),
                            ("files deleted", report.gone), ("videos in the store without a ledger row",
                                                             report.orphans),
                            ("events of an interrupted rewrite beside the current ones", report.leftovers),
                            ("events of the file's previous content play its new content", report.misplaced)):
            for item in items:
                print(f"  {what}: {item}")
        if report.stale_model:
            print(f"  {report.stale_model}")
        for item in report.indexes:
            print(f"  {item}")
        print("ok" if report.ok else "problems found" + ("" if args.fix else " (run `vidx verify --fix`)"))
    if args.fix and report.indexes:
        for line in store.check_indexes(repair=True):
            print(line)
    if args.fix and not report.ok:
        from ingest.lifecycle import repair

        lines, brake = repair(report, s, ledger, store, confirm_deletions=args.confirm_deletions)
        for line in lines:
            print(line)
        if brake:
            print(f"deleted files were not forgotten: {brake}", file=sys.stderr)
        return 0 if not (report.stale_model or brake) else 1
    return 0 if report.ok else 1


def cmd_es_setup(args: argparse.Namespace, s: Settings) -> int:
    if not s.es_url:
        print("vidx es-setup: set VIDX_ES_URL first", file=sys.stderr)
        return 2
    from vidx.embed import load_embedder
    from vidx.store.elastic import ElasticStore

    store = ElasticStore.from_settings(s)
    from vidx.embed import canonical_model_id, model_for_store

    model = model_for_store(s, store)  # an index made before the default model changed keeps its model
    dims = args.dims or load_embedder(model).dims
    info = store.setup(dims=dims, embedding_model=canonical_model_id(model))
    print(json.dumps(info, indent=2))
    return 0


def cmd_transcript(args: argparse.Namespace, s: Settings) -> int:
    """Print a video's transcript (subtitles or recognised speech) as SRT, WebVTT or JSON."""
    from vidx.ledger import Ledger
    from vidx.search import VIDEO_ID_RE
    from vidx.store import open_store
    from vidx.transcript import to_srt, to_vtt, transcript_lines

    target = args.video
    vid = target.lower() if VIDEO_ID_RE.match(target.lower()) else None
    if vid is None:
        row = Ledger(s.ledger_path, read_only=True).get(str(Path(target).absolute()))
        if row is None or not row.video_id:
            print(f"vidx transcript: {target} is not an indexed video (give its path or its 32-digit id)",
                  file=sys.stderr)
            return 2
        vid = row.video_id
    events = open_store(s, read_only=True).events_for_video(vid)
    if not events:
        print(f"vidx transcript: no events for video {vid}", file=sys.stderr)
        return 1
    lines = transcript_lines(events)
    if args.format == "json":
        print(json.dumps({"video_id": vid, "lines": lines}, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(to_srt(lines) if args.format == "srt" else to_vtt(lines))
    if not lines:
        print("vidx transcript: the video has no subtitles and no recognised speech", file=sys.stderr)
    return 0


def cmd_kibana_setup(args: argparse.Namespace, s: Settings) -> int:
    from vidx.kibana import KibanaError, import_saved_objects

    try:
        result = import_saved_objects(s)
    except KibanaError as exc:
        print(f"vidx kibana-setup: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vidx",
        description="Self-hosted video event search: drop videos in a folder, search what happens in them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"vidx {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace, Settings], int], help: str,
            epilog: str | None = None) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, epilog=epilog)
        sp.set_defaults(fn=fn)
        return sp

    def folders(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--watch-dir", type=Path, help="folder to watch (VIDX_WATCH_DIR, default ./watch)")
        sp.add_argument("--data-dir", type=Path, help="state folder (VIDX_DATA_DIR, default ./data)")

    def server(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--host", help="address to bind (VIDX_HOST, default 127.0.0.1)")
        sp.add_argument("--port", type=int, help="port (VIDX_PORT, default 8080)")

    sp = add("run", cmd_run, "run the ingest daemon and the web UI together")
    folders(sp)
    server(sp)
    sp.add_argument("--analyzer", choices=analyzer_names(), help="VIDX_ANALYZER")

    sp = add("ingest", cmd_ingest, "run only the ingest daemon (watch folder -> index)")
    folders(sp)
    sp.add_argument("--analyzer", choices=analyzer_names(), help="VIDX_ANALYZER")

    sp = add("serve", cmd_serve, "run only the web UI and JSON API")
    folders(sp)
    server(sp)

    sp = add("index", cmd_index, "analyse and index files or folders now; exit 1 if any file failed")
    sp.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders")
    folders(sp)
    sp.add_argument("--analyzer", choices=analyzer_names(), help="VIDX_ANALYZER")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    sp = add("search", cmd_search, "search the index from the terminal")
    sp.add_argument("query", metavar="QUERY")
    sp.add_argument("--mode", choices=["keyword", "semantic", "hybrid"], default="hybrid", help="default hybrid")
    sp.add_argument("--size", type=int, default=10, help="number of results per page (1-100, default 10)")
    sp.add_argument("--page", type=int, default=1, help="page of results (default 1)")
    sp.add_argument("--video-id", help="only events of this video")
    sp.add_argument("--from", dest="from_", metavar="TIME", help="only events ending after this time (s or mm:ss)")
    sp.add_argument("--to", metavar="TIME", help="only events starting before this time")
    sp.add_argument("--added-from", metavar="DAY", help="only videos indexed on or after this day (YYYY-MM-DD)")
    sp.add_argument("--added-to", metavar="DAY", help="only videos indexed on or before this day")
    sp.add_argument("--min-score", type=float, help="relevance threshold 0-1 (default VIDX_MIN_SCORE)")
    sp.add_argument("--group", choices=["none", "moment"], default="none",
                    help="moment: one result per moment (a line and the scene around it are one), as the "
                         "search page shows; default none (every event)")
    sp.add_argument("--json", action="store_true", help="print the same JSON as GET /api/search")
    folders(sp)

    sp = add("ask", cmd_ask, "ask the library a question; the answer cites the moments it comes from",
             epilog="With VIDX_LLM_URL (or VIDX_OPENAI_BASE_URL) a language model answers from the moments found; "
                    "without one, or when it fails, the best moments are quoted. Example: "
                    "vidx ask \"what did the lecturer say about tidal power?\" --json")
    sp.add_argument("question", metavar="QUESTION")
    sp.add_argument("--video", help="only this video (its name, path or 32-digit id)")
    sp.add_argument("--person", help="only moments with this person")
    sp.add_argument("--source", choices=["speech", "subtitle", "scene", "vlm"], help="only this kind of event")
    sp.add_argument("--lang", help="only events in this language (e.g. en, zh)")
    sp.add_argument("--from", dest="from_", metavar="TIME", help="only moments ending after this time (s or mm:ss)")
    sp.add_argument("--to", metavar="TIME", help="only moments starting before this time")
    sp.add_argument("--json", action="store_true", help="print the same JSON as POST /api/ask")
    folders(sp)

    sp = add("people", cmd_people, "list, name, hide, merge and delete the people recognised by voice and face",
             epilog="Examples: vidx people list; vidx people rename 7 \"Ada Quill\"; vidx people merge 9 7 "
                    "(9 is the same person as 7); vidx people split 7 talk.mp4 (7 in talk.mp4 is someone else); vidx people hide 3; vidx people delete 3 (deletes the "
                    "voiceprints). Search then finds them with person:\"Ada Quill\".")
    sp.add_argument("action", choices=["list", "rename", "hide", "show", "merge", "split", "delete"], nargs="?",
                    default="list")
    sp.add_argument("person", type=int, nargs="?", help="the person's id (vidx people list)")
    sp.add_argument("value", nargs="?", help="rename: the new name (empty: back to 'Speaker N'); merge: the id to "
                                             "keep; split: the video (path or id) whose voice and faces are someone else")
    sp.add_argument("--all", action="store_true", help="list: also hidden people")
    sp.add_argument("--json", action="store_true", help="list: as JSON")
    folders(sp)

    sp = add("summary", cmd_summary, "print a video's summary and chapters",
             epilog="Example: vidx summary watch/lecture.mp4 --format txt  (chapters as '0:00 Title' lines)")
    sp.add_argument("video", metavar="PATH_OR_ID", help="the video's path or its 32-digit id")
    sp.add_argument("--format", choices=["text", "json", "vtt", "txt"], default="text",
                    help="text (default), json (as GET /api/videos/<id>/summary), vtt or txt (chapters only)")
    folders(sp)

    sp = add("mcp", cmd_mcp, "serve the library to AI agents over the Model Context Protocol",
             epilog="Tools: search, ask, get_video, get_transcript. Without --http it speaks over stdin/stdout "
                    "(what desktop agents start); with --http it serves Streamable HTTP on /mcp, and "
                    "VIDX_UI_API_KEY, when set, is required as a Bearer token. See README, 'Agents (MCP)'.")
    sp.add_argument("--http", action="store_true", help="serve Streamable HTTP instead of stdio")
    sp.add_argument("--host", dest="mcp_host", default="127.0.0.1", help="address for --http (default 127.0.0.1)")
    sp.add_argument("--port", dest="mcp_port", type=int, default=8765, help="port for --http (default 8765)")
    folders(sp)

    sp = add("transcript", cmd_transcript, "print a video's transcript (subtitles or speech)",
             epilog="Example: vidx transcript watch/talk.mp4 --format srt > talk.srt")
    sp.add_argument("video", metavar="PATH_OR_ID", help="the video's path or its 32-digit id")
    sp.add_argument("--format", choices=["srt", "vtt", "json"], default="srt", help="default srt")
    folders(sp)

    sp = add("status", cmd_status, "show every watched file and its state")
    sp.add_argument("--json", action="store_true", help="print the same JSON as GET /api/status")
    sp.add_argument("--check", action="store_true",
                    help="only check that the ingest daemon is alive: exit 1 if its heartbeat is older than "
                         "--max-age seconds (for healthchecks)")
    sp.add_argument("--max-age", type=float, default=120.0, help="seconds (default 120)")
    folders(sp)

    sp = add("config", cmd_config, "print the effective settings (secrets masked)")
    sp.add_argument("--json", action="store_true")

    sp = add("requeue-failed", cmd_requeue_failed, "let the daemon retry every failed video")
    folders(sp)

    sp = add("reindex", cmd_reindex, "re-analyse and re-embed indexed videos (after a model change)",
             epilog="After a change of VIDX_EMBED_MODEL or of the index schema the store is rebuilt: "
                    "Elasticsearch into a new index, then the alias is switched in one step (searches keep "
                    "working meanwhile); the embedded store is emptied and refilled in place.")
    sp.add_argument("--analyzer", choices=[n for n in analyzer_names() if n != "auto"],
                    help="analyse with this analyzer")
    sp.add_argument("--people", action="store_true",
                    help="only find speakers and faces in the indexed videos, from their stored events and files "
                         "(no speech recognition, no VLM, nothing else re-analysed)")
    sp.add_argument("--only-other", action="store_true",
                    help="only videos made by another analyzer than --analyzer")
    sp.add_argument("--rebuild", action="store_true",
                    help="rebuild the store even when its schema and embedding model still match (with "
                         "VIDX_EMBED_MODEL's model; without --rebuild or --embed-only a reindex keeps the model "
                         "the store holds)")
    sp.add_argument("--keep-old", action="store_true",
                    help="Elasticsearch: keep the old index after switching the alias")
    sp.add_argument("--embed-only", action="store_true",
                    help="only re-embed: rebuild the store from its stored events with VIDX_EMBED_MODEL's model "
                         "(default multilingual-e5-small), without decoding or analysing any video again. Moves a "
                         "library indexed with the English all-MiniLM-L6-v2 to cross-language search; "
                         "VIDX_EMBED_MODEL=all-MiniLM-L6-v2 vidx reindex --embed-only goes back")
    sp.add_argument("-q", "--quiet", action="store_true")
    folders(sp)

    sp = add("verify", cmd_verify, "check that the ledger, the store and the watch folder agree",
             epilog="Exit status 1 when they disagree. --fix re-queues videos whose events are missing "
                    "(the daemon indexes them again), forgets deleted files by the daemon's rules (missing for "
                    "VIDX_FORGET_AFTER_SECONDS, and never while the watch folder is missing or more than "
                    "VIDX_VANISH_BRAKE of the files vanished at once) and removes orphan events; it never touches "
                    "a video file, and refuses to act on a ledger or store it cannot read.")
    sp.add_argument("--fix", action="store_true", help="repair what disagrees")
    sp.add_argument("--confirm-deletions", action="store_true",
                    help="with --fix: forget missing files now, even past the grace period and the vanish brake "
                         "(never while the watch folder itself is missing)")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    folders(sp)

    sp = add("es-setup", cmd_es_setup, "install the index template, index and alias in Elasticsearch")
    sp.add_argument("--dims", type=int, help="vector size (default: from the embedding model)")

    add("kibana-setup", cmd_kibana_setup, "import the data view and dashboard into Kibana")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        print("vidx: invalid settings:", file=sys.stderr)
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "settings"
            print(f"  VIDX_{loc.upper()}: {err['msg']}", file=sys.stderr)
        return 2
    from vidx.logs import setup_logging

    setup_logging(settings)
    from vidx.embed import EmbedderError
    from vidx.ledger import LedgerError
    from vidx.store.base import StoreError
    from vidx.writelock import WriterBusy

    try:
        return int(args.fn(args, settings))
    except (StoreError, WriterBusy, LedgerError, EmbedderError) as exc:
        print(f"vidx: {exc}", file=sys.stderr)
        return 1
    except PortUnavailable as exc:
        print(f"vidx: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
