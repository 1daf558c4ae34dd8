"""One deployment's whole stack: database, broker, GO emulator and Airflow, started and stopped together."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_proteus.testing import GoEmulator
from deployment.harness import AirflowDeployment, PostgresServer, Processes, RedisServer

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger("proteus.deployment")

#: The token the deployment's GO emulator accepts; the checks look for it in every log file.
TOKEN = "tok-DEPLOY-0001-secret"  # noqa: S105


@contextlib.contextmanager
def stack(
    *, celery: bool, database: str = "postgres", work_dir: Path | None = None
) -> Iterator[AirflowDeployment]:
    """Start PostgreSQL (or SQLite), Redis when ``celery``, and the GO emulator; yield an Airflow deployment
    whose metadata database is migrated but whose components are not started yet.

    Every process is stopped on the way out, whatever happened inside.

    :param celery: Also start Redis, the broker of the CeleryExecutor.
    :param database: ``postgres`` (Debian's PostgreSQL, the default) or ``sqlite``, the fallback for a
        machine without PostgreSQL (LocalExecutor only on Airflow 2).
    :param work_dir: Where the databases, ``AIRFLOW_HOME`` and all logs go; a new temporary directory by
        default, kept afterwards so that the logs can be read.
    """
    if database not in {"postgres", "sqlite"}:
        raise ValueError(f"database must be 'postgres' or 'sqlite', not {database!r}")
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="proteus-deployment-"))
    processes = Processes(work_dir / "logs")
    log.info("Deployment work directory: %s", work_dir)
    postgres = PostgresServer(processes) if database == "postgres" else None
    with GoEmulator(token=TOKEN) as emulator:
        try:
            if postgres is not None:
                database_url = postgres.start().create_database("airflow")
            else:
                database_url = f"sqlite:///{work_dir / 'airflow.db'}"
            broker_url = RedisServer(work_dir, processes).start().url if celery else None
            deployment = AirflowDeployment(
                home=work_dir / "airflow",
                database_url=database_url,
                emulator=emulator,
                processes=processes,
                broker_url=broker_url,
            )
            deployment.migrate()
            try:
                yield deployment
            finally:
                deployment.stop()
        finally:
            processes.stop()
            if postgres is not None:
                postgres.remove()


def token_leaks(deployment: AirflowDeployment) -> list[str]:
    """The log files of the deployment in which the GO token appears."""
    return [str(path) for path in deployment.log_files() if TOKEN.encode() in path.read_bytes()]


def database_choice() -> str:
    """The database the tests use: ``PROTEUS_DEPLOYMENT_DATABASE``, PostgreSQL unless it says ``sqlite``."""
    return os.environ.get("PROTEUS_DEPLOYMENT_DATABASE", "postgres")
