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


def test_whole_words_and_their_forms_are_marked_not_parts_of_words() -> None:
    (frag,) = highlight("Runners run_fast; RUN2 run2, rerun running. Cities!", "run city")
    assert frag == ("Runners <em>run</em>_fast; RUN2 run2, rerun <em>running</em>. "
                    "<em>Cities</em>!")
    (frag,) = highlight("北京run and run北京 run", "run")  # a CJK run ends a word; a word runs on
    assert frag == "北京<em>run</em> and run北京 <em>run</em>"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["run", "Runs", "running", "rerun", "city", "Cities", "a_run",
                                 "run2", "RUN", " ", ", ", "_", "x", "\n"]), max_size=40),
       st.sampled_from(["run", "city", "runs cities", "running", "run2"]))
def test_ascii_fast_path_marks_what_the_token_scan_marks(parts: list[str], query: str) -> None:
    from vidx.store.base import _ascii_spans, _highlight_terms, _token_spans

    text = "".join(parts)
    terms = _highlight_terms(query)
    found = terms.found(set(tokens_lower(text)))
    assert sorted(_ascii_spans(text.lower(), found)) == sorted(_token_spans(text, found, frozenset()))


def tokens_lower(text: str) -> list[str]:
    from vidx.text import TOKEN_RE

    return TOKEN_RE.findall(text.lower())
