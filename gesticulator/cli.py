"""The `gesticulator` command line.

Every command turns a user's mistake into one line on stderr that names the problem and the fix,
and exits non-zero; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from gesticulator._cli_util import (
    DensityOption,
    LibraryOption,
    ModelOption,
    PreviewSizeOption,
    console,
    frame_progress,
    friendly_errors,
    show_warnings_as_lines,
    state,
)
from gesticulator.batch.cli import register as register_batch_commands
from gesticulator.errors import GesticulatorError, InputFileError
from gesticulator.library.cli import library_app
from gesticulator.rhythm.cli import register as register_rhythm_commands
from gesticulator.service.cli import register as register_service_commands
from gesticulator.viewer.cli import register as register_viewer_commands

app = typer.Typer(
    name="gesticulator",
    help="Speech in, meaningful full-body SMPL-X gesture animation out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(library_app, name="library")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    state["debug"] = debug
    if not debug:
        show_warnings_as_lines()


def _check_audio(audio: Path | None) -> None:
    if audio is not None and not audio.is_file():
        raise InputFileError(f"audio file not found: {audio}", "check the --audio path")


@app.command()
@friendly_errors
def info(
    motion_file: Annotated[Path, typer.Argument(help="An SMPL-X .npz or a .bvh file.")],
) -> None:
    """Describe a motion file: frames, rate, duration, skeleton, ranges of movement."""
    from gesticulator.io import load_motion, read_bvh
    from gesticulator.motion import BODY_PARTS, joint_positions

    table = Table(show_header=False, box=None)
    table.add_row("file", str(motion_file))
    if motion_file.suffix.lower() == ".bvh":
        bvh = read_bvh(motion_file)
        if bvh.num_frames == 0:
            import warnings

            warnings.warn(f"{motion_file.name} has zero frames: only its skeleton is described", stacklevel=1)
        table.add_row("format", "BVH")
        table.add_row("joints", f"{bvh.num_joints} (root {bvh.names[0]})")
        table.add_row("frames", f"{bvh.num_frames} at {bvh.fps:g} fps = {bvh.num_frames / bvh.fps:.2f} s")
        smplx = (
            "yes"
            if "left_index1" in bvh.names and "pelvis" in bvh.names
            else "no (needs a joint map to import)"
        )
        table.add_row("SMPL-X skeleton", smplx)
        console.print(table)
        return
    motion = load_motion(motion_file)
    pos = joint_positions(motion)
    table.add_row("format", "SMPL-X npz (55 joints, axis-angle, flat_hand_mean=False)")
    table.add_row("frames", f"{motion.num_frames} at {motion.fps:g} fps = {motion.duration:.2f} s")
    table.add_row("gender / betas", f"{motion.gender} / {motion.betas.shape[0]} coefficients")
    height = np.ptp(pos[0, :, 1])
    table.add_row("figure height", f"{height:.2f} m (joint span, first frame)")
    travel = np.linalg.norm(motion.trans[-1] - motion.trans[0])
    table.add_row("root travel", f"{travel:.3f} m start to end")
    for part in ("upper", "hands", "lower"):
        idx = list(BODY_PARTS[part])
        speed = (
            np.linalg.norm(np.diff(pos[:, idx], axis=0), axis=-1).mean() * motion.fps if len(pos) > 1 else 0.0
        )
        table.add_row(f"{part} mean speed", f"{speed:.3f} m/s")
    shown = {k: v for k, v in motion.metadata.items() if not k.startswith("_")}
    if shown:
        table.add_row("metadata", ", ".join(f"{k}={v}" for k, v in shown.items()))
    console.print(table)


@app.command()
@friendly_errors
def export(
    motion_file: Annotated[Path, typer.Argument(help="An SMPL-X .npz (or a BVH written by gesticulator).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder (created if missing).")],
    to: Annotated[
        str, typer.Option("--to", help="Comma-separated formats: npz,bvh,glb,mp4,fbx (fbx needs Blender).")
    ] = "bvh,glb,mp4",
    audio: Annotated[Path | None, typer.Option("--audio", help="Speech audio to mux into the MP4.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Output file stem (default: the input's).")
    ] = None,
    bvh_units: Annotated[
        str, typer.Option("--bvh-units", help="SMPL-X BVH units: cm or m (a rig's BVH keeps the rig's).")
    ] = "cm",
    size: PreviewSizeOption = 512,
    rig: Annotated[
        str | None,
        typer.Option(
            "--rig",
            help="Retarget bvh/glb/fbx onto this rig: a shipped one (mixamo, vrm, vrm0, generic) or a "
            "rig YAML (joint map + rest skeleton). npz and mp4 stay SMPL-X.",
        ),
    ] = None,
) -> None:
    """Convert a motion into BVH, GLB (skinned mannequin), npz, FBX and an MP4 preview with sound,
    for SMPL-X or retargeted onto another rig (--rig)."""
    from gesticulator.api import EXPORT_FORMATS, check_formats
    from gesticulator.io import load_motion, save_bvh, save_npz
    from gesticulator.io.atomic import move_into, staged_outputs

    formats = check_formats(to, what="export", allowed=EXPORT_FORMATS)
    _check_audio(audio)
    if bvh_units not in ("cm", "m"):
        raise GesticulatorError(f"unknown BVH units {bvh_units!r}", "use --bvh-units cm or --bvh-units m")
    target_rig = None
    if rig is not None:
        from gesticulator.rigs import load_rig

        target_rig = load_rig(rig)  # unknown names, bad maps, missing skeletons: before any output
    if "fbx" in formats:
        from gesticulator.rigs.blender import require_blender

        require_blender()  # fail before writing anything when Blender is absent
    motion = load_motion(motion_file)
    stem = name or motion_file.stem
    if output.exists() and not output.is_dir():
        raise GesticulatorError(f"output {output} exists and is not a folder", "choose another -o folder")
    # Every file is written into a temporary folder beside -o and moved in at the end, so a
    # failure (no Blender, a full disk, a bad audio file for the MP4) leaves -o as it was.
    written: list[tuple[str, str, float]] = []
    with staged_outputs(output) as stage:
        if target_rig is not None:
            from gesticulator.rigs import export_to_rig

            rig_formats = [f for f in formats if f in ("bvh", "glb", "fbx")]
            if rig_formats:
                start = time.perf_counter()
                paths = export_to_rig(motion, target_rig, stage, rig_formats, name=stem)
                seconds = (time.perf_counter() - start) / len(paths)
                written += [(f"{fmt} ({target_rig.name})", path.name, seconds) for fmt, path in paths.items()]
            formats = [f for f in formats if f not in rig_formats]
        for fmt in formats:
            start = time.perf_counter()
            target = stage / f"{stem}.{fmt}"
            if fmt == "npz":
                save_npz(motion, target)
            elif fmt == "bvh":
                save_bvh(motion, target, units=bvh_units)
            elif fmt == "glb":
                from gesticulator.io.glb import save_glb

                save_glb(motion, target)
            elif fmt == "fbx":
                _smplx_fbx(motion, target, stage / f"{stem}.glb" if "glb" in formats else None, bvh_units)
            elif fmt == "mp4":
                from gesticulator.render import render_preview

                with frame_progress("rendering preview") as progress:
                    render_preview(motion, target, audio=audio, size=size, progress=progress)
            written.append((fmt, target.name, time.perf_counter() - start))
        move_into(stage, output, [file for _, file, _ in written])
    table = Table(title=f"{motion_file.name}: {motion.num_frames} frames, {motion.duration:.1f} s")
    table.add_column("format")
    table.add_column("file")
    table.add_column("size", justify="right")
    table.add_column("time", justify="right")
    for fmt, file, seconds in written:
        path = output / file
        table.add_row(fmt, str(path), f"{path.stat().st_size / 1e6:.2f} MB", f"{seconds:.1f} s")
    console.print(table)


def _smplx_fbx(motion, target: Path, glb: Path | None, bvh_units: str) -> None:
    """FBX of the SMPL-X motion: Blender converts its BVH, with the mannequin mesh from its GLB
    (the one this export writes when glb is asked for; else a temporary one)."""
    import tempfile

    from gesticulator.io import save_bvh
    from gesticulator.io.glb import save_glb
    from gesticulator.rigs.blender import bvh_to_fbx

    with tempfile.TemporaryDirectory(prefix="gesticulator-fbx-") as tmp:
        bvh = save_bvh(motion, Path(tmp) / f"{target.stem}.bvh", units=bvh_units)
        if glb is None or not glb.is_file():
            glb = save_glb(motion, Path(tmp) / f"{target.stem}.glb")
        bvh_to_fbx(bvh, target, glb=glb)


@app.command()
@friendly_errors
def render(
    motion_file: Annotated[Path, typer.Argument(help="An SMPL-X .npz (or a BVH written by gesticulator).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output .mp4 (or .png with --frame).")],
    audio: Annotated[Path | None, typer.Option("--audio", help="Speech audio to mux in.")] = None,
    size: Annotated[int, typer.Option("--size", help="Video height in pixels.")] = 512,
    frame: Annotated[int | None, typer.Option("--frame", help="Write one still PNG of this frame.")] = None,
) -> None:
    """Render a preview video (two views, with sound) or a still frame."""
    from gesticulator.io import load_motion
    from gesticulator.render import render_preview, save_still

    _check_audio(audio)
    if size < 64 or size > 4096:
        raise GesticulatorError(f"--size {size} is out of range", "use a size between 64 and 4096")
    motion = load_motion(motion_file)
    start = time.perf_counter()
    if frame is not None:
        if not 0 <= frame < motion.num_frames:
            raise GesticulatorError(
                f"--frame {frame} is outside the motion (0..{motion.num_frames - 1})",
                "pick a frame inside it",
            )
        if output.suffix.lower() != ".png":
            output = output.with_suffix(".png")
        save_still(motion, frame, output, size=size)
    else:
        if output.suffix.lower() != ".mp4":
            raise GesticulatorError(
                f"preview output must end in .mp4, got {output.name}", "use -o preview.mp4"
            )
        with frame_progress("rendering") as progress:
            render_preview(motion, output, audio=audio, size=size, progress=progress)
    elapsed = time.perf_counter() - start
    console.print(f"wrote {output} in {elapsed:.1f} s ({motion.duration:.1f} s of motion)")


@app.command()
@friendly_errors
def transcribe(
    audio: Annotated[Path, typer.Argument(help="Speech audio (wav, flac, mp3, m4a, …).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Transcript JSON to write.")],
    script: Annotated[
        Path | None,
        typer.Option("--script", help="The exact text spoken: its words get the recording's timing."),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model", help="default (bundled Whisper tiny.en), whisperx, or a faster-whisper model folder."
        ),
    ] = "default",
    language: Annotated[
        str | None, typer.Option("--language", help="Language code for multilingual models.")
    ] = None,
) -> None:
    """Transcribe speech into words with start/end times (JSON)."""
    from gesticulator.speech.asr import get_transcriber
    from gesticulator.speech.transcripts import write_transcript

    if not audio.is_file():
        raise InputFileError(f"audio file not found: {audio}", "check the path")
    script_text = None
    if script is not None:
        if not script.is_file():
            raise InputFileError(f"script file not found: {script}", "check the --script path")
        from gesticulator.io.text import read_text

        script_text = read_text(script, "script file")  # UTF-8/16, else cp1252 with a warning
    start = time.perf_counter()
    with frame_progress("transcribing") as progress:
        transcript = get_transcriber(model).transcribe(audio, language=language, progress=progress)
    if script_text is not None:
        from gesticulator.speech.align import align_script_to_words
        from gesticulator.speech.markup import strip_markup

        plain, _marks = strip_markup(script_text)
        transcript = align_script_to_words(plain, transcript)
    write_transcript(transcript, output)
    elapsed = time.perf_counter() - start
    console.print(
        f"wrote {output}: {len(transcript.words)} words, {len(transcript.sentences)} sentences "
        f"({transcript.source}) in {elapsed:.1f} s"
    )


def _load_gesticulator(model: str, library: list[Path] | None, llm: str | None, density: str):
    from gesticulator.api import Gesticulator

    with console.status("loading models"):
        return Gesticulator.load(model, library=library or None, llm=llm, density=density)


def _default_model_installed() -> bool:
    from gesticulator.rhythm.model import default_checkpoint_dir
    from gesticulator.rhythm.train import MODEL_FILE

    return (default_checkpoint_dir() / MODEL_FILE).is_file()


def _report_animation(result, paths: dict, seconds: float, load_seconds: float) -> None:
    tl = result.timeline
    placed = [e for e in tl.events if e.is_placed]
    table = Table(
        title=f"{len(placed)} semantic gestures over {tl.inputs.duration:.1f} s ({tl.plan.selector})"
    )
    for col in ("apex", "word", "gesture", "take", "arms", "status"):
        table.add_column(col)
    for e in tl.events:
        status = e.status + (f" ({e.note})" if e.note and not e.is_placed else "")
        table.add_row(
            f"{e.apex:.2f}s", e.word, e.gesture_id, e.take or "", "+".join(e.active_arms) or "-", status
        )
    console.print(table)
    q = tl.quality
    if q.get("seam_ratio_max") is not None:
        console.print(
            f"seams: max speed ratio {q['seam_ratio_max']:.2f} (median {q['seam_ratio_median']:.2f}); "
            f"stroke error vs library clip max {q.get('recognisability_cm_max') or 0:.2f} cm"
        )
    for kind, path in paths.items():
        console.print(f"  {kind:10s} {path}")
    rtf = seconds / max(tl.inputs.duration, 1e-9)
    console.print(f"animated in {seconds:.1f} s (RTF {rtf:.3f}; models loaded in {load_seconds:.1f} s)")


def _check_choice(value: str, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise GesticulatorError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


@app.command()
@friendly_errors
def animate(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")],
    audio: Annotated[
        Path | None, typer.Argument(help="Speech audio (wav, flac, mp3, …); optional with --timeline.")
    ] = None,
    transcript: Annotated[
        Path | None, typer.Option("--transcript", help="Word-timed transcript (.json/.TextGrid/.srt/.vtt).")
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option("--script", help="The exact text spoken (.txt, markup allowed), timed by ASR."),
    ] = None,
    timeline: Annotated[
        Path | None,
        typer.Option("--timeline", help="Re-render an (edited) timeline.json: no ASR, no planning."),
    ] = None,
    llm: Annotated[
        str | None,
        typer.Option(
            "--llm", help="PROVIDER:MODEL (openai:…, ollama:…, llamacpp:PATH, hf:…) picks the gestures."
        ),
    ] = None,
    density: DensityOption = "normal",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same motion.")] = 0,
    model: ModelOption = "default",
    library: LibraryOption = None,
    formats: Annotated[
        str, typer.Option("--formats", help="Comma-separated: npz,bvh,glb,mp4.")
    ] = "npz,bvh,glb,mp4",
    size: PreviewSizeOption = 512,
) -> None:
    """Animate speech: motion.npz/.bvh/.glb, preview.mp4 (with sound) and timeline.json."""
    from gesticulator.api import check_formats

    fmts = check_formats(formats)
    _check_choice(density, "--density", ("low", "normal", "high"))
    if size < 64 or size > 4096:
        raise GesticulatorError(f"--size {size} is out of range", "use a size between 64 and 4096")
    if transcript is not None and script is not None:
        raise GesticulatorError("give --transcript or --script, not both", "drop one of them")
    if timeline is not None:
        if transcript is not None or script is not None:
            raise GesticulatorError(
                "--timeline already holds the transcript and the plan", "drop --transcript/--script"
            )
        if not timeline.is_file():
            raise InputFileError(f"timeline file not found: {timeline}", "check the --timeline path")
        from gesticulator.api import Timeline

        Timeline.load(timeline)  # a malformed timeline fails now, before the models load
    elif audio is None:
        raise GesticulatorError("no audio given", "gesticulator animate AUDIO -o OUTDIR (or --timeline F)")
    if audio is not None and not audio.is_file():
        raise InputFileError(f"audio file not found: {audio}", "check the AUDIO path")
    for path, what in ((transcript, "--transcript"), (script, "--script")):
        if path is not None and not path.is_file():
            raise InputFileError(f"{what} file not found: {path}", f"check the {what} path")
    g = _load_gesticulator(model, library, llm, density)
    start = time.perf_counter()
    if timeline is not None:
        result = g.rerender(timeline, audio=audio)
    else:
        result = g.animate(audio, transcript=transcript, script=script, seed=seed, density=density)
    seconds = time.perf_counter() - start
    with frame_progress("rendering preview") as progress:
        paths = result.save(output, fmts, size=size, progress=progress)
    _report_animation(result, paths, seconds, g.load_seconds)


@app.command()
@friendly_errors
def speak(
    text: Annotated[str, typer.Argument(help="The script, or @file.txt to read it from a file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")],
    name: Annotated[str, typer.Option("--name", help="Output file stem of the speech.")] = "speech",
    pause: Annotated[float, typer.Option("--pause", help="Seconds of silence between sentences.")] = 0.35,
    audio_only: Annotated[
        bool, typer.Option("--audio-only", help="Only the speech (wav + transcript), no animation.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same speech and motion.")] = 0,
    density: DensityOption = "normal",
    llm: Annotated[str | None, typer.Option("--llm", help="PROVIDER:MODEL picks the gestures.")] = None,
    model: ModelOption = "default",
    library: LibraryOption = None,
    formats: Annotated[
        str, typer.Option("--formats", help="Comma-separated: npz,bvh,glb,mp4.")
    ] = "npz,bvh,glb,mp4",
    size: PreviewSizeOption = 512,
) -> None:
    """Speak a presenter's script with the bundled voice and animate it: the wav and its word-timed
    transcript, plus motion.npz/.bvh/.glb, preview.mp4 and timeline.json (unless --audio-only)."""
    from gesticulator.speech.tts import save_speech
    from gesticulator.speech.tts import speak as synthesize

    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise InputFileError(f"script file not found: {path}", "check the @file path")
        from gesticulator.io.text import read_text

        text = read_text(path, "script file")  # UTF-8/16, else cp1252 with a warning
    if not text.strip():
        raise GesticulatorError("the script is empty", "give some text to speak")
    if pause < 0:
        raise GesticulatorError(f"--pause must be >= 0, got {pause}")
    if not audio_only:
        from gesticulator.api import check_formats

        fmts = check_formats(formats)
        _check_choice(density, "--density", ("low", "normal", "high"))
        if model == "default" and not _default_model_installed():
            import warnings

            warnings.warn(
                "the default rhythm model is not installed: wrote the speech only — train one "
                "(see README) or pass --model PATH; --audio-only skips animation",
                stacklevel=1,
            )
            audio_only = True
    start = time.perf_counter()
    if audio_only:
        result = synthesize(text, sentence_pause=pause, seed=seed)
        wav, transcript = save_speech(result, output, stem=name)
        seconds = len(result.samples) / result.sample_rate
        console.print(
            f"wrote {wav} ({seconds:.1f} s) and {transcript}: {len(result.transcript.words)} words "
            f"in {time.perf_counter() - start:.1f} s"
        )
        return
    g = _load_gesticulator(model, library, llm, density)
    start = time.perf_counter()
    animation = g.speak(text, seed=seed, density=density, sentence_pause=pause)
    seconds = time.perf_counter() - start
    with frame_progress("rendering preview") as progress:
        paths = animation.save(output, fmts, audio_stem=name, size=size, progress=progress)
    console.print(
        f"wrote {paths['wav']} ({animation.timeline.inputs.duration:.1f} s) and {paths['transcript']}: "
        f"{len(animation.transcript.words)} words"
    )
    _report_animation(animation, paths, seconds, g.load_seconds)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".mp4", ".mov", ".webm")
TRANSCRIPT_SUFFIXES = (".json", ".textgrid", ".srt", ".vtt")


@app.command()
@friendly_errors
def plan(
    source: Annotated[
        Path, typer.Argument(help="A transcript (.json/.TextGrid/.srt/.vtt), audio, or a script (.txt).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Plan JSON to write.")],
    audio: Annotated[
        Path | None, typer.Option("--audio", help="With a .txt script: the recording it was read from.")
    ] = None,
    llm: Annotated[
        str | None,
        typer.Option("--llm", help="PROVIDER:MODEL (openai:…, ollama:…, llamacpp:PATH, hf:…, smollm2)."),
    ] = None,
    density: DensityOption = "normal",
    library: Annotated[
        list[Path] | None,
        typer.Option("--library", "-l", help="Extra library folders layered over the default."),
    ] = None,
) -> None:
    """Choose which words get which semantic gesture (JSON plan)."""
    import json

    from gesticulator.io.atomic import write_text_atomic
    from gesticulator.speech.markup import strip_markup

    if density not in ("low", "normal", "high"):
        raise GesticulatorError(f"--density must be low, normal or high, got {density!r}")
    if not source.is_file():
        raise InputFileError(f"input not found: {source}", "give a transcript, an audio file or a script")
    suffix = source.suffix.lower()
    marks = None
    if suffix in TRANSCRIPT_SUFFIXES:
        from gesticulator.speech.transcripts import read_transcript

        transcript = read_transcript(source)
    elif suffix in AUDIO_SUFFIXES:
        from gesticulator.speech.asr import get_transcriber

        transcript = get_transcriber().transcribe(source)
    elif suffix in (".txt", ".md"):
        from gesticulator.io.text import read_text

        plain, marks = strip_markup(read_text(source, "script file"))
        if audio is not None:
            from gesticulator.speech.align import align_script_to_words
            from gesticulator.speech.asr import get_transcriber

            transcript = align_script_to_words(plain, get_transcriber().transcribe(audio))
        else:
            from gesticulator.semantics.planner import transcript_from_text

            transcript = transcript_from_text(plain)
    else:
        raise InputFileError(
            f"cannot plan from {source.name}: unknown type {suffix or '(no suffix)'}",
            "give a .json/.TextGrid/.srt/.vtt transcript, an audio file or a .txt script",
        )
    from gesticulator.semantics.planner import Planner

    start = time.perf_counter()
    if library or llm:
        from gesticulator.library.store import Library
        from gesticulator.semantics.embedded import EmbeddedSelector

        lib = Library.load(library)
        selector = EmbeddedSelector(lib, density=density)
        if llm:
            from gesticulator.semantics.llm import LLMSelector, make_chat_model

            # The embedded selector stays as the fall-back for any batch the LLM cannot answer.
            selector = LLMSelector(make_chat_model(llm), lib, fallback=selector)
        planner = Planner(lib, selector=selector, density=density)
    else:
        planner = Planner.load(density=density)
    result = planner.plan(transcript, marks=marks, density=density)
    write_text_atomic(output, json.dumps(result.model_dump(mode="json"), indent=1) + "\n")
    console.print(
        f"wrote {output}: {len(result.events)} gestures over {len(transcript.words)} words "
        f"({result.selector}) in {time.perf_counter() - start:.1f} s"
    )
    for event in result.events:
        console.print(
            f"  {event.start:6.2f}s  {event.word!r:>16} -> {event.gesture_id}  ({event.confidence:.2f}, {event.source})"
        )


# Commands of the stage subpackages, after the commands above (their order in --help).
register_rhythm_commands(app)  # generate, train, eval, data bootstrap
register_batch_commands(app)  # batch
register_service_commands(app)  # serve (fastapi/uvicorn imported only when it runs)
register_viewer_commands(app)  # view


def main() -> None:
    app()


if __name__ == "__main__":
    main()
