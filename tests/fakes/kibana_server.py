"""A fake Kibana on a loopback port: answers the saved-objects import that
`vidx kibana-setup` sends, checks its headers and records what was imported.
Independent of vidx (imports nothing from it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeKibana:
    imported: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def serve_kibana() -> Iterator[tuple[str, FakeKibana]]:
    fake = FakeKibana()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            fake.requests.append((self.command, self.path))
            if not self.path.startswith("/api/saved_objects/_import"):
                return self._send(404, {"statusCode": 404, "error": "Not Found"})
            if self.headers.get("kbn-xsrf") is None:
                return self._send(400, {"statusCode": 400, "message": "Request must contain a kbn-xsrf header."})
            if "multipart/form-data" not in (self.headers.get("Content-Type") or ""):
                return self._send(415, {"statusCode": 415, "message": "Unsupported Media Type"})
            objs = []
            for line in body.splitlines():
                line = line.strip()
                if line.startswith("{") and '"type"' in line:
                    try:
                        objs.append(json.loads(line))
                    except ValueError:
                        continue
            fake.imported.extend(objs)
            self._send(200, {"success": bool(objs), "successCount": len(objs),
                             "successResults": [{"type": o.get("type"), "id": o.get("id")} for o in objs]})

        def _send(self, status: int, data: Any) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()
