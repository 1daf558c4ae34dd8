"""Worker-slot time: seconds a worker slot is held per hour of waiting, in each sensor mode.

- **poke** holds the slot for the whole wait: 3,600 s per hour, by definition.
- **reschedule** holds it for one try per poke interval: task start-up, one poke, the reschedule.
- **deferrable** holds it for the try that pokes once and defers, and for the try that resumes
  from the trigger's event; in between, nothing.

A try's worker-side cost is measured on a real DAG run: ``dag.test()`` of
``benchmarks/dags/bench_slots.py`` against the GO emulator (in its own process), with Airflow's
in-process execution API and a SQLite metadata database. ``dag.test()`` runs every try through
``airflow.sdk.execution_time.supervisor.run_task_in_process``; this part wraps that function and
times each call, which covers what a worker does for a try (the execution API's start, the context,
rendering, ``execute``, the state report) except starting a process. What a worker adds for that is
measured apart, in fresh interpreters: parsing the DAG file with ``airflow.sdk`` already imported (a
forking worker's task process: LocalExecutor, Celery) and a whole new interpreter that imports
Airflow and the DAG file (a worker that starts a process per try), the upper bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import (
    PYTHON,
    REPO,
    child_arguments,
    go_emulator,
    logs_to_file,
    median,
    part_workdir,
    say,
    write_result,
)

DAG_FILE = REPO / "benchmarks" / "dags" / "bench_slots.py"
#: Poke intervals to show the reschedule figure at; 900 s is the sensor's default.
INTERVALS = (60.0, 300.0, 900.0)
DEFAULT_INTERVAL = 900.0
GOAL_SHARE = 0.01

_PARSE = """
import importlib.util, json, sys, time
started = time.perf_counter()
import airflow.sdk
imported = time.perf_counter()
spec = importlib.util.spec_from_file_location("bench_slots", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({{"parse": time.perf_counter() - imported, "airflow": imported - started}}))
"""


def fresh_process_costs(samples: int) -> dict[str, float]:
    """What a task process pays before ``execute``: the DAG-file parse, and a whole new interpreter."""
    parses, wholes = [], []
    # An unmeasured first parse leaves byte-code caches behind, as a deployment has them.
    for number in range(samples + 1):
        started = time.perf_counter()
        output = subprocess.run(  # noqa: S603 - our own interpreter
            [PYTHON, "-c", _PARSE.format(path=str(DAG_FILE))], check=True, capture_output=True, text=True
        ).stdout
        if number:
            wholes.append(time.perf_counter() - started)
            parses.append(json.loads(output.strip().splitlines()[-1])["parse"])
    return {"dag_file_parse": median(parses), "fresh_interpreter": median(wholes)}


class TryTimer:
    """Times every try ``dag.test()`` runs, and every trigger it runs in line."""

    def __init__(self) -> None:
        self.tries: list[dict[str, Any]] = []
        self.triggers: list[float] = []

    def install(self) -> None:
        import airflow.sdk.definitions.dag as dag_module
        from airflow.sdk.execution_time import supervisor

        run_task_in_process = supervisor.run_task_in_process
        run_inline_trigger = dag_module._run_inline_trigger

        def timed_try(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = run_task_in_process(*args, **kwargs)
            state = result.ti.state
            self.tries.append(
                {"seconds": time.perf_counter() - started, "state": getattr(state, "value", state)}
            )
            return result

        def timed_trigger(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return run_inline_trigger(*args, **kwargs)  # type: ignore[no-untyped-call]
            finally:
                self.triggers.append(time.perf_counter() - started)

        supervisor.run_task_in_process = timed_try
        dag_module._run_inline_trigger = timed_trigger


def run(root_url: str, reschedules: int, deferrals: int, samples: int) -> dict[str, Any]:
    from airflow.providers.common.compat.sdk import DAG
    from airflow.utils.db import resetdb

    from airflow_provider_proteus.testing import EmulatorClient

    control = EmulatorClient(root_url)
    resetdb()
    namespace: dict[str, Any] = {}
    exec(compile(DAG_FILE.read_text(), str(DAG_FILE), "exec"), namespace)  # noqa: S102 - our own DAG file
    dags = {value.dag_id: value for value in namespace.values() if isinstance(value, DAG)}
    timer = TryTimer()
    timer.install()

    def wait(mode: str, stages: list[str]) -> list[dict[str, Any]]:
        project_id = f"slots-{mode}-{len(timer.tries)}"
        control.add_project(id=project_id, name=project_id, stages=stages)
        first = len(timer.tries)
        dag_run = dags[f"bench_slots_{mode}"].test(run_conf={"project_id": project_id})
        if getattr(dag_run.state, "value", dag_run.state) != "success":
            raise RuntimeError(f"The {mode} run ended {dag_run.state}; see the log")
        return timer.tries[first:]

    # The first try of a process warms up the in-process execution API; it is no worker's cost.
    wait("reschedule", ["RUNNING", "COMPLETED"])
    tries = wait("reschedule", ["RUNNING"] * reschedules + ["COMPLETED"])
    reschedule_tries = [entry["seconds"] for entry in tries if entry["state"] == "up_for_reschedule"]
    say(f"  reschedule-mode try (dag.test, {len(reschedule_tries)} tries): {median(reschedule_tries):.3f} s")

    defer_tries: list[float] = []
    resume_tries: list[float] = []
    for _ in range(deferrals):
        tries = wait("deferrable", ["RUNNING", "RUNNING", "COMPLETED"])
        defer_tries += [entry["seconds"] for entry in tries if entry["state"] == "deferred"]
        resume_tries += [entry["seconds"] for entry in tries if entry["state"] == "success"]
    say(
        f"  deferrable: try that defers {median(defer_tries):.3f} s, try that resumes "
        f"{median(resume_tries):.3f} s ({deferrals} runs)"
    )

    start_up = fresh_process_costs(samples)
    say(
        f"  task start-up: DAG-file parse {start_up['dag_file_parse']:.3f} s on top of airflow.sdk, "
        f"a fresh interpreter with Airflow and the DAG file {start_up['fresh_interpreter']:.3f} s"
    )
    try_low = median(reschedule_tries) + start_up["dag_file_parse"]
    try_high = median(reschedule_tries) + start_up["fresh_interpreter"]
    per_hour = {
        str(int(interval)): {
            "poke": 3600.0,
            "reschedule": 3600.0 / interval * try_low,
            "reschedule_upper": 3600.0 / interval * try_high,
            "deferrable_waiting": 0.0,
        }
        for interval in INTERVALS
    }
    per_wait_deferrable = median(defer_tries) + median(resume_tries) + 2 * start_up["dag_file_parse"]
    per_wait_deferrable_upper = median(defer_tries) + median(resume_tries) + 2 * start_up["fresh_interpreter"]
    for interval in INTERVALS:
        row = per_hour[str(int(interval))]
        say(
            f"  slot seconds per hour of waiting at a {interval:.0f} s interval: poke 3600, "
            f"reschedule {row['reschedule']:.1f} ({row['reschedule'] / 36:.2f} %; at most "
            f"{row['reschedule_upper']:.1f}, {row['reschedule_upper'] / 36:.2f} %), deferrable 0 "
            f"(plus {per_wait_deferrable:.2f} s once per wait, at most {per_wait_deferrable_upper:.2f} s)"
        )
    return {
        "reschedule_try_seconds": reschedule_tries,
        "defer_try_seconds": defer_tries,
        "resume_try_seconds": resume_tries,
        "inline_trigger_seconds": timer.triggers,
        "start_up": start_up,
        "slot_seconds_per_try": {"low": try_low, "high": try_high},
        "per_hour": per_hour,
        "deferrable_per_wait": {"low": per_wait_deferrable, "high": per_wait_deferrable_upper},
        "default_interval": DEFAULT_INTERVAL,
        "goal_share": GOAL_SHARE,
    }


def main(argv: list[str]) -> int:
    budget, result_file = child_arguments(argv)
    workdir = part_workdir("slots")
    logs_to_file(workdir / "airflow.log")
    say("Worker-slot time per hour of waiting (tries timed in dag.test(), start-up in fresh interpreters)")
    with go_emulator(workdir) as root_url:
        from airflow_provider_proteus.testing import DEFAULT_TOKEN

        os.environ["AIRFLOW_CONN_PROTEUS_DEFAULT"] = json.dumps(
            {"conn_type": "proteus", "host": f"{root_url}/api/v2/go", "password": DEFAULT_TOKEN}
        )
        result = run(root_url, budget.slot_reschedules, budget.slot_deferrals, budget.import_samples)
    write_result(result_file, {**result, "budget": budget.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
