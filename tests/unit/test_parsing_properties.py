"""Property-based tests: parsing any answer or input ends in a value or the provider's own error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_proteus import api
from airflow_provider_proteus.exceptions import ProteusConfigurationError, ProteusError

SECRET = "tok-PROP-0001"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
go_like = st.fixed_dictionaries(
    {"data": json_values | st.dictionaries(st.sampled_from(["stage", "id", "job_type"]), json_values)},
    optional={"status": st.integers(100, 599), "message": st.text()},
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    go_like.map(lambda value: json.dumps(value).encode()),
    st.text(max_size=200).map(lambda text: f"<html><body>{text}</body></html>".encode()),
    st.just(b""),
    st.just(f'{{"message": "bad token {SECRET}"}}'.encode()),
)

fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(status=st.integers(100, 599), body=bodies, expected=st.sampled_from([200, 201]))
def test_any_answer_is_data_or_a_proteus_error_without_the_token(
    status: int, body: bytes, expected: int
) -> None:
    try:
        data = api.interpret_response(
            method="GET",
            url="https://api.test/projects/p",
            status=status,
            body=body,
            expected_status=expected,
            secrets=[SECRET],
        )
    except ProteusError as err:
        assert SECRET not in str(err)
    else:
        assert status == expected
        assert json.loads(body)["data"] == data


@fast
@given(project=json_values | go_like.map(lambda value: value["data"]))
def test_any_project_document_gives_a_stage_or_a_proteus_error(project: Any) -> None:
    try:
        stage = api.project_stage(project, project_id="p", url="https://api.test/projects/p")
    except ProteusError:
        return
    assert isinstance(stage, str)
    assert stage
    outcome = api.classify_stage(stage)
    assert (outcome is api.StageOutcome.DONE) == (stage == "COMPLETED")


@fast
@given(
    job=json_values | st.fixed_dictionaries({"job_type": json_values}, optional={"streamx_data": json_values})
)
def test_any_job_document_gives_a_job_id_or_none(job: Any) -> None:
    job_type, job_id = api.find_job_id(job)
    assert isinstance(job_type, str)
    assert job_id is None or (isinstance(job_id, str) and job_id.strip())


@fast
@given(value=st.text(max_size=40) | json_values)
def test_any_id_is_accepted_whole_or_refused(value: Any) -> None:
    try:
        accepted = api.validate_id("project_id", value)
    except ProteusConfigurationError as err:
        assert "project_id" in str(err)
        return
    url = api.project_url("https://api.test", accepted)
    assert url.startswith("https://api.test/projects/")
    assert "/" not in url.removeprefix("https://api.test/projects/")


@fast
@given(
    host=st.text(max_size=60), port=st.none() | st.integers(0, 70000), path=st.none() | st.text(max_size=20)
)
def test_any_host_gives_a_base_url_or_a_configuration_error(
    host: str, port: int | None, path: str | None
) -> None:
    try:
        base = api.normalize_base_url(host, port=port, path=path)
    except ProteusConfigurationError:
        return
    assert base.startswith(("http://", "https://"))
    assert not base.endswith("/")
