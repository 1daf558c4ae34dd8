"""Run whenever the demo project's version announces new results: count the rows of its file.

The DAG is scheduled on the ``proteus://`` asset of one project version. ``example_proteus``'s
``fetch_results`` task announces it with the results file's path in the event's extra, so this DAG
reads the file from wherever it was written (any Airflow object storage URI) without GO.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath, task

from airflow_provider_proteus.assets.proteus import create_asset

log = logging.getLogger("example_proteus_consumer")

DEMO_RESULTS = create_asset(project_id="carsdemo-J9fUyV", version_id="carsdemo-J9fUyV-1.0.0")

with DAG(
    dag_id="example_proteus_consumer",
    description="Count the rows of a GO project version's results file when it is announced.",
    schedule=[DEMO_RESULTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["proteus", "example"],
) as dag:

    @task
    def count_rows(triggering_asset_events: Any = None) -> dict[str, Any]:
        """Count the data rows of the results file named by the latest event of the asset."""
        event = triggering_asset_events[DEMO_RESULTS][-1]
        path = ObjectStoragePath(event.extra["path"])
        with path.open("r", encoding="utf-8") as file:  # type: ignore[no-untyped-call]
            rows = sum(1 for _ in file) - 1
        log.info("The results of %s at %s hold %d rows.", DEMO_RESULTS.uri, path, rows)
        return {"path": str(path), "rows": rows}

    count_rows()


if __name__ == "__main__":
    dag.test()
