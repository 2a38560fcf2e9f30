"""`vidx reindex`: re-analysis with another analyzer, and a rebuild of the store after an
embedding-model change (Elasticsearch: a new index and one alias swap; embedded: in place,
with reader processes following)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ingest.daemon  # noqa: F401  (patched below)
from tests.es_store import make_elastic_store
from tests.fakes.embedder import HashEmbedder
from tests.fakes.es_server import FakeES
from vidx import cli
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.store.embedded import EmbeddedStore


class NamedHashEmbedder(HashEmbedder):
    def __init__(self, model_id: str, dims: int) -> None:
        super().__init__(dims)
        self.model_id = model_id


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Callable[[str, int], None]:
    """Point the CLI at the test folders, and choose the embedding model it loads."""
    monkeypatch.setenv("VIDX_WATCH_DIR", str(settings.watch_dir))
    monkeypatch.setenv("VIDX_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VIDX_OCR", "false")
    monkeypatch.setenv("VIDX_ANALYZER", "basic")

    def use_model(model_id: str, dims: int) -> None:
        emb = NamedHashEmbedder(model_id, dims)
        monkeypatch.setattr("vidx.embed.load_embedder", lambda *a, **k: emb)
        monkeypatch.setattr("ingest.daemon.store_embedder", lambda *a, **k: emb)

    return use_model


def _lighthouse(store: Any, dims: int, model_id: str) -> list[Any]:
    q = NamedHashEmbedder(model_id, dims).embed_query("lighthouse keeper")
    return store.search_knn(q, 5).hits  # type: ignore[no-any-return]


def test_embedding_model_change_rebuilds_the_embedded_store(
        env: Callable[[str, int], None], settings: Settings, watch_copy: Callable[[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    video = watch_copy("talk")
    env("test/model-a", 64)
    assert cli.main(["index", "-q", str(video)]) == 0
    reader = EmbeddedStore(settings.store_path, read_only=True)  # like the web UI, open throughout
    before = reader.count()
    assert before > 0 and _lighthouse(reader, 64, "test/model-a")

    env("test/model-b", 32)
    assert cli.main(["reindex", "--only-other", "--analyzer", "basic"]) == 2  # a rebuild covers every video
    assert "drop --only-other" in capsys.readouterr().err
    assert cli.main(["reindex", "-q"]) == 0
    assert "rebuilt" in capsys.readouterr().out

    store = EmbeddedStore(settings.store_path)
    assert store.embedding_model() == "test/model-b" and store.count() == before
    assert store.schema_matches("test/model-b", 32) and not store.schema_matches("test/model-a", 64)
    hits = _lighthouse(reader, 32, "test/model-b")  # the open reader follows the new vectors
    assert hits and hits[0].event.embedding_model == "test/model-b"
    assert (hits[0].event.start_sec, hits[0].event.end_sec) == (26.0, 29.0)


def test_reindex_without_a_model_change_replaces_events_in_place(
        env: Callable[[str, int], None], settings: Settings, watch_copy: Callable[[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    video = watch_copy("talk")
    env("test/model-a", 64)
    assert cli.main(["index", "-q", str(video)]) == 0
    ids = {h.event.event_id for h in EmbeddedStore(settings.store_path).search_keyword("lighthouse", 50).hits}
    assert cli.main(["reindex", "-q"]) == 0
    assert "rebuilt" not in capsys.readouterr().out
    again = {h.event.event_id for h in EmbeddedStore(settings.store_path).search_keyword("lighthouse", 50).hits}
    assert again == ids  # deterministic ids: nothing duplicated, nothing lost
    # made by basic already: --only-other finds nothing to do
    assert cli.main(["reindex", "--analyzer", "basic", "--only-other"]) == 0
    assert "nothing to reindex" in capsys.readouterr().out
    assert cli.main(["reindex", "--only-other"]) == 2


def _elastic(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeES, Any]:
    fake = FakeES()
    monkeypatch.setenv("VIDX_ES_URL", "http://127.0.0.1:9200")
    def open_fake(s: Settings, read_only: bool = False) -> Any:
        return make_elastic_store(fake)

    monkeypatch.setattr("vidx.store.open_store", open_fake)
    monkeypatch.setattr("ingest.daemon.open_store", open_fake)
    return fake, make_elastic_store(fake)


def test_elastic_rebuild_writes_a_new_index_then_swaps_the_alias_once(
        env: Callable[[str, int], None], monkeypatch: pytest.MonkeyPatch, watch_copy: Callable[[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    fake, store = _elastic(monkeypatch)
    env("test/model-a", 64)
    assert cli.main(["index", "-q", str(watch_copy("talk")), str(watch_copy("second"))]) == 0
    (old_index,) = fake.aliases["vidx-events"]
    n = store.count()

    env("test/model-b", 32)
    seen_during: list[int] = []
    real_process = cli._process_files

    def spy(pipeline: Any, files: list[Path], progress: Any, quiet: bool) -> list[Path]:
        out = real_process(pipeline, files, progress, quiet)
        seen_during.append(store.count())  # searches still answer from the old index
        assert fake.aliases["vidx-events"] == [old_index]
        return out

    monkeypatch.setattr(cli, "_process_files", spy)
    fake.captured.clear()
    assert cli.main(["reindex", "-q"]) == 0
    (new_index,) = fake.aliases["vidx-events"]
    assert new_index != old_index and old_index not in fake.indices  # the old index is dropped
    assert seen_during == [n] and store.count() == n
    assert fake.indices[new_index]["mappings"]["properties"]["embedding"]["dims"] == 32
    assert _lighthouse(store, 32, "test/model-b")[0].event.embedding_model == "test/model-b"
    swaps = [c for c in fake.captured if c.path == "/_aliases"]
    assert len(swaps) == 1
    actions = swaps[0].json()["actions"]
    assert actions == [{"remove": {"index": old_index, "alias": "vidx-events"}},
                       {"add": {"index": new_index, "alias": "vidx-events", "is_write_index": True}}]
    assert f"now points at {new_index}" in capsys.readouterr().out
    from tests.store.test_elastic import CHECKER, _checker

    if CHECKER.exists():  # Elastic's API specification, in ../shared when present
        assert _checker().validate("indices.update_aliases", swaps[0].json()) == []


def test_failed_elastic_rebuild_leaves_the_alias_alone(
        env: Callable[[str, int], None], monkeypatch: pytest.MonkeyPatch, watch_copy: Callable[[str], Path],
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    fake, store = _elastic(monkeypatch)
    env("test/model-a", 64)
    good, bad = watch_copy("talk"), watch_copy("second")
    assert cli.main(["index", "-q", str(good), str(bad)]) == 0
    (old_index,) = fake.aliases["vidx-events"]
    n = store.count()
    bad.write_bytes(b"\x00" * 4096)  # the file broke since it was indexed

    env("test/model-b", 32)
    assert cli.main(["reindex", "-q", "--keep-old"]) == 1
    err = capsys.readouterr().err
    assert "unchanged" in err and "second.mp4" in err
    assert fake.aliases["vidx-events"] == [old_index] and list(fake.indices) == [old_index]
    assert store.count() == n  # everything users could find is still there
    rows = {Path(r.path).name: r for r in Ledger(settings.ledger_path).rows()}
    assert rows["second.mp4"].state == "failed" and rows["talk.mp4"].state == "done"


def test_rebuild_drops_videos_whose_files_are_gone(
        env: Callable[[str, int], None], settings: Settings, watch_copy: Callable[[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    env("test/model-a", 64)
    keep, gone = watch_copy("talk"), watch_copy("second")
    assert cli.main(["index", "-q", str(keep), str(gone)]) == 0
    gone.unlink()
    env("test/model-b", 32)
    assert cli.main(["reindex", "-q"]) == 0
    assert "1 video(s) whose files are gone" in capsys.readouterr().err
    store = EmbeddedStore(settings.store_path)
    paths = {h.event.video_path for h in store.search_keyword("lighthouse", 50).hits}
    assert paths == {str(keep)}
    assert len(store.video_event_counts()) == 1  # one video left, with its events
    assert np.isfinite(_lighthouse(store, 32, "test/model-b")[0].score)


def test_embed_only_reindex_rebuilds_from_the_stored_events_without_analysing_again(
        env: Callable[[str, int], None], settings: Settings, watch_copy: Callable[[str], Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    video = watch_copy("talk")
    env("test/model-a", 64)
    assert cli.main(["index", "-q", str(video)]) == 0
    reader = EmbeddedStore(settings.store_path, read_only=True)  # like the web UI, open throughout
    before = {h.event.event_id: h.event for h in reader.search_keyword("the", 100).hits}
    n = reader.count()
    assert n > 0 and _lighthouse(reader, 64, "test/model-a")
    video.unlink()  # no video is decoded again: even a library whose files are offline can switch
    monkeypatch.setattr("ingest.daemon.make_analyzer", lambda *a, **k: pytest.fail("analysed again"))

    env("test/model-b", 32)
    assert cli.main(["reindex", "--embed-only", "--analyzer", "basic"]) == 2
    assert cli.main(["reindex", "--embed-only", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"re-embedded {n} events of 1 videos with test/model-b (from test/model-a)" in out
    store = EmbeddedStore(settings.store_path)
    assert store.embedding_model() == "test/model-b" and store.count() == n
    after = {h.event.event_id: h.event for h in store.search_keyword("the", 100).hits}
    assert set(after) == set(before)
    for eid, e in after.items():  # every event as analysed, only its vector is new
        assert e.model_dump(exclude={"embedding", "embedding_model"}) == before[eid].model_dump(
            exclude={"embedding", "embedding_model"})
    hits = _lighthouse(reader, 32, "test/model-b")  # the open reader follows the new vectors
    assert hits[0].event.embedding_model == "test/model-b" and (hits[0].event.start_sec, hits[0].event.end_sec) == (
        26.0, 29.0)
    assert not list(settings.data_dir.glob("*.reembed-source"))
    assert cli.main(["reindex", "--embed-only"]) == 0
    assert "nothing to re-embed" in capsys.readouterr().out


def test_a_failed_embed_only_reindex_puts_the_store_back_as_it_was(
        env: Callable[[str, int], None], settings: Settings, watch_copy: Callable[[str], Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env("test/model-a", 64)
    assert cli.main(["index", "-q", str(watch_copy("talk"))]) == 0
    n = EmbeddedStore(settings.store_path).count()
    env("test/model-b", 32)

    def disk_full(self: EmbeddedStore, video_id: str, events: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(EmbeddedStore, "replace_video_events", disk_full)
    with pytest.raises(OSError):
        cli.main(["reindex", "--embed-only", "-q"])
    assert "back as it was" in capsys.readouterr().err
    store = EmbeddedStore(settings.store_path)
    assert store.embedding_model() == "test/model-a" and store.count() == n
    assert _lighthouse(store, 64, "test/model-a")


def test_embed_only_on_elasticsearch_builds_a_new_index_from_the_old_one(
        env: Callable[[str, int], None], monkeypatch: pytest.MonkeyPatch, watch_copy: Callable[[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    fake, store = _elastic(monkeypatch)
    env("test/model-a", 64)
    video = watch_copy("talk")
    assert cli.main(["index", "-q", str(video)]) == 0
    (old_index,) = fake.aliases["vidx-events"]
    n = store.count()
    video.unlink()
    env("test/model-b", 32)
    assert cli.main(["reindex", "--embed-only", "-q"]) == 0
    (new_index,) = fake.aliases["vidx-events"]
    assert new_index != old_index and store.count() == n
    assert store.embedding_model() == "test/model-b"
    assert _lighthouse(store, 32, "test/model-b")[0].event.start_sec == 26.0

