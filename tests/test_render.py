"""Preview renderer: stills of known poses land where they should, and MP4 export is well formed."""

from __future__ import annotations

import math
import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from gesticulator.errors import ExportError, InputFileError, MotionError
from gesticulator.motion.kinematics import forward_kinematics
from gesticulator.motion.skeleton import JOINT_INDEX
from gesticulator.render import StickFigureRenderer, render_frame, render_preview, save_still
from gesticulator.render import video as video_mod
from gesticulator.render.video import ffmpeg_exe
from gesticulator.types import Motion

SIZE = 512
FPS = 30.0


@pytest.fixture(scope="module")
def tpose() -> np.ndarray:
    return forward_kinematics(Motion.rest(1)).positions[0]


def _waving_motion(frames: int = 45) -> Motion:
    """Rest pose with the arms lowered and the left forearm waving: cheap, deterministic motion."""
    m = Motion.rest(frames, fps=FPS)
    rot = m.poses.reshape(frames, 55, 3)
    t = np.arange(frames) / FPS
    rot[:, JOINT_INDEX["left_shoulder"], 2] = -1.1  # arms down from the T-pose
    rot[:, JOINT_INDEX["right_shoulder"], 2] = 1.1
    rot[:, JOINT_INDEX["left_elbow"], 1] = 0.8 + 0.5 * np.sin(2 * math.pi * t)
    m.trans[:, 1] = 0.95  # stand on y=0 roughly
    return Motion(poses=rot.reshape(frames, -1), trans=m.trans, fps=FPS)


def _sine_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    n = int(seconds * rate)
    samples = (0.3 * 32767 * np.sin(2 * math.pi * 220.0 * np.arange(n) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def _figure_mask(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > 40


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_tpose_frame_is_drawn_where_expected(tpose):
    renderer = StickFigureRenderer(tpose, size=SIZE)
    frame = renderer.render(tpose)
    assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.uint8
    mask = _figure_mask(frame, renderer.background)
    assert mask.sum() > 3000, "the figure covers many pixels"

    front, side = mask[:, : SIZE // 2], mask[:, SIZE // 2 :]
    f_top, f_bottom, f_left, f_right = _extent(front)
    s_top, s_bottom, s_left, s_right = _extent(side)
    # Front: the arm span is about the body height; side: the T-pose is a narrow column.
    assert (f_right - f_left) > 0.8 * (f_bottom - f_top)
    assert (s_right - s_left) < 0.5 * (s_bottom - s_top)
    # Same scale in both views: the figure is equally tall in each.
    assert abs((f_bottom - f_top) - (s_bottom - s_top)) <= 6
    # Not clipped: a margin on every side of the panel.
    assert f_top > 0 and f_bottom < SIZE - 1 and f_left > 0 and f_right < SIZE // 2 - 1

    # The head is at the top, centred: the top 12% of the figure is narrow and in the middle.
    height = f_bottom - f_top
    head_cols = np.nonzero(front[f_top : f_top + int(0.12 * height)].any(axis=0))[0]
    centre = 0.5 * (f_left + f_right)
    assert head_cols.max() - head_cols.min() < 0.2 * (f_right - f_left)
    assert abs(head_cols.mean() - centre) < 0.05 * (f_right - f_left)


def test_front_view_faces_the_viewer_and_sides_have_colours(tpose):
    renderer = StickFigureRenderer(tpose, size=SIZE)
    frame = renderer.render(tpose).astype(int)
    mask = _figure_mask(frame, renderer.background)[:, : SIZE // 2]
    _, _, left, right = _extent(mask)
    # Facing the viewer, the figure's left hand (blue) is on the viewer's right, and its right
    # hand (orange) on the viewer's left.
    viewer_right = frame[:, right - 12 : right + 1][mask[:, right - 12 : right + 1]]
    viewer_left = frame[:, left : left + 13][mask[:, left : left + 13]]
    assert viewer_right[:, 2].mean() > viewer_right[:, 0].mean() + 20  # blue
    assert viewer_left[:, 0].mean() > viewer_left[:, 2].mean() + 20  # orange


def test_camera_axes():
    front, side = StickFigureRenderer(forward_kinematics(Motion.rest(1)).positions, size=256).layout.views
    origin, x, y, z = np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    # Front: the figure's left (+X) is on screen right, up is up (smaller row), +Z is toward the camera.
    assert front.project(x)[0] > front.project(origin)[0]
    assert front.project(y)[1] < front.project(origin)[1]
    assert front.project(z)[2] > front.project(origin)[2]
    # Side, seen from the figure's right: forward (+Z) points right, the right side (-X) is near.
    assert side.project(z)[0] > side.project(origin)[0]
    assert side.project(-x)[2] > side.project(origin)[2]


def test_views_differ_and_frames_change(tpose):
    frame = render_frame(tpose, size=SIZE)
    front, side = frame[:, : SIZE // 2].astype(int), frame[:, SIZE // 2 :].astype(int)
    assert np.abs(front - side).mean() > 2.0
    motion = _waving_motion(20)
    positions = forward_kinematics(motion).positions
    renderer = StickFigureRenderer(positions, size=256)
    a, b = renderer.render(positions[0]), renderer.render(positions[7])
    assert np.abs(a.astype(int) - b.astype(int)).max() > 50
    # Rendering is deterministic and has no leftovers from earlier frames.
    assert np.array_equal(renderer.render(positions[0]), a)


def test_overlays_draw_text(tpose):
    renderer = StickFigureRenderer(tpose, size=SIZE)
    plain = renderer.render(tpose)
    captioned = renderer.render(tpose, time_s=3.5, caption="hello")
    changed = np.abs(plain.astype(int) - captioned.astype(int)).max(axis=-1) > 40
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.min() < SIZE * 0.08, "time counter at the top"
    assert rows.max() > SIZE * 0.9, "caption at the bottom"
    # Very long captions still fit on one line.
    renderer.render(tpose, caption="word " * 200)


def _probe(path: Path) -> str:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False
    ).stderr


def _count_frames(path: Path) -> int:
    err = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        check=False,
        text=True,
    ).stderr
    return int(re.findall(r"frame=\s*(\d+)", err)[-1])


def _duration(info: str) -> float:
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info).groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.parametrize("audio_seconds", [2.3, 0.8])  # longer audio is cut, shorter is padded
def test_mp4_with_audio(tmp_path, audio_seconds):
    motion = _waving_motion(45)
    wav = _sine_wav(tmp_path / "tone.wav", audio_seconds)
    out = render_preview(
        motion, tmp_path / "preview.mp4", audio=wav, size=160, caption_fn=lambda t: "hi" if t < 1 else None
    )
    assert out == tmp_path / "preview.mp4" and out.stat().st_size > 1000
    info = _probe(out)
    video = re.findall(r"Stream #\S+.*: Video: (\w+).*", info)
    audio = re.findall(r"Stream #\S+.*: Audio: (\w+)", info)
    assert video == ["h264"] and "yuv420p" in info and "160x160" in info
    assert audio == ["aac"]
    assert abs(_duration(info) - motion.duration) <= 1.0 / FPS
    assert _count_frames(out) == motion.num_frames
    assert {p.name for p in tmp_path.iterdir()} == {"tone.wav", "preview.mp4"}, (
        "no temporary files left behind"
    )


def test_mp4_without_audio_and_fps(tmp_path):
    motion = _waving_motion(30)
    out = render_preview(motion, tmp_path / "silent.mp4", size=128, fps=15)
    info = _probe(out)
    assert "Audio:" not in info and "Video: h264" in info
    assert _count_frames(out) == 15  # one second at 15 fps


def test_bad_audio_is_a_user_error(tmp_path):
    motion = _waving_motion(10)
    with pytest.raises(InputFileError, match="not found"):
        render_preview(motion, tmp_path / "a.mp4", audio=tmp_path / "missing.wav", size=128)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio" * 10)
    with pytest.raises(InputFileError, match="cannot read audio") as e:
        render_preview(motion, tmp_path / "a.mp4", audio=junk, size=128)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "a.mp4").exists()


def test_ffmpeg_failure_is_export_error_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(video_mod, "X264_PRESET", "no-such-preset")
    with pytest.raises(ExportError, match="ffmpeg failed"):
        render_preview(_waving_motion(10), tmp_path / "b.mp4", size=128)
    assert list(tmp_path.iterdir()) == []


def test_save_still(tmp_path):
    from PIL import Image

    motion = _waving_motion(20)
    path = save_still(motion, 5, tmp_path / "still.png", size=200, caption="still")
    with Image.open(path) as im:
        assert im.size == (200, 200) and im.mode == "RGB"
    save_still(motion, -1, tmp_path / "last.png", size=128)
    with pytest.raises(MotionError, match="out of range"):
        save_still(motion, 20, tmp_path / "x.png")


def test_failure_while_rendering_leaves_no_file(tmp_path):
    def caption(t: float) -> str:
        if t > 0.3:
            raise KeyError("transcript lookup failed")
        return "ok"

    with pytest.raises(KeyError):
        render_preview(_waving_motion(30), tmp_path / "c.mp4", size=128, caption_fn=caption)
    assert list(tmp_path.iterdir()) == []


def test_wide_frame_and_chunked_fk():
    motion = _waving_motion(12)
    assert np.array_equal(video_mod.joint_positions(motion, chunk=5), forward_kinematics(motion).positions)
    frames = list(video_mod.iter_frames(motion, size=(320, 180)))
    assert len(frames) == 12 and frames[0].shape == (180, 320, 3)
