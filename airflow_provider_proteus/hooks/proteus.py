"""Hook that turns a ``proteus`` connection into an authenticated, retrying HTTP session with GO."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProxyError
from urllib3.util.retry import Retry

from airflow_provider_proteus import __version__, api
from airflow_provider_proteus.exceptions import (
    ProteusAuthenticationError,
    ProteusConfigurationError,
    ProteusConnectionError,
    ProteusHTTPError,
    ProteusNotFoundError,
    ProteusRequestError,
    ProteusResponseError,
    ProteusTLSError,
)
from airflow_provider_proteus.get_provider_info import connection_field_behaviour

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

log = logging.getLogger(__name__)

#: Seconds to wait for GO to accept a connection and, separately, for each read of its answer.
DEFAULT_TIMEOUT = 60.0
#: How many times one request is retried after a transient failure before the hook gives up.
DEFAULT_MAX_RETRIES = 5
#: Backoff factor in seconds: retries wait 0, 2, 4, 8, ... times this, capped at ``MAX_BACKOFF``.
DEFAULT_RETRY_BACKOFF = 1.0
#: The longest wait between two retries, in seconds, whatever the backoff or Retry-After says.
MAX_BACKOFF = 120.0

#: Statuses that mean "not now" rather than "no": rate limiting and gateway or server trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

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
    }
)


class _HideUrllib3RetryNotices(logging.Filter):
    """Drop urllib3's own "Retrying (...)" warning for this hook's requests: ``_GoRetry`` logs each
    retry once, with the method and the full URL, and other urllib3 users keep their warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and record.args and isinstance(record.args[0], _GoRetry))


class _GoRetry(Retry):
    """urllib3's retry policy, taught which failures leave a POST unprocessed.

    Connection failures before the request was sent are retried for every method (urllib3 already
    does so). A POST is otherwise retried only on 429 or 503: the server refused it, so no job was
    started. A POST that met another 5xx (a gateway's 502 or 504 can come after GO started the job),
    a read timeout or a dropped connection may have started a job, so it is never sent again. Each
    retry is logged once, with the status or error, the method and the URL.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST":
            return status_code in api.REFUSAL_STATUSES and bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)

    def parse_retry_after(self, retry_after: str) -> float:
        # A Retry-After of hours would hold a worker slot for hours; past MAX_BACKOFF the task's
        # own retry or the sensor's next poke is the better place to wait.
        return min(super().parse_retry_after(retry_after), MAX_BACKOFF)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> _GoRetry:
        new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
        where = f"{_pool.scheme}://{_pool.host}:{_pool.port}{url}" if _pool and url else url
        cause = f"HTTP {response.status}" if response is not None else type(error).__name__
        retry_after = new_retry.get_retry_after(response) if response is not None else None
        delay = retry_after if retry_after is not None else new_retry.get_backoff_time()
        log.warning(
            "GO request %s %s failed with %s; retrying in %.1f s (%d retries left).",
            method,
            where,
            cause,
            delay,
            new_retry.total or 0,
        )
        return new_retry


logging.getLogger("urllib3.connectionpool").addFilter(_HideUrllib3RetryNotices())


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


def _request_was_sent(error: requests.RequestException) -> bool:
    """Whether a failed request may have reached GO (and so, for a POST, may have started a job)."""
    if isinstance(error, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    reason: object = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, ProxyError):
        reason = reason.original_error
    # NewConnectionError and NameResolutionError are ConnectTimeoutErrors too: nothing was sent.
    return not isinstance(reason, ConnectTimeoutError)


class ProteusHook(BaseHook):
    """Call Orbital Insight GO's REST API with the token and settings of a ``proteus`` connection.

    One hook holds one ``requests.Session``. Every request has a timeout, and transient failures
    (connection errors, 429, 5xx) are retried with exponential backoff by urllib3, honouring
    ``Retry-After``. A job submission (POST) is retried only when GO certainly did not act on it.
    Errors are typed (see :mod:`airflow_provider_proteus.exceptions`) and never carry the token.

    :param proteus_conn_id: The Airflow connection to use. Its host is GO's API base URL (empty
        means production), its password the API token; its extra holds optional settings, see the
        README.
    """

    conn_name_attr = "proteus_conn_id"
    default_conn_name = "proteus_default"
    conn_type = "proteus"
    hook_name = "Orbital Insight GO"

    #: The id :meth:`test_connection` asks for: an id GO will not have, so a 404 proves that the
    #: base URL is GO and the token was accepted, without reading or changing anything.
    CONNECTION_TEST_PROJECT_ID: ClassVar[str] = "airflow-connection-test"

    def __init__(self, proteus_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.proteus_conn_id = proteus_conn_id
        self._settings: ProteusConnectionSettings | None = None
        self._session: requests.Session | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Shape Airflow's connection form: a base URL, a token, and the optional extra."""
        return connection_field_behaviour()

    @property
    def settings(self) -> ProteusConnectionSettings:
        """The connection's validated settings, read once per hook."""
        if self._settings is None:
            conn = self.get_connection(self.proteus_conn_id)
            if conn.password:
                mask_secret(conn.password)
            self._settings = settings_from_connection(
                self.proteus_conn_id,
                host=conn.host,
                port=conn.port,
                schema=conn.schema,
                password=conn.password,
                extra=parse_extra(self.proteus_conn_id, conn.extra),
            )
        return self._settings

    def get_conn(self) -> requests.Session:
        """The hook's session, with authentication headers and the retry policy mounted."""
        if self._session is None:
            settings = self.settings
            retry = _GoRetry(
                total=settings.max_retries,
                connect=settings.max_retries,
                # Everything that is neither a connection, a read nor a status problem (a failed TLS
                # handshake, mostly) will fail the same way again.
                other=0,
                read=settings.max_retries,
                status=settings.max_retries,
                backoff_factor=settings.retry_backoff,
                backoff_max=MAX_BACKOFF,
                status_forcelist=RETRY_STATUSES,
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=retry)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update(settings.headers)
            session.proxies.update(settings.proxies)
            session.verify = settings.verify
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the session's pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _call(
        self,
        method: str,
        url: str,
        *,
        expected_status: int,
        expected_type: type[dict[str, Any]] | type[list[Any]],
        json_body: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        session = self.get_conn()
        settings = self.settings
        try:
            response = session.request(
                method, url, json=json_body, params=params, timeout=settings.timeout, verify=settings.verify
            )
        except requests.exceptions.SSLError as err:
            raise ProteusTLSError(
                f"GO request {method} {url} failed in the TLS handshake: "
                f"{api.redact(str(err.args[0] if err.args else err), [settings.token])}. Check the scheme of "
                "the connection host (http or https) and the extra's 'verify' setting.",
                method=method,
                url=url,
            ) from None
        except requests.RequestException as err:
            sent = _request_was_sent(err)
            reason = api.redact(str(err.args[0] if err.args else err), [settings.token])
            consequence = (
                " GO may have received the request before the connection failed."
                if sent and method == "POST"
                else ""
            )
            raise ProteusConnectionError(
                f"GO request {method} {url} failed: {type(err).__name__}: {reason}.{consequence}",
                method=method,
                url=url,
                request_may_have_been_processed=sent,
            ) from None
        log.debug("GO answered %s %s with HTTP %s.", method, url, response.status_code)
        data = api.interpret_response(
            method=method,
            url=url,
            status=response.status_code,
            body=response.content,
            expected_status=expected_status,
            secrets=[settings.token],
        )
        if not isinstance(data, expected_type):
            raise ProteusResponseError(
                f"GO answered {method} {url} with a {type(data).__name__} in 'data' where "
                f"{'an object' if expected_type is dict else 'a list'} was expected",
                method=method,
                url=url,
                status=response.status_code,
            )
        return data

    def get_project(self, project_id: str) -> dict[str, Any]:
        """Return the project document (``GET /projects/{P}``), including its ``stage``.

        :param project_id: The GO project id.
        """
        api.validate_id("project_id", project_id)
        url = api.project_url(self.settings.base_url, project_id)
        project: dict[str, Any] = self._call("GET", url, expected_status=200, expected_type=dict)
        return project

    def submit_job(self, project_id: str, version_id: str) -> dict[str, Any]:
        """Start a job for a project version (``POST .../versions/{V}/job``) and return the job document.

        The body is ``{"active": true}``; GO answers 201. The request is sent again only after a
        429 or 503 or a failure to connect, never after an error that leaves open whether GO started
        a job.

        :param project_id: The GO project id.
        :param version_id: The id of the version to run, usually the project id plus ``-1.0.0``.
        """
        api.validate_id("project_id", project_id)
        api.validate_id("version_id", version_id)
        url = api.job_url(self.settings.base_url, project_id, version_id)
        job: dict[str, Any] = self._call(
            "POST", url, expected_status=201, expected_type=dict, json_body={"active": True}
        )
        return job

    def get_version_collection(self, project_id: str, version_id: str, collection: str) -> list[Any]:
        """Return all of a version's ``aois``, ``divisions`` or ``results`` (``limit=-1``).

        :param project_id: The GO project id.
        :param version_id: The version id.
        :param collection: ``"aois"``, ``"divisions"`` or ``"results"``.
        """
        if collection not in ("aois", "divisions", "results"):
            raise ProteusConfigurationError(
                f"collection must be 'aois', 'divisions' or 'results', got {collection!r}"
            )
        api.validate_id("project_id", project_id)
        api.validate_id("version_id", version_id)
        url = api.version_collection_url(self.settings.base_url, project_id, version_id, collection)
        items: list[Any] = self._call(
            "GET", url, expected_status=200, expected_type=list, params={"limit": -1}
        )
        return items

    def project_web_url(self, project_id: str) -> str:
        """The project's page in the GO web app (see the ``web_url`` connection extra)."""
        return api.web_project_url(self.settings.web_url, project_id)

    def test_connection(self) -> tuple[bool, str]:
        """Check the base URL and the token with a read that changes nothing.

        Asks for a project id that cannot exist: a 404 means GO answered and accepted the token.
        """
        try:
            self.get_project(self.CONNECTION_TEST_PROJECT_ID)
        except ProteusNotFoundError:
            return True, f"Connected to GO at {self.settings.base_url}; the token was accepted."
        except ProteusAuthenticationError as err:
            return False, f"GO refused the token (HTTP {err.status}): {err.server_message}"
        except ProteusHTTPError as err:
            return False, f"GO answered HTTP {err.status}: {err.server_message}"
        except (ProteusConfigurationError, ProteusRequestError) as err:
            return False, str(err)
        return True, f"Connected to GO at {self.settings.base_url}; the token was accepted."
