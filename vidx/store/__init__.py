"""Event stores behind one Protocol; :func:`open_store` picks one from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidx.store.base import EventStore, Hit, SearchMode, SearchResult, StoreError, WriteReport

if TYPE_CHECKING:
    from vidx.config import Settings

__all__ = ["EventStore", "Hit", "SearchMode", "SearchResult", "StoreError", "WriteReport", "open_store"]


def open_store(settings: Settings, read_only: bool = False) -> EventStore:
    """Elasticsearch when ``es_url`` is set (never a silent fallback), else the embedded store."""
    if settings.es_url:
        from vidx.store.elastic import ElasticStore

        return ElasticStore.from_settings(settings)
    from vidx.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.store_path, read_only=read_only)

