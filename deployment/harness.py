"""Start a real Airflow deployment on this machine, run DAGs on it and watch them over REST.

The pieces are the ones a production deployment has, each in its own process: PostgreSQL
(Debian's ``postgresql`` package) as the metadata database, Airflow's api-server, scheduler,
dag-processor and triggerer, the LocalExecutor or the CeleryExecutor with Redis (Debian's
``redis-server``) as the broker and a Celery worker. The GO emulator serves GO on loopback. Missing
Debian packages are installed with ``apt-get``. Everything listens on 127.0.0.1 only, on free
ports, and every process started here is stopped by its process group when the deployment ends,
also when a check fails.

Nothing here knows what a check expects: :mod:`deployment.checks` drives the DAG runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_proteus.testing import GoEmulator

log = logging.getLogger("proteus.deployment")

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAG_FILES = (
    REPO / "example_dags" / "example_proteus.py",
    REPO / "example_dags" / "example_proteus_consumer.py",
    REPO / "deployment" / "dags" / "proteus_deployment.py",
)
#: The admin password of the deployment's simple auth manager; it only ever listens on loopback.
ADMIN_PASSWORD = "admin"  # noqa: S105


class DeploymentError(RuntimeError):
    """A deployment could not be started, or a check on it failed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, condition: Callable[[], bool], timeout: float, interval: float = 0.3) -> None:
    """Poll ``condition`` until it holds; raise naming ``what`` when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise DeploymentError(f"Timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def loopback_components(api_port: int, jwt_secret: str) -> dict[str, str]:
    """The settings that let Airflow's components find one another on 127.0.0.1.

    The api-server listens on ``api_port``; task processes report to its execution API, with tokens
    signed by ``jwt_secret`` (the same for every component of one deployment). The log servers get
    free ports, and the scheduler's health-check server, which would take a fixed port, stays off.
    """
    return {
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 right now (a server still starting does not)."""
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def process_group(leader: int) -> set[int]:
    """The processes of the group that ``leader`` started which still run (zombies excluded)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # The fields after the command name: state, parent pid, process group, ...
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == leader and fields[0] != "Z":
                    members.add(int(entry.name))
    return members


class Processes:
    """The processes of one deployment, each in its own session so that its children stop with it.

    :param log_dir: Where each process's output goes, one ``<name>.log`` per process.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._started: dict[str, tuple[subprocess.Popen[bytes], signal.Signals]] = {}

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session, its output in ``<log_dir>/<name>.log``.

        :param stop_signal: What stops the process cleanly (PostgreSQL wants SIGINT for a fast stop).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as output:
            process = subprocess.Popen(  # noqa: S603 - argv is built here, never from input
                argv, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True, user=user
            )
        self._started[name] = (process, stop_signal)
        log.info("Started %s (pid %s)", name, process.pid)
        return process

    def pids(self) -> list[int]:
        """The PIDs of the processes started and not stopped yet; each leads its own process group."""
        return [process.pid for process, _ in self._started.values()]

    def exited(self) -> dict[str, int]:
        """The processes that have ended, with their exit codes."""
        return {
            name: code for name, (process, _) in self._started.items() if (code := process.poll()) is not None
        }

    def stop(self, *names: str, grace: float = 30.0) -> None:
        """Stop the named processes (all when none are named), newest first, and their children."""
        chosen = [name for name in reversed(self._started) if not names or name in names]
        for name in chosen:
            process, stop_signal = self._started[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, stop_signal)
        deadline = time.monotonic() + grace
        for name in chosen:
            process, _ = self._started.pop(name)
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %s) did not stop in %.0f s; killing it", name, process.pid, grace)
            # Children that outlived their parent still hold the session's process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            group_ended = functools.partial(lambda leader: not process_group(leader), process.pid)
            wait_for(f"every process of {name} to end", group_ended, timeout=30, interval=0.05)
            log.info("Stopped %s (pid %s)", name, process.pid)


def debian_program(pattern: str, package: str) -> Path:
    """The newest file matching the glob ``pattern``, installing Debian's ``package`` if none does."""

    def newest() -> Path | None:
        matches = sorted(Path("/").glob(pattern.lstrip("/")))
        return matches[-1] if matches else None

    if (found := newest()) is not None:
        return found
    if os.geteuid() != 0:
        raise DeploymentError(
            f"{pattern} not found; install Debian's {package} package (sudo apt-get install {package})"
        )
    log.info("Installing Debian's %s package", package)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get on the machine holds dpkg's lock for a while; wait for it instead of failing.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    install = [*apt, "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=env, check=False).returncode != 0:  # noqa: S603
        updated = subprocess.run([*apt, "update"], env=env, check=False)  # noqa: S603
        if updated.returncode != 0 or subprocess.run(install, env=env, check=False).returncode != 0:  # noqa: S603
            raise DeploymentError(f"apt-get could not install Debian's {package} package (see its output)")
    if (found := newest()) is None:
        raise DeploymentError(f"Installing {package} did not provide {pattern}")
    return found


class PostgresServer:
    """A private PostgreSQL server from Debian's binaries, in a data directory of its own.

    It runs as the ``postgres`` system user when started by root (PostgreSQL refuses root), trusts
    local connections and listens on 127.0.0.1 only. Its data lives in a temporary directory of its
    own, which that user can reach wherever the work directory is, and which :meth:`remove` deletes
    once the server has stopped; its log goes to the work directory with the others.
    """

    def __init__(self, processes: Processes) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="proteus-postgres-"))
        self.processes = processes
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    def start(self) -> PostgresServer:
        postgres = debian_program("/usr/lib/postgresql/*/bin/postgres", "postgresql")
        bin_dir = postgres.parent
        if self.user is not None:
            shutil.chown(self.data_dir, self.user)
        subprocess.run(  # noqa: S603
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "airflow",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
        )
        self.processes.start(
            "postgres",
            [
                str(postgres),
                *("-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.data_dir)),
                *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"),
            ],
            dict(os.environ),
            user=self.user,
            stop_signal=signal.SIGINT,
        )
        ready = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]
        wait_for(
            "PostgreSQL to accept connections",
            lambda: subprocess.run(ready, check=False).returncode == 0,  # noqa: S603
            timeout=60,
        )
        self._psql = bin_dir / "psql"
        return self

    def remove(self) -> None:
        """Delete the data directory (after the server has stopped)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL for Airflow."""
        subprocess.run(  # noqa: S603
            [
                str(self._psql),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "airflow",
                "-d",
                "postgres",
                "-q",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
        )
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/{name}"


class RedisServer:
    """Debian's redis-server on 127.0.0.1, without persistence: the Celery broker."""

    def __init__(self, work_dir: Path, processes: Processes) -> None:
        self.work_dir = work_dir
        self.processes = processes
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        redis_server = debian_program("/usr/bin/redis-server", "redis-server")
        self.processes.start(
            "redis",
            [
                str(redis_server),
                *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.work_dir)),
                *("--save", "", "--appendonly", "no"),
            ],
            dict(os.environ),
        )

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    return conn.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for("Redis to answer PING", answers, timeout=30)
        return self


@dataclass
class AirflowSettings:
    """How the Airflow deployment is configured.

    :param executor: ``LocalExecutor`` or ``CeleryExecutor``.
    :param parallelism: Airflow's ``[core] parallelism``: task slots for the whole deployment.
    :param default_deferrable: Airflow's ``[operators] default_deferrable``, which the example DAG's
        sensor follows.
    :param extra_env: More ``AIRFLOW__*`` settings or environment variables for every component.
    """

    executor: str = "LocalExecutor"
    parallelism: int = 1
    default_deferrable: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


class AirflowDeployment:
    """Airflow's components as separate processes, sharing one ``AIRFLOW_HOME``.

    :param home: The ``AIRFLOW_HOME``; the DAG files are copied into ``home/dags``.
    :param database_url: SQLAlchemy URL of the metadata database.
    :param emulator: The GO emulator the ``proteus_default`` connection points at.
    :param processes: Where the components are started and stopped.
    :param broker_url: The Celery broker (with the CeleryExecutor).
    """

    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(
        self,
        *,
        home: Path,
        database_url: str,
        emulator: GoEmulator,
        processes: Processes,
        broker_url: str | None = None,
    ) -> None:
        self.home = home
        self.database_url = database_url
        self.emulator = emulator
        self.processes = processes
        self.broker_url = broker_url
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.settings = AirflowSettings()
        self._session = requests.Session()
        self._jwt_secret = secrets.token_urlsafe(64)
        self._running: list[str] = []

    def environment(self) -> dict[str, str]:
        """The environment every component, and every task, runs with."""
        settings = self.settings
        # Airflow settings of the caller's shell (or of a test session) must not leak into the deployment.
        inherited = {
            name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "PROTEUS"))
        }
        env = {
            **inherited,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": settings.executor,
            "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            **loopback_components(self.api_port, self._jwt_secret),
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": str(settings.default_deferrable),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # The UI's "Test" button for connections, which is off by default.
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW_CONN_PROTEUS_DEFAULT": self.emulator.connection_json(),
            # The example DAG's real waits are 15 minutes; a demo deployment pokes every 5 seconds.
            "PROTEUS_EXAMPLE_POKE_INTERVAL": "5",
            "PROTEUS_EXAMPLE_TIMEOUT": "600",
            "PROTEUS_EXAMPLE_RETRY_DELAY": "2",
        }
        if settings.executor == "CeleryExecutor":
            if self.broker_url is None:
                raise DeploymentError("The CeleryExecutor needs a broker URL")
            env["AIRFLOW__CELERY__BROKER_URL"] = self.broker_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{self.database_url}"
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(settings.parallelism)
        env.update(settings.extra_env)
        return env

    def migrate(self) -> None:
        """Prepare ``AIRFLOW_HOME``, the DAG folder and the metadata database."""
        dags = self.home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for dag_file in DAG_FILES:
            shutil.copy(dag_file, dags / dag_file.name)
        (self.home / "passwords.json").write_text(json.dumps({"admin": ADMIN_PASSWORD}))
        subprocess.run(  # noqa: S603
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.environment(),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self, settings: AirflowSettings) -> None:
        """Start the components with ``settings`` and wait until they report healthy."""
        self.settings = settings
        env = self.environment()
        components = list(self.COMPONENTS)
        if settings.executor == "CeleryExecutor":
            components.append("celery-worker")
        for component in components:
            argv = (
                [str(BIN / "airflow"), *component.split("-", 1)]
                if component == "celery-worker"
                else [
                    str(BIN / "airflow"),
                    component,
                ]
            )
            self.processes.start(component, argv, env)
        self._running = components
        self._wait_until_healthy()
        self._login()

    def stop(self) -> None:
        """Stop the Airflow components (not the database or the broker)."""
        if self._running:
            self.processes.stop(*self._running)
            self._running = []

    def _wait_until_healthy(self) -> None:
        def healthy() -> bool:
            self._check_alive()
            try:
                health = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
            except (requests.RequestException, ValueError):
                return False
            return all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        wait_for("Airflow's components to report healthy", healthy, timeout=180, interval=1)

    def _check_alive(self) -> None:
        ended = {name: code for name, code in self.processes.exited().items() if name in self._running}
        if ended:
            raise DeploymentError(
                f"Airflow components ended early: {ended}; see their logs in {self.processes.log_dir}"
            )

    def _login(self) -> None:
        response = requests.post(
            f"{self.api_url}/auth/token",
            json={"username": "admin", "password": ADMIN_PASSWORD},
            timeout=30,
        )
        if response.status_code != 201:
            raise DeploymentError(f"Logging in to the api-server failed: {response.status_code}")
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    # REST API

    def api(self, method: str, path: str, *, prefix: str = "/api/v2", **kwargs: Any) -> Any:
        """Call Airflow's REST API (``prefix`` + ``path``; ``/ui`` for the UI's own) and decode it."""
        response = self._session.request(method, f"{self.api_url}{prefix}{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise DeploymentError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()

    def wait_for_dags(self, *dag_ids: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed the DAGs and they are unpaused."""

        def parsed() -> bool:
            self._check_alive()
            found = {dag["dag_id"] for dag in self.api("GET", "/dags", params={"limit": 100})["dags"]}
            return set(dag_ids) <= found

        wait_for(f"the DAGs {', '.join(dag_ids)} to be parsed", parsed, timeout=timeout, interval=1)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        """Start a DAG run through the REST API."""
        self.api(
            "POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG, oldest first."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "id", "limit": 100})
        return list(answer["dag_runs"])

    def extra_links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        """The links the task page shows for a task instance, by name."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")
        return dict(answer["extra_links"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return list(answer["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """A try's log as text, one line per log event."""
        answer = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        content = answer.get("content", [])
        if isinstance(content, str):
            return content
        return "\n".join(json.dumps(line) if not isinstance(line, str) else line for line in content)

    def state_mismatches(self, dag_id: str) -> list[dict[str, Any]]:
        """The scheduler's "state mismatch" audit events for a DAG (Airflow 3.3.2's known race)."""
        answer = self.api(
            "GET", "/eventLogs", params={"dag_id": dag_id, "event": "state mismatch", "limit": 100}
        )
        return list(answer["event_logs"])

    def log_files(self) -> Iterator[Path]:
        """Every log file of the deployment: the components' output and the task logs."""
        yield from self.processes.log_dir.glob("*.log")
        yield from (path for path in (self.home / "logs").rglob("*") if path.is_file())
