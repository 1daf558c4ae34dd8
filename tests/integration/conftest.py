"""Real DAG runs: a migrated SQLite metadata DB and the example DAG, run with ``dag.test()``."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID
from airflow_provider_proteus.testing.airflow_runs import RunSummary, describe_run
from tests.conftest import REPO

if TYPE_CHECKING:
    from airflow.sdk import DAG

RunExample = Callable[..., RunSummary]


@pytest.fixture(scope="session")
def metadata_db() -> None:
    """Create Airflow's metadata tables once, in the session's private AIRFLOW_HOME."""
    from airflow.utils.db import resetdb

    resetdb()


@pytest.fixture(scope="session")
def example_dag(metadata_db: None) -> DAG:
    """The example DAG, loaded from the DAGs folder that ``dag.test()`` syncs."""
    spec = importlib.util.spec_from_file_location(
        "example_proteus", REPO / "example_dags" / "example_proteus.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag: DAG = module.dag
    return dag


@pytest.fixture
def run_example(example_dag: DAG, proteus_conn: str) -> RunExample:
    """Run the example DAG with the given params and return what happened.

    Every param is passed on every run: ``dag.test()`` runs tasks in this process with the same DAG
    object, and a param given to one run would otherwise be seen by the next.
    """

    def run(**conf: Any) -> RunSummary:
        params = {
            "project_id": DEMO_PROJECT_ID,
            "version_id": DEMO_VERSION_ID,
            "proteus_conn_id": proteus_conn,
        }
        dag_run = example_dag.test(run_conf={**params, **conf})
        return describe_run(example_dag.dag_id, dag_run.run_id)

    return run
