"""Run the deployment checks and print what they saw.

``python -m deployment local``: PostgreSQL, the LocalExecutor with ``parallelism`` 1, api-server,
scheduler, dag-processor and triggerer. It runs a wait in reschedule and in deferrable mode, three
waits at once in each mode, three poke-mode waits taking turns, a FAILURE project in both modes and
the example DAG.

``python -m deployment celery``: PostgreSQL, Redis, the CeleryExecutor with one Celery worker, and
the same Airflow components; it runs the example DAG with ``default_deferrable`` off, then on.

Exits non-zero when a check fails. The work directory, with every component's log, is printed and
kept.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from deployment.checks import CONSUMER, Checks, WatchedRun
from deployment.harness import AirflowDeployment, AirflowSettings, DeploymentError
from deployment.stack import stack, token_leaks

LOCAL_DAGS = ("proteus_deployment_reschedule", "proteus_deployment_deferrable", "proteus_deployment_poke")


def report(name: str, started: float, runs: list[WatchedRun], checks: Checks) -> None:
    """Print a passed check, and each of its runs with the tries the scheduler race ended."""
    print(f"  ok  {name} ({time.monotonic() - started:.0f} s)")
    for run in runs:
        print(f"        {run.describe()}{checks.race_note(run)}")


def run_local(deployment: AirflowDeployment, checks: Checks) -> None:
    deployment.start(AirflowSettings(executor="LocalExecutor", parallelism=1))
    deployment.wait_for_dags(*LOCAL_DAGS, "example_proteus", CONSUMER)
    for mode in ("reschedule", "deferrable"):
        started = time.monotonic()
        report(
            f"{mode}: the wait gives its slot back, and its task links to the GO project",
            started,
            [checks.wait_gives_back_its_slot(mode)],
            checks,
        )
    for mode in ("reschedule", "deferrable"):
        started = time.monotonic()
        report(
            f"{mode}: three waits share one slot", started, checks.three_waits_share_one_slot(mode), checks
        )
    started = time.monotonic()
    report("poke: three waits take turns in one slot", started, checks.three_pokes_take_turns(), checks)
    for mode in ("reschedule", "deferrable"):
        started = time.monotonic()
        run, _ = checks.failed_project_fails_the_run(mode)
        report(f"{mode}: a FAILURE project fails the run, reason in the log", started, [run], checks)
    started = time.monotonic()
    report("reschedule: the example DAG", started, [checks.example_dag_succeeds("reschedule")], checks)
    started = time.monotonic()
    report(
        "the results' asset event runs the consumer DAG",
        started,
        list(checks.consumer_runs_on_the_results()),
        checks,
    )
    started = time.monotonic()
    _, answers = checks.connection_form_and_test()
    wrong = [case for case, (ok, _) in answers.items() if ok != (case == "good")]
    if wrong:
        raise DeploymentError(f"The connection test answered wrongly for {wrong}: {answers}")
    report(
        "the proteus connection form, and its test for a good, a wrong-token and an unreachable one",
        started,
        [],
        checks,
    )
    for case, (ok, message) in answers.items():
        print(f"        {case}: {'ok' if ok else 'refused'}: {message}")
    checks.collect_mismatches(*LOCAL_DAGS, "example_proteus", CONSUMER)


def run_celery(deployment: AirflowDeployment, checks: Checks) -> None:
    for deferrable in (False, True):
        mode = "deferrable" if deferrable else "reschedule"
        deployment.start(
            AirflowSettings(executor="CeleryExecutor", parallelism=2, default_deferrable=deferrable)
        )
        deployment.wait_for_dags("example_proteus")
        started = time.monotonic()
        report(f"celery, {mode}: the example DAG", started, [checks.example_dag_succeeds(mode)], checks)
        checks.collect_mismatches("example_proteus")
        deployment.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment", description=__doc__.split("\n\n")[0])
    parser.add_argument("executor", choices=["local", "celery"])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--work-dir", type=Path, help="where logs and databases go (default: a new temp dir)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each process started and stopped")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    started = time.monotonic()
    try:
        with stack(
            celery=args.executor == "celery", database=args.database, work_dir=args.work_dir
        ) as deployment:
            print(f"Deployment in {deployment.home.parent} (logs in {deployment.processes.log_dir})")
            checks = Checks(deployment, deployment.emulator.client)
            (run_celery if args.executor == "celery" else run_local)(deployment, checks)
            print(f"Airflow 3.3.2's scheduler race: {checks.race.summary()}")
            if leaks := token_leaks(deployment):
                print(f"FAILED: the GO token appears in {leaks}")
                return 1
            print(f"  ok  the GO token is in none of the {len(list(deployment.log_files()))} log files")
    except DeploymentError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    print(f"All {args.executor} deployment checks passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
