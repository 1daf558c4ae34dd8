"""The ``proteus://`` asset: one GO project version, for data-aware scheduling and lineage.

An asset URI names a project and one of its versions: ``proteus://{project_id}/{version_id}``, for
example ``proteus://O1ymF8uopj-190812/O1ymF8uopj-190812-1.0.0``. GO generates both ids and they
are unique within GO, so the URI does not name the API host; a DAG scheduled on it runs whenever a
task reports that version COMPLETED or its results written.

Airflow finds :func:`sanitize_uri`, :func:`create_asset` and :func:`convert_asset_to_openlineage`
through the provider info (``asset-uris``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import Asset, AssetAlias

from airflow_provider_proteus import api
from airflow_provider_proteus.exceptions import ProteusConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from urllib.parse import SplitResult

    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset
    from airflow.providers.common.compat.sdk import Context

SCHEME = "proteus"


def project_version_uri(project_id: str, version_id: str) -> str:
    """The asset URI of a project version, after checking both ids."""
    api.validate_id("project_id", project_id)
    api.validate_id("version_id", version_id)
    return f"{SCHEME}://{project_id}/{version_id}"


def create_asset(*, project_id: str, version_id: str, extra: dict[str, Any] | None = None) -> Asset:
    """The asset of a project version; schedule a DAG on it to run after the version completes.

    :param project_id: The GO project id.
    :param version_id: The version id, usually the project id plus ``-1.0.0``.
    :param extra: Optional. Extra information stored with the asset (not with its events).
    """
    return Asset(uri=project_version_uri(project_id, version_id), extra=extra or {})


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Check a ``proteus://`` URI as Airflow parses assets: a project id, then one version id."""
    version_id = uri.path.removeprefix("/")
    try:
        api.validate_id("the project id of a proteus:// asset URI", uri.netloc)
        api.validate_id("the version id of a proteus:// asset URI", version_id)
    except ProteusConfigurationError as err:
        raise ValueError(f"{err}; write it as proteus://<project id>/<version id>") from None
    return uri


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> OpenLineageDataset:
    """The OpenLineage dataset of a ``proteus://`` asset: namespace ``proteus://{project}``, name
    the version id."""
    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

    project_id, _, version_id = asset.uri.removeprefix(f"{SCHEME}://").partition("/")
    return OpenLineageDataset(namespace=f"{SCHEME}://{project_id}", name=version_id)


def check_outlets(outlets: Iterable[Any], *, project_id: str, version_id: str | None, task: str) -> None:
    """Refuse ``proteus://`` outlets that could announce the wrong project version.

    Airflow emits an event for every asset in a task's outlets when it succeeds; a ``proteus://``
    asset naming another project version than the one the task acts on would tell downstream DAGs
    that a version completed when it did not. An asset alias needs the version to name the asset.

    :param outlets: The task's outlets.
    :param project_id: The project the task acts on (rendered).
    :param version_id: The version the task acts on (rendered), if it has one.
    :param task: The task, for the message.
    """
    for outlet in outlets:
        if isinstance(outlet, AssetAlias) and version_id is None:
            raise ProteusConfigurationError(
                f"{task} has the asset alias {outlet.name!r} among its outlets but no version_id; give "
                "version_id so that it can name the proteus:// asset of the version"
            )
        named = isinstance(outlet, Asset) and outlet.uri.startswith(f"{SCHEME}://")
        if named and (version_id is None or outlet.uri != project_version_uri(project_id, version_id)):
            raise ProteusConfigurationError(
                f"{task} acts on project {project_id} version {version_id}, but its outlet {outlet.uri} "
                "names another project version; use an asset alias when the ids are templated"
            )


def add_outlet_events(
    context: Context, outlets: Iterable[Any], *, project_id: str, version_id: str, extra: dict[str, Any]
) -> str | None:
    """Attach ``extra`` to the events Airflow emits for this project version; return its URI.

    Each asset alias among ``outlets`` gets an event for the version's asset, and a ``proteus://``
    asset outlet (already checked by :func:`check_outlets`) gets ``extra`` on its own event. Returns
    ``None`` when no outlet is about the version, so that nothing is emitted.
    """
    uri = project_version_uri(project_id, version_id)
    emitted = False
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            context["outlet_events"][outlet].add(Asset(uri=uri), extra=extra)
            emitted = True
        elif isinstance(outlet, Asset) and outlet.uri == uri:
            context["outlet_events"][outlet].extra.update(extra)
            emitted = True
    return uri if emitted else None
