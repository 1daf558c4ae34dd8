"""The datasets the operators report to OpenLineage, and that nothing of it loads without being asked."""

from __future__ import annotations

import subprocess
import sys

from airflow_provider_proteus.operators.proteus import FetchResultsOperator, SubmitJobOperator


def names(datasets: list[object]) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]  # type: ignore[attr-defined]


def test_a_submission_outputs_the_project_version() -> None:
    operator = SubmitJobOperator(task_id="submit", project_id="p1", version_id="p1-1.0.0")

    lineage = operator.get_openlineage_facets_on_complete(task_instance=None)

    assert names(lineage.inputs) == []
    assert names(lineage.outputs) == [("proteus://p1", "p1-1.0.0")]


def test_a_results_file_comes_from_the_project_version() -> None:
    local = FetchResultsOperator(
        task_id="f", project_id="p1", version_id="p1-1.0.0", path="file:///data/p1.csv"
    )
    remote = FetchResultsOperator(
        task_id="g", project_id="p1", version_id="p1-1.0.0", path="s3://bucket/go/p1.csv"
    )

    assert names(local.get_openlineage_facets_on_complete(None).inputs) == [("proteus://p1", "p1-1.0.0")]
    assert names(local.get_openlineage_facets_on_complete(None).outputs) == [("file", "/data/p1.csv")]
    assert names(remote.get_openlineage_facets_on_complete(None).outputs) == [("s3://bucket", "go/p1.csv")]


def test_a_dag_that_uses_the_provider_loads_no_lineage_code() -> None:
    # Airflow's own provider discovery reads every installed provider's metadata module; nothing else
    # of OpenLineage (its client, its extractors) may load, nor the provider's lineage or results code.
    probe = (
        "import sys\n"
        "import airflow_provider_proteus.operators.proteus, airflow_provider_proteus.sensors.proteus\n"
        "discovery = {'airflow.providers.openlineage', 'airflow.providers.openlineage.get_provider_info'}\n"
        "print(sorted(m for m in sys.modules if ('openlineage' in m and m not in discovery)"
        " or m.endswith(('proteus.lineage', 'proteus.results'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert loaded.stdout.strip() == "[]"
