"""What differs between the Airflow versions the provider runs on, in one place.

Everything else imports Airflow's public classes through ``airflow.providers.common.compat.sdk``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection


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
