"""Atomic file writes: a crash or a full disk never leaves a half-written file under the final name."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gesticulator.errors import ExportError


def ensure_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create the folder `path` (and its parents) if needed; a file in the way, a read-only parent
    or a full disk is a one-line `ExportError` naming `what` (e.g. "--run folder")."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{what} {folder} is a file, not a folder", "choose another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create {what} {folder}: {e.strerror}", "choose a writable folder") from e
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, else removed."""
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(
            f"cannot create output folder {final.parent}: {e.strerror}", "choose a writable folder"
        ) from e
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as e:  # a read-only folder, a full disk
        raise ExportError(
            f"cannot write into {final.parent}: {e.strerror}", "choose a writable folder"
        ) from e
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes 0600 files and rename keeps the mode; give outputs the usual umask mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as e:
            raise ExportError(
                f"cannot write {path}: {e.strerror}", "free disk space or choose another folder"
            ) from e
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def staging_folder(out: str | os.PathLike) -> Path:
    """A new empty temporary folder beside the output folder `out` (same file system, so moving
    its files in is a rename); fill it, then `move_into(tmp, out, names)`."""
    out = Path(out).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the folder may become `out`
    except OSError as e:
        raise ExportError(f"cannot write into {out.parent}: {e.strerror}", "choose a writable folder") from e
    return tmp


def move_into(tmp: Path, out: Path, names: list[str]) -> None:
    """Move the finished files from `tmp` into `out`: one rename of the folder when `out` does not
    exist, else file by file (each rename atomic), in the order given (put an index file last)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    if not out.is_dir():
        raise ExportError(f"output {out} exists and is not a folder", "choose another -o folder")
    for name in names:
        os.replace(tmp / name, out / name)
    shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def staged_outputs(out: str | os.PathLike) -> Iterator[Path]:
    """Write a set of outputs all or nothing: yield a `staging_folder` beside `out`; the body
    writes into it and ends with `move_into(tmp, out, names)`. On any failure the folder is removed
    and `out` is left as it was; an OSError (a full disk, a read-only folder) becomes one line."""
    out = Path(out).expanduser()
    tmp = staging_folder(out)
    try:
        yield tmp
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise ExportError(
                f"cannot write the outputs into {out}: {e.strerror or e}",
                "free disk space or choose a writable -o folder",
            ) from e
        raise
