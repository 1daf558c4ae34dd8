"""What every benchmark part shares: budgets, statistics, child processes and servers.

The parent process (``python -m benchmarks``) never imports Airflow. Each part runs as
``python -m benchmarks.<part> --child <budget> <result.json>`` in a fresh interpreter, prints its
figures as it goes and leaves its results as JSON for the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Budget:
    """How much of each measurement to take.

    The full budget keeps ``make bench`` within about eight minutes on a two-core machine; the quick
    one (``--quick``) is for trying changes to the benchmarks while other work shares the machine.
    """

    name: str
    #: Fresh interpreters per import measurement and module set.
    import_samples: int
    #: Pokes of each contender per round, and rounds (each round gives one median).
    poke_iterations: int
    poke_rounds: int
    poke_warmup: int
    #: Concurrent waits per triggerer point.
    trigger_counts: tuple[int, ...]
    trigger_poke_interval: float
    #: Seconds of each measured window, and windows per point (each window gives one figure).
    trigger_window: float
    trigger_windows: int
    #: Seconds the responder's capacity probe runs for each connection style.
    probe_seconds: float
    #: Measured DAG runs of the deferrable sensor, and reschedule-mode tries.
    slot_deferrals: int
    slot_reschedules: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FULL = Budget(
    name="full",
    import_samples=7,
    poke_iterations=400,
    poke_rounds=5,
    poke_warmup=50,
    trigger_counts=(100, 1000, 2500, 5000),
    trigger_poke_interval=5.0,
    trigger_window=10.0,
    trigger_windows=3,
    probe_seconds=3.0,
    slot_deferrals=3,
    slot_reschedules=5,
)
QUICK = Budget(
    name="quick",
    import_samples=3,
    poke_iterations=100,
    poke_rounds=3,
    poke_warmup=20,
    trigger_counts=(100,),
    trigger_poke_interval=2.0,
    trigger_window=4.0,
    trigger_windows=3,
    probe_seconds=1.0,
    slot_deferrals=2,
    slot_reschedules=3,
)
BUDGETS = {budget.name: budget for budget in (FULL, QUICK)}


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values (a figure that could not be taken stays visible as such)."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: a value that was observed, never one interpolated between two."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def rss_bytes() -> int:
    """This process's resident set size now (not the peak, which ``resource`` would give)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a child that imports Airflow: a private home, no examples, no test mode.

    Airflow creates ``~/airflow`` when ``AIRFLOW_HOME`` is unset, so every child gets its own. Python
    may write byte-code caches: a deployment has them (pip writes them at install), and without
    them every import would be measured compiling its source.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "benchmarks" / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


def run_part(module: str, budget: Budget, workdir: Path, **extra_env: str) -> dict[str, Any]:
    """Run ``benchmarks.<module>`` in a child interpreter and return the results it wrote.

    The child's output goes straight to ours, so its figures show as they are taken.
    """
    home = Path(tempfile.mkdtemp(prefix=f"airflow-home-{module}-", dir=workdir))
    result_file = workdir / f"{module}.json"
    started = time.monotonic()
    subprocess.run(  # noqa: S603 - our own interpreter running our own module
        [PYTHON, "-m", f"benchmarks.{module}", "--child", budget.name, str(result_file)],
        cwd=REPO,
        env=airflow_env(home, BENCH_WORKDIR=str(workdir), **extra_env),
        check=True,
    )
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["elapsed_seconds"] = time.monotonic() - started
    return result


def part_workdir(part: str) -> Path:
    """A directory for a part's servers and logs, inside the run's own (kept when the run fails)."""
    return Path(tempfile.mkdtemp(prefix=f"{part}-", dir=os.environ.get("BENCH_WORKDIR")))


def child_arguments(argv: Sequence[str]) -> tuple[Budget, Path]:
    """The budget and the result file a part was started with (``--child NAME FILE``)."""
    if len(argv) != 3 or argv[0] != "--child" or argv[1] not in BUDGETS:
        raise SystemExit(f"usage: python -m benchmarks.<part> --child {{{','.join(BUDGETS)}}} RESULT.json")
    return BUDGETS[argv[1]], Path(argv[2])


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2, sort_keys=True))


_report: TextIO = sys.stdout


def say(message: str) -> None:
    """Print a figure now, not when the buffer fills: a long run shows its progress."""
    print(message, file=_report, flush=True)


def logs_to_file(path: Path) -> None:
    """Send everything this process writes to stdout and stderr to ``path``; :func:`say` still reports.

    Airflow's structlog writes a line per poke to stdout, which would bury the figures.
    """
    global _report
    sys.stdout.flush()
    sys.stderr.flush()
    _report = os.fdopen(os.dup(1), "w")
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


@contextlib.contextmanager
def background(
    command: Sequence[str], port_file: Path, log_file: Path, timeout: float = 30.0
) -> Iterator[int]:
    """Run a server in its own process (so its CPU is not ours) until the block ends; yield its port.

    The server writes its port to ``port_file`` once it accepts connections.
    """
    with log_file.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter running a known module
            list(command),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            deadline = time.monotonic() + timeout
            while not (port_file.exists() and port_file.read_text().strip()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command)} did not start; see {log_file}")
                time.sleep(0.05)
            yield int(port_file.read_text())
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def go_emulator(workdir: Path) -> Iterator[str]:
    """The provider's GO emulator in a process of its own; yields its root URL."""
    port_file = workdir / "emulator.port"
    port_file.unlink(missing_ok=True)
    command = [PYTHON, "-m", "airflow_provider_proteus.testing", "--port", "0", "--port-file", str(port_file)]
    with background(command, port_file, workdir / "emulator.log") as port:
        yield f"http://127.0.0.1:{port}"


def profile_top(root: Any, top: int = 12) -> dict[str, list[dict[str, Any]]]:
    """The functions that cost most in a pyinstrument profile: by own time, and by time including callees.

    ``root`` is pyinstrument's root frame. A function that appears at several depths (recursion, or
    two callers) is counted once per call tree for its inclusive time, so that nothing is counted twice.
    """
    own: dict[str, float] = {}
    inclusive: dict[str, float] = {}

    def walk(frame: Any, ancestors: frozenset[str]) -> None:
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        if not frame.is_synthetic:
            own[name] = own.get(name, 0.0) + frame.total_self_time
            if name not in ancestors:
                inclusive[name] = inclusive.get(name, 0.0) + frame.time
        for child in frame.children:
            walk(child, ancestors | {name})

    walk(root, frozenset())
    total = root.time or 1.0

    def ranked(table: dict[str, float]) -> list[dict[str, Any]]:
        rows = sorted(table.items(), key=lambda item: item[1], reverse=True)[:top]
        return [{"function": name, "seconds": seconds, "share": seconds / total} for name, seconds in rows]

    return {"own": ranked(own), "inclusive": ranked(inclusive), "total_seconds": [{"seconds": root.time}]}


def _frame_name(frame: Any) -> str:
    return f"{frame.function} ({frame.file_path_short}:{frame.line_no})"


def profile_tree(root: Any, anchor: str, depth: int = 3, floor: float = 0.02) -> list[dict[str, Any]]:
    """The call tree under every frame of function ``anchor``, as shares of those frames' time.

    Frames of the same function under the same parent are merged (pyinstrument keeps one per call
    site), and children below ``floor`` of the anchor's time are left out: what a reader needs is
    where the time beyond the HTTP request itself goes.
    """
    anchors: list[Any] = []

    def find(frame: Any) -> None:
        if frame.function == anchor:
            anchors.append(frame)
            return
        for child in frame.children:
            find(child)

    find(root)
    total = sum(frame.time for frame in anchors)
    rows: list[dict[str, Any]] = []

    def walk(frames: list[Any], level: int) -> None:
        merged: dict[str, list[Any]] = {}
        for frame in frames:
            for child in frame.children:
                if not child.is_synthetic:
                    merged.setdefault(_frame_name(child), []).append(child)
        for name, group in sorted(merged.items(), key=lambda item: -sum(f.time for f in item[1])):
            share = sum(frame.time for frame in group) / total
            if share < floor:
                continue
            rows.append({"level": level, "function": name, "share": share})
            if level < depth:
                walk(group, level + 1)

    if total:
        walk(anchors, 1)
    return rows
