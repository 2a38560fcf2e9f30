"""Saved searches and the outbox without a daemon: validation, backoff, restarts, deletion."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ingest.alerts import Alerts
from vidx.config import Settings
from vidx.notify import NotifyError
from vidx.saved import RETRY_CAP_S, Outbox, SavedSearches, SavedSearchIn, describe_target


class FlakyNotifier:
    def __init__(self) -> None:
        self.down = True
        self.sent: list[tuple[str, str, str]] = []

    def send(self, url: str, title: str, body: str, payload: dict[str, Any]) -> None:
        if self.down:
            raise NotifyError("the webhook cannot be reached: connection refused")
        self.sent.append((url, title, body))


class NoSearch:
    def search(self, query: Any) -> dict[str, Any]:
        raise AssertionError("not used")


def test_a_saved_search_is_validated_and_secrets_never_shown() -> None:
    with pytest.raises(ValidationError):
        SavedSearchIn(q="harbour", mode="fuzzy")
    with pytest.raises(ValidationError):
        SavedSearchIn(q="harbour", notify="harbour")
    with pytest.raises(ValidationError):
        SavedSearchIn(q="\x00  ")
    assert describe_target("tgram://123456:SECRET-TOKEN/987") == "tgram://123456"
    assert describe_target("mailto://me:pass@example.com") == "mailto://example.com"
    assert "SECRET" not in str(describe_target("ntfy://user:SECRET@ntfy.sh/topic"))


def test_an_unsent_notification_waits_longer_each_time_and_survives_a_restart(settings: Settings) -> None:
    saved = SavedSearches(settings.saved_searches_path)
    s = saved.add(SavedSearchIn(q="harbour", notify="json://127.0.0.1:9/hook"))
    box = Outbox(settings.alerts_path)
    payload = {"search": {"id": s.id, "q": "harbour", "mode": "hybrid"}, "total": 1,
               "video": {"id": "a" * 32, "name": "talk.mp4", "link": "http://x/videos/a"},
               "moments": [{"time": "00:26", "text": "the harbour at dawn", "link": "http://x/videos/a?t=26"}]}
    box.add(s.id, "a" * 32, payload)
    notifier = FlakyNotifier()
    alerts = Alerts(settings.model_copy(update={"alert_retry_seconds": 10.0}), NoSearch(), notifier)  # type: ignore[arg-type]
    assert alerts.deliver_due() == 0
    assert box.summary()[s.id]["waiting"] == 1 and "cannot be reached" in box.summary()[s.id]["last_error"]
    assert box.due() == []  # not due again before its pause
    waits = [box.failed(1, "down", 10.0) for _ in range(8)]
    assert waits[:3] == [20.0, 40.0, 80.0] and waits[-1] == RETRY_CAP_S
    # a restart (new objects on the same files) still has it; once the notifier is back it is sent once
    box2 = Outbox(settings.alerts_path)
    assert box2.due(now=10**12)[0].payload["moments"][0]["text"] == "the harbour at dawn"
    box2._conn().execute("UPDATE outbox SET next_at = 0")
    notifier.down = False
    alerts2 = Alerts(settings, NoSearch(), notifier)  # type: ignore[arg-type]
    assert alerts2.deliver_due() == 1 and alerts2.deliver_due() == 0
    (url, title, body) = notifier.sent[0]
    assert "harbour" in title and "00:26  the harbour at dawn" in body
    assert box2.summary()[s.id] == {"sent": 1, "waiting": 0, "last_sent": box2.summary()[s.id]["last_sent"],
                                    "last_error": None}


def test_deleting_a_saved_search_drops_its_unsent_notifications(settings: Settings) -> None:
    saved = SavedSearches(settings.saved_searches_path)
    s = saved.add(SavedSearchIn(q="harbour", notify="json://127.0.0.1:9/hook"))
    box = Outbox(settings.alerts_path)
    box.add(s.id, "a" * 32, {"video": {"name": "v"}, "total": 0, "search": {"q": "harbour"}, "moments": []})
    saved.delete(s.id)
    notifier = FlakyNotifier()
    notifier.down = False
    assert Alerts(settings, NoSearch(), notifier).deliver_due() == 0  # type: ignore[arg-type]
    assert notifier.sent == [] and box.rows("SELECT count(*) FROM outbox")[0][0] == 0
