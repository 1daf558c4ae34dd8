"""Operators that act on Orbital Insight GO projects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_proteus import api
from airflow_provider_proteus.exceptions import ProteusConnectionError, permanent_errors_fail_task
from airflow_provider_proteus.hooks.proteus import ProteusHook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context


class SubmitJobOperator(BaseOperator):
    """Start a job for a GO project version, and hand its job id to downstream tasks.

    The operator posts ``{"active": true}`` to ``/projects/{project_id}/versions/{version_id}/job``
    and returns the job id, which Airflow stores as the task's XCom ``return_value``. It also pushes
    the job type (XCom key ``job_type``) and the project's page in the GO web app (key
    ``project_url``). It does not wait for the job: follow it with
    :class:`~airflow_provider_proteus.sensors.proteus.ProjectStageSensor`.

    A job costs credits, so the operator never sends the POST twice by itself: when the connection
    fails after the request went out, the task fails without retries and says so, because GO may
    have started the job. Check the project's stage before clearing the task.

    :param project_id: The GO project id, for example ``O1ymF8uopj-190812``. Templated.
    :param version_id: The id of the version to run, for example ``O1ymF8uopj-190812-1.0.0``.
        Templated.
    :param proteus_conn_id: The ``proteus`` connection to use. Templated. Default
        ``proteus_default``.
    """

    template_fields: Sequence[str] = ("project_id", "version_id", "proteus_conn_id")
    ui_color = "#d6e9f8"

    def __init__(
        self,
        *,
        project_id: str,
        version_id: str,
        proteus_conn_id: str = ProteusHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_id = project_id
        self.version_id = version_id
        self.proteus_conn_id = proteus_conn_id

    def execute(self, context: Context) -> str:
        hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        try:
            with permanent_errors_fail_task():
                job_type, job_id = self._submit(hook)
                project_url = hook.project_web_url(self.project_id)
        finally:
            hook.close()

        self.log.info(
            "Submitted %s job %s for project %s, version %s. Project page: %s",
            job_type,
            job_id,
            self.project_id,
            self.version_id,
            project_url,
        )
        context["ti"].xcom_push(key="job_type", value=job_type)
        context["ti"].xcom_push(key="project_url", value=project_url)
        return job_id

    def _submit(self, hook: ProteusHook) -> tuple[str, str]:
        self.log.info("Submitting a job for project %s, version %s.", self.project_id, self.version_id)
        try:
            job = hook.submit_job(self.project_id, self.version_id)
        except ProteusConnectionError as err:
            if not err.request_may_have_been_processed:
                raise
            raise AirflowFailException(
                f"{err} Not retrying, so that no second job is started for project {self.project_id}: "
                "look at the project's stage in GO before clearing this task."
            ) from err

        job_type, job_id = api.find_job_id(job, job_id_paths=hook.settings.job_id_paths)
        if job_id is None:
            raise AirflowFailException(
                f"GO accepted a job for project {self.project_id}, version {self.version_id}, but its "
                f"answer has no job id where a {job_type} job keeps it (top-level keys: "
                f"{sorted(job)}). The job was started; do not clear this task. Set the connection "
                f'extra "job_id_paths", for example {{"{job_type}": "{job_type.lower()}_data.id"}}, '
                "to tell the provider where the id is."
            )
        return job_type, job_id
