"""Run the unit and ``dag.test()`` integration tests on every supported Airflow and Python.

Started by ``make test-matrix`` (every cell) and ``make test`` (the oldest and the newest cell) with
the project's virtualenv, whose uv builds one virtualenv per cell in ``.venv-matrix/``: the cell's
Python, the latest patch of its Airflow with the dependencies of its release day (see
:class:`Release`), and the provider installed editable with its ``matrix`` extra. Each cell then runs
``pytest tests/unit tests/integration`` on its own, and the script prints a table of cells and
results. It exits non-zero if a cell that Airflow supports did not pass.

A cell whose Python the Airflow release does not support (by that release's own classifiers) is
marked as such and not built. A supported cell whose Python is not on this machine is a failure:
the matrix is meant to be run where every Python is; the script looks for ``pythonX.Y`` on
``PATH``, then in pyenv's versions, then asks uv for one it manages.

Examples::

    python scripts/test_matrix.py                      # every cell
    python scripts/test_matrix.py --cells oldest,newest
    python scripts/test_matrix.py --airflow 2.11 --python 3.11 -- -k sensor
    python scripts/test_matrix.py --jobs 2             # two cells at a time
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CELLS_DIR = REPO / ".venv-matrix"
UV = Path(sys.executable).parent / "uv"


@dataclass(frozen=True)
class Release:
    """One Airflow release of the matrix.

    :param pin: Its latest patch.
    :param released: The day that patch came out. A cell installs Airflow with the versions of its
        dependencies of that day, as Airflow's own constraints file for the release pins them (those
        files live on GitHub, which this machine may not reach), and the newest providers, as a user
        adding a provider to an existing deployment gets: newer releases of Airflow's dependencies
        have broken older Airflow (FastAPI, universal-pathlib).
    :param pythons: The Pythons it supports, by its own classifiers.
    """

    pin: str
    released: str
    pythons: tuple[str, ...]


#: The newest release is the default suite's.
AIRFLOW_RELEASES = {
    "2.11": Release("2.11.2", "2026-03-16", ("3.10", "3.11", "3.12")),
    "3.0": Release("3.0.6", "2025-08-31", ("3.10", "3.11", "3.12")),
    "3.1": Release("3.1.8", "2026-03-13", ("3.10", "3.11", "3.12", "3.13")),
    "3.2": Release("3.2.2", "2026-05-30", ("3.10", "3.11", "3.12", "3.13")),
    "3.3": Release("3.3.2", "2026-09-18", ("3.10", "3.11", "3.12", "3.13")),
}
#: The Pythons the provider supports.
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
#: The tests a cell runs: everything but the real deployments and the release build, which the
#: default suite runs once.
CELL_TESTS = ["tests/unit", "tests/integration"]
CELL_TIMEOUT = 30 * 60  # seconds; a cell takes four to twelve minutes on two cores


@dataclass(frozen=True)
class Cell:
    """One Airflow release on one Python.

    :param airflow: The Airflow release, such as ``3.1``.
    :param python: The Python version, such as ``3.12``.
    """

    airflow: str
    python: str

    @property
    def release(self) -> Release:
        return AIRFLOW_RELEASES[self.airflow]

    @property
    def pin(self) -> str:
        return self.release.pin

    @property
    def supported(self) -> bool:
        return self.python in self.release.pythons

    @property
    def venv(self) -> Path:
        return CELLS_DIR / f"airflow-{self.pin}-py{self.python}"

    def __str__(self) -> str:
        return f"Airflow {self.pin} on Python {self.python}"


@dataclass
class Outcome:
    """What happened in one cell.

    :param cell: The cell.
    :param verdict: ``passed``, ``failed``, ``not supported by Airflow`` or why it could not run.
    :param counts: The pytest counts, such as ``412 passed, 1 skipped``.
    :param seconds: Wall time of the build and the tests.
    """

    cell: Cell
    verdict: str
    counts: str = ""
    seconds: float = 0.0

    @property
    def green(self) -> bool:
        return self.verdict in {"passed", "not supported by Airflow"}


def all_cells() -> list[Cell]:
    return [Cell(airflow, python) for airflow in AIRFLOW_RELEASES for python in PYTHONS]


def select_cells(names: str | None, airflows: list[str], pythons: list[str]) -> list[Cell]:
    """The cells asked for: named (``oldest``, ``newest``, ``all``) and narrowed by release or Python."""
    supported = [cell for cell in all_cells() if cell.supported]
    named = {"all": all_cells(), "oldest": supported[:1], "newest": supported[-1:]}
    chosen: list[Cell] = []
    for name in (names or "all").split(","):
        if name not in named:
            raise SystemExit(f"unknown cell {name!r}; use all, oldest or newest")
        chosen += [cell for cell in named[name] if cell not in chosen]
    unknown = sorted(set(airflows) - set(AIRFLOW_RELEASES)) + sorted(set(pythons) - set(PYTHONS))
    if unknown:
        raise SystemExit(f"not in the matrix: {', '.join(unknown)}")
    return [
        cell
        for cell in chosen
        if (not airflows or cell.airflow in airflows) and (not pythons or cell.python in pythons)
    ]


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` on this machine: on PATH, in pyenv, or one uv manages.

    Each candidate is run, since a pyenv shim on PATH may name a version it will not start.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}")]
    candidates += [str(path) for path in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))]
    found = subprocess.run(
        [str(UV), "python", "find", "--no-python-downloads", version], capture_output=True, text=True
    )
    candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for candidate in filter(None, candidates):
        answer = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if answer.returncode == 0 and answer.stdout.strip() == version:
            return candidate
    return None


def uv_env() -> dict[str, str]:
    # uv would try to download a Python it cannot find; this machine may have no route to GitHub.
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}


def build(cell: Cell, interpreter: str, log: Path) -> bool:
    """Create the cell's virtualenv, or bring an existing one to the current ``setup.cfg``."""
    stamp = cell.venv / ".installed"
    inputs = max((REPO / name).stat().st_mtime for name in ("setup.cfg", "pyproject.toml", __file__))
    if stamp.exists() and stamp.stat().st_mtime >= inputs:
        return True
    python = cell.venv / "bin" / "python"
    constraints = CELLS_DIR / f"{cell.venv.name}.constraints.txt"
    with log.open("a") as out:

        def uv(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            out.write(f"$ uv {' '.join(args)}\n")
            out.flush()
            return subprocess.run(
                [str(UV), *args],
                input=stdin,
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
                env=uv_env(),
                cwd=REPO,
            )

        if not python.exists() and uv("venv", "--quiet", "--python", interpreter, str(cell.venv)).returncode:
            return False
        dated = uv(
            "pip",
            "compile",
            "--quiet",
            "--no-header",
            "--no-annotate",
            "--python",
            str(python),
            "--exclude-newer",
            cell.release.released,
            "-",
            stdin=f"apache-airflow=={cell.pin}\n",
        )
        if dated.returncode:
            return False
        # Providers come out newest, as a user adding this one to a deployment gets them.
        pins = [pin for pin in dated.stdout.splitlines() if not pin.startswith("apache-airflow-providers-")]
        constraints.write_text("\n".join(pins) + "\n")
        installed = uv(
            "pip",
            "install",
            "--python",
            str(python),
            "--constraints",
            str(constraints),
            f"apache-airflow=={cell.pin}",
            "-e",
            f"{REPO}[matrix]",
        )
        out.write(installed.stdout)
    if installed.returncode:
        return False
    stamp.touch()
    return True


def pytest_counts(log: Path) -> str:
    """``412 passed, 1 skipped`` from pytest's closing line in a cell's log."""
    closing = re.compile(r"^=*\s*(\d+ (?:passed|failed|errors?|skipped).*?) in [\d.]+s", re.MULTILINE)
    summaries = closing.findall(log.read_text())
    return summaries[-1] if summaries else ""


def run_cell(cell: Cell, pytest_args: list[str]) -> Outcome:
    if not cell.supported:
        return Outcome(cell, "not supported by Airflow")
    started = time.monotonic()
    interpreter = find_python(cell.python)
    if interpreter is None:
        return Outcome(cell, f"failed: no Python {cell.python} on this machine")
    CELLS_DIR.mkdir(exist_ok=True)
    log = CELLS_DIR / f"{cell.venv.name}.log"
    if log.exists():
        # A cell run again keeps the log of its previous run beside the new one.
        log.replace(log.with_suffix(".previous.log"))
    log.write_text(f"{cell}, interpreter {interpreter}\n")
    print(f"--- {cell}: setting up {cell.venv.relative_to(REPO)} (log: {log.relative_to(REPO)})", flush=True)
    if not build(cell, interpreter, log):
        return Outcome(cell, "failed: could not install", seconds=time.monotonic() - started)
    print(f"--- {cell}: running the tests", flush=True)
    with log.open("a") as out:
        try:
            tests = subprocess.run(
                [
                    str(cell.venv / "bin" / "python"),
                    "-m",
                    "pytest",
                    *CELL_TESTS,
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    *pytest_args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                timeout=CELL_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            verdict = f"failed: over {CELL_TIMEOUT // 60} minutes"
            return Outcome(cell, verdict, seconds=time.monotonic() - started)
    counts = pytest_counts(log)
    return Outcome(cell, judge(tests.returncode, counts, log), counts, time.monotonic() - started)


def judge(returncode: int, counts: str, log: Path) -> str:
    """A cell's verdict from pytest's exit code and counts; the log is named where it failed."""
    if returncode != 0:
        return f"failed (see {log.relative_to(REPO)})"
    if "skipped" in counts:
        # Every test holds on every supported version; a skip is a test that did not run.
        return f"failed: tests skipped (see {log.relative_to(REPO)})"
    return "passed"


def table(outcomes: list[Outcome]) -> str:
    rows = [("Airflow", "Python", "Result", "Tests", "Time")]
    rows += [
        (o.cell.pin, o.cell.python, o.verdict, o.counts, f"{o.seconds / 60:.1f} min" if o.seconds else "")
        for o in outcomes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", help="all (the default), oldest or newest, comma-separated")
    parser.add_argument("--airflow", action="append", default=[], help="only this release, e.g. 3.1")
    parser.add_argument("--python", action="append", default=[], help="only this Python, e.g. 3.12")
    parser.add_argument(
        "--jobs",
        type=positive,
        default=1,
        help="cells run at once (default 1); on two cores, 2 finishes the matrix about a third sooner",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest in every cell (after --)")
    args = parser.parse_args(argv)
    if not UV.exists():
        raise SystemExit(f"{UV} not found; run the matrix with the project's virtualenv (make test-matrix)")

    cells = select_cells(args.cells, args.airflow, args.python)

    def run_and_report(cell: Cell) -> Outcome:
        outcome = run_cell(cell, args.pytest_args)
        print(f"--- {cell}: {outcome.verdict} {outcome.counts}".rstrip(), flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(run_and_report, cells))
    print()
    print(table(outcomes))
    red = [o for o in outcomes if not o.green]
    print()
    print(f"{len(outcomes) - len(red)} of {len(outcomes)} cells green.")
    return 1 if red else 0


if __name__ == "__main__":
    sys.exit(main())
