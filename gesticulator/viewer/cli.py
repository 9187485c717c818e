"""`gesticulator view OUTDIR`: play an output folder in the browser (mannequin + audio + timeline).
Registered on the main app by `gesticulator.cli` (`register(app)`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gesticulator._cli_util import console, friendly_errors


@friendly_errors
def view(
    outdir: Annotated[Path, typer.Argument(help="An output folder of animate/speak/export (or a .glb).")],
    port: Annotated[int, typer.Option("--port", help="Port of the local server (0: any free port).")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address of the local server.")] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the address; do not open a browser.")
    ] = False,
    audio: Annotated[
        Path | None, typer.Option("--audio", help="Speech to play (default: the timeline's audio).")
    ] = None,
) -> None:
    """Open a page that plays the animation with its audio and a clickable timeline (offline)."""
    import webbrowser

    from gesticulator.viewer.server import find_outputs, make_server

    data = find_outputs(outdir, audio)
    server = make_server(data, host, port)
    h, p = server.server_address[:2]
    url = f"http://{'[' + h + ']' if ':' in h else h}:{p}/"
    parts = [data.glb.name] + [x.name for x in (data.timeline, data.audio) if x is not None]
    console.print(f"viewer for {data.folder} ({', '.join(parts)}) at {url} — Ctrl-C stops", highlight=False)
    if data.audio is None:
        console.print("[yellow]no audio found[/]: the page plays without sound (give --audio FILE)")
    if not no_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    app.command("view")(view)
