"""Read back what a DAG run did from Airflow's metadata database, for demos and tests.

Airflow 3 only: it reads the metadata database directly, which only code running beside the
scheduler (a test, ``airflow dags test``) should do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        query = query.where(DagRun.run_id == run_id) if run_id else query.order_by(DagRun.id.desc())
        dag_run = session.scalars(query.limit(1)).one()
        task_instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id)
        ).all()

        tasks: dict[str, TaskSummary] = {}
        for ti in sorted(task_instances, key=lambda ti: (ti.start_date is None, ti.start_date)):
            reschedules = session.scalars(
                select(TaskReschedule).where(TaskReschedule.ti_id == ti.id).order_by(TaskReschedule.id)
            ).all()
            rendered = session.scalars(
                select(RenderedTaskInstanceFields).where(
                    RenderedTaskInstanceFields.dag_id == dag_id,
                    RenderedTaskInstanceFields.run_id == dag_run.run_id,
                    RenderedTaskInstanceFields.task_id == ti.task_id,
                    RenderedTaskInstanceFields.map_index == ti.map_index,
                )
            ).first()
            xcom_rows = session.scalars(
                select(XComModel).where(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == dag_run.run_id,
                    XComModel.task_id == ti.task_id,
                    XComModel.map_index == ti.map_index,
                )
            ).all()
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tasks[key] = TaskSummary(
                task_id=ti.task_id,
                state=str(ti.state),
                try_number=ti.try_number,
                reschedule_intervals=[
                    (row.reschedule_date - row.end_date).total_seconds() for row in reschedules
                ],
                xcoms={row.key: XComModel.deserialize_value(row) for row in xcom_rows},
                rendered_fields=dict(rendered.rendered_fields) if rendered is not None else {},
            )
        return RunSummary(dag_id=dag_id, run_id=dag_run.run_id, state=str(dag_run.state), tasks=tasks)


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
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.uri == uri)).first()
        if asset is None:
            return AssetSummary(uri=uri, events=[], queued_dag_ids=[])
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.asset_id == asset.id).order_by(AssetEvent.id)
        ).all()
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id)
        ).all()
        return AssetSummary(
            uri=uri,
            events=[
                {"dag_id": e.source_dag_id, "task_id": e.source_task_id, "extra": dict(e.extra or {})}
                for e in events
            ],
            queued_dag_ids=sorted(queued),
        )
