"""How fast is the preview renderer? Prints a markdown table for 512 and 1024 pixel frames.

    python benchmarks/render_speed.py [--seconds S] [--sizes 512 1024]

Uses the BEAT2 sample (../shared/data/beat2_sample/2_scott_0_1_1.npz and its .wav) when present,
else a synthetic 60 s motion with a synthetic tone. Columns:

- render-only fps: frames per second of `StickFigureRenderer.render` alone (no encoding, FK done).
- render+encode wall: seconds `render_preview` takes end to end (FK, rendering, x264 + AAC, mux).
- RTF: that wall time divided by the clip's duration; below 1 is faster than real time.

A caption that changes every half second is drawn, as a transcript overlay would be.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from gesticulator.io.npz import load_npz
from gesticulator.motion.kinematics import forward_kinematics
from gesticulator.motion.skeleton import JOINT_INDEX
from gesticulator.render import StickFigureRenderer, render_preview
from gesticulator.types import Motion

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "beat2_sample" / "2_scott_0_1_1.npz"


def synthetic_motion(seconds: float = 60.0, fps: float = 30.0) -> Motion:
    """Arms down, swinging forearms and a swaying torso: enough movement to exercise the renderer."""
    n = int(seconds * fps)
    t = np.arange(n) / fps
    rot = np.zeros((n, 55, 3))
    rot[:, JOINT_INDEX["left_shoulder"], 2] = -1.1 + 0.3 * np.sin(1.3 * t)
    rot[:, JOINT_INDEX["right_shoulder"], 2] = 1.1 + 0.3 * np.sin(1.7 * t)
    rot[:, JOINT_INDEX["left_elbow"], 1] = 0.9 + 0.6 * np.sin(2.1 * t)
    rot[:, JOINT_INDEX["right_elbow"], 1] = -0.9 - 0.6 * np.sin(2.6 * t)
    rot[:, JOINT_INDEX["spine2"], 1] = 0.2 * np.sin(0.7 * t)
    trans = np.zeros((n, 3))
    trans[:, 1] = 0.95
    return Motion(poses=rot.reshape(n, -1), trans=trans, fps=fps)


def write_tone(path: Path, seconds: float, rate: int = 16000) -> Path:
    samples = (0.2 * 32767 * np.sin(2 * math.pi * 220 * np.arange(int(seconds * rate)) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def caption(t: float) -> str:
    return f"word number {int(t * 2)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="use only the first S seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if SAMPLE.is_file() and SAMPLE.with_suffix(".wav").is_file():
            motion, audio, source = load_npz(SAMPLE), SAMPLE.with_suffix(".wav"), f"BEAT2 {SAMPLE.name}"
        else:
            motion = synthetic_motion()
            audio, source = (
                write_tone(tmp / "tone.wav", motion.duration),
                "synthetic motion (BEAT2 sample absent)",
            )
        if args.seconds is not None:
            motion = motion.slice(0, round(args.seconds * motion.fps))
        positions = forward_kinematics(motion).positions

        rows = []
        for size in args.sizes:
            renderer = StickFigureRenderer(positions, size=size)
            start = time.perf_counter()
            for i in range(motion.num_frames):
                renderer.render(positions[i], time_s=i / motion.fps, caption=caption(i / motion.fps))
            render_fps = motion.num_frames / (time.perf_counter() - start)

            start = time.perf_counter()
            render_preview(motion, tmp / f"preview_{size}.mp4", audio=audio, size=size, caption_fn=caption)
            wall = time.perf_counter() - start
            mb = (tmp / f"preview_{size}.mp4").stat().st_size / 1e6
            rows.append((size, motion.duration, render_fps, wall, wall / motion.duration, mb))

    print(f"Source: {source}, {motion.num_frames} frames at {motion.fps:g} fps")
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print()
    print("| size | clip s | render-only fps | render+encode wall s | RTF (wall/clip) | MP4 MB |")
    print("|-----:|-------:|----------------:|---------------------:|----------------:|-------:|")
    for size, clip, fps, wall, rtf, mb in rows:
        print(f"| {size}x{size} | {clip:.1f} | {fps:.1f} | {wall:.1f} | {rtf:.2f} | {mb:.1f} |")


if __name__ == "__main__":
    main()
