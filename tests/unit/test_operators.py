"""SubmitJobOperator against the GO emulator, with a stand-in task instance for XCom."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_proteus.exceptions import ProteusHTTPError
from airflow_provider_proteus.operators.proteus import SubmitJobOperator
from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient

JOB_PATH = f"/projects/{DEMO_PROJECT_ID}/versions/{DEMO_VERSION_ID}/job"


def run(operator: SubmitJobOperator) -> tuple[Any, dict[str, Any]]:
    """Execute the operator; return its result and what it pushed to XCom by key."""
    ti = mock.Mock()
    result = operator.execute({"ti": ti})  # type: ignore[arg-type]
    pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
    return result, pushed


def submit(project_id: str = DEMO_PROJECT_ID, version_id: str = DEMO_VERSION_ID) -> SubmitJobOperator:
    return SubmitJobOperator(task_id="submit", project_id=project_id, version_id=version_id)


def test_templated_fields() -> None:
    assert set(SubmitJobOperator.template_fields) == {"project_id", "version_id", "proteus_conn_id"}


def test_constructor_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        SubmitJobOperator("submit", DEMO_PROJECT_ID, DEMO_VERSION_ID)  # type: ignore[misc]


def test_returns_the_job_id_and_pushes_type_and_page(proteus_conn: str, control: EmulatorClient) -> None:
    job_id, pushed = run(submit())
    [post] = control.requests(method="POST", path=JOB_PATH)
    assert job_id == post["job_id"]
    assert pushed == {
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
    with pytest.raises(AirflowFailException, match=r"no job id .* The job was started; do not clear"):
        run(submit())


def test_lost_answer_fails_without_retry_and_without_a_second_post(
    proteus_conn: str, control: EmulatorClient
) -> None:
    control.add_faults("POST", JOB_PATH, {"drop_after_processing": True})
    with pytest.raises(AirflowFailException, match=f"no second job is started for project {DEMO_PROJECT_ID}"):
        run(submit())
    assert len(control.requests(method="POST")) == 1


def test_transient_error_is_left_to_task_retries(proteus_conn: str, control: EmulatorClient) -> None:
    control.add_faults("POST", JOB_PATH, {"status": 503})
    with pytest.raises(ProteusHTTPError) as caught:
        run(submit())
    assert caught.value.transient


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
