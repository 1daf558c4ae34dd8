"""What differs between the Airflow versions the provider runs on, in one place.

Everything else imports Airflow's public classes through ``airflow.providers.common.compat.sdk``,
which maps them to Airflow 2's module paths; what that cannot hide is decided here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow import __version__ as _airflow_version
from airflow.providers.common.compat.sdk import BaseHook
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection


def airflow_version() -> tuple[int, int, int]:
    """The installed Airflow's release as (major, minor, micro), pre-release suffixes dropped."""
    release = Version(_airflow_version).release
    return (*release, 0, 0)[:3]  # type: ignore[return-value]


AIRFLOW_V_3_0_PLUS = airflow_version() >= (3, 0, 0)
"""Airflow 3: the task SDK, assets (Airflow 2 calls them datasets) and the execution API."""

AIRFLOW_V_3_3_PLUS = airflow_version() >= (3, 3, 0)
"""Airflow 3.3: the task state store (``context["task_state_store"]``), which outlives a task's tries.

The operator asks the context for it rather than the version; this flag is for tests and docs."""

TRIGGER_TIMEOUT = "Trigger timeout"
"""The error Airflow resumes a deferred task with when the deferral's own timeout has passed.

Airflow 3 turns it into a sensor timeout; Airflow 2.11 raises a bare ``TaskDeferralError`` instead,
which names nothing and which ``soft_fail`` would not treat as a timeout. The sensor recognises it
itself, so that a wait budget running out reads and behaves the same on every version.
"""


def trigger_timed_out(next_method: str, next_kwargs: dict[str, Any] | None) -> bool:
    """Whether a deferred task is being resumed because its deferral's timeout passed."""
    return next_method == "__fail__" and (next_kwargs or {}).get("error") == TRIGGER_TIMEOUT


#: Where Airflow keeps ``mask_secret``, newest layout first.
_SECRETS_MASKERS = (
    "airflow.sdk.log",
    "airflow.sdk.execution_time.secrets_masker",
    "airflow.utils.log.secrets_masker",
)


def mask_secret(secret: str) -> None:
    """Hide ``secret`` in every log line Airflow writes from now on.

    ``airflow.providers.common.compat.sdk`` has it from common-compat 1.21, which needs Python 3.11;
    on Python 3.10 the newest common-compat is 1.20, so it is looked up where Airflow keeps it.
    """
    from airflow.providers.common.compat import sdk

    masker = getattr(sdk, "mask_secret", None)
    for module in _SECRETS_MASKERS:
        if masker is not None:
            break
        try:
            masker = getattr(importlib.import_module(module), "mask_secret", None)
        except ImportError:
            continue
    if masker is None:
        raise RuntimeError(f"this Airflow has no mask_secret in {', '.join(_SECRETS_MASKERS)}")
    masker(secret)


async def aget_connection(conn_id: str) -> Connection:
    """Look a connection up without blocking the event loop (triggers run in one).

    Airflow 3 has ``BaseHook.aget_connection``; older versions look it up in a worker thread.
    """
    lookup = getattr(BaseHook, "aget_connection", None)
    if lookup is not None:
        connection: Connection = await lookup(conn_id)
        return connection
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)
