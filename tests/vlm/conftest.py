from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

WINDOW_RE = re.compile(r"covers (\d+\.\d) to (\d+\.\d) seconds")

Responder = Callable[[float, float, int], "str | int"]  # (window start, end, call number) -> text or HTTP status


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up on a slow reply (the timeout tests do) closes its socket; writing
    the reply then fails, which is expected here and not worth a traceback in the test log."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ChatServer:
    """A minimal OpenAI-compatible server: GET /v1/models, POST /v1/chat/completions."""

    def __init__(self, respond: Responder, port: int = 0) -> None:
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        self.calls: dict[tuple[float, float], int] = {}
        srv = self
        lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            def _send(self, code: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("/models"):
                    self._send(200, {"object": "list", "data": [
                        {"id": "Qwen/Qwen3-VL-8B-Instruct", "object": "model", "created": 0, "owned_by": "t"}]})
                else:
                    self._send(404, {"error": {"message": "no"}})

            def do_POST(self) -> None:  # noqa: N802
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    srv.requests.append(req)
                    text = json.dumps(req)
                    m = WINDOW_RE.search(text)
                    key = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
                    n = srv.calls.get(key, 0)
                    srv.calls[key] = n + 1
                out = srv.respond(key[0], key[1], n)
                if isinstance(out, int):
                    self._send(out, {"error": {"message": "server error", "type": "internal"}})
                    return
                self._send(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": req["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": out}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", port), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def chat_server() -> Iterator[Callable[[Responder], ChatServer]]:
    made: list[ChatServer] = []

    def make(respond: Responder, port: int = 0) -> ChatServer:
        s = ChatServer(respond, port)
        made.append(s)
        return s

    yield make
    for s in made:
        s.httpd.shutdown()


def answer(events: list[dict[str, Any]]) -> str:
    return "```json\n" + json.dumps(events, ensure_ascii=False) + "\n```"
