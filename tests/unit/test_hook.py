"""ProteusHook against the GO emulator on loopback: connections, auth, retries and errors."""

from __future__ import annotations

import json
import logging
import socket
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException, redact

from airflow_provider_proteus.exceptions import (
    ProteusAuthenticationError,
    ProteusConfigurationError,
    ProteusConnectionError,
    ProteusHTTPError,
    ProteusNotFoundError,
    ProteusResponseError,
    ProteusTLSError,
)
from airflow_provider_proteus.hooks.proteus import ProteusHook
from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID
from airflow_provider_proteus.version_compat import airflow_version
from tests.conftest import TOKEN

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator

PROJECT_PATH = f"/projects/{DEMO_PROJECT_ID}"
JOB_PATH = f"/projects/{DEMO_PROJECT_ID}/versions/{DEMO_VERSION_ID}/job"


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str = "proteus_default", **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "proteus", **fields}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestConnectionSettings:
    def test_uri_and_json_forms_give_the_same_base_url(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_GO_URI", "proteus://:secret@api.test:8443/api/v2/go")
        use_connection(monkeypatch, "go_json", host="https://api.test:8443/api/v2/go", password="secret")
        use_connection(
            monkeypatch, "go_fields", host="api.test", port=8443, schema="api/v2/go", password="secret"
        )
        urls = {ProteusHook(conn_id).settings.base_url for conn_id in ("go_uri", "go_json", "go_fields")}
        assert urls == {"https://api.test:8443/api/v2/go"}

    def test_empty_host_is_production(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, password="secret")
        assert ProteusHook().settings.base_url == "https://go-services.orbitalinsight.com/api/v2/go"

    def test_token_header_by_default_bearer_on_request(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host="https://api.test", password="secret")
        assert ProteusHook().get_conn().headers["X-Orbitalinsight-Auth-Token"] == "secret"
        use_connection(
            monkeypatch, host="https://api.test", password="secret", extra={"auth_header": "bearer"}
        )
        headers = ProteusHook().get_conn().headers
        assert headers["Authorization"] == "Bearer secret"
        assert "X-Orbitalinsight-Auth-Token" not in headers

    def test_no_repr_shows_the_token(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host="https://api.test", password="tok-CASE-0001")
        hook = ProteusHook()
        session = hook.get_conn()
        shown = [repr(hook), repr(hook.settings), repr(session), str(vars(hook)), repr(session.adapters)]
        assert not [text for text in shown if "tok-CASE-0001" in text]

    def test_token_is_registered_with_the_secrets_masker(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host="https://api.test", password="tok-MASK-0001")
        _ = ProteusHook().settings
        assert redact("Authorization failed for tok-MASK-0001") == "Authorization failed for ***"

    def test_missing_token_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host="https://api.test")
        with pytest.raises(ProteusConfigurationError, match="'proteus_default' has no API token"):
            ProteusHook().get_project("proj-42")

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"verify": "false"}, "verify"),
            ({"timeout": "thirty"}, "timeout"),
            ({"timeout": 0}, "timeout"),
            ({"timeout": -1}, "timeout"),
            ({"max_retries": 2.5}, "max_retries"),
            ({"auth_header": "basic"}, "auth_header"),
            ({"proxies": "http://proxy"}, "proxies"),
            ({"waiting_stages": "QUEUED"}, "waiting_stages"),
            ({"job_id_paths": {"AIRFLOW": 3}}, "job_id_paths"),
            ({"allow_insecure_http": "yes"}, "allow_insecure_http"),
        ],
    )
    def test_malformed_extra_names_the_field(
        self, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], field: str
    ) -> None:
        host = "http://api.test" if field == "allow_insecure_http" else "https://api.test"
        use_connection(monkeypatch, host=host, password="secret", extra=extra)
        with pytest.raises(ProteusConfigurationError, match=f"extra field '{field}'"):
            _ = ProteusHook().settings

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ('{"timeout": 30', "the extra is not valid JSON"),
            ("timeout=30", "the extra is not valid JSON"),
            ('["timeout", 30]', "the extra must be a JSON object, got a list"),
        ],
    )
    def test_extra_that_is_not_a_json_object_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, extra: str, message: str
    ) -> None:
        use_connection(monkeypatch, host="https://api.test", password="secret", extra=extra)
        if (3, 0, 0) <= airflow_version() < (3, 2, 0):
            # Airflow 3.0 and 3.1 drop such a connection while looking it up, before the hook sees it.
            with pytest.raises(AirflowNotFoundException, match="proteus_default"):
                _ = ProteusHook().settings
            return
        with pytest.raises(ProteusConfigurationError, match=f"Connection 'proteus_default': {message}"):
            _ = ProteusHook().settings

    def test_numbers_from_a_uri_connection_are_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PROTEUS_DEFAULT", "proteus://:secret@api.test/api/v2/go?timeout=30&max_retries=2"
        )
        settings = ProteusHook().settings
        assert (settings.timeout, settings.max_retries) == (30.0, 2)

    def test_extra_settings_are_used(self, monkeypatch: pytest.MonkeyPatch) -> None:
        extra = {"timeout": 5, "verify": "/etc/ssl/ca.pem", "proxies": {"https": "http://proxy:3128"}}
        use_connection(monkeypatch, host="https://api.test", password="secret", extra=extra)
        settings = ProteusHook().settings
        assert (settings.timeout, settings.verify, dict(settings.proxies)) == (
            5.0,
            "/etc/ssl/ca.pem",
            extra["proxies"],
        )

    def test_plain_http_to_a_remote_host_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host="http://go.example.com/api", password="secret")
        with pytest.raises(ProteusConfigurationError, match=r"plain http to go\.example\.com"):
            _ = ProteusHook().settings
        use_connection(
            monkeypatch,
            host="http://go.example.com/api",
            password="secret",
            extra={"allow_insecure_http": True},
        )
        assert ProteusHook().settings.base_url == "http://go.example.com/api"

    def test_unknown_extra_fields_are_named_in_a_warning(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        use_connection(monkeypatch, host="https://api.test", password="secret", extra={"timout": 5})
        with caplog.at_level(logging.WARNING):
            _ = ProteusHook().settings
        assert "ignoring unknown extra fields timout" in caplog.text


class TestCalls:
    def test_get_project(self, proteus_conn: str, control: EmulatorClient) -> None:
        project = ProteusHook(proteus_conn).get_project(DEMO_PROJECT_ID)
        assert (project["id"], project["stage"]) == (DEMO_PROJECT_ID, "NOT_STARTED")
        assert control.requests(path=PROJECT_PATH)[0]["auth"] == "header"

    def test_bearer_auth_is_accepted(
        self, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, host=emulator.base_url, password=TOKEN, extra={"auth_header": "bearer"})
        assert ProteusHook().get_project(DEMO_PROJECT_ID)["id"] == DEMO_PROJECT_ID
        assert control.requests(path=PROJECT_PATH)[0]["auth"] == "bearer"

    def test_submit_job_posts_active_true_as_json(self, proteus_conn: str, control: EmulatorClient) -> None:
        job = ProteusHook(proteus_conn).submit_job(DEMO_PROJECT_ID, DEMO_VERSION_ID)
        assert job["job_type"] == "STREAMX"
        [post] = control.requests(method="POST", path=JOB_PATH)
        assert (post["status"], post["content_type"], post["job_id"]) == (
            201,
            "application/json",
            job["streamx_data"]["id"],
        )

    def test_version_collections_come_back_whole(self, proteus_conn: str, control: EmulatorClient) -> None:
        hook = ProteusHook(proteus_conn)
        control.add_project(id="big-1", aoi_count=120, run_seconds=0, stages=["COMPLETED"])
        assert len(hook.get_version_collection("big-1", "big-1-1.0.0", "aois")) == 120
        assert control.requests(path="/projects/big-1/versions/big-1-1.0.0/aois")[0]["query"] == (
            "limit=1000&offset=0"
        )

    def test_unknown_collection_is_refused(self, proteus_conn: str) -> None:
        with pytest.raises(ProteusConfigurationError, match="collection"):
            ProteusHook(proteus_conn).get_version_collection(DEMO_PROJECT_ID, DEMO_VERSION_ID, "users")

    def test_bad_id_is_refused_before_any_request(self, proteus_conn: str, control: EmulatorClient) -> None:
        with pytest.raises(ProteusConfigurationError, match="project_id"):
            ProteusHook(proteus_conn).get_project("../admin")
        assert control.requests() == []


class TestRetries:
    def test_get_survives_transient_faults(
        self, proteus_conn: str, control: EmulatorClient, caplog: pytest.LogCaptureFixture
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
            assert ProteusHook(proteus_conn).get_project(DEMO_PROJECT_ID)["id"] == DEMO_PROJECT_ID
        statuses = [entry["status"] for entry in control.requests(path=PROJECT_PATH)]
        assert statuses == [503, 429, 502, "dropped", 200]
        retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
        assert len(retries) == 4
        assert (
            f"GET http://127.0.0.1:{control.root_url.rsplit(':', 1)[1]}/api/v2/go{PROJECT_PATH}" in retries[0]
        )
        assert "HTTP 503" in retries[0]
        assert "retrying in 1.0 s" in retries[1]  # Retry-After honoured

    def test_retries_are_bounded(
        self, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
    ):
        use_connection(
            monkeypatch,
            host=emulator.base_url,
            password=TOKEN,
            extra={"max_retries": 2, "retry_backoff": 0.01},
        )
        control.add_faults("GET", PROJECT_PATH, *[{"status": 503}] * 5)
        with pytest.raises(ProteusHTTPError, match="HTTP 503") as caught:
            ProteusHook().get_project(DEMO_PROJECT_ID)
        assert caught.value.transient
        assert len(control.requests(path=PROJECT_PATH)) == 3

    def test_slow_answer_times_out_and_is_retried(
        self, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(
            monkeypatch, host=emulator.base_url, password=TOKEN, extra={"timeout": 0.5, "retry_backoff": 0.01}
        )
        control.add_faults("GET", PROJECT_PATH, {"delay": 2})
        assert ProteusHook().get_project(DEMO_PROJECT_ID)["stage"] == "NOT_STARTED"
        assert len(control.requests(path=PROJECT_PATH)) == 2

    def test_post_refused_with_429_is_sent_again(self, proteus_conn: str, control: EmulatorClient) -> None:
        control.add_faults("POST", JOB_PATH, {"status": 429, "retry_after": 1})
        job = ProteusHook(proteus_conn).submit_job(DEMO_PROJECT_ID, DEMO_VERSION_ID)
        assert [entry["status"] for entry in control.requests(method="POST")] == [429, 201]
        assert job["streamx_data"]["id"]

    def test_post_refused_with_503_is_sent_again(self, proteus_conn: str, control: EmulatorClient) -> None:
        control.add_faults("POST", JOB_PATH, {"status": 503, "body": "<html>Service Unavailable</html>"})
        ProteusHook(proteus_conn).submit_job(DEMO_PROJECT_ID, DEMO_VERSION_ID)
        assert [entry["status"] for entry in control.requests(method="POST")] == [503, 201]

    @pytest.mark.parametrize("status", [500, 502, 504])
    def test_post_meeting_a_server_error_is_not_sent_again(
        self, proteus_conn: str, control: EmulatorClient, status: int
    ) -> None:
        control.add_faults("POST", JOB_PATH, {"status": status})
        with pytest.raises(ProteusHTTPError, match=f"HTTP {status}"):
            ProteusHook(proteus_conn).submit_job(DEMO_PROJECT_ID, DEMO_VERSION_ID)
        assert len(control.requests(method="POST")) == 1

    def test_post_whose_answer_was_lost_is_not_sent_again(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        control.add_faults("POST", JOB_PATH, {"drop_after_processing": True})
        with pytest.raises(ProteusConnectionError, match="GO may have received the request") as caught:
            ProteusHook(proteus_conn).submit_job(DEMO_PROJECT_ID, DEMO_VERSION_ID)
        assert caught.value.request_may_have_been_processed
        [post] = control.requests(method="POST")
        assert post["answer_lost"]
        assert post["job_id"]

    def test_post_timing_out_is_not_sent_again(
        self, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, host=emulator.base_url, password=TOKEN, extra={"timeout": 0.5})
        control.add_faults("POST", JOB_PATH, {"delay": 1.5})
        with pytest.raises(ProteusConnectionError) as caught:
            ProteusHook().submit_job(DEMO_PROJECT_ID, DEMO_VERSION_ID)
        assert caught.value.request_may_have_been_processed
        assert len(control.requests(method="POST")) == 1

    def test_refused_connection_is_known_not_to_have_reached_go(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        port = free_port()
        use_connection(
            monkeypatch,
            host=f"http://127.0.0.1:{port}",
            password="secret",
            extra={"max_retries": 1, "retry_backoff": 0},
        )
        with pytest.raises(ProteusConnectionError, match=f"POST http://127.0.0.1:{port}/projects/") as caught:
            ProteusHook().submit_job("proj-42", "proj-42-1.0.0")
        assert not caught.value.request_may_have_been_processed
        assert "GO may have received" not in str(caught.value)


class TestTLS:
    def test_https_to_a_plain_http_server_fails_at_once_with_a_hint(
        self, emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, host=f"https://127.0.0.1:{emulator.port}/api/v2/go", password=TOKEN)
        with pytest.raises(
            ProteusTLSError, match=r"TLS handshake.*Check the scheme of the connection host"
        ) as caught:
            ProteusHook().get_project(DEMO_PROJECT_ID)
        assert not caught.value.transient

    def test_each_retry_is_logged_once(
        self, proteus_conn: str, control: EmulatorClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        control.add_faults("GET", PROJECT_PATH, {"drop": True})
        with caplog.at_level(logging.DEBUG):
            ProteusHook(proteus_conn).get_project(DEMO_PROJECT_ID)
        retry_lines = [r.getMessage() for r in caplog.records if "etrying" in r.getMessage()]
        assert len(retry_lines) == 1
        assert retry_lines[0].startswith("GO request GET http://127.0.0.1:")


class TestErrors:
    def test_wrong_token_fails_at_once(
        self, emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, host=emulator.base_url, password="tok-WRONG")
        with pytest.raises(ProteusAuthenticationError, match="HTTP 401") as caught:
            ProteusHook().get_project(DEMO_PROJECT_ID)
        assert "tok-WRONG" not in str(caught.value)
        assert len(control.requests()) == 1

    def test_unknown_project_names_the_url(self, proteus_conn: str, control: EmulatorClient) -> None:
        with pytest.raises(
            ProteusNotFoundError, match=r"/projects/no-such-project with HTTP 404: Project no-such"
        ):
            ProteusHook(proteus_conn).get_project("no-such-project")
        assert len(control.requests()) == 1

    def test_400_is_not_retried_and_carries_the_message(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        control.add_faults("POST", JOB_PATH, {"status": 400, "body": '{"message": "version is archived"}'})
        with pytest.raises(ProteusHTTPError, match="HTTP 400: version is archived"):
            ProteusHook(proteus_conn).submit_job(DEMO_PROJECT_ID, DEMO_VERSION_ID)
        assert len(control.requests(method="POST")) == 1

    def test_token_echoed_by_the_server_is_not_in_the_error(
        self, proteus_conn: str, control: EmulatorClient
    ) -> None:
        control.add_faults(
            "GET", PROJECT_PATH, {"status": 403, "body": f'{{"message": "token {TOKEN} has no access"}}'}
        )
        with pytest.raises(ProteusAuthenticationError) as caught:
            ProteusHook(proteus_conn).get_project(DEMO_PROJECT_ID)
        assert TOKEN not in str(caught.value)
        assert "token *** has no access" in str(caught.value)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("<html>Maintenance</html>", "not JSON"),
            ('{"id": "x"}', "envelope"),
            ('{"data": [1, 2], "status": 200}', "a list in 'data' where an object was expected"),
        ],
    )
    def test_answers_that_are_not_go_are_errors(
        self, proteus_conn: str, control: EmulatorClient, body: str, message: str
    ) -> None:
        control.add_faults("GET", PROJECT_PATH, {"status": 200, "body": body})
        with pytest.raises(ProteusResponseError, match=message):
            ProteusHook(proteus_conn).get_project(DEMO_PROJECT_ID)


class TestConnectionTest:
    def test_good_connection(self, proteus_conn: str, control: EmulatorClient) -> None:
        ok, message = ProteusHook(proteus_conn).test_connection()
        assert ok, message
        assert "token was accepted" in message
        assert [entry["method"] for entry in control.requests()] == ["GET"]

    def test_wrong_token(self, emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host=emulator.base_url, password="tok-WRONG")
        ok, message = ProteusHook().test_connection()
        assert not ok
        assert message.startswith(f"GO at {emulator.base_url} refused the API token (HTTP 401")
        assert "Check the token in the connection's password field" in message
        assert "tok-WRONG" not in message

    def test_base_url_that_is_not_go(self, emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host=emulator.root_url, password="tok-WRONG")
        ok, message = ProteusHook().test_connection()
        assert not ok
        assert message.startswith(f"{emulator.root_url} answered, but not the way GO's API does")

    def test_unreachable_host_is_said_plainly_after_one_try(self, monkeypatch: pytest.MonkeyPatch) -> None:
        port = free_port()
        # The connection's own retries are for tasks; the test answers a person at once.
        use_connection(
            monkeypatch, host=f"http://127.0.0.1:{port}", password="secret", extra={"max_retries": 5}
        )
        ok, message = ProteusHook().test_connection()
        assert not ok
        assert message == (
            f"Could not reach GO at http://127.0.0.1:{port}: the connection was refused (nothing listens at "
            "that address and port). Check the API base URL in the host field, and that this machine can "
            "reach it (proxies, firewall)."
        )

    def test_unknown_host_name_is_said_plainly(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host="https://go.invalid", password="secret")
        ok, message = ProteusHook().test_connection()
        assert not ok
        assert "Could not reach GO at https://go.invalid: the host name could not be resolved." in message

    def test_a_bad_connection_is_reported_without_a_request(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_connection(monkeypatch, host="https://api.test")
        assert ProteusHook().test_connection() == (
            False,
            "Connection 'proteus_default' has no API token; put the GO token in its password field",
        )

    def test_ui_form_relabels_and_hides_fields(self) -> None:
        behaviour = ProteusHook.get_ui_field_behaviour()
        assert set(behaviour["hidden_fields"]) == {"schema", "login", "port"}
        assert behaviour["relabeling"] == {"host": "API base URL", "password": "API token"}
