"""The hook's async path (used by the trigger) against the emulator: same answers as the sync path."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_proteus.exceptions import (
    ProteusAuthenticationError,
    ProteusConnectionError,
    ProteusHTTPError,
    ProteusNotFoundError,
    ProteusResponseError,
    ProteusTLSError,
)
from airflow_provider_proteus.hooks.proteus import ProteusHook
from airflow_provider_proteus.testing import DEMO_PROJECT_ID
from tests.conftest import TOKEN

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator

PROJECT_PATH = f"/projects/{DEMO_PROJECT_ID}"


def aget_project(project_id: str = DEMO_PROJECT_ID, conn_id: str = "proteus_default") -> dict[str, Any]:
    return asyncio.run(ProteusHook(conn_id).aget_project(project_id))


def connect(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", json.dumps({"conn_type": "proteus", **fields}))


def test_reads_the_project_with_the_token(proteus_conn: str, control: EmulatorClient) -> None:
    assert aget_project()["stage"] == "NOT_STARTED"
    assert control.requests()[0]["auth"] == "header"


def test_bearer_auth(emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, host=emulator.base_url, password=TOKEN, extra={"auth_header": "bearer"})
    aget_project()
    assert control.requests()[0]["auth"] == "bearer"


def test_survives_the_same_transient_faults_as_the_sync_path(
    proteus_conn: str, control: EmulatorClient, caplog: pytest.LogCaptureFixture
) -> None:
    control.add_faults(
        "GET",
        PROJECT_PATH,
        {"status": 503, "body": "<html>Service Unavailable</html>", "content_type": "text/html"},
        {"status": 429, "retry_after": 1},
        {"status": 502, "body": ""},
        {"drop": True},
    )
    with caplog.at_level(logging.WARNING):
        assert aget_project()["id"] == DEMO_PROJECT_ID
    assert [entry["status"] for entry in control.requests()] == [503, 429, 502, "dropped", 200]
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert [line.split(" failed with ")[1].split(";")[0] for line in retries] == [
        "HTTP 503",
        "HTTP 429",
        "HTTP 502",
        "RemoteProtocolError",
    ]
    assert "retrying in 1.0 s" in retries[1]


def test_slow_answer_is_retried(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(
        monkeypatch, host=emulator.base_url, password=TOKEN, extra={"timeout": 0.5, "retry_backoff": 0.01}
    )
    control.add_faults("GET", PROJECT_PATH, {"delay": 2})
    assert aget_project()["stage"] == "NOT_STARTED"
    assert len(control.requests()) == 2


def test_retries_are_bounded(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(
        monkeypatch, host=emulator.base_url, password=TOKEN, extra={"max_retries": 2, "retry_backoff": 0.01}
    )
    control.add_faults("GET", PROJECT_PATH, *[{"status": 503}] * 5)
    with pytest.raises(ProteusHTTPError, match="HTTP 503") as caught:
        aget_project()
    assert caught.value.transient
    assert len(control.requests()) == 3


def test_unreachable_go_is_a_transient_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    connect(
        monkeypatch, host="http://127.0.0.1:9", password=TOKEN, extra={"max_retries": 1, "retry_backoff": 0}
    )
    with pytest.raises(ProteusConnectionError, match=r"GET http://127\.0\.0\.1:9/projects/") as caught:
        aget_project()
    assert caught.value.transient
    assert not caught.value.request_may_have_been_processed


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, ProteusAuthenticationError), (403, ProteusAuthenticationError), (404, ProteusNotFoundError)],
)
def test_permanent_errors_are_the_sync_path_errors(
    proteus_conn: str, control: EmulatorClient, status: int, error: type[Exception]
) -> None:
    body = f'{{"data": null, "status": {status}, "message": "token {TOKEN} refused"}}'
    control.add_faults("GET", PROJECT_PATH, {"status": status, "body": body})
    with pytest.raises(error) as caught:
        aget_project()
    assert TOKEN not in str(caught.value)
    assert len(control.requests()) == 1


def test_html_with_200_is_not_go(proteus_conn: str, control: EmulatorClient) -> None:
    control.add_faults("GET", PROJECT_PATH, {"status": 200, "body": "<html>Maintenance</html>"})
    with pytest.raises(ProteusResponseError, match="not JSON"):
        aget_project()


def test_tls_failure_is_not_retried(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, host=f"https://127.0.0.1:{emulator.port}/api/v2/go", password=TOKEN)
    with pytest.raises(ProteusTLSError, match="Check the scheme"):
        aget_project()


def test_waits_on_one_connection_share_a_pooled_client_in_their_event_loop(
    emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_proteus.hooks import proteus as hook_module

    monkeypatch.setenv("AIRFLOW_CONN_OTHER_TOKEN", json.dumps({"conn_type": "proteus", "password": "other"}))

    async def clients() -> list[object]:
        hooks = [ProteusHook("proteus_default"), ProteusHook("proteus_default"), ProteusHook("other_token")]
        return [hook_module._async_client(await hook.asettings()) for hook in hooks]

    connect(monkeypatch, host=emulator.base_url, password=TOKEN)
    first_loop = asyncio.run(clients())
    assert first_loop[0] is first_loop[1]
    assert first_loop[0] is not first_loop[2]  # another token never shares a client's cookies
    second_loop = asyncio.run(clients())
    assert second_loop[0] is not first_loop[0]  # a client serves only the loop it was made in
