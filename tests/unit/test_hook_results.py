"""The hook reads a version's results and time series whole, page by page, against the emulator."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_provider_proteus.exceptions import ProteusConfigurationError, ProteusResponseError
from airflow_provider_proteus.hooks.proteus import ProteusHook

if TYPE_CHECKING:
    from airflow_provider_proteus.testing import EmulatorClient, GoEmulator

BIG = "big-1"
VERSION = f"{BIG}-1.0.0"
BASE = f"/projects/{BIG}/versions/{VERSION}"


@pytest.fixture
def big_project(control: EmulatorClient) -> str:
    """A completed project with 40 AOIs (120 divisions and results) and 1,500-day time series."""
    control.add_project(id=BIG, aoi_count=40, timeseries_days=1500, stages=["COMPLETED"])
    return BIG


def hook_with(emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch, **extra: object) -> ProteusHook:
    monkeypatch.setenv("AIRFLOW_CONN_PROTEUS_DEFAULT", emulator.connection_json(retry_backoff=0.01, **extra))
    return ProteusHook()


def queries(control: EmulatorClient, path: str) -> list[str]:
    return [entry["query"] for entry in control.requests(method="GET", path=path)]


def test_results_are_read_page_by_page_until_a_short_page(
    emulator: GoEmulator, control: EmulatorClient, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = hook_with(emulator, monkeypatch, page_size=50).get_results(BIG, VERSION)

    assert len(results) == 120
    assert len({result["id"] for result in results}) == 120
    assert queries(control, f"{BASE}/results") == [
        "limit=50&offset=0",
        "limit=50&offset=50",
        "limit=50&offset=100",
    ]


def test_a_full_last_page_is_followed_by_one_empty_page(
    emulator: GoEmulator, control: EmulatorClient, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aois = hook_with(emulator, monkeypatch, page_size=20).get_aois(BIG, VERSION)

    assert [aoi["id"] for aoi in aois] == [f"{BIG}-aoi-{n}" for n in range(1, 41)]
    assert queries(control, f"{BASE}/aois")[-1] == "limit=20&offset=40"


def test_page_size_minus_one_asks_for_everything_at_once(
    emulator: GoEmulator, control: EmulatorClient, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    divisions = hook_with(emulator, monkeypatch, page_size=-1).get_divisions(BIG, VERSION)

    assert len(divisions) == 120
    assert queries(control, f"{BASE}/divisions") == ["limit=-1"]


def test_a_long_time_series_comes_back_whole_and_in_order(
    emulator: GoEmulator, control: EmulatorClient, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_with(emulator, monkeypatch, page_size=1000)
    result_id = hook.get_results(BIG, VERSION)[0]["id"]

    points = hook.get_timeseries(BIG, VERSION, result_id, "raw.count")

    assert len(points) == 1500
    dates = [point["x_value"]["obs_date"] for point in points]
    assert dates == sorted(dates)
    assert len(set(dates)) == 1500
    assert queries(control, f"{BASE}/results/{result_id}/timeseries/raw.count") == [
        "format=json&limit=1000&offset=0",
        "format=json&limit=1000&offset=1000",
    ]


def test_a_transient_error_on_a_later_page_is_retried_and_nothing_is_lost(
    emulator: GoEmulator, control: EmulatorClient, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    control.add_faults("GET", f"{BASE}/results", {}, {"status": 503})

    results = hook_with(emulator, monkeypatch, page_size=50).get_results(BIG, VERSION)

    assert len({result["id"] for result in results}) == 120
    assert queries(control, f"{BASE}/results") == [
        "limit=50&offset=0",
        "limit=50&offset=50",
        "limit=50&offset=50",
        "limit=50&offset=100",
    ]


def test_a_server_that_ignores_offset_is_refused_instead_of_looping(
    emulator: GoEmulator, control: EmulatorClient, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_with(emulator, monkeypatch, page_size=50)
    first_page = hook.get_conn().get(f"{emulator.base_url}{BASE}/results", params={"limit": 50}).json()
    control.add_faults("GET", f"{BASE}/results", {}, {"status": 200, "body": json.dumps(first_page)})

    with pytest.raises(ProteusResponseError, match=r"ignores 'offset'.*\"page_size\" to -1"):
        hook.get_results(BIG, VERSION)


def test_a_server_that_ignores_limit_is_refused(
    emulator: GoEmulator, control: EmulatorClient, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = {"data": [{"id": n} for n in range(60)], "status": 200}
    control.add_faults("GET", f"{BASE}/aois", {"status": 200, "body": json.dumps(everything)})

    with pytest.raises(ProteusResponseError, match=r"with 60 aois .*ignores 'limit'"):
        hook_with(emulator, monkeypatch, page_size=50).get_aois(BIG, VERSION)


@pytest.mark.parametrize("page_size", [0, -2, "many", True, 1.5])
def test_an_unusable_page_size_is_refused_naming_the_field(
    emulator: GoEmulator, monkeypatch: pytest.MonkeyPatch, page_size: object
) -> None:
    with pytest.raises(ProteusConfigurationError, match="'page_size' must be a positive integer"):
        _ = hook_with(emulator, monkeypatch, page_size=page_size).settings


def test_a_page_size_given_as_text_in_a_uri_connection_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GO", "proteus://:secret@api.test/api/v2/go?page_size=250")
    assert ProteusHook("go").settings.page_size == 250


def test_an_id_that_would_change_the_time_series_path_is_refused(
    emulator: GoEmulator, control: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_with(emulator, monkeypatch)
    with pytest.raises(ProteusConfigurationError, match="timeseries_type"):
        list(hook.iter_timeseries(BIG, VERSION, "result-1", "../../jobs"))
    assert control.requests() == []
