"""Cost of one sensor poke: ``ProjectStageSensor.poke``, the HTTP provider's ``HttpSensor`` and a bare GET.

All three read the same project from the GO emulator, which runs in a process of its own so that
its CPU is not counted here; the project is held at ``RUNNING``, so every poke is a "not yet".

- ``ProjectStageSensor(...).poke(context)``: a new hook per poke (a reschedule-mode poke is a new
  process, so nothing could be kept), the connection from ``AIRFLOW_CONN_PROTEUS_BENCH``.
- ``HttpSensor(...).poke(context)`` with the token header and a ``response_check`` that reads the
  stage, the connection from ``AIRFLOW_CONN_HTTP_BENCH``.
- ``requests.Session().get(url).json()``: a new session, one GET and the JSON decode, nothing else;
  the floor for a poke that reads one document. The same with one session kept across GETs is shown
  for reference, since no sensor can keep a session across reschedules.

Each contender is warmed up, then run in rounds (in turn, so that load changes hit all alike);
every poke is timed with ``time.perf_counter`` (wall) and ``time.process_time`` (this process's
CPU). A round gives the median poke; the figure is the median of the rounds' medians.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    child_arguments,
    go_emulator,
    logs_to_file,
    median,
    part_workdir,
    profile_top,
    profile_tree,
    say,
    write_result,
)

if TYPE_CHECKING:
    from collections.abc import Callable

PROJECT_ID = "bench-running-1"
LABELS = {
    "proteus": "ProjectStageSensor.poke",
    "proteus_one_try": "  the same, within a try",
    "http": "HttpSensor.poke",
    "bare": "requests.Session().get",
    "bare_kept_session": "one Session, many GETs",
}
#: The contenders the goal compares; the kept session is for reference only.
GOAL = 1.2


def contenders(root_url: str, token: str) -> dict[str, Callable[[], object]]:
    """One poke of each contender, as a callable; the sensors are built once, as a DAG parse does."""
    import requests
    from airflow.providers.http.sensors.http import HttpSensor

    from airflow_provider_proteus.sensors.proteus import ProjectStageSensor

    headers = {"X-Orbitalinsight-Auth-Token": token}
    url = f"{root_url}/api/v2/go/projects/{PROJECT_ID}"
    ours = ProjectStageSensor(task_id="bench_proteus", project_id=PROJECT_ID, proteus_conn_id="proteus_bench")
    theirs = HttpSensor(
        task_id="bench_http",
        http_conn_id="http_bench",
        endpoint=f"api/v2/go/projects/{PROJECT_ID}",
        headers=headers,
        response_check=lambda response: response.json()["data"]["stage"] == "COMPLETED",
    )
    kept = requests.Session()

    def bare() -> object:
        with requests.Session() as session:
            return session.get(url, headers=headers, timeout=60).json()["data"]["stage"]

    def bare_kept_session() -> object:
        return kept.get(url, headers=headers, timeout=60).json()["data"]["stage"]

    in_a_try = ProjectStageSensor(
        task_id="bench_proteus_try", project_id=PROJECT_ID, proteus_conn_id="proteus_bench"
    )
    # A poke-mode try shares one hook among its pokes, as execute() sets up. The scope is entered
    # once and kept referenced (by the poke below), so that it stays open for the whole benchmark.
    try_scope = in_a_try._one_hook()
    try_scope.__enter__()

    def poke_in_a_try() -> object:
        assert try_scope is not None
        return in_a_try.poke(context)

    context: Any = {}
    return {
        "proteus": lambda: ours.poke(context),
        "proteus_one_try": poke_in_a_try,
        "http": lambda: theirs.poke(context),
        "bare": bare,
        "bare_kept_session": bare_kept_session,
    }


def timed(poke: Callable[[], object], iterations: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(iterations):
        wall, cpu = time.perf_counter(), time.process_time()
        poke()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls, cpus


def profile(poke: Callable[[], object], iterations: int) -> dict[str, Any]:
    """Where one of our pokes spends its time, from pyinstrument over ``iterations`` pokes."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(iterations):
        poke()
    session = profiler.stop()
    return {**profile_top(session.root_frame()), "tree": profile_tree(session.root_frame(), "poke", depth=4)}


def run(root_url: str, token: str, iterations: int, rounds: int, warmup: int) -> dict[str, Any]:
    pokes = contenders(root_url, token)
    for poke in pokes.values():
        for _ in range(warmup):
            poke()
    round_walls: dict[str, list[float]] = {key: [] for key in pokes}
    round_cpus: dict[str, list[float]] = {key: [] for key in pokes}
    order = list(pokes)
    for number in range(rounds):
        for key in order[number % len(order) :] + order[: number % len(order)]:
            walls, cpus = timed(pokes[key], iterations)
            round_walls[key].append(median(walls))
            round_cpus[key].append(median(cpus))
    results: dict[str, Any] = {}
    for key in pokes:
        results[key] = {
            "wall_ms": 1000 * median(round_walls[key]),
            "cpu_ms": 1000 * median(round_cpus[key]),
            "round_wall_ms": [1000 * value for value in round_walls[key]],
            "round_cpu_ms": [1000 * value for value in round_cpus[key]],
        }
    for key in pokes:
        say(
            f"  {LABELS[key]:<24} wall {results[key]['wall_ms']:6.2f} ms "
            f"({results[key]['wall_ms'] / results['bare']['wall_ms']:.2f}x bare), "
            f"CPU {results[key]['cpu_ms']:6.2f} ms "
            f"({results[key]['cpu_ms'] / results['bare']['cpu_ms']:.2f}x bare)"
        )
    ratios = {
        key: {
            "wall": results[key]["wall_ms"] / results["bare"]["wall_ms"],
            "cpu": results[key]["cpu_ms"] / results["bare"]["cpu_ms"],
        }
        for key in pokes
    }
    out: dict[str, Any] = {"contenders": results, "ratios": ratios, "goal": GOAL}
    if max(ratios["proteus"].values()) > GOAL:
        out["profile"] = profile(pokes["proteus"], max(100, iterations))
        say(f"  ours misses {GOAL}x the bare GET; pyinstrument, share of a poke spent in:")
        for row in out["profile"]["tree"]:
            say(f"    {'  ' * row['level']}{row['share'] * 100:5.1f} %  {row['function']}")
    return out


def main(argv: list[str]) -> int:
    budget, result_file = child_arguments(argv)
    workdir = part_workdir("poke")
    logs_to_file(workdir / "airflow.log")
    say(
        f"Cost of one poke: median of {budget.poke_rounds} rounds of {budget.poke_iterations} pokes each, "
        "against the GO emulator in its own process"
    )
    with go_emulator(workdir) as root_url:
        from airflow_provider_proteus.testing import DEFAULT_TOKEN, EmulatorClient

        EmulatorClient(root_url).add_project(id=PROJECT_ID, name="Benchmark", stages=["RUNNING"])
        os.environ["AIRFLOW_CONN_PROTEUS_BENCH"] = json.dumps(
            {"conn_type": "proteus", "host": f"{root_url}/api/v2/go", "password": DEFAULT_TOKEN}
        )
        host, port = root_url.removeprefix("http://").split(":")
        os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
        )
        result = run(root_url, DEFAULT_TOKEN, budget.poke_iterations, budget.poke_rounds, budget.poke_warmup)
    write_result(result_file, {**result, "budget": budget.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
