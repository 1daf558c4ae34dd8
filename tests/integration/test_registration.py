"""Airflow discovers the provider and its ``proteus`` connection type, in-process and on the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_proteus import __version__

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow_cli(*args: str) -> str:
    result = subprocess.run([AIRFLOW, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_providers_manager_knows_the_provider_and_its_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["airflow-provider-proteus"].version == __version__
    assert manager.field_behaviours["proteus"]["relabeling"] == {
        "host": "API base URL",
        "password": "API token",
    }
    assert set(manager.field_behaviours["proteus"]["hidden_fields"]) == {"schema", "login", "port"}


def test_task_runtime_finds_the_hook_for_the_connection_type() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["proteus"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_proteus.hooks.proteus.ProteusHook"
    assert hook.connection_id_attribute_name == "proteus_conn_id"
    assert hook.hook_name == "Orbital Insight GO"
    assert hook.connection_testable


def test_cli_lists_the_provider() -> None:
    listing = airflow_cli("providers", "list", "-o", "json")
    providers = {entry["package_name"]: entry for entry in json.loads(listing)}
    assert providers["airflow-provider-proteus"]["version"] == __version__


def test_cli_adds_a_proteus_connection(metadata_db: None) -> None:
    airflow_cli(
        "connections",
        "add",
        "proteus_cli",
        "--conn-type",
        "proteus",
        "--conn-host",
        "https://go.example.com/api/v2/go",
        "--conn-password",
        "tok-CLI",
    )
    listed = json.loads(airflow_cli("connections", "get", "proteus_cli", "-o", "json"))
    assert listed[0]["conn_type"] == "proteus"
    assert listed[0]["host"] == "https://go.example.com/api/v2/go"


def test_providers_manager_registers_the_link_the_asset_scheme_and_the_form_fields() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert "airflow_provider_proteus.links.proteus.ProteusProjectLink" in manager.extra_links_class_names
    assert "proteus" in ProvidersManagerTaskRuntime().asset_uri_handlers
    assert "proteus" in ProvidersManagerTaskRuntime().asset_factories
    fields = {
        name.removeprefix("extra__proteus__"): widget.field
        for name, widget in manager.connection_form_widgets.items()
        if name.startswith("extra__proteus__")
    }
    assert set(fields) == {"auth_header", "timeout", "verify", "ca_bundle", "web_url"}
    assert fields["auth_header"]["schema"]["enum"] == ["token", "bearer"]
    assert fields["verify"]["schema"]["type"] == ["boolean", "null"]
