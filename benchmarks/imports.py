"""DAG-parse cost: what importing a provider's operator and sensor modules adds to ``airflow.sdk``.

A DAG file imports ``airflow.sdk`` (or Airflow's compat layer, which does) before the operators it
uses, and the DAG processor pays for that once; what each provider adds on top is what this part
measures. Every sample is a fresh interpreter that imports ``airflow.sdk`` first and then times,
with ``time.perf_counter``, the import of the provider's operator and sensor modules. The module sets
are sampled in turn (ours, HTTP, dbt Cloud, ours, ...) so that a change in the machine's load hits
all of them alike, after one unmeasured import of each that leaves byte-code caches behind. One
more interpreter per set runs under ``python -X importtime`` to show where the time goes, and ours
is checked for modules a DAG parse must not load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks.common import PYTHON, child_arguments, median, say, write_result

MODULE_SETS: dict[str, tuple[str, ...]] = {
    "proteus": ("airflow_provider_proteus.operators.proteus", "airflow_provider_proteus.sensors.proteus"),
    "http": ("airflow.providers.http.operators.http", "airflow.providers.http.sensors.http"),
    "dbt_cloud": ("airflow.providers.dbt.cloud.operators.dbt", "airflow.providers.dbt.cloud.sensors.dbt"),
}
LABELS = {"proteus": "Proteus (ours)", "http": "HTTP provider", "dbt_cloud": "dbt Cloud provider"}
#: What a DAG parse of ours must not pay for: the trigger's and the emulator's web stacks, the results
#: writer, the emulator.
MUST_NOT_IMPORT = (
    "httpx",
    "fastapi",
    "uvicorn",
    "airflow_provider_proteus.results",
    "airflow_provider_proteus.testing",
)

_SAMPLE = """
import importlib, json, sys, time
import airflow.sdk
before = set(sys.modules)
started = time.perf_counter()
for name in {modules!r}:
    importlib.import_module(name)
seconds = time.perf_counter() - started
watched = {watched!r}
print(json.dumps({{
    "seconds": seconds,
    "new_modules": len(set(sys.modules) - before),
    "loaded_by_sdk": [name for name in watched if name in before],
    "loaded_by_import": [name for name in watched if name in sys.modules and name not in before],
}}))
"""


def sample(modules: tuple[str, ...]) -> dict[str, Any]:
    code = _SAMPLE.format(modules=modules, watched=MUST_NOT_IMPORT)
    output = subprocess.run(  # noqa: S603 - our own interpreter
        [PYTHON, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def import_profile(modules: tuple[str, ...], top: int = 12) -> list[dict[str, Any]]:
    """The modules with the largest cumulative import time, of those imported after ``airflow.sdk``.

    From ``python -X importtime``: one line per module with its own and its cumulative microseconds.
    """
    marker = "benchmarks-imports-marker"
    code = f"import airflow.sdk, sys; print({marker!r}, file=sys.stderr)\n" + "".join(
        f"import {name}\n" for name in modules
    )
    stderr = subprocess.run(  # noqa: S603 - our own interpreter
        [PYTHON, "-X", "importtime", "-c", code], check=True, capture_output=True, text=True
    ).stderr
    rows: list[dict[str, Any]] = []
    for line in stderr.split(marker, 1)[1].splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = (field.strip() for field in line.removeprefix("import time:").split("|"))
        if own.isdigit():
            rows.append(
                {"module": name.strip(), "self_ms": int(own) / 1000, "cumulative_ms": int(cumulative) / 1000}
            )
    rows.sort(key=lambda row: row["cumulative_ms"], reverse=True)
    return rows[:top]


def run(samples: int) -> dict[str, Any]:
    say(f"DAG-parse cost: import on top of airflow.sdk, {samples} fresh interpreters per provider")
    taken: dict[str, list[dict[str, Any]]] = {key: [] for key in MODULE_SETS}
    # One unmeasured import of each set first: it leaves byte-code caches for every module, so that no
    # sample pays for compiling (uv installs packages without them).
    for modules in MODULE_SETS.values():
        sample(modules)
    for _ in range(samples):
        for key, modules in MODULE_SETS.items():
            taken[key].append(sample(modules))
    results: dict[str, Any] = {}
    for key, modules in MODULE_SETS.items():
        seconds = [entry["seconds"] for entry in taken[key]]
        results[key] = {
            "modules": list(modules),
            "seconds": seconds,
            "median_seconds": median(seconds),
            "new_modules": median([entry["new_modules"] for entry in taken[key]]),
            "profile": import_profile(modules),
        }
        say(
            f"  {LABELS[key]:<20} {results[key]['median_seconds'] * 1000:7.1f} ms "
            f"(min {min(seconds) * 1000:.1f}, max {max(seconds) * 1000:.1f}), "
            f"{results[key]['new_modules']:.0f} modules"
        )
    ours = results["proteus"]["median_seconds"]
    cheaper_peer = min(("http", "dbt_cloud"), key=lambda key: results[key]["median_seconds"])
    ratio = ours / results[cheaper_peer]["median_seconds"]
    say(f"  ours / cheaper peer ({LABELS[cheaper_peer]}): {ratio:.2f}x (goal <= 0.5x)")
    check = taken["proteus"][0]
    say(
        "  modules a DAG parse of ours must not load: "
        + ", ".join(
            f"{name}: "
            + (
                "loaded by our import"
                if name in check["loaded_by_import"]
                else "already loaded by airflow.sdk"
                if name in check["loaded_by_sdk"]
                else "not loaded"
            )
            for name in MUST_NOT_IMPORT
        )
    )
    say("  where ours spends it (python -X importtime, cumulative):")
    for row in results["proteus"]["profile"][:8]:
        say(f"    {row['cumulative_ms']:7.1f} ms  {row['module']}")
    return {
        **results,
        "cheaper_peer": cheaper_peer,
        "ratio_to_cheaper_peer": ratio,
        "must_not_import": {
            "loaded_by_import": check["loaded_by_import"],
            "loaded_by_sdk": check["loaded_by_sdk"],
        },
    }


def main(argv: list[str]) -> int:
    budget, result_file = child_arguments(argv)
    write_result(result_file, {**run(budget.import_samples), "budget": budget.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
