"""Errors raised by the provider.

Callers decide between "try again later" and "stop now" from the type and the
:attr:`ProteusError.transient` flag, never by parsing a message. Messages name the project,
the HTTP status, the method and the URL, and never contain the API token.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from collections.abc import Iterator


class ProteusError(AirflowException):
    """Base class of every error this provider raises."""

    #: Whether the same call may succeed if it is made again later.
    transient: bool = False


class ProteusConfigurationError(ProteusError):
    """A connection, an argument or an id cannot be used as given; nothing was sent to GO."""


class ProteusRequestError(ProteusError):
    """A request to GO did not produce a usable answer.

    :param message: What went wrong and what to check.
    :param method: The HTTP method of the request.
    :param url: The request URL (it never carries the token).
    """

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class ProteusConnectionError(ProteusRequestError):
    """GO could not be reached, or its answer was lost on the way (connection error or timeout).

    :param request_may_have_been_processed: ``True`` when the request had been sent before the
        connection failed, so GO may have acted on it. For a job submission this means a job may
        exist although no answer arrived; sending it again could start a second job.
    :param reason: Optional. Why no answer came, in plain words ("the connection was refused").
    """

    transient = True

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        request_may_have_been_processed: bool,
        reason: str = "the connection failed",
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.request_may_have_been_processed = request_may_have_been_processed
        self.reason = reason


class ProteusTLSError(ProteusRequestError):
    """The TLS handshake with GO failed: a wrong scheme (https to an http server), or a certificate
    that ``verify`` rejects. Not retried: it fails the same way until the connection is fixed."""


class ProteusHTTPError(ProteusRequestError):
    """GO answered with an HTTP status that is not the expected one.

    :param status: The HTTP status code.
    :param server_message: The message GO gave, if its body had one, else a short excerpt.
    """

    def __init__(self, message: str, *, method: str, url: str, status: int, server_message: str) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.server_message = server_message

    @property
    def transient(self) -> bool:  # type: ignore[override]
        """Rate limiting (429) and server-side errors (5xx) are worth another try later."""
        return self.status == 429 or self.status >= 500


class ProteusAuthenticationError(ProteusHTTPError):
    """GO refused the token (401) or the token has no access to the resource (403)."""


class ProteusNotFoundError(ProteusHTTPError):
    """GO does not know the project or version, or does not share it with the token's user (404)."""


class ProteusResponseError(ProteusRequestError):
    """The answer does not look like GO's: not JSON, not the ``{"data": ...}`` envelope, or a
    required field is missing. Usually the base URL points at something other than GO's API.

    :param status: The HTTP status code of the answer.
    """

    def __init__(self, message: str, *, method: str, url: str, status: int) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status


class ProteusStageError(ProteusError):
    """A project's stage ends the wait without success.

    :param message: What happened and what to do.
    :param project_id: The GO project id.
    :param stage: The stage GO reported.
    """

    def __init__(self, message: str, *, project_id: str, stage: str) -> None:
        super().__init__(message)
        self.project_id = project_id
        self.stage = stage


class ProteusProjectFailedError(ProteusStageError):
    """The project reached GO's ``FAILURE`` stage."""


class ProteusUnknownStageError(ProteusStageError):
    """GO reported a stage this provider does not know and the user has not declared as waiting."""


class ProteusResultsNotReadyError(ProteusStageError):
    """Results were asked for while the project is still pending or running."""


#: The attributes that, with the message, are enough to raise an error again in another process.
_DETAIL_ATTRIBUTES = (
    "method",
    "url",
    "status",
    "server_message",
    "request_may_have_been_processed",
    "project_id",
    "stage",
)


def error_details(err: ProteusError) -> dict[str, Any]:
    """An error as JSON primitives: its type, message and attributes (none of which hold the token).

    A trigger puts this in its event, so that the task resumed in a worker raises the same error
    the sync path would have raised.
    """
    return {
        "error_type": type(err).__name__,
        "message": str(err),
        "error_details": {name: getattr(err, name) for name in _DETAIL_ATTRIBUTES if hasattr(err, name)},
    }


def error_from_details(error_type: object, message: str, details: object) -> ProteusError:
    """The error that :func:`error_details` described; a plain :class:`ProteusError` if the type or
    its attributes are not recognised, so that a malformed description still fails the task."""
    known = {cls.__name__: cls for cls in _all_subclasses(ProteusError)}
    cls = known.get(str(error_type), ProteusError)
    try:
        return cls(message, **(details if isinstance(details, dict) else {}))
    except TypeError:
        return ProteusError(message)


def _all_subclasses(cls: type[ProteusError]) -> list[type[ProteusError]]:
    found = [cls]
    for subclass in cls.__subclasses__():
        found += _all_subclasses(subclass)
    return found


@contextmanager
def permanent_errors_fail_task() -> Iterator[None]:
    """Let Airflow retry a task after transient GO errors only.

    A permanent error (bad token, unknown project, a FAILURE stage, an answer that is not GO's)
    becomes :class:`~airflow.exceptions.AirflowFailException`, which fails the task without using
    its retries: trying again cannot help, and a user should read the message instead.
    """
    try:
        yield
    except ProteusError as err:
        if err.transient:
            raise
        raise AirflowFailException(str(err)) from err
