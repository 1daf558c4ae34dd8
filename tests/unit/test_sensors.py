"""ProjectStageSensor's decisions, poke by poke, against the GO emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.exceptions import AirflowRescheduleException
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_proteus.exceptions import (
    ProteusAuthenticationError,
    ProteusProjectFailedError,
    ProteusResponseError,
    ProteusUnknownStageError,
)
from airflow_provider_proteus.sensors.proteus import ProjectStageSensor
from airflow_provider_proteus.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator


def sensor(project_id: str = "proj-42", **kwargs: Any) -> ProjectStageSensor:
    return ProjectStageSensor(task_id="wait", project_id=project_id, **kwargs)


def with_stages(control: EmulatorClient, *stages: str, project_id: str = "proj-42") -> str:
    control.add_project(id=project_id, stages=list(stages))
    return project_id


# The mode of the tests that call execute() with a mocked task instance: the default on Airflow 3, poke
# mode on Airflow 2, which needs a real task instance to reschedule.
EXECUTE_MODE = "reschedule" if AIRFLOW_V_3_0_PLUS else "poke"


def first_poke_context() -> dict[str, Any]:
    """A context for execute(): a task instance that has not been rescheduled yet."""
    return {"ti": mock.Mock(get_first_reschedule_date=lambda context: None, max_tries=0, map_index=-1)}


def test_defaults_fit_multi_hour_projects() -> None:
    waiting = sensor()
    assert waiting.mode == "reschedule"
    assert waiting.poke_interval == 15 * 60
    assert waiting.timeout == timedelta(days=3).total_seconds()
    assert set(ProjectStageSensor.template_fields) == {"project_id", "version_id", "proteus_conn_id"}


@pytest.mark.parametrize("stage", ["NOT_STARTED", "RUNNING"])
def test_keeps_waiting_while_pending_or_running(
    proteus_conn: str, control: EmulatorClient, stage: str
) -> None:
    assert sensor(with_stages(control, stage)).poke({}) is False  # type: ignore[arg-type]


def test_completed_returns_the_project_document(proteus_conn: str, control: EmulatorClient) -> None:
    result = sensor(with_stages(control, "COMPLETED")).poke({})  # type: ignore[arg-type]
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value["id"] == "proj-42"
    assert result.xcom_value["stage"] == "COMPLETED"


def test_failure_names_the_project(proteus_conn: str, control: EmulatorClient) -> None:
    with pytest.raises(ProteusProjectFailedError, match="Project proj-42 reached stage FAILURE"):
        sensor(with_stages(control, "FAILURE")).poke({})  # type: ignore[arg-type]


def test_unknown_stage_fails_naming_it_and_how_to_allow_it(
    proteus_conn: str, control: EmulatorClient
) -> None:
    with pytest.raises(ProteusUnknownStageError, match=r"stage 'QUEUED'.*waiting_stages"):
        sensor(with_stages(control, "QUEUED")).poke({})  # type: ignore[arg-type]


def test_declared_waiting_stage_keeps_waiting(proteus_conn: str, control: EmulatorClient) -> None:
    assert sensor(with_stages(control, "QUEUED"), waiting_stages=["QUEUED"]).poke({}) is False  # type: ignore[arg-type]


def test_waiting_stage_declared_in_the_connection(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(waiting_stages=["QUEUED"]))
    assert sensor(with_stages(control, "QUEUED")).poke({}) is False  # type: ignore[arg-type]


def test_missing_stage_is_never_success(proteus_conn: str, control: EmulatorClient) -> None:
    control.add_faults("GET", "/projects/proj-42", {"status": 200, "body": '{"data": {"id": "proj-42"}}'})
    with pytest.raises(ProteusResponseError, match="without a usable 'stage'"):
        sensor(with_stages(control, "COMPLETED")).poke({})  # type: ignore[arg-type]


def test_transient_error_is_a_poke_that_is_not_done(
    emulator: GoEmulator,
    control: EmulatorClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(max_retries=0))
    control.add_faults("GET", "/projects/proj-42", {"status": 503})
    assert sensor(with_stages(control, "COMPLETED")).poke({}) is False  # type: ignore[arg-type]
    assert "Could not read project proj-42 on this poke" in capsys.readouterr().out


def test_rejected_token_is_not_transient(emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        f'{{"conn_type": "proteus", "host": "{emulator.base_url}", "password": "tok-WRONG"}}',
    )
    with pytest.raises(ProteusAuthenticationError):
        sensor().poke({})  # type: ignore[arg-type]


class TestExecute:
    def test_running_reschedules(
        self, proteus_conn: str, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if not AIRFLOW_V_3_0_PLUS:
            # Airflow 2 asks the metadata database for the first poke's date, not the task instance;
            # tests/integration/test_wait_modes.py reschedules through real DAG runs on every version.
            monkeypatch.setattr("airflow.sensors.base._orig_start_date", lambda **_: None)
        with pytest.raises(AirflowRescheduleException):
            sensor(with_stages(control, "RUNNING"), poke_interval=60).execute(first_poke_context())  # type: ignore[arg-type]

    def test_completed_returns_the_document(self, proteus_conn: str, control: EmulatorClient) -> None:
        waiting = sensor(with_stages(control, "COMPLETED"), mode=EXECUTE_MODE)
        assert waiting.execute(first_poke_context())["stage"] == "COMPLETED"  # type: ignore[arg-type]

    @pytest.mark.parametrize("soft_fail", [False, True])
    def test_failure_fails_without_retries_even_with_soft_fail(
        self, proteus_conn: str, control: EmulatorClient, soft_fail: bool
    ) -> None:
        waiting = sensor(with_stages(control, "FAILURE"), soft_fail=soft_fail, mode=EXECUTE_MODE)
        with pytest.raises(AirflowFailException, match="reached stage FAILURE"):
            waiting.execute(first_poke_context())  # type: ignore[arg-type]

    def test_poke_mode_polls_in_one_try(self, proteus_conn: str, control: EmulatorClient) -> None:
        waiting = sensor(
            with_stages(control, "RUNNING", "RUNNING", "COMPLETED"), mode="poke", poke_interval=0.01
        )
        assert waiting.execute(first_poke_context())["stage"] == "COMPLETED"  # type: ignore[arg-type]
        assert len(control.requests(path="/projects/proj-42")) == 3

    def test_the_pokes_of_one_try_share_one_connection_lookup_and_session(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        from airflow_provider_proteus.hooks.proteus import ProteusHook

        waiting = sensor(
            with_stages(control, "RUNNING", "RUNNING", "COMPLETED"), mode="poke", poke_interval=0.01
        )
        with (
            mock.patch.object(ProteusHook, "get_connection", wraps=ProteusHook.get_connection) as lookups,
            mock.patch.object(ProteusHook, "close", autospec=True, side_effect=ProteusHook.close) as closes,
        ):
            assert waiting.execute(first_poke_context())["stage"] == "COMPLETED"  # type: ignore[arg-type]
        assert len(control.requests(path="/projects/proj-42")) == 3
        assert lookups.call_count == 1
        assert closes.call_count == 1
        assert waiting._hook is None

    def test_nothing_is_kept_on_the_sensor_between_pokes(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        waiting = sensor(with_stages(control, "RUNNING", "COMPLETED"))
        waiting.log.info("warm up Airflow's lazily created task logger")
        before = dict(vars(waiting))
        waiting.poke({})  # type: ignore[arg-type]
        assert vars(waiting) == before


class TestDeferrable:
    def test_checks_once_and_needs_no_triggerer_when_already_done(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        document = sensor(with_stages(control, "COMPLETED"), deferrable=True).execute(first_poke_context())  # type: ignore[arg-type]
        assert document["stage"] == "COMPLETED"

    def test_defers_to_the_trigger_with_the_wait_budget(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        waiting = sensor(with_stages(control, "RUNNING"), deferrable=True, poke_interval=30, timeout=600)
        context = first_poke_context()
        with pytest.raises(TaskDeferred) as deferred:
            waiting.execute(context)  # type: ignore[arg-type]
        # The "GO project" link works while the trigger waits.
        context["ti"].xcom_push.assert_called_once_with(
            key="project_url", value=f"{control.root_url}/web/projects/proj-42"
        )
        assert deferred.value.method_name == "execute_complete"
        assert deferred.value.timeout == timedelta(seconds=600)
        assert deferred.value.trigger.serialize()[1] == {
            "project_id": "proj-42",
            "proteus_conn_id": "proteus_default",
            "poke_interval": 30.0,
            "waiting_stages": [],
        }

    def test_a_failure_seen_before_deferring_fails_at_once(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        with pytest.raises(AirflowFailException, match="reached stage FAILURE"):
            sensor(with_stages(control, "FAILURE"), deferrable=True).execute(first_poke_context())  # type: ignore[arg-type]

    def test_success_event_returns_the_project(self) -> None:
        event = {
            "status": "success",
            "project_id": "proj-42",
            "stage": "COMPLETED",
            "message": "",
            "project": {"id": 1},
        }
        assert resume(sensor(deferrable=True), event) == {"id": 1}

    @pytest.mark.parametrize("soft_fail", [False, True])
    @pytest.mark.parametrize(
        ("status", "stage", "message"),
        [
            ("failed", "FAILURE", "reached stage FAILURE"),
            ("unknown_stage", "QUEUED", "stage 'QUEUED', which this provider does not know"),
            ("error", None, "HTTP 401"),
        ],
    )
    def test_events_that_end_the_wait_fail_even_with_soft_fail(
        self, status: str, stage: str | None, message: str, soft_fail: bool
    ) -> None:
        event = {"status": status, "project_id": "proj-42", "stage": stage, "message": "GO answered HTTP 401"}
        with pytest.raises(AirflowFailException, match=message):
            resume(sensor(deferrable=True, soft_fail=soft_fail), event)

    @pytest.mark.parametrize(
        "event",
        [
            None,
            "success",
            {"status": "done", "project_id": "proj-42"},
            {"status": "success", "project_id": "other"},
        ],
    )
    def test_an_unknown_event_fails_the_task(self, event: Any) -> None:
        with pytest.raises(
            AirflowFailException, match="Unexpected event from the trigger for project proj-42"
        ):
            resume(sensor(deferrable=True), event)

    def test_running_out_of_budget_is_a_sensor_timeout_naming_the_project(self, proteus_conn: str) -> None:
        with pytest.raises(AirflowSensorTimeout, match="Project proj-42 did not reach COMPLETED"):
            sensor(deferrable=True).resume_execution(
                "__fail__",
                {"error": "Trigger timeout"},
                {},  # type: ignore[arg-type]
            )

    def test_running_out_of_budget_with_soft_fail_is_a_skip(self) -> None:
        with pytest.raises(AirflowSkipException, match="Project proj-42 did not reach COMPLETED"):
            sensor(deferrable=True, soft_fail=True).resume_execution(
                "__fail__",
                {"error": "Trigger timeout"},
                {},  # type: ignore[arg-type]
            )


def resume(waiting: ProjectStageSensor, event: Any) -> Any:
    return waiting.resume_execution("execute_complete", {"event": event}, {})  # type: ignore[arg-type]
