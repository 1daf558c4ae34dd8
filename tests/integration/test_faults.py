"""Faults, bad input and secrets, through real DAG runs against the emulator's fault injection.

Tests named ``test_fcNN_...`` reproduce the field case of that number (failures that similar
providers shipped); the others prove the submission guarantees and the secrecy of the token.
"""

from __future__ import annotations

import itertools
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_proteus.version_compat import AIRFLOW_V_3_3_PLUS
from tests.conftest import TOKEN
from tests.integration.conftest import TaskLogReader, run_dag

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator
    from airflow_provider_proteus.testing.airflow_runs import RunSummary

pytestmark = pytest.mark.integration

P = "proj-42"
V = "proj-42-1.0.0"
PROJECT_PATH = f"/projects/{P}"
JOB_PATH = f"/projects/{P}/versions/{V}/job"


@pytest.fixture
def run(test_dags: dict[str, DAG], proteus_conn: str) -> Any:
    """Run one of the tests' DAGs for project P."""

    def run(dag_id: str, **conf: Any) -> RunSummary:
        return run_dag(test_dags[dag_id], **{"project_id": P, "version_id": V, **conf})

    return run


def connect(
    monkeypatch: pytest.MonkeyPatch, emulator: GoEmulator, conn_id: str = "proteus_default", **extra: Any
):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", emulator.connection_json(retry_backoff=0.01, **extra)
    )


def times(entries: list[dict[str, Any]]) -> list[float]:
    return [datetime.fromisoformat(entry["at"]).timestamp() for entry in entries]


def states(run: RunSummary) -> dict[str, tuple[str, int]]:
    return {task.task_id: (task.state, task.try_number) for task in run.tasks.values()}


# --- The sensor's wait: budget, backoff, state between reschedules --------------------------------


def test_fc01_wait_budget_in_reschedule_mode_counts_from_the_first_poke(
    run: Any, control: EmulatorClient, task_log: TaskLogReader
) -> None:
    control.add_project(id=P, stages=["RUNNING"])
    result = run("proteus_wait_budget")

    assert states(result) == {"wait_for_completion": ("failed", 1)}
    # One reschedule is enough to show it: a budget counted per try would never run out.
    assert result.tasks["wait_for_completion"].reschedules >= 1
    polls = times(control.requests(method="GET", path=PROJECT_PATH))
    assert 3 <= polls[-1] - polls[0] < 15
    assert f"Project {P} did not reach COMPLETED within the sensor's timeout of 3 s" in task_log().out


def test_fc02_timeout_clock_starts_at_a_first_poke_that_failed(
    run: Any, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, emulator, max_retries=0)
    control.add_project(id=P, stages=["RUNNING"])
    control.add_faults("GET", PROJECT_PATH, {"drop": True})
    result = run("proteus_wait_budget")

    assert states(result) == {"wait_for_completion": ("failed", 1)}
    log = control.requests(method="GET", path=PROJECT_PATH)
    assert log[0]["status"] == "dropped"
    polls = times(log)
    assert 3 <= polls[-1] - polls[0] < 15


def test_fc02_unreachable_go_still_ends_the_wait_in_bounded_time(
    run: Any, monkeypatch: pytest.MonkeyPatch, task_log: TaskLogReader
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        json.dumps(
            {
                "conn_type": "proteus",
                "host": "http://127.0.0.1:9",
                "password": TOKEN,
                "extra": {"max_retries": 0},
            }
        ),
    )
    started = datetime.now().timestamp()
    result = run("proteus_wait_budget")

    assert states(result) == {"wait_for_completion": ("failed", 1)}
    assert datetime.now().timestamp() - started < 60
    assert "its stage is unknown (reading it failed: GO request GET http://127.0.0.1:9/" in task_log().out


def test_fc03_backoff_in_reschedule_mode_grows_and_never_exceeds_max_wait(
    run: Any, control: EmulatorClient
) -> None:
    control.add_project(id=P, stages=["RUNNING"] * 6 + ["COMPLETED"])
    result = run("proteus_wait_backoff")

    wait = result.tasks["wait_for_completion"]
    assert wait.state == "success"
    intervals = wait.reschedule_intervals
    assert len(intervals) == 6
    assert all(later >= earlier - 0.5 for earlier, later in itertools.pairwise(intervals))
    assert max(intervals) > 1.5  # grew beyond poke_interval
    assert max(intervals) <= 4.0  # max_wait


def test_fc04_job_id_survives_reschedules_and_reaches_downstream(run: Any, control: EmulatorClient) -> None:
    control.add_project(id=P, stages=["NOT_STARTED"] + ["RUNNING"] * 5 + ["COMPLETED"])
    result = run("proteus_submit_and_wait")

    assert result.state == "success"
    [post] = control.requests(method="POST")
    assert result.tasks["deliver"].xcoms["return_value"] == {"job_id": post["job_id"], "stage": "COMPLETED"}
    wait = result.tasks["wait_for_completion"]
    assert wait.reschedules == 5
    assert wait.reschedule_intervals == pytest.approx([1.0] * 5, abs=0.5)  # no backoff: poke_interval apart


# --- Stages -----------------------------------------------------------------------------------------


def test_fc05_unmodelled_stage_fails_naming_it(
    run: Any, control: EmulatorClient, task_log: TaskLogReader
) -> None:
    control.add_project(id=P, stages=["QUEUED", "QUEUED", "QUEUED", "COMPLETED"])
    result = run("proteus_wait")

    assert states(result) == {"wait_for_completion": ("failed", 1)}
    output = task_log().out
    assert f"Project {P} is at stage 'QUEUED', which this provider does not know" in output
    assert '"waiting_stages"' in output


def test_fc05_stage_declared_in_the_connection_is_waited_through(
    run: Any, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, emulator, waiting_stages=["QUEUED"])
    control.add_project(id=P, stages=["QUEUED", "QUEUED", "QUEUED", "COMPLETED"])
    result = run("proteus_wait")

    assert states(result) == {"wait_for_completion": ("success", 1)}
    assert result.tasks["wait_for_completion"].reschedules == 3


@pytest.mark.parametrize(
    "answer",
    [
        {"stages": ["CANCELLED"]},
        {"fault": {"status": 200, "body": '{"data": {"id": "proj-42"}, "status": 200}'}},
        {"fault": {"status": 200, "body": '{"data": {"id": "proj-42", "stage": null}, "status": 200}'}},
        {"fault": {"status": 200, "body": '{"data": null, "status": 200}'}},
    ],
    ids=["cancelled", "no-stage-field", "null-stage", "null-data"],
)
def test_fc06_only_completed_succeeds(run: Any, control: EmulatorClient, answer: dict[str, Any]) -> None:
    control.add_project(id=P, stages=answer.get("stages", ["COMPLETED"]))
    if "fault" in answer:
        control.add_faults("GET", PROJECT_PATH, answer["fault"])
    result = run("proteus_wait")

    assert states(result) == {"wait_for_completion": ("failed", 1)}
    assert "return_value" not in result.tasks["wait_for_completion"].xcoms


# --- Transient and permanent faults -----------------------------------------------------------------


def test_fc07_transient_faults_do_not_end_a_long_wait(
    run: Any, control: EmulatorClient, caplog: pytest.LogCaptureFixture
) -> None:
    control.add_project(id=P, stages=["RUNNING", "RUNNING", "COMPLETED"])
    control.add_faults(
        "GET",
        PROJECT_PATH,
        {"status": 503, "body": "<html><h1>503 Service Unavailable</h1></html>", "content_type": "text/html"},
        {"status": 429, "retry_after": 2},
        {"status": 502, "body": ""},
        {"drop": True},
    )
    with caplog.at_level(logging.WARNING, logger="airflow_provider_proteus"):
        result = run("proteus_wait")

    assert states(result) == {"wait_for_completion": ("success", 1)}
    retries = [record.getMessage() for record in caplog.records if "retrying in" in record.getMessage()]
    url = f"{control.root_url}/api/v2/go{PROJECT_PATH}"
    assert [line.split(" failed with ")[1].split(";")[0] for line in retries] == [
        "HTTP 503",
        "HTTP 429",
        "HTTP 502",
        "ProtocolError",
    ]
    assert all(f"GO request GET {url} " in line for line in retries)
    assert "retrying in 2.0 s" in retries[1]


def test_transient_faults_during_submission_are_survived_with_one_job(
    run: Any, control: EmulatorClient
) -> None:
    control.add_project(id=P, run_seconds=1)
    control.add_faults(
        "GET",
        PROJECT_PATH,
        {"status": 504, "body": ""},
        {"status": 500, "body": "<html>Internal Server Error</html>", "content_type": "text/html"},
        {"drop": True},
    )
    control.add_faults(
        "POST",
        JOB_PATH,
        {"status": 429},
        {"status": 503, "body": "<html>Service Unavailable</html>", "content_type": "text/html"},
    )
    result = run("proteus_submit_and_wait")

    assert result.state == "success"
    assert states(result)["submit_job"] == ("success", 1)
    assert [entry["status"] for entry in control.requests(method="POST")] == [429, 503, 201]


def test_base_url_that_is_not_go_fails_at_once(
    run: Any,
    emulator: GoEmulator,
    control: EmulatorClient,
    monkeypatch: pytest.MonkeyPatch,
    task_log: TaskLogReader,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        json.dumps({"conn_type": "proteus", "host": emulator.root_url, "password": TOKEN}),
    )
    result = run("proteus_submit_and_wait")

    assert states(result)["submit_job"] == ("failed", 1)
    assert "that the connection host is GO's API base URL" in task_log().out


def test_malformed_connection_extra_fails_before_any_request(
    run: Any,
    emulator: GoEmulator,
    control: EmulatorClient,
    monkeypatch: pytest.MonkeyPatch,
    task_log: TaskLogReader,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        json.dumps(
            {
                "conn_type": "proteus",
                "host": emulator.base_url,
                "password": TOKEN,
                "extra": '{"verify": "false"}',
            }
        ),
    )
    result = run("proteus_submit_and_wait")

    assert states(result)["submit_job"] == ("failed", 1)
    assert control.requests() == []
    assert "Connection 'proteus_default': extra field 'verify' must be true, false" in task_log().out


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (401, "Check the API token"),
        (403, "shared with the token's user"),
        (404, "Check the project and version ids"),
    ],
)
def test_fc07_permanent_errors_fail_the_wait_at_once(
    run: Any, control: EmulatorClient, task_log: TaskLogReader, status: int, advice: str
) -> None:
    control.add_project(id=P, stages=["RUNNING"])
    control.add_faults("GET", PROJECT_PATH, {"status": status})
    result = run("proteus_wait")

    assert states(result) == {"wait_for_completion": ("failed", 1)}
    assert len(control.requests(method="GET", path=PROJECT_PATH)) == 1
    output = task_log().out
    assert f"GO answered GET {control.root_url}/api/v2/go{PROJECT_PATH} with HTTP {status}" in output
    assert advice in output


def test_fc08_rate_limited_submission_is_sent_again_after_retry_after(
    run: Any, control: EmulatorClient
) -> None:
    control.add_project(id=P, run_seconds=1)
    control.add_faults("POST", JOB_PATH, {"status": 429, "retry_after": 2})
    result = run("proteus_submit_and_wait")

    assert result.state == "success"
    log = control.requests(method="POST")
    assert [entry["status"] for entry in log] == [429, 201]
    assert times(log)[1] - times(log)[0] >= 1.9
    assert result.tasks["deliver"].xcoms["return_value"]["job_id"] == log[1]["job_id"]


def test_fc08_bad_request_is_not_retried_and_shows_the_server_message(
    run: Any, control: EmulatorClient, task_log: TaskLogReader
) -> None:
    control.add_project(id=P)
    control.add_faults("POST", JOB_PATH, {"status": 400, "body": '{"message": "version has no AOIs"}'})
    result = run("proteus_submit_and_wait")

    assert states(result)["submit_job"] == ("failed", 1)
    assert len(control.requests(method="POST")) == 1
    assert f"GO answered POST {control.root_url}/api/v2/go{JOB_PATH} with HTTP 400: version has no AOIs" in (
        task_log().out
    )


# --- Bad input --------------------------------------------------------------------------------------


def test_fc09_job_body_is_active_true_as_json(run: Any, control: EmulatorClient) -> None:
    control.add_project(id=P, run_seconds=0)
    result = run("proteus_submit_and_wait")

    assert result.state == "success"
    [post] = control.requests(method="POST")
    assert (post["status"], post["content_type"]) == (201, "application/json")


@pytest.mark.parametrize(
    ("conf", "argument"),
    [
        ({"project_id": "../admin"}, "project_id"),
        ({"project_id": "a/b"}, "project_id"),
        ({"version_id": "   "}, "version_id"),
        ({"version_id": "proj-42-1.0.0?x=1"}, "version_id"),
        ({"project_id": "{{ params.missing }}"}, "project_id"),
    ],
    ids=["dot-dot", "slash", "blank", "query", "unrendered-template"],
)
def test_fc09_ids_that_would_change_the_path_are_refused_before_any_request(
    run: Any, control: EmulatorClient, task_log: TaskLogReader, conf: dict[str, str], argument: str
) -> None:
    result = run("proteus_submit_and_wait", **conf)

    assert states(result)["submit_job"] == ("failed", 1)
    assert control.requests() == []
    assert f"AirflowFailException: {argument}" in task_log().out


@pytest.mark.parametrize("suffix", ["", "/"])
def test_fc10_base_url_keeps_its_prefix_and_joins_with_one_slash(
    run: Any, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        json.dumps({"conn_type": "proteus", "host": emulator.base_url + suffix, "password": TOKEN}),
    )
    control.add_project(id=P, run_seconds=0)
    result = run("proteus_submit_and_wait")

    assert result.state == "success"
    assert {entry["path"] for entry in control.requests()} == {PROJECT_PATH, JOB_PATH}


def test_fc11_uri_connection_reaches_the_same_api(
    run: Any, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT", f"proteus://http://:{TOKEN}@127.0.0.1:{emulator.port}/api/v2/go"
    )
    control.add_project(id=P, run_seconds=0)
    result = run("proteus_submit_and_wait")

    assert result.state == "success"
    assert [entry["auth"] for entry in control.requests()] == ["header"] * len(control.requests())


# --- Answers that are not GO's ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "excerpt"),
    [
        ({"status": 201, "body": ""}, "(empty body)"),
        (
            {"status": 201, "body": "<html>Accepted</html>", "content_type": "text/html"},
            "<html>Accepted</html>",
        ),
        (
            {"status": 201, "body": '{"data": {"job_type": "STREAMX", "streamx_data": {"id": null}}}'},
            "no job id",
        ),
        ({"status": 201, "body": '{"data": [{"id": "x"}], "status": 201}'}, "a list in 'data'"),
    ],
    ids=["empty", "html", "null-id", "list"],
)
def test_fc12_odd_submission_answers_fail_with_status_method_url_and_excerpt(
    run: Any, control: EmulatorClient, task_log: TaskLogReader, fault: dict[str, Any], excerpt: str
) -> None:
    control.add_project(id=P)
    control.add_faults("POST", JOB_PATH, fault)
    result = run("proteus_submit_and_wait")

    assert states(result)["submit_job"] == ("failed", 1)
    assert "return_value" not in result.tasks["submit_job"].xcoms
    output = task_log().out
    assert excerpt in output
    for error in ("JSONDecodeError", "KeyError", "TypeError"):
        assert error not in output


def test_fc12_html_page_with_200_ends_the_wait_as_not_go(
    run: Any, control: EmulatorClient, task_log: TaskLogReader
) -> None:
    control.add_project(id=P, stages=["RUNNING"])
    control.add_faults(
        "GET", PROJECT_PATH, {"status": 200, "body": "<html>Maintenance</html>", "content_type": "text/html"}
    )
    result = run("proteus_wait")

    assert states(result) == {"wait_for_completion": ("failed", 1)}
    assert "with HTTP 200 but the body is not JSON (<html>Maintenance</html>)" in task_log().out


# --- soft_fail ------------------------------------------------------------------------------------------


def test_fc13_soft_fail_turns_a_timeout_into_a_skip(run: Any, control: EmulatorClient) -> None:
    control.add_project(id=P, stages=["RUNNING"])
    assert states(run("proteus_wait_budget_soft")) == {"wait_for_completion": ("skipped", 1)}


def test_fc13_soft_fail_never_hides_a_failed_project(run: Any, control: EmulatorClient) -> None:
    control.add_project(id=P, stages=["FAILURE"])
    assert states(run("proteus_wait_soft")) == {"wait_for_completion": ("failed", 1)}


def test_fc13_soft_fail_never_hides_a_rejected_token(
    run: Any, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        json.dumps({"conn_type": "proteus", "host": emulator.base_url, "password": "tok-WRONG"}),
    )
    control.add_project(id=P, stages=["RUNNING"])
    assert states(run("proteus_wait_soft")) == {"wait_for_completion": ("failed", 1)}


# --- Never a second job ---------------------------------------------------------------------------------


def test_retry_after_a_crash_never_posts_a_second_job(
    run: Any, control: EmulatorClient, task_log: TaskLogReader
) -> None:
    control.add_project(id=P, run_seconds=3)
    result = run("proteus_crash_after_submit")

    [post] = control.requests(method="POST")
    output = task_log().out
    if AIRFLOW_V_3_3_PLUS:
        # The task state store remembers the job across tries: the retry reattaches and delivers its id.
        assert result.state == "success"
        assert states(result)["submit_job"] == ("success", 2)
        assert result.tasks["submit_job"].xcoms["return_value"] == post["job_id"]
        assert result.tasks["deliver"].xcoms["return_value"]["job_id"] == post["job_id"]
        assert f"Reattaching to STREAMX job {post['job_id']} for project {P}" in output
    else:
        # Nothing outlives a try: the retry cannot tell whether a job was started, so it refuses.
        assert result.state == "failed"
        assert states(result)["submit_job"] == ("failed", 2)
        assert f"This is try 2 of the submission for project {P}" in output
        assert "no task state store" in output


def test_lost_answer_fails_the_submission_without_a_second_post(run: Any, control: EmulatorClient) -> None:
    control.add_project(id=P)
    control.add_faults("POST", JOB_PATH, {"drop_after_processing": True})
    result = run("proteus_submit_and_wait")

    assert states(result)["submit_job"] == ("failed", 1)
    [post] = control.requests(method="POST")
    assert post["answer_lost"]


def test_slow_answer_fails_the_submission_without_a_second_post(
    run: Any, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, emulator, timeout=1)
    control.add_project(id=P)
    control.add_faults("POST", JOB_PATH, {"delay": 2})
    result = run("proteus_submit_and_wait")

    assert states(result)["submit_job"] == ("failed", 1)
    assert len(control.requests(method="POST")) == 1


def test_refused_submission_is_retried_by_the_task_where_a_task_state_store_tracks_it(
    run: Any, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, emulator, max_retries=1)
    control.add_project(id=P, run_seconds=0)
    control.add_faults("POST", JOB_PATH, {"status": 429}, {"status": 429})
    result = run("proteus_submit_and_wait")

    statuses = [entry["status"] for entry in control.requests(method="POST")]
    if AIRFLOW_V_3_3_PLUS:
        assert result.state == "success"
        assert states(result)["submit_job"] == ("success", 2)
        assert statuses == [429, 429, 201]
    else:
        # Without a task state store the second try cannot know that the first started nothing.
        assert states(result)["submit_job"] == ("failed", 2)
        assert statuses == [429, 429]


def test_project_running_another_job_is_not_submitted_over(run: Any, control: EmulatorClient) -> None:
    control.add_project(id=P, stages=["RUNNING"])
    result = run("proteus_submit_and_wait")

    assert states(result)["submit_job"] == ("failed", 1)
    assert control.requests(method="POST") == []


# --- Secrets ----------------------------------------------------------------------------------------------


def test_token_appears_nowhere_in_a_full_fault_run(
    run: Any,
    emulator: GoEmulator,
    control: EmulatorClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    task_log: TaskLogReader,
) -> None:
    connect(monkeypatch, emulator, max_retries=1)
    control.add_project(id=P, run_seconds=2)
    control.add_faults("POST", JOB_PATH, {"status": 429, "retry_after": 1})
    control.add_faults(
        "GET",
        PROJECT_PATH,
        {},
        {"status": 503, "echo_headers": True},
        {"status": 503, "echo_headers": True},
        {"drop": True},
        {"status": 502, "echo_headers": True},
    )
    caplog.set_level(logging.DEBUG, logger="airflow_provider_proteus")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    result = run("proteus_submit_and_wait")

    assert result.state == "success"
    output = task_log()
    assert "Emulated fault for a request with headers" in output.out  # the echo reached the log, redacted
    everything = "\n".join(
        [
            output.out,
            output.err,
            caplog.text,
            json.dumps([task.xcoms for task in result.tasks.values()], default=str),
            json.dumps([task.rendered_fields for task in result.tasks.values()], default=str),
            json.dumps(control.requests()),
        ]
    )
    assert TOKEN not in everything
