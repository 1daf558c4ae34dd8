"""Results as rows: the division tree, time-series points, and the CSV and JSON-lines files."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import pytest

from airflow_provider_proteus.exceptions import ProteusConfigurationError, ProteusResponseError
from airflow_provider_proteus.hooks.proteus import ProteusHook
from airflow_provider_proteus.results import COLUMNS, ResultRows, division_tree, observed_at, write_rows

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient

URL = "https://go.test/api/v2/go/projects/p/versions/p-1.0.0/results/r/timeseries/raw.count"


class TestDivisionTree:
    def test_sub_divisions_belong_to_the_aoi_at_the_top_of_their_tree(self) -> None:
        aois = [{"id": "a1", "name": "Lot", "country": "US", "state": "Nevada"}]
        divisions = [
            {"division_id": "a1", "children": ["a1-n"]},
            {"division_id": "a1-n", "children": ["a1-n-1"]},
            {"division_id": "a1-n-1", "children": []},
            {"division_id": "orphan", "children": []},
        ]

        tree = division_tree(aois, divisions)

        assert sorted(tree) == ["a1", "a1-n", "a1-n-1"]
        assert tree["a1-n-1"] == {
            "aoi_id": "a1",
            "aoi_name": "Lot",
            "aoi_country": "US",
            "aoi_state": "Nevada",
            "division_id": "a1-n-1",
            "parent_division_id": "a1-n",
        }
        assert tree["a1"]["parent_division_id"] is None

    def test_a_cycle_in_the_children_ends(self) -> None:
        divisions = [{"division_id": "a", "children": ["b"]}, {"division_id": "b", "children": ["a"]}]
        assert sorted(division_tree([{"id": "a"}], divisions)) == ["a", "b"]


class TestObservedAt:
    def test_a_date_stays_a_date(self) -> None:
        assert observed_at({"obs_date": "31/01/2026", "field_format": "%d/%m/%Y"}, url=URL) == "2026-01-31"

    def test_a_time_without_an_offset_is_utc(self) -> None:
        x_value = {"obs_date": "2026-01-31 08:30", "field_format": "%Y-%m-%d %H:%M"}
        assert observed_at(x_value, url=URL) == "2026-01-31T08:30:00+00:00"

    def test_a_time_with_an_offset_is_converted_to_utc(self) -> None:
        x_value = {"obs_date": "2026-01-31T08:30:00+0200", "field_format": "%Y-%m-%dT%H:%M:%S%z"}
        assert observed_at(x_value, url=URL) == "2026-01-31T06:30:00+00:00"

    def test_without_a_format_iso_is_read(self) -> None:
        assert observed_at({"obs_date": "2026-01-31"}, url=URL) == "2026-01-31"

    def test_a_date_that_does_not_match_its_format_names_the_value_and_url(self) -> None:
        with pytest.raises(ProteusResponseError, match=r"obs_date '2026-31-01'.*%Y-%m-%d") as err:
            observed_at({"obs_date": "2026-31-01", "field_format": "%Y-%m-%d"}, url=URL)
        assert URL in str(err.value)

    def test_a_point_without_a_date_is_refused(self) -> None:
        with pytest.raises(ProteusResponseError, match="no 'obs_date'"):
            observed_at({"when": "yesterday"}, url=URL)


@pytest.fixture
def small_project(control: EmulatorClient, proteus_conn: str) -> ProteusHook:
    """A completed project with 2 AOIs (6 divisions and results, 2 series each) and 5-day series."""
    control.add_project(id="small-1", aoi_count=2, timeseries_days=5, stages=["COMPLETED"])
    return ProteusHook(proteus_conn)


class TestResultRows:
    def test_one_row_per_measure_of_each_point_of_each_series(self, small_project: ProteusHook) -> None:
        rows = ResultRows(small_project, project_id="small-1", version_id="small-1-1.0.0")

        all_rows = list(rows)

        assert len(all_rows) == 6 * 2 * 5
        assert (rows.result_count, rows.series_count) == (6, 12)
        assert all(tuple(row) == COLUMNS for row in all_rows)
        first = all_rows[0]
        assert first["project_id"] == "small-1"
        assert first["aoi_id"] == "small-1-aoi-1"
        assert first["aoi_name"] == "Distribution Center Parking, Reno NV"
        assert (first["division_id"], first["parent_division_id"]) == ("small-1-aoi-1", None)
        assert (first["timeseries_type"], first["observed_at"], first["measure"]) == (
            "raw.count",
            "2026-01-01",
            "count",
        )
        assert isinstance(first["value"], int)
        lot = next(row for row in all_rows if row["division_id"] == "small-1-aoi-1-lot-1")
        assert (lot["aoi_id"], lot["parent_division_id"]) == ("small-1-aoi-1", "small-1-aoi-1")

    def test_named_series_replace_the_ones_each_result_lists(self, small_project: ProteusHook) -> None:
        rows = list(
            ResultRows(
                small_project,
                project_id="small-1",
                version_id="small-1-1.0.0",
                timeseries_types=["scene.subaoi.fillforward.normalized.count"],
            )
        )
        assert len(rows) == 6 * 5
        assert {row["timeseries_type"] for row in rows} == {"scene.subaoi.fillforward.normalized.count"}

    def test_a_result_without_series_is_one_row_with_empty_series_columns(
        self, small_project: ProteusHook
    ) -> None:
        rows = list(
            ResultRows(small_project, project_id="small-1", version_id="small-1-1.0.0", timeseries_types=[])
        )
        assert len(rows) == 6
        assert {(row["timeseries_type"], row["observed_at"], row["value"]) for row in rows} == {
            (None, None, None)
        }


ROWS = (
    dict.fromkeys(COLUMNS) | {"project_id": "p", "measure": "count", "value": 12},
    dict.fromkeys(COLUMNS) | {"project_id": "p", "measure": "count", "value": 0.5},
)


class TestWriteRows:
    def test_csv_has_a_header_and_empty_cells_for_missing_values(self) -> None:
        out = io.StringIO()

        assert write_rows(iter(ROWS), out, "csv") == 2

        lines = list(csv.reader(io.StringIO(out.getvalue())))
        assert lines[0] == list(COLUMNS)
        assert lines[1][COLUMNS.index("value")] == "12"
        assert lines[2][COLUMNS.index("aoi_id")] == ""

    def test_json_lines_keep_numbers_and_nulls(self) -> None:
        out = io.StringIO()

        assert write_rows(iter(ROWS), out, "jsonl") == 2

        first, second = (json.loads(line) for line in out.getvalue().splitlines())
        assert (first["value"], second["value"], first["aoi_id"]) == (12, 0.5, None)

    def test_an_unknown_format_is_refused_naming_the_choices(self) -> None:
        with pytest.raises(ProteusConfigurationError, match="csv, jsonl"):
            write_rows([], io.StringIO(), "parquet")
