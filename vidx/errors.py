"""Errors shared by the ingest side and the stores."""

from __future__ import annotations


class ServiceUnavailable(Exception):
    """A service vidx depends on (Elasticsearch, a VLM server) cannot be reached right now.

    The video is not at fault: the daemon keeps it pending and tries again later, without
    counting the attempt against VIDX_MAX_ATTEMPTS."""


class Cancelled(BaseException):
    """The daemon is stopping: the video goes back to pending and resumes on the next start.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that no ``except Exception`` in an
    analyzer or decoder loop can swallow a shutdown."""
