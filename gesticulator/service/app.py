"""The HTTP service: a FastAPI app around the job store and worker queue (`jobs.py`).

    POST   /v1/jobs                   audio upload (multipart) or a script (JSON / form) -> 202 {id}
    GET    /v1/jobs                   recent jobs
    GET    /v1/jobs/{id}              status, progress, stage, files, summary
    GET    /v1/jobs/{id}/files/{name} motion.npz | motion.bvh | motion.glb | preview.mp4 | timeline.json
                                      (+ speech.wav, speech.json for scripts)
    DELETE /v1/jobs/{id}              remove a job that is not running, with its files
    GET    /v1/health                 liveness and model state (no token needed)
    GET    /docs                      OpenAPI docs

Every /v1/jobs route needs `Authorization: Bearer <token>` when the service has a token. Errors
are JSON `{"detail": "<one line: the problem — the fix>"}` with the usual status codes: 401 no or
wrong token, 404 unknown job or file, 409 job not finished, 413 upload too large, 422 bad input
(not audio, audio too long, bad option), 429 queue full.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import shutil
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from gesticulator.api import OUTPUT_FORMATS as FORMATS
from gesticulator.api import check_formats
from gesticulator.errors import GesticulatorError
from gesticulator.service.jobs import FILE_NAMES, Job, JobQueue, JobStore, Runner

DENSITIES = ("low", "normal", "high")
MEDIA_TYPES = {
    ".npz": "application/octet-stream",
    ".bvh": "text/plain; charset=utf-8",
    ".glb": "model/gltf-binary",
    ".mp4": "video/mp4",
    ".json": "application/json",
    ".wav": "audio/wav",
}
_CHUNK = 1 << 20
_FORM_SLACK = 64 * 1024  # room for the form fields around an upload of the maximum size


@dataclass
class ServiceConfig:
    data_dir: Path
    token: str | None = None  # None: no authentication (loopback only; the CLI enforces it)
    workers: int = 1
    queue_size: int = 16  # jobs waiting (not running) before POST answers 429
    max_upload_mb: float = 50.0
    max_audio_seconds: float = 600.0
    max_script_chars: int = 10_000  # ~12 minutes of speech
    model: str = "default"  # the rhythm model for Gesticulator.load

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class JobOptions(BaseModel):
    seed: int = 0
    density: str = "normal"
    formats: list[str] = Field(default_factory=lambda: list(FORMATS))
    script: str | None = None


class JobCreated(BaseModel):
    id: str
    status: str
    url: str


class JobView(BaseModel):
    id: str
    status: str = Field(description="queued | running | done | failed")
    kind: str = Field(description="audio (an uploaded recording) or script (spoken by the bundled voice)")
    progress: float = Field(description="0..1")
    stage: str
    queue_position: int | None = Field(None, description="1 = next to run (queued jobs only)")
    created: float
    started: float | None
    finished: float | None
    attempts: int
    options: dict[str, Any]
    error: str | None
    files: dict[str, str] = Field(description="file name -> download URL (done jobs)")
    summary: dict[str, Any] = Field(description="duration, transcript, placed gestures (done jobs)")


_bearer = HTTPBearer(auto_error=False, description="the server's token (GESTICULATOR_TOKEN)")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class _TooLarge(Exception):
    pass


class _BodyLimit:
    """ASGI middleware: refuse a POST body over the limit with 413 before it is parsed or spooled
    (at once from Content-Length, else as soon as the streamed body passes the limit)."""

    def __init__(self, app, limit: int, message: str):
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(scope, receive, send)
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        response = JSONResponse({"detail": self.message}, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _upload_message(cfg: ServiceConfig) -> str:
    return (
        f"upload too large: this server takes files up to {cfg.max_upload_mb:g} MB"
        " — send a shorter or compressed recording (or start it with a larger --max-upload-mb)"
    )


def _job_view(request: Request, store: JobStore, job: Job) -> JobView:
    files = {}
    if job.status == "done":
        files = {n: str(request.url_for("job_file", job_id=job.id, name=n).path) for n in job.files}
    position = None
    if job.status == "queued":
        ids = store.queued_ids()
        position = ids.index(job.id) + 1 if job.id in ids else None
    return JobView(
        id=job.id, status=job.status, kind=job.kind, progress=job.progress, stage=job.stage,
        queue_position=position, created=job.created, started=job.started, finished=job.finished,
        attempts=job.attempts, options=job.options, error=job.error, files=files, summary=job.summary,
    )  # fmt: skip


def _parse_options(fields: dict[str, Any]) -> JobOptions:
    unknown = sorted(set(fields) - {"seed", "density", "formats", "script", "audio"})
    if unknown:
        raise HTTPException(
            422, f"unknown field(s): {', '.join(unknown)} — use audio, script, seed, density, formats"
        )
    seed = fields.get("seed", 0)
    if isinstance(seed, str):
        seed = seed.strip() or "0"
    try:
        seed = int(seed)
        if isinstance(fields.get("seed"), float | bool):
            raise ValueError
    except (TypeError, ValueError):
        raise HTTPException(422, f"seed must be an integer, got {fields.get('seed')!r}") from None
    density = str(fields.get("density") or "normal").strip().lower()
    if density not in DENSITIES:
        raise HTTPException(422, f"density must be one of {', '.join(DENSITIES)}, got {density!r}")
    raw = fields.get("formats")
    if raw is None or raw == "":
        formats = list(FORMATS)
    else:
        if isinstance(raw, str):
            raw = raw.split(",")
        if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
            raise HTTPException(422, "formats must be a comma-separated string or a list of strings")
        try:
            formats = check_formats(raw)
        except GesticulatorError as e:
            raise HTTPException(422, str(e)) from None
    script = fields.get("script")
    if script is not None and not isinstance(script, str):
        raise HTTPException(422, "script must be text")
    return JobOptions(seed=seed, density=density, formats=formats, script=script or None)


def _safe_suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ".bin"


_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "audio": {"type": "string", "format": "binary", "description": "speech recording"},
                    "script": {
                        "type": "string",
                        "description": "with audio: the exact text spoken (aligned to ASR words);"
                        " without audio: a script spoken by the bundled voice (TTS)",
                    },
                    "seed": {"type": "integer", "default": 0},
                    "density": {"type": "string", "enum": list(DENSITIES), "default": "normal"},
                    "formats": {"type": "string", "default": ",".join(FORMATS), "example": "npz,glb"},
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["script"],
                "properties": {
                    "script": {"type": "string", "description": "spoken by the bundled voice (TTS)"},
                    "seed": {"type": "integer", "default": 0},
                    "density": {"type": "string", "enum": list(DENSITIES), "default": "normal"},
                    "formats": {
                        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
                        "default": list(FORMATS),
                    },
                },
            }
        },
    },
}


def create_app(
    config: ServiceConfig,
    *,
    load: Callable[[], Any] | None = None,
    start_workers: bool = True,
    preload: bool = True,
) -> FastAPI:
    """The service app. `load` builds the Gesticulator (default: `Gesticulator.load(config.model)`);
    it runs once, in a background thread at start-up (`preload`) or with the first job.
    `start_workers=False` accepts and stores jobs without running them (tests, maintenance)."""
    from gesticulator import __version__

    if load is None:

        def load():
            from gesticulator.api import Gesticulator

            return Gesticulator.load(config.model)

    store = JobStore(config.data_dir)
    runner = Runner(load)
    queue = JobQueue(store, runner, workers=config.workers, max_queued=config.queue_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start_workers:
            queue.start(preload=preload)
        yield
        queue.stop()

    # FastAPIOffline serves the Swagger UI / ReDoc scripts from the package instead of a CDN, so
    # /docs works on the offline machines this service is meant for.
    app = FastAPIOffline(
        title="gesticulator",
        version=__version__,
        description="Speech (an audio upload) or a script in, SMPL-X co-speech gesture animation out. "
        "Send `Authorization: Bearer <token>` on /v1/jobs routes when the server has a token.",
        lifespan=lifespan,
    )
    app.state.store, app.state.queue, app.state.runner, app.state.config = store, queue, runner, config
    app.add_middleware(
        _BodyLimit, limit=config.max_upload_bytes + _FORM_SLACK, message=_upload_message(config)
    )

    def auth(credentials: _Credentials) -> None:
        if config.token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), config.token.encode()):
            detail = (
                "wrong bearer token" if credentials is not None else "missing token"
            ) + " — send the header 'Authorization: Bearer <token>' with the server's token"
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})

    def get_job(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} — check the id returned by POST /v1/jobs")
        return job

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/docs")

    @app.get("/v1/health", summary="Liveness, model state and queue length (no token needed)")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "models": runner.state,
            "models_load_seconds": runner.load_seconds,
            "models_error": runner.load_error,
            "queued": store.count("queued"),
            "running": store.count("running"),
            "workers": config.workers,
            "queue_size": config.queue_size,
            "auth": config.token is not None,
        }

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobCreated,
        dependencies=[Depends(auth)],
        summary="Submit a job: an audio upload (multipart) or a script (JSON or form) for TTS",
        openapi_extra={"requestBody": _REQUEST_BODY},
        responses={
            401: {"description": "missing or wrong token"},
            413: {"description": "upload too large"},
            422: {"description": "not audio, audio too long, empty or too long script, bad option"},
            429: {"description": "the queue is full; retry later"},
        },
    )
    async def create_job(request: Request, response: Response) -> JobCreated:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        upload: UploadFile | None = None
        if ctype == "application/json":
            try:
                fields = await request.json()
            except ValueError:
                raise HTTPException(422, "the body is not valid JSON") from None
            if not isinstance(fields, dict):
                raise HTTPException(422, 'the JSON body must be an object: {"script": "...", ...}')
            if "audio" in fields:
                raise HTTPException(422, "upload audio as multipart/form-data (field 'audio'), not in JSON")
        elif ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.form(max_files=1, max_fields=10)
            fields = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key != "audio":
                        raise HTTPException(
                            422, f"unexpected file field {key!r} — send the recording as 'audio'"
                        )
                    upload = value
                else:
                    fields[key] = value
        else:
            raise HTTPException(
                415 if ctype else 422,
                "send multipart/form-data (audio upload), application/json or a form (script)",
            )
        options = _parse_options(fields)
        if upload is None and not options.script:
            raise HTTPException(422, "nothing to animate — upload 'audio' or give a 'script'")
        if options.script and len(options.script) > config.max_script_chars:
            raise HTTPException(
                422,
                f"script too long: {len(options.script)} characters; this server takes up to "
                f"{config.max_script_chars} — split it into several jobs",
            )
        if store.count("queued") >= config.queue_size:
            raise _queue_full(config)
        job_id = store.new_id()
        input_name = None
        if upload is not None:
            input_name = "audio" + _safe_suffix(upload.filename)
            folder = store.input_dir(job_id)
            try:
                await _save_upload(upload, folder / input_name, config)
                await asyncio.to_thread(_check_audio, folder / input_name, config, upload.filename)
            except BaseException:
                shutil.rmtree(store.job_dir(job_id), ignore_errors=True)
                raise
        kind = "audio" if upload is not None else "script"
        job = queue.submit(kind, options.model_dump(), job_id=job_id, input_name=input_name)
        if job is None:
            shutil.rmtree(store.job_dir(job_id), ignore_errors=True)
            raise _queue_full(config)
        url = str(request.url_for("get_job_status", job_id=job.id).path)
        response.headers["Location"] = url
        return JobCreated(id=job.id, status=job.status, url=url)

    @app.get("/v1/jobs", dependencies=[Depends(auth)], summary="Recent jobs, newest first")
    def list_jobs(request: Request, status: str | None = None, limit: int = 50) -> list[JobView]:
        if status is not None and status not in ("queued", "running", "done", "failed"):
            raise HTTPException(422, "status must be queued, running, done or failed")
        limit = min(max(limit, 1), 500)
        return [_job_view(request, store, j) for j in store.list(status=status, limit=limit)]

    @app.get(
        "/v1/jobs/{job_id}",
        dependencies=[Depends(auth)],
        summary="A job's status and progress",
        name="get_job_status",
    )
    def get_job_status(request: Request, job_id: str) -> JobView:
        return _job_view(request, store, get_job(job_id))

    @app.get(
        "/v1/jobs/{job_id}/files/{name}",
        dependencies=[Depends(auth)],
        summary="Download a result: " + ", ".join(FILE_NAMES),
        name="job_file",
        response_class=FileResponse,
    )
    def job_file(job_id: str, name: str):
        job = get_job(job_id)
        if name not in FILE_NAMES:
            raise HTTPException(404, f"unknown file {name!r} — one of {', '.join(FILE_NAMES)}")
        if job.status != "done":
            raise HTTPException(
                409, f"job {job_id} is {job.status}" + (f" ({job.error})" if job.error else "")
                + " — poll GET /v1/jobs/{id} until its status is done",
            )  # fmt: skip
        path = store.output_dir(job_id) / name
        if name not in job.files or not path.is_file():
            raise HTTPException(
                404, f"job {job_id} made no {name} — ask for it with formats (made: {', '.join(job.files)})"
            )
        return FileResponse(
            path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"), filename=name
        )

    @app.delete("/v1/jobs/{job_id}", status_code=204, dependencies=[Depends(auth)], summary="Delete a job")
    def delete_job(job_id: str) -> Response:
        get_job(job_id)
        if not store.delete(job_id):
            raise HTTPException(409, f"job {job_id} is running — delete it when it is done or failed")
        return Response(status_code=204)

    return app


def _queue_full(config: ServiceConfig) -> HTTPException:
    return HTTPException(
        429,
        f"the queue is full ({config.queue_size} jobs waiting) — retry later",
        headers={"Retry-After": "30"},
    )


async def _save_upload(upload: UploadFile, dest: Path, config: ServiceConfig) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(dest, "wb") as fh:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > config.max_upload_bytes:
                raise HTTPException(413, _upload_message(config))
            fh.write(chunk)
    if size == 0:
        raise HTTPException(422, "the uploaded audio file is empty")


def _check_audio(path: Path, config: ServiceConfig, filename: str | None) -> None:
    from gesticulator.speech.audio import probe_audio

    try:
        info = probe_audio(path)
    except GesticulatorError as e:
        problem = e.problem.replace(str(path), repr(filename or "the upload"))  # no server paths
        raise HTTPException(
            422, f"cannot read the upload as audio: {problem} — send wav, flac, mp3, …"
        ) from None
    if info.duration > config.max_audio_seconds:
        raise HTTPException(
            422,
            f"audio too long: {info.duration:.1f} s; this server takes up to {config.max_audio_seconds:g} s"
            " — cut the recording into parts",
        )
    if info.duration < 0.25:
        raise HTTPException(422, f"audio too short: {info.duration:.2f} s — send at least 0.25 s of speech")
