"""Command line of the rhythm model: `generate`, `train`, `eval` and `data bootstrap`.

Registered on the main app by `gesticulator.cli` (`register(app)`), so every command gets the
same one-line errors and `--debug`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gesticulator._cli_util import console, friendly_errors
from gesticulator.errors import GesticulatorError, InputFileError

data_app = typer.Typer(help="Datasets for training: build the bootstrap corpus.", no_args_is_help=True)


def _check_file(path: Path, what: str, fix: str) -> None:
    if not path.is_file():
        raise InputFileError(f"{what} not found: {path}", fix)


@friendly_errors
def generate(
    audio: Annotated[Path, typer.Argument(help="Speech audio (wav, mp3, flac, ...).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output motion .npz.")],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed gives the same motion.")
    ] = 0,
    model: Annotated[
        str,
        typer.Option("--model", help="'default', an exported checkpoint folder or a training run folder."),
    ] = "default",
    temperature: Annotated[
        float, typer.Option("--temperature", help="Sampling temperature (0 or less: greedy).")
    ] = 1.0,
    transcript: Annotated[
        Path | None,
        typer.Option("--transcript", help="Word-timed transcript (JSON/TextGrid) to condition on."),
    ] = None,
) -> None:
    """Beat motion only (no semantic gestures) from speech audio, with the rhythm model."""
    from gesticulator.io.npz import save_npz
    from gesticulator.rhythm.model import RhythmModel

    _check_file(audio, "audio file", "check the AUDIO path")
    if output.suffix.lower() != ".npz":
        raise GesticulatorError(f"output must be a .npz file, got {output.name}", "use -o motion.npz")
    if not math.isfinite(temperature):  # NaN logits would sample garbage codes, silently
        raise GesticulatorError(
            f"--temperature must be a number, got {temperature}", "e.g. --temperature 1.0 (0 = greedy)"
        )
    tr = None
    if transcript is not None:
        from gesticulator.speech.transcripts import read_transcript

        _check_file(transcript, "transcript", "check the --transcript path")
        tr = read_transcript(transcript)
    t0 = time.perf_counter()
    rhythm = RhythmModel.load(model)
    t1 = time.perf_counter()
    motion = rhythm.generate(audio, seed=seed, temperature=temperature, transcript=tr)
    t2 = time.perf_counter()
    save_npz(motion, output)
    console.print(
        f"{output}: {motion.num_frames} frames, {motion.duration:.1f} s "
        f"(load {t1 - t0:.1f} s, generate {t2 - t1:.2f} s, RTF {(t2 - t1) / max(motion.duration, 1e-9):.3f})"
    )


@friendly_errors
def train(
    config: Annotated[
        str, typer.Argument(help="A config YAML (e.g. pipelines/rhythm_default.yaml) or a preset name.")
    ],
    data: Annotated[
        Path, typer.Option("--data", help="Dataset folder: BEAT2 layout, bootstrap corpus or BVH+wav.")
    ],
    run_dir: Annotated[
        Path, typer.Option("--run", help="Run folder (checkpoints, logs); resumes if it exists.")
    ] = Path("runs/rhythm"),
    export: Annotated[
        Path | None, typer.Option("--export", help="Also export the inference checkpoint into this folder.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Wall-clock budget (overrides the config).")
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start over instead of resuming.")] = False,
) -> None:
    """Train the rhythm model (tokenizer, then GPT); resumable; exports a compact checkpoint."""
    from gesticulator.rhythm.train import export_checkpoint, train_rhythm

    if not data.is_dir():
        raise InputFileError(
            f"dataset folder not found: {data}", "build one with `gesticulator data bootstrap`"
        )
    result = train_rhythm(
        config, data, run_dir, resume=not fresh, log=lambda line: console.print(line, highlight=False),
        max_minutes=max_minutes,
    )  # fmt: skip
    console.print(f"trained: {result}")
    if export is not None:
        out = export_checkpoint(run_dir, export)
        console.print(f"exported {out}")


@friendly_errors
def eval_(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="BEAT2 folder (wave16k/, smplxflame_30/) or flat <take>.wav/.npz folder."
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", help="'default' or a checkpoint / run folder.")
    ] = "default",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    takes: Annotated[
        str | None,
        typer.Option("--takes", help="Comma-separated take names to generate for (default: audio-only)."),
    ] = None,
) -> None:
    """Evaluate the rhythm model on real data: reconstruction, BC and lift, diversity, speed, RTF."""
    from gesticulator.eval.rhythm import evaluate_rhythm_model
    from gesticulator.rhythm.model import RhythmModel

    if not data.is_dir():
        raise InputFileError(f"evaluation folder not found: {data}", "point --data at a BEAT2 folder")
    rhythm = RhythmModel.load(model)
    report = evaluate_rhythm_model(
        rhythm, data, seed=seed, generate_takes=[t for t in (takes or "").split(",") if t] or None,
        log=lambda line: console.print(line, highlight=False),
    )  # fmt: skip
    console.print(report.markdown(), highlight=False, soft_wrap=True)


@data_app.command("bootstrap")
@friendly_errors
def bootstrap(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Corpus folder (created; resumed if present).")
    ],
    hours: Annotated[float, typer.Option("--hours", help="Hours of paired speech and motion.")] = 3.0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same corpus.")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Processes (0: one per CPU core).")] = 1,
) -> None:
    """Build the bootstrap corpus: Piper TTS speech + procedural co-speech motion (BEAT2 layout)."""
    from gesticulator._cli_util import frame_progress
    from gesticulator.rhythm.bootstrap.corpus import build_corpus

    if not (hours > 0 and math.isfinite(hours)):
        raise GesticulatorError(f"--hours must be positive, got {hours}", "e.g. --hours 3")
    if workers < 0:
        raise GesticulatorError(f"--workers must be 0 (one per CPU core) or more, got {workers}")
    with frame_progress("building corpus") as progress:
        summary = build_corpus(
            output,
            hours=hours,
            seed=seed,
            workers=workers,
            progress=lambda done, total, *_: progress(done, total),
        )
    table = Table(title=f"bootstrap corpus {output}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("items", f"{summary.items} ({summary.built} built, {summary.skipped} kept)")
    table.add_row("speech + motion", f"{summary.hours:.2f} h")
    table.add_row("wall time", f"{summary.seconds / 60:.1f} min")
    table.add_row("manifest", str(summary.manifest))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("train")(train)
    app.command("eval")(eval_)
    app.add_typer(data_app, name="data")


__all__ = ["register", "data_app"]
