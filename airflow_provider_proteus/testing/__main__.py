"""Command line entry point: ``proteus-emulator`` or ``python -m airflow_provider_proteus.testing``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from airflow_provider_proteus.testing.emulator import DEMO_PROJECT_ID, DEMO_VERSION_ID
from airflow_provider_proteus.testing.server import DEFAULT_TOKEN, GoEmulator


def main(argv: list[str] | None = None) -> int:
    """Serve the GO emulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="proteus-emulator",
        description="Serve an emulator of Orbital Insight GO's REST API on a loopback port.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8099, help="port to listen on; 0 picks a free one")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the API token to accept")
    parser.add_argument(
        "--run-seconds", type=float, default=60.0, help="how long a submitted job runs (default 60)"
    )
    parser.add_argument("--port-file", type=Path, help="write the chosen port to this file once serving")
    parser.add_argument("--access-log", action="store_true", help="log each request's method and path")
    args = parser.parse_args(argv)

    try:
        emulator = GoEmulator(
            token=args.token,
            run_seconds=args.run_seconds,
            host=args.host,
            port=args.port,
            access_log=args.access_log,
        )
    except OSError as err:
        print(
            f"proteus-emulator: cannot listen on {args.host}:{args.port}: {err.strerror or err}. Is another "
            "emulator running there? Pick another --port (0 picks a free one).",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emulator:
        if args.port_file:
            args.port_file.write_text(str(emulator.port))
        print(f"GO emulator serving {emulator.base_url}", flush=True)
        print(f"  demo project {DEMO_PROJECT_ID}, version {DEMO_VERSION_ID}", flush=True)
        print(
            f"  control surface {emulator.root_url}/_emulator (health, projects, faults, requests)",
            flush=True,
        )
        if args.token == DEFAULT_TOKEN:
            # Only the well-known demo token is ever printed; a token of the user's stays private.
            print(f"  connection: AIRFLOW_CONN_PROTEUS_DEFAULT='{emulator.connection_json()}'", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
