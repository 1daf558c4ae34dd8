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


@pytest.fixture(scope="module")
def local_stack() -> Iterator[AirflowDeployment]:
    with stack(celery=False, database=database_choice()) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def celery_stack() -> Iterator[AirflowDeployment]:
    with stack(celery=True, database=database_choice()) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def new_checks() -> Callable[[str, AirflowDeployment], Checks]:
    """Make the checks for a started deployment; ``name`` labels its race report."""

    def make(name: str, deployment: AirflowDeployment) -> Checks:
        checks = Checks(deployment, deployment.emulator.client)
        RACE_REPORTS[name] = checks.race
        return checks

    return make
