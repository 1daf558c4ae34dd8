"""Hook that turns a ``proteus`` connection into an authenticated, retrying HTTP session with GO."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import socket
import ssl
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import requests
import tenacity
from airflow.providers.common.compat.sdk import BaseHook
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    ProxyError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from airflow_provider_proteus import api
from airflow_provider_proteus.connection_settings import (
    ProteusConnectionSettings,
    parse_extra,
    settings_from_connection,
)
from airflow_provider_proteus.exceptions import (
    ProteusAuthenticationError,
    ProteusConfigurationError,
    ProteusConnectionError,
    ProteusError,
    ProteusHTTPError,
    ProteusNotFoundError,
    ProteusRequestError,
    ProteusResponseError,
    ProteusTLSError,
)
from airflow_provider_proteus.get_provider_info import connection_field_behaviour, connection_form_widgets
from airflow_provider_proteus.version_compat import aget_connection, mask_secret

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import TracebackType

    from airflow.providers.common.compat.sdk import Connection
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

log = logging.getLogger(__name__)


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
        return api.retry_status(method, status_code) and bool(self.total)

    def parse_retry_after(self, retry_after: str) -> float:
        # A Retry-After of hours would hold a worker slot for hours; past api.MAX_BACKOFF the task's
        # own retry or the sensor's next poke is the better place to wait.
        return min(super().parse_retry_after(retry_after), api.MAX_BACKOFF)

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


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and everything it wraps: causes, contexts, and the errors urllib3 keeps in ``args``
    and ``reason``."""
    found: list[BaseException] = []
    pending: list[object] = [error]
    while pending:
        cause = pending.pop()
        if isinstance(cause, BaseException) and all(cause is not known for known in found):
            found.append(cause)
            pending += [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args]
    return found


def _plain_reason(error: BaseException, timeout: float) -> str:
    """Why a request got no answer, in words a person understands."""
    causes = _causes(error)
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "the connection was refused (nothing listens at that address and port)"
    if any(isinstance(cause, (socket.gaierror, NameResolutionError)) for cause in causes):
        return "the host name could not be resolved"
    if any(isinstance(cause, (TimeoutError, ConnectTimeoutError, ReadTimeoutError)) for cause in causes):
        return f"no answer within the timeout of {timeout:g} s"
    return f"the connection failed ({type(error).__name__})"


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


class _RetryableError(Exception):
    """Raised inside the async retry loop for an answer or a failure worth another attempt.

    :param cause: What went wrong, for the retry log line ("HTTP 503", "ReadTimeout").
    :param response: The answer, when GO sent one.
    :param failure: The error to raise if no attempt is left, when GO sent none.
    """

    def __init__(
        self, cause: str, *, response: httpx.Response | None = None, failure: ProteusError | None = None
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.response = response
        self.failure = failure


def _last_retryable(state: tenacity.RetryCallState) -> _RetryableError | None:
    error = state.outcome.exception() if state.outcome is not None else None
    return error if isinstance(error, _RetryableError) else None


def _retry_after(state: tenacity.RetryCallState) -> float | None:
    error = _last_retryable(state)
    if error is None or error.response is None:
        return None
    return api.parse_retry_after(error.response.headers.get("Retry-After"))


def _caused_by_tls(error: BaseException) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _with_checked_stage(project: dict[str, Any], project_id: str, url: str) -> dict[str, Any]:
    return {**project, "stage": api.project_stage(project, project_id=project_id, url=url)}


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context for a ``verify`` setting, built once per process.

    Building one loads a whole CA bundle, several milliseconds of CPU that would otherwise block the
    triggerer's event loop on every poll. A CA bundle file changed on disk is read again only by a
    new process.
    """
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify)


def _proxy_mounts(proxies: Mapping[str, str], verify: bool | str) -> dict[str, httpx.AsyncBaseTransport]:
    """requests-style proxies (``{"https": "http://proxy:3128"}``) as httpx transport mounts."""
    return {
        (key if "://" in key else f"{key}://"): httpx.AsyncHTTPTransport(
            proxy=proxy, verify=_tls_context(verify)
        )
        for key, proxy in proxies.items()
    }


#: Requests one shared client has in flight at most. More wait their turn in an asyncio semaphore,
#: a cheap FIFO. httpx's connection pool does work in proportion to the requests and connections it
#: juggles for every request it serves: left to queue there, a triggerer with thousands of waits at
#: once spent ever more CPU per poll until it completed none. Ten at once cost the least per poll in
#: the benchmarks, and still allow a hundred polls a second from a GO that answers in 100 ms, which
#: is tens of thousands of waits at a 15-minute interval.
_MAX_IN_FLIGHT = 10


@dataclasses.dataclass
class _SharedClient:
    client: httpx.AsyncClient
    gate: asyncio.Semaphore


#: The async clients in use, by event loop and by the settings a client is built with. The triggerer
#: runs every deferred wait in one event loop: waits on the same connection share one client there, so
#: that its pool keeps GO's connections alive between polls instead of paying a TCP (and TLS) handshake
#: and a new client on each. Clients of different connections never share cookies or proxies.
_ASYNC_CLIENTS: dict[asyncio.AbstractEventLoop, dict[tuple[Any, ...], _SharedClient]] = {}


def _async_client(settings: ProteusConnectionSettings) -> _SharedClient:
    """The running event loop's client for ``settings``, made on first use."""
    for ended in [loop for loop in _ASYNC_CLIENTS if loop.is_closed()]:
        # A closed loop's connections cannot be closed any more; dropping them frees the sockets.
        del _ASYNC_CLIENTS[ended]
    clients = _ASYNC_CLIENTS.setdefault(asyncio.get_running_loop(), {})
    key = (
        tuple(sorted(settings.headers.items())),
        settings.timeout,
        settings.verify,
        tuple(sorted(settings.proxies.items())),
    )
    shared = clients.get(key)
    if shared is None or shared.client.is_closed:
        client = httpx.AsyncClient(
            headers=settings.headers,
            timeout=settings.timeout,
            verify=_tls_context(settings.verify),
            mounts=_proxy_mounts(settings.proxies, settings.verify),
            limits=httpx.Limits(max_connections=_MAX_IN_FLIGHT, max_keepalive_connections=_MAX_IN_FLIGHT),
        )
        shared = clients[key] = _SharedClient(client, asyncio.Semaphore(_MAX_IN_FLIGHT))
    return shared


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

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra's settings as fields of the connection form, on Airflow before 3.2.

        Airflow 3.2 and later read the same fields from the provider info (``conn-fields``) and do
        not call this.
        """
        return connection_form_widgets()

    @property
    def settings(self) -> ProteusConnectionSettings:
        """The connection's validated settings, read once per hook."""
        if self._settings is None:
            self._settings = self._settings_from(self.get_connection(self.proteus_conn_id))
        return self._settings

    async def asettings(self) -> ProteusConnectionSettings:
        """:attr:`settings`, looking the connection up without blocking the event loop."""
        if self._settings is None:
            self._settings = self._settings_from(await aget_connection(self.proteus_conn_id))
        return self._settings

    def _settings_from(self, conn: Connection) -> ProteusConnectionSettings:
        if conn.password:
            mask_secret(conn.password)
        return settings_from_connection(
            self.proteus_conn_id,
            host=conn.host,
            port=conn.port,
            schema=conn.schema,
            password=conn.password,
            extra=parse_extra(self.proteus_conn_id, conn.extra),
        )

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
                backoff_max=api.MAX_BACKOFF,
                status_forcelist=api.RETRY_STATUSES,
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

    def _data_of(
        self,
        response: requests.Response | httpx.Response,
        method: str,
        url: str,
        expected_status: int,
        expected_type: type[dict[str, Any]] | type[list[Any]],
    ) -> Any:
        """The ``data`` of an answer from either HTTP client, or the error it stands for."""
        return api.interpret_response(
            method=method,
            url=url,
            status=response.status_code,
            body=response.content,
            expected_status=expected_status,
            expected_type=expected_type,
            secrets=[self.settings.token],
        )

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
                reason=_plain_reason(err, settings.timeout),
            ) from None
        log.debug("GO answered %s %s with HTTP %s.", method, url, response.status_code)
        return self._data_of(response, method, url, expected_status, expected_type)

    async def _acall(
        self,
        method: str,
        url: str,
        *,
        expected_status: int,
        expected_type: type[dict[str, Any]] | type[list[Any]],
    ) -> Any:
        """The async twin of :meth:`_call`, on httpx: same headers, timeouts, retries and errors.

        The retry decisions come from :mod:`airflow_provider_proteus.api`, as the sync path's do;
        tenacity schedules them.
        """
        settings = await self.asettings()
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(settings.max_retries + 1),
            wait=lambda state: api.backoff_seconds(
                state.attempt_number, settings.retry_backoff, _retry_after(state)
            ),
            retry=tenacity.retry_if_exception_type(_RetryableError),
            before_sleep=lambda state: log.warning(
                "GO request %s %s failed with %s; retrying in %.1f s (%d retries left).",
                method,
                url,
                getattr(_last_retryable(state), "cause", "an error"),
                state.upcoming_sleep,
                settings.max_retries + 1 - state.attempt_number,
            ),
            reraise=True,
        )
        shared = _async_client(settings)
        try:
            async for attempt in retrying:
                with attempt:
                    async with shared.gate:
                        response = await self._asend(shared.client, method, url)
        except _RetryableError as last:
            if last.response is None:
                raise last.failure or ProteusRequestError(last.cause, method=method, url=url) from None
            response = last.response
        return self._data_of(response, method, url, expected_status, expected_type)

    async def _asend(self, client: httpx.AsyncClient, method: str, url: str) -> httpx.Response:
        """One attempt; raises :class:`_RetryableError` for what the retry policy retries."""
        token = self.settings.token
        try:
            response = await client.request(method, url)
        except httpx.TransportError as err:
            reason = api.redact(str(err) or type(err).__name__, [token])
            if _caused_by_tls(err):
                raise ProteusTLSError(
                    f"GO request {method} {url} failed in the TLS handshake: {reason}. Check the scheme of "
                    "the connection host (http or https) and the extra's 'verify' setting.",
                    method=method,
                    url=url,
                ) from None
            sent = not isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout))
            consequence = " GO may have received the request before the connection failed." if sent else ""
            failure = ProteusConnectionError(
                f"GO request {method} {url} failed: {type(err).__name__}: {reason}.{consequence}",
                method=method,
                url=url,
                request_may_have_been_processed=sent,
            )
            if api.retry_failure(method, request_sent=sent):
                raise _RetryableError(type(err).__name__, failure=failure) from None
            raise failure from None
        if api.retry_status(method, response.status_code):
            raise _RetryableError(f"HTTP {response.status_code}", response=response)
        log.debug("GO answered %s %s with HTTP %s.", method, url, response.status_code)
        return response

    async def aget_project(self, project_id: str) -> dict[str, Any]:
        """Async :meth:`get_project`, for triggers: same URL, auth, retries and errors.

        :param project_id: The GO project id.
        """
        api.validate_id("project_id", project_id)
        url = api.project_url((await self.asettings()).base_url, project_id)
        project = await self._acall("GET", url, expected_status=200, expected_type=dict)
        return _with_checked_stage(project, project_id, url)

    def get_project(self, project_id: str) -> dict[str, Any]:
        """Return the project document (``GET /projects/{P}``), including its ``stage``.

        A document without a usable ``stage`` is not GO's and raises
        :class:`~airflow_provider_proteus.exceptions.ProteusResponseError`, so ``project["stage"]`` is
        always a non-blank string.

        :param project_id: The GO project id.
        """
        api.validate_id("project_id", project_id)
        url = api.project_url(self.settings.base_url, project_id)
        project = self._call("GET", url, expected_status=200, expected_type=dict)
        return _with_checked_stage(project, project_id, url)

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

    def _paged(self, url: str, what: str, params: Mapping[str, str | int] | None = None) -> Iterator[Any]:
        """Yield every item of a list endpoint, one page (``limit``, ``offset``) at a time.

        Pages hold :attr:`ProteusConnectionSettings.page_size` items (``-1``: one request for
        everything); the first page shorter than that is the last. A server that ignores ``limit`` or
        ``offset`` would return some items twice or never stop, so either is refused with an error.
        """
        page_size = self.settings.page_size
        if page_size == -1:
            items: list[Any] = self._call(
                "GET", url, expected_status=200, expected_type=list, params={**(params or {}), "limit": -1}
            )
            yield from items
            return

        offset = 0
        first_item: Any = None
        while True:
            query = {**(params or {}), "limit": page_size, "offset": offset}
            page: list[Any] = self._call("GET", url, expected_status=200, expected_type=list, params=query)
            if len(page) > page_size or (offset and page and page[0] == first_item):
                broken = "limit" if len(page) > page_size else "offset"
                raise ProteusResponseError(
                    f"GO answered GET {url} (limit={page_size}, offset={offset}) with {len(page)} {what} "
                    f"that show it ignores '{broken}', so paging cannot read them whole; set the "
                    'connection extra "page_size" to -1 to ask for everything in one request',
                    method="GET",
                    url=url,
                    status=200,
                )
            if offset == 0 and page:
                first_item = page[0]
            yield from page
            if len(page) < page_size:
                return
            offset += page_size

    def iter_version_collection(self, project_id: str, version_id: str, collection: str) -> Iterator[Any]:
        """Yield every item of a version's ``aois``, ``divisions`` or ``results``, page by page.

        :param project_id: The GO project id.
        :param version_id: The version id.
        :param collection: ``"aois"``, ``"divisions"`` or ``"results"``.
        """
        if collection not in api.VERSION_COLLECTIONS:
            raise ProteusConfigurationError(
                f"collection must be one of {', '.join(api.VERSION_COLLECTIONS)}, got {collection!r}"
            )
        api.validate_id("project_id", project_id)
        api.validate_id("version_id", version_id)
        url = api.version_collection_url(self.settings.base_url, project_id, version_id, collection)
        return self._paged(url, collection)

    def get_version_collection(self, project_id: str, version_id: str, collection: str) -> list[Any]:
        """Return all of a version's ``aois``, ``divisions`` or ``results`` as one list.

        :param project_id: The GO project id.
        :param version_id: The version id.
        :param collection: ``"aois"``, ``"divisions"`` or ``"results"``.
        """
        return list(self.iter_version_collection(project_id, version_id, collection))

    def get_aois(self, project_id: str, version_id: str) -> list[dict[str, Any]]:
        """Return a version's areas of interest (each has an ``id``, and ``name``, ``country``, ...)."""
        return self.get_version_collection(project_id, version_id, "aois")

    def get_divisions(self, project_id: str, version_id: str) -> list[dict[str, Any]]:
        """Return a version's divisions: ``division_id`` (an AOI's id at the top) and ``children``."""
        return self.get_version_collection(project_id, version_id, "divisions")

    def get_results(self, project_id: str, version_id: str) -> list[dict[str, Any]]:
        """Return a version's results, each tied to a division by ``division_id``."""
        return self.get_version_collection(project_id, version_id, "results")

    def iter_timeseries(
        self, project_id: str, version_id: str, result_id: str, timeseries_type: str
    ) -> Iterator[dict[str, Any]]:
        """Yield the points of one of a result's time series (``x_value``, ``y_value``), page by page.

        :param project_id: The GO project id.
        :param version_id: The version id.
        :param result_id: The result's ``id``.
        :param timeseries_type: The series, for example ``raw.count``.
        """
        api.validate_id("project_id", project_id)
        api.validate_id("version_id", version_id)
        api.validate_id("result_id", result_id)
        api.validate_id("timeseries_type", timeseries_type)
        url = api.timeseries_url(self.settings.base_url, project_id, version_id, result_id, timeseries_type)
        return self._paged(url, "points", {"format": "json"})

    def get_timeseries(
        self, project_id: str, version_id: str, result_id: str, timeseries_type: str
    ) -> list[dict[str, Any]]:
        """Return all points of one of a result's time series; see :meth:`iter_timeseries`."""
        return list(self.iter_timeseries(project_id, version_id, result_id, timeseries_type))

    def project_web_url(self, project_id: str) -> str:
        """The project's page in the GO web app (see the ``web_url`` connection extra)."""
        return api.web_project_url(self.settings.web_url, project_id)

    def test_connection(self) -> tuple[bool, str]:
        """Check the base URL and the token with a read that changes nothing, in words for a person.

        Asks for a project id that cannot exist: a 404 in GO's envelope means GO answered and accepted
        the token. It tries once, without the connection's retries, because a person is waiting for
        the answer.
        """
        try:
            settings = self.settings
        except ProteusConfigurationError as err:
            return False, str(err)
        probe = ProteusHook(self.proteus_conn_id)
        probe._settings = dataclasses.replace(settings, max_retries=0)
        where = settings.base_url
        try:
            probe.get_project(self.CONNECTION_TEST_PROJECT_ID)
        except ProteusNotFoundError:
            return True, f"Connected to GO at {where}; the token was accepted."
        except ProteusAuthenticationError as err:
            return False, (
                f"GO at {where} refused the API token (HTTP {err.status}: {err.server_message}). Check the "
                "token in the connection's password field."
            )
        except ProteusConnectionError as err:
            return False, (
                f"Could not reach GO at {where}: {err.reason}. Check the API base URL in the host field, "
                "and that this machine can reach it (proxies, firewall)."
            )
        except ProteusResponseError:
            return False, (
                f"{where} answered, but not the way GO's API does. Check the API base URL in the host "
                f"field; GO's own is {api.DEFAULT_BASE_URL}."
            )
        except ProteusHTTPError as err:
            return False, f"GO at {where} answered HTTP {err.status}: {err.server_message}"
        except ProteusRequestError as err:
            return False, str(err)
        finally:
            probe.close()
        return True, f"Connected to GO at {where}; the token was accepted."
