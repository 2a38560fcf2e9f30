"""Sending a notification: Apprise for its many services (``json://``, ``ntfy://``,
``mailto://``, ``tgram://``, …), a plain JSON POST for an ``http(s)://`` webhook."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any, Protocol

from vidx import __version__

log = logging.getLogger("vidx.notify")

TIMEOUT_S = 15.0


class NotifyError(RuntimeError):
    """A notification was not delivered (the message says why; it is tried again later)."""


class Notifier(Protocol):
    def send(self, url: str, title: str, body: str, payload: dict[str, Any]) -> None:
        """Deliver one notification or raise :class:`NotifyError`."""
        ...


class DefaultNotifier:
    """http(s):// gets ``payload`` as a JSON POST; every other scheme goes through Apprise."""

    def send(self, url: str, title: str, body: str, payload: dict[str, Any]) -> None:
        if url.startswith(("http://", "https://")):
            self._post(url, payload)
        else:
            self._apprise(url, title, body)

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        req = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": f"vidx/{__version__}"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 (a URL the user saved)
                resp.read(1024)
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"the webhook answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotifyError(f"the webhook cannot be reached: {reason}") from None

    def _apprise(self, url: str, title: str, body: str) -> None:
        import apprise

        ap = apprise.Apprise()
        if not ap.add(url):
            raise NotifyError("not a notification URL Apprise knows (see its list of services)")
        ok = ap.notify(title=title, body=body)
        if not ok:
            raise NotifyError("the notification service did not accept it (is it reachable?)")
