"""An emulator of Orbital Insight GO's REST API, for demos, tests and offline DAG development.

Nothing in the provider's runtime imports this package; it needs the ``emulator`` extra
(FastAPI and uvicorn, which Airflow 3 already installs).
"""

from __future__ import annotations

from airflow_provider_proteus.testing.emulator import DEMO_PROJECT_ID, DEMO_VERSION_ID
from airflow_provider_proteus.testing.server import DEFAULT_TOKEN, EmulatorClient, GoEmulator

__all__ = ["DEFAULT_TOKEN", "DEMO_PROJECT_ID", "DEMO_VERSION_ID", "EmulatorClient", "GoEmulator"]
