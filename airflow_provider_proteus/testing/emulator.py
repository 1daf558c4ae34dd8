"""An emulator of GO's REST API, for demos, tests and offline DAG development.

It serves the documented endpoints under ``/api/v2/go`` with the documented envelopes, checks
the token, runs each project through ``NOT_STARTED -> RUNNING -> COMPLETED`` (or ``FAILURE``) on
a timer, and records every request it receives. Under ``/_emulator`` a control surface (no token
needed) creates and configures projects, scripts faults per route and returns the request log.

Shapes GO does not document are the emulator's choice and may differ from the real service: error
bodies are ``{"data": null, "status": N, "message": "..."}``; a result is
``{"id", "division_id", "kind", "timeseries_types"}``; list endpoints page with ``limit``
(default 100, ``-1`` for everything) and ``offset``; results are listed only once a project is
``COMPLETED``. The emulator never logs or records a request's headers.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import html
import json
import logging
import random
import string
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import Headers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

API_PREFIX = "/api/v2/go"
CONTROL_PREFIX = "/_emulator"
TOKEN_HEADER = "x-orbitalinsight-auth-token"  # noqa: S105 - a header name

#: The project every emulator starts with: a car-counting project with one version and two AOIs.
DEMO_PROJECT_ID = "carsdemo-J9fUyV"
DEMO_VERSION_ID = f"{DEMO_PROJECT_ID}-1.0.0"

_DEMO_AOIS = [
    ("Distribution Center Parking, Reno NV", "US", "Nevada"),
    ("Outlet Mall Parking, Rotterdam", "NL", "Zuid-Holland"),
    ("Stadium Parking, Osaka", "JP", "Osaka"),
    ("Airport Long-Stay Parking, Lyon", "FR", "Auvergne-Rhone-Alpes"),
]

# Returning a value from an ASGI application is a protocol error to which uvicorn responds by closing
# the connection without sending anything: exactly what a client sees when a proxy drops it.
_CLOSE_CONNECTION = "close-connection"


class QuietDroppedConnections(logging.Filter):
    """Hide uvicorn's complaint about the value returned to drop a connection on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _CLOSE_CONNECTION not in record.getMessage()


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


@dataclass
class EmulatedProject:
    """One project and how the emulator should run it.

    :param id: Project id.
    :param name: Project name.
    :param description: Project description, as GO's project document carries it.
    :param owner_id: The id of the user who owns the project.
    :param run_seconds: Seconds from the first job submission to the final stage.
    :param start_delay_seconds: Seconds a submitted job stays ``NOT_STARTED`` before ``RUNNING``.
    :param outcome: The final stage: ``COMPLETED`` or ``FAILURE``.
    :param stages: A scripted sequence of stages, one per ``GET`` of the project, the last one
        repeating; when set it replaces the timer (used to serve stages GO may add).
    :param job_type: The ``job_type`` of submitted jobs; ``STREAMX`` is the documented one.
    :param aoi_count: How many AOIs (and so divisions and results) the version has.
    :param timeseries_days: How many daily points each time series has.
    :param created_ts: When the project was created (ISO 8601); now, by default.
    :param version_ids: The project's versions; one, ``{id}-1.0.0``, by default.
    :param job_started_at: Monotonic time the current job started, or ``None`` before any job (state
        the emulator keeps, not a setting).
    :param jobs: The job documents submitted so far (state the emulator keeps, not a setting).
    """

    id: str
    name: str
    description: str = ""
    owner_id: str = "emulator-user"
    run_seconds: float = 60.0
    start_delay_seconds: float = 0.0
    outcome: str = "COMPLETED"
    stages: list[str] = field(default_factory=list)
    job_type: str = "STREAMX"
    aoi_count: int = 2
    timeseries_days: int = 30
    created_ts: str = field(default_factory=_now_iso)
    version_ids: list[str] = field(default_factory=list)
    job_started_at: float | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.version_ids:
            self.version_ids = [f"{self.id}-1.0.0"]

    def current_stage(self, *, consume: bool = True) -> str:
        """The stage to report now, consuming one step of a scripted sequence unless told not to."""
        if self.stages:
            return self.stages.pop(0) if consume and len(self.stages) > 1 else self.stages[0]
        if self.job_started_at is None:
            return "NOT_STARTED"
        elapsed = time.monotonic() - self.job_started_at
        if elapsed < self.start_delay_seconds:
            return "NOT_STARTED"
        if elapsed < self.start_delay_seconds + self.run_seconds:
            return "RUNNING"
        return self.outcome

    def document(self, stage: str) -> dict[str, Any]:
        """The project as GO's ``GET /projects/{P}`` describes it."""
        return {
            "algorithm_ids": ["car_counting"],
            "collaborator_ids": [],
            "created_ts": self.created_ts,
            "description": self.description,
            "id": self.id,
            "name": self.name,
            "owner_id": self.owner_id,
            "parent_project_id": None,
            "stage": stage,
            "version_ids": list(self.version_ids),
        }

    def aois(self) -> list[dict[str, Any]]:
        """The version's AOIs, generated from the project id so they never change between calls."""
        aois = []
        for index in range(self.aoi_count):
            name, country, state = _DEMO_AOIS[index % len(_DEMO_AOIS)]
            aois.append(
                {
                    "id": f"{self.id}-aoi-{index + 1}",
                    "name": name if index < len(_DEMO_AOIS) else f"{name} #{index + 1}",
                    "category": "parking",
                    "type": "polygon",
                    "tags": ["cars", "retail"],
                    "attributes": {"lots": 2},
                    "country": country,
                    "state": state,
                    "data_source": "emulator",
                }
            )
        return aois

    def divisions(self) -> list[dict[str, Any]]:
        """One division per AOI (same id), each with two parking-lot sub-divisions."""
        divisions = []
        for aoi in self.aois():
            children = [f"{aoi['id']}-lot-{lot}" for lot in (1, 2)]
            divisions.append({"division_id": aoi["id"], "children": children})
            divisions.extend({"division_id": child, "children": []} for child in children)
        return divisions

    def results(self) -> list[dict[str, Any]]:
        """One time-series result per division."""
        return [
            {
                "id": f"result-{division['division_id']}",
                "division_id": division["division_id"],
                "kind": "timeseries",
                "timeseries_types": ["raw.count", "scene.subaoi.fillforward.normalized.count"],
            }
            for division in self.divisions()
        ]

    def timeseries(self, result_id: str, ts_type: str) -> list[dict[str, Any]]:
        """Daily car counts for one result, deterministic for a result id and series type."""
        seed = int(hashlib.sha256(f"{result_id}/{ts_type}".encode()).hexdigest()[:8], 16)
        rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
        start = datetime.date(2026, 1, 1)
        base = rng.randint(40, 400)
        points = []
        for day in range(self.timeseries_days):
            count = max(0, base + rng.randint(-base // 4, base // 4))
            value: float = count if ts_type == "raw.count" else round(count / base, 4)
            points.append(
                {
                    "x_value": {
                        "obs_date": (start + datetime.timedelta(days=day)).strftime("%Y-%m-%d"),
                        "field_format": "%Y-%m-%d",
                    },
                    "y_value": {"count": value},
                }
            )
        return points


@dataclass
class Fault:
    """One scripted misbehaviour, served once to the next matching request.

    :param status: Answer with this status instead of serving the request.
    :param body: The body of that answer (default: a JSON error envelope).
    :param content_type: The content type of that answer.
    :param retry_after: A ``Retry-After`` header value, in seconds.
    :param delay: Seconds to wait before serving (or failing) the request.
    :param drop: Close the connection without answering and without serving the request.
    :param drop_after_processing: Serve the request (a job is created), then close the connection
        without sending the answer: the answer is lost on the way.
    :param echo_headers: Put the request's headers, token included, in the error body, as some proxies'
        debug pages do; the request log still never records them.
    """

    status: int | None = None
    body: str | None = None
    content_type: str = "application/json"
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    drop_after_processing: bool = False
    echo_headers: bool = False


class EmulatorState:
    """Projects, scripted faults and the request log, shared by all requests of one emulator.

    :param token: The API token the emulator accepts.
    :param run_seconds: Default run time of new projects, in seconds.
    """

    def __init__(self, *, token: str, run_seconds: float = 60.0) -> None:
        self.token = token
        self.run_seconds = run_seconds
        self._lock = threading.Lock()
        self.projects: dict[str, EmulatedProject] = {}
        self.faults: dict[tuple[str, str], deque[Fault]] = {}
        self.requests: list[dict[str, Any]] = []
        #: Counts resets, so that a request delayed across one is not served into the new state.
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        """Forget everything but the seeded demo project."""
        with self._lock:
            self.generation += 1
            self.projects = {
                DEMO_PROJECT_ID: EmulatedProject(
                    id=DEMO_PROJECT_ID,
                    name="Car counting demo",
                    description="Daily car counts in two parking areas (emulated).",
                    run_seconds=self.run_seconds,
                )
            }
            self.faults = {}
            self.requests = []

    def add_project(self, **settings: Any) -> EmulatedProject:
        """Create (or replace) a project; a missing id is generated the way GO's look."""
        with self._lock:
            if not settings.get("id"):
                stem = "".join(random.choices(string.ascii_letters + string.digits, k=10))  # noqa: S311
                settings["id"] = f"{stem}-{datetime.date.today():%y%m%d}"
            settings.setdefault("name", settings["id"])
            settings.setdefault("run_seconds", self.run_seconds)
            project = EmulatedProject(**settings)
            self.projects[project.id] = project
            return project

    def update_project(self, project_id: str, **settings: Any) -> EmulatedProject | None:
        """Change how an existing project runs."""
        with self._lock:
            project = self.projects.get(project_id)
            if project is None:
                return None
            for key, value in settings.items():
                if key not in EmulatedProject.__dataclass_fields__ or key == "id":
                    raise ValueError(f"unknown project setting {key!r}")
                setattr(project, key, value)
            return project

    def add_faults(self, method: str, path: str, faults: list[Fault]) -> None:
        """Queue faults for ``METHOD path`` (path relative to the API prefix, ``*`` for any)."""
        with self._lock:
            self.faults.setdefault((method.upper(), path), deque()).extend(faults)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for key in ((method, path), (method, "*"), ("*", path), ("*", "*")):
                queue = self.faults.get(key)
                if queue:
                    return queue.popleft()
            return None

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self.requests]


def presented_token(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """How a request authenticated ("header", "bearer" or "none") and the token it sent."""
    token = headers.get(TOKEN_HEADER)
    if token is not None:
        return "header", token
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return "bearer", authorization[7:].strip()
    return "none", None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"data": None, "status": status, "message": message}, status, headers=headers)


def _envelope(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data, "status": status}, status)


def _page(items: list[Any], limit: int, offset: int) -> list[Any]:
    return items[offset:] if limit == -1 else items[offset : offset + limit]


def _build_api(state: EmulatorState) -> FastAPI:
    app = FastAPI(title="GO emulator", docs_url=None, redoc_url=None, openapi_url=None)

    def note(request: Request, **details: Any) -> None:
        entry = request.scope.get("state", {}).get("log_entry")
        if entry is not None:
            entry.update(details)

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        authorized = presented_token(request.headers)[1] == state.token
        if request.url.path.startswith(API_PREFIX) and not authorized:
            return _error(401, "A valid user token is required")
        return await call_next(request)

    def find(project_id: str, version_id: str | None = None) -> EmulatedProject | JSONResponse:
        project = state.projects.get(project_id)
        if project is None:
            return _error(404, f"Project {project_id} not found")
        if version_id is not None and version_id not in project.version_ids:
            return _error(404, f"Version {version_id} not found in project {project_id}")
        return project

    def paging(request: Request) -> tuple[int, int] | JSONResponse:
        try:
            limit = int(request.query_params.get("limit", "100"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return _error(400, "limit and offset must be integers")
        if limit < -1 or limit == 0 or offset < 0:
            return _error(400, "limit must be -1 or positive, offset must not be negative")
        return limit, offset

    @app.post(f"{API_PREFIX}/projects")
    async def create_project(payload: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "Field 'name' is required")
        project = state.add_project(name=name, description=str(payload.get("description", "")))
        return _envelope(project.document(project.current_stage()), 201)

    @app.get(f"{API_PREFIX}/projects/{{project_id}}")
    async def get_project(project_id: str, request: Request) -> JSONResponse:
        project = find(project_id)
        if isinstance(project, JSONResponse):
            return project
        stage = project.current_stage()
        note(request, stage=stage)
        return _envelope(project.document(stage))

    @app.post(f"{API_PREFIX}/projects/{{project_id}}/versions/{{version_id}}/job")
    async def submit_job(project_id: str, version_id: str, request: Request) -> JSONResponse:
        project = find(project_id, version_id)
        if isinstance(project, JSONResponse):
            return project
        note(request, content_type=request.headers.get("content-type"))
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _error(400, "The request body must be JSON")
        if payload != {"active": True}:
            return _error(400, 'The request body must be {"active": true}')
        job_id = str(uuid.uuid4())
        details: dict[str, Any] = {
            "created_ts": _now_iso(),
            "id": job_id,
            "parent_id": None,
            "target": {"order_owner_id": version_id, "requester_id": "PROTEUS"},
            "task_config": {},
            "task_input": [],
            "task_ref": "SEARCH___default",
            "worker_spec": None,
        }
        job: dict[str, Any] = {"airflow_data": None, "job_type": project.job_type, "streamx_data": None}
        job[f"{project.job_type.lower()}_data"] = details
        project.jobs.append(job)
        project.job_started_at = time.monotonic()
        note(request, job_id=job_id)
        return _envelope(job, 201)

    @app.get(f"{API_PREFIX}/projects/{{project_id}}/versions/{{version_id}}/{{collection}}")
    async def list_collection(
        project_id: str, version_id: str, collection: str, request: Request
    ) -> JSONResponse:
        project = find(project_id, version_id)
        if isinstance(project, JSONResponse):
            return project
        page = paging(request)
        if isinstance(page, JSONResponse):
            return page
        if collection == "aois":
            items = project.aois()
        elif collection == "divisions":
            items = project.divisions()
        elif collection == "results":
            # Reading results is not a read of the project: it leaves a scripted stage sequence alone.
            items = project.results() if project.current_stage(consume=False) == "COMPLETED" else []
        else:
            return _error(404, f"Unknown resource {collection}")
        return _envelope(_page(items, *page))

    @app.get(
        f"{API_PREFIX}/projects/{{project_id}}/versions/{{version_id}}/results/{{result_id}}/timeseries/{{ts_type}}"
    )
    async def timeseries(
        project_id: str, version_id: str, result_id: str, ts_type: str, request: Request
    ) -> JSONResponse:
        project = find(project_id, version_id)
        if isinstance(project, JSONResponse):
            return project
        if result_id not in {result["id"] for result in project.results()}:
            return _error(404, f"Result {result_id} not found")
        page = paging(request)
        if isinstance(page, JSONResponse):
            return page
        return _envelope(_page(project.timeseries(result_id, ts_type), *page))

    @app.get("/web/projects/{project_id}")
    async def project_page(project_id: str) -> HTMLResponse:
        project = state.projects.get(project_id)
        if project is None:
            return HTMLResponse("<h1>Project not found</h1>", 404)
        title = html.escape(f"{project.name} ({project.id})")
        return HTMLResponse(f"<h1>{title}</h1><p>GO emulator project page.</p>")

    @app.get(f"{CONTROL_PREFIX}/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(f"{CONTROL_PREFIX}/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @app.post(f"{CONTROL_PREFIX}/projects")
    async def add_project(settings: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        try:
            project = state.add_project(**settings)
        except TypeError as err:
            return JSONResponse({"error": str(err)}, 400)
        return JSONResponse(asdict(project), 201)

    @app.patch(f"{CONTROL_PREFIX}/projects/{{project_id}}")
    async def update_project(project_id: str, settings: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        try:
            project = state.update_project(project_id, **settings)
        except ValueError as err:
            return JSONResponse({"error": str(err)}, 400)
        if project is None:
            return JSONResponse({"error": f"no project {project_id}"}, 404)
        return JSONResponse(asdict(project))

    @app.post(f"{CONTROL_PREFIX}/faults")
    async def add_faults(script: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        try:
            faults = [Fault(**fault) for fault in script["faults"]]
            state.add_faults(str(script.get("method", "*")), str(script["path"]), faults)
        except (KeyError, TypeError) as err:
            return JSONResponse({"error": f"bad fault script: {err}"}, 400)
        return JSONResponse({"queued": len(faults)}, 201)

    @app.get(f"{CONTROL_PREFIX}/requests")
    async def requests_log() -> list[dict[str, Any]]:
        return state.request_log()

    @app.delete(f"{CONTROL_PREFIX}/requests")
    async def clear_requests_log() -> dict[str, str]:
        with state._lock:
            state.requests = []
        return {"status": "cleared"}

    return app


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now; return a ``receive`` that hands it over once."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        # Nothing more will come; wait like a connection that stays open until the answer is sent.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return replay


class EmulatorApp:
    """The emulator's ASGI application: GO's API, scripted faults in front of it, and the log.

    :param state: The projects, faults and log this application serves.
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.api = _build_api(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            return await self.api(scope, receive, send)

        method, path = scope["method"], scope["path"][len(API_PREFIX) :]
        scheme, token = presented_token(Headers(scope=scope))
        entry: dict[str, Any] = {
            "at": _now_iso(),
            "method": method,
            "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": None,
            "auth": scheme,
            "authenticated": token == self.state.token,
        }
        self.state.record(entry)

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        async def discard(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]

        # GO acts on what it received even if the client has gone by the time it answers, so the
        # request body is read up front and replayed to the API.
        receive = await _buffered(receive)
        fault = self.state.take_fault(method, path)
        scope.setdefault("state", {})["log_entry"] = entry
        if fault is None:
            return await self.api(scope, receive, send_and_note)

        defaults = asdict(Fault())
        entry["fault"] = {key: value for key, value in asdict(fault).items() if value != defaults[key]}
        if fault.delay:
            generation = self.state.generation
            await asyncio.sleep(fault.delay)
            if generation != self.state.generation:
                # The emulator was reset while this request waited: it belongs to a world that is gone.
                entry["status"] = "dropped"
                return _CLOSE_CONNECTION
        if fault.drop:
            entry["status"] = "dropped"
            return _CLOSE_CONNECTION
        if fault.drop_after_processing:
            await self.api(scope, receive, discard)
            entry["answer_lost"] = True
            return _CLOSE_CONNECTION
        if fault.status is None:
            return await self.api(scope, receive, send_and_note)

        body = fault.body
        if body is None:
            message = "Emulated fault"
            if fault.echo_headers:
                echoed = "; ".join(
                    f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in scope["headers"]
                )
                message = f"Emulated fault for a request with headers {echoed}"
            body = json.dumps({"data": None, "status": fault.status, "message": message})
        headers = [(b"content-type", fault.content_type.encode())]
        if fault.retry_after is not None:
            headers.append((b"retry-after", str(int(fault.retry_after)).encode()))
        await send_and_note({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})
        return None
