"""Run several GO projects side by side: one submit, wait and fetch per project, mapped at run time.

The ``project_ids`` param lists the projects (each runs its ``-1.0.0`` version); Airflow's dynamic
task mapping turns every task below into one task instance per project, so that each project is
submitted, waited for and fetched on its own, and one project's failure leaves the others alone.
The waits are reschedule-mode sensors, so many projects waiting at once hold no worker slot.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, AssetAlias, Param, task

from airflow_provider_proteus.operators.proteus import FetchResultsOperator, SubmitJobOperator
from airflow_provider_proteus.sensors.proteus import ProjectStageSensor

POKE_INTERVAL = float(os.environ.get("PROTEUS_EXAMPLE_POKE_INTERVAL", 15 * 60))
TIMEOUT = float(os.environ.get("PROTEUS_EXAMPLE_TIMEOUT", 3 * 24 * 60 * 60))
RETRY_DELAY = float(os.environ.get("PROTEUS_EXAMPLE_RETRY_DELAY", 5 * 60))

with DAG(
    dag_id="example_proteus_mapped",
    description="Submit, wait for and fetch several GO projects at once with dynamic task mapping.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["proteus", "example"],
    params={
        "project_ids": Param(["carsdemo-J9fUyV"], type="array", description="GO project ids"),
        "proteus_conn_id": Param("proteus_default", type="string", description="proteus connection"),
        "results_uri": Param(
            "file:///tmp/proteus-results", type="string", description="where results files are written"
        ),
    },
    default_args={"retries": 3, "retry_delay": timedelta(seconds=RETRY_DELAY)},
) as dag:

    @task
    def versions_to_run(params: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """One entry per project: its id and the version to run."""
        return [{"project_id": p, "version_id": f"{p}-1.0.0"} for p in (params or {})["project_ids"]]

    @task
    def results_files(
        versions: list[dict[str, str]], params: dict[str, Any] | None = None
    ) -> list[dict[str, str]]:
        """Each version with the path its results go to."""
        root = (params or {})["results_uri"].rstrip("/")
        return [{**v, "path": f"{root}/{v['project_id']}/{v['version_id']}.csv"} for v in versions]

    # At parse time a reference to the list, resolved when the mapped tasks are expanded.
    versions: Any = versions_to_run()
    submit_job = SubmitJobOperator.partial(
        task_id="submit_job", proteus_conn_id="{{ params.proteus_conn_id }}"
    ).expand_kwargs(versions)
    wait_for_completion = ProjectStageSensor.partial(
        task_id="wait_for_completion",
        proteus_conn_id="{{ params.proteus_conn_id }}",
        poke_interval=POKE_INTERVAL,
        timeout=TIMEOUT,
    ).expand_kwargs(versions)
    fetch_results = FetchResultsOperator.partial(
        task_id="fetch_results",
        proteus_conn_id="{{ params.proteus_conn_id }}",
        outlets=[AssetAlias("proteus_results")],
    ).expand_kwargs(results_files(versions))
    submit_job >> wait_for_completion >> fetch_results


if __name__ == "__main__":
    dag.test()
