"""Run every benchmark part in turn, print the figures as they come, and write the docs.

``python -m benchmarks`` runs the full budget (about eight minutes on two cores); ``--quick`` a small
one for trying changes; ``--only imports poke`` a subset. The parent never imports Airflow: each
part runs in a child interpreter with its own ``AIRFLOW_HOME`` under a temporary directory.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.common import FULL, QUICK, run_part, say

PARTS = ("imports", "poke", "triggerer", "slots")
PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "apache-airflow-providers-http",
    "apache-airflow-providers-dbt-cloud",
    "apache-airflow-providers-common-compat",
    "httpx",
    "aiohttp",
    "requests",
)
#: A one-minute load average above this share of the cores before the run means other work shared
#: the machine, which the report then says.
BUSY_SHARE = 0.25


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> float:
    return os.getloadavg()[0]


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small budget, for trying changes")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    started = time.monotonic()
    load_start = load_average()
    cores = os.cpu_count() or 1
    machine: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cores": cores,
        "python": platform.python_version(),
        "versions": versions(),
        "budget": budget.name,
        "load_start": load_start,
    }
    say(
        f"Benchmarks ({budget.name} budget) on {machine['cpu_model']}, {cores} cores, "
        f"Python {machine['python']}, "
        + ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    )
    say(f"Load average before the run: {load_start:.2f}")
    workdir = Path(tempfile.mkdtemp(prefix="proteus-bench-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        for part in args.only:
            results[part] = run_part(part, budget, workdir)
            say(f"({part} took {results[part]['elapsed_seconds']:.0f} s)")
    except BaseException:
        say(f"The run failed; its logs (Airflow's, the servers', each triggerer point's) are in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    machine.update(
        load_end=load_average(),
        elapsed_seconds=time.monotonic() - started,
        busy=load_start > BUSY_SHARE * cores,
    )
    machine["triggerer_points"] = results.get("triggerer", {}).get("points", [])
    if budget is FULL and list(args.only) == list(PARTS):
        doc, plot_file = report.DOC, report.PLOT
    else:
        # A quick or partial run never replaces the published figures.
        out = Path(tempfile.mkdtemp(prefix="proteus-bench-report-"))
        doc, plot_file = out / report.DOC.name, out / report.PLOT.name
    written = report.write(machine, results, doc, plot_file)
    say(f"Wrote {' and '.join(map(str, written))} in {machine['elapsed_seconds'] / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
