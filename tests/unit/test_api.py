"""What GO's answers mean: stages, ids, URLs, envelopes, errors and job ids."""

from __future__ import annotations

import json

import pytest

from airflow_provider_proteus import api
from airflow_provider_proteus.exceptions import (
    ProteusAuthenticationError,
    ProteusConfigurationError,
    ProteusHTTPError,
    ProteusNotFoundError,
    ProteusResponseError,
)

URL = "https://api.test/api/v2/go/projects/proj-42"


class TestClassifyStage:
    @pytest.mark.parametrize(
        ("stage", "outcome"),
        [
            ("COMPLETED", api.StageOutcome.DONE),
            ("FAILURE", api.StageOutcome.FAILED),
            ("NOT_STARTED", api.StageOutcome.WAITING),
            ("RUNNING", api.StageOutcome.WAITING),
            ("QUEUED", api.StageOutcome.UNKNOWN),
            ("CANCELLED", api.StageOutcome.UNKNOWN),
            ("completed", api.StageOutcome.UNKNOWN),
            ("", api.StageOutcome.UNKNOWN),
        ],
    )
    def test_only_completed_is_done(self, stage: str, outcome: api.StageOutcome) -> None:
        assert api.classify_stage(stage) is outcome

    def test_declared_stages_mean_waiting(self) -> None:
        assert api.classify_stage("QUEUED", extra_waiting_stages={"QUEUED"}) is api.StageOutcome.WAITING

    def test_declaring_a_terminal_stage_as_waiting_does_not_change_it(self) -> None:
        assert api.classify_stage("FAILURE", extra_waiting_stages={"FAILURE"}) is api.StageOutcome.FAILED


class TestValidateId:
    @pytest.mark.parametrize("value", ["O1ymF8uopj-190812", "O1ymF8uopj-190812-1.0.0", "proj_42"])
    def test_accepts_go_ids(self, value: str) -> None:
        assert api.validate_id("project_id", value) == value

    @pytest.mark.parametrize(
        "value",
        ["", "   ", " proj-42", "a/b", "../x", "..", ".", "a?b", "a#b", "a%2Fb", "a\\b", "a\nb", "a\x00b"],
    )
    def test_refuses_ids_that_would_change_the_path(self, value: str) -> None:
        with pytest.raises(ProteusConfigurationError, match="project_id"):
            api.validate_id("project_id", value)

    def test_refuses_an_unrendered_template(self) -> None:
        with pytest.raises(ProteusConfigurationError, match=r"version_id .*template"):
            api.validate_id("version_id", "{{ params.version_id }}")

    def test_refuses_a_non_string(self) -> None:
        with pytest.raises(ProteusConfigurationError, match="project_id must be a string"):
            api.validate_id("project_id", None)


class TestBaseUrl:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("https://api.test", "https://api.test"),
            ("https://api.test/", "https://api.test"),
            ("https://api.test/prefix/v2", "https://api.test/prefix/v2"),
            ("https://api.test/prefix/v2/", "https://api.test/prefix/v2"),
            ("api.test", "https://api.test"),
            ("  api.test/prefix  ", "https://api.test/prefix"),
            ("http://127.0.0.1:8099/api/v2/go", "http://127.0.0.1:8099/api/v2/go"),
        ],
    )
    def test_host_forms(self, host: str, expected: str) -> None:
        assert api.normalize_base_url(host) == expected

    @pytest.mark.parametrize("host", ["", None, "   "])
    def test_empty_host_means_production(self, host: str | None) -> None:
        assert api.normalize_base_url(host) == "https://go-services.orbitalinsight.com/api/v2/go"

    def test_port_and_schema_fields_complete_a_bare_host(self) -> None:
        assert (
            api.normalize_base_url("api.test", port=8443, path="api/v2/go")
            == "https://api.test:8443/api/v2/go"
        )

    def test_a_port_in_the_host_agrees_with_the_port_field(self) -> None:
        assert api.normalize_base_url("https://api.test:8443", port=8443) == "https://api.test:8443"
        with pytest.raises(ProteusConfigurationError, match=r"port 8443 .* says 9000"):
            api.normalize_base_url("https://api.test:8443", port=9000)

    @pytest.mark.parametrize(
        ("host", "message"),
        [
            ("ftp://api.test", "http or https"),
            ("https://user:pw@api.test", "credentials"),
            ("https://api.test/?token=x", "query string"),
            ("https://", "names no host"),
            ("https://api.test:notaport", "not a valid URL"),
        ],
    )
    def test_refuses_hosts_that_are_not_api_urls(self, host: str, message: str) -> None:
        with pytest.raises(ProteusConfigurationError, match=message):
            api.normalize_base_url(host)

    @pytest.mark.parametrize("base", ["https://api.test/prefix/v2", "https://api.test/prefix/v2/"])
    def test_joining_puts_exactly_one_slash_between_parts(self, base: str) -> None:
        assert api.project_url(base, "proj-42") == "https://api.test/prefix/v2/projects/proj-42"
        assert (
            api.job_url(base, "proj-42", "proj-42-1.0.0")
            == "https://api.test/prefix/v2/projects/proj-42/versions/proj-42-1.0.0/job"
        )

    def test_segments_are_percent_encoded(self) -> None:
        assert api.build_url("https://api.test", "projects", "a b:c") == "https://api.test/projects/a%20b%3Ac"


class TestInterpretResponse:
    def interpret(self, status: int, body: bytes, expected: int = 200) -> object:
        return api.interpret_response(
            method="GET",
            url=URL,
            status=status,
            body=body,
            expected_status=expected,
            secrets=["tok-CASE-0001"],
        )

    def test_unwraps_the_envelope(self) -> None:
        body = json.dumps({"data": {"id": "proj-42", "stage": "RUNNING"}, "status": 200}).encode()
        assert self.interpret(200, body) == {"id": "proj-42", "stage": "RUNNING"}

    def test_html_gateway_error_is_transient_and_quoted(self) -> None:
        with pytest.raises(ProteusHTTPError) as caught:
            self.interpret(502, b"<html><body>Bad Gateway</body></html>")
        assert caught.value.transient
        assert caught.value.status == 502
        assert "GO answered GET https://api.test/api/v2/go/projects/proj-42 with HTTP 502" in str(
            caught.value
        )
        assert "<html><body>Bad Gateway</body></html>" in str(caught.value)

    def test_html_maintenance_page_with_200_is_not_go(self) -> None:
        with pytest.raises(ProteusResponseError, match=r"HTTP 200 but the body is not JSON .*Maintenance"):
            self.interpret(200, b"<html>Maintenance</html>")

    def test_empty_201_is_not_go(self) -> None:
        with pytest.raises(ProteusResponseError, match=r"\(empty body\)"):
            self.interpret(201, b"", expected=201)

    def test_json_without_envelope_is_not_go(self) -> None:
        with pytest.raises(ProteusResponseError, match="envelope"):
            self.interpret(200, b'{"id": "proj-42"}')

    def test_400_carries_the_server_message_and_is_permanent(self) -> None:
        with pytest.raises(ProteusHTTPError) as caught:
            self.interpret(400, b'{"data": null, "status": 400, "message": "active must be true"}')
        assert not caught.value.transient
        assert caught.value.server_message == "active must be true"
        assert "HTTP 400: active must be true" in str(caught.value)

    def test_401_and_403_say_to_check_the_token(self) -> None:
        for status in (401, 403):
            with pytest.raises(ProteusAuthenticationError, match=r"Check the API token") as caught:
                self.interpret(status, b"{}")
            assert not caught.value.transient

    def test_404_from_go_says_to_check_the_ids(self) -> None:
        with pytest.raises(ProteusNotFoundError, match=r"Check the project and version ids"):
            self.interpret(404, b'{"data": null, "status": 404, "message": "Project proj-42 not found"}')

    @pytest.mark.parametrize("body", [b'{"detail": "Not Found"}', b"<html>Not Found</html>", b""])
    def test_404_that_is_not_go_says_to_check_the_base_url(self, body: bytes) -> None:
        with pytest.raises(
            ProteusResponseError, match=r"That answer is not GO's: check that the connection host"
        ):
            self.interpret(404, body)

    def test_post_meeting_a_gateway_error_says_it_was_not_sent_again(self) -> None:
        error = api.http_error(method="POST", url=URL, status=502, body=b"")
        assert str(error).endswith(
            "GO may have acted on the request before failing, so it was not sent again."
        )

    def test_429_is_transient(self) -> None:
        with pytest.raises(ProteusHTTPError) as caught:
            self.interpret(429, b"")
        assert caught.value.transient

    def test_token_echoed_in_a_body_is_blanked(self) -> None:
        with pytest.raises(ProteusAuthenticationError) as caught:
            self.interpret(401, b'{"message": "bad header X-Orbitalinsight-Auth-Token: tok-CASE-0001"}')
        assert "tok-CASE-0001" not in str(caught.value)
        assert "***" in str(caught.value)

    def test_long_bodies_are_cut(self) -> None:
        with pytest.raises(ProteusHTTPError) as caught:
            self.interpret(500, b"x" * 5000)
        assert len(caught.value.server_message) <= api.BODY_EXCERPT_CHARS + 3


class TestProjectStage:
    def test_reads_the_stage(self) -> None:
        assert api.project_stage({"stage": "RUNNING"}, project_id="proj-42", url=URL) == "RUNNING"

    @pytest.mark.parametrize("project", [{}, {"stage": None}, {"stage": 3}, {"stage": " "}, [], "COMPLETED"])
    def test_a_missing_stage_is_an_error_not_a_stage(self, project: object) -> None:
        with pytest.raises(
            ProteusResponseError,
            match=r"projects/proj-42 for project proj-42 without a usable 'stage'",
        ):
            api.project_stage(project, project_id="proj-42", url=URL)


class TestFindJobId:
    def test_streamx_job_id(self) -> None:
        job = {"airflow_data": None, "job_type": "STREAMX", "streamx_data": {"id": "5d4be147"}}
        assert api.find_job_id(job) == ("STREAMX", "5d4be147")

    @pytest.mark.parametrize(
        "airflow_data", [{"id": "run-1"}, {"dag_run_id": "run-1"}, {"run_id": "run-1", "other": "x"}]
    )
    def test_undocumented_job_type_uses_its_own_sub_object(self, airflow_data: dict[str, str]) -> None:
        job = {"job_type": "AIRFLOW", "airflow_data": airflow_data, "streamx_data": None}
        assert api.find_job_id(job) == ("AIRFLOW", "run-1")

    def test_never_takes_the_id_from_another_type_sub_object(self) -> None:
        job = {"job_type": "AIRFLOW", "airflow_data": None, "streamx_data": {"id": "stale"}}
        assert api.find_job_id(job) == ("AIRFLOW", None)

    @pytest.mark.parametrize(
        "job",
        [
            {"job_type": "STREAMX", "streamx_data": {"id": None}},
            {"job_type": "STREAMX", "streamx_data": {"id": ""}},
            {"job_type": "STREAMX", "streamx_data": {"id": True}},
            {"job_type": "STREAMX", "streamx_data": {}},
            {"job_type": "STREAMX"},
            [{"id": "x"}],
            None,
        ],
    )
    def test_missing_id_is_none(self, job: object) -> None:
        assert api.find_job_id(job)[1] is None

    def test_configured_path_wins(self) -> None:
        job = {"job_type": "AIRFLOW", "airflow_data": {"run": {"key": "abc"}}}
        assert api.find_job_id(job, job_id_paths={"AIRFLOW": "airflow_data.run.key"}) == ("AIRFLOW", "abc")
