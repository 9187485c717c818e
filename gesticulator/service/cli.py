"""`gesticulator serve`: the HTTP service (FastAPI + uvicorn). Registered on the main app by
`gesticulator.cli` (`register(app)`); fastapi and uvicorn are imported only when it runs."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from gesticulator._cli_util import ModelOption, console, err_console, friendly_errors
from gesticulator.errors import GesticulatorError, MissingDependencyError

DEFAULT_DATA = Path("~/.local/share/gesticulator/service")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def resolve_token(token_env: str, host: str) -> str | None:
    """The token from the environment variable `token_env`; refuses a non-loopback host without one."""
    token = os.environ.get(token_env, "").strip() or None
    if token is None and not is_loopback(host):
        raise GesticulatorError(
            f"refusing to serve on {host} without a token",
            f"set {token_env} to a secret (or serve on 127.0.0.1)",
        )
    return token


def check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as e:
            raise GesticulatorError(
                f"cannot listen on {host}:{port}: {e.strerror}", "choose another --port or --host"
            ) from None


@friendly_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    token_env: Annotated[
        str, typer.Option("--token-env", help="Environment variable holding the bearer token.")
    ] = "GESTICULATOR_TOKEN",
    data: Annotated[
        Path, typer.Option("--data", help="Folder for the job database, uploads and results.")
    ] = DEFAULT_DATA,
    workers: Annotated[int, typer.Option("--workers", help="Jobs run at the same time.")] = 1,
    queue_size: Annotated[
        int, typer.Option("--queue-size", help="Jobs that may wait; more are refused with 429.")
    ] = 16,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest audio upload (413 above).")
    ] = 50.0,
    max_audio_seconds: Annotated[
        float, typer.Option("--max-audio-seconds", help="Longest audio accepted (422 above).")
    ] = 600.0,
    max_script_chars: Annotated[
        int, typer.Option("--max-script-chars", help="Longest script accepted (422 above).")
    ] = 10_000,
    model: ModelOption = "default",
) -> None:
    """HTTP service: POST audio or a script to /v1/jobs, poll, download the results (docs at /docs)."""
    try:
        import uvicorn

        from gesticulator.service.app import ServiceConfig, create_app
    except ImportError as e:
        raise MissingDependencyError(
            f"gesticulator serve needs fastapi, uvicorn and python-multipart ({e.name} is missing)",
            "pip install 'gesticulator[serve]'",
        ) from None
    if not 1 <= port <= 65535:
        raise GesticulatorError(f"--port {port} is out of range", "use a port between 1 and 65535")
    if workers < 1 or queue_size < 1:
        raise GesticulatorError(
            f"--workers and --queue-size must be at least 1, got {workers} and {queue_size}",
            "e.g. --workers 1 --queue-size 16",
        )
    if not (max_upload_mb > 0 and max_audio_seconds > 0 and max_script_chars > 0):
        raise GesticulatorError(
            "the --max-* limits must be positive", "e.g. --max-upload-mb 50 --max-audio-seconds 600"
        )
    token = resolve_token(token_env, host)
    check_port(host, port)
    # The models load in the background once the server is up; a wrong --model would only show
    # as every job failing. The checkpoint's presence is checked now (cheap), its content then.
    from gesticulator.rhythm.model import resolve_checkpoint

    resolve_checkpoint(model)
    config = ServiceConfig(
        data_dir=data.expanduser(), token=token, workers=workers, queue_size=queue_size,
        max_upload_mb=max_upload_mb, max_audio_seconds=max_audio_seconds,
        max_script_chars=max_script_chars, model=model,
    )  # fmt: skip
    app = create_app(config)
    if token is None:
        err_console.print(
            f"[yellow]warning:[/] no token in {token_env}: anyone on this machine can use the service",
            highlight=False,
        )
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"gesticulator service on http://{shown}:{port} (docs: /docs), data in {config.data_dir}, "
        f"{workers} worker(s)",
        highlight=False,
    )
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
