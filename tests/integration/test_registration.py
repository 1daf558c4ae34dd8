"""Airflow discovers the provider and its ``proteus`` connection type, in-process and on the CLI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from typing import Any

import pytest

from airflow_provider_proteus import __version__
from airflow_provider_proteus.hooks.proteus import ProteusHook
from airflow_provider_proteus.testing.airflow_runs import AIRFLOW_CLI
from airflow_provider_proteus.version_compat import AIRFLOW_V_3_0_PLUS, airflow_version

pytestmark = pytest.mark.integration


def airflow_cli(*args: str) -> str:
    result = subprocess.run([AIRFLOW_CLI, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def airflow_cli_json(*args: str) -> Any:
    """The JSON a CLI command printed; Airflow 3.2 prints log lines before it on standard output."""
    printed = airflow_cli(*args, "-o", "json").splitlines()
    return json.loads(next(line for line in reversed(printed) if line.startswith(("[", "{"))))


def reads_connection_forms() -> bool:
    """Whether this Airflow reads hooks' connection-form customisations: always from 3.2; before, only
    where WTForms and Flask-AppBuilder are installed (Airflow 2.11 has both; Airflow 3.0 and 3.1 have
    them with the FAB provider). Without them the form is Airflow's plain one, as the README says."""
    if airflow_version() >= (3, 2, 0):
        return True
    return all(importlib.util.find_spec(module) is not None for module in ("wtforms", "flask_appbuilder"))


def test_providers_manager_knows_the_provider_and_its_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["airflow-provider-proteus"].version == __version__
    if not reads_connection_forms():
        assert "proteus" not in manager.field_behaviours
        return
    assert manager.field_behaviours["proteus"]["relabeling"] == {
        "host": "API base URL",
        "password": "API token",
    }
    assert set(manager.field_behaviours["proteus"]["hidden_fields"]) == {"schema", "login", "port"}


def task_runtime_providers() -> Any:
    """The registry of providers that tasks consult: the task SDK's own where it has one (Airflow 3.2
    and later), Airflow's providers manager before."""
    if AIRFLOW_V_3_0_PLUS and importlib.util.find_spec("airflow.sdk.providers_manager_runtime") is not None:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        return ProvidersManagerTaskRuntime()
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_task_runtime_finds_the_hook_for_the_connection_type() -> None:
    hook = task_runtime_providers().hooks["proteus"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_proteus.hooks.proteus.ProteusHook"
    assert hook.connection_id_attribute_name == "proteus_conn_id"
    assert hook.hook_name == "Orbital Insight GO"
    assert hook.connection_testable


def test_cli_lists_the_provider() -> None:
    providers = {entry["package_name"]: entry for entry in airflow_cli_json("providers", "list")}
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
    listed = airflow_cli_json("connections", "get", "proteus_cli")
    assert listed[0]["conn_type"] == "proteus"
    assert listed[0]["host"] == "https://go.example.com/api/v2/go"


def test_providers_manager_registers_the_link_and_the_asset_scheme() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow_provider_proteus.links.proteus.ProteusProjectLink" in manager.extra_links_class_names
    # Airflow 2 calls assets datasets.
    kind = "asset" if AIRFLOW_V_3_0_PLUS else "dataset"
    assert "proteus" in getattr(task_runtime_providers(), f"{kind}_uri_handlers")
    assert "proteus" in getattr(task_runtime_providers(), f"{kind}_factories")


def test_providers_manager_has_the_fields_of_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    fields = {
        name.removeprefix("extra__proteus__"): widget.field
        for name, widget in manager.connection_form_widgets.items()
        if name.startswith("extra__proteus__")
    }
    if not reads_connection_forms():
        # The hook offers no fields rather than failing on the missing UI packages.
        assert ProteusHook.get_connection_form_widgets() == {}
        assert fields == {}
        return
    if airflow_version() < (3, 2, 0):
        # Airflow before 3.2 builds the form from the hook's WTForms fields; verify stays in the Extra box.
        assert set(fields) == {"auth_header", "timeout", "ca_bundle", "web_url"}
        auth_header = fields["auth_header"].kwargs
        assert str(auth_header["validators"][1].values) == "['token', 'bearer']"
        assert "Default: token." in auth_header["description"]
        return
    assert set(fields) == {"auth_header", "timeout", "verify", "ca_bundle", "web_url"}
    assert fields["auth_header"]["schema"]["enum"] == ["token", "bearer"]
    assert fields["verify"]["schema"]["type"] == ["boolean", "null"]
