"""`vidx verify`: ledger, store and watch folder agree, and --fix makes them agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.daemon import build_pipeline
from tests.fakes.embedder import HashEmbedder
from tests.store.test_contract import ev
from vidx import cli
from vidx.config import Settings
from vidx.store.embedded import EmbeddedStore


def _verify(s: Settings, *args: str) -> int:
    return cli.cmd_verify(cli.build_parser().parse_args(["verify", *args]), s)


def test_verify_finds_and_fixes_what_disagrees(settings: Settings, watch_copy: Callable[[str], Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    emb = HashEmbedder()
    monkeypatch.setattr("vidx.embed.load_embedder", lambda *a, **k: emb)
    store = EmbeddedStore(settings.store_path)
    pipeline = build_pipeline(settings, store=store, embedder_factory=lambda: emb)
    keep, lose, gone = watch_copy("keep"), watch_copy("lose"), watch_copy("gone")
    for n, p in enumerate((lose, gone), start=1):  # other bytes, so other video ids
        with open(p, "ab") as f:
            f.write(b"\0" * n)
    for p in (keep, lose, gone):
        assert pipeline.process(p).state == "done"
    assert _verify(settings) == 0 and capsys.readouterr().out.strip().endswith("ok")

    rows = {Path(r.path).name: r for r in pipeline.ledger.rows()}
    store.delete_video(rows["lose.mp4"].video_id)  # the store lost a video's events
    gone.unlink()  # a file deleted while the daemon was down
    store.replace_video_events("f" * 32, [ev("f" * 32, 0, 0, "an event of nobody")])  # an orphan
    assert _verify(settings, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == [str(lose)] and report["gone"] == [str(gone)]
    assert report["orphans"] == ["f" * 32] and report["ok"] is False

    assert _verify(settings, "--fix") == 0
    out = capsys.readouterr().out
    # a deleted file is kept for the grace period (VIDX_FORGET_AFTER_SECONDS), like the daemon does
    assert "kept until" in out and store.count(rows["gone.mp4"].video_id) > 0
    assert _verify(settings, "--fix", "--confirm-deletions") == 0
    capsys.readouterr()
    assert store.count("f" * 32) == 0 and store.count(rows["gone.mp4"].video_id) == 0
    assert store.count(rows["keep.mp4"].video_id) == rows["keep.mp4"].events
    states = {Path(r.path).name: r.state for r in pipeline.ledger.rows()}
    assert states == {"keep.mp4": "done", "lose.mp4": "pending"}  # gone.mp4 is forgotten
    assert pipeline.process(lose).state == "done"  # what the daemon does with a pending video
    assert _verify(settings) == 0


def test_verify_reports_another_embedding_model(settings: Settings, watch_copy: Callable[[str], Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    emb = HashEmbedder()
    assert build_pipeline(settings, store=EmbeddedStore(settings.store_path),
                          embedder_factory=lambda: emb).process(watch_copy("talk")).state == "done"
    other = HashEmbedder(dims=16)
    other.model_id = "test/other"
    monkeypatch.setattr("vidx.embed.load_embedder", lambda *a, **k: other)
    assert _verify(settings) == 1
    assert "vidx reindex" in capsys.readouterr().out


def test_replaced_content_repoints_old_events_at_the_copy_and_verify_notices_a_mismatch(
        settings: Settings, watch_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 2: a file's content is replaced while another path still holds the old bytes:
    the old events must play the copy, never the new pictures at the old path."""
    emb = HashEmbedder()
    monkeypatch.setattr("vidx.embed.load_embedder", lambda *a, **k: emb)
    store = EmbeddedStore(settings.store_path)
    pipeline = build_pipeline(settings, store=store, embedder_factory=lambda: emb)
    first, second = watch_copy("first"), watch_copy("second")
    for p in (first, second):
        assert pipeline.process(p).state == "done"
    old_id = pipeline.ledger.get(str(first)).video_id
    path_now = store.events_for_video(old_id)[0].video_path  # the copy the events point at
    replaced = Path(path_now)
    other = second if replaced == first else first
    with open(replaced, "ab") as f:  # new content at that path
        f.write(b"\0" * 7)
    assert pipeline.process(replaced).state == "done"
    new_id = pipeline.ledger.get(str(replaced)).video_id
    assert new_id != old_id
    assert {e.video_path for e in store.events_for_video(old_id)} == {str(other)}
    assert {e.video_path for e in store.events_for_video(new_id)} == {str(replaced)}
    assert _verify(settings) == 0
    capsys.readouterr()

    store.repoint_video(old_id, str(replaced))  # what the defect left behind
    assert _verify(settings, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["misplaced"] == [str(replaced)] and report["ok"] is False
    assert _verify(settings, "--fix") == 0
    assert f"now play {other}" in capsys.readouterr().out
    assert {e.video_path for e in store.events_for_video(old_id)} == {str(other)}
    assert _verify(settings) == 0


def test_verify_finds_leftovers_of_an_interrupted_rewrite(settings: Settings, watch_copy: Callable[[str], Path],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 14: events of an old and a new analysis side by side are found and fixed."""
    emb = HashEmbedder()
    monkeypatch.setattr("vidx.embed.load_embedder", lambda *a, **k: emb)
    store = EmbeddedStore(settings.store_path)
    pipeline = build_pipeline(settings, store=store, embedder_factory=lambda: emb)
    talk = watch_copy("talk")
    assert pipeline.process(talk).state == "done"
    row = pipeline.ledger.get(str(talk))
    events = store.events_for_video(row.video_id)
    extra = ev(row.video_id, 99, 1.0, "an event of an older analysis")
    extra.video_path = str(talk)
    store.replace_video_events(row.video_id, [*events, extra])  # one event too many
    assert _verify(settings, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["leftovers"] == [str(talk)] and report["missing"] == []
    assert _verify(settings, "--fix") == 0
    capsys.readouterr()
    assert pipeline.ledger.get(str(talk)).state == "pending"
    assert pipeline.process(talk).state == "done"
    assert store.count(row.video_id) == row.events
    assert _verify(settings) == 0


def test_verify_checks_the_vector_file_against_the_stored_vectors(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A large store's vector file (beside its vector graph) damaged in a few rows: `vidx verify`
    names it, `--fix` removes it, and the store builds it again from the stored vectors."""
    pytest.importorskip("usearch")
    from tests.store.test_ann import DIMS, _events, _plan, _vectors
    from vidx.ledger import Ledger

    store = EmbeddedStore(settings.store_path)
    store.ensure_schema("test", DIMS)
    store.replace_video_events("a" * 32, _events("a" * 32, _vectors(3000, 3)))
    store.ann.min_rows = 1000
    q = _vectors(1, 4)[0]
    want = [h.event.event_id for h in store.search(_plan(), q).hits]
    assert store.ann.ready.wait(60)
    assert store.check_indexes() == []
    path = settings.store_path.with_suffix(".vectors.i8.npy")

    def damage() -> None:
        with open(path, "r+b") as f:  # three rows changed in place
            for row in (10, 1500, 2998):  # not among the rows a loading process probes
                f.seek(128 + row * DIMS)
                f.write(bytes(range(1, 9)))

    damage()
    problems = store.check_indexes()
    assert len(problems) == 1 and "disagrees with the stored vectors in 3 of 3000 rows" in problems[0]
    assert "removed" in store.check_indexes(repair=True)[0] and not path.exists()
    fresh = EmbeddedStore(settings.store_path)
    fresh.ann.min_rows = 1000
    assert [h.event.event_id for h in fresh.search(_plan(), q).hits] == want
    assert fresh.ann.ready.wait(60) and path.exists() and fresh.check_indexes() == []

    damage()  # the same through the CLI (the ledger knows no video here: the events are orphans too)
    monkeypatch.setattr("vidx.embed.load_embedder", lambda *a, **k: HashEmbedder())
    Ledger(settings.ledger_path)
    assert _verify(settings) == 1
    assert "events.vectors.i8.npy disagrees with the stored vectors in 3 of 3000 rows" in capsys.readouterr().out
    _verify(settings, "--fix")
    assert "events.vectors.i8.npy disagrees" in capsys.readouterr().out and not path.exists()
