"""Fixtures for the deployment tests: a real Airflow deployment per test module.

Each module starts its stack once (PostgreSQL, Redis for Celery, the GO emulator, Airflow's
components as separate processes) and stops every process at the end, also after a failure. The
scheduler race of Airflow 3.3.2 that the waits' retries absorb is counted and reported at the end
of the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from deployment.checks import Checks, RaceReport
from deployment.stack import database_choice, stack

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from deployment.harness import AirflowDeployment

RACE_REPORTS: dict[str, RaceReport] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, report in RACE_REPORTS.items():
        terminalreporter.write_line(f"Airflow scheduler race in the {name} deployment: {report.summary()}")


# Work directories (logs, databases) go under pytest's own temporary directory, which keeps the
# last few sessions' for reading after a failure and removes older ones.


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    work_dir = tmp_path_factory.mktemp("local-deployment")
    with stack(celery=False, database=database_choice(), work_dir=work_dir) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    work_dir = tmp_path_factory.mktemp("celery-deployment")
    with stack(celery=True, database=database_choice(), work_dir=work_dir) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def new_checks() -> Callable[[str, AirflowDeployment], Checks]:
    """Make the checks for a started deployment; ``name`` labels its race report."""

    def make(name: str, deployment: AirflowDeployment) -> Checks:
        checks = Checks(deployment, deployment.emulator.client)
        RACE_REPORTS[name] = checks.race
        return checks

    return make
