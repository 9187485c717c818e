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


@pytest.fixture(scope="module")
def api_seed0(gesticulator):
    return gesticulator.animate(example("hello_demo.wav"), script=SCRIPT, seed=0)


def test_api_motion_is_sane(api_seed0):
    check_motion(api_seed0.base_motion, "api base motion seed 0")
    check_motion(api_seed0.motion, "api motion seed 0")


# -- fast fingers: authored, not a splice pop -------------------------------------------------------
HANDS = sorted(set(sk.BODY_PARTS["left_hand"]) | set(sk.BODY_PARTS["right_hand"]))
MAX_HAND_STEP_OUTSIDE_STROKES = 25.0  # deg/frame at 30 fps; measured <= 16.9 over seeds 0-5
MAX_CLIP_HAND_STEP = 45.0  # deg/frame; the fastest library clip (fast_flick, a pinky) has 40.9


def _steps(quats: np.ndarray) -> np.ndarray:
    """(T-1, J) degrees turned between consecutive frames."""
    return np.degrees(2 * np.arccos(np.clip(np.abs((quats[1:] * quats[:-1]).sum(-1)), 0, 1)))


def _spikes(steps: np.ndarray, floor: float = 10.0, ratio: float = 2.5) -> np.ndarray:
    """(frame, joint) of single-frame pops: a step over `floor` degrees and over `ratio` times both
    neighbouring steps. A fast but smooth movement rises and falls over several frames."""
    pad = np.zeros((1, steps.shape[1]))
    before, after = np.vstack([pad, steps[:-1]]), np.vstack([steps[1:], pad])
    return np.argwhere((steps > floor) & (steps > ratio * np.maximum(before, after)))


def test_fastest_finger_steps_are_the_clips_own(gesticulator, api_seed0):
    """The largest frame-to-frame step of the API motion (34 deg on right_middle2, seeds 0-5) lies
    inside the count_three stroke, where the clip plays at its authored speed with weight 1: a
    counting finger unfolding ~90 deg in ~5 frames (4.9, 22.7, 34.5, 28.6, 9.2 deg: rising and
    falling, no pop). The splice adds nothing to it: on the hand joints a gesture drives, every
    stroke step equals the clip's own; elsewhere the hands stay under 25 deg per frame, and no
    hand joint ever pops (one fast frame between slow ones)."""
    from gesticulator.align.splice import BlendSettings, ClipBank, event_joints
    from gesticulator.align.timing import clip_time

    result = api_seed0
    steps = _steps(axis_angle_to_quat(result.motion.rotations.astype(np.float64)))
    t = np.arange(result.motion.num_frames) / result.motion.fps
    bank = ClipBank(gesticulator.library)
    in_stroke = np.zeros(len(steps), dtype=bool)
    assert result.events
    for ev in result.events:
        frames = np.flatnonzero((t[:-1] >= ev.stroke_start) & (t[1:] <= ev.stroke_end))
        in_stroke[frames] = True
        driven = sorted(j for j in event_joints(ev, BlendSettings()) if j in HANDS)
        if not driven or not len(frames):
            continue
        clip = bank.sample(ev, clip_time(ev, bank.phases(ev), t[frames[0] : frames[-1] + 2]))
        np.testing.assert_allclose(steps[frames][:, driven], _steps(clip)[:, driven], atol=0.05)
    hand_steps = steps[:, HANDS]
    assert hand_steps[~in_stroke].max() < MAX_HAND_STEP_OUTSIDE_STROKES
    assert len(_spikes(hand_steps)) == 0, _spikes(hand_steps)


def test_library_clips_move_fingers_fast_but_smoothly(gesticulator):
    """Every take of the shipped library: finger steps under 45 deg per frame, no single-frame pop."""
    lib = gesticulator.library
    worst = 0.0
    for gesture in lib.gestures():
        for take in gesture.takes:
            clip = lib.clip(gesture.id, take.id)
            steps = _steps(axis_angle_to_quat(clip.rotations.astype(np.float64)))[:, HANDS]
            worst = max(worst, float(steps.max()))
            assert len(_spikes(steps)) == 0, (gesture.id, take.id, _spikes(steps))
    assert worst < MAX_CLIP_HAND_STEP  # clips are 30 fps


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
