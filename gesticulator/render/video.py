"""Preview MP4s and PNG stills of a `Motion`, drawn by the stick-figure renderer.

The MP4 is H.264 in yuv420p with `+faststart` (plays in browsers and QuickTime), encoded by the
ffmpeg binary that `imageio-ffmpeg` ships. Frames are streamed to ffmpeg's stdin as raw RGB (no
temporary images); a writer thread feeds the pipe so rendering the next frame overlaps the write,
and ffmpeg encodes on the other core. Audio, when given, is muxed as AAC and cut or padded with
silence to the motion's length, so the video always lasts exactly as long as the motion.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from gesticulator.errors import ExportError, InputFileError, MissingDependencyError, MotionError
from gesticulator.io.atomic import atomic_path
from gesticulator.motion.kinematics import forward_kinematics
from gesticulator.render.stick import DEFAULT_STYLE, StickFigureRenderer, Style
from gesticulator.types import Motion

CaptionFn = Callable[[float], "str | None"]
ProgressFn = Callable[[int, int], None]

# x264 settings: `veryfast` keeps encoding well under real time on a laptop core while the flat
# shading of the preview still compresses to a few hundred kB per minute; `animation` tuning suits
# large flat areas and hard edges.
X264_PRESET = "veryfast"
X264_CRF = 20
AUDIO_BITRATE = "160k"


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise MissingDependencyError(
            f"no ffmpeg binary available for video export ({e})", "pip install imageio-ffmpeg"
        ) from e


def iter_frames(
    motion: Motion,
    *,
    size: int | tuple[int, int] = 512,
    caption_fn: CaptionFn | None = None,
    show_time: bool = True,
    style: Style = DEFAULT_STYLE,
) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 RGB frames of `motion` at its own frame rate, camera framed on the clip."""
    _check_frames(motion)
    positions = joint_positions(motion)
    renderer = StickFigureRenderer(positions, size=size, style=style)
    for i in range(positions.shape[0]):
        t = i / motion.fps
        caption = caption_fn(t) if caption_fn is not None else None
        yield renderer.render(positions[i], time_s=t if show_time else None, caption=caption)


def render_preview(
    motion: Motion,
    out_path: str | os.PathLike,
    *,
    audio: str | os.PathLike | None = None,
    size: int | tuple[int, int] = 512,
    fps: float | None = None,
    caption_fn: CaptionFn | None = None,
    show_time: bool = True,
    style: Style = DEFAULT_STYLE,
    progress: ProgressFn | None = None,
) -> Path:
    """Write an H.264 MP4 preview of `motion` (front and side views) to `out_path`.

    `audio`: a sound file muxed in as AAC, trimmed or padded with silence to the motion's length.
    `fps`: output frame rate (the motion is resampled); default the motion's own.
    `caption_fn(t_seconds)`: text for the caption line at time t (e.g. the current word), or None.
    `progress(done, total)`: called after each frame.
    The file appears only when complete (written to a temporary name, then renamed).
    """
    out_path = Path(out_path)
    exe = ffmpeg_exe()
    audio_path = _check_audio(exe, Path(audio)) if audio is not None else None
    _check_frames(motion)
    if fps is not None and abs(float(fps) - motion.fps) > 1e-6:
        motion = motion.resample(float(fps))
    frames = iter_frames(motion, size=size, caption_fn=caption_fn, show_time=show_time, style=style)
    first = next(frames)  # builds the renderer; gives the true (even) frame size
    height, width = first.shape[:2]
    duration = motion.num_frames / motion.fps
    cmd = _ffmpeg_command(exe, width, height, motion.fps, duration, audio_path)
    with atomic_path(out_path) as tmp:
        _encode(cmd + [str(tmp)], _chain(first, frames), motion.num_frames, progress)
    return out_path


def save_still(
    motion: Motion,
    frame_index: int,
    png_path: str | os.PathLike,
    *,
    size: int | tuple[int, int] = 512,
    caption: str | None = None,
    show_time: bool = True,
    style: Style = DEFAULT_STYLE,
) -> Path:
    """Write frame `frame_index` of `motion` as a PNG, framed exactly as in `render_preview`."""
    _check_frames(motion)
    n = motion.num_frames
    index = frame_index + n if frame_index < 0 else frame_index
    if not 0 <= index < n:
        raise MotionError(
            f"frame {frame_index} is out of range: the motion has {n} frames", f"pick 0..{n - 1}"
        )
    positions = joint_positions(motion)
    renderer = StickFigureRenderer(positions, size=size, style=style)
    frame = renderer.render(
        positions[index], time_s=index / motion.fps if show_time else None, caption=caption
    )
    png_path = Path(png_path)
    with atomic_path(png_path) as tmp:
        try:
            Image.fromarray(frame).save(tmp, format="PNG")
        except OSError as e:
            raise ExportError(
                f"cannot write {png_path}: {e}", "free disk space or choose another folder"
            ) from e
    return png_path


# -- helpers ------------------------------------------------------------------------------------
def joint_positions(motion: Motion, chunk: int = 4096) -> np.ndarray:
    """(T, 55, 3) FK joint positions, computed in chunks: FK also returns (T, 55, 3, 3)
    rotations, which for an hour-long clip would be a few hundred MB at once."""
    if motion.num_frames <= chunk:
        return forward_kinematics(motion).positions
    parts = [
        forward_kinematics(motion.slice(i, i + chunk)).positions for i in range(0, motion.num_frames, chunk)
    ]
    return np.concatenate(parts)


def _check_frames(motion: Motion) -> None:
    if motion.num_frames == 0:
        raise MotionError(
            "the motion has no frames, nothing to render", "check the motion file or generation step"
        )


def _check_audio(exe: str, audio: Path) -> Path:
    """Fail early, with a one-line message, on audio ffmpeg cannot decode."""
    if not audio.is_file():
        raise InputFileError(f"audio file not found: {audio}", "check the path")
    try:
        with open(audio, "rb"):
            pass
    except OSError as e:
        raise InputFileError(f"cannot read audio file {audio}: {e.strerror}", "check its permissions") from e
    # `ffmpeg -i FILE` with no output prints the streams it found to stderr (and exits non-zero).
    probe = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-i", str(audio)],
        check=False,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
    )
    if not re.search(r"Stream #\S+.*: Audio:", probe.stderr):
        detail = _last_line(probe.stderr, skip=("At least one output file",)) or "no audio stream"
        raise InputFileError(
            f"cannot read audio from {audio.name}: {detail}",
            "give a WAV, MP3, FLAC or other file ffmpeg can decode",
        )
    return audio


def _ffmpeg_command(
    exe: str, width: int, height: int, fps: float, duration: float, audio: Path | None
) -> list[str]:
    rate = Fraction(fps).limit_denominator(100_000)
    cmd = [
        exe, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(rate), "-i", "pipe:0",
    ]  # fmt: skip
    if audio is not None:
        cmd += ["-i", str(audio)]
    cmd += ["-map", "0:v:0"]
    if audio is not None:
        cmd += ["-map", "1:a:0"]
    cmd += [
        "-c:v", "libx264", "-preset", X264_PRESET, "-tune", "animation", "-crf", str(X264_CRF),
        "-pix_fmt", "yuv420p", "-movflags", "+faststart",
    ]  # fmt: skip
    if audio is not None:
        # apad makes short audio as long as needed; -t then cuts everything at the motion's end.
        cmd += ["-c:a", "aac", "-b:a", AUDIO_BITRATE, "-af", "apad"]
    cmd += ["-t", f"{duration:.6f}", "-f", "mp4"]
    return cmd


def _encode(cmd: list[str], frames: Iterator[np.ndarray], total: int, progress: ProgressFn | None) -> None:
    """Pipe `frames` into ffmpeg; raise ExportError with ffmpeg's last error line if it fails."""
    with tempfile.TemporaryFile() as err:
        # stderr goes to a file, not a pipe: an unread pipe could fill up and stall ffmpeg.
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        except OSError as e:
            raise ExportError(f"cannot start ffmpeg: {e.strerror}", "reinstall imageio-ffmpeg") from e
        # A writer thread owns the pipe: the blocking write releases the GIL, so the next frame
        # renders while the previous one is handed to ffmpeg.
        pending: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=4)
        broken = threading.Event()

        def write() -> None:
            assert proc.stdin is not None
            while (frame := pending.get()) is not None:
                if broken.is_set():
                    continue  # drain, so the producer never blocks on a full queue
                try:
                    proc.stdin.write(memoryview(frame).cast("B"))
                except (BrokenPipeError, OSError):
                    broken.set()

        writer = threading.Thread(target=write, name="ffmpeg-writer", daemon=True)
        writer.start()
        done = 0
        try:
            for frame in frames:
                if broken.is_set():
                    break  # ffmpeg has exited; its error is reported below
                pending.put(np.ascontiguousarray(frame))
                done += 1
                if progress is not None:
                    progress(done, total)
        except BaseException:
            # Rendering failed or was interrupted: stop ffmpeg first (so a blocked write fails
            # and the writer drains), and let the caller's atomic_path drop the partial file.
            proc.kill()
            raise
        finally:
            pending.put(None)
            writer.join()
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            rc = proc.wait()
        if rc != 0 or broken.is_set():
            err.seek(0)
            message = _last_line(err.read().decode("utf-8", "replace")) or f"exit status {rc}"
            raise ExportError(
                f"ffmpeg failed to encode the preview: {message}", "check disk space and the output path"
            )


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _last_line(text: str, skip: tuple[str, ...] = ()) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(skip)]
    return lines[-1] if lines else ""
