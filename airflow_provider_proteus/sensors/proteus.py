"""Sensors that wait on Orbital Insight GO projects."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, BaseSensorOperator, PokeReturnValue

from airflow_provider_proteus import api
from airflow_provider_proteus.exceptions import (
    ProteusError,
    ProteusProjectFailedError,
    ProteusUnknownStageError,
    permanent_errors_fail_task,
)
from airflow_provider_proteus.hooks.proteus import ProteusHook

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from airflow.providers.common.compat.sdk import Context

#: GO's documentation suggests polling a running project about every 15 minutes.
DEFAULT_POKE_INTERVAL = timedelta(minutes=15)
#: Projects usually take several hours and sometimes more than a day; three days leaves room for
#: that while still surfacing a project that is stuck within a working week.
DEFAULT_TIMEOUT = timedelta(days=3)


class ProjectStageSensor(BaseSensorOperator):
    """Wait until a GO project's stage is ``COMPLETED``, without holding a worker slot.

    Each poke reads ``GET /projects/{project_id}``. ``COMPLETED`` ends the wait and the project
    document becomes the task's XCom ``return_value``. ``NOT_STARTED`` and ``RUNNING`` (and any stage
    listed in ``waiting_stages`` or in the connection extra ``waiting_stages``) mean "poke again
    later". ``FAILURE`` fails the task at once, without task retries. Any other stage also fails
    the task without retries, naming the stage, because a stage nobody modelled must never pass as
    success nor keep a DAG waiting for days. A poke that meets a transient error (GO unreachable,
    429, 5xx after the hook's own retries) is logged and counts as "not done yet".

    By default the sensor runs in ``reschedule`` mode: between pokes the task gives its worker
    slot back and Airflow starts it again after ``poke_interval``.

    :param project_id: The GO project id. Templated.
    :param proteus_conn_id: The ``proteus`` connection to use. Templated. Default
        ``proteus_default``.
    :param waiting_stages: Optional. Extra stage names that mean the job is still pending or under
        way, for stages GO reports that this provider does not know yet.
    :param mode: ``"reschedule"`` (default) frees the worker slot between pokes; ``"poke"`` keeps it.
    :param poke_interval: Time between pokes, in seconds or as a ``timedelta``. Default 15 minutes.
    :param timeout: The wait budget, in seconds or as a ``timedelta``, counted from the first poke
        across all reschedules; when it runs out the task fails with a sensor timeout (or is skipped
        with ``soft_fail=True``). Default 3 days. Not to be confused with ``execution_timeout``,
        which limits a single poke.
    """

    template_fields: Sequence[str] = ("project_id", "proteus_conn_id")
    ui_color = "#e8f4d9"

    def __init__(
        self,
        *,
        project_id: str,
        proteus_conn_id: str = ProteusHook.default_conn_name,
        waiting_stages: Collection[str] = (),
        mode: str = "reschedule",
        poke_interval: timedelta | float = DEFAULT_POKE_INTERVAL,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.project_id = project_id
        self.proteus_conn_id = proteus_conn_id
        self.waiting_stages = frozenset(waiting_stages)

    def execute(self, context: Context) -> Any:
        # Converting outside the base class's poke loop keeps ``soft_fail`` from turning a FAILURE
        # stage or a rejected token into a skip: only a timeout is soft.
        with permanent_errors_fail_task():
            try:
                return super().execute(context)
            except AirflowSensorTimeout as err:
                raise AirflowSensorTimeout(
                    f"Project {self.project_id} did not reach COMPLETED within the sensor's timeout of "
                    f"{self.timeout:.0f} s, counted from the first poke; its stage is "
                    f"{self._stage_for_message()}. {err}"
                ) from err

    def _stage_for_message(self) -> str:
        """The project's stage now, for an error message; a failure to read it is said, not raised."""
        hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        try:
            project = hook.get_project(self.project_id)
            url = api.project_url(hook.settings.base_url, self.project_id)
            return api.project_stage(project, project_id=self.project_id, url=url)
        except ProteusError as err:
            return f"unknown (reading it failed: {err})"
        finally:
            hook.close()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        try:
            project = hook.get_project(self.project_id)
        except ProteusError as err:
            if not err.transient:
                raise
            self.log.warning(
                "Could not read project %s on this poke; will poke again: %s", self.project_id, err
            )
            return False
        finally:
            hook.close()

        url = api.project_url(hook.settings.base_url, self.project_id)
        stage = api.project_stage(project, project_id=self.project_id, url=url)
        self.log.info("Project %s is at stage %s.", self.project_id, stage)

        outcome = api.classify_stage(
            stage, extra_waiting_stages=self.waiting_stages | hook.settings.waiting_stages
        )
        if outcome is api.StageOutcome.DONE:
            return PokeReturnValue(is_done=True, xcom_value=project)
        if outcome is api.StageOutcome.WAITING:
            return False
        if outcome is api.StageOutcome.FAILED:
            raise ProteusProjectFailedError(
                f"Project {self.project_id} reached stage {stage}: GO could not complete it. "
                "See the project in GO for the reason; results will not be available.",
                project_id=self.project_id,
                stage=stage,
            )
        raise ProteusUnknownStageError(
            f"Project {self.project_id} is at stage {stage!r}, which this provider does not know. "
            f"If GO uses it while a job is pending or running, list it in the sensor's "
            f'waiting_stages or in the connection extra "waiting_stages".',
            project_id=self.project_id,
            stage=stage,
        )
