"""``vidx mcp``: the library for agents, over the Model Context Protocol (the official ``mcp``
SDK): stdio for a local client, Streamable HTTP behind the same API key as the web API.

Each tool calls the product's own JSON API in-process (the answers are exactly those of
``/api/search``, ``/api/ask``, …) and returns times and absolute links (``VIDX_PUBLIC_URL``,
else the UI's address) that play each moment.
"""

from __future__ import annotations

import logging
from typing import Any

from vidx.config import Settings

log = logging.getLogger("search_ui.mcp")

INSTRUCTIONS = (
    "vidx searches a library of videos by what is said, shown and written in them. Use `search` to find "
    "moments (each with its video, start and end seconds and a link that plays it), `ask` for an answer "
    "with citations of moments, `get_video` for a video's summary and chapters and `get_transcript` for "
    "its spoken lines. Quote times and links from the results; do not invent them."
)


class _Api:
    """The web app's JSON API, called in-process with the local key."""

    def __init__(self, settings: Settings) -> None:
        from search_ui import create_app

        self.settings = settings
        self.app = create_app(settings)
        key = settings.ui_api_key.get_secret_value() if settings.ui_api_key else None
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.base = settings.base_url

    def call(self, method: str, path: str, **kw: Any) -> Any:
        client = self.app.test_client()
        resp = client.open(path, method=method, headers=self.headers, **kw)
        data = resp.get_json(silent=True)
        if resp.status_code != 200:  # the API's own message reaches the agent
            from mcp.server.mcpserver.exceptions import ToolError

            raise ToolError((data or {}).get("error") or f"HTTP {resp.status_code}")
        return data

    def link(self, path: str) -> str:
        return self.base + path


def _moment(api: _Api, h: dict[str, Any]) -> dict[str, Any]:
    return {"video_id": h["video_id"], "video": h["video_path"].rsplit("/", 1)[-1], "video_path": h["video_path"],
            "start_sec": h["start_sec"], "end_sec": h["end_sec"], "source": h["source"],
            "text": h.get("dialogue") or h.get("description") or h.get("text") or "",
            "score": h.get("score"), "event_id": h["event_id"],
            "play_url": api.link(h["clip_url"]),
            "video_url": api.link(f"/videos/{h['video_id']}?t={h['start_sec']:.2f}")}


def build_server(settings: Settings) -> Any:
    """The MCP server with its tools (``search``, ``ask``, ``get_video``, ``get_transcript``)."""
    from mcp.server.mcpserver import MCPServer

    api = _Api(settings)
    server = MCPServer(name="vidx", instructions=INSTRUCTIONS)

    @server.tool()
    def search(query: str, mode: str = "hybrid", size: int = 10, video_id: str | None = None) -> dict[str, Any]:
        """Find moments in the videos. `query` accepts "exact phrases", -word, person:NAME, video:NAME,
        source:speech|subtitle|scene|vlm and lang:CODE; `mode` is keyword, semantic or hybrid."""
        params = {"q": query, "mode": mode, "size": str(max(1, min(50, size))), "group": "moment"}
        if video_id:
            params["video_id"] = video_id
        res = api.call("GET", "/api/search", query_string=params)
        return {"total": res["total"], "total_relation": res.get("total_relation", "eq"),
                "moments": [_moment(api, h) for h in res["hits"]]}

    @server.tool()
    def ask(question: str, video: str | None = None, person: str | None = None, source: str | None = None,
            lang: str | None = None) -> dict[str, Any]:
        """Answer a question from the library. Every citation is a moment (video, start and end
        seconds, the words there, a link that plays it); an empty list means the library has
        nothing on it."""
        body = {k: v for k, v in {"question": question, "video": video, "person": person, "source": source,
                                  "lang": lang}.items() if v}
        res = api.call("POST", "/api/ask", json=body)
        for c in res["citations"]:
            c["play_url"] = api.link(c["clip_url"])
            c["video_url"] = api.link(f"/videos/{c['video_id']}?t={c['start_sec']:.2f}")
        return res

    @server.tool()
    def get_video(video_id: str) -> dict[str, Any]:
        """A video's summary, its chapters (start and end seconds, title) and its link."""
        res = api.call("GET", f"/api/videos/{video_id}/summary")
        res["video_url"] = api.link(f"/videos/{video_id}")
        for ch in res["chapters"]:
            ch["video_url"] = api.link(f"/videos/{video_id}?t={ch['start_sec']:.2f}")
        return res

    @server.tool()
    def get_transcript(video_id: str) -> dict[str, Any]:
        """A video's spoken lines (subtitles or recognised speech) with start and end seconds."""
        res = api.call("GET", f"/api/videos/{video_id}/transcript", query_string={"format": "json"})
        for line in res.get("lines", []):
            line["video_url"] = api.link(f"/videos/{video_id}?t={line['start_sec']:.2f}")
        return res  # type: ignore[no-any-return]

    @server.tool()
    def list_people() -> dict[str, Any]:
        """The people vidx recognises by voice and face: id, name ("Speaker N" until named),
        lines spoken, times seen, videos. Search one with search('person:"Name"') or ask(person=...)."""
        res = api.call("GET", "/api/people")
        for p in res.get("people", []):
            p.pop("sample", None)
            p["page_url"] = api.link(p["page_url"])
            if p.get("thumbnail_url"):
                p["thumbnail_url"] = api.link(p["thumbnail_url"])
        return res  # type: ignore[no-any-return]

    return server


class KeyGuard:
    """ASGI middleware: with ``VIDX_UI_API_KEY`` set, every HTTP request must carry it
    (``Authorization: Bearer KEY`` or ``X-Api-Key``), as on the web API."""

    def __init__(self, app: Any, key: str | None) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.key:
            import hmac

            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            auth = headers.get("authorization", "")
            got = auth[7:] if auth.startswith("Bearer ") else headers.get("x-api-key", "")
            if not got or not hmac.compare_digest(got.encode(), self.key.encode()):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b'Bearer realm="vidx"')]})
                await send({"type": "http.response.body", "body": b'{"error": "authentication required"}'})
                return
        await self.app(scope, receive, send)


def serve_http(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    server = build_server(settings)
    key = settings.ui_api_key.get_secret_value() if settings.ui_api_key else None
    if key is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the MCP server binds to %s without VIDX_UI_API_KEY: anyone who can reach it can search", host)
    app = KeyGuard(server.streamable_http_app(host=host), key)
    log.info("MCP (Streamable HTTP) on http://%s:%d/mcp", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def serve_stdio(settings: Settings) -> None:
    build_server(settings).run("stdio")
