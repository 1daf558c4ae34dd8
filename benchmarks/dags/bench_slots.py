"""DAGs that the worker-slot benchmark runs with ``dag.test()``: one sensor per way of waiting.

Both sensors free the slot between pokes (reschedule) or hand the wait to the triggerer
(deferrable); poke mode needs no run, since it holds its slot for the whole wait by definition.
A poke interval of one second keeps the runs short; the cost of a try does not depend on it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_proteus.sensors.proteus import ProjectStageSensor


def wait_dag(mode: str) -> DAG:
    """A DAG whose one task waits for the project named by the ``project_id`` param."""
    with DAG(
        dag_id=f"bench_slots_{mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"project_id": Param("carsdemo-J9fUyV", type="string")},
    ) as dag:
        ProjectStageSensor(
            task_id="wait",
            project_id="{{ params.project_id }}",
            mode="reschedule",
            deferrable=mode == "deferrable",
            poke_interval=1,
            timeout=300,
        )
    return dag


reschedule_dag = wait_dag("reschedule")
deferrable_dag = wait_dag("deferrable")
