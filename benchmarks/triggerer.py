"""Triggerer capacity: many deferred waits polling in one asyncio event loop, as the triggerer runs them.

For each trigger class and each count N, a fresh interpreter starts N triggers' ``run()`` async
generators as tasks of one ``asyncio.run`` loop (the triggerer's own loop is a plain ``asyncio.run``),
their first polls spread evenly over one poke interval, as waits that deferred at different times
would be. They poll the fixed responder (:mod:`benchmarks.responder`), which answers every poll
"not yet": ``RUNNING`` for ``ProjectStageTrigger``, 404 for the HTTP provider's
``HttpSensorTrigger`` (the only answer that keeps it waiting). After a warm-up of two poke
intervals, the loop is measured over a few windows of fixed length.

**Lateness.** The responder stamps each request's arrival. Both triggers sleep ``poke_interval``
after each answer, so a wait that keeps its schedule polls every ``poke_interval`` plus one round
trip; a poll is late by ``gap - poke_interval``, where ``gap`` is the time since the same wait's
previous poll arrived, and a poll still awaited at a window's end counts with how late it is so far
(a wait the loop never gets to must not drop out of the figures). A wait is *on schedule* in a
window when it polled in the window, none of its polls in the window was later than 10 % of the
poke interval, and it is not overdue at the window's end.

**CPU and memory.** CPU is this process's ``time.process_time()`` per window (a thread of its own
takes the marks, so that a saturated loop cannot delay them; its share is a few milliseconds per
window); the responder's CPU is its own process's and is reported apart. Memory is the resident set
size after the run minus before the triggers were made, divided by N.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    PYTHON,
    Budget,
    background,
    child_arguments,
    median,
    part_workdir,
    percentile,
    profile_top,
    profile_tree,
    rss_bytes,
    say,
    write_result,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KINDS = ("proteus", "http")
LABELS = {"proteus": "ProjectStageTrigger", "http": "HttpSensorTrigger"}
#: A poll later than this share of the poke interval breaks a wait's schedule.
ON_SCHEDULE_SHARE = 0.10


def connections(url: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values that point both triggers' hooks at the responder."""
    host, port = url.removeprefix("http://").split(":")
    return {
        "AIRFLOW_CONN_PROTEUS_BENCH": json.dumps(
            {"conn_type": "proteus", "host": f"{url}/api/v2/go", "password": "bench-token"}
        ),
        "AIRFLOW_CONN_HTTP_BENCH": json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
        ),
    }


def make_trigger(kind: str, wait_id: str, interval: float) -> Any:
    """One trigger of ``kind``, constructed the way its sensor constructs it when it defers."""
    if kind == "proteus":
        from airflow_provider_proteus.triggers.proteus import ProjectStageTrigger

        return ProjectStageTrigger(
            project_id=wait_id, proteus_conn_id="proteus_bench", poke_interval=interval
        )
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    return HttpSensorTrigger(
        endpoint=f"http/projects/{wait_id}",
        http_conn_id="http_bench",
        method="GET",
        data={},
        headers={},
        extra_options={},
        poke_interval=interval,
    )


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (``/proc/stat``), idle excluded.

    Minus this process's and the responder's, it tells how much of the machine other work took
    while a point ran, which the report shows beside the figures.
    """
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _fetch_arrivals(url: str) -> dict[str, Any]:
    """The responder's arrivals since the last fetch (from the measuring thread, not the loop)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("GET", "/_arrivals")
        result: dict[str, Any] = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return result


async def _drive(trigger: Any, start_at: float, events: list[Any]) -> None:
    """What the triggerer does with a trigger: iterate its ``run()`` until it yields an event."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    run: AsyncIterator[Any] = trigger.run()
    async for event in run:
        events.append(event)
        return


LAG_PERIOD = 0.1


async def _loop_lag(samples: list[tuple[float, float]]) -> None:
    """How late the loop wakes a 100 ms sleeper: a direct sign of a saturated event loop."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(LAG_PERIOD)
        woke = time.monotonic()
        samples.append((woke, woke - asked - LAG_PERIOD))


async def _run_waits(
    kind: str, ids: list[str], interval: float, ready: threading.Event, state: dict[str, Any]
) -> None:
    """Start every wait, then keep the loop running them until the process ends."""
    triggers = [make_trigger(kind, wait_id, interval) for wait_id in ids]
    start = time.monotonic()
    state["start"] = start
    state["tasks"] = [
        asyncio.create_task(_drive(trigger, start + index * interval / len(ids), state["events"]))
        for index, trigger in enumerate(triggers)
    ]
    lag = asyncio.create_task(_loop_lag(state["lag"]))
    ready.set()
    await lag


def _figures(
    arrivals: dict[str, list[float]],
    first_due: dict[str, float],
    marks: list[tuple[float, float, float, float]],
    lags: list[list[float]],
    interval: float,
) -> list[dict[str, float]]:
    """Each window's figures, from the arrival record and the marks taken at the window's ends.

    A wait whose next poll is overdue at a window's end counts with how late that poll is so far,
    so that the waits a saturated loop never gets to are not left out of the lateness.
    """
    threshold = ON_SCHEDULE_SHARE * interval
    for times in arrivals.values():
        times.sort()
    windows = []
    for ((t0, cpu0, server0, busy0), (t1, cpu1, server1, busy1)), lag in zip(
        itertools.pairwise(marks), lags, strict=True
    ):
        lateness: list[float] = []
        polls = 0
        on_schedule = 0
        for wait_id, times in arrivals.items():
            late = [b - a - interval for a, b in itertools.pairwise(times) if t0 <= b < t1]
            polls += sum(1 for t in times if t0 <= t < t1)
            lateness += late
            last = max((t for t in times if t < t1), default=None)
            pending = t1 - (first_due[wait_id] if last is None else last + interval)
            overdue = pending > threshold
            if overdue:
                lateness.append(pending)
            if late and max(late) <= threshold and not overdue:
                on_schedule += 1
        wall = t1 - t0
        cpu = cpu1 - cpu0
        windows.append(
            {
                "polls_per_second": polls / wall,
                "lateness_p50": percentile(lateness, 0.50),
                "lateness_p99": percentile(lateness, 0.99),
                "on_schedule": on_schedule,
                "cpu_seconds_per_second": cpu / wall,
                "cpu_ms_per_poll": 1000 * cpu / polls if polls else float("nan"),
                "responder_cpu_per_second": (server1 - server0) / wall,
                "other_load_cores": max(0.0, (busy1 - busy0 - cpu - (server1 - server0)) / wall),
                "loop_lag_p99": percentile(lag, 0.99),
                "window_seconds": wall,
            }
        )
    return windows


def measure_point(kind: str, count: int, budget: Budget, url: str) -> dict[str, Any]:
    """Run ``count`` waits in an event loop and measure them from a thread of their own.

    A saturated event loop runs every ready callback before it looks at its timers again, so a
    measurement inside the loop would come late by as much as the waits do; a thread takes the
    marks on time, and the process ends without unwinding a loop that may be minutes behind.
    """
    interval = budget.trigger_poke_interval
    rss_before = rss_bytes()
    ids = [f"{kind}-{count}-{index}" for index in range(count)]
    state: dict[str, Any] = {"events": [], "lag": []}
    ready = threading.Event()
    loop_thread = threading.Thread(
        target=lambda: asyncio.run(_run_waits(kind, ids, interval, ready, state)),
        name="event-loop",
        daemon=True,
    )
    loop_thread.start()
    ready.wait()
    time.sleep(max(0.0, state["start"] + 2 * interval - time.monotonic()))

    arrivals: dict[str, list[float]] = {wait_id: [] for wait_id in ids}
    marks: list[tuple[float, float, float, float]] = []
    lags: list[list[float]] = []

    def mark() -> None:
        fetched = _fetch_arrivals(url)
        for wait_id, times in fetched["arrivals"].items():
            if wait_id in arrivals:
                arrivals[wait_id].extend(times)
        now = time.monotonic()
        marks.append((now, time.process_time(), float(fetched["cpu_seconds"]), machine_busy_seconds()))
        if len(marks) > 1:
            samples = [lag for woke, lag in list(state["lag"]) if marks[-2][0] <= woke < now]
            woken = state["lag"][-1][0] if state["lag"] else marks[-2][0]
            # A loop that has not woken the sleeper since is at least that late now.
            lags.append([*samples, max(0.0, now - woken - LAG_PERIOD)])

    mark()
    for _ in range(budget.trigger_windows):
        time.sleep(max(0.0, marks[-1][0] + budget.trigger_window - time.monotonic()))
        mark()
    rss_after = rss_bytes()
    first_due = {wait_id: state["start"] + index * interval / count for index, wait_id in enumerate(ids)}
    windows = _figures(arrivals, first_due, marks, lags, interval)
    # A window in which no poll arrived has no lateness (and no CPU per poll): it counts in the
    # on-schedule figure, as zero, but not in the medians of what it has none of.
    figures: dict[str, Any] = {
        key: median([window[key] for window in windows if not math.isnan(window[key])]) for key in windows[0]
    }
    cores = figures["cpu_seconds_per_second"]
    figures.update(
        kind=kind,
        count=count,
        poke_interval=interval,
        offered_polls_per_second=count / interval,
        on_schedule_per_core=figures["on_schedule"] / cores if cores > 0 else float("nan"),
        rss_delta_bytes=rss_after - rss_before,
        rss_bytes_per_wait=(rss_after - rss_before) / count,
        events=len(state["events"]),
        windows=windows,
    )
    return figures


def point_main(kind: str, count: int, budget: Budget, url: str, result_file: Path) -> None:
    """One point, in this (fresh) interpreter, which ends as soon as the figures are written."""
    os.environ.update(connections(url))
    make_trigger(kind, "import-only", 1.0)
    write_result(result_file, measure_point(kind, count, budget, url))
    sys.stdout.flush()
    os._exit(0)


async def _proteus_poll(hook: Any) -> None:
    await hook.aget_project("profile-1")


async def _http_poll(hook: Any) -> None:
    """One poll as ``HttpSensorTrigger.run`` makes it: a new aiohttp session, a GET, a 404."""
    import aiohttp
    from airflow.providers.common.compat.sdk import AirflowException

    try:
        async with aiohttp.ClientSession() as session:
            await hook.run(session=session, endpoint="http/projects/profile-1", data={}, headers={})
    except AirflowException as err:
        if not str(err).startswith("404"):
            raise


async def _polls(kind: str, count: int) -> None:
    if kind == "proteus":
        from airflow_provider_proteus.hooks.proteus import ProteusHook

        ours = ProteusHook(proteus_conn_id="proteus_bench")
        for _ in range(count):
            await _proteus_poll(ours)
        return
    from airflow.providers.http.hooks.http import HttpAsyncHook

    theirs = HttpAsyncHook(method="GET", http_conn_id="http_bench")
    for _ in range(count):
        await _http_poll(theirs)


#: The function of each trigger's profile that one poll is, whose time the shares are of.
PROFILE_ANCHORS = {"proteus": "_proteus_poll", "http": "_http_poll"}


def profile_main(kind: str, url: str, result_file: Path, polls: int = 60) -> None:
    """Where one poll of ``kind`` goes: pyinstrument over sequential polls, in a fresh interpreter."""
    os.environ.update(connections(url))
    from pyinstrument import Profiler

    async def sequence() -> None:
        # One loop, as the triggerer has: ours keeps its pooled connection between polls.
        await _polls(kind, 3)
        profiler.start()
        await _polls(kind, polls)
        profiler.stop()

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    asyncio.run(sequence())
    if profiler.last_session is None:
        raise RuntimeError("pyinstrument recorded no session")
    root = profiler.last_session.root_frame()
    write_result(
        result_file,
        {**profile_top(root), "tree": profile_tree(root, PROFILE_ANCHORS[kind], depth=6, floor=0.05)},
    )


def misses(points: list[dict[str, Any]], interval: float) -> bool:
    """Whether ours misses a goal: fewer waits on schedule per core than twice theirs, or late at 1,000."""
    by = {(point["kind"], point["count"]): point for point in points}
    for (kind, count), ours in by.items():
        theirs = by.get(("http", count))
        if kind == "proteus" and theirs is not None:
            if not ours["on_schedule_per_core"] >= 2 * theirs["on_schedule_per_core"]:
                return True
            if count == 1000 and ours["lateness_p99"] > ON_SCHEDULE_SHARE * interval:
                return True
    return False


def describe(point: dict[str, Any]) -> str:
    return (
        f"  {LABELS[point['kind']]:<20} N={point['count']:>5}: {point['polls_per_second']:7.1f} polls/s "
        f"(offered {point['offered_polls_per_second']:.0f}), "
        f"lateness p50 {point['lateness_p50'] * 1000:7.1f} ms "
        f"p99 {point['lateness_p99'] * 1000:8.1f} ms, on schedule {point['on_schedule']:>5.0f}, "
        f"CPU {point['cpu_seconds_per_second']:.2f} core ({point['cpu_ms_per_poll']:.2f} ms/poll), "
        f"RSS {point['rss_bytes_per_wait'] / 1024:.1f} KiB/wait, responder "
        f"{point['responder_cpu_per_second']:.2f} core, other work {point['other_load_cores']:.2f} cores"
    )


def part_main(budget: Budget, result_file: Path) -> None:
    workdir = part_workdir("triggerer")
    port_file = workdir / "responder.port"
    command = [PYTHON, "-m", "benchmarks.responder", "serve", str(port_file)]
    say(f"Triggerer capacity (poke interval {budget.trigger_poke_interval:g} s):")
    with background(command, port_file, workdir / "responder.log") as port:
        url = f"http://127.0.0.1:{port}"
        probe_file = workdir / "probe.json"
        subprocess.run(  # noqa: S603 - our own module
            [PYTHON, "-m", "benchmarks.responder", "probe", url, str(budget.probe_seconds), str(probe_file)],
            check=True,
        )
        capacity = json.loads(probe_file.read_text())
        say(
            f"  responder capacity (64 concurrent clients, lower bound): "
            f"{capacity['new_connection_per_request']:.0f} req/s with a new connection per request, "
            f"{capacity['kept_alive']:.0f} req/s kept alive"
        )
        points = []
        for number, count in enumerate(budget.trigger_counts):
            # Alternate which trigger goes first, so that drift on the machine does not favour one.
            for kind in KINDS if number % 2 == 0 else tuple(reversed(KINDS)):
                point_file = workdir / f"{kind}-{count}.json"
                # Both triggers log every poll (ours the stage, the HTTP hook a warning about the 404),
                # as they would in the triggerer; the lines go to a file, not to this report.
                command = [PYTHON, "-m", "benchmarks.triggerer", "--point", kind, str(count), budget.name]
                with point_file.with_suffix(".log").open("wb") as log:
                    subprocess.run(  # noqa: S603 - our own module
                        [*command, url, str(point_file)], check=True, stdout=log, stderr=subprocess.STDOUT
                    )
                point = json.loads(point_file.read_text())
                say(describe(point))
                points.append(point)
        result = {
            "capacity": capacity,
            "points": points,
            "on_schedule_share": ON_SCHEDULE_SHARE,
            "budget": budget.to_json(),
        }
        if misses(points, budget.trigger_poke_interval):
            say("  ours misses a goal; pyinstrument, share of one poll spent in:")
            result["profiles"] = {}
            for kind in KINDS:
                profile_file = workdir / f"profile-{kind}.json"
                with profile_file.with_suffix(".log").open("wb") as log:
                    subprocess.run(  # noqa: S603 - our own module
                        [PYTHON, "-m", "benchmarks.triggerer", "--profile", kind, url, str(profile_file)],
                        check=True,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                result["profiles"][kind] = json.loads(profile_file.read_text())
                say(f"  {LABELS[kind]}:")
                for row in result["profiles"][kind]["tree"]:
                    say(f"    {'  ' * row['level']}{row['share'] * 100:5.1f} %  {row['function']}")
    write_result(result_file, result)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--profile"]:
        profile_main(argv[1], argv[2], Path(argv[3]))
        return 0
    if argv[:1] == ["--point"]:
        from benchmarks.common import BUDGETS

        kind, count, budget_name, url, point_file = argv[1:]
        point_main(kind, int(count), BUDGETS[budget_name], url, Path(point_file))
        return 0
    budget, result_file = child_arguments(argv)
    part_main(budget, result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
