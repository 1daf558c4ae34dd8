"""One table of waiting cases, run through real DAGs in reschedule mode and in deferrable mode."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import TOKEN
from tests.integration.conftest import run_dag

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator

pytestmark = pytest.mark.integration

P = "proj-42"

#: (case, emulator project settings, faults on the project read, DAG, expected sensor state)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str]] = [
    ("completes", {"stages": ["RUNNING", "RUNNING", "COMPLETED"]}, [], "proteus_wait", "success"),
    (
        "completes-through-faults",
        {"stages": ["RUNNING", "COMPLETED"]},
        [{"status": 503}, {"drop": True}],
        "proteus_wait",
        "success",
    ),
    ("already-completed", {"stages": ["COMPLETED"]}, [], "proteus_wait", "success"),
    ("fails", {"stages": ["RUNNING", "FAILURE"]}, [], "proteus_wait", "failed"),
    ("unknown-stage", {"stages": ["RUNNING", "QUEUED"]}, [], "proteus_wait", "failed"),
    (
        "no-stage",
        {"stages": ["RUNNING"]},
        [{}, {"status": 200, "body": '{"data": {"id": "proj-42"}}'}],
        "proteus_wait",
        "failed",
    ),
    ("auth-error", {"stages": ["RUNNING"]}, [{}, {"status": 401}], "proteus_wait", "failed"),
    ("timeout", {"stages": ["RUNNING"]}, [], "proteus_wait_budget", "failed"),
    ("timeout-soft-fail", {"stages": ["RUNNING"]}, [], "proteus_wait_budget_soft", "skipped"),
    ("failure-soft-fail", {"stages": ["RUNNING", "FAILURE"]}, [], "proteus_wait_soft", "failed"),
]


#: dag.test() runs a deferred task's trigger in line and never times it out, so the wait budget of a
#: deferred sensor is proven by the unit tests and the deployment test, not here.
NEEDS_A_TRIGGERER = {"timeout", "timeout-soft-fail"}

RUNS = [
    pytest.param(deferrable, *case, id=f"{case[0]}-{'deferrable' if deferrable else 'reschedule'}")
    for case in CASES
    for deferrable in (False, True)
    if not (deferrable and case[0] in NEEDS_A_TRIGGERER)
]


@pytest.mark.parametrize(("deferrable", "case", "project", "faults", "dag_id", "expected"), RUNS)
def test_both_wait_modes_reach_the_same_outcome(
    test_dags: dict[str, DAG],
    emulator: GoEmulator,
    control: EmulatorClient,
    monkeypatch: pytest.MonkeyPatch,
    deferrable: bool,
    case: str,
    project: dict[str, Any],
    faults: list[dict[str, Any]],
    dag_id: str,
    expected: str,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(retry_backoff=0.01, max_retries=1)
    )
    control.add_project(id=P, **project)
    if faults:
        control.add_faults("GET", f"/projects/{P}", *faults)
    dag = test_dags[f"{dag_id}_deferrable" if deferrable else dag_id]
    result = run_dag(dag, project_id=P, version_id=f"{P}-1.0.0")

    wait = result.tasks["wait_for_completion"]
    assert (wait.state, wait.try_number) == (expected, 1)
    if expected == "success":
        assert wait.xcoms["return_value"]["stage"] == "COMPLETED"
    assert TOKEN not in json.dumps(wait.xcoms)


@pytest.mark.parametrize(
    ("dag_id", "stage", "expected"),
    [
        ("proteus_submit_waiting", "COMPLETED", "success"),
        ("proteus_submit_waiting_deferrable", "COMPLETED", "success"),
        ("proteus_submit_waiting", "FAILURE", "failed"),
        ("proteus_submit_waiting_deferrable", "FAILURE", "failed"),
    ],
)
def test_submit_operator_waits_in_either_mode(
    test_dags: dict[str, DAG],
    emulator: GoEmulator,
    control: EmulatorClient,
    monkeypatch: pytest.MonkeyPatch,
    dag_id: str,
    stage: str,
    expected: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(retry_backoff=0.01))
    control.add_project(id=P, run_seconds=2, outcome=stage)
    result = run_dag(test_dags[dag_id], project_id=P, version_id=f"{P}-1.0.0")

    submit = result.tasks["submit_job"]
    [post] = control.requests(method="POST")
    assert (submit.state, submit.try_number) == (expected, 1)
    assert submit.xcoms["job_id"] == post["job_id"]  # pushed before the wait, whatever its outcome
    if expected == "success":
        assert submit.xcoms["return_value"] == post["job_id"]
        assert result.tasks["deliver"].xcoms["return_value"]["job_id"] == post["job_id"]
    stages = [entry["stage"] for entry in control.requests(method="GET")]
    assert stages[-1] == stage
