"""Query syntax people expect from a search box.

* ``"exact phrase"``: the words must appear together, in this order;
* ``-word`` (or ``-"a phrase"``): hits containing it are left out;
* ``person:NAME``, ``video:NAME_OR_ID``, ``source:speech|subtitle|scene|vlm``, ``lang:CODE``:
  filters (quotes allowed: ``person:"the keeper"``);
* ``speaker:NAME``: what that person said (``person:NAME`` limited to recognised speech).

Anything else, unknown ``field:`` prefixes and broken syntax included (an unbalanced quote,
a lone ``-``, ``person:`` with nothing after it), is searched as plain text: a query is
never an error because of its syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FILTERS = ("person", "video", "source", "lang", "speaker")
SOURCES = ("scene", "subtitle", "speech", "vlm")
_TOKEN = re.compile(r'(-?)(?:(\w+):)?(?:"([^"]*)"|(\S+))', re.UNICODE)


@dataclass
class ParsedQuery:
    text: str  # what is searched: free words and the words of the phrases
    phrases: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    person: list[str] = field(default_factory=list)
    video: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    lang: list[str] = field(default_factory=list)

    @property
    def has_filters(self) -> bool:
        return bool(self.exclude or self.person or self.video or self.source or self.lang or self.phrases)


def parse(q: str) -> ParsedQuery:
    if q.count('"') % 2:  # an unbalanced quote: the quote is just a character
        q = q.replace('"', " ")
    words: list[str] = []
    out = ParsedQuery(text="")
    for m in _TOKEN.finditer(q):
        neg, name, quoted, bare = m.group(1), m.group(2), m.group(3), m.group(4)
        value = (quoted if quoted is not None else bare or "").strip()
        key = (name or "").lower()
        if key in FILTERS:
            if not value:
                continue  # "person:" with nothing after it
            if key == "source" and value.lower() not in SOURCES:
                words.append(value)
                continue
            if key == "speaker":
                out.person.append(value)
                if "speech" not in out.source:
                    out.source.append("speech")
                continue
            getattr(out, key).append(value.lower() if key in ("source", "lang") else value)
            continue
        if name and key not in FILTERS:  # unknown prefix: plain text
            value = f"{name}:{value}" if quoted is None else f"{name} {value}"
        if neg:
            if value and value != "-":
                out.exclude.append(value)
            continue
        if not value:
            continue
        if quoted is not None:
            out.phrases.append(value)
        words.append(value)
    out.text = " ".join(words).strip()
    return out
