"""The ``proteus://`` asset: its URI, Airflow's check of it, and outlets that would mislead."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, Asset, AssetAlias

from airflow_provider_proteus.assets.proteus import check_outlets, create_asset
from airflow_provider_proteus.exceptions import ProteusConfigurationError
from airflow_provider_proteus.operators.proteus import FetchResultsOperator
from airflow_provider_proteus.sensors.proteus import ProjectStageSensor
from airflow_provider_proteus.version_compat import AIRFLOW_V_3_0_PLUS


def test_the_asset_of_a_version_names_the_project_and_the_version() -> None:
    asset = create_asset(project_id="O1ymF8uopj-190812", version_id="O1ymF8uopj-190812-1.0.0")
    assert asset.uri == "proteus://O1ymF8uopj-190812/O1ymF8uopj-190812-1.0.0"
    # A consumer that writes the URI by hand schedules on the same asset.
    assert asset == Asset("proteus://O1ymF8uopj-190812/O1ymF8uopj-190812-1.0.0")


@pytest.mark.parametrize(
    "uri", ["proteus://p1", "proteus://p1/v1/extra", "proteus://p%201/v1", "proteus://p1/{{ params.v }}"]
)
def test_airflow_refuses_a_proteus_uri_that_names_no_single_version(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not AIRFLOW_V_3_0_PLUS:
        # Airflow 2 only warns about a URI its scheme's handler refuses, unless told to be strict.
        with pytest.warns(UserWarning, match=r"proteus://<project id>/<version id>"):
            Asset(uri)
        monkeypatch.setenv("AIRFLOW__CORE__STRICT_DATASET_URI_VALIDATION", "True")
    with pytest.raises(ValueError, match=r"proteus://<project id>/<version id>"):
        Asset(uri)


def test_an_outlet_for_another_version_is_refused() -> None:
    with pytest.raises(ProteusConfigurationError, match="names another project version"):
        check_outlets([Asset("proteus://p1/p1-2.0.0")], project_id="p1", version_id="p1-1.0.0", task="t")


def test_an_alias_needs_the_version_to_name_the_asset() -> None:
    with pytest.raises(ProteusConfigurationError, match="no version_id"):
        check_outlets([AssetAlias("done")], project_id="p1", version_id=None, task="t")


def test_other_outlets_are_left_alone() -> None:
    check_outlets([Asset("s3://bucket/key"), AssetAlias("done")], project_id="p1", version_id="v", task="t")


def test_the_results_operator_refuses_a_misleading_outlet_before_doing_anything() -> None:
    operator = FetchResultsOperator(
        task_id="fetch",
        project_id="p1",
        version_id="p1-1.0.0",
        path="file:///tmp/x.csv",
        outlets=[Asset("proteus://p2/p2-1.0.0")],
    )
    with pytest.raises(AirflowFailException, match="names another project version"):
        operator.execute(context={})  # type: ignore[arg-type]


def test_the_sensor_refuses_an_alias_without_a_version() -> None:
    sensor = ProjectStageSensor(task_id="wait", project_id="p1", outlets=[AssetAlias("done")])
    with pytest.raises(AirflowFailException, match="no version_id"):
        sensor.execute(context={})  # type: ignore[arg-type]


def test_an_unknown_file_format_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(ProteusConfigurationError, match="'csv' or 'jsonl'"):
        FetchResultsOperator(task_id="fetch", project_id="p", version_id="v", path="x", file_format="xlsx")
