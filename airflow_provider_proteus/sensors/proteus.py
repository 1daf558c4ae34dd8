"""Sensors that wait on Orbital Insight GO projects."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_proteus import api
from airflow_provider_proteus.assets.proteus import add_outlet_events, check_outlets
from airflow_provider_proteus.exceptions import (
    ProteusError,
    permanent_errors_fail_task,
)
from airflow_provider_proteus.hooks.proteus import ProteusHook
from airflow_provider_proteus.links.proteus import PROJECT_URL_KEY, ProteusProjectLink
from airflow_provider_proteus.triggers.proteus import ProjectStageTrigger, project_from_event
from airflow_provider_proteus.version_compat import TRIGGER_TIMEOUT, trigger_timed_out

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence

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

    The task page links to the project in the GO web app ("GO project") from the first poke on.
    With ``version_id`` set, an asset alias or the version's ``proteus://`` asset among ``outlets``
    gets an event when the project is ``COMPLETED``, so that DAGs scheduled on the version run.

    :param project_id: The GO project id. Templated.
    :param version_id: Optional. The version being run, which names the asset of an asset event
        (needed with asset outlets only). Templated.
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
    :param deferrable: Wait in Airflow's triggerer instead: after one poke the task frees its worker
        slot entirely and :class:`~airflow_provider_proteus.triggers.proteus.ProjectStageTrigger`
        polls every ``poke_interval``, with the same outcomes and the same wait budget. Needs a
        running triggerer. Default: Airflow's ``[operators] default_deferrable`` setting.
    """

    template_fields: Sequence[str] = ("project_id", "version_id", "proteus_conn_id")
    ui_color = "#e8f4d9"
    operator_extra_links = (ProteusProjectLink(),)

    def __init__(
        self,
        *,
        project_id: str,
        version_id: str | None = None,
        proteus_conn_id: str = ProteusHook.default_conn_name,
        waiting_stages: Collection[str] = (),
        mode: str = "reschedule",
        poke_interval: timedelta | float = DEFAULT_POKE_INTERVAL,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.project_id = project_id
        self.version_id = version_id
        self.proteus_conn_id = proteus_conn_id
        self.waiting_stages = frozenset(waiting_stages)
        self.deferrable = deferrable
        self._hook: ProteusHook | None = None

    def execute(self, context: Context) -> Any:
        # Deciding outside the base class's poke loop keeps ``soft_fail`` from turning a FAILURE
        # stage or a rejected token into a skip: only a timeout is soft.
        with self._one_hook(), permanent_errors_fail_task(), self._timeout_names_the_project():
            check_outlets(
                self.outlets, project_id=self.project_id, version_id=self.version_id, task=str(self)
            )
            self._push_project_url(context)
            if not self.deferrable:
                return super().execute(context)
            # One poke first: a project that is already done needs no triggerer.
            result = self.poke(context)
            if isinstance(result, PokeReturnValue):
                return result.xcom_value
            self.defer(
                trigger=ProjectStageTrigger(
                    project_id=self.project_id,
                    proteus_conn_id=self.proteus_conn_id,
                    poke_interval=self.poke_interval,
                    waiting_stages=sorted(self.waiting_stages),
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout),
            )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        # The sensor base turns every error raised while resuming into a skip under soft_fail; the
        # trigger's event is judged here instead, so that only the wait budget running out is soft.
        # That budget is the deferral's timeout, recognised here too, so that it fails (or skips)
        # alike on every Airflow version.
        if trigger_timed_out(next_method, next_kwargs):
            timeout = self._named_timeout(TRIGGER_TIMEOUT)
            if self.soft_fail:
                raise AirflowSkipException(str(timeout)) from timeout
            raise timeout
        with self._one_hook(), permanent_errors_fail_task(), self._timeout_names_the_project():
            if next_method == "execute_complete":
                return self.execute_complete(context, **(next_kwargs or {}))
            return super().resume_execution(next_method, next_kwargs, context)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Finish a deferred wait from the trigger's event; an event of any other shape fails the task."""
        project = project_from_event(event, self.project_id)
        self.log.info("Project %s is at stage %s.", self.project_id, project.get("stage"))
        self._announce_completion(context)
        return project

    @contextmanager
    def _one_hook(self) -> Iterator[None]:
        """Share one hook among the pokes of this try, and close it when the try ends.

        In poke mode the pokes of one try run in one process: sharing the hook looks the connection
        up once and keeps GO's connection alive between pokes. In reschedule mode each poke is a try
        of its own, in a new process. Nothing outlives the try.
        """
        self._hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        try:
            yield
        finally:
            self._hook.close()
            self._hook = None

    @contextmanager
    def _try_hook(self) -> Iterator[ProteusHook]:
        """The try's shared hook, or outside a try a hook of its own, closed after use."""
        if self._hook is not None:
            yield self._hook
            return
        hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        try:
            yield hook
        finally:
            hook.close()

    def _push_project_url(self, context: Context) -> None:
        """Push the project's page for the "GO project" link, which the task page shows from now on."""
        with self._try_hook() as hook:
            context["ti"].xcom_push(key=PROJECT_URL_KEY, value=hook.project_web_url(self.project_id))

    def _announce_completion(self, context: Context) -> None:
        if self.version_id is None:
            return
        uri = add_outlet_events(
            context,
            self.outlets,
            project_id=self.project_id,
            version_id=self.version_id,
            extra={"project_id": self.project_id, "version_id": self.version_id, "stage": api.COMPLETED},
        )
        if uri is not None:
            self.log.info("Project %s is COMPLETED; announcing asset %s.", self.project_id, uri)

    @contextmanager
    def _timeout_names_the_project(self) -> Iterator[None]:
        try:
            yield
        except AirflowSensorTimeout as err:
            raise self._named_timeout(str(err)) from err

    def _named_timeout(self, reason: str) -> AirflowSensorTimeout:
        return AirflowSensorTimeout(
            f"Project {self.project_id} did not reach COMPLETED within the sensor's timeout of "
            f"{self.timeout:.0f} s, counted from the first poke; its stage is "
            f"{self._stage_for_message()}. {reason}"
        )

    def _stage_for_message(self) -> str:
        """The project's stage now, for an error message; a failure to read it is said, not raised."""
        try:
            with self._try_hook() as hook:
                return str(hook.get_project(self.project_id)["stage"])
        except AirflowException as err:  # GO's errors, and a connection that is gone
            return f"unknown (reading it failed: {err})"

    def poke(self, context: Context) -> bool | PokeReturnValue:
        with self._try_hook() as hook:
            try:
                project = hook.get_project(self.project_id)
            except ProteusError as err:
                if not err.transient:
                    raise
                self.log.warning(
                    "Could not read project %s on this poke; will poke again: %s", self.project_id, err
                )
                return False
            extra_waiting_stages = self.waiting_stages | hook.settings.waiting_stages

        stage = project["stage"]
        self.log.info("Project %s is at stage %s.", self.project_id, stage)

        outcome = api.classify_stage(stage, extra_waiting_stages=extra_waiting_stages)
        if outcome is api.StageOutcome.DONE:
            self._announce_completion(context)
            return PokeReturnValue(is_done=True, xcom_value=project)
        error = api.stage_error(self.project_id, stage, outcome)
        if error is not None:
            raise error
        return False
