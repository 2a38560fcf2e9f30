"""An OpenAI-compatible chat-completions server for tests, over real HTTP.

It imports nothing from vidx: it records every request body and answers with what the test
scripted (a function of the request), as JSON or as a server-sent-event stream when the
request asks for ``stream``. ``status`` makes it answer an HTTP error instead, ``delay``
makes it slow.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], str]


@dataclass
class ChatServer:
    url: str
    reply: Reply
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    model: str = "fake-chat-1"

    def evidence_labels(self, i: int = -1) -> list[str]:
        """The ``[E<n>]`` labels in the last request's user message."""
        user = next(m["content"] for m in self.requests[i]["messages"] if m["role"] == "user")
        return re.findall(r"^\[(E\d+)\]", user, re.MULTILINE)


@contextmanager
def chat_server(reply: Reply) -> Iterator[ChatServer]:
    state: dict[str, ChatServer] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            srv = state["srv"]
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, json.dumps({"object": "list", "data": [
                    {"id": srv.model, "object": "model", "created": 0, "owned_by": "test"}]}).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:  # noqa: N802
            srv = state["srv"]
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            srv.requests.append(body)
            if srv.delay:
                time.sleep(srv.delay)
            if srv.status != 200:
                self._send(srv.status, json.dumps({"error": {"message": "scripted failure"}}).encode())
                return
            text = srv.reply(body)
            if not body.get("stream"):
                self._send(200, json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": srv.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode())
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
            for piece in pieces:
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": srv.model,
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv = ChatServer(url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", reply=reply)
    state["srv"] = srv
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        httpd.shutdown()
        httpd.server_close()
