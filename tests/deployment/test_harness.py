"""The deployment harness leaves no process behind, also when a check fails inside it."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

from deployment.harness import AirflowSettings, Processes, process_group
from deployment.stack import database_choice, stack

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.deployment, pytest.mark.timeout(300)]

#: A process that starts a child of its own and prints the child's PID, as Airflow's components do.
PARENT_WITH_CHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def alive(pid: int) -> bool:
    """Whether the process still runs; one that ended but was not reaped yet (a zombie) does not."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stop_ends_a_process_and_its_children(tmp_path: Path) -> None:
    processes = Processes(tmp_path)
    parent = processes.start("parent", [sys.executable, "-c", PARENT_WITH_CHILD], dict(os.environ))
    log = tmp_path / "parent.log"
    while not log.read_text().strip():
        assert parent.poll() is None
    child_pid = int(log.read_text().split()[0])
    assert alive(child_pid)

    processes.stop()

    assert parent.poll() is not None
    assert not alive(child_pid)


def fail_inside_a_started_stack(work_dir: Path, started: set[int]) -> None:
    """Start a whole LocalExecutor deployment, note every process in it, then fail as a check would."""
    with stack(celery=False, database=database_choice(), work_dir=work_dir) as deployment:
        deployment.start(AirflowSettings(executor="LocalExecutor", parallelism=1))
        for leader in deployment.processes.pids():
            started |= process_group(leader)
        raise RuntimeError("a check failed")


def test_a_failure_inside_the_stack_stops_everything_it_started(tmp_path: Path) -> None:
    started: set[int] = set()

    with pytest.raises(RuntimeError, match="a check failed"):
        fail_inside_a_started_stack(tmp_path, started)

    # PostgreSQL, the four components, the executor's worker and the log servers.
    assert len(started) >= 6
    assert [pid for pid in started if alive(pid)] == []
