"""A test-local HTTP server speaking the OpenAI chat-completions protocol, streaming included.

It listens on 127.0.0.1 only, records every request, and answers with a scripted reply
split into server-sent-event chunks exactly as OpenAI-compatible servers (Ollama, vLLM,
llama.cpp) send them. It is a protocol peer for the tests, not a model.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class ChatServer:
    """``reply(messages) -> str`` decides the answer; ``requests`` keeps what clients sent."""

    def __init__(self, reply: Callable[[list[dict]], str], status: int = 200) -> None:
        self.reply = reply
        self.status = status
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                elif server.status != 200:
                    self._json(server.status, {"error": {"message": "scripted failure", "type": "server_error"}})
                elif body.get("stream"):
                    self._stream(server.reply(body["messages"]), body["model"])
                else:
                    text = server.reply(body["messages"])
                    self._json(200, {"id": "x", "object": "chat.completion", "created": int(time.time()),
                                     "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}]})

            def _json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
                deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
                for i, delta in enumerate(deltas):
                    chunk = {"id": "x", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                end = {"id": "x", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
