"""The provider on Airflow's LocalExecutor with one task slot, driven and observed over REST.

``parallelism`` is 1 throughout, so a wait that held its slot would block every other task: the
waits below only finish as they do because reschedule and deferrable waits give the slot back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from deployment.checks import CONSUMER, SENSOR, WAITING_STATE, Checks
from deployment.harness import AirflowSettings
from deployment.stack import TOKEN, token_leaks

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from deployment.harness import AirflowDeployment

pytestmark = [pytest.mark.deployment, pytest.mark.timeout(600)]

#: The retries of the deployment DAGs' waits.
RETRIES = 3
WAIT_DAGS = ("proteus_deployment_reschedule", "proteus_deployment_deferrable", "proteus_deployment_poke")


@pytest.fixture(scope="module")
def checks(
    local_stack: AirflowDeployment, new_checks: Callable[[str, AirflowDeployment], Checks]
) -> Iterator[Checks]:
    local_stack.start(AirflowSettings(executor="LocalExecutor", parallelism=1))
    local_stack.wait_for_dags(*WAIT_DAGS, "example_proteus", CONSUMER)
    checks = new_checks("LocalExecutor", local_stack)
    yield checks
    checks.collect_mismatches(*WAIT_DAGS, "example_proteus", CONSUMER)


@pytest.mark.parametrize("mode", ["reschedule", "deferrable"])
def test_wait_gives_its_slot_back_and_succeeds(checks: Checks, mode: str) -> None:
    run = checks.wait_gives_back_its_slot(mode)

    assert WAITING_STATE[mode] in run.states()
    assert run.states()[-1] == "success"
    assert run.task_instances[SENSOR]["operator"] == "ProjectStageSensor"


@pytest.mark.parametrize("mode", ["reschedule", "deferrable"])
def test_three_waits_are_under_way_at_once_in_one_slot(checks: Checks, mode: str) -> None:
    runs = checks.three_waits_share_one_slot(mode)

    assert [run.state for run in runs] == ["success"] * 3
    assert all(WAITING_STATE[mode] in run.states() for run in runs)


def test_three_poke_mode_waits_take_turns_in_one_slot(checks: Checks) -> None:
    runs = checks.three_pokes_take_turns()

    assert [run.state for run in runs] == ["success"] * 3
    assert all("up_for_reschedule" not in run.states() for run in runs)


@pytest.mark.parametrize("mode", ["reschedule", "deferrable"])
def test_failed_project_fails_the_run_and_the_log_says_why(checks: Checks, mode: str) -> None:
    run, task_log = checks.failed_project_fails_the_run(mode)

    final_try = run.task_instances[SENSOR]["try_number"]
    assert run.state == "failed"
    assert run.states()[-1] == "failed"
    # The try that saw FAILURE was not retried although retries were left; an earlier try can only
    # have been ended by Airflow 3.3.2's scheduler race, which the check confirms from its events.
    assert final_try <= RETRIES
    assert set(range(1, final_try)) <= checks.mismatched_tries(run)
    assert f"Project {run.project_id} reached stage FAILURE" in task_log


def test_example_dag_submits_waits_and_summarises(checks: Checks) -> None:
    run = checks.example_dag_succeeds("reschedule")

    assert {task: ti["state"] for task, ti in run.task_instances.items()} == {
        "submit_job": "success",
        "wait_for_completion": "success",
        "fetch_results": "success",
        "summarize_results": "success",
    }


def test_results_announced_by_the_example_run_the_dag_scheduled_on_them(checks: Checks) -> None:
    producer, consumer = checks.consumer_runs_on_the_results()

    assert producer.state == consumer.state == "success"
    assert consumer.run_id.startswith("asset_triggered__")
    assert consumer.task_instances["count_rows"]["state"] == "success"


def test_token_is_in_no_log_of_the_deployment(checks: Checks, local_stack: AirflowDeployment) -> None:
    files = [path.name for path in local_stack.log_files()]

    assert "scheduler.log" in files
    assert any(name.startswith("attempt=") for name in files), "no task logs were written"
    assert token_leaks(local_stack) == [], f"{TOKEN} leaked"


def test_the_connection_form_and_its_test_button_speak_to_a_person(checks: Checks) -> None:
    form, answers = checks.connection_form_and_test()

    assert form["hook_name"] == "Orbital Insight GO"
    assert form["standard_fields"]["host"]["title"] == "API base URL"
    assert form["standard_fields"]["password"]["title"] == "API token"
    assert form["standard_fields"]["login"]["hidden"] is True
    assert set(form["extra_fields"]) == {"auth_header", "timeout", "verify", "ca_bundle", "web_url"}
    assert form["extra_fields"]["auth_header"]["schema"]["enum"] == ["token", "bearer"]
    assert answers["good"][0] is True
    assert "the token was accepted" in answers["good"][1]
    assert answers["wrong token"][0] is False
    assert "refused the API token (HTTP 401" in answers["wrong token"][1]
    assert "tok-WRONG-0001" not in answers["wrong token"][1]
    assert answers["unreachable"][0] is False
    assert "the connection was refused" in answers["unreachable"][1]
