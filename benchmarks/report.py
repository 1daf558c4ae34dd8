"""Write ``docs/benchmarks.md`` and ``docs/benchmarks-triggerer.png`` from the parts' results.

Everything in the document comes from one run's results and the machine it ran on, so that the
figures, the verdicts against the goals and the description of how each was taken never disagree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from benchmarks.common import REPO

if TYPE_CHECKING:
    from pathlib import Path

DOC = REPO / "docs" / "benchmarks.md"
PLOT = REPO / "docs" / "benchmarks-triggerer.png"
KIND_LABELS = {"proteus": "ProjectStageTrigger (ours)", "http": "HttpSensorTrigger (HTTP provider)"}
#: Where the throughput plot draws a point that completed no poll (its axis is logarithmic).
RATE_FLOOR = 0.5
#: Cores of other work during a triggerer point above which the report says the machine was busy.
BUSY_OTHER_CORES = 0.1
IMPORT_LABELS = {"proteus": "Proteus (ours)", "http": "HTTP provider", "dbt_cloud": "dbt Cloud provider"}


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def _ms(seconds: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.{digits}f} ms"


def plot(points: list[dict[str, Any]], threshold: float, path: Path) -> None:
    """N against p99 lateness and against polls per second, both triggers on one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (late_axis, rate_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, style in (("proteus", "o-"), ("http", "s--")):
        mine = sorted((p for p in points if p["kind"] == kind), key=lambda p: p["count"])
        counts = [p["count"] for p in mine]
        late_axis.plot(counts, [p["lateness_p99"] for p in mine], style, label=KIND_LABELS[kind])
        # A loop that completed no poll at all is drawn on the axis' floor, and said so.
        rates = [max(p["polls_per_second"], RATE_FLOOR) for p in mine]
        rate_axis.plot(counts, rates, style, label=KIND_LABELS[kind])
        for count, point in zip(counts, mine, strict=True):
            if point["polls_per_second"] < RATE_FLOOR:
                rate_axis.annotate(
                    "no poll completed",
                    (count, RATE_FLOOR),
                    fontsize=7,
                    xytext=(-60, 6),
                    textcoords="offset points",
                )
    counts = sorted({p["count"] for p in points})
    interval = points[0]["poke_interval"]
    late_axis.axhline(threshold, color="grey", linewidth=0.8, linestyle=":")
    late_axis.text(counts[0], threshold * 1.15, "on-schedule limit", color="grey", fontsize=8)
    rate_axis.plot(
        counts, [count / interval for count in counts], ":", color="grey", label="offered (N / interval)"
    )
    for axis in (late_axis, rate_axis):
        axis.set_xscale("log")
        axis.set_xlabel("concurrent waits in one event loop (N)")
        axis.grid(True, which="both", linewidth=0.3)
        axis.legend(fontsize=8)
    late_axis.set_yscale("log")
    late_axis.set_ylabel("p99 lateness of a poll (s)")
    late_axis.set_title(f"Lateness, poke interval {interval:g} s")
    rate_axis.set_yscale("log")
    rate_axis.set_ylabel("polls completed per second")
    rate_axis.set_title("Throughput")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _machine(machine: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    lines = [
        "## The machine",
        "",
        f"- CPU: {machine['cpu_model']}, {machine['cores']} cores",
        f"- Python {machine['python']}; {versions}",
        f"- Load average (1 min) when the run began: {machine['load_start']:.2f}, when it ended: "
        f"{machine['load_end']:.2f}",
        f"- Budget `{machine['budget']}`; the whole run took {machine['elapsed_seconds'] / 60:.1f} minutes",
    ]
    other = [point["other_load_cores"] for point in machine.get("triggerer_points", [])]
    busy = max(other) > BUSY_OTHER_CORES if other else machine["busy"]
    if other and busy:
        lines += [
            "",
            f"Other work used up to {max(other):.2f} cores of the machine during the triggerer points (the "
            "*Other work* column), so absolute figures are higher than on an idle machine; the ratios "
            "compare contenders measured side by side in the same run, in turn, and are the figures to read.",
        ]
    elif busy:
        lines += [
            "",
            "The machine was busy with other work during this run, so absolute figures are higher than on "
            "an idle machine; the ratios compare contenders measured side by side in the same run, in turn, "
            "and are the figures to read.",
        ]
    return [*lines, ""]


def _imports(result: dict[str, Any]) -> list[str]:
    peer = result["cheaper_peer"]
    lines = [
        "## 1. DAG-parse cost: importing the operator and sensor modules",
        "",
        "Each sample is a fresh interpreter that imports `airflow.sdk` first (a DAG file does, and the DAG "
        "processor pays for it once), then times with `time.perf_counter` the import of the provider's "
        "operator and sensor modules. The providers are sampled in turn. The figure is the median of "
        f"{len(result['proteus']['seconds'])} interpreters each.",
        "",
        "| Provider | Modules | Median | Min | Max | New modules | vs ours |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ours = result["proteus"]["median_seconds"]
    for key in ("proteus", "http", "dbt_cloud"):
        entry = result[key]
        lines.append(
            f"| {IMPORT_LABELS[key]} | {', '.join(f'`{m}`' for m in entry['modules'])} | "
            f"{_ms(entry['median_seconds'])} | {_ms(min(entry['seconds']))} | {_ms(max(entry['seconds']))} | "
            f"{entry['new_modules']:.0f} | {entry['median_seconds'] / ours:.2f}x |"
        )
    loaded = result["must_not_import"]
    by_sdk = ", ".join(f"`{name}`" for name in loaded["loaded_by_sdk"]) or "none"
    by_us = ", ".join(f"`{name}`" for name in loaded["loaded_by_import"]) or "none"
    lines += [
        "",
        f"Ours is **{result['ratio_to_cheaper_peer']:.2f}x** the cheaper peer ({IMPORT_LABELS[peer]}); "
        f"the goal is at most 0.5x: {_verdict(result['ratio_to_cheaper_peer'] <= 0.5)}.",
        "",
        "Modules a DAG parse of ours must not load (`httpx`, `fastapi`, `uvicorn`, "
        "`airflow_provider_proteus.results`, `airflow_provider_proteus.testing`), looked up in "
        f"`sys.modules` after the import: loaded by our import: {by_us}; already loaded by `airflow.sdk` "
        f"itself: {by_sdk}.",
        "",
        "Where ours spends it, from `python -X importtime` (cumulative, after `airflow.sdk`):",
        "",
        "| Module | Cumulative | Own |",
        "|---|---:|---:|",
    ]
    for row in result["proteus"]["profile"][:10]:
        lines.append(f"| `{row['module']}` | {row['cumulative_ms']:.1f} ms | {row['self_ms']:.1f} ms |")
    return [*lines, ""]


def _poke(result: dict[str, Any]) -> list[str]:
    labels = {
        "proteus": "`ProjectStageSensor.poke` (ours), a new hook per poke",
        "proteus_one_try": "`ProjectStageSensor.poke` (ours), the pokes of one poke-mode try",
        "http": "`HttpSensor.poke` with a `response_check`",
        "bare": "`requests.Session().get(url).json()` (the floor)",
        "bare_kept_session": "one `Session` kept across GETs (reference only)",
    }
    rounds = len(result["contenders"]["bare"]["round_wall_ms"])
    budget = result["budget"]
    lines = [
        "## 2. Cost of one poke",
        "",
        "A project held at `RUNNING` in the GO emulator, which runs in a process of its own so that its CPU "
        "is not counted. Each contender is warmed up, then run in "
        f"{rounds} rounds of {budget['poke_iterations']} pokes, in turn; every poke is timed with "
        "`time.perf_counter` (wall) and `time.process_time` (this process's CPU). A figure is the median "
        "of the rounds' median pokes. Called on its own, each sensor builds a new hook, and so looks the "
        "connection up (`AIRFLOW_CONN_*` JSON) and opens a new session, on every poke, as a reschedule-mode "
        "poke in a new process must; that is the figure the goal is judged on. Within a poke-mode try, ours "
        "shares one hook among the try's pokes (one lookup, one kept-alive connection), which the second "
        "row measures.",
        "",
        "| Contender | Wall | CPU | Wall vs bare | CPU vs bare |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in labels.items():
        entry = result["contenders"][key]
        ratio = result["ratios"][key]
        lines.append(
            f"| {label} | {entry['wall_ms']:.2f} ms | {entry['cpu_ms']:.2f} ms | {ratio['wall']:.2f}x | "
            f"{ratio['cpu']:.2f}x |"
        )
    first = result["ratios"]["proteus"]
    theirs = result["ratios"]["http"]
    contenders = result["contenders"]
    in_try_vs_kept = contenders["proteus_one_try"]["wall_ms"] / contenders["bare_kept_session"]["wall_ms"]
    lines += [
        "",
        f"Goal: a poke of ours at most {result['goal']}x the bare GET. A poke on its own (every poke in "
        f"reschedule mode, and the first of a poke-mode try): wall {first['wall']:.2f}x, CPU "
        f"{first['cpu']:.2f}x: {_verdict(max(first.values()) <= result['goal'])}. `HttpSensor`, which does "
        f"the same work, is at {theirs['wall']:.2f}x and {theirs['cpu']:.2f}x. What ours adds to the bare "
        "GET is in the profile below: Airflow's connection lookup (`get_connection`), the log line naming "
        "the project and its stage, reading the connection's settings, and closing the session; the "
        "first two are what `HttpSensor` pays too. In reschedule mode each poke is a task process of its "
        "own, which costs a hundred times more than the poke (section 4). Within a poke-mode try, where "
        "the pokes share a hook, a poke is "
        f"{in_try_vs_kept:.2f}x a GET on a kept session (the fair floor for it).",
        "",
    ]
    if "profile" in result:
        lines += [
            "Where a poke of ours goes (pyinstrument over repeated pokes, share of the time inside `poke`):",
            "",
            "```",
            *(
                f"{'  ' * row['level']}{row['share'] * 100:5.1f} %  {row['function']}"
                for row in result["profile"]["tree"]
            ),
            "```",
            "",
        ]
    return lines


def _triggerer(result: dict[str, Any], plot_name: str) -> list[str]:
    points = result["points"]
    budget = result["budget"]
    interval = budget["trigger_poke_interval"]
    threshold = result["on_schedule_share"] * interval
    capacity = result["capacity"]
    lines = [
        "## 3. Triggerer capacity",
        "",
        "N waits run as tasks of one `asyncio.run` event loop in a fresh interpreter, each iterating a "
        "trigger's `run()` as the triggerer does, their first polls spread evenly over one poke interval "
        f"({interval:g} s). They poll a fixed responder (`benchmarks/responder.py`: a raw asyncio HTTP/1.1 "
        'server on uvloop, in its own process) that answers every poll "not yet": a GO project document '
        "with stage `RUNNING` for `ProjectStageTrigger`, HTTP 404 for `HttpSensorTrigger` (which fires on "
        "any other answer; it is what `HttpSensor(deferrable=True)` defers to). Both triggers get their "
        "connection from an `AIRFLOW_CONN_*` JSON variable through Airflow's async connection lookup, which "
        "works outside a triggerer. After a warm-up of two intervals the loop is measured over "
        f"{budget['trigger_windows']} windows of {budget['trigger_window']:g} s; a figure is the median of "
        "the windows.",
        "",
        "- **Lateness**: the responder stamps each request's arrival with the monotonic clock (shared by all "
        "processes on Linux). Both triggers sleep `poke_interval` after each answer, so a poll is late by "
        "the time since the same wait's previous poll minus `poke_interval`. A poll still awaited at a "
        "window's end counts with how late it is by then, so that waits an overloaded loop never gets to "
        "stay in the figures.",
        f"- **On schedule**: a wait that polled in the window, none of whose polls was more than "
        f"{threshold:g} s ({result['on_schedule_share']:.0%} of the interval) late, and that is not overdue "
        "at the window's end. *Per core* divides that count by the CPU cores the loop's process used.",
        "- **CPU**: the loop process's `time.process_time()`; **memory**: its resident set after the run "
        "minus before the triggers were made, per wait. *Other work* is the CPU (in cores) that the rest "
        "of the machine used meanwhile (`/proc/stat` less the loop's and the responder's): on a two-core "
        "machine, what it takes the loop cannot have. *Loop lag* is how late the loop woke a 100 ms sleeper.",
        f"- **Responder capacity** (64 concurrent clients in one process, so a lower bound): "
        f"{capacity['new_connection_per_request']:.0f} requests/s with a new connection per request (as "
        f"`HttpSensorTrigger` connects: a new aiohttp session per poll), {capacity['kept_alive']:.0f} kept "
        "alive (as ours polls: the waits on one connection share a pooled client). The most any point "
        "asks for is "
        f"{max(p['offered_polls_per_second'] for p in points):.0f} polls/s; the responder's own CPU during "
        "each point is in the table.",
        "",
        f"![Triggerer capacity]({plot_name})",
        "",
        "| Trigger | N | Polls/s (offered) | Lateness p50 | p99 | On schedule | CPU (cores) | CPU per poll "
        "| On schedule per core | RSS per wait | Loop lag p99 | Responder CPU | Other work |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for point in sorted(points, key=lambda p: (p["count"], p["kind"] != "proteus")):
        lines.append(
            f"| {KIND_LABELS[point['kind']]} | {point['count']} | {point['polls_per_second']:.1f} "
            f"({point['offered_polls_per_second']:.0f}) | {_ms(point['lateness_p50'])} | "
            f"{_ms(point['lateness_p99'])} | {point['on_schedule']:.0f} | "
            f"{point['cpu_seconds_per_second']:.2f} | "
            f"{_ms(point['cpu_ms_per_poll'] / 1000, 2)} | {point['on_schedule_per_core']:.0f} | "
            f"{point['rss_bytes_per_wait'] / 1024:.0f} KiB | {_ms(point['loop_lag_p99'])} | "
            f"{point['responder_cpu_per_second']:.2f} | {point['other_load_cores']:.2f} |"
        )
    by = {(p["kind"], p["count"]): p for p in points}
    lines += ["", "Goals:", ""]
    for count in sorted({p["count"] for p in points}):
        ours, theirs = by.get(("proteus", count)), by.get(("http", count))
        if ours is None or theirs is None:
            continue
        if theirs["on_schedule_per_core"] > 0:
            ratio = ours["on_schedule_per_core"] / theirs["on_schedule_per_core"]
            text = f"{ratio:.2f}x"
        else:
            ratio, text = (math.inf if ours["on_schedule_per_core"] > 0 else 0.0), "n/a (theirs 0)"
        lines.append(
            f"- N={count}: waits on schedule per core, ours / theirs: {text} (goal at least 2x): "
            f"{_verdict(ratio >= 2)}; waits on schedule, ours {ours['on_schedule']:.0f} and theirs "
            f"{theirs['on_schedule']:.0f} of {count}."
        )
    at_thousand = by.get(("proteus", 1000))
    if at_thousand is not None:
        kept = at_thousand["on_schedule"] >= 0.99 * 1000 and at_thousand["lateness_p99"] <= threshold
        lines.append(
            f"- Ours at N=1000: {at_thousand['on_schedule']:.0f} of 1000 waits on schedule, p99 lateness "
            f"{_ms(at_thousand['lateness_p99'])} (goal: on schedule): {_verdict(kept)}."
        )
    for kind, profile in result.get("profiles", {}).items():
        what = (
            "a `ProjectStageTrigger` poll (`aget_project` on the shared pooled client)"
            if kind == "proteus"
            else "an `HttpSensorTrigger` poll (a new aiohttp session and a GET, as its `run` makes it)"
        )
        lines += [
            "",
            f"Where {what} goes: pyinstrument over 60 sequential polls in one event loop, share of one poll:",
            "",
            "```",
            *(
                f"{'  ' * row['level']}{row['share'] * 100:5.1f} %  {row['function']}"
                for row in profile["tree"]
            ),
            "```",
        ]
    return [*lines, ""]


def _slots(result: dict[str, Any]) -> list[str]:
    start_up = result["start_up"]
    per_try = result["slot_seconds_per_try"]
    default = result["per_hour"][str(int(result["default_interval"]))]
    deferrable = result["deferrable_per_wait"]
    lines = [
        "## 4. Worker-slot time per hour of waiting",
        "",
        "How each figure was derived:",
        "",
        "- **poke** holds its slot for the whole wait: 3,600 s per hour, by definition (no run needed).",
        "- **reschedule** holds it for one try per poke interval. A try's worker-side cost was measured on "
        "real DAG runs: `dag.test()` of `benchmarks/dags/bench_slots.py` against the GO emulator, with "
        "Airflow's in-process execution API on SQLite. Every try of `dag.test()` goes through "
        "`airflow.sdk.execution_time.supervisor.run_task_in_process`, which the benchmark wraps and times: "
        "the execution API's start call, the context, rendering, `execute` with its one poke, and the "
        "reschedule report. The first run of the process (the API's warm-up) is not counted. "
        f"Median of {len(result['reschedule_try_seconds'])} tries: "
        f"**{_ms(median_of(result['reschedule_try_seconds']))}**.",
        "- Task start-up, which `dag.test()` does not pay, was measured in fresh interpreters: parsing the "
        f"DAG file with `airflow.sdk` already imported, **{_ms(start_up['dag_file_parse'])}** (a forking "
        "worker's task process: LocalExecutor, Celery), and a whole new interpreter that imports Airflow "
        f"and the DAG file, **{_ms(start_up['fresh_interpreter'])}** (a worker that starts a process per "
        "try). A try therefore holds a slot for "
        f"{per_try['low']:.2f} s, or {per_try['high']:.2f} s with a new interpreter per try. A worker that "
        "starts a container per try (the KubernetesExecutor's pod) pays its start-up on top, which is not "
        "measured here.",
        "- **deferrable** holds the slot for the try that pokes once and defers "
        f"({_ms(median_of(result['defer_try_seconds']))}) and for the try that resumes from the event "
        f"({_ms(median_of(result['resume_try_seconds']))}), each plus start-up; while the trigger waits, "
        "nothing.",
        "",
        "| Poke interval | poke | reschedule | reschedule, new interpreter per try "
        "| deferrable while waiting |",
        "|---:|---:|---:|---:|---:|",
    ]
    for interval, row in sorted(result["per_hour"].items(), key=lambda item: float(item[0])):
        lines.append(
            f"| {interval} s | 3600 s/h | {row['reschedule']:.1f} s/h ({row['reschedule'] / 36:.2f} %) | "
            f"{row['reschedule_upper']:.1f} s/h ({row['reschedule_upper'] / 36:.2f} %) | 0 s/h |"
        )
    share = default["reschedule_upper"] / 3600
    lines += [
        "",
        f"A deferrable wait costs its slot {deferrable['low']:.2f} s once "
        f"(at most {deferrable['high']:.2f} s), "
        "however long it waits.",
        "",
        f"Goals: reschedule at most 1 % of poke at the default 15-minute interval: "
        f"{default['reschedule'] / 36:.2f} % ({share * 100:.2f} % with a new interpreter per try): "
        f"{_verdict(share <= result['goal_share'])}; "
        "deferrable about 0 while waiting: 0 s/h: met.",
        "",
    ]
    return lines


def median_of(values: list[float]) -> float:
    from benchmarks.common import median

    return median(values)


def write(
    machine: dict[str, Any], results: dict[str, dict[str, Any]], doc: Path, plot_file: Path
) -> list[Path]:
    """Write the report to ``doc`` (and the triggerer plot, when that part ran); return what was written."""
    written = [doc]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m benchmarks`); do not edit by hand. It compares the provider "
        "with Airflow's HTTP provider (and, for DAG parsing, the dbt Cloud provider) on what a deployment "
        "pays: DAG-parse time, the cost of a poke, how many deferred waits a triggerer keeps on schedule, "
        "and worker-slot time while waiting. Every figure is a median over repeated measurements; peers "
        "are measured in the same run.",
        "",
        *_machine(machine),
    ]
    if "imports" in results:
        lines += _imports(results["imports"])
    if "poke" in results:
        lines += _poke(results["poke"])
    if "triggerer" in results:
        result = results["triggerer"]
        threshold = result["on_schedule_share"] * result["budget"]["trigger_poke_interval"]
        plot(result["points"], threshold, plot_file)
        written.append(plot_file)
        lines += _triggerer(result, plot_file.name)
    if "slots" in results:
        lines += _slots(results["slots"])
    doc.write_text("\n".join(lines).rstrip() + "\n")
    return written
