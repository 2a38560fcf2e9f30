"""The one owner of each watched file's lifecycle.

Every decision about a file's existence goes through :class:`Lifecycle`:

* **new or changed** (``observe``): a file the ledger does not know, or whose size,
  mtime or subtitle sidecars changed, is (re)processed; an unchanged one costs one read.
* **same content at a new path** (copy, rename): the pipeline finds the content hash
  already indexed and re-points the events; nothing is analysed again.
* **changed content** (``superseded``): the old video's events, thumbnails, clips and
  cached VLM windows are removed once the new events are stored.
* **deleted** (``sweep``): a file is forgotten only after it has been missing for
  ``VIDX_FORGET_AFTER_SECONDS``, and never while the *brake* holds: the watch folder is
  missing, is not the filesystem it was (device id changed: a mount that did not come up),
  or more than ``VIDX_VANISH_BRAKE`` of the known files vanished at once. The reason is kept
  in the ledger so ``vidx status`` and ``/api/status`` show it, and the brake lifts by itself
  when the files come back.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidx.config import Settings
from vidx.ledger import FileRow, Ledger
from vidx.store.base import EventWriter

log = logging.getLogger("ingest.lifecycle")

ID_RE = re.compile(r"^[0-9a-f]{32}$")
META_BRAKE = "brake"
META_ROOT_DEV = "watch_root_dev"


@dataclass
class SweepReport:
    known: int = 0
    missing: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    brake: str | None = None


def read_brake(ledger: Ledger) -> dict[str, Any] | None:
    """The brake as the daemon last recorded it (for read-only readers: status, UI)."""
    raw = ledger.meta(META_BRAKE)
    if not raw:
        return None
    try:
        return dict(json.loads(raw))
    except ValueError:
        return {"reason": raw}


class Lifecycle:
    def __init__(self, settings: Settings, ledger: Ledger, store: EventWriter,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self.clock = clock

    # -- new / changed ------------------------------------------------------------
    def observe(self, path: Path, siblings: list[Path] | None = None) -> bool:
        """A stable file: True when it needs (re)processing."""
        from ingest.subtitles import sidecar_signature

        st = path.stat()
        return self.ledger.observe(str(path.absolute()), st.st_size, st.st_mtime_ns,
                                   sidecar_signature(path, siblings))

    # -- changed content ----------------------------------------------------------
    def superseded(self, old_video_id: str | None, new_video_id: str) -> None:
        """A file's content changed and the new events are stored: the old content's
        events, thumbnails, clips and cached windows go, unless another file still has it."""
        if not old_video_id or old_video_id == new_video_id:
            return
        others = self.ledger.rows_for_video(old_video_id)
        if others:  # a copy of the old content remains elsewhere: its events play that copy now
            keep = next((r for r in others if r.state == "done"), others[0])
            self.store.repoint_video(old_video_id, keep.path)
            log.info("content replaced: the previous version's events now play %s", keep.path)
            return
        n = self.retire_video(old_video_id)
        log.info("content replaced: %d event(s) of the previous version removed", n)

    def retire_video(self, video_id: str) -> int:
        """Remove everything derived from one content: events, thumbnails, clips, windows."""
        if not ID_RE.match(video_id):  # never build a path from an unexpected value
            raise ValueError(f"not a video id: {video_id!r}")
        n = self.store.delete_video(video_id)
        if self.settings.people_path.exists():
            from vidx.people import PeopleDB

            PeopleDB(self.settings.people_path).forget_video(video_id)
        for folder in (self.settings.thumbs_dir, self.settings.clips_dir):
            shutil.rmtree(folder / video_id, ignore_errors=True)
        self.ledger.clear_windows(video_id)
        return n

    # -- deleted ------------------------------------------------------------------
    def forget(self, path: str) -> str:
        """Drop a deleted file's row; its events go too unless a copy with the same bytes
        remains (then the events are re-pointed at that copy, nothing is analysed again)."""
        row = self.ledger.remove(path)
        if row is None or not row.video_id:
            return f"forgot {path}"
        others = self.ledger.rows_for_video(row.video_id)
        if others:
            keep = next((r for r in others if r.state == "done"), others[0])
            if keep.state == "done":
                self.store.repoint_video(row.video_id, keep.path)
            else:
                self.ledger.set(keep.path, state="pending")
            return f"forgot {path}; its events now belong to {keep.path}"
        n = self.retire_video(row.video_id)
        return f"forgot {path} ({n} events removed)"

    def _root_problem(self, rows: list[FileRow], missing: int) -> str | None:
        root = self.settings.watch_dir
        try:
            st = os.stat(root)
        except OSError:
            return f"the watch folder {root} is missing (not mounted?)"
        if not root.is_dir():
            return f"the watch folder {root} is not a folder"
        recorded = self.ledger.meta(META_ROOT_DEV)
        if recorded is not None and int(recorded) != st.st_dev and rows:
            if missing == 0:  # every known file is there: the folder simply moved to another disk
                self.ledger.set_meta(META_ROOT_DEV, str(st.st_dev))
                return None
            return (f"the watch folder {root} is on another filesystem than before (device {recorded} -> "
                    f"{st.st_dev}): a mount that has not come up?")
        if recorded is None:
            self.ledger.set_meta(META_ROOT_DEV, str(st.st_dev))
        return None

    def _set_brake(self, reason: str | None) -> None:
        current = read_brake(self.ledger)
        if reason is None:
            if current is not None:
                log.info("files are back: deleted files will be forgotten again after the grace period")
                self.ledger.set_meta(META_BRAKE, None)
            return
        if current is None or current.get("reason") != reason:
            log.warning("nothing is forgotten while %s", reason)
            self.ledger.set_meta(META_BRAKE, json.dumps({"reason": reason, "since": self.clock()}))

    def sweep(self, force: bool = False) -> SweepReport:
        """Forget files missing for longer than the grace period, unless the brake holds.
        ``force`` (``vidx verify --fix --confirm-deletions``) skips the grace period and the
        vanish ratio, never the check that the watch folder itself is there."""
        rows = self.ledger.rows()  # LedgerError propagates: never act on a ledger we cannot read
        now = self.clock()
        report = SweepReport(known=len(rows))
        missing = [r for r in rows if not os.path.exists(r.path)]
        report.missing = [r.path for r in missing]
        for r in rows:
            if r.missing_since is not None and r.path not in report.missing:
                self.ledger.set(r.path, missing_since=None)
        problem = self._root_problem(rows, len(missing))
        ratio = self.settings.vanish_brake
        if problem is None and not force and len(missing) > 1 and len(missing) > ratio * len(rows):
            problem = (f"{len(missing)} of {len(rows)} known files ({len(missing) / len(rows):.0%}) vanished at "
                       f"once, more than VIDX_VANISH_BRAKE={ratio:.0%}; if they were deleted on purpose run "
                       "`vidx verify --fix --confirm-deletions`")
        for r in missing:
            if r.missing_since is None:
                self.ledger.set(r.path, missing_since=now)
        self._set_brake(problem)
        report.brake = problem
        if problem is not None:
            return report
        for r in missing:
            since = r.missing_since if r.missing_since is not None else now
            if force or now - since >= self.settings.forget_after_seconds:
                line = self.forget(r.path)
                log.info("%s (missing since %s)", line, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)))
                report.forgotten.append(r.path)
        return report


def repair(report: Any, settings: Settings, ledger: Ledger, store: EventWriter,
           confirm_deletions: bool = False) -> tuple[list[str], str | None]:
    """``vidx verify --fix``: re-queue videos whose events are missing, forget deleted files
    by the same rules as the daemon, remove events nothing refers to. Returns one line per
    action, and the brake's reason when deleted files were kept."""
    done: list[str] = []
    for path in report.missing:
        ledger.set(path, state="pending", attempts=0, error=None)
        done.append(f"re-queued {path}")
    life = Lifecycle(settings, ledger, store)
    brake = None
    if report.gone:
        sweep = life.sweep(force=confirm_deletions)
        brake = sweep.brake
        done.extend(f"forgot {p} (file deleted)" for p in sweep.forgotten)
        waiting = [p for p in report.gone if p not in sweep.forgotten]
        if waiting and brake is None:
            done.append(f"{len(waiting)} missing file(s) are kept until they have been missing for "
                        f"{settings.forget_after_seconds:.0f}s (add --confirm-deletions to forget them now)")
    for path in report.leftovers:  # events of two analyses side by side: analyse again
        ledger.set(path, state="pending", attempts=0, error=None)
        done.append(f"re-queued {path} (events of an interrupted rewrite)")
    for vid, path in report.misplaced_ids.items():
        copies = [r for r in ledger.rows_for_video(vid) if os.path.exists(r.path)]
        if copies:
            keep = next((r for r in copies if r.state == "done"), copies[0])
            store.repoint_video(vid, keep.path)
            done.append(f"events of {path}'s previous content now play {keep.path}")
        elif ID_RE.match(vid):
            n = life.retire_video(vid)
            done.append(f"deleted {n} event(s) of {path}'s previous content (no copy remains)")
    if report.orphans:
        known = {r.video_id for r in ledger.rows() if r.video_id}  # read again: never act on a stale view
        for vid in report.orphans:
            if vid in known or not ID_RE.match(vid):
                continue
            n = life.retire_video(vid)
            done.append(f"deleted {n} orphan event(s) of video {vid}")
    for line in done:
        log.info("%s", line)
    return done, brake
