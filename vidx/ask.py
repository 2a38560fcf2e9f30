"""Ask the library: retrieve moments with the search service, let a language model answer from
them, and build every citation from the evidence (never from the model's text).

* Retrieval: a hybrid search with the question and the request's filters, grouped by moment
  (a line and the scene around it are one piece of evidence, five hits of one scene are one),
  at most :data:`PER_VIDEO` moments of one video unless the question is about one video, and
  the lines just before and after each moment as context. A question about a whole video
  ("summarise …", "what is this meeting about") gets the video's summary and chapters.
* The model sees each item as ``[E1] video, time range, source`` + text, is asked for JSON
  ``{"answer", "citations": [label, …]}`` through ``response_format``, and may answer in plain
  text with ``[E2]`` markers instead. Labels that were not given are dropped; the rest become
  numbered citations ``[1]``, ``[2]`` with times, paths and links from the evidence.
* Nothing above the threshold: the answer says so, and no model is called.
* No model, or a model that fails: an extractive answer quotes the best moments.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vidx.llm import ChatModel, LLMError, read_json, unfence
from vidx.schema import Event, format_ts
from vidx.search import SearchService, clip_url, parse_query, thumbnail_url

log = logging.getLogger("vidx.ask")

PER_CLAUSE = 2  # best moments of each part of a question that asks several things
MAX_CLAUSES = 3  # parts of one question searched on their own
PER_VIDEO = 4  # moments of one video in the evidence when the question is not about one video
CONTEXT_GAP = 20.0  # a line this close before/after a moment is shown beside it
MAX_QUESTION = 1000
EXTRACTIVE_QUOTES = 3
EXTRACTIVE_NEAR = 0.7  # quoted moments score at least this share of the best one (bench/ask_bench.py)
NOTHING = "The library has nothing on this: no moment matched the question closely enough."
NOT_ANSWERED = "The evidence found does not answer this question."

SYSTEM_PROMPT = (
    "You answer questions about a library of videos using only the evidence items given. Each item "
    "starts with a label such as [E1], then the video, the time range and what was said, shown or "
    "written there. Answer briefly, in the language of the question. After each statement put the "
    "label of the evidence it comes from, like [E2]. Do not write times, file names or links yourself: "
    "the labels stand for them. If the evidence does not answer the question, say that the library "
    "does not say, and cite nothing. Never use knowledge from outside the evidence."
)

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"},
                   "citations": {"type": "array", "items": {"type": "string"}}},
    "required": ["answer", "citations"],
    "additionalProperties": False,
}

_WHOLE_VIDEO = re.compile(
    r"\b(summari[sz]e|summary|overview|recap|outline|chapters?|what (is|was) (this|the) \w+ about|"
    r"what happen(s|ed) in (this|the) \w+)\b|总结|概括|摘要|概要|讲了什么|说了什么", re.IGNORECASE)
_MARKER = re.compile(r"\[\s*((?:E\d+\s*[,;]?\s*)+)\]", re.IGNORECASE)


class AskRequest(BaseModel):
    """``POST /api/ask``'s body (also what ``vidx ask`` and the MCP tool send)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    video: str | None = Field(None, max_length=500, description="a video's name, path or 32-digit id")
    person: str | None = Field(None, max_length=200)
    source: str | None = Field(None, pattern="^(speech|subtitle|scene|vlm)$")
    lang: str | None = Field(None, max_length=16, pattern=r"^[A-Za-z-]+$")
    from_: str | float | None = Field(None, alias="from")
    to: str | float | None = None
    min_score: float | None = Field(None, ge=0, le=1)
    stream: bool = False

    @field_validator("question")
    @classmethod
    def _question(cls, v: str) -> str:
        v = v.replace("\x00", " ").strip()
        if not v:
            raise ValueError("the question is empty")
        return v


@dataclass
class Evidence:
    label: str
    event_id: str
    video_id: str
    video_path: str
    start_sec: float
    end_sec: float
    text: str
    source: str
    score: float
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    kind: str = "moment"  # moment | chapter | summary

    def prompt_block(self) -> str:
        where = f"{Path(self.video_path).name}, {format_ts(self.start_sec)}–{format_ts(self.end_sec)}"
        lines = [f"[{self.label}] {where} ({self.kind if self.kind != 'moment' else self.source})"]
        lines += [f"  just before: {b}" for b in self.before]
        lines.append(f"  {self.text}")
        lines += [f"  just after: {a}" for a in self.after]
        return "\n".join(lines)

    def citation(self, n: int) -> dict[str, Any]:
        return {"n": n, "label": self.label, "event_id": self.event_id, "video_id": self.video_id,
                "video_path": self.video_path, "start_sec": self.start_sec, "end_sec": self.end_sec,
                "text": self.text, "source": self.source, "kind": self.kind,
                "clip_url": clip_url(self.event_id, self.start_sec, self.end_sec),
                "thumbnail_url": thumbnail_url(self.event_id)}


def event_text(e: Event | dict[str, Any]) -> str:
    """What an event says in words: its line, else what is on screen and what the picture shows."""
    get = (lambda k: getattr(e, k)) if isinstance(e, Event) else (lambda k: e.get(k) or "")
    if get("dialogue"):
        return " ".join(str(get("dialogue")).split())
    parts = [str(get("description")), str(get("ocr_text"))]
    return " — ".join(" ".join(p.split()) for p in parts if p.strip())


_CLAUSE = re.compile(r"[?;]|,?\s+and\s+(?=(?:who|what|when|where|why|how|which|whom|whose)\b)|,\s+and\s+",
                     re.IGNORECASE)


def clauses(question: str) -> list[str]:
    """The parts of a question that asks several things ("who …, and when …?"); one part when
    it asks one (a part needs two words that are not stop words)."""
    from vidx.text import query_terms

    parts = [p.strip(" ,.") for p in _CLAUSE.split(question)]
    parts = [p for p in parts if len(query_terms(p)) >= 2]
    return parts if len(parts) > 1 else [question]


def whole_video_question(question: str) -> bool:
    return bool(_WHOLE_VIDEO.search(question))


def search_params(req: AskRequest, size: int) -> dict[str, Any]:
    """The search that finds the evidence: the question with the request's filters."""
    q = req.question
    for name, value in (("person", req.person), ("source", req.source), ("lang", req.lang)):
        if value:
            q += f' {name}:"{value.replace(chr(34), " ")}"'
    params: dict[str, Any] = {"q": q, "mode": "hybrid", "size": size, "group": "moment",
                              "from": req.from_, "to": req.to, "min_score": req.min_score}
    if req.video:
        v = req.video.strip()
        if re.fullmatch(r"[0-9a-fA-F]{32}", v):
            params["video_id"] = v.lower()
        else:
            params["q"] += f' video:"{v.replace(chr(34), " ")}"'
    return params


class Asker:
    """Answers questions from the library; one per process (it holds no state per question)."""

    def __init__(self, search: SearchService, events_for_video: Callable[[str], list[Event]],
                 model: ChatModel | None, summaries: Any = None, evidence: int = 8) -> None:
        self.search = search
        self.events_for_video = events_for_video
        self.model = model
        self.summaries = summaries  # vidx.summary.Summaries, for questions about a whole video
        self.evidence = evidence

    # ---------------------------------------------------------------- retrieval
    def retrieve(self, req: AskRequest) -> list[Evidence]:
        query = parse_query(search_params(req, max(self.evidence * 2, 10)))  # BadRequest: the caller's 400
        hits = self.search.search(query)["hits"]
        parts = clauses(req.question)[:MAX_CLAUSES]
        if len(parts) > 1:  # "who …, and when …?": each part's best moments too, after the whole's
            head = hits[: max(0, self.evidence - PER_CLAUSE * len(parts))]
            seen = {h["event_id"] for h in head}
            more: list[dict[str, Any]] = []
            for part in parts:
                sub = self.search.search(parse_query(search_params(req.model_copy(update={"question": part}),
                                                                   PER_CLAUSE)))["hits"]
                for h in sub:
                    if h["event_id"] not in seen:
                        seen.add(h["event_id"])
                        more.append(h)
            hits = head + more + [h for h in hits if h["event_id"] not in seen]
        one_video = bool(req.video) or len({h["video_id"] for h in hits}) == 1
        picked: list[dict[str, Any]] = []
        per: dict[str, int] = {}
        for h in hits:  # diverse: a few moments of each video unless the question is about one
            if not one_video and per.get(h["video_id"], 0) >= PER_VIDEO:
                continue
            per[h["video_id"]] = per.get(h["video_id"], 0) + 1
            picked.append(h)
            if len(picked) == self.evidence:
                break
        memo: dict[str, list[Event]] = {}  # each video's events, read once per question

        def events_of(vid: str) -> list[Event]:
            if vid not in memo:
                memo[vid] = self.events_for_video(vid)
            return memo[vid]

        out: list[Evidence] = []
        if self.summaries is not None and whole_video_question(req.question):
            vid = query.video_id or (picked[0]["video_id"] if picked else None)
            if vid is None and req.video:
                vid = self._video_by_name(req.video)
            if vid is not None:
                out.extend(self._summary_evidence(vid, events_of(vid)))
        for h in picked:
            text = event_text(h) or event_text(next(iter(h.get("context") or []), {}))
            ev = Evidence(label="", event_id=h["event_id"], video_id=h["video_id"], video_path=h["video_path"],
                          start_sec=float(h["start_sec"]), end_sec=float(h["end_sec"]), text=text,
                          source=h["source"], score=float(h["score"]))
            for c in h.get("context") or []:  # the moment's other events (a scene's words around a line)
                extra = event_text(c)
                if extra and extra not in ev.text and len(ev.after) < 2:
                    ev.after.append(extra)
            self._neighbours(ev, events_of(ev.video_id))
            out.append(ev)
        for i, ev in enumerate(out, 1):
            ev.label = f"E{i}"
        return out

    def _video_by_name(self, name: str) -> str | None:
        res = self.search.search(parse_query({"q": f'video:"{name}"', "size": 1, "mode": "keyword"}))
        return res["hits"][0]["video_id"] if res["hits"] else None

    def _summary_evidence(self, video_id: str, events: list[Event]) -> list[Evidence]:
        try:
            summ = self.summaries.get(video_id, events)
        except Exception as exc:  # a summary is a help, never a reason to fail the question
            log.warning("summary of %s: %s", video_id, exc)
            return []
        if summ is None:
            return []
        first = min(events, key=lambda e: e.start_sec) if events else None
        path = first.video_path if first else ""
        end = max((e.end_sec for e in events), default=0.0)
        out = [Evidence(label="", event_id=first.event_id if first else "", video_id=video_id, video_path=path,
                        start_sec=0.0, end_sec=end, text=summ["summary"], source="summary", score=1.0,
                        kind="summary")]
        for ch in summ["chapters"][:12]:
            out.append(Evidence(label="", event_id=ch.get("event_id") or out[0].event_id, video_id=video_id,
                                video_path=path, start_sec=ch["start_sec"], end_sec=ch["end_sec"],
                                text=ch["title"], source="chapter", score=1.0, kind="chapter"))
        return out

    @staticmethod
    def _neighbours(ev: Evidence, events: list[Event]) -> None:
        """The spoken lines just before and after a moment (within CONTEXT_GAP seconds)."""
        lines = sorted((e for e in events if e.source in ("speech", "subtitle") and e.dialogue.strip()),
                       key=lambda e: e.start_sec)
        before = [e for e in lines if e.end_sec <= ev.start_sec + 0.05 and ev.start_sec - e.end_sec <= CONTEXT_GAP
                  and e.event_id != ev.event_id]
        after = [e for e in lines if e.start_sec >= ev.end_sec - 0.05 and e.start_sec - ev.end_sec <= CONTEXT_GAP
                 and e.event_id != ev.event_id]
        if before:
            ev.before = [" ".join(before[-1].dialogue.split())]
        if after:
            ev.after.insert(0, " ".join(after[0].dialogue.split()))

    # ---------------------------------------------------------------- answers
    def messages(self, question: str, evidence: list[Evidence]) -> list[dict[str, str]]:
        blocks = "\n\n".join(e.prompt_block() for e in evidence)
        return [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Evidence:\n\n{blocks}\n\nQuestion: {question}\n\n"
                                            "Answer as JSON: {\"answer\": \"…\", \"citations\": [\"E1\", …]}"}]

    def ask(self, req: AskRequest) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for item in self.ask_stream(req):
            if item["type"] == "done":
                result = {k: v for k, v in item.items() if k != "type"}
        return result

    def ask_stream(self, req: AskRequest) -> Iterator[dict[str, Any]]:
        """``evidence`` (how much was found), ``delta`` pieces of the answer as the model writes
        them (its raw ``[E2]`` markers included), then ``done`` with the whole answer and its
        citations."""
        evidence = self.retrieve(req)
        method = "llm" if self.model is not None else "extractive"
        yield {"type": "evidence", "evidence_count": len(evidence), "method": method}
        base = {"question": req.question, "evidence_count": len(evidence)}
        if not evidence:  # nothing relevant: say so, and do not ask a model to make something up
            yield {"type": "done", **base, "answer": NOTHING, "citations": [], "method": method}
            return
        if self.model is None:
            yield {"type": "done", **base, **extractive(evidence)}
            return
        raw = ""
        shown = ""
        try:
            for piece in self.model.stream(self.messages(req.question, evidence), schema=ANSWER_SCHEMA):
                raw += piece
                now = partial_answer(raw)
                if now.startswith(shown) and len(now) > len(shown):
                    yield {"type": "delta", "text": now[len(shown):]}
                    shown = now
        except LLMError as exc:
            yield {"type": "done", **base, **extractive(evidence), "note": f"{exc}; the best moments are quoted instead"}
            return
        answer, cited = read_answer(raw, [e.label for e in evidence])
        if not answer.strip():
            yield {"type": "done", **base, **extractive(evidence),
                   "note": "the language model's answer could not be read; the best moments are quoted instead"}
            return
        by_label = {e.label: e for e in evidence}
        yield {"type": "done", **base, "answer": answer, "method": "llm", "model": self.model.name,
               "citations": [by_label[lab].citation(n) for n, lab in enumerate(cited, 1)]}


def partial_answer(raw: str) -> str:
    """The answer text found so far in a partly streamed reply (JSON or plain text)."""
    s = unfence(raw)
    if not s.startswith("{"):
        return s
    data = read_json(s)  # a fragment is repaired: the answer's string so far
    return str(data.get("answer") or "") if isinstance(data, dict) else ""


def read_answer(raw: str, labels: list[str]) -> tuple[str, list[str]]:
    """The answer text with its markers renumbered ``[1]``, ``[2]`` in order of first use, and the
    labels it cites in that order. Markers and citations of labels that were not given are
    dropped. Reads JSON (``{"answer", "citations"}``, fenced or not) and plain text."""
    s = unfence(raw)
    listed: list[str] = []
    answer = s
    if s.startswith("{"):
        data = read_json(s)
        if isinstance(data, dict):
            answer = str(data.get("answer") or "")
            cits = data.get("citations") or []
            listed = [str(c).strip().strip("[]").upper() for c in cits if isinstance(c, str | int)]
            listed = [c if c.startswith("E") else f"E{c}" for c in listed]
        else:
            answer = ""
    known = {lab.upper() for lab in labels}
    order: list[str] = []

    def renumber(m: re.Match[str]) -> str:
        out = []
        for lab in re.findall(r"E\d+", m.group(1).upper()):
            if lab not in known:
                continue
            if lab not in order:
                order.append(lab)
            out.append(f"[{order.index(lab) + 1}]")
        return "".join(out)

    answer = _MARKER.sub(renumber, answer)
    answer = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", answer)).strip()
    for lab in listed:  # cited in the list but not in the text: still a citation, after the others
        if lab in known and lab not in order:
            order.append(lab)
    return answer, order


def extractive(evidence: list[Evidence]) -> dict[str, Any]:
    """An answer without a model: the best moments quoted with their times."""
    moments = [e for e in evidence if e.kind == "moment"] or evidence
    top = max((e.score for e in moments), default=0.0)
    # the best moments, and only those near the best: a far weaker match is noise beside it
    best = [e for e in moments if e.score >= EXTRACTIVE_NEAR * top][:EXTRACTIVE_QUOTES]
    summary = next((e for e in evidence if e.kind == "summary"), None)
    lines = []
    cited = []
    if summary is not None:
        cited.append(summary)
        lines.append(f"{summary.text} [{len(cited)}]")
    for e in best:
        cited.append(e)
        lines.append(f"[{len(cited)}] {Path(e.video_path).name} {format_ts(e.start_sec)}–{format_ts(e.end_sec)}: "
                     f"\u201c{_clip_text(e.text)}\u201d")
    return {"answer": "\n".join(lines), "method": "extractive",
            "citations": [e.citation(n) for n, e in enumerate(cited, 1)]}


def _clip_text(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
