"""A test double at the transport seam of the official Elasticsearch client.

``CaptureNode`` records every request exactly as the client sends it (method, path,
query, headers, body) and answers in Elasticsearch's response format from ``FakeES``, a
small in-memory emulation of the APIs vidx uses: index templates, aliases, strict
mappings, ``_bulk`` with per-item results, ``_search`` (bool/multi_match/term/ids, knn,
rrf retriever, highlight, ``terms`` aggregations that honour ``size`` and ``composite``
aggregations paged with ``after``), ``_msearch``, ``_count``, ``_delete_by_query``,
``_update_by_query`` (the one painless script vidx sends), ``_license``.  Faults can be
injected: per-item bulk failures and 429 rejections.

It is independent of the code under test: it imports nothing from vidx, and has its own
tokenizer (lowercase words, a light English stemmer, CJK bigrams, like the ``zh_en`` and
``english`` analyzers of the index template) and its own highlighter, so it cannot agree
with a bug in vidx's tokenizer or highlighter by construction. ``serve(fake)`` puts it on
a loopback HTTP port for tests that run the real ``vidx`` command.
"""

from __future__ import annotations

import html as _html
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "it", "this", "that"}


def _stem(w: str) -> str:
    for suf, rep, minlen in (("ies", "y", 5), ("ing", "", 6), ("ed", "", 5), ("es", "", 5), ("s", "", 4)):
        if w.endswith(suf) and len(w) >= minlen and not w.endswith("ss"):
            return w[: len(w) - len(suf)] + rep
    return w


def tokens(text: str, limit: int | None = None, keep_stop: bool = False) -> list[str]:
    """The fake's analyzer: words lowercased and lightly stemmed; CJK runs as bigrams. Stop words
    are dropped (``keep_stop`` keeps them, for phrase positions)."""
    out: list[str] = []
    for m in _WORD.finditer(str(text).lower()):
        w = m.group(0)
        if _CJK.search(w):
            chars = [c for c in w if _CJK.match(c)]
            rest = "".join(c for c in w if not _CJK.match(c))
            out.extend(chars[i] + chars[i + 1] for i in range(len(chars) - 1)) if len(chars) > 1 else out.extend(chars)
            if rest:
                out.append(_stem(rest))
        elif keep_stop or w not in _STOP:
            out.append(_stem(w))
        if limit is not None and len(out) >= limit:
            break
    return out


def highlight(text: str, query: str, max_fragments: int = 3, fragment_chars: int = 160) -> list[str]:
    """Whole words whose stem (or CJK bigram) matches a query token, in <em>; the rest
    escaped as Elasticsearch's ``encoder: html`` does."""
    q = set(tokens(query))
    if not q or not text:
        return []
    spans = []
    for m in _WORD.finditer(text):
        toks = tokens(m.group(0))
        if toks and any(t in q for t in toks):
            spans.append((m.start(), m.end()))
    if not spans:
        return []
    frags, used = [], -1
    for a, _b in spans:
        if a < used or len(frags) >= max_fragments:
            continue
        lo = max(0, a - fragment_chars // 2)
        hi = min(len(text), lo + fragment_chars)
        inner = [(x, y) for x, y in spans if x >= lo and y <= hi]
        out, pos = [], lo
        for x, y in inner:
            out.append(_html.escape(text[pos:x]))
            out.append("<em>" + _html.escape(text[x:y]) + "</em>")
            pos = y
        out.append(_html.escape(text[pos:hi]))
        frags.append("".join(out))
        used = hi
    return frags


@dataclass
class Captured:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: str | None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class FakeES:
    version: str = "9.1.0"
    license: str = "basic"
    templates: dict[str, Any] = field(default_factory=dict)
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"mappings", "docs"}
    aliases: dict[str, list[str]] = field(default_factory=dict)
    captured: list[Captured] = field(default_factory=list)
    item_failures: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # _id -> (status, type, reason)
    reject_bulk_items: int = 0  # answer this many bulk items with 429 before accepting
    down: bool = False  # refuse connections, like a stopped server

    # ---------------------------------------------------------------- dispatch
    def handle(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        u = urlsplit(target)
        params = {k: v[0] for k, v in parse_qs(u.query).items()}
        text = body.decode() if body else None
        path = unquote(u.path)
        self.captured.append(Captured(method, path, params, headers, text))
        parts = [p for p in path.split("/") if p]
        data = None
        if text and not path.endswith(("_bulk", "_msearch")):
            data = json.loads(text)
        if not parts:
            return 200, {"name": "fake", "cluster_name": "fake", "version": {"number": self.version},
                         "tagline": "You Know, for Search"}
        if parts[0] == "_index_template":
            self.templates[parts[1]] = data
            return 200, {"acknowledged": True}
        if parts[0] == "_alias":
            if parts[1] not in self.aliases:
                return 404, {"error": f"alias [{parts[1]}] missing", "status": 404}
            return 200, {i: {"aliases": {parts[1]: {}}} for i in self.aliases[parts[1]]}
        if parts[0] == "_aliases":
            return self.update_aliases((data or {}).get("actions", []))
        if parts[0] == "_license":
            return 200, {"license": {"type": self.license, "status": "active"}}
        if parts[0] == "_cluster":
            return 200, {"status": "green"}
        if parts[0] == "_bulk":
            return self.bulk(text or "")
        if parts[0] == "_msearch" or (len(parts) > 1 and parts[1] == "_msearch"):
            lines = [json.loads(x) for x in (text or "").splitlines() if x.strip()]
            return 200, {"responses": [self.search(lines[i]["index"], lines[i + 1])[1]
                                       for i in range(0, len(lines), 2)]}
        name = parts[0]
        if len(parts) == 1:
            if method == "HEAD":
                return (200, {}) if name in self.indices else (404, {})
            if method == "PUT":
                return self.create_index(name, data or {})
            if method == "DELETE":
                names = [n for n in name.split(",") if n in self.indices]
                if not names and params.get("ignore_unavailable") != "true":
                    return 404, {"error": {"type": "index_not_found_exception", "reason": name}, "status": 404}
                for n in names:
                    del self.indices[n]
                    for members in self.aliases.values():
                        if n in members:
                            members.remove(n)
                return 200, {"acknowledged": True}
        op = parts[1]
        if op == "_mapping":
            return 200, {i: {"mappings": self.indices[i]["mappings"]} for i in self.resolve(name)}
        if op == "_search":
            q = dict(data or {})
            for k in ("size",):
                if k in params:
                    q[k] = int(params[k])
            if "_source_excludes" in params:
                q["_source"] = {"excludes": params["_source_excludes"].split(",")}
            if "_source_includes" in params:
                q["_source"] = {"includes": params["_source_includes"].split(",")}
            return self.search(name, q)
        if op == "_count":
            docs = self.docs(name)
            query = (data or {}).get("query")
            return 200, {"count": sum(1 for d in docs.values() if self.matches(query, d)[0])}
        if op == "_delete_by_query":
            return self.delete_by_query(name, (data or {}).get("query"))
        if op == "_update_by_query":
            return self.update_by_query(name, data or {})
        return 400, {"error": {"type": "illegal_argument_exception", "reason": f"fake: no route {method} {path}"},
                     "status": 400}

    # ---------------------------------------------------------------- indices
    def create_index(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        tpl = next((t for t in self.templates.values()
                    if any(name.startswith(p.rstrip("*")) for p in t.get("index_patterns", []))), None)
        mappings = (tpl or {}).get("template", {}).get("mappings", {"properties": {}})
        self.indices[name] = {"mappings": json.loads(json.dumps(mappings)), "docs": {}}
        for alias in (body.get("aliases") or {}):
            self.aliases.setdefault(alias, []).append(name)
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def update_aliases(self, actions: list[dict[str, Any]]) -> tuple[int, Any]:
        """All actions or none, like Elasticsearch's atomic ``_aliases``."""
        aliases = {k: list(v) for k, v in self.aliases.items()}
        for a in actions:
            (op, spec), = a.items()
            if spec["index"] not in self.indices:
                return 404, {"error": {"type": "index_not_found_exception", "reason": spec["index"]}, "status": 404}
            members = aliases.setdefault(spec["alias"], [])
            if op == "add" and spec["index"] not in members:
                members.append(spec["index"])
            elif op == "remove":
                members.remove(spec["index"])
        self.aliases = aliases
        return 200, {"acknowledged": True}

    def resolve(self, name: str) -> list[str]:
        if name in self.aliases:
            return self.aliases[name]
        if name in self.indices:
            return [name]
        raise KeyError(name)

    def docs(self, name: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in self.resolve(name):
            out.update(self.indices[i]["docs"])
        return out

    # ---------------------------------------------------------------- bulk
    def bulk(self, text: str) -> tuple[int, Any]:
        lines = [json.loads(x) for x in text.splitlines() if x.strip()]
        items, errors, i = [], False, 0
        while i < len(lines):
            action = lines[i]
            op, meta = next(iter(action.items()))
            src = lines[i + 1] if op in ("index", "create") else None
            i += 2 if src is not None else 1
            index = self.resolve(meta["_index"])[-1]
            _id = str(meta["_id"])
            res: dict[str, Any] = {"_index": index, "_id": _id}
            if self.reject_bulk_items > 0:
                self.reject_bulk_items -= 1
                res.update(status=429, error={"type": "es_rejected_execution_exception",
                                              "reason": "rejected execution (queue capacity 200)"})
            elif _id in self.item_failures:
                st, et, reason = self.item_failures[_id]
                res.update(status=st, error={"type": et, "reason": reason})
            else:
                unknown = set(src or {}) - set(self.indices[index]["mappings"].get("properties", {}))
                if unknown:
                    res.update(status=400, error={"type": "strict_dynamic_mapping_exception",
                                                  "reason": f"mapping set to strict, dynamic introduction of "
                                                            f"{sorted(unknown)} is not allowed"})
                else:
                    created = _id not in self.indices[index]["docs"]
                    self.indices[index]["docs"][_id] = src
                    res.update(status=201 if created else 200, result="created" if created else "updated")
            errors = errors or "error" in res
            items.append({op: res})
        return 200, {"took": 1, "errors": errors, "items": items}

    def delete_by_query(self, name: str, query: Any) -> tuple[int, Any]:
        n = 0
        for i in self.resolve(name):
            docs = self.indices[i]["docs"]
            for _id in [k for k, d in docs.items() if self.matches(query, d)[0]]:
                del docs[_id]
                n += 1
        return 200, {"deleted": n, "total": n, "failures": []}

    def update_by_query(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        script = body.get("script") or {}
        src, params = script.get("source", ""), script.get("params", {})
        sets = re.findall(r"ctx\._source\.(\w+)\s*=\s*params\.(\w+)", src)
        if not sets:
            return 400, {"error": {"type": "script_exception", "reason": f"fake: cannot run {src!r}"}, "status": 400}
        n = 0
        for i in self.resolve(name):
            for d in self.indices[i]["docs"].values():
                if self.matches(body.get("query"), d)[0]:
                    for fld, p in sets:
                        d[fld] = params[p]
                    n += 1
        return 200, {"updated": n, "total": n, "failures": []}

    # ---------------------------------------------------------------- search
    def matches(self, q: Any, d: dict[str, Any], _id: str = "") -> tuple[bool, float]:
        if not q or "match_all" in q:
            return True, 1.0
        if "match_none" in q:
            return False, 0.0
        if "bool" in q:
            b = q["bool"]
            for f in _as_list(b.get("filter")):
                if not self.matches(f, d, _id)[0]:
                    return False, 0.0
            for f in _as_list(b.get("must_not")):
                if self.matches(f, d, _id)[0]:
                    return False, 0.0
            score = 0.0
            for f in _as_list(b.get("must")):
                ok, s = self.matches(f, d, _id)
                if not ok:
                    return False, 0.0
                score += s
            should = _as_list(b.get("should"))
            if should:
                got = [self.matches(f, d, _id) for f in should]
                n_ok = sum(1 for ok, _ in got if ok)
                # ES: with no must/filter clause at least one should clause must match
                need = b.get("minimum_should_match", 0 if (b.get("must") or b.get("filter")) else 1)
                if n_ok < int(need):
                    return False, 0.0
                score += sum(s for ok, s in got if ok)
            return True, score or 1.0
        if "exists" in q:
            return d.get(q["exists"]["field"]) not in (None, [], ""), 1.0
        if "script_score" in q:  # the one script vidx sends: cosine + 1 (ES's documented exact kNN)
            ss = q["script_score"]
            ok, _ = self.matches(ss["query"], d, _id)
            script = ss["script"]
            if script["source"] != "cosineSimilarity(params.query_vector, 'embedding') + 1.0":
                raise ValueError(f"fake ES does not emulate script {script['source']!r}")
            if not ok or "embedding" not in d:
                return False, 0.0
            v = np.asarray(d["embedding"], dtype=np.float64)
            qv = np.asarray(script["params"]["query_vector"], dtype=np.float64)
            score = float(v @ qv / (np.linalg.norm(v) * np.linalg.norm(qv) or 1.0)) + 1.0
            if "min_score" in ss and score < float(ss["min_score"]):
                return False, 0.0
            return True, score
        if "function_score" in q:  # no functions: the query's score, held to min_score
            fs = q["function_score"]
            assert not fs.get("functions"), "fake ES emulates function_score without functions only"
            ok, sc = self.matches(fs["query"], d, _id)
            if not ok or sc < float(fs.get("min_score", float("-inf"))):
                return False, 0.0
            return True, sc
        if "dis_max" in q:
            got = [self.matches(x, d, _id) for x in q["dis_max"]["queries"]]
            best = max((sc for ok, sc in got if ok), default=None)
            return (best is not None), (best or 0.0)
        if "constant_score" in q:
            cs = q["constant_score"]
            ok = self.matches(cs["filter"], d, _id)[0]
            return ok, float(cs.get("boost", 1.0)) if ok else 0.0
        if "terms" in q:
            (fld, vals), = q["terms"].items()
            have = d.get(fld)
            have_l = have if isinstance(have, list) else [have]
            return any(v in vals for v in have_l), 1.0
        if "wildcard" in q:
            (fld, spec), = q["wildcard"].items()
            pat = spec["value"] if isinstance(spec, dict) else spec
            ci = isinstance(spec, dict) and spec.get("case_insensitive", False)
            rx = re.compile(_wildcard_regex(pat), re.IGNORECASE if ci else 0)
            have = d.get(fld)
            return any(rx.fullmatch(str(v)) for v in (have if isinstance(have, list) else [have]) if v is not None), 1.0
        if "prefix" in q:
            (fld, spec), = q["prefix"].items()
            val = spec["value"] if isinstance(spec, dict) else spec
            ci = isinstance(spec, dict) and spec.get("case_insensitive", False)
            have = str(d.get(fld) or "")
            return (have.lower().startswith(val.lower()) if ci else have.startswith(val)), 1.0
        if "range" in q:
            (fld, spec), = q["range"].items()
            v = d.get(fld)
            if v is None:
                return False, 0.0
            ok = all(cmp(v, spec[op]) for op, cmp in (("gt", lambda a, b: a > b), ("gte", lambda a, b: a >= b),
                                                      ("lt", lambda a, b: a < b), ("lte", lambda a, b: a <= b))
                     if op in spec)
            return ok, 1.0
        if "term" in q:
            (fld, val), = q["term"].items()
            val = val["value"] if isinstance(val, dict) else val
            have = d.get(fld)
            return (val in have if isinstance(have, list) else have == val), 1.0
        if "ids" in q:
            return _id in q["ids"]["values"], 1.0
        if "multi_match" in q and q["multi_match"].get("type") == "phrase":
            mm = q["multi_match"]
            want = tokens(mm["query"], keep_stop=True)
            for f in mm["fields"]:
                v = d.get(f.partition("^")[0].split(".")[0])
                have = tokens(" ".join(v) if isinstance(v, list) else str(v or ""), keep_stop=True)
                if want and any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1)):
                    return True, 1.0
            return False, 0.0
        if "multi_match" in q and "fuzziness" in q["multi_match"]:
            mm = q["multi_match"]
            low, high = (int(x) for x in mm["fuzziness"].removeprefix("AUTO:").split(","))
            prefix = int(mm.get("prefix_length", 0))
            for qt in tokens(mm["query"], keep_stop=True):
                k = 0 if len(qt) < low else 1 if len(qt) < high else 2
                for f in mm["fields"]:
                    v = d.get(f.partition("^")[0].split(".")[0])
                    for t in tokens(" ".join(v) if isinstance(v, list) else str(v or ""), keep_stop=True):
                        if t[:prefix] == qt[:prefix] and _edits(qt, t) <= k:
                            return True, 1.0
            return False, 0.0
        if "multi_match" in q:
            mm = q["multi_match"]
            qt = set(tokens(mm["query"]))
            score = 0.0
            for f in mm["fields"]:
                name, _, boost = f.partition("^")
                base = name.split(".")[0]
                v = d.get(base)
                text = " ".join(v) if isinstance(v, list) else str(v or "")
                score += float(boost or 1) * sum(1 for t in tokens(text) if t in qt)
            return score > 0, score
        if "match" in q:
            (fld, val), = q["match"].items()
            qt = set(tokens(val if isinstance(val, str) else val["query"]))
            n = sum(1 for t in tokens(str(d.get(fld, ""))) if t in qt)
            return n > 0, float(n)
        raise ValueError(f"fake ES does not emulate query {q}")

    def _knn(self, knn: dict[str, Any], docs: dict[str, dict[str, Any]]) -> list[tuple[str, float]]:
        qv = np.asarray(knn["query_vector"], dtype=np.float64)
        flt = knn.get("filter")
        flt = {"bool": {"filter": flt if isinstance(flt, list) else [flt]}} if flt else None
        similarity = knn.get("similarity")  # for cosine: the raw cosine, not the _score
        scored = []
        for _id, d in docs.items():
            if "embedding" not in d or not self.matches(flt, d, _id)[0]:
                continue
            v = np.asarray(d["embedding"], dtype=np.float64)
            cos = float(v @ qv / (np.linalg.norm(v) * np.linalg.norm(qv) or 1.0))
            if similarity is not None and cos < float(similarity):
                continue
            scored.append((_id, (1 + cos) / 2 * float(knn.get("boost", 1.0))))
        scored.sort(key=lambda x: -x[1])
        return scored[: min(knn["k"], knn["num_candidates"])]

    def _hit(self, index: str, _id: str, score: float, d: dict[str, Any], body: dict[str, Any],
             text: str) -> dict[str, Any]:
        spec = body.get("_source", {})
        spec = {} if spec is True else {"includes": []} if spec is False else spec
        src = {k: v for k, v in d.items() if k not in spec.get("excludes", [])
               and ("includes" not in spec or k in spec["includes"])}
        h: dict[str, Any] = {"_index": index, "_id": _id, "_score": score, "_source": src}
        hl = body.get("highlight")
        if hl and text:
            out = {}
            for f, opts in hl["fields"].items():
                qtext = text
                hq = opts.get("highlight_query")
                if hq:
                    qtext = next(iter(hq["match"].values()))
                frags = highlight(str(d.get(f, "")), qtext, max_fragments=opts.get("number_of_fragments", 5))
                if frags:
                    out[f] = frags
            if out:
                h["highlight"] = out
        return h

    def search(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            indices = self.resolve(name)
        except KeyError:
            return 404, {"error": {"type": "index_not_found_exception", "reason": f"no such index [{name}]"},
                         "status": 404}
        docs = self.docs(name)
        size = int(body.get("size", 10))
        text = _query_text(body)
        if "retriever" in body:
            if self.license not in ("enterprise", "trial"):
                return 403, {"error": {"type": "security_exception", "reason": "current license is non-compliant "
                                       "for [Reciprocal Rank Fusion (RRF)]"}, "status": 403}
            rrf = body["retriever"]["rrf"]
            lists = []
            for r in rrf["retrievers"]:
                if "standard" in r:
                    q = r["standard"]["query"]
                    lst = sorted(((i, s) for i, d in docs.items() for ok, s in [self.matches(q, d, i)] if ok),
                                 key=lambda x: -x[1])
                else:
                    lst = self._knn(r["knn"], docs)
                lists.append(lst[: rrf["rank_window_size"]])
            scores: dict[str, float] = {}
            for lst in lists:
                for rank, (i, _) in enumerate(lst, 1):
                    scores[i] = scores.get(i, 0) + 1 / (rrf["rank_constant"] + rank)
            ranked = sorted(scores.items(), key=lambda x: -x[1])
        elif "knn" in body and "query" in body:  # hybrid: the union, scores summed (ES's linear combination)
            found: dict[str, float] = {}
            for i, sc in self._knn(body["knn"], docs):
                found[i] = found.get(i, 0.0) + sc
            for i, d in docs.items():
                ok, sc = self.matches(body["query"], d, i)
                if ok:
                    found[i] = found.get(i, 0.0) + sc
            ranked = sorted(found.items(), key=lambda x: (-x[1], x[0]))
        elif "knn" in body:
            ranked = self._knn(body["knn"], docs)
        else:
            ranked = sorted(((i, s) for i, d in docs.items() for ok, s in [self.matches(body.get("query"), d, i)]
                             if ok), key=lambda x: (-x[1], x[0]))
        sort_keys: list[tuple[str, str]] = []
        for spec in body.get("sort") or []:
            (fld, how), = (spec.items() if isinstance(spec, dict) else [(spec, "asc")])
            sort_keys.append((fld, how if isinstance(how, str) else how.get("order", "asc")))
        sort_values: dict[str, list[Any]] = {}
        if sort_keys:
            for fld, how in reversed(sort_keys):
                if fld == "_score":
                    ranked.sort(key=lambda x: x[1], reverse=(how != "asc"))
                else:
                    ranked.sort(key=lambda x, f=fld: docs[x[0]].get(f), reverse=(how == "desc"))
            sort_values = {i: [sc if f == "_score" else docs[i].get(f) for f, _ in sort_keys] for i, sc in ranked}
            if "search_after" in body:
                after = body["search_after"]
                ranked = [(i, sc) for i, sc in ranked if sort_values[i] > after]
        start = int(body.get("from", 0))
        cap = body.get("track_total_hits", 10_000)
        cap = 10_000 if cap is True or cap is None else (1 << 62 if cap is False else int(cap))
        total = {"value": min(len(ranked), cap), "relation": "eq" if len(ranked) <= cap else "gte"}
        resp: dict[str, Any] = {"took": 1, "timed_out": False,
                                "hits": {"total": total,
                                         "max_score": ranked[0][1] if ranked else None,
                                         "hits": [self._hit(indices[-1], i, s, docs[i], body, text)
                                                  | ({"sort": sort_values[i]} if sort_keys else {})
                                                  for i, s in ranked[start:start + size]]}}
        if "aggs" in body:
            resp["aggregations"] = {aname: self._agg(agg, [docs[i] for i, _ in ranked])
                                    for aname, agg in body["aggs"].items()}
        return 200, resp

    @staticmethod
    def _agg(agg: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
        if "terms" in agg:
            fld, size = agg["terms"]["field"], int(agg["terms"].get("size", 10))  # ES's default size is 10
            fld = fld.removesuffix(".keyword")  # the fake keeps one value per field
            counts: dict[str, int] = {}
            for d in docs:
                vals = d.get(fld) if isinstance(d.get(fld), list) else ([d[fld]] if fld in d else [])
                for v in dict.fromkeys(vals):
                    counts[v] = counts.get(v, 0) + 1
            top = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
            return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": sum(v for _, v in top[size:]),
                    "buckets": [{"key": k, "doc_count": v} for k, v in top[:size]]}
        if "date_histogram" in agg:  # calendar_interval "day" only, keys formatted yyyy-MM-dd
            dh = agg["date_histogram"]
            assert dh.get("calendar_interval") == "day", dh
            days: dict[str, int] = {}
            for d in docs:
                if d.get(dh["field"]):
                    day = str(d[dh["field"]])[:10]
                    days[day] = days.get(day, 0) + 1
            return {"buckets": [{"key_as_string": k, "doc_count": v} for k, v in sorted(days.items())
                                if v >= int(dh.get("min_doc_count", 0))]}
        if "composite" in agg:
            comp = agg["composite"]
            size = int(comp.get("size", 10))
            names = [next(iter(src)) for src in comp["sources"]]
            fields = [src[n]["terms"]["field"] for src, n in zip(comp["sources"], names)]
            counts2: dict[tuple[Any, ...], int] = {}
            for d in docs:
                if all(f in d for f in fields):
                    k = tuple(d[f] for f in fields)
                    counts2[k] = counts2.get(k, 0) + 1
            keys = sorted(counts2)
            if "after" in comp:
                after = tuple(comp["after"][n] for n in names)
                keys = [k for k in keys if k > after]
            page = keys[:size]
            out: dict[str, Any] = {"buckets": [{"key": dict(zip(names, k)), "doc_count": counts2[k]} for k in page]}
            if page:
                out["after_key"] = dict(zip(names, page[-1]))
            return out
        raise ValueError(f"fake ES does not emulate aggregation {agg}")


def _edits(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment), as Lucene's fuzzy queries count."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _wildcard_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return "".join(out)


def _query_text(body: dict[str, Any]) -> str:
    s = json.dumps(body.get("query") or body.get("retriever") or {})
    try:
        return str(json.loads(s[s.index('"query": "') + 9: s.index('"', s.index('"query": "') + 10) + 1]))
    except ValueError:
        return ""


def make_client(fake: FakeES) -> Any:
    from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
    from elastic_transport._node._base import NodeApiResponse
    from elasticsearch import Elasticsearch

    class CaptureNode(BaseNode):
        _CLIENT_META_HTTP_CLIENT = ("capture", "0")

        def perform_request(self, method, target, body=None, headers=None, request_timeout=None):  # type: ignore[no-untyped-def]
            if fake.down:
                from elastic_transport import ConnectionError as TransportConnectionError

                raise TransportConnectionError("[Errno 111] Connection refused")
            status, data = fake.handle(method, target, body, dict(headers or {}))
            meta = ApiResponseMeta(status=status, http_version="1.1", duration=0.0, node=self.config,
                                   headers=HttpHeaders({"x-elastic-product": "Elasticsearch",
                                                        "content-type": "application/json"}))
            return NodeApiResponse(meta, json.dumps(data).encode() if method != "HEAD" else b"")

    return Elasticsearch("http://127.0.0.1:9200", node_class=CaptureNode, api_key="test-key", max_retries=0)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeES
    lock: threading.Lock

    def log_message(self, *args: Any) -> None:  # quiet
        return None

    def _any(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        with self.lock:
            status, data = self.fake.handle(self.command, self.path, body, dict(self.headers))
        raw = b"" if self.command == "HEAD" else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if raw:
            self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any


@contextmanager
def serve(fake: FakeES | None = None) -> Iterator[tuple[str, FakeES]]:
    """The fake on a loopback port: ``with serve() as (url, fake): ...``."""
    fake = fake or FakeES()
    handler = type("Handler", (_Handler,), {"fake": fake, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()
