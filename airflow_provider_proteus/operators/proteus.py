"""Operators that act on Orbital Insight GO projects."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator, ObjectStoragePath, conf

from airflow_provider_proteus import api
from airflow_provider_proteus.assets.proteus import add_outlet_events, check_outlets
from airflow_provider_proteus.exceptions import (
    ProteusConfigurationError,
    ProteusConnectionError,
    ProteusError,
    ProteusHTTPError,
    ProteusResultsNotReadyError,
    ProteusUnknownStageError,
    permanent_errors_fail_task,
)
from airflow_provider_proteus.hooks.proteus import ProteusHook
from airflow_provider_proteus.links.proteus import PROJECT_URL_KEY, ProteusProjectLink
from airflow_provider_proteus.sensors.proteus import DEFAULT_POKE_INTERVAL, DEFAULT_TIMEOUT
from airflow_provider_proteus.triggers.proteus import ProjectStageTrigger, project_from_event

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

#: The task state store key under which a submission is remembered across the tries of a task instance.
SUBMISSION_KEY = "proteus_submission"

_AFTER_AN_UNKNOWN_OUTCOME = (
    "Look at the project in GO. If a job is running, let it finish and mark this task successful; "
    "once the project is no longer running, clearing this task submits a new job."
)


def _seconds(duration: timedelta | float) -> float:
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


class TaskStateStore(Protocol):
    """The part of Airflow 3.3's ``context["task_state_store"]`` that the operator uses."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class SubmitJobOperator(BaseOperator):
    """Start a job for a GO project version, and hand its job id to downstream tasks.

    The operator posts ``{"active": true}`` to ``/projects/{project_id}/versions/{version_id}/job``
    and returns the job id, which Airflow stores as the task's XCom ``return_value``. Before any
    wait it also pushes the job id (XCom key ``job_id``), the job type (``job_type``) and the
    project's page in the GO web app (``project_url``). By default it does not wait for the job:
    follow it with :class:`~airflow_provider_proteus.sensors.proteus.ProjectStageSensor`, which
    frees the worker slot between pokes, or set ``wait_for_completion``.

    A job costs credits, so the operator never starts a second one by itself:

    - Before posting it reads the project. If a job is already under way (``RUNNING``, or a stage
      declared in the connection extra ``waiting_stages``) that this task did not start, it fails
      without posting; an undeclared stage fails too, since it cannot tell.
    - On Airflow 3.3+ it remembers the submission in the task state store. A retry (or a clear) of
      the same task instance reattaches to that job while it is under way or completed, returning
      its id without posting again, and says so in the log; a job that ended in ``FAILURE`` is
      replaced by a new one.
    - When GO may have started a job but its answer was lost (read timeout, dropped connection, a
      5xx from a gateway), the task fails without task retries, and later tries refuse to post.
      Check the project in GO, then mark the task successful or clear it.
    - On Airflow versions without a task state store a retry never posts; it fails and says why.

    :param project_id: The GO project id, for example ``O1ymF8uopj-190812``. Templated.
    :param version_id: The id of the version to run, for example ``O1ymF8uopj-190812-1.0.0``.
        Templated.
    :param proteus_conn_id: The ``proteus`` connection to use. Templated. Default
        ``proteus_default``.
    :param wait_for_completion: Optional. Also wait until the project is ``COMPLETED`` (failing on
        ``FAILURE`` or an unknown stage, like the sensor) before the task succeeds. Default ``False``:
        submit only, and wait with a separate :class:`ProjectStageSensor` that frees the worker slot.
    :param poke_interval: Time between two reads of the project while waiting, in seconds or as a
        ``timedelta``. Default 15 minutes.
    :param timeout: The wait budget, in seconds or as a ``timedelta``. Default 3 days.
    :param deferrable: Wait in Airflow's triggerer instead of in the worker slot (only with
        ``wait_for_completion``). Default: Airflow's ``[operators] default_deferrable`` setting.
    """

    template_fields: Sequence[str] = ("project_id", "version_id", "proteus_conn_id")
    ui_color = "#d6e9f8"
    operator_extra_links = (ProteusProjectLink(),)

    def __init__(
        self,
        *,
        project_id: str,
        version_id: str,
        proteus_conn_id: str = ProteusHook.default_conn_name,
        wait_for_completion: bool = False,
        poke_interval: timedelta | float = DEFAULT_POKE_INTERVAL,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_id = project_id
        self.version_id = version_id
        self.proteus_conn_id = proteus_conn_id
        self.wait_for_completion = wait_for_completion
        self.poke_interval = _seconds(poke_interval)
        self.timeout = _seconds(timeout)
        self.deferrable = deferrable

    def execute(self, context: Context) -> str:
        hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        # Airflow 3.3's task state store outlives task tries; older Airflow has none.
        store = context.get("task_state_store")
        try:
            with permanent_errors_fail_task():
                api.validate_id("project_id", self.project_id)
                api.validate_id("version_id", self.version_id)
                job_type, job_id = self._reattach_or_submit(hook, store, context["ti"].try_number)
                project_url = hook.project_web_url(self.project_id)
        finally:
            hook.close()

        self.log.info("GO project page: %s", project_url)
        # Pushed before any wait, so that the job and its page are known while the task waits.
        context["ti"].xcom_push(key="job_id", value=job_id)
        context["ti"].xcom_push(key="job_type", value=job_type)
        context["ti"].xcom_push(key=PROJECT_URL_KEY, value=project_url)
        if not self.wait_for_completion:
            return job_id
        if self.deferrable:
            self.defer(
                trigger=ProjectStageTrigger(
                    project_id=self.project_id,
                    proteus_conn_id=self.proteus_conn_id,
                    poke_interval=self.poke_interval,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout),
            )
        with permanent_errors_fail_task():
            self._wait_here()
        return job_id

    def execute_complete(self, context: Context, event: Any = None) -> str:
        """Finish a deferred wait: the job id once the project is COMPLETED; otherwise fail."""
        with permanent_errors_fail_task():
            project_from_event(event, self.project_id)
        # The id this try pushed before it deferred.
        job_id = context["ti"].xcom_pull(task_ids=self.task_id, key="job_id")
        if not isinstance(job_id, str) or not job_id:
            raise AirflowFailException(
                f"Project {self.project_id} is COMPLETED, but the job id this task pushed before waiting "
                "is gone from XCom."
            )
        self.log.info("Project %s is COMPLETED after job %s.", self.project_id, job_id)
        return job_id

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """Report the project version the job ran as this task's output (Airflow's OpenLineage provider
        calls this when it is installed; nothing here is imported otherwise)."""
        from airflow_provider_proteus.lineage import project_version_lineage

        return project_version_lineage(self.project_id, self.version_id, as_output=True)

    def _wait_here(self) -> None:
        """Poll the project in this worker slot until it is COMPLETED, ends otherwise, or time is up."""
        deadline = time.monotonic() + self.timeout
        hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        try:
            while True:
                try:
                    project = hook.get_project(self.project_id)
                except ProteusError as err:
                    if not err.transient:
                        raise
                    self.log.warning("Could not read project %s; will try again: %s", self.project_id, err)
                else:
                    stage = project["stage"]
                    self.log.info("Project %s is at stage %s.", self.project_id, stage)
                    outcome = api.classify_stage(stage, extra_waiting_stages=hook.settings.waiting_stages)
                    if outcome is api.StageOutcome.DONE:
                        return
                    error = api.stage_error(self.project_id, stage, outcome)
                    if error is not None:
                        raise error
                if time.monotonic() + self.poke_interval > deadline:
                    raise AirflowFailException(
                        f"Project {self.project_id} did not reach COMPLETED within {self.timeout:.0f} s. Its "
                        "job goes on in GO; wait for it with ProjectStageSensor."
                    )
                time.sleep(self.poke_interval)
        finally:
            hook.close()

    def _reattach_or_submit(
        self, hook: ProteusHook, store: TaskStateStore | None, try_number: int
    ) -> tuple[str, str]:
        """Return the job of this task instance, posting a new one only when that cannot duplicate it."""
        earlier = store.get(SUBMISSION_KEY) if store is not None else None
        if not isinstance(earlier, dict) or earlier.get("target") != [self.project_id, self.version_id]:
            earlier = None

        project = hook.get_project(self.project_id)
        stage = project["stage"]
        self.log.info("Project %s is at stage %s.", self.project_id, stage)
        outcome = api.classify_stage(stage, extra_waiting_stages=hook.settings.waiting_stages)
        under_way = outcome is api.StageOutcome.WAITING and stage != api.NOT_STARTED

        # The job an earlier try of this task instance submitted, if its id arrived.
        earlier_job = earlier if earlier is not None and earlier.get("job_id") else None
        if earlier_job is not None and outcome in (api.StageOutcome.WAITING, api.StageOutcome.DONE):
            self.log.info(
                "Reattaching to %s job %s for project %s (stage %s), submitted by try %s of this task; "
                "not posting a second job.",
                earlier_job["job_type"],
                earlier_job["job_id"],
                self.project_id,
                stage,
                earlier_job["try_number"],
            )
            return str(earlier_job["job_type"]), str(earlier_job["job_id"])
        if outcome is api.StageOutcome.UNKNOWN:
            raise ProteusUnknownStageError(
                f"Project {self.project_id} is at stage {stage!r}, which this provider does not know, so it "
                'cannot tell whether a job is under way. If it means "pending or running", list it in the '
                'connection extra "waiting_stages".',
                project_id=self.project_id,
                stage=stage,
            )

        if earlier_job is not None:
            self.log.warning(
                "Job %s for project %s, submitted by try %s of this task, ended at stage %s; "
                "submitting a new job.",
                earlier_job["job_id"],
                self.project_id,
                earlier_job["try_number"],
                stage,
            )
        elif earlier is not None:
            if earlier.get("state") != "lost" or under_way:
                self._remember(store, {**earlier, "state": "lost"})
                raise AirflowFailException(
                    f"Try {earlier['try_number']} of this task sent a job for project {self.project_id} "
                    "but could not learn its id (GO's answer was lost or had none), so a job may exist; "
                    f"the project is now at stage {stage}. Not posting again, so that no second job is "
                    f"started. {_AFTER_AN_UNKNOWN_OUTCOME}"
                )
            # A person was told to clear this task once the project was no longer running.
            self.log.warning(
                "Try %s of this task may have started a job for project %s whose id never arrived; the "
                "project is now at stage %s, so a new job is submitted.",
                earlier["try_number"],
                self.project_id,
                stage,
            )
        elif store is None and try_number > 1:
            raise AirflowFailException(
                f"This is try {try_number} of the submission for project {self.project_id}, and this "
                "Airflow version has no task state store to tell whether an earlier try started a job (the "
                f"project is at stage {stage}). Not posting again, so that no second job is started: "
                "check the project in GO, then mark this task successful or clear it."
            )

        if under_way:
            raise AirflowFailException(
                f"Project {self.project_id} already has a job under way (stage {stage}) that this task "
                "did not start; not posting a second one. Wait for it with ProjectStageSensor, or submit "
                "again once it has finished."
            )
        versions = project.get("version_ids")
        if isinstance(versions, list) and versions and self.version_id not in versions:
            raise ProteusConfigurationError(
                f"Project {self.project_id} has no version {self.version_id!r}; its versions are "
                f"{', '.join(map(str, versions))}."
            )
        return self._submit(hook, store, try_number)

    def _submit(self, hook: ProteusHook, store: TaskStateStore | None, try_number: int) -> tuple[str, str]:
        target = [self.project_id, self.version_id]
        # Written before the POST: if this try dies before GO's answer is recorded, the next one knows
        # that a job may exist and does not post again.
        submission = {"target": target, "try_number": try_number, "state": "sending"}
        self._remember(store, submission)

        self.log.info("Submitting a job for project %s, version %s.", self.project_id, self.version_id)
        try:
            job = hook.submit_job(self.project_id, self.version_id)
        except ProteusConnectionError as err:
            if err.request_may_have_been_processed:
                raise self._outcome_unknown(err, store, submission) from err
            self._forget(store)
            raise
        except ProteusHTTPError as err:
            if err.status >= 500 and err.status not in api.REFUSAL_STATUSES:
                # A gateway's 502 or 504 can come after GO started the job; only a refusal is certain.
                raise self._outcome_unknown(err, store, submission) from err
            self._forget(store)
            raise

        job_type, job_id = api.find_job_id(job, job_id_paths=hook.settings.job_id_paths)
        if job_id is None:
            self._remember(store, {**submission, "state": "lost"})
            raise AirflowFailException(
                f"GO accepted a job for project {self.project_id}, version {self.version_id}, but its "
                f"answer has no job id where a {job_type} job keeps it (top-level keys: {sorted(job)}). "
                "The job was started. Set the connection extra "
                f'"job_id_paths", for example {{"{job_type}": "{job_type.lower()}_data.id"}}, to tell '
                f"the provider where the id is. {_AFTER_AN_UNKNOWN_OUTCOME}"
            )
        self._remember(store, {**submission, "state": "submitted", "job_id": job_id, "job_type": job_type})
        self.log.info(
            "Submitted %s job %s for project %s, version %s.",
            job_type,
            job_id,
            self.project_id,
            self.version_id,
        )
        return job_type, job_id

    def _outcome_unknown(
        self, err: Exception, store: TaskStateStore | None, submission: dict[str, Any]
    ) -> AirflowFailException:
        self._remember(store, {**submission, "state": "lost"})
        return AirflowFailException(
            f"{err} GO may have started the job, so this task is not retried: no second job is started "
            f"for project {self.project_id}. {_AFTER_AN_UNKNOWN_OUTCOME}"
        )

    @staticmethod
    def _remember(store: TaskStateStore | None, submission: dict[str, Any]) -> None:
        if store is not None:
            store.set(SUBMISSION_KEY, submission)

    @staticmethod
    def _forget(store: TaskStateStore | None) -> None:
        """GO certainly did not start a job: a later try may post again."""
        if store is not None:
            store.delete(SUBMISSION_KEY)


class FetchResultsOperator(BaseOperator):
    """Write a completed project version's results to a file, and return the file's path.

    The file holds one row per measured value of each time-series point: the project and version,
    the AOI (id, name, country, state), the division and its parent, the result, the series type,
    the time of the point (``observed_at``, ISO-8601, UTC), the measure's name and its value. A
    result without time series gets one row with the series columns empty. Rows are read from GO
    page by page and written as they come, so a large project never sits in memory, and the results
    never pass through XCom: only the path does (``return_value``), with the row count (XCom
    ``row_count``).

    The path is an Airflow ``ObjectStoragePath``, so ``file://``, ``s3://``, ``gs://`` and any
    other scheme of Airflow's object storage work, with the storage provider installed. A task retry
    writes the whole file again; a try that fails removes what it wrote.

    The project must be ``COMPLETED``; any other stage fails the task without retries (wait with
    :class:`~airflow_provider_proteus.sensors.proteus.ProjectStageSensor` first). With an asset alias
    or the version's ``proteus://`` asset among ``outlets``, the asset event carries ``path``,
    ``file_format`` and ``row_count`` in its extra.

    :param project_id: The GO project id. Templated.
    :param version_id: The version whose results to write, for example ``O1ymF8uopj-190812-1.0.0``.
        Templated.
    :param path: Where to write, as a URI (``file:///data/go/results.csv``,
        ``s3://bucket/go/{{ ds }}.csv``) or an ``ObjectStoragePath``. An existing file is replaced.
        Templated.
    :param file_format: Optional. ``"csv"`` (default, with a header row) or ``"jsonl"`` (one JSON
        object per line, numbers kept as numbers).
    :param timeseries_types: Optional. The time series to read for every result, for example
        ``["raw.count"]``. Default: the ones each result lists.
    :param storage_conn_id: Optional. The Airflow connection for the object store (for example an
        ``aws`` connection for ``s3://``). Default: the store's own default. Templated.
    :param proteus_conn_id: The ``proteus`` connection to use. Templated. Default
        ``proteus_default``.
    """

    template_fields: Sequence[str] = (
        "project_id",
        "version_id",
        "path",
        "storage_conn_id",
        "proteus_conn_id",
    )
    ui_color = "#f3e6d3"
    operator_extra_links = (ProteusProjectLink(),)

    def __init__(
        self,
        *,
        project_id: str,
        version_id: str,
        path: str | ObjectStoragePath,
        file_format: str = "csv",
        timeseries_types: Sequence[str] | None = None,
        storage_conn_id: str | None = None,
        proteus_conn_id: str = ProteusHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if file_format not in ("csv", "jsonl"):
            raise ProteusConfigurationError(f"file_format must be 'csv' or 'jsonl', got {file_format!r}")
        self.project_id = project_id
        self.version_id = version_id
        self.path = path
        self.file_format = file_format
        self.timeseries_types = list(timeseries_types) if timeseries_types is not None else None
        self.storage_conn_id = storage_conn_id
        self.proteus_conn_id = proteus_conn_id

    def execute(self, context: Context) -> str:
        # The results code is only loaded by tasks that fetch results, never when a DAG is parsed.
        from airflow_provider_proteus.results import ResultRows, write_rows

        with permanent_errors_fail_task():
            api.validate_id("project_id", self.project_id)
            api.validate_id("version_id", self.version_id)
            check_outlets(
                self.outlets, project_id=self.project_id, version_id=self.version_id, task=str(self)
            )
            target = self._target()
            hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
            try:
                context["ti"].xcom_push(key=PROJECT_URL_KEY, value=hook.project_web_url(self.project_id))
                self._check_completed(hook)
                rows = ResultRows(
                    hook,
                    project_id=self.project_id,
                    version_id=self.version_id,
                    timeseries_types=self.timeseries_types,
                )
                self.log.info(
                    "Writing the results of project %s version %s to %s as %s.",
                    self.project_id,
                    self.version_id,
                    target,
                    self.file_format,
                )
                row_count = self._write(target, rows, write_rows)
            finally:
                hook.close()

        self.log.info(
            "Wrote %d rows (%d results, %d time series) of project %s version %s to %s.",
            row_count,
            rows.result_count,
            rows.series_count,
            self.project_id,
            self.version_id,
            target,
        )
        context["ti"].xcom_push(key="row_count", value=row_count)
        add_outlet_events(
            context,
            self.outlets,
            project_id=self.project_id,
            version_id=self.version_id,
            extra={"path": str(target), "file_format": self.file_format, "row_count": row_count},
        )
        return str(target)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """Report the project version as this task's input and the results file as its output (Airflow's
        OpenLineage provider calls this when it is installed; nothing here is imported otherwise)."""
        from airflow_provider_proteus.lineage import results_file_lineage

        return results_file_lineage(self.project_id, self.version_id, str(self._target()))

    def _target(self) -> ObjectStoragePath:
        if isinstance(self.path, ObjectStoragePath):
            return self.path
        if not isinstance(self.path, str) or not self.path.strip():
            raise ProteusConfigurationError(
                f"path must be a URI such as file:///data/go.csv, got {self.path!r}"
            )
        try:
            return ObjectStoragePath(self.path, conn_id=self.storage_conn_id)
        except (ValueError, TypeError) as err:
            raise ProteusConfigurationError(
                f"path {self.path!r} is not a usable storage URI: {err}"
            ) from None

    def _check_completed(self, hook: ProteusHook) -> None:
        stage = hook.get_project(self.project_id)["stage"]
        outcome = api.classify_stage(stage, extra_waiting_stages=hook.settings.waiting_stages)
        if outcome is api.StageOutcome.DONE:
            return
        error = api.stage_error(self.project_id, stage, outcome)
        if error is not None:
            raise error
        raise ProteusResultsNotReadyError(
            f"Project {self.project_id} is at stage {stage}, not COMPLETED, so its results are not ready; "
            "wait for it with ProjectStageSensor before fetching them.",
            project_id=self.project_id,
            stage=stage,
        )

    def _write(self, target: ObjectStoragePath, rows: Any, write_rows: Any) -> int:
        """Write every row to ``target``; a failed write leaves no partial file behind."""
        if target.protocol in ("file", "local"):
            # Object stores have no directories to make (and making one could create a bucket).
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with target.open("w", encoding="utf-8", newline="") as file:  # type: ignore[no-untyped-call]
                row_count: int = write_rows(rows, file, self.file_format)
        except BaseException:
            try:
                target.unlink(missing_ok=True)
            except Exception:
                self.log.warning("Could not remove the partial results file %s.", target, exc_info=True)
            raise
        return row_count
