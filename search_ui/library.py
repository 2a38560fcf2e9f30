"""The library: every video as one entry (copies folded in), sorted, filtered and paged.

Entries come from the ledger (one row per file: state, size, duration, when it was added
and finished) and, for languages, from the store's per-video aggregate. A library of
ten thousand videos is a few milliseconds of Python here; the store is asked once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vidx.ledger import FileRow, iso_time

SORTS = {
    "newest": ("added", True),
    "oldest": ("added", False),
    "name": ("name", False),
    "longest": ("duration_sec", True),
    "events": ("events", True),
}
STATES = ("done", "processing", "pending", "failed", "missing")
MAX_SIZE = 200


class LibraryError(ValueError):
    """A library request that cannot be answered as asked (the message says why)."""


@dataclass(frozen=True)
class LibraryQuery:
    sort: str = "newest"
    state: str | None = None
    lang: str | None = None
    q: str = ""
    page: int = 1
    size: int = 24

    @classmethod
    def from_args(cls, args: dict[str, str], default_size: int = 24) -> LibraryQuery:
        sort = args.get("sort") or "newest"
        if sort not in SORTS:
            raise LibraryError(f"sort must be one of {', '.join(SORTS)}")
        state = args.get("state") or None
        if state is not None and state not in STATES:
            raise LibraryError(f"state must be one of {', '.join(STATES)}")
        try:
            page = int(args.get("page") or 1)
            size = int(args.get("size") or args.get("limit") or default_size)
        except ValueError:
            raise LibraryError("page and size must be whole numbers") from None
        if page < 1 or not 1 <= size <= MAX_SIZE:
            raise LibraryError(f"page starts at 1 and size is 1 to {MAX_SIZE}")
        if "offset" in args:  # the older offset/limit form: offset becomes the page holding it
            try:
                page = int(args["offset"]) // size + 1
            except ValueError:
                raise LibraryError("offset must be a whole number") from None
        lang = (args.get("lang") or "").strip().lower()[:16] or None
        return cls(sort=sort, state=state, lang=lang, q=(args.get("q") or "").strip()[:200], page=page, size=size)


def _state(rows: list[FileRow]) -> str:
    states = {"missing" if r.missing_since else r.state for r in rows}
    for s in ("done", "processing", "pending", "failed"):  # a copy that is done makes the video playable
        if s in states:
            return s
    return "missing"


def entries(rows: list[FileRow], languages: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One entry per video (per file while it has no id yet), copies listed under it."""
    groups: dict[str, list[FileRow]] = {}
    for r in rows:
        groups.setdefault(r.video_id or r.path, []).append(r)
    out = []
    for key, rs in groups.items():
        rs.sort(key=lambda r: (r.missing_since is not None, r.created_at, r.path))
        first = rs[0]
        added = min(r.created_at for r in rs)
        done = [r for r in rs if r.state == "done"]
        out.append({
            "video_id": first.video_id,
            "name": first.path.rsplit("/", 1)[-1],
            "paths": [r.path.rsplit("/", 1)[-1] for r in rs],
            "state": _state(rs),
            "events": max(r.events for r in rs),
            "duration_sec": first.duration_sec,
            "size_bytes": first.size,
            "added": added,
            "added_at": iso_time(added),
            "finished_at": iso_time(max(r.finished_at or r.updated_at for r in done)) if done else None,
            "languages": languages.get(first.video_id or "", []),
            "error": first.error if first.state == "failed" else None,
            "_key": key,
        })
    return out


def listing(rows: list[FileRow], languages: dict[str, list[str]], query: LibraryQuery) -> dict[str, Any]:
    """The page of the library that ``query`` asks for, with its total and the counts that
    narrow it (states and languages of the videos that match the name search)."""
    items = entries(rows, languages)
    if query.q:
        needle = query.q.casefold()
        items = [v for v in items if any(needle in p.casefold() for p in v["paths"])]
    facets = {"state": _counts(v["state"] for v in items),
              "language": _counts(lang for v in items for lang in v["languages"])}
    if query.state:
        items = [v for v in items if v["state"] == query.state]
    if query.lang:
        items = [v for v in items if any(x.startswith(query.lang[:2]) for x in v["languages"])]
    field, desc = SORTS[query.sort]
    items.sort(key=lambda v: v["name"].casefold())  # by name, and ties by name under the other keys
    if field != "name":
        items.sort(key=lambda v: (v[field] is None, -(v[field] or 0) if desc else (v[field] or 0)))
    total = len(items)
    pages = max(1, math.ceil(total / query.size))
    start = (query.page - 1) * query.size
    page = items[start:start + query.size]
    for v in page:
        v.pop("_key", None)
        v.pop("added", None)
    return {"total": total, "page": query.page, "pages": pages, "size": query.size, "sort": query.sort,
            "videos": page, "facets": facets}


def _counts(values: Any) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
