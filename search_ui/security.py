"""Sign-in, sessions and CSRF for the web UI.

* ``VIDX_UI_API_KEY`` unset: no sign-in (the default binds to 127.0.0.1 only).
* Set: API clients send ``Authorization: Bearer KEY`` (or ``X-Api-Key``, or HTTP Basic with
  the key as password); browser users sign in once on ``/login`` and get a signed,
  HttpOnly, SameSite=Strict session cookie.
* Every state-changing request (upload, forms) made with a session (or without any key set)
  must carry the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``);
  requests authenticated by the key itself need none (no browser sends it by itself), nor do
  requests with ``Content-Type: application/json``: a page on another site cannot send one
  without a CORS preflight, which vidx never answers with permission.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from base64 import b64decode

from flask import session
from flask.wrappers import Request

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def session_secret(api_key: str | None) -> bytes:
    """Stable across restarts when a key is set (sessions survive), random otherwise."""
    if api_key:
        return hmac.new(api_key.encode(), b"vidx-session-v1", hashlib.sha256).digest()
    return os.urandom(32)


def key_from_headers(req: Request) -> str:
    header = req.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:]
    if header.startswith("Basic "):
        try:
            return b64decode(header[6:]).decode().split(":", 1)[-1]
        except (ValueError, UnicodeDecodeError):
            return ""
    return req.headers.get("X-Api-Key", "")


def key_matches(supplied: str, key: str) -> bool:
    return bool(supplied) and hmac.compare_digest(supplied.encode(), key.encode())


def csrf_token() -> str:
    tok = session.get("csrf")
    if not tok:
        tok = secrets.token_urlsafe(24)
        session["csrf"] = tok
    return str(tok)


def csrf_ok(req: Request) -> bool:
    want = session.get("csrf")
    got = req.headers.get("X-CSRF-Token") or req.form.get("csrf_token", "")
    return bool(want) and bool(got) and hmac.compare_digest(str(want).encode(), str(got).encode())
