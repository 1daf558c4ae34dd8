"""Run the example DAG end to end in real Airflow on SQLite, against the GO emulator.

Started by ``make demo`` with the project's virtualenv. It prepares ``AIRFLOW_HOME`` in
``.airflow/`` (git-ignored), starts the emulator on a free loopback port, runs
``airflow dags test example_proteus`` with short pokes, stops the emulator, and prints what
happened: the job id, each stage the sensor saw, the state of every task, the results file and
its row count. The results task's asset event queues ``example_proteus_consumer``; the demo then
starts Airflow's api-server, scheduler and dag-processor, which run that DAG as any deployment
would, prints its run and stops them. It exits non-zero if a run did not succeed or the sensor
never rescheduled.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_proteus.testing.airflow_runs import RunSummary

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
HOME = REPO / ".airflow"
RESULTS = HOME / "results"
CONSUMER_DAG_ID = "example_proteus_consumer"
BIN = Path(sys.executable).parent
DAG_ID = "example_proteus"
RUN_SECONDS = 20  # how long the emulated job runs
POKE_INTERVAL = 5  # seconds between the sensor's pokes in the demo


def airflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # Airflow queues a run of a DAG scheduled on an asset only while that DAG is unpaused.
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def start_emulator(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port_file = HOME / "emulator.port"
    port_file.unlink(missing_ok=True)
    log = (HOME / "emulator.log").open("wb")
    process = subprocess.Popen(
        [
            str(BIN / "proteus-emulator"),
            *("--port", "0", "--port-file", str(port_file)),
            *("--run-seconds", str(RUN_SECONDS), "--access-log"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"The GO emulator did not start; see {HOME / 'emulator.log'}")
        time.sleep(0.1)
    return process, int(port_file.read_text())


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main() -> int:
    env = airflow_env()
    HOME.mkdir(exist_ok=True)

    step(f"Preparing the Airflow metadata DB (SQLite) in {HOME}")
    migrate = subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if migrate.returncode:
        print(migrate.stdout[-3000:], migrate.stderr[-3000:], sep="\n")
        return 1

    step("Starting the GO emulator")
    emulator, port = start_emulator(env)
    root = f"http://127.0.0.1:{port}"
    try:
        from airflow_provider_proteus.testing import DEFAULT_TOKEN, EmulatorClient

        print(f"    serving {root}/api/v2/go; jobs run for {RUN_SECONDS} s", flush=True)
        env["AIRFLOW_CONN_PROTEUS_DEFAULT"] = json.dumps(
            {
                "conn_type": "proteus",
                "host": f"{root}/api/v2/go",
                "password": DEFAULT_TOKEN,
                "extra": {"web_url": f"{root}/web"},
            }
        )
        env["PROTEUS_EXAMPLE_POKE_INTERVAL"] = str(POKE_INTERVAL)

        run_log = HOME / "demo-run.log"
        step(f"Running the example DAG with `airflow dags test {DAG_ID}` (log: {run_log})")
        started = time.monotonic()
        with run_log.open("w") as log:
            conf = json.dumps({"results_uri": RESULTS.as_uri()})
            test = subprocess.run(
                [str(BIN / "airflow"), "dags", "test", DAG_ID, "-c", conf],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        print(
            f"    finished in {time.monotonic() - started:.0f} s with exit code {test.returncode}", flush=True
        )
        # What GO (the emulator) was asked and answered: project reads with their stage, and the job.
        exchanges = [
            entry
            for entry in EmulatorClient(root).requests()
            if "stage" in entry or (entry["method"] == "POST" and entry["path"].endswith("/job"))
        ]
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        step("Stopped the GO emulator")

    run_id = next(
        (
            line.split("run_id=")[1].split(",")[0]
            for line in run_log.read_text().splitlines()
            if "run_id=" in line
        ),
        None,
    )
    os.environ.update(airflow_env())
    from airflow_provider_proteus.testing.airflow_runs import describe_run

    run = describe_run(DAG_ID, run_id)
    job_id = run.tasks["submit_job"].xcoms.get("return_value") if "submit_job" in run.tasks else None
    summary = (
        run.tasks["summarize_results"].xcoms.get("return_value") if "summarize_results" in run.tasks else None
    )
    reschedules = run.tasks["wait_for_completion"].reschedules if "wait_for_completion" in run.tasks else 0

    print()
    print(f"DAG run:   {DAG_ID} {run.run_id} -> {run.state}")
    print(f"Job id:    {job_id}")
    print("Stages GO reported:")
    posted = completed = False
    for entry in exchanges:
        if entry["method"] == "POST":
            posted = True
            print(f"    {entry['at'][11:19]} UTC  job posted (HTTP {entry['status']})")
            continue
        if completed:
            who = "fetch_results, before reading the results"
        else:
            who = "sensor poke" if posted else "submit_job, before posting"
        completed = completed or entry["stage"] == "COMPLETED"
        print(f"    {entry['at'][11:19]} UTC  {entry['stage']:<12} ({who})")
    print(f"Sensor rescheduled {reschedules} time(s) (state up_for_reschedule between pokes)")
    print("Tasks:")
    for task in run.tasks.values():
        print(f"    {task.task_id:<22} {task.state:<10} (try {task.try_number})")
    if summary:
        print(
            f"Results:   {summary['project_name']} ({summary['project_id']}): "
            f"{len(summary['aois'])} AOIs ({'; '.join(summary['aois'])}), {summary['result_count']} results"
        )
        print(f"Results file: {summary['results_path']} ({summary['row_count']} rows)")

    ok = (
        test.returncode == 0
        and run.state == "success"
        and all(task.state == "success" for task in run.tasks.values())
        and reschedules > 0
        and job_id
    )
    if not ok:
        print(f"\nThe demo did not succeed; the run's log is {run_log}", file=sys.stderr)
        return 1

    print()
    step(
        f"The asset event queued {CONSUMER_DAG_ID}; "
        "starting Airflow's api-server, dag-processor and scheduler to run it"
    )
    consumer = run_consumer(airflow_env())
    if consumer is None:
        return 1
    print(
        f"DAG run:   {CONSUMER_DAG_ID} {consumer.run_id} -> {consumer.state} (triggered by the asset event)"
    )
    counted = (
        consumer.tasks["count_rows"].xcoms.get("return_value") if "count_rows" in consumer.tasks else None
    )
    if counted:
        print(f"It read {counted['path']}: {counted['rows']} rows")
    if consumer.state != "success":
        print(f"\nThe consumer DAG did not succeed; see the logs in {HOME / 'components'}", file=sys.stderr)
        return 1
    print("\nDemo succeeded.")
    return 0


def run_consumer(env: dict[str, str]) -> RunSummary | None:
    """Run the components that turn the queued asset event into a DAG run; return that run."""
    from airflow_provider_proteus.testing.airflow_runs import latest_run
    from deployment.harness import (
        DeploymentError,
        Processes,
        answers,
        free_port,
        loopback_components,
        wait_for,
    )

    api_port = free_port()
    env = {
        **env,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        **loopback_components(api_port, secrets.token_urlsafe(64)),
    }
    # The harness logs each process it starts and stops; the demo says it in one line instead.
    logging.getLogger("proteus.deployment").setLevel(logging.WARNING)
    processes = Processes(HOME / "components")
    # .airflow/ keeps the runs of earlier demos; only a run created now counts.
    earlier = latest_run(CONSUMER_DAG_ID)
    started = time.monotonic()
    try:
        for component in ("api-server", "dag-processor"):
            processes.start(component, [str(BIN / "airflow"), component], env)
        # Task processes report to the api-server: the scheduler starts once it answers.
        health = f"http://127.0.0.1:{api_port}/api/v2/monitor/health"
        wait_for("Airflow's api-server", lambda: answers(health), timeout=120, interval=1)
        processes.start("scheduler", [str(BIN / "airflow"), "scheduler"], env)

        def finished() -> bool:
            if ended := processes.exited():
                raise DeploymentError(f"Airflow components ended early: {ended}")
            run = latest_run(CONSUMER_DAG_ID)
            new = run is not None and (earlier is None or run.run_id != earlier.run_id)
            return new and run is not None and run.state in ("success", "failed")

        wait_for(f"a run of {CONSUMER_DAG_ID} to finish", finished, timeout=180, interval=1)
    except DeploymentError as err:
        print(f"    {err}; see the logs in {HOME / 'components'}", file=sys.stderr)
        return None
    finally:
        processes.stop()
        step("Stopped Airflow's api-server, scheduler and dag-processor")
    print(f"    the consumer ran {time.monotonic() - started:.0f} s after the components started", flush=True)
    return latest_run(CONSUMER_DAG_ID)


if __name__ == "__main__":
    sys.exit(main())
