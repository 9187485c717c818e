"""The viewer's local web server (stdlib `http.server`): the page and its vendored three.js from
`static/`, and one output folder's files under `/data/`.

    /                       the page (static/index.html)
    /static/...             the page's scripts, styles and three.js (no CDN: works offline)
    /data/manifest.json     what there is to show: {"title", "glb", "audio", "timeline", ...}
    /data/motion.glb        the skinned mannequin with its animation (the folder's GLB)
    /data/timeline.json     transcript words and semantic events (when the folder has one)
    /data/audio.<ext>       the speech: --audio, else the timeline's audio, else speech.wav

Only these files are served (never other paths under the folder); audio and GLB answer HTTP
Range requests so the browser can seek the <audio> element.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gesticulator.errors import GesticulatorError, InputFileError

STATIC_DIR = Path(__file__).resolve().parent / "static"
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus", ".webm")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".glb": "model/gltf-binary",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".webm": "audio/webm",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ViewerData:
    """The files of one output folder the page shows."""

    folder: Path
    glb: Path
    timeline: Path | None
    audio: Path | None
    title: str

    def manifest(self) -> dict:
        return {
            "title": self.title,
            "folder": str(self.folder),
            "glb": "/data/motion.glb",
            "glb_name": self.glb.name,
            "timeline": "/data/timeline.json" if self.timeline else None,
            "audio": f"/data/audio{self.audio.suffix.lower()}" if self.audio else None,
            "audio_name": self.audio.name if self.audio else None,
        }


def find_outputs(outdir: str | os.PathLike, audio: str | os.PathLike | None = None) -> ViewerData:
    """Find the GLB, timeline.json and the speech of an `animate`/`speak`/`export` output folder
    (or of a .glb file given directly)."""
    path = Path(outdir).expanduser()
    if not path.exists():
        raise InputFileError(
            f"output folder not found: {path}", "give the folder `gesticulator animate -o` wrote"
        )
    if path.is_file():
        if path.suffix.lower() != ".glb":
            raise InputFileError(f"{path.name} is not a folder or a .glb file", "give the output folder")
        folder, glb = path.parent, path
    else:
        folder = path
        glbs = sorted(folder.glob("*.glb"))
        if not glbs:
            raise InputFileError(
                f"no .glb in {folder}",
                "write one with `gesticulator animate … --formats npz,glb,…` or `gesticulator export --to glb`",
            )
        named = [g for g in glbs if g.name == "motion.glb"]
        glb = named[0] if named else glbs[0]
    folder = folder.resolve()
    timeline = folder / "timeline.json"
    timeline = timeline if timeline.is_file() else None
    if audio is not None:
        sound = Path(audio).expanduser()
        if not sound.is_file():
            raise InputFileError(f"audio file not found: {sound}", "check the --audio path")
    else:
        sound = _find_audio(folder, glb, timeline)
    return ViewerData(
        folder=folder, glb=glb.resolve(), timeline=timeline, audio=sound.resolve() if sound else None,
        title=folder.name if glb.name == "motion.glb" else glb.stem,
    )  # fmt: skip


def _find_audio(folder: Path, glb: Path, timeline: Path | None) -> Path | None:
    candidates: list[Path] = []
    if timeline is not None:
        try:
            name = (json.loads(timeline.read_text(encoding="utf-8")).get("inputs") or {}).get("audio")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            name = None
        if isinstance(name, str) and name:
            p = Path(name).expanduser()
            candidates.append(p if p.is_absolute() else folder / p)
    candidates.append(folder / "speech.wav")
    candidates += [glb.with_suffix(s) for s in AUDIO_SUFFIXES]
    for c in candidates:
        if c.is_file() and c.suffix.lower() in AUDIO_SUFFIXES:
            return c
    return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "gesticulator-viewer"
    data: ViewerData  # set on the subclass made by make_server
    quiet = True

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        if not self.quiet:
            super().log_message(format, *args)

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        route = unquote(urlsplit(self.path).path)
        d = self.data
        if route in ("/", "/index.html"):
            return self._file(STATIC_DIR / "index.html", head)
        if route.startswith("/static/"):
            target = (STATIC_DIR / route[len("/static/") :]).resolve()
            if STATIC_DIR not in target.parents or not target.is_file():
                return self._error(HTTPStatus.NOT_FOUND)
            return self._file(target, head)
        if route == "/data/manifest.json":
            body = json.dumps(d.manifest()).encode()
            return self._bytes(body, CONTENT_TYPES[".json"], head)
        if route == "/data/motion.glb":
            return self._file(d.glb, head, content_type=CONTENT_TYPES[".glb"])
        if route == "/data/timeline.json" and d.timeline is not None:
            return self._file(d.timeline, head)
        if d.audio is not None and route == f"/data/audio{d.audio.suffix.lower()}":
            return self._file(d.audio, head)
        if route == "/favicon.ico":
            return self._bytes(b"", "image/x-icon", head, status=HTTPStatus.NO_CONTENT)
        return self._error(HTTPStatus.NOT_FOUND)

    def _error(self, status: HTTPStatus) -> None:
        self._bytes(f"{status.value} {status.phrase}\n".encode(), CONTENT_TYPES[".txt"], False, status=status)

    def _bytes(self, body: bytes, ctype: str, head: bool, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _file(self, path: Path, head: bool, content_type: str | None = None) -> None:
        ctype = (
            content_type
            or CONTENT_TYPES.get(path.suffix.lower())
            or (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        )
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return self._error(HTTPStatus.NOT_FOUND)
        with fh:
            size = os.fstat(fh.fileno()).st_size
            start, end = 0, size - 1
            status = HTTPStatus.OK
            wanted = self.headers.get("Range")
            if wanted:
                m = _RANGE.match(wanted.strip())
                if m and (m.group(1) or m.group(2)):
                    if m.group(1):
                        start = int(m.group(1))
                        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                    else:  # the last N bytes
                        start = max(size - int(m.group(2)), 0)
                    if start > end or start >= size:
                        self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = HTTPStatus.PARTIAL_CONTENT
            length = end - start + 1 if size else 0
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Cache-Control", "no-cache")
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if head:
                return
            fh.seek(start)
            left = length
            try:
                while left > 0:
                    chunk = fh.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):  # the browser cancelled (seeking)
                pass


def make_server(
    data: ViewerData, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> ThreadingHTTPServer:
    """An HTTP server for `data` (port 0: any free port; read it from `server.server_address`)."""
    handler = type("ViewerHandler", (_Handler,), {"data": data, "quiet": quiet})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise GesticulatorError(
            f"cannot listen on {host}:{port}: {e.strerror}", "choose another --port (0 picks a free one)"
        ) from None
    server.daemon_threads = True
    return server


def serve_in_thread(
    data: ViewerData, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Start a server in a daemon thread; returns it and the page's URL (tests, notebooks)."""
    server = make_server(data, host, port)
    threading.Thread(target=server.serve_forever, name="gesticulator-viewer", daemon=True).start()
    h, p = server.server_address[:2]
    return server, f"http://{h}:{p}/"
