"""Running app.py for the tests: a subprocess on a free loopback port, HTTP helpers, Chromium.

The app runs as a real subprocess (``python app.py ...``) so that its environment is set
before gradio is imported, the real entry point and flags are exercised, and Gradio's
threads stay out of the pytest process. Nothing here sleeps for a fixed time: readiness
is polled, and the browser tests wait on conditions.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"

CHROMIUM = os.environ.get("QA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None if they can."""
    if not os.path.exists(CHROMIUM):
        return (f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
                "(as root on Debian/Ubuntu; do not run `playwright install`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None,
         timeout: float = 30) -> tuple[int, bytes]:
    """(status, body) of a request, without raising on 4xx/5xx."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def upload(base: str, name: str, data: bytes, headers: dict | None = None) -> tuple[int, bytes]:
    """POST one file to Gradio's upload route, as the browser does."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return http(base + "/gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                   **(headers or {})}, "POST")


class AppServer:
    """``python app.py --port N ...`` in ``cwd``, with its own Gradio upload folder."""

    def __init__(self, cwd: Path, args: list[str] = (), env: dict | None = None) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upload_dir = cwd / "gradio-uploads"
        self.log_path = cwd / f"app-{self.port}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "GRADIO_"))}
        environment.update(GRADIO_TEMP_DIR=str(self.upload_dir), PYTHONUNBUFFERED="1", **(env or {}))
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, str(APP), "--port", str(self.port), *args], cwd=cwd,
                                        env=environment, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> AppServer:
        """Poll until the app answers (200, or 401 behind a login)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.log()}")
            try:
                if http(self.url + "/gradio_api/info", timeout=5)[0] in (200, 401):
                    return self
            except OSError:
                pass
            time.sleep(0.25)  # poll interval
        raise TimeoutError(f"app.py not ready after {timeout} s:\n{self.log()}")

    def log(self, tail: int | None = 6000) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-tail:] if tail else text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def call_event(server: AppServer, elem_id: str, trigger: str, data: list, timeout: float = 60) -> dict:
    """Run an app event over Gradio's queue protocol, as the page's JavaScript does.

    Finds the event listener of component ``elem_id`` for ``trigger`` in /config, joins the
    queue with ``data`` and reads the server-sent events until the event completes.
    Returns the final ``process_completed`` message.
    """
    config = json.loads(http(server.url + "/config")[1])
    component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    fn_index = next(d["id"] for d in config["dependencies"]
                    if [component, trigger] in [list(t) for t in d["targets"]])
    session = uuid.uuid4().hex
    body = json.dumps({"data": data, "fn_index": fn_index, "trigger_id": component, "session_hash": session,
                       "event_data": None}).encode()
    status, answer = http(server.url + "/gradio_api/queue/join", body, {"Content-Type": "application/json"}, "POST")
    if status != 200:
        return {"msg": "join_refused", "status": status, "body": answer.decode(errors="replace")}
    request = urllib.request.Request(f"{server.url}/gradio_api/queue/data?session_hash={session}")
    with urllib.request.urlopen(request, timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") in ("process_completed", "unexpected_error"):
                    return message
    raise AssertionError("the event stream ended without completing")


class GatedChatServer:
    """An OpenAI-compatible streaming endpoint on loopback whose reply pauses at a gate.

    ``reply(messages)`` gives (first part, second part): the first part is streamed, then the
    stream waits until the test calls ``release()``, then the second part follows. A test
    can so see a partial answer on screen before the end, with no timing involved.
    ``status`` other than 200 makes it fail every request (an unreachable model).
    """

    def __init__(self, reply: Callable[[list[dict]], tuple[str, str]]) -> None:
        self.reply = reply
        self.status = 200
        self.requests: list[dict] = []
        self.gate = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                if owner.status != 200 or not body.get("stream"):
                    payload = json.dumps({"error": {"message": "scripted failure", "type": "server_error"}}).encode()
                    self.send_response(owner.status if owner.status != 200 else 400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                first, second = owner.reply(body["messages"])
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self._send(body["model"], {"role": "assistant", "content": ""})
                for piece in first.split(" "):
                    self._send(body["model"], {"content": piece + " "})
                owner.gate.wait(120)
                for piece in second.split(" "):
                    self._send(body["model"], {"content": piece + " "})
                self._send(body["model"], {}, finish="stop")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _send(self, model: str, delta: dict, finish: str | None = None) -> None:
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def release(self) -> None:
        self.gate.set()

    def __enter__(self) -> GatedChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


def is_loopback_url(url: str) -> bool:
    return (urllib.parse.urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")
