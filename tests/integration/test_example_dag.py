"""The example DAG, run for real by Airflow (``dag.test()``) against the GO emulator."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID
from airflow_provider_proteus.testing.airflow_runs import describe_asset, extra_link
from tests.conftest import TOKEN

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator
    from tests.integration.conftest import RunExample, TaskLogReader

pytestmark = pytest.mark.integration


def test_submits_waits_in_reschedule_mode_writes_the_results_and_summarises(
    run_example: RunExample,
    example_dag: DAG,
    control: EmulatorClient,
    task_log: TaskLogReader,
    tmp_path: Path,
) -> None:
    # A stage per read of the project, however slow a loaded machine runs the tasks: the submit task's
    # check, a first poke that finds the job running, then COMPLETED for every read after.
    control.update_project(DEMO_PROJECT_ID, stages=["NOT_STARTED", "RUNNING", "COMPLETED"])
    run = run_example()
    output = task_log()

    assert run.state == "success"
    assert [task.state for task in run.tasks.values()] == ["success"] * 4
    [post] = control.requests(method="POST")
    results_file = tmp_path / "results" / DEMO_PROJECT_ID / f"{DEMO_VERSION_ID}.csv"
    submit, wait, summary = (
        run.tasks["submit_job"],
        run.tasks["wait_for_completion"],
        run.tasks["summarize_results"],
    )
    assert submit.xcoms["return_value"] == post["job_id"]
    assert submit.xcoms["job_type"] == "STREAMX"
    assert submit.xcoms["project_url"] == f"{control.root_url}/web/projects/{DEMO_PROJECT_ID}"
    assert wait.reschedules == 1
    assert wait.xcoms["return_value"]["stage"] == "COMPLETED"
    assert summary.xcoms["return_value"] == {
        "project_id": DEMO_PROJECT_ID,
        "project_name": "Car counting demo",
        "stage": "COMPLETED",
        "job_id": post["job_id"],
        "aois": ["Distribution Center Parking, Reno NV", "Outlet Mall Parking, Rotterdam"],
        "result_count": 6,
        "results_path": f"file://{results_file}",
        "row_count": 6 * 2 * 30,
    }
    assert len(results_file.read_text().splitlines()) == 1 + 6 * 2 * 30
    assert (
        extra_link(example_dag, run.run_id, "submit_job", "GO project")
        == extra_link(example_dag, run.run_id, "wait_for_completion", "GO project")
        == (f"{control.root_url}/web/projects/{DEMO_PROJECT_ID}")
    )
    asset = describe_asset(f"proteus://{DEMO_PROJECT_ID}/{DEMO_VERSION_ID}")
    assert asset.events[-1]["extra"] == {
        "path": f"file://{results_file}",
        "file_format": "csv",
        "row_count": 6 * 2 * 30,
    }
    assert asset.queued_dag_ids == ["example_proteus_consumer"]
    stages = [entry["stage"] for entry in control.requests(method="GET", path=f"/projects/{DEMO_PROJECT_ID}")]
    # After the sensor, only the results task reads the project again.
    assert stages == ["NOT_STARTED", "RUNNING", "COMPLETED", "COMPLETED"]
    assert f"Submitted STREAMX job {post['job_id']} for project {DEMO_PROJECT_ID}" in output.out
    assert f"Project {DEMO_PROJECT_ID} is at stage COMPLETED." in output.out
    assert TOKEN not in output.out + output.err
    assert TOKEN not in json.dumps([task.xcoms for task in run.tasks.values()])


def test_failed_project_fails_the_sensor_without_retries(
    run_example: RunExample, control: EmulatorClient
) -> None:
    control.add_project(id="doomed-1", outcome="FAILURE", run_seconds=1)
    run = run_example(project_id="doomed-1", version_id="doomed-1-1.0.0")

    assert run.state == "failed"
    assert run.tasks["submit_job"].state == "success"
    wait = run.tasks["wait_for_completion"]
    assert wait.state == "failed"
    assert wait.try_number == 1  # the DAG allows 3 retries; a FAILURE stage must not use them
    assert run.tasks["fetch_results"].state == "upstream_failed"
    assert run.tasks["summarize_results"].state == "upstream_failed"


def test_wrong_token_fails_the_submission_at_once(
    run_example: RunExample,
    emulator: GoEmulator,
    control: EmulatorClient,
    monkeypatch: pytest.MonkeyPatch,
    task_log: TaskLogReader,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_WRONG_TOKEN",
        json.dumps({"conn_type": "proteus", "host": emulator.base_url, "password": "tok-WRONG"}),
    )
    run = run_example(proteus_conn_id="proteus_wrong_token")
    output = task_log()

    assert run.state == "failed"
    assert (run.tasks["submit_job"].state, run.tasks["submit_job"].try_number) == ("failed", 1)
    assert "return_value" not in run.tasks["submit_job"].xcoms
    assert [(entry["method"], entry["status"]) for entry in control.requests()] == [("GET", 401)]
    assert "with HTTP 401" in output.out
    assert "Check the API token" in output.out
    assert "tok-WRONG" not in output.out + output.err


def test_unknown_project_fails_the_submission_at_once(
    run_example: RunExample, control: EmulatorClient
) -> None:
    run = run_example(project_id="no-such-project", version_id=DEMO_VERSION_ID)

    assert run.state == "failed"
    assert (run.tasks["submit_job"].state, run.tasks["submit_job"].try_number) == ("failed", 1)
    assert run.tasks["wait_for_completion"].state == "upstream_failed"
    assert [(entry["method"], entry["status"]) for entry in control.requests()] == [("GET", 404)]
