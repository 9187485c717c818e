"""Motion evaluation metrics, as pure functions with typed outputs (numpy in, numpy/dataclasses out).

    bc = beat_consistency(motion, "talk.wav")                 # EMAGE's BC, a float in [0, 1]
    lift = bc_lift(motion, "talk.wav", ["other1.wav", ...])   # BC own audio - BC other audio
    mask = speech_mask_from_transcript(transcript, motion.num_frames)
    stats = motion_stats(motion, speech_mask=mask)            # hand speed, jerk, L1 div, freezes
    compare_to_reference(stats, real_stats).relative          # e.g. {"hand_speed": -0.12, ...}

Conventions:
- Joint positions come from forward kinematics (`gesticulator.motion.kinematics.joint_positions`,
  mannequin-x, SMPL-X joint order, metres, Y-up). Every function that takes a motion also takes
  its (T, 55, 3) joint positions, so callers can run FK once.
- Speeds are central differences (`np.gradient`: forward/backward difference at the two ends), in
  m/s at the motion's frame rate (30 fps canonical).
- "Pelvis-relative" means every joint's position minus the pelvis joint's position in the same
  frame: the root translation is zeroed, so walking about the stage does not count as gesturing
  (the BEAT2 speakers walk: the sample take's pelvis moves 1.2 m and averages 0.15 m/s). The
  pelvis *rotation* still turns the upper body, which is body language and does count.

Beat consistency (BC) follows EMAGE exactly where DESIGN.md defines it; where EMAGE's code and its
intent differ, the intended version is the default and EMAGE's is a flag (`emage_compat=True`).
See `beat_consistency_details`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from gesticulator.errors import GesticulatorError, MotionError
from gesticulator.motion.skeleton import BODY_PARTS, JOINT_INDEX, NUM_JOINTS
from gesticulator.types import Motion, Transcript, Word

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# -- constants ---------------------------------------------------------------------------------------
SR = 16000  # BC's audio rate (EMAGE): onsets are detected on 16 kHz audio, hop 512
BC_FPS = 30.0  # BC runs on 30 fps joint positions
BC_SIGMA = 0.3  # seconds: width of the Gaussian that scores an onset's distance to a motion beat
BC_ORDER = 7  # frames each side: a motion beat is a speed minimum over a +-7 frame window
BC_THRESHOLD = 0.1  # a motion beat needs normalised speed > 0.1 (EMAGE's current evaltools value)
BC_TRIM = 2.0  # seconds trimmed at both ends (EMAGE's align_mask = 60 frames at 30 fps)

UPPER_JOINTS: tuple[int, ...] = BODY_PARTS["upper"]  # BC's 13 joints: spine1-3, neck, head, collars...
WRISTS: tuple[int, ...] = (JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"])
PELVIS = JOINT_INDEX["pelvis"]

# Per-joint mean speed (m/s, central differences at 30 fps), SMPL-X joint order, measured with
# this project's FK on the BEAT2 take 2_scott_0_1_1 (63.5 s). BC divides each joint's speed by its
# entry ("normalised speed") before the 0.1 threshold; nothing else depends on these values.
# BEAT2_MEAN_SPEED is pelvis-relative, like the positions BC scores (the default).
# BEAT2_MEAN_SPEED_WORLD includes the root translation, as EMAGE's own table does: EMAGE divides by
# `mean_vel_smplxflame_30.npy` (the same statistic over the BEAT2 training set, computed by
# PantoMatrix's dataloaders, `calculate_mean_velocity`, with `transl=trans`) while it evaluates
# joints computed with `transl = rec_trans - rec_trans` (zero), so its torso joints' normalised
# speed is small and their minima rarely pass the threshold. That file is a download we do not
# make; a user who has it can pass it as `reference_speed=path`.
BEAT2_MEAN_SPEED = np.array([
    0.0000, 0.0227, 0.0266, 0.0279, 0.1333, 0.1318, 0.0540, 0.2035, 0.2067, 0.0598, 0.2199, 0.2201,
    0.0976, 0.0806, 0.0795, 0.1327, 0.1227, 0.1152, 0.2690, 0.2452, 0.5558, 0.5373, 0.1312, 0.1560,
    0.1519, 0.7337, 0.7913, 0.7902, 0.7454, 0.7839, 0.7734, 0.7094, 0.7302, 0.7257, 0.7269, 0.7671,
    0.7538, 0.6261, 0.6751, 0.7236, 0.7275, 0.7851, 0.7841, 0.7374, 0.7839, 0.7809, 0.6976, 0.7268,
    0.7219, 0.7165, 0.7616, 0.7475, 0.6171, 0.6762, 0.7274,
])  # fmt: skip
BEAT2_MEAN_SPEED_WORLD = np.array([
    0.1518, 0.1531, 0.1532, 0.1580, 0.1527, 0.1691, 0.1642, 0.1151, 0.1337, 0.1663, 0.1156, 0.1266,
    0.1884, 0.1776, 0.1769, 0.2136, 0.2024, 0.1970, 0.3125, 0.2963, 0.5703, 0.5643, 0.2128, 0.2323,
    0.2294, 0.7419, 0.7976, 0.7963, 0.7529, 0.7900, 0.7797, 0.7176, 0.7373, 0.7327, 0.7347, 0.7734,
    0.7605, 0.6379, 0.6849, 0.7320, 0.7463, 0.8022, 0.8012, 0.7562, 0.8011, 0.7984, 0.7183, 0.7461,
    0.7418, 0.7363, 0.7795, 0.7665, 0.6400, 0.6971, 0.7465,
])  # fmt: skip

# Frozen stretches: the upper body "barely moves" when the mean pelvis-relative speed of the 13
# upper-body joints, averaged over a 0.5 s window, stays below FROZEN_SPEED. On the real BEAT2
# take while speaking (transcript mask) that smoothed speed has 1st/5th/50th percentiles of
# 0.036/0.072/0.169 m/s; 0.05 m/s is its 2.1th percentile, and the longest real run below 0.05 m/s
# lasts 0.67 s (below 0.06 m/s: 0.8 s). So a run below 0.05 m/s for more than 2 s is stiller, for
# three times longer, than anything the real speaker does: a frozen character.
FROZEN_SPEED = 0.05  # m/s
FROZEN_MIN_DURATION = 2.0  # seconds
FROZEN_WINDOW = 0.5  # seconds, moving average of the activity speed

# Speech mask from audio: a frame is speech when its RMS is within SPEECH_DB of the take's loud
# level (99th percentile of frame RMS) and above an absolute floor; gaps shorter than
# SPEECH_BRIDGE seconds (pauses between words) are bridged.
SPEECH_DB = 30.0
SPEECH_FLOOR_RMS = 1e-4
SPEECH_BRIDGE = 0.5

JointSpec = str | int | Sequence[str | int]
ReferenceSpeed = Literal["beat2", "beat2_world", "self"] | float | np.ndarray | str | os.PathLike


# -- data types ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Onsets:
    """Audio onset times in seconds from the motion's first frame (already detected, e.g. by
    `gesticulator.speech.prosody.onset_times`). Pass this instead of audio to skip detection."""

    times: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", np.sort(np.asarray(self.times, dtype=np.float64).ravel()))


@dataclass(frozen=True)
class BeatConsistency:
    """BC and what it was computed from. Times are seconds from the start of the trimmed window."""

    score: float  # mean of per_joint; NaN when the window holds no audio onset
    per_joint: np.ndarray  # (J,) mean over onsets of exp(-d^2 / 2 sigma^2); 0 for a joint with no beats
    joints: tuple[int, ...]  # SMPL-X joint indices scored
    onsets: np.ndarray  # (K,) audio onsets inside the window
    motion_beats: tuple[np.ndarray, ...]  # per joint: times of the kept speed minima
    window: tuple[float, float]  # the scored window [start, end) in seconds of the motion


@dataclass(frozen=True)
class BCLift:
    """BC against the motion's own audio and against unrelated audio of the same length."""

    own: float
    others: tuple[float, ...]
    other_mean: float
    lift: float  # own - other_mean: how much better the motion fits its own speech than any speech


@dataclass(frozen=True)
class FrozenStretches:
    """Stretches where the upper body barely moves (see `frozen_stretches`)."""

    count: int
    longest: float  # seconds, 0.0 when there is none
    stretches: tuple[tuple[float, float], ...]  # (start, end) seconds


@dataclass(frozen=True)
class MotionStats:
    """Summary statistics of a motion (see `motion_stats` for the definitions)."""

    duration: float  # seconds
    speaking_fraction: float  # fraction of frames the speech mask marks (1.0 without a mask)
    hand_speed: float  # m/s, mean pelvis-relative wrist speed while speaking (all frames w/o mask)
    hand_speed_all: float  # m/s, the same over all frames
    jerk: float  # m/s^3, mean pelvis-relative wrist jerk magnitude while speaking
    l1_diversity: float  # metres, upper body + hands (43 joints), pelvis-relative
    l1_diversity_all: float  # metres, all 55 joints, pelvis-relative (EMAGE's L1div)
    frozen_count: int
    frozen_longest: float  # seconds


@dataclass(frozen=True)
class StatsComparison:
    """Relative differences (gen - ref) / ref of a generated motion's stats against a reference."""

    relative: dict[str, float]
    within: dict[str, bool]  # |relative| <= tolerance for each compared statistic
    tolerances: dict[str, float]
    frozen_count_diff: int  # gen - ref
    frozen_longest_diff: float  # seconds, gen - ref

    @property
    def ok(self) -> bool:
        return all(self.within.values())


DEFAULT_TOLERANCES: dict[str, float] = {
    "hand_speed": 0.30,
    "hand_speed_all": 0.30,
    "jerk": 0.50,
    "l1_diversity": 0.30,
}


# -- beat consistency --------------------------------------------------------------------------------
def beat_consistency(
    motion_or_positions: Motion | ArrayLike,
    audio_or_onsets: str | os.PathLike | ArrayLike | Onsets,
    *,
    fps: float = BC_FPS,
    sigma: float = BC_SIGMA,
    trim: float = BC_TRIM,
    order: int = BC_ORDER,
    threshold: float = BC_THRESHOLD,
    reference_speed: ReferenceSpeed | None = None,
    joints: JointSpec = "upper",
    sr: int = SR,
    emage_compat: bool = False,
) -> float:
    """Beat consistency (BC) of a motion with speech, as EMAGE defines it: a float in [0, 1].

    NaN when the scored window holds no audio onset (silence); 0.0 for a motion with no motion
    beats (a still pose). See `beat_consistency_details` for the exact computation."""
    return beat_consistency_details(
        motion_or_positions,
        audio_or_onsets,
        fps=fps,
        sigma=sigma,
        trim=trim,
        order=order,
        threshold=threshold,
        reference_speed=reference_speed,
        joints=joints,
        sr=sr,
        emage_compat=emage_compat,
    ).score


def beat_consistency_details(
    motion_or_positions: Motion | ArrayLike,
    audio_or_onsets: str | os.PathLike | ArrayLike | Onsets,
    *,
    fps: float = BC_FPS,
    sigma: float = BC_SIGMA,
    trim: float = BC_TRIM,
    order: int = BC_ORDER,
    threshold: float = BC_THRESHOLD,
    reference_speed: ReferenceSpeed | None = None,
    joints: JointSpec = "upper",
    sr: int = SR,
    emage_compat: bool = False,
) -> BeatConsistency:
    """Beat consistency with its parts (per-joint scores, onsets, motion beats).

    Follows EMAGE (PantoMatrix/PantoMatrix: `emage_evaltools/mertic.py` class `BC`, and
    `scripts/EMAGE_2024/utils/metric.py` class `alignment` as the EMAGE trainer's `test` calls it,
    `align_mask = 60`, joints from SMPL-X with `transl = rec_trans - rec_trans`):

    1. Motion: joint positions at `fps` (30; a `Motion` at another rate is resampled, a position
       array is taken to be at `fps`), (T, 55, 3), made pelvis-relative (each frame minus its
       pelvis position). EMAGE zeroes the root translation; for speeds the two are identical
       (they differ by a constant offset). Per joint, speed = norm of the central-difference
       velocity (m/s; one-sided at the ends, as EMAGE); *normalised speed* = speed / that joint's
       mean speed in a reference corpus, `reference_speed`: "beat2" (`BEAT2_MEAN_SPEED`,
       pelvis-relative like the scored positions; the default), "beat2_world"
       (`BEAT2_MEAN_SPEED_WORLD`, with root translation, as EMAGE's table; the default under
       `emage_compat`), "self" (this motion's own per-joint mean), a path to EMAGE's
       `mean_vel_smplxflame_30.npy`, a number, or a (55,) array. A joint whose reference speed
       is 0 has normalised speed 0.
    2. Window: `trim` seconds (60 frames) are dropped at both ends: frames [t0, T - t0),
       t0 = round(trim * fps). Times below are seconds from frame t0.
    3. Motion beats, per joint (default the 13 upper-body joints `UPPER_JOINTS`): local minima of
       the normalised speed inside the window, `scipy.signal.argrelextrema(v, np.less, order=7)`
       (strictly below the 7 frames either side, clipped at the window's edges; a flat signal has
       none), kept where the normalised speed at the minimum is > `threshold` (0.1: a pause of a
       still joint is no beat). EMAGE's code finds the minima in the window (indices relative to
       t0) but tests the threshold on the *unwindowed* speed at those relative indices, i.e. on
       the speed 60 frames (2 s) before the minimum. That shift is a bug; the default tests the
       minimum itself. `emage_compat=True` reproduces EMAGE's shifted test (and its audio end
       trim, step 4, and its world-speed table, step 1).
    4. Audio onsets: the audio (a path, or samples at `sr`) is resampled to 16 kHz, cut or
       zero-padded to the motion's length, int(16000 / fps * T) samples, trimmed by
       int(t0 * 16000 / fps) samples at both ends, and onsets detected on that window with
       `librosa.onset.onset_detect(y, sr=16000, hop_length=512, units="time")`
       (`gesticulator.speech.prosody.onset_times`). (EMAGE's end trim subtracts from the *uncut*
       audio's length, so its window runs to the motion's end when the audio is longer than the
       motion; `emage_compat=True` does the same.) Given `Onsets`, the onsets inside the window
       are kept instead; that can differ by an onset or two from detecting on the trimmed audio
       (librosa normalises the onset envelope over the signal it sees).
    5. Score: per joint, mean over onsets of exp(-d^2 / (2 sigma^2)), d = distance from the onset
       to the joint's nearest motion beat; a joint without beats scores 0 (as in EMAGE), so a
       still motion scores 0.0. BC = mean over the joints. NaN when no onset lies in the window
       (silence: BC is undefined) or when the motion is too short to leave a window.

    Measured on the BEAT2 take 2_scott_0_1_1 (benchmarks/motion_reference.py): 0.735 against its
    own audio, 0.721 against four other takes' audio (lift +0.015). With `emage_compat=True`
    (EMAGE's code, shifted threshold and world-speed table): 0.762 and 0.744. With the world table
    but the unshifted threshold: 0.586 (the torso joints barely pass the threshold).
    """
    if reference_speed is None:
        reference_speed = "beat2_world" if emage_compat else "beat2"
    positions = _pelvis_relative(_positions_at(motion_or_positions, fps))
    idx = joint_indices(joints)
    n = positions.shape[0]
    t0 = int(round(trim * fps))
    window = (t0 / fps, (n - t0) / fps)
    no_beats = tuple(np.zeros(0) for _ in idx)
    if n - 2 * t0 < 2:  # nothing left to score after trimming
        return BeatConsistency(math.nan, np.zeros(len(idx)), idx, np.zeros(0), no_beats, window)

    onsets = _window_onsets(audio_or_onsets, n, fps, t0, sr, emage_compat)
    speed = normalised_speed(positions, fps=fps, joints=idx, reference_speed=reference_speed)
    beats = motion_beats(
        speed, t0=t0, stop=n - t0, order=order, threshold=threshold, emage_compat=emage_compat
    )
    beat_times = tuple(b / fps for b in beats)
    if len(onsets) == 0:
        return BeatConsistency(math.nan, np.zeros(len(idx)), idx, onsets, beat_times, window)
    per_joint = np.array([_gaussian_hit_rate(b, onsets, sigma) for b in beat_times])
    return BeatConsistency(float(per_joint.mean()), per_joint, idx, onsets, beat_times, window)


def bc_lift(
    motion: Motion | ArrayLike,
    own_audio: str | os.PathLike | ArrayLike | Onsets,
    other_audios: Iterable[str | os.PathLike | ArrayLike | Onsets],
    **bc_options,
) -> BCLift:
    """BC against the motion's own audio, the mean BC against other (unrelated) audio, and the
    lift own - mean(other). Each other audio is cut or zero-padded to the motion's duration (as
    in `beat_consistency_details`, step 4); other audio with no onset in the window (BC NaN) is
    left out of the mean. `bc_options` go to `beat_consistency`.

    BC alone barely separates a motion that follows its speech from one that merely moves at a
    speech-like rhythm: the real BEAT2 take scores 0.735 with its own audio and 0.720 with other
    takes' audio, while i.i.d. pose jitter scores 0.80 with any audio. The lift (+0.015 for the
    real take, 0.00 for jitter) is the part of BC that is about *this* speech."""
    fps = bc_options.pop("fps", BC_FPS)
    positions = _positions_at(motion, fps)  # FK once for every audio
    own = beat_consistency(positions, own_audio, fps=fps, **bc_options)
    others = tuple(beat_consistency(positions, a, fps=fps, **bc_options) for a in other_audios)
    if not others:
        raise GesticulatorError("bc_lift needs at least one other audio", "pass the audio of other takes")
    other_mean = float(np.nanmean(others)) if not all(math.isnan(o) for o in others) else math.nan
    return BCLift(own=own, others=others, other_mean=other_mean, lift=own - other_mean)


def normalised_speed(
    positions: np.ndarray,
    *,
    fps: float = BC_FPS,
    joints: JointSpec = "upper",
    reference_speed: ReferenceSpeed = "beat2",
) -> np.ndarray:
    """(T, J) speed of the chosen joints of (T, 55, 3) `positions` (m/s, central differences)
    divided by each joint's reference mean speed (see `beat_consistency_details`, step 1). The
    positions are used as given: pass pelvis-relative ones to match BC."""
    idx = joint_indices(joints)
    p = np.asarray(positions, dtype=np.float64)[:, list(idx)]
    speed = _speed(p, fps)
    ref = _reference_speed(reference_speed, idx, speed)
    out = np.zeros_like(speed)
    np.divide(speed, ref, out=out, where=ref > 0)
    return out


def motion_beats(
    speed: np.ndarray,
    *,
    t0: int = 0,
    stop: int | None = None,
    order: int = BC_ORDER,
    threshold: float = BC_THRESHOLD,
    emage_compat: bool = False,
) -> tuple[np.ndarray, ...]:
    """Per column of a (T, J) normalised speed: frame indices (relative to `t0`) of the local
    minima inside frames [t0, stop) whose normalised speed is > `threshold`. With
    `emage_compat=True` the threshold is tested at the relative index in the unwindowed array,
    as EMAGE's code does (see `beat_consistency_details`, step 3)."""
    from scipy.signal import argrelextrema

    stop = speed.shape[0] if stop is None else stop
    out = []
    for j in range(speed.shape[1]):
        seg = speed[t0:stop, j]
        minima = argrelextrema(seg, np.less, order=order)[0]
        at = speed[minima, j] if emage_compat else seg[minima]
        out.append(minima[at > threshold])
    return tuple(out)


# -- diversity, speed, jerk, freezes ----------------------------------------------------------------
def l1_diversity(
    positions: Motion | ArrayLike,
    joints: JointSpec = "all",
    *,
    root_relative: bool = True,
) -> float:
    """L1 diversity (EMAGE's L1div): mean over frames of the sum over the chosen joints and x/y/z
    of |p_t - mean_t p|, in metres, for one sequence.

    Which joints: the default, all 55 joints with the root translation zeroed (pelvis-relative;
    the same as EMAGE's SMPL-X joints with `transl = 0`, up to a constant offset that cancels),
    is EMAGE's definition, for numbers comparable with the literature. It includes legs, feet,
    jaw and eyes, which a gesture model barely moves and the stance dominates; for *gesture*
    diversity pass ``joints=("upper", "hands")`` (the 13 upper-body and 30 finger joints the
    rhythm model generates; `MotionStats.l1_diversity`). `root_relative=False` keeps world
    positions, where walking about dominates the sum."""
    p = _positions_at(positions, None)
    if root_relative:
        p = _pelvis_relative(p)
    p = p[:, list(joint_indices(joints))]
    if p.shape[0] == 0:
        return math.nan
    return float(np.abs(p - p.mean(axis=0)).sum() / p.shape[0])


def frozen_stretches(
    motion_or_positions: Motion | ArrayLike,
    speech_mask: ArrayLike | None = None,
    *,
    fps: float | None = None,
    speed_threshold: float = FROZEN_SPEED,
    min_duration: float = FROZEN_MIN_DURATION,
    window: float = FROZEN_WINDOW,
) -> FrozenStretches:
    """Stretches longer than `min_duration` (2 s) while speaking where the upper body barely moves.

    Activity per frame = mean over the 13 upper-body joints of their pelvis-relative speed (m/s),
    smoothed by a centred moving average over `window` (0.5 s, so a single jittery frame neither
    makes nor breaks a stretch). A frame is frozen when its activity is < `speed_threshold`
    (0.05 m/s; the real BEAT2 take's 2nd percentile while speaking, see `FROZEN_SPEED`) and,
    with a `speech_mask` ((T,) bool, True = speaking), the frame is speech. Returns the runs of
    frozen frames lasting > `min_duration` seconds: their count, the longest (seconds), and their
    (start, end) times."""
    p, rate = _positions_and_fps(motion_or_positions, fps)
    activity = upper_body_activity(p, rate, window=window)
    frozen = activity < speed_threshold
    if speech_mask is not None:
        frozen &= _mask(speech_mask, len(frozen))
    runs = [(a, b) for a, b in _runs(frozen) if (b - a) / rate > min_duration]
    stretches = tuple((a / rate, b / rate) for a, b in runs)
    longest = max((b - a for a, b in stretches), default=0.0)
    return FrozenStretches(count=len(stretches), longest=float(longest), stretches=stretches)


def upper_body_activity(positions: np.ndarray, fps: float, *, window: float = FROZEN_WINDOW) -> np.ndarray:
    """(T,) mean pelvis-relative speed (m/s) of the 13 upper-body joints, moving-averaged over
    `window` seconds (centred, shrinking at the ends)."""
    rel = _pelvis_relative(np.asarray(positions, dtype=np.float64))[:, list(UPPER_JOINTS)]
    activity = _speed(rel, fps).mean(axis=1)
    width = max(1, int(round(window * fps)))
    if width > 1 and len(activity) > 1:
        kernel = np.ones(width)
        activity = np.convolve(activity, kernel, mode="same") / np.convolve(
            np.ones_like(activity), kernel, mode="same"
        )
    return activity


def motion_stats(
    motion: Motion | ArrayLike,
    speech_mask: ArrayLike | None = None,
    *,
    fps: float | None = None,
) -> MotionStats:
    """Summary statistics of a motion, for comparing generated motion with real motion.

    - hand_speed: mean over both wrists and the speaking frames (all frames without a mask) of
      the pelvis-relative wrist speed (central differences), m/s. hand_speed_all: all frames.
    - jerk: mean magnitude of the third finite difference of the pelvis-relative wrist positions,
      (p[t+3] - 3 p[t+2] + 3 p[t+1] - p[t]) * fps^3, m/s^3, over both wrists and the speaking
      frames (a jerk sample counts when the two frames around its centre are speech). Raw
      differences of 30 fps mocap: it measures smoothness/noise, compare only like with like.
    - l1_diversity: `l1_diversity(p, ("upper", "hands"))`, the generated parts;
      l1_diversity_all: EMAGE's `l1_diversity(p)` (all 55 joints), both pelvis-relative.
    - frozen_count / frozen_longest: `frozen_stretches(p, speech_mask)`.
    `motion` is a `Motion` or (T, 55, 3) positions at `fps` (default: the Motion's rate, 30 for
    arrays)."""
    p, rate = _positions_and_fps(motion, fps)
    n = p.shape[0]
    mask = np.ones(n, dtype=bool) if speech_mask is None else _mask(speech_mask, n)
    wrists = _pelvis_relative(p)[:, list(WRISTS)]
    speed = _speed(wrists, rate).mean(axis=1) if n >= 2 else np.zeros(n)
    if n >= 4:
        jerk = np.linalg.norm(np.diff(wrists, n=3, axis=0), axis=-1).mean(axis=1) * rate**3
        jerk_mask = mask[1 : n - 2] & mask[2 : n - 1]
    else:
        jerk, jerk_mask = np.zeros(0), np.zeros(0, dtype=bool)
    frozen = frozen_stretches(p, None if speech_mask is None else mask, fps=rate)
    return MotionStats(
        duration=n / rate,
        speaking_fraction=float(mask.mean()) if n else 0.0,
        hand_speed=_masked_mean(speed, mask),
        hand_speed_all=float(speed.mean()) if n else math.nan,
        jerk=_masked_mean(jerk, jerk_mask),
        l1_diversity=l1_diversity(p, ("upper", "hands")),
        l1_diversity_all=l1_diversity(p),
        frozen_count=frozen.count,
        frozen_longest=frozen.longest,
    )


def compare_to_reference(
    gen_stats: MotionStats,
    ref_stats: MotionStats,
    tolerances: dict[str, float] | None = None,
) -> StatsComparison:
    """Relative differences (gen - ref) / ref of the `tolerances` statistics (default: hand speed
    and L1 diversity within +-30 %, jerk within +-50 %), whether each is within its tolerance,
    and the differences in frozen-stretch count and longest stretch (absolute: the reference
    usually has none). A reference value of 0 gives a relative difference of inf (0 if equal)."""
    tol = dict(DEFAULT_TOLERANCES if tolerances is None else tolerances)
    relative: dict[str, float] = {}
    within: dict[str, bool] = {}
    for name, limit in tol.items():
        g, r = float(getattr(gen_stats, name)), float(getattr(ref_stats, name))
        if r == 0:
            rel = 0.0 if g == 0 else math.copysign(math.inf, g)
        else:
            rel = (g - r) / abs(r)
        relative[name] = rel
        within[name] = bool(abs(rel) <= limit)
    return StatsComparison(
        relative=relative,
        within=within,
        tolerances=tol,
        frozen_count_diff=gen_stats.frozen_count - ref_stats.frozen_count,
        frozen_longest_diff=gen_stats.frozen_longest - ref_stats.frozen_longest,
    )


def joint_position_error_cm(
    motion_a: Motion | ArrayLike,
    motion_b: Motion | ArrayLike,
    joints: JointSpec = "all",
) -> float:
    """Mean joint-position error in centimetres: mean over frames and the chosen joints of the
    Euclidean distance between the two motions' pelvis-relative joint positions (each motion's
    root translation zeroed: every joint minus its own pelvis position per frame), for judging
    reconstruction (e.g. a motion tokenizer's encode/decode) independently of where the body
    stands. Both must have the same frame count (slice them to a common length first)."""
    a = _positions_at(motion_a, None)
    b = _positions_at(motion_b, None)
    if a.shape != b.shape:
        raise MotionError(
            f"cannot compare motions of shapes {a.shape} and {b.shape}",
            "give both the same number of frames (slice to a common length)",
        )
    idx = list(joint_indices(joints))
    a = _pelvis_relative(a)[:, idx]
    b = _pelvis_relative(b)[:, idx]
    if a.shape[0] == 0:
        return math.nan
    return float(np.linalg.norm(a - b, axis=-1).mean() * 100.0)


# -- speech masks ----------------------------------------------------------------------------------
def speech_mask_from_audio(
    audio: str | os.PathLike | ArrayLike,
    fps: float = BC_FPS,
    *,
    num_frames: int | None = None,
    sr: int = SR,
    silence_db: float = SPEECH_DB,
    bridge: float = SPEECH_BRIDGE,
) -> np.ndarray:
    """(N,) bool, True where someone is speaking, from the audio's loudness.

    Frame k covers [k / fps, (k + 1) / fps) of the 16 kHz audio; it is speech when its RMS is
    above both `SPEECH_FLOOR_RMS` (-80 dBFS) and the take's loud level (99th percentile of frame
    RMS) minus `silence_db` (30 dB). Gaps shorter than `bridge` seconds (0.5) between speech are
    bridged (pauses between words and phrases are still "speaking"). N = `num_frames` (frames past
    the audio's end are False) or ceil(duration * fps). Energy-based: background noise within
    30 dB of the voice counts as speech; prefer `speech_mask_from_transcript` when word times exist.
    """
    from gesticulator.speech.prosody import _prepare
    from gesticulator.speech.prosody import num_frames as frames_for

    y, duration = _prepare(audio, sr)
    n = frames_for(duration, fps) if num_frames is None else int(num_frames)
    if n == 0 or len(y) == 0:
        return np.zeros(n, dtype=bool)
    starts = np.floor(np.arange(n + 1) * SR / fps + 1e-6).astype(np.int64)
    starts = np.minimum(starts, len(y))
    sq = np.concatenate([[0.0], np.cumsum(y.astype(np.float64) ** 2)])
    counts = np.diff(starts)
    energy = np.diff(sq[starts])
    rms = np.sqrt(np.divide(energy, counts, out=np.zeros(n), where=counts > 0))
    valid = rms[counts > 0]
    loud = float(np.percentile(valid, 99)) if len(valid) else 0.0
    speech = (rms > SPEECH_FLOOR_RMS) & (rms > loud * 10 ** (-silence_db / 20))
    return _bridge(speech, int(round(bridge * fps)))


def speech_mask_from_transcript(
    transcript: Transcript | Iterable[Word | tuple[float, float]],
    num_frames: int,
    fps: float = BC_FPS,
    *,
    bridge: float = SPEECH_BRIDGE,
) -> np.ndarray:
    """(num_frames,) bool, True while speaking: frame k (covering [k / fps, (k + 1) / fps)) is
    speech when it overlaps a word's [start, end); gaps between words shorter than `bridge`
    seconds (0.5) are bridged. `transcript` is a `Transcript`, or `Word`s, or (start, end) pairs."""
    words = transcript.words if isinstance(transcript, Transcript) else transcript
    mask = np.zeros(int(num_frames), dtype=bool)
    for w in words:
        start, end = (w.start, w.end) if isinstance(w, Word) else (float(w[0]), float(w[1]))
        first = max(0, int(math.floor(start * fps + 1e-9)))
        last = min(len(mask), int(math.ceil(end * fps - 1e-9)))
        if last <= first and first < len(mask) and end >= start:
            last = first + 1  # a zero-length word still marks its frame
        mask[first:last] = True
    return _bridge(mask, int(round(bridge * fps)))


# -- joint selection -------------------------------------------------------------------------------
def joint_indices(joints: JointSpec) -> tuple[int, ...]:
    """SMPL-X joint indices of a spec: a body part ("upper", "hands", "all", see
    `skeleton.BODY_PARTS`), a joint name, an index, or a sequence of those (union, in order of
    first appearance)."""
    items: Sequence[str | int] = [joints] if isinstance(joints, (str, int, np.integer)) else list(joints)
    out: list[int] = []
    for item in items:
        if isinstance(item, (int, np.integer)):
            if not 0 <= int(item) < NUM_JOINTS:
                raise GesticulatorError(f"joint index {item} is out of range 0..{NUM_JOINTS - 1}")
            found: tuple[int, ...] = (int(item),)
        elif item in BODY_PARTS:
            found = BODY_PARTS[item]
        elif item in JOINT_INDEX:
            found = (JOINT_INDEX[item],)
        else:
            raise GesticulatorError(
                f"unknown joint or body part {item!r}",
                f"use an SMPL-X joint name or one of: {', '.join(sorted(BODY_PARTS))}",
            )
        out.extend(j for j in found if j not in out)
    if not out:
        raise GesticulatorError("no joints selected", "name at least one joint or body part")
    return tuple(out)


# -- helpers -----------------------------------------------------------------------------------------
def _positions_and_fps(
    motion_or_positions: Motion | ArrayLike, fps: float | None
) -> tuple[np.ndarray, float]:
    """(T, 55, 3) world positions and their frame rate. A Motion is used at its own rate unless
    `fps` is given (then resampled); an array is taken to be at `fps` (default 30)."""
    if isinstance(motion_or_positions, Motion):
        rate = motion_or_positions.fps if fps is None else float(fps)
        return _positions_at(motion_or_positions, rate), rate
    return _positions_at(motion_or_positions, None), BC_FPS if fps is None else float(fps)


def _positions_at(motion_or_positions: Motion | ArrayLike, fps: float | None) -> np.ndarray:
    """(T, 55, 3) float64 world joint positions; a Motion is resampled to `fps` if given and
    different, then run through FK."""
    if isinstance(motion_or_positions, Motion):
        from gesticulator.motion.kinematics import joint_positions

        m = motion_or_positions
        if fps is not None and abs(m.fps - fps) > 1e-9:
            m = m.resample(fps)
        return joint_positions(m)
    p = np.asarray(motion_or_positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3):
        raise MotionError(
            f"joint positions must have shape (frames, {NUM_JOINTS}, 3), got {p.shape}",
            "pass a Motion or the output of gesticulator.motion.joint_positions",
        )
    if not np.all(np.isfinite(p)):
        raise MotionError("joint positions contain NaN/Inf values")
    return p


def _pelvis_relative(p: np.ndarray) -> np.ndarray:
    """Every joint minus the pelvis position of its frame (root translation zeroed)."""
    return p - p[:, PELVIS : PELVIS + 1]


def _speed(p: np.ndarray, fps: float) -> np.ndarray:
    """(T, ...) speed of (T, ..., 3) positions: norm of np.gradient (central differences; one-sided
    at the ends), m/s. Zero for fewer than 2 frames."""
    if p.shape[0] < 2:
        return np.zeros(p.shape[:-1])
    return np.linalg.norm(np.gradient(p, 1.0 / fps, axis=0), axis=-1)


def _reference_speed(reference: ReferenceSpeed, idx: tuple[int, ...], speed: np.ndarray) -> np.ndarray:
    if isinstance(reference, str) and reference == "beat2":
        return BEAT2_MEAN_SPEED[list(idx)]
    if isinstance(reference, str) and reference == "beat2_world":
        return BEAT2_MEAN_SPEED_WORLD[list(idx)]
    if isinstance(reference, str) and reference == "self":
        return speed.mean(axis=0) if len(speed) else np.zeros(len(idx))
    if isinstance(reference, (str, os.PathLike)):
        ref = np.load(reference).astype(np.float64).ravel()
    else:
        ref = np.asarray(reference, dtype=np.float64).ravel()
    if ref.size == 1:
        return np.full(len(idx), float(ref[0]))
    if ref.size == NUM_JOINTS:
        return ref[list(idx)]
    if ref.size == len(idx):
        return ref
    raise GesticulatorError(
        f"reference_speed has {ref.size} values; need 1, {NUM_JOINTS} (SMPL-X joints) or {len(idx)}",
        'pass "beat2", "beat2_world", "self", a number, or a per-joint array',
    )


def _window_onsets(
    audio_or_onsets: str | os.PathLike | ArrayLike | Onsets,
    n: int,
    fps: float,
    t0: int,
    sr: int,
    emage_compat: bool,
) -> np.ndarray:
    """Onset times (s) inside the window [t0, n - t0) frames, relative to its start."""
    if isinstance(audio_or_onsets, Onsets):
        start, end = t0 / fps, (n - t0) / fps
        t = audio_or_onsets.times
        return t[(t >= start) & (t < end)] - start
    from gesticulator.speech.prosody import _prepare, onset_times

    y, _ = _prepare(audio_or_onsets, sr)  # mono float32 at 16 kHz
    length = int(SR / fps * n)
    cut = y[:length] if len(y) >= length else np.pad(y, (0, length - len(y)))
    offset = int(t0 * (SR / fps))
    end = min(length, len(y) - offset) if emage_compat else length - offset
    segment = cut[offset:end]
    if len(segment) == 0:
        return np.zeros(0)
    return np.asarray(onset_times(segment, sr=SR), dtype=np.float64)


def _gaussian_hit_rate(beats: np.ndarray, onsets: np.ndarray, sigma: float) -> float:
    """Mean over onsets of exp(-d^2 / 2 sigma^2), d = distance to the nearest beat (0 if no beats)."""
    if len(beats) == 0:
        return 0.0
    beats = np.sort(beats)
    i = np.searchsorted(beats, onsets)
    left = beats[np.clip(i - 1, 0, len(beats) - 1)]
    right = beats[np.clip(i, 0, len(beats) - 1)]
    d = np.minimum(np.abs(onsets - left), np.abs(onsets - right))
    return float(np.exp(-(d**2) / (2 * sigma**2)).mean())


def _mask(mask: ArrayLike, n: int) -> np.ndarray:
    m = np.asarray(mask).astype(bool).ravel()
    if len(m) != n:
        raise GesticulatorError(
            f"speech mask has {len(m)} frames but the motion has {n}",
            "build the mask with num_frames=motion.num_frames",
        )
    return m


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else math.nan


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    m = np.r_[False, np.asarray(mask, dtype=bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _bridge(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill interior runs of False no longer than `max_gap` frames (never those at either end)."""
    out = np.asarray(mask, dtype=bool).copy()
    if max_gap <= 0:
        return out
    for start, stop in _runs(~out):
        if start > 0 and stop < len(out) and stop - start <= max_gap:
            out[start:stop] = True
    return out


__all__ = [
    "BC_FPS",
    "BC_ORDER",
    "BC_SIGMA",
    "BC_THRESHOLD",
    "BC_TRIM",
    "BEAT2_MEAN_SPEED",
    "BEAT2_MEAN_SPEED_WORLD",
    "BCLift",
    "BeatConsistency",
    "FrozenStretches",
    "MotionStats",
    "Onsets",
    "StatsComparison",
    "bc_lift",
    "beat_consistency",
    "beat_consistency_details",
    "compare_to_reference",
    "frozen_stretches",
    "joint_indices",
    "joint_position_error_cm",
    "l1_diversity",
    "motion_beats",
    "motion_stats",
    "normalised_speed",
    "speech_mask_from_audio",
    "speech_mask_from_transcript",
    "upper_body_activity",
]
