"""Metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_proteus import __version__

ASSETS = "airflow_provider_proteus.assets.proteus"
_PROTEUS_URIS = {
    "schemes": ["proteus"],
    "handler": f"{ASSETS}.sanitize_uri",
    "factory": f"{ASSETS}.create_asset",
    "to_openlineage_converter": f"{ASSETS}.convert_asset_to_openlineage",
}


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


def connection_fields() -> dict[str, Any]:
    """The extra's settings that Airflow 3.2 and later show as fields of the connection form.

    Each is saved in the connection's extra under its own name, as if written in the Extra box;
    a field left empty means the default. The other extra settings stay in the Extra box.
    """

    def field(label: str, types: str, description: str, **schema: Any) -> dict[str, Any]:
        return {"label": label, "description": description, "schema": {"type": [types, "null"], **schema}}

    return {
        "auth_header": field(
            "Auth header style",
            "string",
            '"token" sends X-Orbitalinsight-Auth-Token (GO\'s REST examples); "bearer" sends '
            "Authorization: Bearer.",
            enum=["token", "bearer"],
            default="token",
        ),
        "timeout": field(
            "Timeout (seconds)",
            "number",
            "How long to wait for GO to accept a connection, and for each read of an answer.",
            default=60,
        ),
        "verify": field(
            "Verify TLS certificates",
            "boolean",
            "Turn off only for a test server with a self-signed certificate.",
            default=True,
        ),
        "ca_bundle": field(
            "CA bundle path",
            "string",
            "A file of CA certificates to verify GO's certificate with, instead of the system's.",
        ),
        "web_url": field(
            "GO web app URL",
            "string",
            'Where the "GO project" link of a task points: <web app URL>/projects/<project id>.',
            default="https://go.orbitalinsight.com",
        ),
    }


def connection_form_widgets() -> dict[str, Any]:
    """:func:`connection_fields` as the WTForms fields that Airflow before 3.2 shows in the form.

    These forms save text, so the switch ``verify`` is left to the Extra box: a checkbox would save
    false for a box left unticked, turning certificate checks off for a connection that never asked,
    and the text "false" could be a CA bundle's path. Airflow imports Flask-AppBuilder and WTForms
    only where its UI needs them, and so does this; without them there are no fields.
    """
    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField
        from wtforms.validators import AnyOf, Optional
    except ImportError:
        # Airflow 3.0 and 3.1 without the FAB provider: no form fields, and Airflow, finding none,
        # still reads get_ui_field_behaviour (an ImportError here would make it skip that too).
        return {}

    widgets = {}
    for name, spec in connection_fields().items():
        schema = spec["schema"]
        if "boolean" in schema["type"]:
            continue
        default = schema.get("default")
        widgets[name] = StringField(
            lazy_gettext(spec["label"]),
            description=spec["description"] + (f" Default: {default}." if default is not None else ""),
            validators=[Optional(), AnyOf(schema["enum"])] if "enum" in schema else [Optional()],
            widget=BS3TextFieldWidget(),
        )
    return widgets


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
                "conn-fields": connection_fields(),
                "ui-field-behaviour": {
                    key.replace("_", "-"): value for key, value in connection_field_behaviour().items()
                },
            }
        ],
        "triggers": [
            {
                "integration-name": "Orbital Insight GO",
                "python-modules": ["airflow_provider_proteus.triggers.proteus"],
            }
        ],
        "extra-links": ["airflow_provider_proteus.links.proteus.ProteusProjectLink"],
        "asset-uris": [_PROTEUS_URIS],
        # Airflow 2 reads the same handlers under the name its assets had then, datasets.
        "dataset-uris": [_PROTEUS_URIS],
    }
