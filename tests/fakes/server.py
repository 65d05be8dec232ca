"""Run an ASGI app on a real loopback port in a background thread, with fault injection.

    with serve(app) as server:
        server.fail(r"^/call/", status=429, headers={"Retry-After": "0"}, times=2)
        httpx.get(server.url + "/call/abc")
        server.requests  # every request seen: (method, path, query, headers)

Faults are consumed in order: a request whose path matches a fault's pattern gets that fault's
status (and headers/body) instead of reaching the app, ``times`` times.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


@dataclass
class Fault:
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int
    delay: float = 0.0


@dataclass
class SeenRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class RunningServer:
    url: str
    faults: list[Fault] = field(default_factory=list)
    requests: list[SeenRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self,
        pattern: str,
        *,
        status: int,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests whose path matches ``pattern`` with ``status``."""
        with self._lock:
            self.faults.append(
                Fault(re.compile(pattern), status, headers or {}, body, times, delay)
            )

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.pattern.search(path):
                    fault.times -= 1
                    return fault
        return None

    def seen(self, pattern: str) -> list[SeenRequest]:
        rx = re.compile(pattern)
        return [r for r in self.requests if rx.search(r.path)]


class _FaultMiddleware:
    def __init__(self, app: Any, server: RunningServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        self.server.requests.append(
            SeenRequest(
                request.method,
                request.url.path,
                request.url.query,
                {k.lower(): v for k, v in request.headers.items()},
            )
        )
        fault = self.server._take_fault(request.url.path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay:
            import asyncio

            await asyncio.sleep(fault.delay)
        if isinstance(fault.body, str | bytes):
            response: Response = Response(fault.body, status_code=fault.status,
                                          headers=fault.headers)
        else:
            response = JSONResponse(
                fault.body if fault.body is not None else {"message": f"injected {fault.status}"},
                status_code=fault.status,
                headers=fault.headers,
            )
        await response(scope, receive, send)


@contextmanager
def serve(app: Any) -> Iterator[RunningServer]:
    """Serve ``app`` on 127.0.0.1 at a free port until the block ends."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    # (accepted sockets inherit it). Without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    running = RunningServer(url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        _FaultMiddleware(app, running), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake server did not start")
        time.sleep(0.01)
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
