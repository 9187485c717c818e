"""Shared pieces of the command line: consoles, one-line errors, progress bars."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gesticulator.errors import GesticulatorError

# Options shared by the commands that animate (animate, speak, batch, serve): one definition each.
ModelOption = Annotated[
    str, typer.Option("--model", help="Rhythm model: 'default', an exported checkpoint or a run folder.")
]
LibraryOption = Annotated[
    list[Path] | None, typer.Option("--library", "-l", help="Extra gesture library folders.")
]
PreviewSizeOption = Annotated[int, typer.Option("--size", help="Preview video size in pixels.")]
DensityOption = Annotated[str, typer.Option("--density", help="low | normal | high gestures per minute.")]

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # errors stay on one line at any width
state = {"debug": False}


def show_warnings_as_lines() -> None:
    """Warnings (no speech detected, script mismatch, ...) become one yellow line on stderr,
    without Python's file:line prefix; --debug keeps the default format."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - stdlib hook
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False)

    warnings.showwarning = show


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GesticulatorError as e:
            if state["debug"]:
                raise
            # escape: messages name extras like 'gesticulator[ray]', which rich would take as markup
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:  # a bug of ours: still one line, with the way to learn more
            if state["debug"]:
                raise
            err_console.print(
                f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))} — rerun with --debug and report it",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(3) from None

    return wrapper


@contextlib.contextmanager
def frame_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar fed by the renderer's `progress(done, total)` hook (stderr, so piped
    stdout stays clean; rich hides it when stderr is not a terminal)."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
