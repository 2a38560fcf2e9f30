"""The embedded store's shortcuts for keyword queries with many matches give exactly the answer
of the plain computation: scores looked up in a table, and a phrase checked for the page's rows
only (totals, order, scores, facets)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from vidx.plan import Filters, Plan
from vidx.schema import Event, event_id_for
from vidx.store import embedded_search
from vidx.store.base import SearchMode
from vidx.store.embedded import EmbeddedStore

WORDS = ["harbour", "crane", "ship", "night", "rain", "light", "storm", "dock", "rope", "gull"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    rng = random.Random(4)
    st = EmbeddedStore(tmp_path_factory.mktemp("fast") / "events.sqlite3")
    for v in range(6):
        vid = f"{v:032x}"
        evs = [Event(event_id=event_id_for(vid, "t", i, i + 1, i), video_id=vid, video_path=f"/v/{v % 4}.mp4",
                     start_sec=float(i), end_sec=float(i + 1 + rng.random()), source=rng.choice(["subtitle", "speech"]),
                     dialogue=" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14))))
               for i in range(300)]
        st.replace_video_events(vid, evs)
    return st


def run(store: EmbeddedStore, text: str, offset: int = 0, size: int = 10, **flt: Any) -> tuple[Any, ...]:
    plan = Plan(mode=SearchMode.keyword, words=tuple(text.split()), phrase=text if " " in text else "",
                filters=Filters(**flt), threshold=0.25, size=size, offset=offset)
    res = store.search(plan)
    return res.total, [(h.event.event_id, h.score) for h in res.hits], res.facets, res.below


PLAIN = {"SCORE_TABLE_MIN_ROWS": 10**9, "LAZY_PHRASE_MIN_ROWS": 10**9}
FAST = {"SCORE_TABLE_MIN_ROWS": 0, "LAZY_PHRASE_MIN_ROWS": 0}


def both(monkeypatch: pytest.MonkeyPatch, store: EmbeddedStore, *args: Any, **kw: Any) -> tuple[Any, Any]:
    out = []
    for consts in (PLAIN, FAST):
        for k, v in consts.items():
            monkeypatch.setattr(embedded_search, k, v)
        out.append(run(store, *args, **kw))
    return out[0], out[1]


@pytest.mark.parametrize("text", ["harbour crane", "storm night rain", "gull", "rope dock ship light", "night night"])
def test_fast_paths_give_the_plain_answer(monkeypatch: pytest.MonkeyPatch, store: EmbeddedStore, text: str) -> None:
    want, got = both(monkeypatch, store, text)
    assert want[0] > 100 and (len({s for _, s in want[1]}) > 1 or " " not in text)  # many matches, scores differ
    assert got == want


def test_phrase_on_later_pages_filtered_and_rare(monkeypatch: pytest.MonkeyPatch, store: EmbeddedStore) -> None:
    want, got = both(monkeypatch, store, "harbour crane", offset=20, size=30)
    assert got == want and len(want[1]) == 30
    want, got = both(monkeypatch, store, "storm rain", source=("speech",))
    assert got == want and want[0] > 50
    # a phrase found in too few of the rows checked: looked up whole, same answer
    monkeypatch.setattr(embedded_search, "LAZY_PHRASE_CHECKS", 8)
    want, got = both(monkeypatch, store, "rope gull", size=40)
    assert got == want
    # the page's phrase rows really outrank the rest (what the shortcut relies on)
    phrase_rows = [s for _, s in got[1] if s >= 0.9]
    assert phrase_rows and got[1][: len(phrase_rows)] == [h for h in got[1] if h[1] >= 0.9]


def test_a_video_facet_counts_videos_of_one_name_together(monkeypatch: pytest.MonkeyPatch,
                                                          store: EmbeddedStore) -> None:
    _, got = both(monkeypatch, store, "harbour")
    assert len(got[2]["video"]) == 4 and sum(c for _, c in got[2]["video"]) == got[0]  # 6 videos, 4 file names
