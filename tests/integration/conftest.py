"""Real DAG runs: a migrated SQLite metadata DB and the example DAG, run with ``dag.test()``."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID
from airflow_provider_proteus.testing.airflow_runs import RunSummary, describe_run, prepare_for_test
from airflow_provider_proteus.version_compat import airflow_version
from tests.conftest import DAGS_FOLDER

if TYPE_CHECKING:
    from pathlib import Path

RunExample = Callable[..., RunSummary]


@dataclass
class TaskLog:
    """What the test's DAG runs wrote.

    :param out: What their tasks logged: Airflow 3's ``dag.test()`` prints it, Airflow 2's logs it
        through the standard logging, which the test captures.
    :param err: Everything else written to standard error.
    """

    out: str
    err: str


TaskLogReader = Callable[[], TaskLog]


@pytest.fixture
def task_log(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> TaskLogReader:
    """Read what the test's DAG runs have written so far."""
    caplog.set_level(logging.INFO)

    def read() -> TaskLog:
        captured = capfd.readouterr()
        return TaskLog(out=captured.out + caplog.text, err=captured.err)

    return read


@pytest.fixture(scope="session", autouse=True)
def reschedule_dates_as_datetimes() -> Iterator[None]:
    """Work around Airflow 3.0's ``dag.test()`` for rescheduled sensors.

    Its in-process supervisor hands a rescheduled sensor the date of its first poke as text, so
    every reschedule-mode sensor (Airflow's own included) fails its second poke with a TypeError in
    ``BaseSensorOperator``. A worker's supervisor parses the date; so does this, on Airflow 3.0 only.
    """
    if not (3, 0, 0) <= airflow_version() < (3, 1, 0):
        yield
        return
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    original = RuntimeTaskInstance.get_first_reschedule_date

    def parsed(self: Any, context: Any) -> Any:
        value = original(self, context)
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value

    with mock.patch.object(RuntimeTaskInstance, "get_first_reschedule_date", parsed):
        yield


@pytest.fixture(scope="session")
def metadata_db() -> None:
    """Create Airflow's metadata tables once, in the session's private AIRFLOW_HOME."""
    from airflow.utils.db import resetdb

    resetdb()


def load_dags(file_name: str) -> dict[str, DAG]:
    """The DAGs of one file of the test DAGs folder, by id, ready for ``dag.test()``."""
    spec = importlib.util.spec_from_file_location(file_name.removesuffix(".py"), DAGS_FOLDER / file_name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = {value.dag_id: value for value in vars(module).values() if isinstance(value, DAG)}
    for dag in dags.values():
        prepare_for_test(dag)
    return dags


@pytest.fixture(scope="session")
def example_dag(metadata_db: None) -> DAG:
    """The example DAG, as shipped."""
    return load_dags("example_proteus.py")["example_proteus"]


@pytest.fixture(scope="session")
def test_dags(metadata_db: None) -> dict[str, DAG]:
    """The tests' own DAGs (``tests/dags``), by id."""
    return load_dags("proteus_test_dags.py")


@pytest.fixture
def run_example(example_dag: DAG, proteus_conn: str, tmp_path: Path) -> RunExample:
    """Run the example DAG with the given params (results go to the test's own directory)."""

    def run(**conf: Any) -> RunSummary:
        return run_dag(example_dag, **{"results_uri": f"file://{tmp_path / 'results'}", **conf})

    return run


def run_dag(dag: DAG, **conf: Any) -> RunSummary:
    """Run a DAG with ``dag.test()`` and read back what happened.

    Every param is passed on every run: ``dag.test()`` runs tasks in this process with the same DAG
    object, and a param given to one run would otherwise be seen by the next.
    """
    params = {
        "project_id": DEMO_PROJECT_ID,
        "version_id": DEMO_VERSION_ID,
        "proteus_conn_id": "proteus_default",
    }
    dag_run = dag.test(run_conf={**params, **conf})
    return describe_run(dag.dag_id, dag_run.run_id)
