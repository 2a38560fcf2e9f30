"""`vidx mcp` as an agent meets it: a client from the official MCP SDK starts it over stdio,
lists the tools and calls `search` and `ask`; over Streamable HTTP the API key is required."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.ui.conftest import add_video
from vidx.config import Settings

pytestmark = pytest.mark.slow

LINES = [(2.0, 6.0, "Welcome to the harbour safety briefing."),
         (9.0, 12.0, "The ferry to the island leaves at half past nine."),
         (20.0, 24.0, "Life jackets are stored under every seat.")]


def _library(settings: Settings, real_embedder: Any) -> list[Any]:
    return add_video(settings, settings.watch_dir / "briefing.mp4",
                     [{"start_sec": a, "end_sec": b, "dialogue": t, "source": "subtitle", "description": f"Line: {t}"}
                      for a, b, t in LINES], real_embedder)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("VIDX_")},
            "VIDX_DATA_DIR": str(settings.data_dir), "VIDX_WATCH_DIR": str(settings.watch_dir),
            "VIDX_MODELS_DIR": str(settings.model_cache_dir), "VIDX_PUBLIC_URL": "https://videos.example.org",
            "VIDX_LLM_URL": "off", **extra}


def _structured(result: Any) -> dict[str, Any]:
    if getattr(result, "structured_content", None):
        return dict(result.structured_content)
    return json.loads(result.content[0].text)  # type: ignore[no-any-return]


def test_an_mcp_client_lists_the_tools_and_searches_and_asks_over_stdio(
        settings: Settings, real_embedder: Any) -> None:
    from mcp import Client, StdioServerParameters

    _library(settings, real_embedder)
    import numpy as np

    from vidx.people import PeopleDB, VoicePrint

    people = PeopleDB(settings.people_path)
    people.register_video("ab" * 16, [VoicePrint(0, np.ones(256, dtype=np.float32) / 16, 4.0, (9.0, 12.0))], {}, "m")
    people.rename(people.persons()[0].id, "Ada Quill")
    params = StdioServerParameters(command=sys.executable, args=["-m", "vidx", "mcp"], env=_env(settings),
                                   cwd=str(settings.data_dir.parent))

    async def session() -> tuple[list[str], dict[str, Any], dict[str, Any], dict[str, Any], Any, dict[str, Any]]:
        async with Client(params, read_timeout_seconds=120) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            found = _structured(await client.call_tool("search", {"query": "when does the ferry leave",
                                                                  "mode": "hybrid"}))
            answer = _structured(await client.call_tool("ask", {"question": "When does the ferry to the island leave?"}))
            vid = found["moments"][0]["video_id"]
            lines = _structured(await client.call_tool("get_transcript", {"video_id": vid}))
            bad = await client.call_tool("get_video", {"video_id": "nope"})
            who = _structured(await client.call_tool("list_people", {}))
            return tools, found, answer, lines, bad, who

    tools, found, answer, lines, bad, who = anyio.run(session)
    [ada] = who["people"]
    assert ada["name"] == "Ada Quill" and ada["has_voice"]
    assert ada["page_url"].startswith("https://videos.example.org/people/")
    assert {"search", "ask", "get_video", "get_transcript", "list_people"} <= set(tools)
    top = found["moments"][0]
    assert top["text"] == "The ferry to the island leaves at half past nine."
    assert (top["start_sec"], top["end_sec"]) == (9.0, 12.0)
    assert top["play_url"].startswith("https://videos.example.org/media/clip/") and "#t=9.00" in top["play_url"]
    assert answer["method"] == "extractive"
    assert answer["citations"][0]["start_sec"] == 9.0
    assert answer["citations"][0]["video_url"] == f"https://videos.example.org/videos/{top['video_id']}?t=9.00"
    assert [x["text"] for x in lines["lines"]] == [t for _, _, t in LINES]
    assert bad.is_error and "32 hexadecimal" in bad.content[0].text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_streamable_http_requires_the_api_key(settings: Settings, real_embedder: Any, tmp_path: Path) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    _library(settings, real_embedder)
    port = _free_port()
    key = "m" * 32
    proc = subprocess.Popen([sys.executable, "-m", "vidx", "mcp", "--http", "--port", str(port)],
                            env=_env(settings, VIDX_UI_API_KEY=key), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx2.post(url, json={}, timeout=2)
                break
            except httpx2.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "vidx mcp --http did not start"
                time.sleep(0.3)
        assert r.status_code == 401 and r.json() == {"error": "authentication required"}

        async def session() -> dict[str, Any]:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                return _structured(await client.call_tool("search", {"query": "life jackets"}))

        found = anyio.run(session)
        assert found["moments"][0]["text"] == "Life jackets are stored under every seat."
    finally:
        proc.terminate()
        proc.wait(timeout=20)
