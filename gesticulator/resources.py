"""Where the shipped data folders are: inside the wheel (`gesticulator/_data/<name>`) for pip
installs, or at the repository root for a clone / editable install."""

from __future__ import annotations

from pathlib import Path

DATA_FOLDERS = ("motion_library", "prompts", "indexes", "pipelines", "examples", "checkpoints", "rigs")
_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; one of {', '.join(DATA_FOLDERS)}")
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"data folder {name!r} is missing from this installation; reinstall gesticulator")


def example(name: str) -> Path:
    """A file shipped in examples/ (e.g. "hello_demo.npz")."""
    return data_dir("examples") / name
