"""The ``proteus-emulator`` command as a user runs it: in its own process, on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from pathlib import Path

COMMAND = [sys.executable, "-m", "airflow_provider_proteus.testing"]


def test_it_serves_on_a_free_port_and_prints_the_connection(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    server = subprocess.Popen(
        [*COMMAND, "--port", "0", "--port-file", str(port_file)], stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        port = int(port_file.read_text())
        health = requests.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=5)
        assert health.status_code == 200
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert f"GO emulator serving http://127.0.0.1:{port}/api/v2/go" in output
    assert "AIRFLOW_CONN_PROTEUS_DEFAULT=" in output


def test_a_port_in_use_is_named_in_one_line_without_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ended = subprocess.run(
            [*COMMAND, "--port", str(port)], capture_output=True, text=True, timeout=60, check=False
        )
    assert ended.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in ended.stderr
    assert "another --port" in ended.stderr
    assert "Traceback" not in ended.stderr
