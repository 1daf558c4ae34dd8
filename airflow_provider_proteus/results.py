"""A project version's results as flat rows, and the files they are written to.

GO returns results as a graph: areas of interest (AOIs), a tree of divisions under each AOI (the top
division has the AOI's id, ``children`` names sub-divisions), results tied to a division, and time
series under a result. :class:`ResultRows` walks it and yields one row per measured value of each
point of each time series, so that a spreadsheet, a warehouse table or pandas can read the output
without knowing GO's shapes. Only the AOIs, divisions and the list of results are held in memory;
time series are read page by page and never kept.

Imported only when results are fetched, so a DAG that only submits and waits never loads it.
"""

from __future__ import annotations

import csv
import datetime
import json
import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_proteus import api
from airflow_provider_proteus.exceptions import ProteusConfigurationError, ProteusResponseError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import IO

    from airflow_provider_proteus.hooks.proteus import ProteusHook

log = logging.getLogger(__name__)

#: The columns of every row, in file order.
COLUMNS = (
    "project_id",
    "version_id",
    "aoi_id",
    "aoi_name",
    "aoi_country",
    "aoi_state",
    "division_id",
    "parent_division_id",
    "result_id",
    "timeseries_type",
    "observed_at",
    "measure",
    "value",
)

#: The file formats :func:`write_rows` writes.
FILE_FORMATS = ("csv", "jsonl")

Row = dict[str, Any]


def observed_at(x_value: Any, *, url: str) -> str:
    """The ISO-8601 time of a point from its ``x_value`` (``obs_date`` read with ``field_format``).

    A date without a time of day stays a date (``2026-01-31``); a time with an offset is converted
    to UTC; a time without one is taken to be UTC, as GO's own example treats it.

    :param x_value: The point's ``x_value`` object.
    :param url: The time series' URL, for the error message.
    """
    obs_date = x_value.get("obs_date") if isinstance(x_value, dict) else None
    field_format = x_value.get("field_format") if isinstance(x_value, dict) else None
    if not isinstance(obs_date, str):
        raise ProteusResponseError(
            f"A time-series point from GET {url} has no 'obs_date' in its x_value ({x_value!r})",
            method="GET",
            url=url,
            status=200,
        )
    try:
        if isinstance(field_format, str) and field_format:
            moment = datetime.datetime.strptime(obs_date, field_format)
        else:
            moment = datetime.datetime.fromisoformat(obs_date)
    except ValueError as err:
        raise ProteusResponseError(
            f"A time-series point from GET {url} has obs_date {obs_date!r}, which does not match its "
            f"field_format {field_format!r}: {err}",
            method="GET",
            url=url,
            status=200,
        ) from None
    if moment.tzinfo is not None:
        return moment.astimezone(datetime.timezone.utc).isoformat()
    if moment.time() == datetime.time() and not _has_time_directive(field_format):
        return moment.date().isoformat()
    return moment.replace(tzinfo=datetime.timezone.utc).isoformat()


def _has_time_directive(field_format: object) -> bool:
    return isinstance(field_format, str) and any(f"%{code}" in field_format for code in "HIMSfpXcz")


def division_tree(aois: Iterable[dict[str, Any]], divisions: Iterable[dict[str, Any]]) -> dict[str, Row]:
    """Map each division id to its AOI's columns and its parent division, walking from the AOIs down.

    A division whose id is an AOI's id is that AOI's top division; its ``children`` (and theirs)
    belong to the same AOI. Divisions that no AOI reaches are left out; results tied to them keep
    empty AOI columns.
    """
    by_id = {str(division["division_id"]): division for division in divisions if "division_id" in division}
    tree: dict[str, Row] = {}
    for aoi in aois:
        aoi_id = str(aoi.get("id"))
        aoi_columns = {
            "aoi_id": aoi_id,
            "aoi_name": aoi.get("name"),
            "aoi_country": aoi.get("country"),
            "aoi_state": aoi.get("state"),
        }
        pending: list[tuple[str, str | None]] = [(aoi_id, None)]
        while pending:
            division_id, parent = pending.pop()
            if division_id in tree:
                continue
            tree[division_id] = {**aoi_columns, "division_id": division_id, "parent_division_id": parent}
            children = by_id.get(division_id, {}).get("children") or []
            pending.extend((str(child), division_id) for child in children if isinstance(child, (str, int)))
    return tree


class ResultRows:
    """The rows of one project version's results, read from GO as they are iterated.

    :param hook: The hook to read with.
    :param project_id: The GO project id.
    :param version_id: The version whose results to read.
    :param timeseries_types: The series to read for every result, for example ``["raw.count"]``.
        ``None`` reads the ones each result lists (see
        :data:`airflow_provider_proteus.api.RESULT_TIMESERIES_TYPES_FIELD`).
    """

    def __init__(
        self,
        hook: ProteusHook,
        *,
        project_id: str,
        version_id: str,
        timeseries_types: Sequence[str] | None = None,
    ) -> None:
        self.hook = hook
        self.project_id = project_id
        self.version_id = version_id
        self.timeseries_types = list(timeseries_types) if timeseries_types is not None else None
        #: Filled in while iterating: how many results and series were read.
        self.result_count = 0
        self.series_count = 0

    def __iter__(self) -> Iterator[Row]:
        tree = division_tree(
            self.hook.get_aois(self.project_id, self.version_id),
            self.hook.get_divisions(self.project_id, self.version_id),
        )
        ids = {"project_id": self.project_id, "version_id": self.version_id}
        unplaced = 0
        for result in self.hook.iter_version_collection(self.project_id, self.version_id, "results"):
            self.result_count += 1
            result_id = str(result.get("id"))
            division_id = result.get("division_id")
            place = tree.get(str(division_id))
            if place is None:
                unplaced += 1
                place = {"division_id": division_id}
            base = {**ids, **place, "result_id": result_id}

            types = self._types_of(result)
            if not types:
                yield self._row(base)
                continue
            for ts_type in types:
                self.series_count += 1
                url = api.timeseries_url(
                    self.hook.settings.base_url, self.project_id, self.version_id, result_id, ts_type
                )
                for point in self.hook.iter_timeseries(self.project_id, self.version_id, result_id, ts_type):
                    yield from self._point_rows(base, ts_type, point, url)
        if unplaced:
            log.warning(
                "%d results of project %s version %s name a division that no AOI of the version reaches; "
                "their AOI columns are empty.",
                unplaced,
                self.project_id,
                self.version_id,
            )

    def _types_of(self, result: dict[str, Any]) -> list[str]:
        if self.timeseries_types is not None:
            return self.timeseries_types
        listed = result.get(api.RESULT_TIMESERIES_TYPES_FIELD) or []
        return [str(ts_type) for ts_type in listed] if isinstance(listed, list) else []

    def _point_rows(self, base: Row, ts_type: str, point: Any, url: str) -> Iterator[Row]:
        if not isinstance(point, dict):
            raise ProteusResponseError(
                f"A time-series point from GET {url} is not an object: {point!r}",
                method="GET",
                url=url,
                status=200,
            )
        when = observed_at(point.get("x_value"), url=url)
        values = point.get("y_value")
        measures = values.items() if isinstance(values, dict) else [("value", values)]
        for measure, value in measures:
            yield self._row(base, timeseries_type=ts_type, observed_at=when, measure=measure, value=value)

    @staticmethod
    def _row(base: Row, **series: Any) -> Row:
        return {column: series.get(column, base.get(column)) for column in COLUMNS}


def check_file_format(file_format: str) -> str:
    """Return ``file_format`` if :func:`write_rows` can write it, else raise naming the choices."""
    if file_format not in FILE_FORMATS:
        raise ProteusConfigurationError(
            f"file_format must be one of {', '.join(FILE_FORMATS)}, got {file_format!r}"
        )
    return file_format


def write_rows(rows: Iterable[Row], file: IO[str], file_format: str) -> int:
    """Write rows to an open text file as CSV (with a header) or JSON lines; return how many.

    CSV leaves a missing value empty; JSON lines keep it as ``null`` and numbers as numbers.
    """
    check_file_format(file_format)
    count = 0
    if file_format == "csv":
        writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    else:
        for row in rows:
            file.write(json.dumps(row, separators=(",", ":"), default=str))
            file.write("\n")
            count += 1
    return count
