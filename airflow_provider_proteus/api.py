"""What GO's requests and answers mean, with no HTTP client in it.

Every assumption this provider makes about GO's shapes is a named constant or a small
function in this module, so that there is one place to read and one place to change when
GO behaves differently from its documentation. Where a user can adjust an assumption
without a new release, the connection extra says how (see the README).

The documented facts: answers are JSON envelopes ``{"data": ..., "status": N}``; a job
submission answers 201; the project's ``stage`` includes ``NOT_STARTED``, ``RUNNING``,
``COMPLETED`` and ``FAILURE``; a STREAMX job's id is ``streamx_data.id``. Everything
else below is marked as an assumption.
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_proteus.exceptions import (
    ProteusAuthenticationError,
    ProteusConfigurationError,
    ProteusHTTPError,
    ProteusNotFoundError,
    ProteusProjectFailedError,
    ProteusResponseError,
    ProteusStageError,
    ProteusUnknownStageError,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

#: GO's production API, used when a connection leaves the host empty.
DEFAULT_BASE_URL = "https://go-services.orbitalinsight.com/api/v2/go"

#: Assumption: the GO web app, where a project's page lives at ``/projects/{id}``. GO's
#: documentation does not give the web app's URL; the connection extra ``web_url`` overrides it.
DEFAULT_WEB_URL = "https://go.orbitalinsight.com"

#: The documented header for the user token; ``auth_header: "bearer"`` in the extra switches to
#: ``Authorization: Bearer``, which GO's Python example uses.
TOKEN_HEADER = "X-Orbitalinsight-Auth-Token"  # noqa: S105 - a header name

COMPLETED = "COMPLETED"
FAILURE = "FAILURE"
NOT_STARTED = "NOT_STARTED"
RUNNING = "RUNNING"

#: Stages during which a job is pending or under way. GO says its stages "include" the four
#: documented ones, so users can add more (sensor argument or connection extra).
WAITING_STAGES = frozenset({NOT_STARTED, RUNNING})

#: Assumption: where the job id sits, by job type. Only STREAMX is documented. For any other type
#: the provider looks in ``<job type in lower case>_data`` for the keys in ``JOB_ID_KEYS``; the
#: connection extra ``job_id_paths`` can name a dotted path per job type instead.
JOB_ID_PATHS: Mapping[str, str] = {"STREAMX": "streamx_data.id"}
JOB_ID_KEYS = ("id", "dag_run_id", "run_id")

#: Statuses that say the server did not act on the request: 429 (rate limited) and 503 (unable to
#: handle it now). Only these, and failures to connect, let a job submission be sent again.
REFUSAL_STATUSES = frozenset({429, 503})

#: Statuses that mean "not now" rather than "no" for a read: rate limiting, gateway or server trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

#: The longest wait between two retries, in seconds, whatever the backoff or Retry-After says: a
#: longer wait would hold a worker slot for nothing; the task's retry or the next poke can wait.
MAX_BACKOFF = 120.0


def retry_status(method: str, status: int) -> bool:
    """Whether an answer with ``status`` makes the same request worth sending again.

    A read is retried on any of :data:`RETRY_STATUSES`. A job submission only on a refusal
    (:data:`REFUSAL_STATUSES`): after a 500, 502 or 504 GO may have started the job.
    """
    return status in (REFUSAL_STATUSES if method.upper() == "POST" else RETRY_STATUSES)


def backoff_seconds(failures: int, factor: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retrying after ``failures`` failed attempts in a row.

    The server's ``Retry-After`` wins; otherwise no wait after the first failure, then ``factor``
    times 2, 4, 8, ... (urllib3's schedule, which the sync hook uses), never above
    :data:`MAX_BACKOFF`.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_BACKOFF)
    if failures <= 1:
        return 0.0
    return min(factor * 2.0 ** (failures - 1), MAX_BACKOFF)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max((moment - datetime.datetime.now(datetime.timezone.utc)).total_seconds(), 0.0)


def retry_failure(method: str, *, request_sent: bool) -> bool:
    """Whether a request that got no answer (connection error, timeout) is worth sending again.

    One that never reached GO always is; one that did only when it reads, since a job submission
    may have started a job.
    """
    return not request_sent or method.upper() != "POST"


#: Assumption: list endpoints (a version's aois, divisions and results, and a result's time series) page
#: with ``limit`` and ``offset``, answer full pages until the last one, and return everything for
#: ``limit=-1`` (GO's own example sends it). How many items a page may hold is not documented; the
#: connection extra ``page_size`` overrides this (``-1`` asks for everything in one request).
DEFAULT_PAGE_SIZE = 1000

#: The collections a project version lists.
VERSION_COLLECTIONS = ("aois", "divisions", "results")

#: Assumption: a result lists the time-series types it offers in this field (GO's documentation names
#: types such as ``raw.count`` but not the result's fields); results operators can name types instead.
RESULT_TIMESERIES_TYPES_FIELD = "timeseries_types"

#: How much of an unexpected body goes into an error message.
BODY_EXCERPT_CHARS = 200

# Characters that would change the meaning of a URL path even when percent-encoded by a lenient
# server or proxy, or that can only come from a mistake (whitespace, control characters).
_UNSAFE_ID = re.compile(r"[/\\?#%\s\x00-\x1f\x7f]")
_UNRENDERED_TEMPLATE = re.compile(r"\{\{|\}\}|\{%|%\}")


class StageOutcome(enum.Enum):
    """What a project's stage means for somebody waiting on it."""

    DONE = "done"
    WAITING = "waiting"
    FAILED = "failed"
    UNKNOWN = "unknown"


def classify_stage(stage: str, *, extra_waiting_stages: Collection[str] = ()) -> StageOutcome:
    """Decide what a stage means. Only ``COMPLETED`` is success; a stage nobody declared is unknown.

    :param stage: The ``stage`` value of a project document.
    :param extra_waiting_stages: Stages the user declared as "still waiting", on top of
        ``NOT_STARTED`` and ``RUNNING``.
    """
    if stage == COMPLETED:
        return StageOutcome.DONE
    if stage == FAILURE:
        return StageOutcome.FAILED
    if stage in WAITING_STAGES or stage in extra_waiting_stages:
        return StageOutcome.WAITING
    return StageOutcome.UNKNOWN


def stage_error(project_id: str, stage: str, outcome: StageOutcome) -> ProteusStageError | None:
    """The error that ends a wait at ``stage``, or ``None`` while the stage is done or waiting.

    One wording for the sensor's pokes, the trigger's events and the operator's checks.
    """
    if outcome is StageOutcome.FAILED:
        return ProteusProjectFailedError(
            f"Project {project_id} reached stage {stage}: GO could not complete it. See the project in "
            "GO for the reason; results will not be available.",
            project_id=project_id,
            stage=stage,
        )
    if outcome is StageOutcome.UNKNOWN:
        return ProteusUnknownStageError(
            f"Project {project_id} is at stage {stage!r}, which this provider does not know. If GO uses "
            'it while a job is pending or running, list it in the connection extra "waiting_stages" '
            "(or in ProjectStageSensor's waiting_stages).",
            project_id=project_id,
            stage=stage,
        )
    return None


def validate_id(name: str, value: object) -> str:
    """Return ``value`` if it can be used as one segment of a GO URL path, else raise.

    GO generates its ids (``O1ymF8uopj-190812``, ``O1ymF8uopj-190812-1.0.0``). An id that is empty,
    padded with whitespace, still a Jinja template, or that contains characters which could change
    the request's path is refused before anything is sent.

    :param name: The argument's name, used in the error message.
    :param value: The id as given (after templating).
    """
    if not isinstance(value, str):
        raise ProteusConfigurationError(f"{name} must be a string, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise ProteusConfigurationError(
            f"{name} is empty or blank; give the GO id, for example 'O1ymF8uopj-190812'"
        )
    if _UNRENDERED_TEMPLATE.search(value):
        raise ProteusConfigurationError(
            f"{name} {value!r} still contains template markers; it is not a templated field here, "
            "or the template did not render"
        )
    if value in (".", "..") or _UNSAFE_ID.search(value):
        raise ProteusConfigurationError(
            f"{name} {value!r} is not a GO id: ids cannot contain whitespace, '/', '\\', '?', '#', "
            "'%' or control characters, and cannot be '.' or '..'"
        )
    return value


def normalize_base_url(host: str | None, *, port: int | None = None, path: str | None = None) -> str:
    """Build the API base URL from a connection's host, port and schema (path) fields.

    An empty host means GO's production URL. A host without a scheme gets ``https://``. The port
    and path fields are used when the host does not already carry them, so the same base URL comes
    out of the UI form (full URL in host), a JSON connection and a URI connection
    (``proteus://:TOKEN@api.example.com:8443/api/v2/go`` puts ``api/v2/go`` in the schema field).
    The result has no trailing slash.

    :param host: The connection's host field.
    :param port: The connection's port field.
    :param path: The connection's schema field, used as the path prefix.
    """
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        host = f"https://{host}"
    try:
        parts = urlsplit(host)
        url_port = parts.port
    except ValueError as err:
        raise ProteusConfigurationError(f"The connection host {host!r} is not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https"):
        raise ProteusConfigurationError(
            f"The connection host must be an http or https URL, got scheme {parts.scheme!r}"
        )
    if not parts.hostname:
        raise ProteusConfigurationError(f"The connection host {host!r} names no host")
    if parts.username or parts.password:
        raise ProteusConfigurationError(
            "The connection host must not contain credentials; put the API token in the password field"
        )
    if parts.query or parts.fragment:
        raise ProteusConfigurationError("The connection host must not contain a query string or fragment")
    if port and url_port and port != url_port:
        raise ProteusConfigurationError(
            f"The connection host says port {url_port} and the port field says {port}; keep one"
        )

    netloc = parts.netloc if url_port or not port else f"{parts.netloc}:{port}"
    prefix = parts.path.strip("/") or (path or "").strip().strip("/")
    return f"{parts.scheme}://{netloc}/{prefix}" if prefix else f"{parts.scheme}://{netloc}"


def build_url(base_url: str, *segments: str) -> str:
    """Join the base URL and path segments with exactly one ``/`` each, percent-encoding segments.

    :param base_url: A base URL as returned by :func:`normalize_base_url`.
    :param segments: Literal path parts and ids, each one path segment.
    """
    return "/".join([base_url.rstrip("/"), *(quote(segment, safe="") for segment in segments)])


def project_url(base_url: str, project_id: str) -> str:
    """URL of ``GET /projects/{P}``."""
    return build_url(base_url, "projects", project_id)


def job_url(base_url: str, project_id: str, version_id: str) -> str:
    """URL of ``POST /projects/{P}/versions/{V}/job``."""
    return build_url(base_url, "projects", project_id, "versions", version_id, "job")


def version_collection_url(base_url: str, project_id: str, version_id: str, collection: str) -> str:
    """URL of a version's ``aois``, ``divisions`` or ``results``."""
    return build_url(base_url, "projects", project_id, "versions", version_id, collection)


def timeseries_url(base_url: str, project_id: str, version_id: str, result_id: str, ts_type: str) -> str:
    """URL of ``GET .../versions/{V}/results/{R}/timeseries/{type}``."""
    return build_url(
        base_url, "projects", project_id, "versions", version_id, "results", result_id, "timeseries", ts_type
    )


def web_project_url(web_url: str, project_id: str) -> str:
    """URL of a project's page in the GO web app (an assumption, see :data:`DEFAULT_WEB_URL`)."""
    return build_url(web_url, "projects", project_id)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def body_excerpt(body: bytes, *, secrets: Iterable[str] = ()) -> str:
    """A short, single-line, secret-free excerpt of a response body for error messages."""
    text = body.decode("utf-8", errors="replace")
    text = redact(" ".join(text.split()), secrets)
    if len(text) > BODY_EXCERPT_CHARS:
        text = text[:BODY_EXCERPT_CHARS] + "..."
    return text or "(empty body)"


def server_message(body: bytes, *, secrets: Iterable[str] = ()) -> str:
    """GO's error message from a body, or a short excerpt when the body carries none.

    Assumption: GO's error bodies are not documented. A JSON object with a ``message``, ``error``
    or ``detail`` key (at the top or inside ``data``) is read as the message; anything else is
    quoted as an excerpt.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        return body_excerpt(body, secrets=secrets)
    for candidate in (payload, payload.get("data") if isinstance(payload, dict) else None):
        if isinstance(candidate, dict):
            for key in ("message", "error", "detail"):
                value = candidate.get(key)
                if isinstance(value, str) and value.strip():
                    return body_excerpt(value.encode(), secrets=secrets)
    return body_excerpt(body, secrets=secrets)


def interpret_response(
    *,
    method: str,
    url: str,
    status: int,
    body: bytes,
    expected_status: int,
    expected_type: type[dict[str, Any]] | type[list[Any]] | None = None,
    secrets: Iterable[str] = (),
) -> Any:
    """Turn one HTTP answer into the envelope's ``data``, or raise the error it stands for.

    :param method: The HTTP method of the request, for error messages.
    :param url: The request URL without secrets, for error messages.
    :param status: The HTTP status code of the answer.
    :param body: The raw body of the answer.
    :param expected_status: The documented success status (200 for reads, 201 for a job).
    :param expected_type: ``dict`` or ``list`` when ``data`` must be an object or a list.
    :param secrets: Strings to blank out of any excerpt of the body (the token).
    """
    secrets = tuple(secrets)
    if status != expected_status:
        raise http_error(method=method, url=url, status=status, body=body, secrets=secrets)

    try:
        payload = json.loads(body)
    except ValueError:
        raise ProteusResponseError(
            f"GO answered {method} {url} with HTTP {status} but the body is not JSON "
            f"({body_excerpt(body, secrets=secrets)}); check that the connection host is GO's API "
            "base URL",
            method=method,
            url=url,
            status=status,
        ) from None
    if not isinstance(payload, dict) or "data" not in payload:
        raise ProteusResponseError(
            f"GO answered {method} {url} with HTTP {status} but the body is not GO's "
            f'{{"data": ...}} envelope ({body_excerpt(body, secrets=secrets)})',
            method=method,
            url=url,
            status=status,
        )
    data = payload["data"]
    if expected_type is not None and not isinstance(data, expected_type):
        raise ProteusResponseError(
            f"GO answered {method} {url} with a {type(data).__name__} in 'data' where "
            f"{'an object' if expected_type is dict else 'a list'} was expected",
            method=method,
            url=url,
            status=status,
        )
    return data


def is_go_answer(body: bytes) -> bool:
    """Whether a body is shaped like GO's: a JSON object with a ``data`` or ``status`` key.

    Assumption: GO's error bodies are undocumented; this provider takes them to follow the
    documented envelope (``{"data": ..., "status": N}``, with a message), as the emulator's do. An
    error body of another shape (``{"detail": "Not Found"}``, an HTML page) points at a base URL
    that is not GO's API.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and ("data" in payload or "status" in payload)


def http_error(
    *, method: str, url: str, status: int, body: bytes, secrets: Iterable[str] = ()
) -> ProteusHTTPError | ProteusResponseError:
    """The typed error for an unexpected HTTP status, with a message that says what to check."""
    message = server_message(body, secrets=secrets)
    prefix = f"GO answered {method} {url} with HTTP {status}: {message}."
    if status in (401, 403):
        hint = (
            "Check the API token in the connection's password field, and that the project is shared "
            "with the token's user."
        )
        error_class: type[ProteusHTTPError] = ProteusAuthenticationError
    elif status == 404 and not is_go_answer(body):
        return ProteusResponseError(
            f"{prefix} That answer is not GO's: check that the connection host is GO's API base URL "
            f"(GO's own is {DEFAULT_BASE_URL}).",
            method=method,
            url=url,
            status=status,
        )
    elif status == 404:
        hint = "Check the project and version ids, and that the project is shared with the token's user."
        error_class = ProteusNotFoundError
    elif method.upper() == "POST" and status >= 500 and status not in REFUSAL_STATUSES:
        hint = "GO may have acted on the request before failing, so it was not sent again."
        error_class = ProteusHTTPError
    elif status in REFUSAL_STATUSES or status >= 500:
        hint = "GO kept answering with a temporary error after the hook's retries; try again later."
        error_class = ProteusHTTPError
    else:
        hint = "GO refused the request."
        error_class = ProteusHTTPError
    return error_class(f"{prefix} {hint}", method=method, url=url, status=status, server_message=message)


def project_stage(project: Any, *, project_id: str, url: str) -> str:
    """The ``stage`` of a project document, or a :class:`ProteusResponseError` if it has none.

    A missing or non-text stage never counts as any stage at all: GO always reports one.
    """
    stage = project.get("stage") if isinstance(project, dict) else None
    if not isinstance(stage, str) or not stage.strip():
        shape = (
            f"its 'stage' is {stage!r}" if isinstance(project, dict) else f"it is a {type(project).__name__}"
        )
        raise ProteusResponseError(
            f"GO answered GET {url} for project {project_id} without a usable 'stage' ({shape}), so "
            "it is not GO's project document: check that the connection host is GO's API base URL",
            method="GET",
            url=url,
            status=200,
        )
    return stage.strip()


def _lookup(document: Any, dotted_path: str) -> Any:
    for key in dotted_path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def find_job_id(job: Any, *, job_id_paths: Mapping[str, str] = JOB_ID_PATHS) -> tuple[str, str | None]:
    """Return ``(job_type, job_id)`` from the ``data`` of a job submission's answer.

    The job type names the sub-object that holds the details (``streamx_data`` for STREAMX). For a
    job type whose layout is not documented, the id is looked up as ``<type>_data.<key>`` for each
    key in :data:`JOB_ID_KEYS`; nothing else is guessed, so a job id is never taken from the wrong
    place. ``job_id`` is ``None`` when it cannot be found; callers treat that as an error.

    :param job: The ``data`` of the answer to ``POST .../job``.
    :param job_id_paths: Dotted paths to the id by job type, overriding the defaults.
    """
    if not isinstance(job, dict):
        return "UNKNOWN", None
    raw_type = job.get("job_type")
    job_type = raw_type.strip() if isinstance(raw_type, str) and raw_type.strip() else "UNKNOWN"

    paths = {**JOB_ID_PATHS, **job_id_paths}
    if job_type in paths:
        candidates = [paths[job_type]]
    else:
        candidates = [f"{job_type.lower()}_data.{key}" for key in JOB_ID_KEYS]
    for path in candidates:
        value = _lookup(job, path)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return job_type, str(value)
    return job_type, None
