"""What the provider's tasks report to OpenLineage, when Airflow's OpenLineage provider is installed.

Only imported from ``get_openlineage_facets_on_complete``, which that provider alone calls, so a
deployment without it never loads this module or OpenLineage's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.openlineage.facet import Dataset
from airflow.providers.openlineage.extractors import OperatorLineage

from airflow_provider_proteus.assets.proteus import SCHEME, project_version_uri


def project_version_dataset(project_id: str, version_id: str) -> Dataset:
    """A project version as an OpenLineage dataset: namespace ``proteus://{project}``, name the version."""
    project_version_uri(project_id, version_id)
    return Dataset(namespace=f"{SCHEME}://{project_id}", name=version_id)


def file_dataset(uri: str) -> Dataset:
    """A file of Airflow's object storage as an OpenLineage dataset, named the way OpenLineage names files
    and objects: ``file`` and the path for a local file, ``scheme://bucket`` and the key otherwise."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file", "local"):
        return Dataset(namespace="file", name=parts.path)
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.lstrip("/"))


def project_version_lineage(
    project_id: str, version_id: str, *, as_output: bool
) -> OperatorLineage[Any, Any]:
    """The lineage of a task that runs (output) or reads (input) a project version."""
    dataset = project_version_dataset(project_id, version_id)
    return OperatorLineage(outputs=[dataset]) if as_output else OperatorLineage(inputs=[dataset])


def results_file_lineage(project_id: str, version_id: str, path: str) -> OperatorLineage[Any, Any]:
    """The lineage of a results task: the project version in, the results file out."""
    return OperatorLineage(
        inputs=[project_version_dataset(project_id, version_id)], outputs=[file_dataset(path)]
    )
