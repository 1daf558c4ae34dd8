"""The example DAG on Airflow's CeleryExecutor with a Redis broker, in both ways of waiting.

The sensor follows Airflow's ``[operators] default_deferrable``: the deployment runs once with it
off (reschedule mode) and once with it on (deferred to the triggerer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from deployment.checks import WAITING_STATE
from deployment.harness import AirflowSettings
from deployment.stack import token_leaks

if TYPE_CHECKING:
    from collections.abc import Callable

    from deployment.checks import Checks
    from deployment.harness import AirflowDeployment

pytestmark = [pytest.mark.deployment, pytest.mark.timeout(600)]


@pytest.mark.parametrize("mode", ["reschedule", "deferrable"])
def test_example_dag_succeeds_on_celery(
    celery_stack: AirflowDeployment, new_checks: Callable[[str, AirflowDeployment], Checks], mode: str
) -> None:
    celery_stack.start(
        AirflowSettings(executor="CeleryExecutor", parallelism=2, default_deferrable=mode == "deferrable")
    )
    try:
        celery_stack.wait_for_dags("example_proteus")
        checks = new_checks(f"CeleryExecutor ({mode})", celery_stack)
        run = checks.example_dag_succeeds(mode)
        checks.collect_mismatches("example_proteus")
    finally:
        celery_stack.stop()

    assert run.state == "success"
    assert WAITING_STATE[mode] in run.states()
    assert {ti["state"] for ti in run.task_instances.values()} == {"success"}
    assert token_leaks(celery_stack) == []
