"""Show the provider in Airflow's real UI: the ``proteus`` connection form and a finished example run.

Run by ``make screenshots`` after ``make demo``, whose Airflow home (``.airflow/``) holds the
finished run. It starts Airflow's api-server on loopback with that home, drives Debian's headless
Chromium with Playwright to the connection form and to the example run's sensor, checks that the
form's fields and the "GO project" link are there, and saves the pages as PNG files in
``docs/screenshots/``. It installs Debian's ``chromium`` with ``apt-get`` when it is missing.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
HOME = REPO / ".airflow"
SHOTS = REPO / "docs" / "screenshots"
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
#: The labels the proteus connection form must show (provider info: ui-field-behaviour, conn-fields).
FORM_LABELS = (
    "API base URL",
    "API token",
    "Auth header style",
    "Timeout (seconds)",
    "Verify TLS certificates",
    "CA bundle path",
    "GO web app URL",
)
#: Flags for Chromium on a machine without a display or an outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    print("==> Installing Debian's chromium", flush=True)
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-qq"]
    subprocess.run([*apt, "update"], check=True)
    subprocess.run([*apt, "install", "-y", "chromium"], check=True)


def main() -> int:
    from airflow_provider_proteus.testing.airflow_runs import latest_run
    from deployment.harness import Processes, answers, free_port, loopback_components, wait_for

    os.environ.update(AIRFLOW_HOME=str(HOME), AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"))
    run = latest_run("example_proteus") if (HOME / "airflow.db").exists() else None
    if run is None or run.state != "success":
        print("No finished run of example_proteus in .airflow/; run `make demo` first.", file=sys.stderr)
        return 1
    ensure_chromium()
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    root = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **loopback_components(port, secrets.token_urlsafe(64)),
        "AIRFLOW__API__BASE_URL": root,
        # Every visitor is an admin: it only listens on loopback, and no login page is in the way.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    processes = Processes(HOME / "components")
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        processes.start("api-server-screenshots", [str(BIN / "airflow"), "api-server"], env)
        print(f"==> Waiting for Airflow's api-server at {root}", flush=True)
        wait_for("the api-server", lambda: answers(f"{root}/api/v2/monitor/health"), timeout=120, interval=1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            print("==> The proteus connection form", flush=True)
            page.goto(f"{root}/connections", wait_until="networkidle")
            page.get_by_role("button", name="Add Connection").click()
            page.get_by_role("combobox").first.click()
            page.get_by_text("Orbital Insight GO", exact=True).click()
            # The form keeps the provider's own fields in a folded "Extra Fields" section.
            page.get_by_role("button", name="Extra Fields", exact=True).click()
            for label in FORM_LABELS:
                expect(page.get_by_text(label, exact=True).first).to_be_visible(timeout=15_000)
            page.screenshot(path=str(SHOTS / "connection-form.png"), full_page=True)

            print("==> The example run's sensor and its GO project link", flush=True)
            # Airflow's UI lists a task's extra links on the task instance's Details tab.
            task_page = f"{root}/dags/example_proteus/runs/{run.run_id}/tasks/wait_for_completion/details"
            page.goto(task_page, wait_until="networkidle")
            link = page.get_by_role("link", name="GO project")
            expect(link).to_be_visible(timeout=30_000)
            href = link.get_attribute("href") or ""
            if "/projects/carsdemo-J9fUyV" not in href:
                raise AssertionError(f"The GO project link points at {href!r}")
            page.screenshot(path=str(SHOTS / "go-project-link.png"), full_page=True)
            browser.close()
    finally:
        processes.stop()
    print(f"Saved {SHOTS / 'connection-form.png'} and {SHOTS / 'go-project-link.png'}")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(code)
