"""DAGs that the deployment checks run on a real scheduler, triggerer and executor.

Each DAG only waits on a project (the project id is a DAG param), one DAG per way of waiting, so
that a check can hold several waits open at once and watch what each costs the executor.

Airflow 3.3.2's scheduler can fail a reschedule-mode task that it has just re-queued, or a
deferred task that it resumes, while it still processes the executor's report of the previous
attempt (it logs a "state mismatch"). The waits are idempotent, so a task retry absorbs it. With
5-second pokes these DAGs meet the race far more often than a production DAG polling every 15
minutes, and on a busy machine it has ended two tries of one task in a row: hence 5 retries, where
the example DAG has 3.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_proteus.sensors.proteus import ProjectStageSensor

#: Seconds between pokes. Short, so that checks finish in seconds; the race above hits more
#: often the shorter the interval, which makes these runs a harsh test of the retry advice.
POKE_INTERVAL = {"reschedule": 5.0, "deferrable": 5.0, "poke": 2.0}


def wait_dag(mode: str) -> DAG:
    """A DAG whose one task waits for the project named by the ``project_id`` param."""
    with DAG(
        dag_id=f"proteus_deployment_{mode}",
        description=f"Wait for a GO project in {mode} mode.",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"project_id": Param("carsdemo-J9fUyV", type="string")},
        default_args={"retries": 5, "retry_delay": timedelta(seconds=2)},
        tags=["proteus", "deployment"],
    ) as dag:
        sensor_arguments: dict[str, Any] = {
            "mode": "poke" if mode == "poke" else "reschedule",
            "deferrable": mode == "deferrable",
        }
        ProjectStageSensor(
            task_id="wait_for_completion",
            project_id="{{ params.project_id }}",
            poke_interval=POKE_INTERVAL[mode],
            timeout=600,
            **sensor_arguments,
        )
    return dag


reschedule_dag = wait_dag("reschedule")
deferrable_dag = wait_dag("deferrable")
poke_dag = wait_dag("poke")
