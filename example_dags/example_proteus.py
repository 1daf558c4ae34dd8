"""Run a GO project, write its results to a file, and announce them to downstream DAGs.

``submit_job`` starts a job for the project version and pushes the job id to XCom;
``wait_for_completion`` waits in reschedule mode until the project is COMPLETED, handing its
worker slot back between pokes; ``fetch_results`` writes the version's results as CSV under the
``results_uri`` param (any Airflow object storage URI: ``file://``, ``s3://``, ``gs://``) and
announces the ``proteus://{project}/{version}`` asset with the file's path, which schedules
``example_proteus_consumer``; ``summarize_results`` logs a short summary from XCom.

The project, version and connection are DAG params, so a run can target another project from the
trigger form or with ``airflow dags test example_proteus -c '{"project_id": "..."}'``. The waits
are the realistic ones (a poke every 15 minutes, a 3-day budget, 5 minutes between task retries);
the environment variables ``PROTEUS_EXAMPLE_POKE_INTERVAL``, ``PROTEUS_EXAMPLE_TIMEOUT`` and
``PROTEUS_EXAMPLE_RETRY_DELAY`` (seconds) shorten them for a demo against the GO emulator without
editing this file. The sensor waits in reschedule mode, or deferred to the triggerer where Airflow's
``[operators] default_deferrable`` is on.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, AssetAlias, Param, XComArg, task

from airflow_provider_proteus.hooks.proteus import ProteusHook
from airflow_provider_proteus.operators.proteus import FetchResultsOperator, SubmitJobOperator
from airflow_provider_proteus.sensors.proteus import ProjectStageSensor

log = logging.getLogger("example_proteus")

POKE_INTERVAL = float(os.environ.get("PROTEUS_EXAMPLE_POKE_INTERVAL", 15 * 60))
TIMEOUT = float(os.environ.get("PROTEUS_EXAMPLE_TIMEOUT", 3 * 24 * 60 * 60))
RETRY_DELAY = float(os.environ.get("PROTEUS_EXAMPLE_RETRY_DELAY", 5 * 60))

with DAG(
    dag_id="example_proteus",
    description="Submit a GO job, wait for the project to complete, summarise its results.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["proteus", "example"],
    params={
        "project_id": Param("carsdemo-J9fUyV", type="string", description="GO project id"),
        "version_id": Param("carsdemo-J9fUyV-1.0.0", type="string", description="GO version id"),
        "proteus_conn_id": Param("proteus_default", type="string", description="proteus connection"),
        "results_uri": Param(
            "file:///tmp/proteus-results", type="string", description="where results files are written"
        ),
    },
    # Three retries: Airflow 3.3.2's scheduler can fail a waiting task through no fault of its own
    # (see the README), sometimes twice in one wait; the waits are safe to retry.
    default_args={"retries": 3, "retry_delay": timedelta(seconds=RETRY_DELAY)},
) as dag:
    submit_job = SubmitJobOperator(
        task_id="submit_job",
        project_id="{{ params.project_id }}",
        version_id="{{ params.version_id }}",
        proteus_conn_id="{{ params.proteus_conn_id }}",
    )

    wait_for_completion = ProjectStageSensor(
        task_id="wait_for_completion",
        project_id="{{ params.project_id }}",
        version_id="{{ params.version_id }}",
        proteus_conn_id="{{ params.proteus_conn_id }}",
        poke_interval=POKE_INTERVAL,
        timeout=TIMEOUT,
    )

    fetch_results = FetchResultsOperator(
        task_id="fetch_results",
        project_id="{{ params.project_id }}",
        version_id="{{ params.version_id }}",
        path="{{ params.results_uri }}/{{ params.project_id }}/{{ params.version_id }}.csv",
        proteus_conn_id="{{ params.proteus_conn_id }}",
        # The ids are params, so the asset is named at run time through an alias.
        outlets=[AssetAlias("proteus_results")],
    )

    @task
    def summarize_results(
        job_id: str,
        project: dict[str, Any],
        results_path: str,
        row_count: int,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Log and return a short summary of the completed project and its results file."""
        params = params or {}
        hook = ProteusHook(proteus_conn_id=params["proteus_conn_id"])
        project_id, version_id = project["id"], params["version_id"]
        aois = hook.get_aois(project_id, version_id)
        results = hook.get_results(project_id, version_id)
        summary = {
            "project_id": project_id,
            "project_name": project.get("name"),
            "stage": project["stage"],
            "job_id": job_id,
            "aois": [aoi.get("name", aoi.get("id")) for aoi in aois],
            "result_count": len(results),
            "results_path": results_path,
            "row_count": row_count,
        }
        log.info(
            "Project %s (%s) is %s after job %s: %d AOIs, %d results, %d rows in %s.",
            project_id,
            summary["project_name"],
            summary["stage"],
            job_id,
            len(aois),
            len(results),
            row_count,
            results_path,
        )
        return summary

    # At parse time these are references to the upstream tasks' XComs, resolved when the task runs.
    job_id: Any = submit_job.output
    project: Any = wait_for_completion.output
    results_path: Any = fetch_results.output
    row_count: Any = XComArg(fetch_results, key="row_count")
    submit_job >> wait_for_completion >> fetch_results
    summarize_results(job_id=job_id, project=project, results_path=results_path, row_count=row_count)


if __name__ == "__main__":
    dag.test()
