"""Triggers that wait on Orbital Insight GO projects in Airflow's triggerer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_proteus import api
from airflow_provider_proteus.exceptions import ProteusError, error_details, error_from_details
from airflow_provider_proteus.hooks.proteus import ProteusHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: The ``status`` values of the one event a :class:`ProjectStageTrigger` yields.
EVENT_STATUSES = frozenset({"success", "failed", "unknown_stage", "error"})


def project_from_event(event: Any, project_id: str) -> dict[str, Any]:
    """The project document a success event carries; any other event raises what it stands for.

    An event of any other shape, or for another project, is a
    :class:`~airflow.exceptions.AirflowFailException`: it must never pass as success.

    :param event: The payload the task was resumed with.
    :param project_id: The project the task waits for.
    """
    if (
        not isinstance(event, dict)
        or event.get("status") not in EVENT_STATUSES
        or event.get("project_id") != project_id
        or (event["status"] == "success" and not isinstance(event.get("project"), dict))
    ):
        raise AirflowFailException(f"Unexpected event from the trigger for project {project_id}: {event!r}")
    if event["status"] == "success":
        project: dict[str, Any] = event["project"]
        return project
    if event["status"] == "error":
        raise error_from_details(event.get("error_type"), str(event["message"]), event.get("error_details"))
    outcome = api.StageOutcome.FAILED if event["status"] == "failed" else api.StageOutcome.UNKNOWN
    raise api.stage_error(project_id, str(event["stage"]), outcome) or ProteusError(str(event["message"]))


class ProjectStageTrigger(BaseTrigger):
    """Poll a GO project until its stage ends the wait, then yield exactly one event.

    Each poll is the hook's async project read (same base URL, auth, retries and errors as the
    sync path), classified by :func:`airflow_provider_proteus.api.classify_stage`. A transient
    error is logged and the next poll comes after ``poke_interval``. The event is a dict with
    ``status`` (one of :data:`EVENT_STATUSES`), ``project_id``, ``stage`` (or ``None``) and
    ``message``; on success it also holds the project document as ``project``, on a permanent
    error the error's ``error_type`` and ``error_details``, so that the resumed task raises the
    same error as a poke would. The wait budget
    is the deferral's timeout, set by the sensor.

    :param project_id: The GO project id.
    :param proteus_conn_id: The ``proteus`` connection to use.
    :param poke_interval: Seconds between two polls.
    :param waiting_stages: Extra stage names that mean the job is still pending or under way.
    """

    def __init__(
        self,
        *,
        project_id: str,
        proteus_conn_id: str,
        poke_interval: float,
        waiting_stages: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.proteus_conn_id = proteus_conn_id
        self.poke_interval = float(poke_interval)
        self.waiting_stages = sorted(waiting_stages or [])

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "project_id": self.project_id,
                "proteus_conn_id": self.proteus_conn_id,
                "poke_interval": self.poke_interval,
                "waiting_stages": list(self.waiting_stages),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = ProteusHook(proteus_conn_id=self.proteus_conn_id)
        while True:
            try:
                project = await hook.aget_project(self.project_id)
                settings = await hook.asettings()
                stage = project["stage"]
            except ProteusError as err:
                if not err.transient:
                    details = error_details(err)
                    yield self._event("error", None, details.pop("message"), **details)
                    return
                self.log.warning(
                    "Could not read project %s on this poll; will poll again: %s", self.project_id, err
                )
                await asyncio.sleep(self.poke_interval)
                continue

            self.log.info("Project %s is at stage %s.", self.project_id, stage)
            outcome = api.classify_stage(
                stage, extra_waiting_stages={*self.waiting_stages, *settings.waiting_stages}
            )
            if outcome is api.StageOutcome.DONE:
                yield self._event(
                    "success", stage, f"Project {self.project_id} is COMPLETED.", project=project
                )
                return
            error = api.stage_error(self.project_id, stage, outcome)
            if error is not None:
                status = "failed" if outcome is api.StageOutcome.FAILED else "unknown_stage"
                yield self._event(status, stage, str(error))
                return
            await asyncio.sleep(self.poke_interval)

    def _event(self, status: str, stage: str | None, message: str, **details: Any) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "project_id": self.project_id, "stage": stage, "message": message, **details}
        )
