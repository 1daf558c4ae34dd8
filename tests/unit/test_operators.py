"""SubmitJobOperator against the GO emulator, with a stand-in task instance for XCom."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_proteus.exceptions import ProteusHTTPError
from airflow_provider_proteus.operators.proteus import SUBMISSION_KEY, SubmitJobOperator
from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID
from airflow_provider_proteus.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator

JOB_PATH = f"/projects/{DEMO_PROJECT_ID}/versions/{DEMO_VERSION_ID}/job"


class DictStateStore:
    """Airflow 3.3's task state store, kept in a dict: it outlives the tries of one task instance."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def run(
    operator: SubmitJobOperator, *, try_number: int = 1, store: DictStateStore | None = None
) -> tuple[Any, dict[str, Any]]:
    """Execute the operator; return its result and what it pushed to XCom by key."""
    ti = mock.Mock(try_number=try_number)
    context = {"ti": ti} if store is None else {"ti": ti, "task_state_store": store}
    result = operator.execute(context)  # type: ignore[arg-type]
    pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
    return result, pushed


def posts(control: EmulatorClient) -> int:
    return len(control.requests(method="POST"))


def submit(project_id: str = DEMO_PROJECT_ID, version_id: str = DEMO_VERSION_ID) -> SubmitJobOperator:
    return SubmitJobOperator(task_id="submit", project_id=project_id, version_id=version_id)


def test_templated_fields() -> None:
    assert set(SubmitJobOperator.template_fields) == {"project_id", "version_id", "proteus_conn_id"}


def test_constructor_arguments_are_keyword_only() -> None:
    # Airflow 2's operator metaclass refuses positional arguments before the constructor sees them.
    with pytest.raises(TypeError if AIRFLOW_V_3_0_PLUS else AirflowException):
        SubmitJobOperator("submit", DEMO_PROJECT_ID, DEMO_VERSION_ID)  # type: ignore[misc]


def test_returns_the_job_id_and_pushes_type_and_page(proteus_conn: str, control: EmulatorClient) -> None:
    job_id, pushed = run(submit())
    [post] = control.requests(method="POST", path=JOB_PATH)
    assert job_id == post["job_id"]
    assert pushed == {
        "job_id": job_id,
        "job_type": "STREAMX",
        "project_url": f"{control.root_url}/web/projects/{DEMO_PROJECT_ID}",
    }


def test_undocumented_job_type_is_read_from_its_own_sub_object(
    proteus_conn: str, control: EmulatorClient
) -> None:
    control.add_project(id="af-1", job_type="AIRFLOW")
    job_id, pushed = run(submit("af-1", "af-1-1.0.0"))
    assert job_id == control.requests(method="POST")[0]["job_id"]
    assert pushed["job_type"] == "AIRFLOW"


@pytest.mark.parametrize("status", [429, 503])
def test_refused_submission_may_be_retried(proteus_conn: str, control: EmulatorClient, status: int) -> None:
    store = DictStateStore()
    control.add_faults("POST", JOB_PATH, *[{"status": status}] * 6)
    with pytest.raises(ProteusHTTPError) as caught:
        run(submit(), store=store)
    assert caught.value.transient
    assert store.values == {}
    job_id, _ = run(submit(), try_number=2, store=store)
    assert [entry["status"] for entry in control.requests(method="POST")] == [status] * 6 + [201]
    assert job_id == control.requests(method="POST")[-1]["job_id"]


def test_retry_reattaches_to_the_job_of_an_earlier_try(
    proteus_conn: str, control: EmulatorClient, capsys
) -> None:
    store = DictStateStore()
    first_job_id, _ = run(submit(), store=store)
    job_id, pushed = run(submit(), try_number=2, store=store)
    assert job_id == first_job_id
    assert pushed["job_type"] == "STREAMX"
    assert posts(control) == 1
    assert f"Reattaching to STREAMX job {job_id} for project {DEMO_PROJECT_ID}" in capsys.readouterr().out


def test_retry_replaces_a_job_that_failed(proteus_conn: str, control: EmulatorClient) -> None:
    control.add_project(id="doomed-1", run_seconds=0, outcome="FAILURE")
    store = DictStateStore()
    first_job_id, _ = run(submit("doomed-1", "doomed-1-1.0.0"), store=store)
    second_job_id, _ = run(submit("doomed-1", "doomed-1-1.0.0"), try_number=2, store=store)
    assert second_job_id != first_job_id
    assert posts(control) == 2


def test_a_job_under_way_is_never_doubled(proteus_conn: str, control: EmulatorClient) -> None:
    control.add_project(id="busy-1", stages=["RUNNING"])
    with pytest.raises(AirflowFailException, match=r"busy-1 already has a job under way \(stage RUNNING\)"):
        run(submit("busy-1", "busy-1-1.0.0"))
    assert posts(control) == 0


def test_a_declared_waiting_stage_counts_as_under_way(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(waiting_stages=["QUEUED"]))
    control.add_project(id="queued-1", stages=["QUEUED"])
    with pytest.raises(AirflowFailException, match="already has a job under way"):
        run(submit("queued-1", "queued-1-1.0.0"))
    assert posts(control) == 0


def test_an_unknown_stage_is_not_submitted_over(proteus_conn: str, control: EmulatorClient) -> None:
    control.add_project(id="odd-1", stages=["QUEUED"])
    with pytest.raises(AirflowFailException, match="stage 'QUEUED', which this provider does not know"):
        run(submit("odd-1", "odd-1-1.0.0"))
    assert posts(control) == 0


@pytest.mark.parametrize("stage", ["COMPLETED", "FAILURE"])
def test_a_finished_project_may_be_submitted_again(
    proteus_conn: str, control: EmulatorClient, stage: str
) -> None:
    control.add_project(id="done-1", stages=[stage])
    run(submit("done-1", "done-1-1.0.0"))
    assert posts(control) == 1


def test_without_a_task_state_store_a_retry_never_posts(proteus_conn: str, control: EmulatorClient) -> None:
    with pytest.raises(AirflowFailException, match="no task state store"):
        run(submit(), try_number=2)
    assert posts(control) == 0


@pytest.mark.parametrize(
    ("project_id", "version_id", "argument"),
    [
        ("", DEMO_VERSION_ID, "project_id"),
        (DEMO_PROJECT_ID, "  ", "version_id"),
        ("a/b", DEMO_VERSION_ID, "project_id"),
        (DEMO_PROJECT_ID, "{{ params.version_id }}", "version_id"),
    ],
)
def test_bad_ids_fail_before_any_request(
    proteus_conn: str, control: EmulatorClient, project_id: str, version_id: str, argument: str
) -> None:
    with pytest.raises(AirflowFailException, match=argument):
        run(submit(project_id, version_id))
    assert control.requests() == []


def test_unknown_project_fails_without_retry(proteus_conn: str) -> None:
    with pytest.raises(AirflowFailException, match="HTTP 404"):
        run(submit("no-such-project", "no-such-project-1.0.0"))


@pytest.mark.parametrize(
    "data",
    [
        {"job_type": "STREAMX", "streamx_data": {"id": None}, "airflow_data": None},
        {"job_type": "STREAMX", "streamx_data": None, "airflow_data": {"id": "elsewhere"}},
        {},
    ],
)
def test_missing_job_id_fails_without_retry_and_never_returns_none(
    proteus_conn: str, control: EmulatorClient, data: dict[str, Any]
) -> None:
    control.add_faults("POST", JOB_PATH, {"status": 201, "body": f'{{"data": {json.dumps(data)}}}'})
    store = DictStateStore()
    with pytest.raises(AirflowFailException, match=r"no job id .* The job was started\."):
        run(submit(), store=store)
    assert store.values[SUBMISSION_KEY]["state"] == "lost"


@pytest.mark.parametrize("fault", [{"drop_after_processing": True}, {"status": 502}, {"status": 504}])
def test_unknown_outcome_fails_without_retry(
    proteus_conn: str, control: EmulatorClient, fault: dict[str, Any]
) -> None:
    store = DictStateStore()
    control.add_faults("POST", JOB_PATH, fault)
    with pytest.raises(AirflowFailException, match=f"no second job is started for project {DEMO_PROJECT_ID}"):
        run(submit(), store=store)
    assert posts(control) == 1
    assert store.values[SUBMISSION_KEY]["state"] == "lost"


def test_after_a_lost_answer_a_clear_posts_only_once_the_project_stopped_running(
    proteus_conn: str, control: EmulatorClient
) -> None:
    control.add_project(id="lost-1", run_seconds=1.5)
    store = DictStateStore()
    control.add_faults("POST", "/projects/lost-1/versions/lost-1-1.0.0/job", {"drop_after_processing": True})
    with pytest.raises(AirflowFailException, match="GO may have started the job"):
        run(submit("lost-1", "lost-1-1.0.0"), store=store)

    with pytest.raises(AirflowFailException, match=r"Try 1 of this task sent a job .* stage RUNNING"):
        run(submit("lost-1", "lost-1-1.0.0"), try_number=2, store=store)
    assert posts(control) == 1

    time.sleep(1.6)  # the job GO started without telling us has finished
    job_id, _ = run(submit("lost-1", "lost-1-1.0.0"), try_number=3, store=store)
    assert [entry["status"] for entry in control.requests(method="POST")] == [201, 201]
    assert job_id == control.requests(method="POST")[-1]["job_id"]


def test_a_try_that_died_while_posting_makes_the_next_one_refuse_once(
    proteus_conn: str, control: EmulatorClient
) -> None:
    store = DictStateStore()
    store.set(
        SUBMISSION_KEY, {"target": [DEMO_PROJECT_ID, DEMO_VERSION_ID], "try_number": 1, "state": "sending"}
    )
    with pytest.raises(AirflowFailException, match="could not learn its id"):
        run(submit(), try_number=2, store=store)
    assert posts(control) == 0
    run(submit(), try_number=3, store=store)  # cleared by a person who looked at GO
    assert posts(control) == 1


def test_unknown_version_is_refused_before_posting(proteus_conn: str, control: EmulatorClient) -> None:
    with pytest.raises(
        AirflowFailException, match=f"has no version 'nope'; its versions are {DEMO_VERSION_ID}"
    ):
        run(submit(version_id="nope"))
    assert posts(control) == 0


class TestWaitForCompletion:
    def test_waits_in_the_slot_until_completed(self, proteus_conn: str, control: EmulatorClient) -> None:
        control.add_project(id="w-1", start_delay_seconds=0.2, run_seconds=0.5)
        operator = submit("w-1", "w-1-1.0.0")
        operator.wait_for_completion, operator.poke_interval = True, 0.2
        job_id, pushed = run(operator)
        assert job_id == pushed["job_id"] == control.requests(method="POST")[0]["job_id"]
        stages = [entry["stage"] for entry in control.requests(method="GET")]
        assert stages[0] == "NOT_STARTED"
        assert stages[-1] == "COMPLETED"
        assert "RUNNING" in stages

    def test_a_failed_project_fails_the_task(self, proteus_conn: str, control: EmulatorClient) -> None:
        control.add_project(id="w-2", run_seconds=0, outcome="FAILURE")
        operator = submit("w-2", "w-2-1.0.0")
        operator.wait_for_completion, operator.poke_interval = True, 0.1
        with pytest.raises(AirflowFailException, match="reached stage FAILURE"):
            run(operator)

    def test_running_out_of_time_fails_and_says_the_job_goes_on(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        control.add_project(id="w-3", run_seconds=60)
        operator = submit("w-3", "w-3-1.0.0")
        operator.wait_for_completion, operator.poke_interval, operator.timeout = True, 0.1, 0.3
        with pytest.raises(AirflowFailException, match=r"within 0 s\. Its job goes on"):
            run(operator)

    def test_deferrable_pushes_the_job_then_defers(self, proteus_conn: str, control: EmulatorClient) -> None:
        operator = SubmitJobOperator(
            task_id="submit",
            project_id=DEMO_PROJECT_ID,
            version_id=DEMO_VERSION_ID,
            wait_for_completion=True,
            deferrable=True,
            poke_interval=30,
            timeout=600,
        )
        ti = mock.Mock(try_number=1)
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute({"ti": ti})  # type: ignore[arg-type]
        [post] = control.requests(method="POST")
        pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
        assert pushed["job_id"] == post["job_id"]
        assert deferred.value.timeout == timedelta(seconds=600)
        assert deferred.value.trigger.serialize()[1]["project_id"] == DEMO_PROJECT_ID

    def test_resumes_with_the_job_id_or_fails(self) -> None:
        operator = submit()
        context: Any = {"ti": mock.Mock(xcom_pull=lambda task_ids, key: "job-1")}
        done = {"status": "success", "project_id": DEMO_PROJECT_ID, "stage": "COMPLETED", "project": {}}
        assert operator.execute_complete(context, event=done) == "job-1"
        failed = {"status": "failed", "project_id": DEMO_PROJECT_ID, "stage": "FAILURE", "message": ""}
        with pytest.raises(AirflowFailException, match="reached stage FAILURE"):
            operator.execute_complete(context, event=failed)
        with pytest.raises(AirflowFailException, match="Unexpected event"):
            operator.execute_complete(context, event={"status": "??"})

    def test_deferrable_defaults_to_airflows_setting(self) -> None:
        code = (
            "from airflow_provider_proteus.operators.proteus import SubmitJobOperator as S;"
            "print(S(task_id='t', project_id='p', version_id='v').deferrable)"
        )
        for setting, expected in (("True", "True"), ("False", "False")):
            env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": setting}
            result = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
            )
            assert result.stdout.strip().splitlines()[-1] == expected
