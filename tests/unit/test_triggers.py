"""ProjectStageTrigger against the emulator, and its journey through Airflow's trigger storage."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_proteus.exceptions import ProteusAuthenticationError, ProteusError
from airflow_provider_proteus.triggers.proteus import EVENT_STATUSES, ProjectStageTrigger, project_from_event
from tests.conftest import TOKEN

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator


def trigger(project_id: str = "proj-42", **kwargs: Any) -> ProjectStageTrigger:
    return ProjectStageTrigger(
        project_id=project_id, proteus_conn_id="proteus_default", poke_interval=0.01, **kwargs
    )


def events(trigger: ProjectStageTrigger, *, at_most: int = 2) -> list[dict[str, Any]]:
    """Every event the trigger yields before it returns (Airflow stops at the first)."""

    async def collect() -> list[dict[str, Any]]:
        payloads = []
        async for event in trigger.run():
            payloads.append(event.payload)
            if len(payloads) >= at_most:
                break
        return payloads

    return asyncio.run(asyncio.wait_for(collect(), timeout=30))


def test_serializes_to_json_primitives_and_back() -> None:
    original = trigger(waiting_stages=["QUEUED"])
    classpath, kwargs = original.serialize()

    assert json.loads(json.dumps(kwargs)) == kwargs
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_survives_airflow_trigger_storage() -> None:
    from airflow.models.trigger import Trigger

    row = Trigger.from_object(trigger(waiting_stages=["QUEUED"]))
    assert row.classpath == "airflow_provider_proteus.triggers.proteus.ProjectStageTrigger"
    assert row.kwargs == trigger(waiting_stages=["QUEUED"]).serialize()[1]


def test_polls_until_completed_and_yields_one_success_event(
    proteus_conn: str, control: EmulatorClient
) -> None:
    control.add_project(id="proj-42", stages=["NOT_STARTED", "RUNNING", "RUNNING", "COMPLETED"])
    [event] = events(trigger())

    assert event["status"] == "success"
    assert (event["project_id"], event["stage"]) == ("proj-42", "COMPLETED")
    assert event["project"]["id"] == "proj-42"
    assert len(control.requests()) == 4


@pytest.mark.parametrize(
    ("stages", "status"),
    [(["RUNNING", "FAILURE"], "failed"), (["QUEUED"], "unknown_stage")],
)
def test_a_stage_that_ends_the_wait_yields_one_event(
    proteus_conn: str, control: EmulatorClient, stages: list[str], status: str
) -> None:
    control.add_project(id="proj-42", stages=stages)
    [event] = events(trigger())

    assert event["status"] == status
    assert event["stage"] == stages[-1]
    assert "proj-42" in event["message"]


def test_declared_waiting_stage_is_waited_through(proteus_conn: str, control: EmulatorClient) -> None:
    control.add_project(id="proj-42", stages=["QUEUED", "QUEUED", "COMPLETED"])
    [event] = events(trigger(waiting_stages=["QUEUED"]))
    assert event["status"] == "success"


def test_transient_errors_are_polled_through(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(max_retries=0))
    control.add_project(id="proj-42", stages=["COMPLETED"])
    control.add_faults("GET", "/projects/proj-42", {"status": 503}, {"drop": True})
    [event] = events(trigger())

    assert event["status"] == "success"
    assert [entry["status"] for entry in control.requests()] == [503, "dropped", 200]


def test_permanent_error_yields_an_error_event_without_the_token(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        json.dumps({"conn_type": "proteus", "host": emulator.base_url, "password": "tok-WRONG"}),
    )
    [event] = events(trigger())

    assert event["status"] == "error"
    assert event["error_type"] == "ProteusAuthenticationError"
    assert "HTTP 401" in event["message"]
    assert "tok-WRONG" not in json.dumps(event)
    assert TOKEN not in json.dumps(event)


def test_error_event_raises_the_same_error_type_in_the_resumed_task(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROTEUS_DEFAULT",
        json.dumps({"conn_type": "proteus", "host": emulator.base_url, "password": "tok-WRONG"}),
    )
    [event] = events(trigger())
    stored = json.loads(json.dumps(event))  # what the triggerer stores is JSON

    with pytest.raises(ProteusAuthenticationError) as raised:
        project_from_event(stored, "proj-42")

    assert raised.value.status == 401
    assert raised.value.method == "GET"
    assert raised.value.url == f"{emulator.base_url}/projects/proj-42"
    assert not raised.value.transient
    assert str(raised.value) == event["message"]


@pytest.mark.parametrize(
    ("error_type", "details"),
    [
        ("NoSuchError", {}),
        ("ProteusAuthenticationError", {"status": 401}),
        ("ProteusHTTPError", "not a dict"),
    ],
)
def test_error_event_that_cannot_be_rebuilt_still_fails_with_its_message(
    error_type: str, details: Any
) -> None:
    event = {
        "status": "error",
        "project_id": "proj-42",
        "stage": None,
        "message": "GO said no",
        "error_type": error_type,
        "error_details": details,
    }

    with pytest.raises(ProteusError, match="GO said no") as raised:
        project_from_event(event, "proj-42")

    assert type(raised.value) is ProteusError


def test_every_event_has_the_documented_shape(proteus_conn: str, control: EmulatorClient) -> None:
    for stages in (["COMPLETED"], ["FAILURE"], ["QUEUED"]):
        control.add_project(id="proj-42", stages=stages)
        [event] = events(trigger())
        assert event["status"] in EVENT_STATUSES
        assert {"status", "project_id", "stage", "message"} <= set(event)
