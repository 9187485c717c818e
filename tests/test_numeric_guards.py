"""Numerical guards on generated motion (issue 9): no NaN/Inf, joint angles in a sane range, elbows
never bent backwards, no sudden flips between frames.

Motion comes from the shipped default rhythm model (`RhythmModel.load("default")`) and from the
full API path (`Gesticulator.load().animate`, gestures spliced in) on examples/hello_demo.wav.

The limits are loose on purpose and were checked against real motion capture (the BEAT2 take in
../shared/data, 1906 frames at 30 fps): its largest joint rotation is 2.45 rad (right elbow), its
elbows stay on the flexion side (left elbow y <= -0.06 rad, right elbow y >= 0.04 rad) and its
largest frame-to-frame step is 21.5 deg (a finger; 99.9th percentile 12 deg).
"""

from __future__ import annotations

import numpy as np
import pytest

from gesticulator.motion import skeleton as sk
from gesticulator.motion.rotations import axis_angle_to_quat
from gesticulator.resources import example
from gesticulator.types import Motion

from .conftest import BEAT2_TAKE, shared_file

SCRIPT = "Hello everyone! Today I have three big ideas for you."
LEFT_ELBOW, RIGHT_ELBOW = sk.JOINT_NAMES.index("left_elbow"), sk.JOINT_NAMES.index("right_elbow")
MAX_ANGLE = np.pi + 1e-6  # axis-angle vectors are canonical: |angle| <= pi per joint
# Elbow flexion is about the joint's local y axis: negative on the left, positive on the right.
# Tolerated hyperextension (bent backwards): 20 deg, ~5x what a relaxed straight arm shows.
ELBOW_BACKWARDS = np.radians(20.0)
MAX_STEP_DEG_AT_30FPS = 60.0  # per joint between consecutive frames; BEAT2's largest is 21.5
MAX_ROOT_STEP_M_AT_30FPS = 0.25  # the pelvis moving 7.5 m/s would be a jump, not a gesture


def check_motion(motion: Motion, what: str) -> dict:
    """Assert the guards; return the figures (for the report)."""
    poses = motion.poses.reshape(motion.num_frames, sk.NUM_JOINTS, 3)
    assert np.isfinite(motion.poses).all(), f"{what}: NaN/Inf in poses"
    assert np.isfinite(motion.trans).all(), f"{what}: NaN/Inf in trans"
    angle = np.linalg.norm(poses, axis=-1)
    worst = np.unravel_index(angle.argmax(), angle.shape)
    assert angle.max() <= MAX_ANGLE, (
        f"{what}: joint {sk.JOINT_NAMES[worst[1]]} rotates {angle.max():.3f} rad at frame {worst[0]}"
    )
    left_back = poses[:, LEFT_ELBOW, 1].max()
    right_back = -poses[:, RIGHT_ELBOW, 1].min()
    assert left_back <= ELBOW_BACKWARDS, (
        f"{what}: left elbow bent backwards by {np.degrees(left_back):.1f} deg"
    )
    assert right_back <= ELBOW_BACKWARDS, (
        f"{what}: right elbow bent backwards by {np.degrees(right_back):.1f} deg"
    )

    q = axis_angle_to_quat(poses)
    step = np.degrees(2 * np.arccos(np.clip(np.abs((q[1:] * q[:-1]).sum(-1)), 0, 1)))  # (T-1, J)
    limit = MAX_STEP_DEG_AT_30FPS * 30.0 / motion.fps
    if step.size:
        f, j = np.unravel_index(step.argmax(), step.shape)
        assert step.max() < limit, (
            f"{what}: {sk.JOINT_NAMES[j]} turns {step.max():.1f} deg between frames {f} and {f + 1} (limit {limit:.0f})"
        )
    root_step = np.linalg.norm(np.diff(motion.trans, axis=0), axis=-1)
    assert root_step.size == 0 or root_step.max() < MAX_ROOT_STEP_M_AT_30FPS * 30.0 / motion.fps, (
        f"{what}: pelvis jumps {root_step.max():.3f} m in one frame"
    )
    return {
        "max_angle_rad": float(angle.max()),
        "max_step_deg": float(step.max()) if step.size else 0.0,
        "elbow_backwards_deg": float(np.degrees(max(left_back, right_back))),
    }


@pytest.fixture(scope="module")
def rhythm():
    from gesticulator.rhythm.model import RhythmModel

    return RhythmModel.load("default")


@pytest.fixture(scope="module")
def gesticulator(tmp_path_factory):
    from gesticulator.api import Gesticulator

    with pytest.MonkeyPatch.context() as mp:  # never the real user library
        mp.setenv("GESTICULATOR_LIBRARY", str(tmp_path_factory.mktemp("user_library")))
        return Gesticulator.load()


def test_guards_accept_real_motion_capture():
    """The limits are not tighter than real motion: the BEAT2 take passes them."""
    from gesticulator.io import load_motion

    check_motion(load_motion(shared_file(BEAT2_TAKE.with_suffix(".npz"))), "BEAT2 take")


def test_guards_catch_a_flip_and_nan():
    poses = np.zeros((3, sk.POSE_DIM))
    poses[2, 3 * 16 + 2] = 3.0  # left shoulder: 0 -> 172 deg in one frame
    with pytest.raises(AssertionError, match="left_shoulder turns"):
        check_motion(Motion(poses=poses, trans=np.zeros((3, 3)), betas=np.zeros(10)), "flip")
    poses = np.zeros((3, sk.POSE_DIM))
    poses[1, 3 * LEFT_ELBOW + 1] = 0.8  # left elbow bent the wrong way
    with pytest.raises(AssertionError, match="left elbow bent backwards"):
        check_motion(Motion(poses=poses, trans=np.zeros((3, 3)), betas=np.zeros(10)), "elbow")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rhythm_model_motion_is_sane(rhythm, seed):
    check_motion(rhythm.generate(example("hello_demo.wav"), seed=seed), f"rhythm seed {seed}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 23))
@pytest.mark.parametrize("temperature", [1.0, 1.5])
def test_rhythm_model_motion_is_sane_many_seeds(rhythm, seed, temperature):
    motion = rhythm.generate(example("hello_demo.wav"), seed=seed, temperature=temperature)
    check_motion(motion, f"rhythm seed {seed} T={temperature}")


def test_api_motion_is_sane(gesticulator):
    result = gesticulator.animate(example("hello_demo.wav"), script=SCRIPT, seed=0)
    check_motion(result.base_motion, "api base motion seed 0")
    check_motion(result.motion, "api motion seed 0")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_api_motion_is_sane_more_seeds(gesticulator, seed):
    result = gesticulator.animate(example("hello_demo.wav"), script=SCRIPT, seed=seed)
    check_motion(result.base_motion, f"api base motion seed {seed}")
    check_motion(result.motion, f"api motion seed {seed}")


@pytest.mark.slow
@pytest.mark.shared_data
def test_api_motion_is_sane_on_beat2_speech(gesticulator):
    """A longer take (BEAT2 speech with its own word timings, ~60 s)."""
    wav = shared_file(BEAT2_TAKE.with_suffix(".wav"))
    result = gesticulator.animate(wav, transcript=BEAT2_TAKE.with_suffix(".TextGrid"), seed=0)
    check_motion(result.motion, "api motion on BEAT2 speech")
