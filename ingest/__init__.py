"""The vidx ingest daemon: watch a folder, analyse videos, index their events."""
