"""A ``proteus`` connection's fields and extra, validated into the settings every GO call uses.

Kept apart from the hook so that every way of calling GO reads a connection the same way, and so
that a bad connection is reported with its id and the field's name before anything is sent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from airflow_provider_proteus import __version__, api
from airflow_provider_proteus.exceptions import ProteusConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger(__name__)

#: Seconds to wait for GO to accept a connection and, separately, for each read of its answer.
DEFAULT_TIMEOUT = 60.0
#: How many times one request is retried after a transient failure before the hook gives up.
DEFAULT_MAX_RETRIES = 5
#: Backoff factor in seconds: retries wait 0, 2, 4, 8, ... times this, capped at 120 s.
DEFAULT_RETRY_BACKOFF = 1.0

_EXTRA_KEYS = frozenset(
    {
        "auth_header",
        "timeout",
        "verify",
        "proxies",
        "max_retries",
        "retry_backoff",
        "web_url",
        "waiting_stages",
        "job_id_paths",
        "allow_insecure_http",
        "page_size",
        "ca_bundle",
    }
)


@dataclass(frozen=True)
class ProteusConnectionSettings:
    """Everything the hook needs from a ``proteus`` connection, validated once.

    :param base_url: GO's API base URL, without a trailing slash.
    :param token: The API token. Kept out of ``repr``.
    :param auth_header: ``"token"`` sends ``X-Orbitalinsight-Auth-Token``; ``"bearer"`` sends
        ``Authorization: Bearer``.
    :param timeout: Seconds to wait for a connection and for each read.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param proxies: requests-style proxy map, for example ``{"https": "http://proxy:3128"}``.
    :param max_retries: Retries of one request after transient failures.
    :param retry_backoff: Backoff factor in seconds between retries.
    :param web_url: Base URL of the GO web app, for links to a project's page.
    :param waiting_stages: Stages to treat as "still running", on top of the documented ones.
    :param job_id_paths: Dotted paths to the job id by job type, on top of the documented one.
    :param page_size: Items asked for per page of a list endpoint; ``-1`` asks for all at once.
    """

    base_url: str
    token: str = field(repr=False)
    auth_header: Literal["token", "bearer"] = "token"
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    proxies: Mapping[str, str] = field(default_factory=dict)
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    web_url: str = api.DEFAULT_WEB_URL
    waiting_stages: frozenset[str] = frozenset()
    job_id_paths: Mapping[str, str] = field(default_factory=dict)
    page_size: int = api.DEFAULT_PAGE_SIZE

    @property
    def headers(self) -> dict[str, str]:
        """Authentication and content negotiation headers sent with every request."""
        if self.auth_header == "bearer":
            auth = {"Authorization": f"Bearer {self.token}"}
        else:
            auth = {api.TOKEN_HEADER: self.token}
        return {**auth, "Accept": "application/json", "User-Agent": f"airflow-provider-proteus/{__version__}"}


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _extra_error(conn_id: str, key: str, expected: str, value: object) -> ProteusConfigurationError:
    return ProteusConfigurationError(
        f"Connection {conn_id!r}: extra field {key!r} must be {expected}, got {value!r}"
    )


def settings_from_connection(
    conn_id: str,
    *,
    host: str | None,
    port: int | None,
    schema: str | None,
    password: str | None,
    extra: Mapping[str, Any],
) -> ProteusConnectionSettings:
    """Validate a connection's fields and extra, and return the settings the hook will use.

    Every problem is reported with the connection id and the field's name, before any request.
    """
    if not password:
        raise ProteusConfigurationError(
            f"Connection {conn_id!r} has no API token; put the GO token in its password field"
        )
    base_url = api.normalize_base_url(host, port=port, path=schema)
    # Airflow's connection form saves a field left empty as null or "": both mean "the default".
    extra = {key: value for key, value in extra.items() if value is not None and value != ""}

    unknown = sorted(set(extra) - _EXTRA_KEYS)
    if unknown:
        log.warning(
            "Connection %s: ignoring unknown extra fields %s (known: %s).",
            conn_id,
            ", ".join(unknown),
            ", ".join(sorted(_EXTRA_KEYS)),
        )

    def number(key: str, default: float, *, integer: bool = False) -> float:
        value = extra.get(key, default)
        if isinstance(value, str):
            # A URI connection can only give strings; a plain number in one is unambiguous.
            with contextlib.suppress(ValueError):
                value = int(value) if integer else float(value)
        allowed = isinstance(value, int) or (isinstance(value, float) and not integer)
        if isinstance(value, bool) or not allowed or not 0 <= value < float("inf"):
            raise _extra_error(conn_id, key, "a non-negative " + ("integer" if integer else "number"), value)
        return float(value)

    def flag(key: str, default: bool) -> bool:
        value = extra.get(key, default)
        if not isinstance(value, bool):
            raise _extra_error(conn_id, key, "true or false (a JSON boolean, not a string)", value)
        return value

    auth_header = extra.get("auth_header", "token")
    if auth_header not in ("token", "bearer"):
        raise _extra_error(conn_id, "auth_header", '"token" or "bearer"', auth_header)
    timeout = number("timeout", DEFAULT_TIMEOUT)
    if timeout == 0:
        raise _extra_error(conn_id, "timeout", "a positive number of seconds", timeout)
    verify = extra.get("verify", True)
    if not isinstance(verify, (bool, str)) or verify == "" or verify in ("true", "false", "True", "False"):
        raise _extra_error(conn_id, "verify", "true, false or the path of a CA bundle", verify)
    ca_bundle = extra.get("ca_bundle")
    if ca_bundle is not None:
        if not isinstance(ca_bundle, str):
            raise _extra_error(conn_id, "ca_bundle", "the path of a CA bundle file", ca_bundle)
        if verify is False:
            raise ProteusConfigurationError(
                f"Connection {conn_id!r}: the extra gives a CA bundle but turns verification off; keep one"
            )
        verify = ca_bundle
    proxies = extra.get("proxies", {})
    if not isinstance(proxies, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in proxies.items()
    ):
        raise _extra_error(conn_id, "proxies", 'an object such as {"https": "http://proxy:3128"}', proxies)
    waiting_stages = extra.get("waiting_stages", [])
    if not isinstance(waiting_stages, list) or not all(isinstance(s, str) for s in waiting_stages):
        raise _extra_error(
            conn_id, "waiting_stages", 'a list of stage names such as ["QUEUED"]', waiting_stages
        )
    job_id_paths = extra.get("job_id_paths", {})
    if not isinstance(job_id_paths, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in job_id_paths.items()
    ):
        raise _extra_error(
            conn_id, "job_id_paths", 'an object such as {"AIRFLOW": "airflow_data.dag_run_id"}', job_id_paths
        )
    web_url = extra.get("web_url", api.DEFAULT_WEB_URL)
    if not isinstance(web_url, str) or not web_url.strip():
        raise _extra_error(conn_id, "web_url", "a URL", web_url)

    page_size = extra.get("page_size", api.DEFAULT_PAGE_SIZE)
    if isinstance(page_size, str):
        with contextlib.suppress(ValueError):
            page_size = int(page_size)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size == 0 or page_size < -1:
        raise _extra_error(conn_id, "page_size", "a positive integer, or -1 for all at once", page_size)

    hostname = urlsplit(base_url).hostname or ""
    if (
        base_url.startswith("http://")
        and not _is_loopback(hostname)
        and not flag("allow_insecure_http", False)
    ):
        raise ProteusConfigurationError(
            f"Connection {conn_id!r}: refusing to send the API token over plain http to {hostname}; "
            'use an https URL, or set "allow_insecure_http": true in the extra if this is intended'
        )

    return ProteusConnectionSettings(
        base_url=base_url,
        token=password,
        auth_header=auth_header,
        timeout=float(timeout),
        verify=verify,
        proxies=proxies,
        max_retries=int(number("max_retries", DEFAULT_MAX_RETRIES, integer=True)),
        retry_backoff=float(number("retry_backoff", DEFAULT_RETRY_BACKOFF)),
        web_url=api.normalize_base_url(web_url),
        waiting_stages=frozenset(waiting_stages),
        job_id_paths=job_id_paths,
        page_size=page_size,
    )


def parse_extra(conn_id: str, extra: str | None) -> dict[str, Any]:
    """Parse a connection's extra, refusing what Airflow itself would silently turn into ``{}``."""
    if not extra or not extra.strip():
        return {}
    try:
        value = json.loads(extra)
    except ValueError as err:
        # The position, not the text: an extra may hold secrets of its own.
        raise ProteusConfigurationError(
            f"Connection {conn_id!r}: the extra is not valid JSON ({err.args[0].split(':')[0]}); "
            'write it as a JSON object such as {"timeout": 60}'
        ) from None
    if not isinstance(value, dict):
        raise ProteusConfigurationError(
            f"Connection {conn_id!r}: the extra must be a JSON object, got a {type(value).__name__}"
        )
    return value
