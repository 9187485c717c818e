"""`gesticulator batch`: animate a manifest or a folder of recordings, in parallel, resumably.

Registered on the main app by `gesticulator.cli` (`register(app)`), so it gets the same one-line
errors and `--debug` as every command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from gesticulator._cli_util import (
    LibraryOption,
    ModelOption,
    PreviewSizeOption,
    console,
    err_console,
    friendly_errors,
)


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@friendly_errors
def batch(
    source: Annotated[
        Path,
        typer.Argument(
            help="A manifest (.csv/.tsv/.jsonl with an 'audio' column) or a folder of audio files."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder: one sub-folder per item.")],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help="Parallel workers, each with its own models (default: CPU cores, at most 4; "
            "with --address: one per CPU of the Ray cluster). 0 = in this process (local engine).",
        ),
    ] = None,  # fmt: skip
    engine: Annotated[str, typer.Option("--engine", help="local (process pool) or ray.")] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address", help="Ray cluster to use (e.g. auto, ray://head:10001); default: a local Ray."
        ),
    ] = None,
    formats: Annotated[
        str, typer.Option("--formats", help="Comma-separated: npz,bvh,glb,mp4 (a row's 'formats' overrides).")
    ] = "npz,bvh,glb,mp4",
    seed: Annotated[int, typer.Option("--seed", help="Seed of rows without one.")] = 0,
    density: Annotated[
        str, typer.Option("--density", help="low | normal | high, for rows without one.")
    ] = "normal",
    llm: Annotated[
        str | None, typer.Option("--llm", help="PROVIDER:MODEL picks the gestures (rows may name their own).")
    ] = None,
    model: ModelOption = "default",
    library: LibraryOption = None,
    size: PreviewSizeOption = 512,
) -> None:
    """Animate many recordings: progress, per-item status in OUTDIR/batch.jsonl, resume after a crash.

    Rerun the same command to resume: finished items are skipped, failed ones retried.
    One bad item is recorded with its error, and the batch goes on."""
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from gesticulator.batch.manifest import check_defaults
    from gesticulator.batch.runner import BatchFailed, BatchOptions, run_batch

    fmts = check_defaults(seed=seed, density=density, formats=formats)
    if engine == "local" and address:
        engine = "ray"  # an address only means something to Ray
    if workers is None and not address:  # a cluster's default: one actor per CPU it has
        workers = _default_workers()
    options = BatchOptions(
        model=model, library=tuple(str(p) for p in library or ()), density=density, formats=fmts, seed=seed,
        llm=llm, size=size,
    )  # fmt: skip
    progress = Progress(
        TextColumn("[bold]batch[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=err_console,
    )
    state: dict[str, Any] = {}

    def on_start(total: int, to_run: int, skipped: int) -> None:
        if skipped:
            err_console.print(f"{skipped} of {total} items already done: skipped")
        state["failed"] = 0
        if to_run:
            state["task"] = progress.add_task("loading models", total=to_run, failed=0)

    def on_item(rec: dict[str, Any]) -> None:
        if rec["status"] != "done":
            state["failed"] += 1
            progress.console.print(
                f"[red]failed[/] {escape(rec['id'])}: {escape(str(rec['error']))}",
                highlight=False,
                soft_wrap=True,
            )
        progress.update(state["task"], advance=1, failed=state["failed"], description=rec["id"])

    with progress:
        summary = run_batch(
            source, output, options=options, engine=engine, workers=workers, address=address,
            on_start=on_start, on_item=on_item,
        )  # fmt: skip
    minutes = summary.audio_seconds / 60
    console.print(
        f"{summary.done} done, {summary.skipped} skipped (done before), {summary.failed} failed of "
        f"{summary.total} items in {summary.seconds:.1f} s ({summary.engine}, {summary.workers} workers); "
        f"{minutes:.2f} min of audio = {summary.throughput:.2f} audio min per wall min",
        soft_wrap=True,
    )
    console.print(f"outputs: {summary.outdir}/<id>/   log: {summary.status_file}", soft_wrap=True)
    if summary.failed:
        raise BatchFailed(
            f"{summary.failed} of {summary.total} items failed (errors above and in {summary.status_file})",
            "fix them and rerun the same command: finished items are skipped",
        )


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)


__all__ = ["batch", "register"]
