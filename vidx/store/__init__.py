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


def with_embed_model(settings: Settings, store: EventStore | None = None) -> Settings:
    """``settings`` with ``VIDX_EMBED_MODEL=auto`` made concrete (:func:`vidx.embed.effective_model`):
    the model the store was built with, else the default for a new store. A store that cannot
    be asked (Elasticsearch down) gets the default; the preflight check then says what differs."""
    from vidx.embed import AUTO, effective_model

    if settings.embed_model.strip().lower() != AUTO:
        return settings
    stored = None
    try:
        store = store if store is not None else open_store(settings, read_only=True)
        stored = getattr(store, "embedding_model", lambda: None)()
    except Exception:  # noqa: BLE001 - unreachable now: the default, and a clear error later if it differs
        stored = None
    return settings.model_copy(update={"embed_model": effective_model(settings.embed_model, stored)})
