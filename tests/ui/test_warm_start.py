"""A server process prepares search as it starts: the query embedder and the index are loaded
in the background, so the first search does not wait for them; an empty library loads
nothing, and a model that cannot load is logged, not fatal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.store.embedded import EmbeddedStore


class CountingFactory:
    def __init__(self, emb: HashEmbedder, fail: bool = False) -> None:
        self.emb, self.fail, self.calls = emb, fail, 0

    def __call__(self) -> HashEmbedder:
        self.calls += 1
        if self.fail:
            raise RuntimeError("model file is missing")
        return self.emb


def _app(settings: Settings, factory: CountingFactory):  # type: ignore[no-untyped-def]
    from search_ui import create_app

    EmbeddedStore(settings.store_path).ensure_schema(factory.emb.model_id, factory.emb.dims)
    Ledger(settings.ledger_path)
    return create_app(settings, embedder_factory=factory)


def test_the_model_is_loaded_before_the_first_search(settings: Settings, hash_embedder: HashEmbedder,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from search_ui import warm_in_background

    add_video(settings, settings.watch_dir / "harbour.mp4",
              [{"dialogue": "the ferry leaves the harbour at noon", "start_sec": 1.0, "end_sec": 3.0}], hash_embedder)
    factory = CountingFactory(hash_embedder)
    app = _app(settings, factory)
    assert factory.calls == 0  # creating the app loads nothing (tests and keyword-only use stay light)
    with caplog.at_level(logging.INFO, logger="search_ui"):
        warm_in_background(app).join(30)
    assert factory.calls == 1
    assert any("search ready in" in r.getMessage() for r in caplog.records)
    r = app.test_client().get("/api/search?q=ferry+harbour&mode=hybrid")
    assert r.status_code == 200 and r.json["total"] == 1
    assert factory.calls == 1  # the search used the model loaded at start


def test_an_empty_library_loads_nothing(settings: Settings, hash_embedder: HashEmbedder) -> None:
    from search_ui import warm_in_background

    factory = CountingFactory(hash_embedder)
    warm_in_background(_app(settings, factory)).join(30)
    assert factory.calls == 0


def test_a_model_that_cannot_load_is_logged_and_searches_say_so(settings: Settings, hash_embedder: HashEmbedder,
                                                                 caplog: pytest.LogCaptureFixture,
                                                                 tmp_path: Path) -> None:
    from search_ui import warm_in_background

    add_video(settings, settings.watch_dir / "a.mp4", [{"dialogue": "budget meeting"}], hash_embedder)
    factory = CountingFactory(hash_embedder, fail=True)
    app = _app(settings, factory)
    with caplog.at_level(logging.WARNING, logger="search_ui"):
        warm_in_background(app).join(30)
    assert any("could not prepare search at start" in r.getMessage() and "model file is missing" in r.getMessage()
               for r in caplog.records)
    r = app.test_client().get("/api/search?q=budget&mode=keyword")
    assert r.status_code == 200 and r.json["total"] == 1  # keyword search never needed the model
