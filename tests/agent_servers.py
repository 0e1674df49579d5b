"""Real HTTP agent servers with scripted behaviour, for the agent tests: answer, hang, fail, crash, short.

In a thread (`ScriptedAgentServer`) or, for a crash that takes the whole process down mid-call, as a process:
`python tests/agent_servers.py --port P --mode crash`.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("answer", "hang", "fail", "crash", "short")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, {"ok": True, "agent": "scripted", "mode": self.server.mode})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with self.server.lock:
            self.server.requests += 1
            self.server.events_seen += len(body["events"])
            mode = self.server.mode
        if mode == "hang":
            self.server.release.wait(60)
            return
        if mode == "fail":
            self._reply(500, {"error": "scripted failure"})
            return
        if mode == "crash":
            os._exit(3)  # the process dies mid-call: the connection drops with no answer
        findings = [{"data": {"echo": event["event_id"], "class": event["event_class"]}} for event in body["events"]]
        if mode == "short":  # a wrong answer: one finding too few
            findings = findings[:-1]
        self._reply(200, {"agent": "scripted", "findings": findings})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.mode = mode
        self.lock = threading.Lock()
        self.requests = 0
        self.events_seen = 0
        self.release = threading.Event()


class ScriptedAgentServer:
    """A real HTTP server on a free port in a background thread; change `mode` at any time."""

    def __init__(self, mode: str = "answer"):
        self._server = _Server(mode)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> int:
        return self._server.requests

    @property
    def events_seen(self) -> int:
        return self._server.events_seen

    def set_mode(self, mode: str) -> None:
        with self._server.lock:
            self._server.mode = mode

    def __enter__(self) -> ScriptedAgentServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._server.release.set()  # free hanging handlers
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="answer")
    args = parser.parse_args()
    server = _Server(args.mode, args.port)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
