"""Run the GO emulator on a loopback port, and drive its control surface."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import requests
import uvicorn

from airflow_provider_proteus.testing.emulator import (
    API_PREFIX,
    CONTROL_PREFIX,
    EmulatorApp,
    EmulatorState,
    QuietDroppedConnections,
)

if TYPE_CHECKING:
    from types import TracebackType

DEFAULT_TOKEN = "emulator-token"  # noqa: S105 - the emulator's well-known demo token


class EmulatorClient:
    """Configure a running emulator and read its request log, over HTTP.

    :param root_url: The emulator's root, for example ``http://127.0.0.1:8099``.
    """

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url.rstrip("/")
        self._session = requests.Session()

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.root_url}{CONTROL_PREFIX}{path}", json=payload, timeout=10
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"Emulator control {method} {path} failed: {response.status_code} {response.text}"
            )
        return response.json()

    def healthy(self) -> bool:
        """Whether the emulator answers its health check."""
        try:
            return bool(self._control("GET", "/health")["status"] == "ok")
        except (requests.RequestException, RuntimeError):
            return False

    def reset(self) -> None:
        """Forget all projects but the demo one, all faults and the request log."""
        self._control("POST", "/reset")

    def add_project(self, **settings: Any) -> dict[str, Any]:
        """Create a project; see :class:`~.emulator.EmulatedProject` for the settings."""
        project: dict[str, Any] = self._control("POST", "/projects", settings)
        return project

    def update_project(self, project_id: str, **settings: Any) -> dict[str, Any]:
        """Change how a project runs (``run_seconds``, ``outcome``, ``stages``, ...)."""
        project: dict[str, Any] = self._control("PATCH", f"/projects/{project_id}", settings)
        return project

    def add_faults(self, method: str, path: str, *faults: dict[str, Any]) -> None:
        """Queue faults, served one per matching request; see :class:`~.emulator.Fault`.

        :param method: HTTP method to match, or ``*``.
        :param path: Path under the API prefix, such as ``/projects/P``, or ``*``.
        """
        self._control("POST", "/faults", {"method": method, "path": path, "faults": list(faults)})

    def requests(self, *, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The requests received so far, oldest first, optionally filtered."""
        entries: list[dict[str, Any]] = self._control("GET", "/requests")
        return [
            entry
            for entry in entries
            if (method is None or entry["method"] == method) and (path is None or entry["path"] == path)
        ]

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._control("DELETE", "/requests")


class GoEmulator:
    """The GO emulator, served by uvicorn on a loopback port in a background thread.

    Use it as a context manager; ``base_url`` is what a ``proteus`` connection's host should be::

        with GoEmulator() as emulator:
            os.environ["AIRFLOW_CONN_PROTEUS_DEFAULT"] = emulator.connection_json()

    :param token: The API token the emulator accepts.
    :param run_seconds: Default run time of projects, in seconds.
    :param host: The address to listen on; keep it on loopback.
    :param port: The port; 0 picks a free one.
    :param access_log: Whether uvicorn logs each request (paths only, never headers).
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        run_seconds: float = 60.0,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
    ) -> None:
        self.state = EmulatorState(token=token, run_seconds=run_seconds)
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            EmulatorApp(self.state),
            # uvicorn writes its access log at info level.
            log_level="info" if access_log else "warning",
            access_log=access_log,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(QuietDroppedConnections())
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> str:
        """The API token the emulator accepts."""
        return self.state.token

    @property
    def root_url(self) -> str:
        """The server's root URL, where the control surface lives."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """GO's API base URL on this emulator."""
        return f"{self.root_url}{API_PREFIX}"

    @property
    def client(self) -> EmulatorClient:
        """A client for the control surface."""
        return EmulatorClient(self.root_url)

    def connection_json(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_*`` value (JSON) for a ``proteus`` connection to this emulator."""
        import json

        return json.dumps(
            {
                "conn_type": "proteus",
                "host": self.base_url,
                "password": self.token,
                "extra": {"web_url": f"{self.root_url}/web", **extra},
            }
        )

    def start(self) -> GoEmulator:
        """Start serving; returns once the server accepts connections."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="go-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The GO emulator did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> GoEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
