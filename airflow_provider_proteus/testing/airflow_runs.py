"""Read back what a DAG run did from Airflow's metadata database, for demos and tests.

It reads the metadata database directly, which only code running beside the scheduler (a test,
``airflow dags test``) should do. Airflow 2 and 3 lay some tables out differently (datasets became
assets; reschedules and XComs are keyed differently); :class:`_Models` holds each layout.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_proteus.version_compat import AIRFLOW_V_3_0_PLUS, airflow_version

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import DAG
    from sqlalchemy.orm import Session

AIRFLOW_CLI = str(Path(sys.executable).parent / "airflow")
"""The ``airflow`` command of the running interpreter's environment, whatever is first on ``PATH``."""


@dataclass
class TaskSummary:
    """One task instance of a run.

    :param task_id: The task id.
    :param state: The final state, such as ``success`` or ``failed``.
    :param try_number: How many tries the task used.
    :param reschedule_intervals: For each reschedule (reschedule-mode sensors), the seconds Airflow
        chose to wait before the next poke.
    :param xcoms: The task's XComs by key.
    :param rendered_fields: The task's rendered template fields.
    """

    task_id: str
    state: str
    try_number: int
    reschedule_intervals: list[float] = field(default_factory=list)
    xcoms: dict[str, Any] = field(default_factory=dict)
    rendered_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def reschedules(self) -> int:
        """How many times the task was rescheduled."""
        return len(self.reschedule_intervals)


@dataclass
class RunSummary:
    """A DAG run and its task instances, in the order they started.

    :param dag_id: The DAG id.
    :param run_id: The run id.
    :param state: The run's final state.
    :param tasks: The task instances by task id; a mapped task's as ``task_id[map_index]``.
    """

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, TaskSummary]


def describe_run(dag_id: str, run_id: str | None = None) -> RunSummary:
    """Summarise a DAG run (the latest one when ``run_id`` is not given)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    models = _Models()
    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        query = query.where(DagRun.run_id == run_id) if run_id else query.order_by(DagRun.id.desc())
        dag_run = session.scalars(query.limit(1)).one()
        task_instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id)
        ).all()

        tasks: dict[str, TaskSummary] = {}
        for ti in sorted(task_instances, key=lambda ti: (ti.start_date is None, ti.start_date)):
            rendered = session.scalars(
                select(RenderedTaskInstanceFields).where(
                    RenderedTaskInstanceFields.dag_id == dag_id,
                    RenderedTaskInstanceFields.run_id == dag_run.run_id,
                    RenderedTaskInstanceFields.task_id == ti.task_id,
                    RenderedTaskInstanceFields.map_index == ti.map_index,
                )
            ).first()
            xcom_rows = session.scalars(
                select(models.xcom).where(
                    models.xcom.dag_id == dag_id,
                    models.xcom.run_id == dag_run.run_id,
                    models.xcom.task_id == ti.task_id,
                    models.xcom.map_index == ti.map_index,
                )
            ).all()
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tasks[key] = TaskSummary(
                task_id=ti.task_id,
                state=str(ti.state),
                try_number=ti.try_number,
                reschedule_intervals=[
                    (row.reschedule_date - row.end_date).total_seconds()
                    for row in models.reschedules(session, ti)
                ],
                xcoms={row.key: models.xcom_value(row) for row in xcom_rows},
                rendered_fields=dict(rendered.rendered_fields) if rendered is not None else {},
            )
        return RunSummary(dag_id=dag_id, run_id=dag_run.run_id, state=str(dag_run.state), tasks=tasks)


def extra_link(dag: DAG, run_id: str, task_id: str, name: str) -> str | None:
    """The URL of a task's extra link in a run, as Airflow's UI shows it; ``None`` when it has none.

    Airflow 3 stores the URL of each link in an XCom when a try ends; Airflow 2 asks the link for it
    whenever the page is shown.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    task: Any = dag.get_task(task_id)
    [link] = [link for link in task.operator_extra_links if link.name == name]
    if AIRFLOW_V_3_0_PLUS:
        url = describe_run(dag.dag_id, run_id).tasks[task_id].xcoms.get(f"_link_{type(link).__name__}")
        return str(url) if url else None
    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        ).one()
        url = link.get_link(task, ti_key=ti.key)
    return str(url) if url else None


def prepare_for_test(dag: DAG) -> None:
    """Write the DAGs folder to the metadata database before ``dag.test()`` runs ``dag``, once.

    Airflow 3.1 and later sync the DAG's whole bundle in ``dag.test()``. Airflow 2.11 writes
    nothing, and 3.0 only the DAG it runs: a task that emits an event through a dataset alias that
    was never written then fails to flush it (2.11), and an asset event queues no run of a DAG
    scheduled on it that was never written. ``airflow dags reserialize`` writes them all.
    """
    if airflow_version() < (3, 1, 0):
        _reserialize_dags_folder()


@functools.cache
def _reserialize_dags_folder() -> None:
    command = [AIRFLOW_CLI, "dags", "reserialize"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)  # noqa: S603 (our own CLI)
    if done.returncode != 0:
        raise RuntimeError(f"airflow dags reserialize failed: {(done.stdout + done.stderr)[-3000:]}")


class _Models:
    """The metadata tables whose layout Airflow 3 changed, in the installed version's layout."""

    def __init__(self) -> None:
        if AIRFLOW_V_3_0_PLUS:
            from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
            from airflow.models.xcom import XComModel

            self.xcom: Any = XComModel
            self.asset: Any = AssetModel
            self.asset_event: Any = AssetEvent
            self.asset_queue: Any = AssetDagRunQueue
            self.asset_key = "asset_id"
        else:
            from airflow.models.dataset import (  # type: ignore[import-not-found,unused-ignore]
                DatasetDagRunQueue,
                DatasetEvent,
                DatasetModel,
            )
            from airflow.models.xcom import BaseXCom

            self.xcom = BaseXCom
            self.asset = DatasetModel
            self.asset_event = DatasetEvent
            self.asset_queue = DatasetDagRunQueue
            self.asset_key = "dataset_id"

    def xcom_value(self, row: Any) -> Any:
        """An XCom row's value: Airflow 2 deserializes it as it loads the row, Airflow 3 on demand."""
        return self.xcom.deserialize_value(row) if AIRFLOW_V_3_0_PLUS else row.value

    def reschedules(self, session: Session, ti: Any) -> list[Any]:
        """A task instance's reschedules, oldest first: Airflow 3 keys them by the instance's id."""
        from airflow.models.taskreschedule import TaskReschedule
        from sqlalchemy import select

        if AIRFLOW_V_3_0_PLUS:
            where = [TaskReschedule.ti_id == ti.id]
        else:
            where = [
                TaskReschedule.dag_id == ti.dag_id,
                TaskReschedule.run_id == ti.run_id,
                TaskReschedule.task_id == ti.task_id,
                TaskReschedule.map_index == ti.map_index,
            ]
        return list(session.scalars(select(TaskReschedule).where(*where).order_by(TaskReschedule.id)))


def latest_run(dag_id: str) -> RunSummary | None:
    """The latest run of a DAG, or ``None`` if it has not run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        if session.scalars(select(DagRun.id).where(DagRun.dag_id == dag_id).limit(1)).first() is None:
            return None
    return describe_run(dag_id)


@dataclass
class AssetSummary:
    """What Airflow recorded for one asset: its events and the DAG runs they queued.

    :param uri: The asset's URI.
    :param events: Each event's source task and extra, oldest first.
    :param queued_dag_ids: The DAGs scheduled on the asset that its events queued a run for.
    """

    uri: str
    events: list[dict[str, Any]]
    queued_dag_ids: list[str]


def describe_asset(uri: str) -> AssetSummary:
    """Summarise the events of the asset with ``uri`` and the runs they queued (none if unknown)."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    models = _Models()
    with create_session() as session:
        asset = session.scalars(select(models.asset).where(models.asset.uri == uri)).first()
        if asset is None:
            return AssetSummary(uri=uri, events=[], queued_dag_ids=[])
        event_asset = getattr(models.asset_event, models.asset_key)
        events = session.scalars(
            select(models.asset_event).where(event_asset == asset.id).order_by(models.asset_event.id)
        ).all()
        queued_asset = getattr(models.asset_queue, models.asset_key)
        queued = session.scalars(
            select(models.asset_queue.target_dag_id).where(queued_asset == asset.id)
        ).all()
        return AssetSummary(
            uri=uri,
            events=[
                {"dag_id": e.source_dag_id, "task_id": e.source_task_id, "extra": dict(e.extra or {})}
                for e in events
            ],
            queued_dag_ids=sorted(queued),
        )
