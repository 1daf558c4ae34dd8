"""Metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_proteus import __version__


def connection_field_behaviour() -> dict[str, Any]:
    """How Airflow's connection form shows a ``proteus`` connection: a base URL, a token, an extra.

    Airflow 3.2 and later read this from the provider info (``ui-field-behaviour``); older versions
    call the hook's ``get_ui_field_behaviour``, which returns the same dict.
    """
    return {
        "hidden_fields": ["schema", "login", "port"],
        "relabeling": {"host": "API base URL", "password": "API token"},
        "placeholders": {
            "host": "https://go-services.orbitalinsight.com/api/v2/go",
            "password": "GO user token",
            "extra": '{"auth_header": "token", "timeout": 60}',
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Describe the provider, its modules and its ``proteus`` connection type to Airflow."""
    return {
        "package-name": "airflow-provider-proteus",
        "name": "Orbital Insight GO (Proteus)",
        "description": "Run Orbital Insight GO geospatial analytics projects from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Orbital Insight GO",
                "external-doc-url": "https://docs.orbitalinsight.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Orbital Insight GO",
                "python-modules": ["airflow_provider_proteus.hooks.proteus"],
            }
        ],
        "operators": [
            {
                "integration-name": "Orbital Insight GO",
                "python-modules": ["airflow_provider_proteus.operators.proteus"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Orbital Insight GO",
                "python-modules": ["airflow_provider_proteus.sensors.proteus"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "proteus",
                "hook-class-name": "airflow_provider_proteus.hooks.proteus.ProteusHook",
                "hook-name": "Orbital Insight GO",
                "ui-field-behaviour": {
                    key.replace("_", "-"): value for key, value in connection_field_behaviour().items()
                },
            }
        ],
    }
