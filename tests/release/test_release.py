"""The release artefacts as a user gets them: built, checked, installed alone in a new virtualenv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import airflow_provider_proteus
from tests.conftest import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.release

BIN = Path(sys.executable).parent
AIRFLOW_VERSION = os.environ.get("PROTEUS_RELEASE_AIRFLOW", "3.3.2")


def run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=True, timeout=600, **kwargs
    )


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    installer = ["--installer", "uv"] if (BIN / "uv").exists() else []
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    run(sys.executable, "-m", "build", *installer, "--outdir", out, REPO, env=env)
    yield out
    shutil.rmtree(out, ignore_errors=True)


def test_a_wheel_and_an_sdist_of_the_one_version_pass_twine_check(artefacts: Path) -> None:
    version = airflow_provider_proteus.__version__
    built = sorted(path.name for path in artefacts.iterdir())
    assert built == [
        f"airflow_provider_proteus-{version}-py3-none-any.whl",
        f"airflow_provider_proteus-{version}.tar.gz",
    ]
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(artefacts.iterdir()))
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_the_wheel_ships_its_types_and_neither_tests_nor_tools(artefacts: Path) -> None:
    (wheel,) = artefacts.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "airflow_provider_proteus/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
    assert "airflow_provider_proteus/hooks/proteus.py" in names
    assert not [
        name for name in names if name.startswith(("tests/", "benchmarks/", "deployment/", "scripts/"))
    ]
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    # The README, with the example DAGs' documentation, is the package's description on PyPI.
    assert "## The example DAG" in text


def test_the_sdist_carries_the_example_dags_docs_and_changelog(artefacts: Path) -> None:
    (sdist,) = artefacts.glob("*.tar.gz")
    listing = run("tar", "-tzf", sdist).stdout.splitlines()
    root = sdist.name.removesuffix(".tar.gz")
    for wanted in ("example_dags/example_proteus.py", "CHANGELOG.md", "README.md", "docs/reliability.md"):
        assert f"{root}/{wanted}" in listing, wanted


def test_the_wheel_alone_installs_and_airflow_lists_the_provider(artefacts: Path, tmp_path: Path) -> None:
    if not (BIN / "uv").exists():
        pytest.fail("uv is needed to build a clean virtualenv quickly; make venv installs it")
    venv = tmp_path / "venv"
    run(BIN / "uv", "venv", "--quiet", "--python", sys.executable, venv)
    (wheel,) = artefacts.glob("*.whl")
    run(
        BIN / "uv",
        "pip",
        "install",
        "--quiet",
        "--python",
        venv / "bin" / "python",
        wheel,
        f"apache-airflow=={AIRFLOW_VERSION}",
    )
    home = tmp_path / "airflow-home"
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin",
        "AIRFLOW_HOME": str(home),
        "HOME": str(tmp_path),
    }
    listed = run(venv / "bin" / "airflow", "providers", "list", "--output", "plain", env=env).stdout
    line = next((line for line in listed.splitlines() if "airflow-provider-proteus" in line), "")
    assert airflow_provider_proteus.__version__ in line, listed
    # Nothing of the repository leaked in: the emulator's web framework comes from Airflow itself.
    frozen = run(BIN / "uv", "pip", "freeze", "--python", venv / "bin" / "python").stdout
    installed = {line.split("==")[0].split(" @ ")[0].lower() for line in frozen.splitlines()}
    assert "airflow-provider-proteus" in installed
    assert not installed & {"pytest", "playwright", "matplotlib", "apache-airflow-providers-http"}
