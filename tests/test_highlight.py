from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vidx.store.base import highlight, query_tokens, tokens


def test_cjk_bigrams() -> None:
    assert tokens("我是中国人") == ["我是", "是中", "中国", "国人"]
    assert tokens("Hello 世界!") == ["hello", "世界"]
    assert tokens("中") == ["中"]


def test_stop_words_are_not_highlighted() -> None:
    frags = highlight("The keeper of the light", "keeper of the beacon")
    assert frags == ["The <em>keeper</em> of the light"]
    assert query_tokens("of the") == ["of", "the"]  # a query of only stop words still searches


def test_highlight_escapes_everything_but_em() -> None:
    (frag,) = highlight('<b onclick="x">keeper</b> & co', "keeper")
    assert frag == '&lt;b onclick=&quot;x&quot;&gt;<em>keeper</em>&lt;/b&gt; &amp; co'


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=40))
def test_highlight_never_emits_other_markup(text: str, query: str) -> None:
    for frag in highlight(text, query):
        stripped = frag.replace("<em>", "").replace("</em>", "")
        assert "<" not in stripped and ">" not in stripped and '"' not in stripped
