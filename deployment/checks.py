"""What the provider must do on a real deployment, checked through Airflow's REST API.

Each check triggers DAG runs on a running :class:`~deployment.harness.AirflowDeployment`, holds the
GO projects they wait on at ``RUNNING`` through the emulator until the waits are seen, releases
them, and raises :class:`~deployment.harness.DeploymentError` describing what it saw when the
deployment did not behave. Holding the projects, instead of letting them finish on a timer, makes
each observation certain rather than a matter of sampling at the right moment.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_proteus.testing import DEMO_PROJECT_ID, DEMO_VERSION_ID
from deployment.harness import AirflowDeployment, DeploymentError, free_port, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_proteus.testing import EmulatorClient

SENSOR = "wait_for_completion"
#: Task states in which a waiting sensor holds no worker slot, per mode.
WAITING_STATE = {"reschedule": "up_for_reschedule", "deferrable": "deferred"}
FINISHED = {"success", "failed"}
RUN_TIMEOUT = 240.0
#: The example DAG scheduled on the demo project version's asset.
CONSUMER = "example_proteus_consumer"


@dataclass
class WatchedRun:
    """One DAG run and every task state the watcher saw, in order."""

    dag_id: str
    run_id: str
    project_id: str
    state: str = "queued"
    #: task id -> [(seconds since the watch began, state, try number)], one entry per change.
    history: dict[str, list[tuple[float, str | None, int]]] = field(default_factory=dict)
    task_instances: dict[str, dict[str, Any]] = field(default_factory=dict)

    def states(self, task_id: str = SENSOR) -> list[str | None]:
        return [state for _, state, _ in self.history.get(task_id, [])]

    def describe(self) -> str:
        tasks = "; ".join(
            f"{task}: {' > '.join(f'{state}#{tries}' for _, state, tries in seen)}"
            for task, seen in self.history.items()
        )
        return f"{self.dag_id}/{self.run_id} ({self.project_id}) is {self.state} [{tasks}]"


@dataclass
class RaceReport:
    """How often Airflow 3.3.2's "state mismatch" race failed a try, and whether retries absorbed it."""

    runs: int = 0
    failed_tries: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.mismatches)} state-mismatch events and {self.failed_tries} failed tries "
            f"in {self.runs} runs"
        )


class Checks:
    """The checks, run against one deployment and the GO emulator its connection points at.

    :param deployment: A started deployment whose DAG folder holds the deployment and example DAGs.
    :param control: The emulator's control client.
    """

    def __init__(self, deployment: AirflowDeployment, control: EmulatorClient) -> None:
        self.deployment = deployment
        self.control = control
        self.race = RaceReport()
        self._started = time.monotonic()
        self._run_ids: set[str] = set()
        self.results_uri = (deployment.home / "results").as_uri()

    # Building blocks

    def held_project(self, label: str) -> str:
        """A new GO project that reports RUNNING until released."""
        project_id = f"{label}-{uuid.uuid4().hex[:8]}"
        self.control.add_project(id=project_id, name=f"Deployment check {label}", stages=["RUNNING"])
        return project_id

    def release(self, project_id: str, stage: str = "COMPLETED") -> None:
        self.control.update_project(project_id, stages=[stage])

    def polls(self, project_id: str) -> int:
        """How many times GO was asked for the project so far."""
        return len(self.control.requests(method="GET", path=f"/projects/{project_id}"))

    def trigger(self, dag_id: str, project_id: str, **conf: Any) -> WatchedRun:
        run_id = f"check-{project_id}"
        self._run_ids.add(run_id)
        self.deployment.trigger(dag_id, run_id, {"project_id": project_id, **conf})
        return WatchedRun(dag_id=dag_id, run_id=run_id, project_id=project_id)

    def observe(self, runs: list[WatchedRun]) -> None:
        """Read each run's state and task instances once, noting every change."""
        now = time.monotonic() - self._started
        for run in runs:
            if run.state in FINISHED:
                continue
            run.state = self.deployment.run_state(run.dag_id, run.run_id)
            for ti in self.deployment.task_instances(run.dag_id, run.run_id):
                run.task_instances[ti["task_id"]] = ti
                seen = run.history.setdefault(ti["task_id"], [])
                current = (ti["state"], int(ti["try_number"]))
                if not seen or seen[-1][1:] != current:
                    seen.append((now, *current))

    def watch(
        self, runs: list[WatchedRun], what: str, until: Callable[[], bool], timeout: float = RUN_TIMEOUT
    ) -> None:
        """Observe ``runs`` until ``until`` holds; a run that ends first, or a timeout, is an error."""

        def reached() -> bool:
            self.observe(runs)
            if until():
                return True
            if ended := [run for run in runs if run.state in FINISHED]:
                raise DeploymentError(
                    f"While waiting for {what}, runs ended: " + " | ".join(run.describe() for run in ended)
                )
            return False

        try:
            wait_for(what, reached, timeout=timeout, interval=0.3)
        except DeploymentError as err:
            if "Timed out" in str(err):
                raise DeploymentError(f"{err}: " + " | ".join(run.describe() for run in runs)) from err
            raise

    def finish(self, runs: list[WatchedRun], timeout: float = RUN_TIMEOUT) -> None:
        """Observe ``runs`` until all have ended, then count the race's failed tries."""

        def all_finished() -> bool:
            self.observe(runs)
            return all(run.state in FINISHED for run in runs)

        try:
            wait_for("the runs to finish", all_finished, timeout=timeout, interval=0.3)
        except DeploymentError as err:
            raise DeploymentError(f"{err}: " + " | ".join(run.describe() for run in runs)) from err
        for run in runs:
            self.race.runs += 1
            # A wait's only cause to fail a try and be retried is the race: GO's answers are scripted.
            self.race.failed_tries += sum(int(ti["try_number"]) - 1 for ti in run.task_instances.values())

    def expect(self, condition: bool, message: str, runs: list[WatchedRun]) -> None:
        if not condition:
            raise DeploymentError(message + ": " + " | ".join(run.describe() for run in runs))

    def waiting(self, run: WatchedRun, mode: str) -> bool:
        """Whether the run's sensor has been seen giving its slot back while it waits."""
        return WAITING_STATE[mode] in run.states()

    def mismatched_tries(self, run: WatchedRun, task_id: str = SENSOR) -> set[int]:
        """The tries of a task that Airflow's scheduler failed with a "state mismatch"."""
        return {
            int(event["try_number"])
            for event in self.deployment.state_mismatches(run.dag_id)
            if event["run_id"] == run.run_id and event["task_id"] == task_id
        }

    def race_note(self, run: WatchedRun) -> str:
        """Which of the run's tries the scheduler race ended, as a note for its description."""
        ended = {task: self.mismatched_tries(run, task) for task in run.history}
        said = [f"{task} try {', '.join(map(str, sorted(tries)))}" for task, tries in ended.items() if tries]
        return f" (state mismatch, the scheduler race, ended {'; '.join(said)})" if said else ""

    def collect_mismatches(self, *dag_ids: str) -> None:
        """Add the scheduler's "state mismatch" events for the runs these checks started."""
        known = {event["event_log_id"] for event in self.race.mismatches}
        for dag_id in dag_ids:
            self.race.mismatches += [
                event
                for event in self.deployment.state_mismatches(dag_id)
                if event["run_id"] in self._run_ids and event["event_log_id"] not in known
            ]

    # The checks

    def wait_gives_back_its_slot(self, mode: str) -> WatchedRun:
        """A sensor in ``mode`` passes through its slot-free state while GO works, then succeeds; the
        task page links to the project while it waits."""
        project_id = self.held_project(f"single-{mode}")
        run = self.trigger(f"proteus_deployment_{mode}", project_id)
        self.watch(
            [run],
            f"the sensor to wait in {WAITING_STATE[mode]} after polling GO twice",
            lambda: self.waiting(run, mode) and self.polls(project_id) >= 2,
        )
        page = f"{self.control.root_url}/web/projects/{project_id}"
        seen: list[dict[str, Any]] = []

        def linked() -> bool:
            seen.append(self.deployment.extra_links(run.dag_id, run.run_id, SENSOR))
            return seen[-1].get("GO project") == page

        # Airflow clears a task's XComs, the link's among them, when each of its tries starts, and
        # writes the link again when the try ends: while a poke's try runs, the link is briefly gone.
        try:
            self.watch([run], "the task page to link to the GO project while it waits", linked, timeout=30)
        except DeploymentError as err:
            raise DeploymentError(f"{err}; the task's links were {seen[-1:]}, not {page}") from err
        self.release(project_id)
        self.finish([run])
        self.expect(run.state == "success", f"The {mode} wait did not succeed", [run])
        self.expect(run.task_instances[SENSOR]["state"] == "success", "The sensor did not succeed", [run])
        return run

    def three_waits_share_one_slot(self, mode: str) -> list[WatchedRun]:
        """With parallelism 1, three waits in ``mode`` are all under way at once, and all finish."""
        projects = [self.held_project(f"shared-{mode}-{n}") for n in range(3)]
        runs = [self.trigger(f"proteus_deployment_{mode}", project) for project in projects]
        self.watch(
            runs,
            f"all three sensors to poll GO and wait in {WAITING_STATE[mode]}",
            lambda: all(self.waiting(run, mode) and self.polls(run.project_id) >= 2 for run in runs),
        )
        for project in projects:
            self.release(project)
        self.finish(runs)
        self.expect(all(run.state == "success" for run in runs), f"Not every {mode} wait succeeded", runs)
        return runs

    def three_pokes_take_turns(self) -> list[WatchedRun]:
        """With parallelism 1, three waits in poke mode hold the one slot in turn."""
        projects = [self.held_project(f"turns-poke-{n}") for n in range(3)]
        runs = [self.trigger("proteus_deployment_poke", project) for project in projects]

        def one_polls_alone() -> bool:
            return any(self.polls(project) >= 3 for project in projects)

        self.watch(runs, "one poke-mode sensor to poll GO three times", one_polls_alone)
        polls = {project: self.polls(project) for project in projects}
        running = [run for run in runs if run.task_instances.get(SENSOR, {}).get("state") == "running"]
        self.expect(
            sorted(polls.values())[:2] == [0, 0] and len(running) == 1,
            f"While one poke-mode sensor held the slot, others polled too ({polls})",
            runs,
        )
        for project in projects:
            self.release(project)
        self.finish(runs)
        self.expect(all(run.state == "success" for run in runs), "Not every poke-mode wait succeeded", runs)
        spans = sorted(
            (run.task_instances[SENSOR]["start_date"], run.task_instances[SENSOR]["end_date"]) for run in runs
        )
        self.expect(
            all(spans[n][1] <= spans[n + 1][0] for n in range(len(spans) - 1)),
            f"Poke-mode sensors overlapped in the one slot: {spans}",
            runs,
        )
        return runs

    def failed_project_fails_the_run(self, mode: str) -> tuple[WatchedRun, str]:
        """A project that ends in FAILURE fails the run without retries, and the log says why."""
        project_id = self.held_project(f"failure-{mode}")
        run = self.trigger(f"proteus_deployment_{mode}", project_id)
        self.watch(
            [run],
            f"the sensor to wait in {WAITING_STATE[mode]}",
            lambda: self.waiting(run, mode) and self.polls(project_id) >= 1,
        )
        self.release(project_id, "FAILURE")
        self.finish([run])
        sensor = run.task_instances[SENSOR]
        self.expect(
            run.state == "failed" and sensor["state"] == "failed", "The FAILURE did not fail the run", [run]
        )
        # Tries before the last may only have been ended by Airflow's scheduler race, never by the FAILURE.
        earlier = set(range(1, int(sensor["try_number"])))
        self.expect(
            earlier <= self.mismatched_tries(run),
            f"Tries {sorted(earlier - self.mismatched_tries(run))} ended without a scheduler state mismatch",
            [run],
        )
        task_log = self.deployment.task_log(run.dag_id, run.run_id, SENSOR, int(sensor["try_number"]))
        reason = f"Project {project_id} reached stage FAILURE"
        self.expect(reason in task_log, f"The sensor's log does not say {reason!r}", [run])
        return run, task_log

    def example_dag_succeeds(self, mode: str) -> WatchedRun:
        """The example DAG submits a job, waits in ``mode`` and summarises the results."""
        project_id = f"example-{mode}-{uuid.uuid4().hex[:8]}"
        self.control.add_project(id=project_id, name=f"Example in {mode} mode", run_seconds=12)
        run = self.trigger(
            "example_proteus", project_id, version_id=f"{project_id}-1.0.0", results_uri=self.results_uri
        )
        self.finish([run])
        self.expect(run.state == "success", "The example DAG did not succeed", [run])
        self.expect(
            self.waiting(run, mode), f"The example's sensor was never seen {WAITING_STATE[mode]}", [run]
        )
        jobs = self.control.requests(
            method="POST", path=f"/projects/{project_id}/versions/{project_id}-1.0.0/job"
        )
        self.expect(len(jobs) == 1, f"GO received {len(jobs)} job submissions instead of one", [run])
        return run

    def consumer_runs_on_the_results(self) -> tuple[WatchedRun, WatchedRun]:
        """The example DAG's results announce the demo project's asset, and the scheduler runs the DAG
        scheduled on it, which reads the results file."""
        project_id, version_id = DEMO_PROJECT_ID, DEMO_VERSION_ID
        self.control.update_project(project_id, run_seconds=8)
        earlier = {entry["dag_run_id"] for entry in self.deployment.runs(CONSUMER)}
        run = self.trigger("example_proteus", project_id, version_id=version_id, results_uri=self.results_uri)
        self.finish([run])
        self.expect(run.state == "success", "The example DAG did not succeed", [run])

        def consumer_run() -> dict[str, Any] | None:
            return next((r for r in self.deployment.runs(CONSUMER) if r["dag_run_id"] not in earlier), None)

        wait_for(f"the asset event to start a run of {CONSUMER}", lambda: consumer_run() is not None, 120)
        started = consumer_run()
        assert started is not None
        consumer = WatchedRun(dag_id=CONSUMER, run_id=started["dag_run_id"], project_id=project_id)
        self.finish([consumer])
        self.expect(
            consumer.state == "success" and started["run_type"] == "asset_triggered",
            f"The consumer's run was {started['run_type']} and ended {consumer.state}",
            [run, consumer],
        )
        return run, consumer

    def connection_form_and_test(self) -> tuple[dict[str, Any], dict[str, tuple[bool, str]]]:
        """The UI's connection form for ``proteus`` and its "Test" button, through the REST API.

        Returns the form's metadata and, by case, what the test answered: a connection to the emulator,
        one with a wrong token, one to a port where nothing listens.
        """
        forms = {
            meta["connection_type"]: meta
            for meta in self.deployment.api("GET", "/connections/hook_meta", prefix="/ui")
        }
        form = forms.get("proteus")
        self.expect(form is not None, f"The UI offers no proteus connection type ({sorted(forms)})", [])
        assert form is not None
        base_url = self.deployment.emulator.base_url
        cases = {
            "good": {"host": base_url, "password": self.deployment.emulator.token},
            "wrong token": {"host": base_url, "password": "tok-WRONG-0001"},
            "unreachable": {"host": f"http://127.0.0.1:{free_port()}/api/v2/go", "password": "tok-X"},
        }
        answers = {}
        for case, fields in cases.items():
            answer = self.deployment.api(
                "POST",
                "/connections/test",
                json={"connection_id": f"proteus_{case.replace(' ', '_')}", "conn_type": "proteus", **fields},
            )
            answers[case] = (bool(answer["status"]), str(answer["message"]))
        return form, answers
