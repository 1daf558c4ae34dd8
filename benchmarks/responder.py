"""A fixed HTTP responder for the triggerer benchmark, and a probe of how fast it answers.

The triggerer benchmark must measure the triggers, not the server they poll, so the server is as
small as an HTTP/1.1 server can be: a raw asyncio protocol (on uvloop when it is installed) in a
process of its own, answering from precomputed bytes:

- ``GET /api/v2/go/projects/{id}``: 200 with GO's envelope around a project whose stage is
  ``RUNNING``, which keeps a ``ProjectStageTrigger`` polling.
- ``GET /http/projects/{id}``: 404, which is what keeps an ``HttpSensorTrigger`` polling (it fires
  on any other answer).
- ``GET /_arrivals``: the arrival times of the project requests since the last call, by id, and
  the responder's own CPU seconds; reading them starts a new record.

Arrival times are ``time.monotonic()`` when a request's header is complete; Linux's monotonic clock
is the same for every process, so the benchmark compares them with its own. The token is not
checked: the responder stands in for GO's answer, not for its security.

``python -m benchmarks.responder serve PORT_FILE`` serves on a free loopback port and writes it to
``PORT_FILE``; ``python -m benchmarks.responder probe URL SECONDS RESULT.json`` measures the
responder's capacity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

GO_PREFIX = b"/api/v2/go/projects/"
HTTP_PREFIX = b"/http/projects/"
NOT_FOUND_BODY = b'{"detail": "not yet"}'


def project_document(project_id: str) -> dict[str, Any]:
    """The project GO would return for ``project_id`` while its job runs."""
    return {
        "algorithm_ids": ["car_counting"],
        "collaborator_ids": [],
        "created_ts": "2026-01-01T00:00:00+00:00",
        "description": "",
        "id": project_id,
        "name": project_id,
        "owner_id": "bench",
        "parent_project_id": None,
        "stage": "RUNNING",
        "version_ids": [f"{project_id}-1.0.0"],
    }


def response(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 404: b"Not Found"}[status]
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: keep-alive\r\n\r\n%s" % (status, reason, len(body), body)
    )


class Responder:
    """The responder's state: cached answers and the arrival record."""

    def __init__(self) -> None:
        self.answers: dict[bytes, bytes] = {}
        self.arrivals: defaultdict[str, list[float]] = defaultdict(list)
        self.not_found = response(404, NOT_FOUND_BODY)

    def answer(self, path: bytes, arrived: float) -> bytes:
        if path.startswith(GO_PREFIX):
            project_id = path[len(GO_PREFIX) :].split(b"?", 1)[0]
            self.arrivals[project_id.decode()].append(arrived)
            cached = self.answers.get(project_id)
            if cached is None:
                body = json.dumps(
                    {"data": project_document(project_id.decode()), "status": 200, "message": ""}
                ).encode()
                cached = self.answers[project_id] = response(200, body)
            return cached
        if path.startswith(HTTP_PREFIX):
            self.arrivals[path[len(HTTP_PREFIX) :].split(b"?", 1)[0].decode()].append(arrived)
            return self.not_found
        if path == b"/_arrivals":
            record, self.arrivals = self.arrivals, defaultdict(list)
            body = json.dumps({"arrivals": record, "cpu_seconds": time.process_time()}).encode()
            return response(200, body)
        return self.not_found


class _Connection(asyncio.Protocol):
    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without inheriting from it.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        self.buffer += data
        # GET requests only: a request ends with its header.
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            parts = head.split(b" ", 2)
            path = parts[1] if len(parts) > 1 else b"/"
            assert self.transport is not None
            self.transport.write(self.responder.answer(path, arrived))
            if b"\r\nconnection: close" in head.lower():
                self.transport.close()
                return


def _event_loop() -> asyncio.AbstractEventLoop:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def serve(port_file: Path) -> None:
    """Serve on a free loopback port until SIGTERM."""
    loop = _event_loop()
    asyncio.set_event_loop(loop)
    responder = Responder()
    server = loop.run_until_complete(
        loop.create_server(lambda: _Connection(responder), "127.0.0.1", 0, backlog=4096)
    )
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    port_file.write_text(str(port))
    loop.run_until_complete(stop.wait())
    server.close()


async def _probe_worker(host: str, port: int, path: bytes, deadline: float, reuse: bool) -> int:
    """Send GETs until ``deadline``, on one kept-alive connection or a new connection each."""
    request = b"GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path
    done = 0
    reader, writer = await asyncio.open_connection(host, port)
    while time.monotonic() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)
        done += 1
        if not reuse:
            writer.close()
            await writer.wait_closed()
            reader, writer = await asyncio.open_connection(host, port)
    writer.close()
    return done


async def _probe(url: str, seconds: float, reuse: bool, concurrency: int = 64) -> float:
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    counts = await asyncio.gather(
        *(
            _probe_worker(host, int(port), GO_PREFIX + b"probe-%d" % index, deadline, reuse)
            for index in range(concurrency)
        )
    )
    return sum(counts) / (time.monotonic() - started)


def probe(url: str, seconds: float) -> dict[str, float]:
    """Requests per second the responder answered to 64 concurrent clients, both ways of connecting.

    The probe runs in one process on the same machine, so on a small machine it is the probe that
    runs out of CPU first: the figures are lower bounds of the responder's capacity.
    """
    loop = _event_loop()
    try:
        return {
            "new_connection_per_request": loop.run_until_complete(_probe(url, seconds, reuse=False)),
            "kept_alive": loop.run_until_complete(_probe(url, seconds, reuse=True)),
        }
    finally:
        loop.close()


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"] and len(argv) == 2:
        serve(Path(argv[1]))
        return 0
    if argv[:1] == ["probe"] and len(argv) == 4:
        result = probe(argv[1], float(argv[2]))
        Path(argv[3]).write_text(json.dumps({**result, "cpu_count": os.cpu_count() or 0}))
        return 0
    print("usage: python -m benchmarks.responder serve PORT_FILE | probe URL SECONDS RESULT.json")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
