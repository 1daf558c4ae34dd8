"""Test environment: a private AIRFLOW_HOME, the example DAGs folder, and the GO emulator.

Airflow reads its configuration when it is first imported, so the environment is set here, at
the top of the root conftest, before any test module imports Airflow.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="proteus-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# Airflow queues runs of DAGs scheduled on an asset only while they are unpaused.
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
# dag.test() runs only DAGs of a configured bundle: the example DAG and the tests' own DAGs, side by side.
DAGS_FOLDER = Path(_AIRFLOW_HOME) / "dags"
DAGS_FOLDER.mkdir()
for dag_file in [
    *sorted((REPO / "example_dags").glob("*.py")),
    *sorted((REPO / "tests" / "dags").glob("*.py")),
]:
    shutil.copy(dag_file, DAGS_FOLDER / dag_file.name)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
# The example DAG polls every 15 minutes by default; the tests run it with 1-second pokes.
os.environ["PROTEUS_EXAMPLE_POKE_INTERVAL"] = "1"
os.environ["PROTEUS_EXAMPLE_TIMEOUT"] = "120"

from airflow_provider_proteus.testing import EmulatorClient, GoEmulator  # noqa: E402
from airflow_provider_proteus.version_compat import AIRFLOW_V_3_0_PLUS  # noqa: E402


class _CurrentStdout:
    """Standard output as it is at each write: pytest gives every test a stream of its own."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _render_task_logs_as_a_worker_would() -> None:
    """Airflow 3.0's ``dag.test()`` leaves structlog as it comes: task logs bound to the first
    test's stdout, tracebacks drawn by rich with every frame's locals, and debug lines that print
    each secret a task masks. Render task logs at INFO, plainly, to the current stdout. Airflow 2
    logs through the standard library, and later Airflow 3 releases configure structlog themselves.
    """
    import structlog

    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStdout()),
        cache_logger_on_first_use=False,
    )


if AIRFLOW_V_3_0_PLUS:
    _render_task_logs_as_a_worker_would()

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "tok-TEST-0001-secret"
_CREATOR = os.getpid()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's AIRFLOW_HOME (its SQLite DB and task logs), and fail a run that skipped a test.

    Every test holds on every supported Airflow and Python, each asserting its version's own behaviour
    where versions differ, so a skip means a test that did not run, which must not pass as green.
    """
    if os.getpid() == _CREATOR:
        shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.ensure_newline()
        reporter.write_line(f"{len(skipped)} test(s) skipped; every test must run, so this fails.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def go_emulator() -> Iterator[GoEmulator]:
    """One GO emulator for the whole session, on a free loopback port."""
    with GoEmulator(token=TOKEN, run_seconds=3) as emulator:
        yield emulator


@pytest.fixture
def emulator(go_emulator: GoEmulator) -> GoEmulator:
    """The session's emulator, reset to its seeded state for this test."""
    go_emulator.client.reset()
    return go_emulator


@pytest.fixture
def control(emulator: GoEmulator) -> EmulatorClient:
    """The emulator's control surface: projects, faults and the request log."""
    return emulator.client


@pytest.fixture
def proteus_conn(emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``proteus_default`` connection to the emulator with fast retries; returns its id."""
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(retry_backoff=0.01))
    return "proteus_default"
