"""Saved searches that notify: after a video is indexed, each saved search with a ``notify``
URL runs against that video; its matching moments become one notification in the outbox,
which a thread of the daemon delivers, retrying while the notifier is down."""

from __future__ import annotations

import logging
import threading
from typing import Any

from vidx.config import Settings
from vidx.notify import DefaultNotifier, Notifier, NotifyError
from vidx.saved import Outbox, SavedSearch, SavedSearches, describe_target
from vidx.schema import format_ts
from vidx.search import BadRequest, SearchService, parse_query
from vidx.store.base import StoreError

log = logging.getLogger("ingest.alerts")

MOMENTS_PER_NOTE = 10
SEND_EVERY_S = 1.0


class Alerts:
    def __init__(self, settings: Settings, search: SearchService, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.search = search
        self.notifier = notifier or DefaultNotifier()
        self.saved = SavedSearches(settings.saved_searches_path, read_only=True)
        self.outbox = Outbox(settings.alerts_path)
        self._wake = threading.Event()

    def after_indexed(self, video_id: str, name: str) -> int:
        """Queue one notification per saved search that matches this video; returns how many."""
        queued = 0
        try:
            searches = [s for s in self.saved.all() if s.notify]
        except Exception as exc:  # noqa: BLE001 (a broken file must not stop indexing)
            log.error("saved searches cannot be read: %s", exc)
            return 0
        for s in searches:
            try:
                payload = self._payload(s, video_id, name)
            except (BadRequest, StoreError) as exc:
                log.warning("saved search %s (%r) could not run on %s: %s", s.id, s.q, name, exc)
                continue
            if payload is None:
                continue
            self.outbox.add(s.id, video_id, payload)
            queued += 1
            log.info("%s matches the saved search %r: %d moment(s), notifying %s", name, s.q,
                     len(payload["moments"]), describe_target(s.notify))
        if queued:
            self._wake.set()
        return queued

    def _payload(self, s: SavedSearch, video_id: str, name: str) -> dict[str, Any] | None:
        query = parse_query({"q": s.q, "mode": s.mode, "min_score": s.min_score, "video_id": video_id,
                             "group": "moment", "size": MOMENTS_PER_NOTE})
        res = self.search.search(query)
        if not res["hits"]:
            return None
        base = self.settings.base_url
        moments = [{"start_sec": h["start_sec"], "end_sec": h["end_sec"], "time": format_ts(h["start_sec"]),
                    "text": (h["dialogue"] or h["description"] or h["ocr_text"])[:300], "score": round(h["score"], 3),
                    "link": f"{base}/videos/{video_id}?t={h['start_sec']:.2f}"} for h in res["hits"]]
        return {"search": {"id": s.id, "q": s.q, "mode": s.mode}, "total": res["total"],
                "video": {"id": video_id, "name": name, "link": f"{base}/videos/{video_id}"},
                "moments": moments}

    @staticmethod
    def message(payload: dict[str, Any]) -> tuple[str, str]:
        """The title and plain-text body of a notification."""
        n = payload["total"]
        title = f"vidx: “{payload['search']['q'][:80]}” in {payload['video']['name']}"
        lines = [f"{n} new moment{'' if n == 1 else 's'} in {payload['video']['name']}:"]
        lines += [f"{m['time']}  {m['text']}\n  {m['link']}" for m in payload["moments"]]
        if n > len(payload["moments"]):
            lines.append(f"… and {n - len(payload['moments'])} more: {payload['video']['link']}")
        return title, "\n".join(lines)

    def deliver_due(self) -> int:
        """Send what is due; a failure stays in the outbox for a later try. Returns how many were sent."""
        sent = 0
        for d in self.outbox.due():
            s = self.saved.get(d.search_id)
            if s is None or not s.notify:  # the search was deleted (or no longer notifies)
                self.outbox.drop(d.id)
                continue
            title, body = self.message(d.payload)
            try:
                self.notifier.send(s.notify, title, body, d.payload)
            except NotifyError as exc:
                wait = self.outbox.failed(d.id, str(exc), self.settings.alert_retry_seconds)
                log.warning("notification for %r to %s failed (%s); trying again in %.0fs", s.q,
                            describe_target(s.notify), exc, wait)
                continue
            except Exception as exc:  # noqa: BLE001 (a notifier's bug must not end the thread)
                wait = self.outbox.failed(d.id, f"unexpected error: {exc}", self.settings.alert_retry_seconds)
                log.exception("notification for %r failed; trying again in %.0fs", s.q, wait)
                continue
            self.outbox.sent(d.id)
            sent += 1
            log.info("notified %s: %r in %s", describe_target(s.notify), s.q, d.payload["video"]["name"])
        return sent

    def run(self, stop: threading.Event) -> None:
        """The delivery loop (a thread of the daemon)."""
        while not stop.is_set():
            try:
                self.deliver_due()
            except Exception as exc:  # noqa: BLE001
                log.error("notifications: %s", exc)
            self._wake.wait(SEND_EVERY_S)
            self._wake.clear()
