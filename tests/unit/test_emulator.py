"""The GO emulator behaves like GO's documentation says, and its control surface works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID
from tests.conftest import TOKEN

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator


def go(
    emulator: GoEmulator, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any
) -> requests.Response:
    headers = {"X-Orbitalinsight-Auth-Token": token} if token else {}
    return requests.request(method, f"{emulator.base_url}{path}", headers=headers, timeout=10, **kwargs)


def stage(emulator: GoEmulator, project_id: str) -> str:
    response = go(emulator, "GET", f"/projects/{project_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200
    return str(body["data"]["stage"])


def test_stage_lifecycle(emulator: GoEmulator, control: EmulatorClient) -> None:
    control.add_project(id="life-1", start_delay_seconds=0.3, run_seconds=0.5)
    assert stage(emulator, "life-1") == "NOT_STARTED"
    posted = go(emulator, "POST", "/projects/life-1/versions/life-1-1.0.0/job", json={"active": True})
    assert posted.status_code == 201
    assert posted.json()["data"]["streamx_data"]["id"]
    assert stage(emulator, "life-1") == "NOT_STARTED"
    time.sleep(0.4)
    assert stage(emulator, "life-1") == "RUNNING"
    time.sleep(0.5)
    assert stage(emulator, "life-1") == "COMPLETED"


def test_a_project_configured_to_fail(emulator: GoEmulator, control: EmulatorClient) -> None:
    control.add_project(id="doomed-1", run_seconds=0, outcome="FAILURE")
    go(emulator, "POST", "/projects/doomed-1/versions/doomed-1-1.0.0/job", json={"active": True})
    assert stage(emulator, "doomed-1") == "FAILURE"


def test_scripted_stages_are_served_in_order(emulator: GoEmulator, control: EmulatorClient) -> None:
    control.add_project(id="odd-1", stages=["QUEUED", "QUEUED", "COMPLETED"])
    assert [stage(emulator, "odd-1") for _ in range(4)] == ["QUEUED", "QUEUED", "COMPLETED", "COMPLETED"]


def test_demo_project_has_one_version_and_two_aois(emulator: GoEmulator) -> None:
    project = go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}").json()["data"]
    assert project["version_ids"] == [DEMO_VERSION_ID]
    aois = go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}/versions/{DEMO_VERSION_ID}/aois").json()["data"]
    assert len(aois) == 2


@pytest.mark.parametrize("token", [None, "tok-WRONG"])
def test_token_is_required(emulator: GoEmulator, token: str | None) -> None:
    response = go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}", token=token)
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_bearer_token_is_accepted(emulator: GoEmulator) -> None:
    response = requests.get(
        f"{emulator.base_url}/projects/{DEMO_PROJECT_ID}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/projects/nope", f"/projects/{DEMO_PROJECT_ID}/versions/nope/aois", "/projects/nope/versions/v/job"],
)
def test_unknown_projects_and_versions_are_404(emulator: GoEmulator, path: str) -> None:
    method = "POST" if path.endswith("/job") else "GET"
    assert go(emulator, method, path, json={"active": True}).status_code == 404


def test_job_body_must_be_active_true(emulator: GoEmulator) -> None:
    response = go(emulator, "POST", f"/projects/{DEMO_PROJECT_ID}/versions/{DEMO_VERSION_ID}/job", json={})
    assert response.status_code == 400


def test_create_project(emulator: GoEmulator) -> None:
    response = go(emulator, "POST", "/projects", json={"name": "looking_glass", "description": "x"})
    assert response.status_code == 201
    project = response.json()["data"]
    assert project["stage"] == "NOT_STARTED"
    assert project["version_ids"] == [f"{project['id']}-1.0.0"]
    assert stage(emulator, project["id"]) == "NOT_STARTED"


def test_results_and_time_series_page_with_limit_and_offset(
    emulator: GoEmulator, control: EmulatorClient
) -> None:
    control.add_project(id="big-1", aoi_count=10, timeseries_days=50, stages=["COMPLETED"])
    base = "/projects/big-1/versions/big-1-1.0.0"
    results = go(emulator, "GET", f"{base}/results", params={"limit": -1}).json()["data"]
    assert len(results) == 30  # a division per AOI and two sub-divisions each
    first = go(emulator, "GET", f"{base}/results", params={"limit": 7}).json()["data"]
    rest = go(emulator, "GET", f"{base}/results", params={"limit": 100, "offset": 7}).json()["data"]
    assert first + rest == results
    series = go(emulator, "GET", f"{base}/results/{results[0]['id']}/timeseries/raw.count").json()["data"]
    assert len(series) == 50
    assert set(series[0]) == {"x_value", "y_value"}
    assert series[0]["x_value"] == {"obs_date": "2026-01-01", "field_format": "%Y-%m-%d"}
    assert go(emulator, "GET", f"{base}/results", params={"limit": "x"}).status_code == 400
    assert go(emulator, "GET", f"{base}/results/nope/timeseries/raw.count").status_code == 404


def test_results_appear_only_when_completed(emulator: GoEmulator) -> None:
    response = go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}/versions/{DEMO_VERSION_ID}/results")
    assert response.json()["data"] == []


def test_dropped_connection_reaches_the_client_as_one(emulator: GoEmulator, control: EmulatorClient) -> None:
    control.add_faults("GET", f"/projects/{DEMO_PROJECT_ID}", {"drop": True})
    with pytest.raises(requests.ConnectionError, match="Remote end closed connection without response"):
        go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}")


def test_scripted_fault_then_normal_service(emulator: GoEmulator, control: EmulatorClient) -> None:
    control.add_faults(
        "GET",
        "*",
        {"status": 503, "retry_after": 2, "body": "<html>busy</html>", "content_type": "text/html"},
    )
    busy = go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}")
    assert (busy.status_code, busy.headers["Retry-After"], busy.text) == (503, "2", "<html>busy</html>")
    assert go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}").status_code == 200


def test_request_log_never_holds_the_token(emulator: GoEmulator, control: EmulatorClient) -> None:
    go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}")
    go(emulator, "GET", f"/projects/{DEMO_PROJECT_ID}", token="tok-WRONG")
    log = control.requests()
    assert [(entry["status"], entry["authenticated"]) for entry in log] == [(200, True), (401, False)]
    assert TOKEN not in json.dumps(log)
    assert "tok-WRONG" not in json.dumps(log)


def test_command_line_serves_until_terminated(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "airflow_provider_proteus.testing"),
            *("--port", "0", "--port-file", str(port_file), "--token", "tok-PRIVATE"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            assert process.poll() is None, "the emulator exited"
            assert time.monotonic() < deadline, "the emulator did not start in 30 s"
            time.sleep(0.1)
        root = f"http://127.0.0.1:{port_file.read_text()}"
        assert requests.get(f"{root}/_emulator/health", timeout=10).json() == {"status": "ok"}
        project = requests.get(
            f"{root}/api/v2/go/projects/{DEMO_PROJECT_ID}",
            headers={"X-Orbitalinsight-Auth-Token": "tok-PRIVATE"},
            timeout=10,
        )
        assert project.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "GO emulator serving" in output
    assert "tok-PRIVATE" not in output


def test_runtime_modules_do_not_import_the_emulator() -> None:
    code = (
        "import sys, airflow_provider_proteus.operators.proteus, airflow_provider_proteus.sensors.proteus;"
        "print(sorted(m for m in sys.modules if m.startswith('airflow_provider_proteus.testing')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert result.stdout.strip() == "[]"


def test_request_delayed_across_a_reset_is_not_served(emulator: GoEmulator, control: EmulatorClient) -> None:
    job_path = f"/projects/{DEMO_PROJECT_ID}/versions/{DEMO_VERSION_ID}/job"
    control.add_faults("POST", job_path, {"delay": 1})
    outcome: list[Any] = []
    sender = threading.Thread(
        target=lambda: outcome.append(_attempt(lambda: go(emulator, "POST", job_path, json={"active": True})))
    )
    sender.start()
    time.sleep(0.3)
    control.reset()
    sender.join(timeout=10)

    assert isinstance(outcome[0], requests.ConnectionError)
    assert stage(emulator, DEMO_PROJECT_ID) == "NOT_STARTED"


def _attempt(call: Any) -> Any:
    try:
        return call()
    except requests.RequestException as err:
        return err
