"""The test matrix script picks the cells, marks those Airflow does not support, and reads pytest's counts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test_matrix.py"


@pytest.fixture(scope="module")
def matrix() -> ModuleType:
    spec = importlib.util.spec_from_file_location("test_matrix_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_oldest_and_newest_are_the_first_and_last_supported_cells(matrix: ModuleType) -> None:
    cells = matrix.select_cells("oldest,newest", [], [])
    assert [(cell.pin, cell.python) for cell in cells] == [("2.11.2", "3.10"), ("3.3.2", "3.13")]


def test_every_release_is_paired_with_every_python(matrix: ModuleType) -> None:
    cells = matrix.select_cells(None, [], [])
    assert len(cells) == len(matrix.AIRFLOW_RELEASES) * len(matrix.PYTHONS)
    assert [cell.python for cell in matrix.select_cells("all", ["3.2"], [])] == list(matrix.PYTHONS)


def test_a_cell_airflow_does_not_support_is_green_without_being_built(matrix: ModuleType) -> None:
    [cell] = matrix.select_cells(None, ["2.11"], ["3.13"])
    outcome = matrix.run_cell(cell, [])
    assert outcome.verdict == "not supported by Airflow"
    assert outcome.green
    assert not cell.venv.exists()


def test_a_failed_cell_is_not_green(matrix: ModuleType) -> None:
    [cell] = matrix.select_cells(None, ["3.3"], ["3.11"])
    assert not matrix.Outcome(cell, "failed: could not install").green


@pytest.mark.parametrize(
    ("names", "airflows", "pythons", "message"),
    [
        ("latest", [], [], "unknown cell 'latest'"),
        (None, ["2.10"], [], "not in the matrix: 2.10"),
        (None, [], ["3.9"], "not in the matrix: 3.9"),
    ],
)
def test_a_cell_outside_the_matrix_is_refused_by_name(
    matrix: ModuleType, names: str | None, airflows: list[str], pythons: list[str], message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        matrix.select_cells(names, airflows, pythons)


def test_counts_come_from_pytests_closing_line(matrix: ModuleType, tmp_path: Path) -> None:
    log = tmp_path / "cell.log"
    log.write_text("....s.. [100%]\n= 417 passed, 4 skipped, 159 warnings in 387.64s (0:06:27) =\n")
    assert matrix.pytest_counts(log) == "417 passed, 4 skipped, 159 warnings"


def test_the_table_has_a_row_per_cell(matrix: ModuleType) -> None:
    [supported, unsupported] = matrix.select_cells(None, ["2.11"], ["3.12", "3.13"])
    printed = matrix.table(
        [
            matrix.Outcome(supported, "passed", "421 passed", 300.0),
            matrix.Outcome(unsupported, "not supported by Airflow"),
        ]
    ).splitlines()
    assert printed[0].split(" | ")[0].strip() == "Airflow"
    assert [line.split(" | ")[2].strip() for line in printed[2:]] == ["passed", "not supported by Airflow"]
    assert "5.0 min" in printed[2]


@pytest.mark.parametrize(
    ("returncode", "counts", "verdict"),
    [
        (0, "428 passed, 41 warnings", "passed"),
        (1, "1 failed, 427 passed", "failed (see .venv-matrix/cell.log)"),
        (0, "427 passed, 1 skipped", "failed: tests skipped (see .venv-matrix/cell.log)"),
    ],
)
def test_a_cell_passes_only_when_every_test_ran_and_passed(
    matrix: ModuleType, returncode: int, counts: str, verdict: str
) -> None:
    assert matrix.judge(returncode, counts, matrix.CELLS_DIR / "cell.log") == verdict
