"""The external API served for real (uvicorn, HTTP on 127.0.0.1) in a thread of the test process, on a port of
this helper's share (19540-19569), over a given hot store."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from api.app import create_app
from api.auth import ApiSettings

PORTS = range(19540, 19570)


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@contextmanager
def serving(store_url: str, **settings: Any) -> Iterator[str]:
    """The API over `store_url` (and any other ApiSettings); yields its base URL once it accepts connections."""
    app = create_app(ApiSettings(store_url=store_url, **settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
