"""Results written to object storage, asset events and the "GO project" link, through real DAG runs."""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING

import pytest

from airflow_provider_proteus.testing.airflow_runs import AIRFLOW_CLI, describe_asset, extra_link
from tests.conftest import TOKEN
from tests.dags.proteus_test_dags import RESULTS_ASSET, RESULTS_PROJECT
from tests.integration.conftest import TaskLogReader, run_dag

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator

pytestmark = pytest.mark.integration

P = RESULTS_PROJECT
V = f"{P}-1.0.0"
#: 3 AOIs, each with a division and two sub-divisions: 9 results, 2 series each, 10 days each.
ROWS = 9 * 2 * 10


@pytest.fixture
def results_project(control: EmulatorClient) -> str:
    control.add_project(id=P, aoi_count=3, timeseries_days=10, run_seconds=2)
    return P


def run(dag: DAG, **conf: str) -> object:
    return run_dag(dag, project_id=P, version_id=V, **conf)


def test_results_are_written_as_csv_and_only_the_path_travels_through_xcom(
    test_dags: dict[str, DAG], results_project: str, proteus_conn: str, tmp_path: Path
) -> None:
    target = tmp_path / "not-yet-made" / "results.csv"

    run = run_dag(test_dags["proteus_fetch_results"], project_id=P, version_id=V, path=f"file://{target}")

    assert run.state == "success"
    fetch = run.tasks["fetch_results"]
    assert fetch.xcoms["return_value"] == f"file://{target}"
    assert fetch.xcoms["row_count"] == ROWS
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == ROWS
    assert {row["result_id"] for row in rows} == {f"result-{P}-aoi-{n}" for n in (1, 2, 3)} | {
        f"result-{P}-aoi-{n}-lot-{lot}" for n in (1, 2, 3) for lot in (1, 2)
    }
    assert rows[0]["aoi_name"] == "Distribution Center Parking, Reno NV"
    assert rows[0]["observed_at"] == "2026-01-01"
    # The rows are in the file, never in the metadata database.
    assert len(json.dumps(fetch.xcoms)) < 1000
    assert TOKEN not in json.dumps(fetch.xcoms) + json.dumps(fetch.rendered_fields)


def test_results_can_be_written_as_json_lines(
    test_dags: dict[str, DAG], results_project: str, proteus_conn: str, tmp_path: Path
) -> None:
    target = tmp_path / "results.jsonl"

    run = run_dag(
        test_dags["proteus_fetch_results_jsonl"], project_id=P, version_id=V, path=f"file://{target}"
    )

    assert run.state == "success"
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) == ROWS
    assert isinstance(lines[0]["value"], int)
    assert lines[0]["parent_division_id"] is None


def test_completion_and_results_are_announced_as_asset_events_that_queue_the_consumer(
    test_dags: dict[str, DAG], results_project: str, proteus_conn: str, tmp_path: Path
) -> None:
    target = tmp_path / "results.csv"

    run = run_dag(test_dags["proteus_fetch_results"], project_id=P, version_id=V, path=f"file://{target}")

    assert run.state == "success"
    asset = describe_asset(RESULTS_ASSET.uri)
    completed, written = asset.events[-2:]
    assert (completed["task_id"], completed["extra"]) == (
        "wait_for_completion",
        {"project_id": P, "version_id": V, "stage": "COMPLETED"},
    )
    assert (written["task_id"], written["extra"]) == (
        "fetch_results",
        {"path": f"file://{target}", "file_format": "csv", "row_count": ROWS},
    )
    assert asset.queued_dag_ids == ["proteus_results_consumer"]


def test_tasks_link_to_the_project_page_also_when_the_wait_never_ends(
    test_dags: dict[str, DAG], control: EmulatorClient, proteus_conn: str
) -> None:
    control.add_project(id="stuck-1", stages=["RUNNING"])

    dag = test_dags["proteus_wait_budget"]
    run = run_dag(dag, project_id="stuck-1")

    assert run.tasks["wait_for_completion"].state == "failed"
    link = extra_link(dag, run.run_id, "wait_for_completion", "GO project")
    assert link == f"{control.root_url}/web/projects/stuck-1"


def test_fetching_before_completion_fails_without_retries_and_writes_nothing(
    test_dags: dict[str, DAG], control: EmulatorClient, proteus_conn: str, task_log: TaskLogReader
) -> None:
    control.add_project(id=P, stages=["RUNNING"])

    run = run_dag(test_dags["proteus_fetch_only"], project_id=P, version_id=V)

    fetch = run.tasks["fetch_results"]
    assert (fetch.state, fetch.try_number) == ("failed", 1)
    assert f"Project {P} is at stage RUNNING, not COMPLETED, so its results are not ready" in task_log().out
    assert control.requests(path=f"/projects/{P}/versions/{V}/results") == []


def test_a_failure_while_writing_leaves_no_partial_file(
    test_dags: dict[str, DAG],
    results_project: str,
    control: EmulatorClient,
    proteus_conn: str,
    tmp_path: Path,
) -> None:
    target = tmp_path / "results.csv"
    series = f"/projects/{P}/versions/{V}/results/result-{P}-aoi-2/timeseries/raw.count"
    control.add_faults("GET", series, {"status": 403})

    run = run_dag(test_dags["proteus_fetch_results"], project_id=P, version_id=V, path=f"file://{target}")

    assert run.tasks["fetch_results"].state == "failed"
    assert run.tasks["fetch_results"].try_number == 1
    assert not target.exists()
    assert control.requests(path=series)[0]["status"] == 403


def test_the_mapped_example_runs_each_project_on_its_own(
    metadata_db: None, control: EmulatorClient, proteus_conn: str, tmp_path: Path
) -> None:
    from tests.integration.conftest import load_dags

    projects = ["map-a", "map-b", "map-c"]
    for project in projects:
        # The submit task's check, a first poke that finds the job running, then COMPLETED.
        stages = ["NOT_STARTED", "RUNNING", "COMPLETED"]
        control.add_project(id=project, aoi_count=1, timeseries_days=4, stages=stages)
    dag = load_dags("example_proteus_mapped.py")["example_proteus_mapped"]

    run = dag.test(
        run_conf={
            "project_ids": projects,
            "proteus_conn_id": "proteus_default",
            "results_uri": f"file://{tmp_path}",
        }
    )

    from airflow_provider_proteus.testing.airflow_runs import describe_run

    summary = describe_run(dag.dag_id, run.run_id)
    assert summary.state == "success"
    for index, project in enumerate(projects):
        assert summary.tasks[f"submit_job[{index}]"].state == "success"
        assert summary.tasks[f"wait_for_completion[{index}]"].reschedules == 1
        fetch = summary.tasks[f"fetch_results[{index}]"]
        target = tmp_path / project / f"{project}-1.0.0.csv"
        assert fetch.xcoms["return_value"] == f"file://{target}"
        assert len(target.read_text().splitlines()) == 1 + 3 * 2 * 4
        assert (
            len(control.requests(method="POST", path=f"/projects/{project}/versions/{project}-1.0.0/job"))
            == 1
        )
        assert describe_asset(f"proteus://{project}/{project}-1.0.0").events[-1]["task_id"] == "fetch_results"


def test_openlineage_hears_of_the_version_and_the_results_file(
    results_project: str, emulator: GoEmulator, tmp_path: Path, metadata_db: None
) -> None:
    import os
    import subprocess

    from tests.conftest import DAGS_FOLDER

    events_file = tmp_path / "openlineage.jsonl"
    target = tmp_path / "results.csv"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW_CONN_PROTEUS_DEFAULT": emulator.connection_json(retry_backoff=0.01),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
    }
    conf = {
        "project_id": P,
        "version_id": V,
        "proteus_conn_id": "proteus_default",
        "path": f"file://{target}",
    }
    done = subprocess.run(
        [AIRFLOW_CLI, "dags", "test", "proteus_fetch_results", "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    completes = {
        event["job"]["name"].rsplit(".", 1)[-1]: event
        for event in events
        if event.get("eventType") == "COMPLETE"
    }
    datasets = {
        task: (
            [(d["namespace"], d["name"]) for d in e["inputs"]],
            [(d["namespace"], d["name"]) for d in e["outputs"]],
        )
        for task, e in completes.items()
    }
    assert datasets["submit_job"] == ([], [(f"proteus://{P}", V)])
    assert datasets["fetch_results"] == ([(f"proteus://{P}", V)], [("file", str(target))])
    assert TOKEN not in events_file.read_text()
