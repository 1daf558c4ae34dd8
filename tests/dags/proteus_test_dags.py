"""DAGs that the integration tests run with ``dag.test()`` against the GO emulator.

They differ from the example DAG only in what the tests need to observe: one-second pokes and
retry delays, short wait budgets, and one operator that fails after GO accepted its job, as a
worker would if it died at that moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Asset, AssetAlias, Param, task

from airflow_provider_proteus.operators.proteus import FetchResultsOperator, SubmitJobOperator
from airflow_provider_proteus.sensors.proteus import ProjectStageSensor

PARAMS = {
    "project_id": Param("carsdemo-J9fUyV", type="string"),
    "version_id": Param("carsdemo-J9fUyV-1.0.0", type="string"),
    "proteus_conn_id": Param("proteus_default", type="string"),
}
PROJECT = "{{ params.project_id }}"
VERSION = "{{ params.version_id }}"
CONN = "{{ params.proteus_conn_id }}"


class CrashAfterSubmitOperator(SubmitJobOperator):
    """Submits like its parent, then fails its first try as a worker dying after the POST would."""

    def post_execute(self, context: Any, result: Any = None) -> None:
        if context["ti"].try_number == 1:
            raise RuntimeError("Simulated worker crash after GO accepted the job")


def new_dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params=PARAMS,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
    )


@task
def deliver(job_id: str, project: dict[str, Any]) -> dict[str, Any]:
    """What a downstream task sees: the submit task's job id and the sensor's project document."""
    return {"job_id": job_id, "stage": project["stage"]}


def submit_and_wait(dag_id: str, submit_class: type[SubmitJobOperator] = SubmitJobOperator) -> DAG:
    with new_dag(dag_id) as dag:
        submit = submit_class(
            task_id="submit_job", project_id=PROJECT, version_id=VERSION, proteus_conn_id=CONN
        )
        wait = ProjectStageSensor(
            task_id="wait_for_completion",
            project_id=PROJECT,
            proteus_conn_id=CONN,
            poke_interval=1,
            timeout=60,
        )
        job_id: Any = submit.output
        project: Any = wait.output
        submit >> wait
        deliver(job_id=job_id, project=project)
    return dag


def wait_only(dag_id: str, **sensor_arguments: Any) -> DAG:
    with new_dag(dag_id) as dag:
        ProjectStageSensor(
            task_id="wait_for_completion", project_id=PROJECT, proteus_conn_id=CONN, **sensor_arguments
        )
    return dag


submit_and_wait_dag = submit_and_wait("proteus_submit_and_wait")
crash_after_submit_dag = submit_and_wait("proteus_crash_after_submit", CrashAfterSubmitOperator)
wait_dag = wait_only("proteus_wait", poke_interval=1, timeout=60)
# The same waits, deferred to the triggerer (dag.test() runs the trigger in line).
wait_deferrable_dag = wait_only("proteus_wait_deferrable", poke_interval=1, timeout=60, deferrable=True)
wait_budget_deferrable_dag = wait_only(
    "proteus_wait_budget_deferrable", poke_interval=1, timeout=3, deferrable=True
)
wait_budget_soft_deferrable_dag = wait_only(
    "proteus_wait_budget_soft_deferrable", poke_interval=1, timeout=3, soft_fail=True, deferrable=True
)
wait_soft_deferrable_dag = wait_only(
    "proteus_wait_soft_deferrable", poke_interval=1, timeout=60, soft_fail=True, deferrable=True
)
wait_budget_dag = wait_only("proteus_wait_budget", poke_interval=1, timeout=3)
wait_budget_soft_dag = wait_only("proteus_wait_budget_soft", poke_interval=1, timeout=3, soft_fail=True)
wait_soft_dag = wait_only("proteus_wait_soft", poke_interval=1, timeout=60, soft_fail=True)
backoff_dag = wait_only(
    "proteus_wait_backoff",
    poke_interval=1,
    timeout=120,
    exponential_backoff=True,
    max_wait=timedelta(seconds=4),
)


def submit_waiting(dag_id: str, *, deferrable: bool) -> DAG:
    with new_dag(dag_id) as dag:
        submit = SubmitJobOperator(
            task_id="submit_job",
            project_id=PROJECT,
            version_id=VERSION,
            proteus_conn_id=CONN,
            wait_for_completion=True,
            deferrable=deferrable,
            poke_interval=1,
            timeout=60,
        )
        job_id: Any = submit.output
        deliver(job_id=job_id, project={"stage": "COMPLETED"})
    return dag


submit_waiting_dag = submit_waiting("proteus_submit_waiting", deferrable=False)
submit_waiting_deferrable_dag = submit_waiting("proteus_submit_waiting_deferrable", deferrable=True)


#: The asset of the project the results tests run, and the aliases their tasks announce it through.
RESULTS_PROJECT = "proj-res"
RESULTS_ASSET = Asset(f"proteus://{RESULTS_PROJECT}/{RESULTS_PROJECT}-1.0.0")
COMPLETED_ALIAS = AssetAlias("proteus-tests-completed")
RESULTS_ALIAS = AssetAlias("proteus-tests-results")


def submit_wait_fetch(dag_id: str, **fetch_arguments: Any) -> DAG:
    """Submit, wait (announcing the completed version), and write the results to the path param."""
    dag = new_dag(dag_id)
    dag.params.update(
        {"path": Param("file:///tmp/results.csv", type="string"), "file_format": Param("csv", type="string")}
    )
    with dag:
        submit = SubmitJobOperator(
            task_id="submit_job", project_id=PROJECT, version_id=VERSION, proteus_conn_id=CONN
        )
        wait = ProjectStageSensor(
            task_id="wait_for_completion",
            project_id=PROJECT,
            version_id=VERSION,
            proteus_conn_id=CONN,
            poke_interval=1,
            timeout=60,
            outlets=[COMPLETED_ALIAS],
        )
        fetch = FetchResultsOperator(
            task_id="fetch_results",
            project_id=PROJECT,
            version_id=VERSION,
            path="{{ params.path }}",
            file_format=fetch_arguments.pop("file_format", "csv"),
            proteus_conn_id=CONN,
            outlets=[RESULTS_ALIAS],
            **fetch_arguments,
        )
        submit >> wait >> fetch
    return dag


fetch_results_dag = submit_wait_fetch("proteus_fetch_results")
fetch_results_jsonl_dag = submit_wait_fetch("proteus_fetch_results_jsonl", file_format="jsonl")

with new_dag("proteus_fetch_only") as fetch_only_dag:
    FetchResultsOperator(
        task_id="fetch_results",
        project_id=PROJECT,
        version_id=VERSION,
        path="file:///tmp/proteus-fetch-only.csv",
        proteus_conn_id=CONN,
    )

with DAG(
    dag_id="proteus_results_consumer",
    schedule=[RESULTS_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
) as results_consumer_dag:

    @task
    def read_announcement(triggering_asset_events: Any = None) -> None:
        """A consumer scheduled on the project version's asset."""

    read_announcement()
