"""Gesture phase marks and handedness estimated from the hand-speed profile of a clip.

The hands' world positions come from forward kinematics, relative to the pelvis (so walking or
swaying does not count as gesturing): the wrist and the five distal finger joints of each
active hand, smoothed in time. From their mean speed and their displacement from the starting
pose:

- ``prep_start``: motion onset, the first frame faster than a low threshold;
- ``apex``: the held point, where the hand is furthest from where it started: inside the stretch
  of frames near that extreme, the first frame where the speed is (close to) its minimum, i.e.
  where the stroke arrives;
- ``stroke_start``: the start of the main speed peak, the last peak before the apex: the speed
  valley between it and an earlier (preparation) peak when there is one, else the point where its
  rise crosses half its height;
- ``stroke_end``: the end of the hold after the apex, where the speed rises into the retraction;
- ``retract_end``: where the hand settles, the last frame faster than the low threshold.

Clips without any clear movement get evenly spread marks. Marks are seconds from the first frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from gesticulator.library.schema import Phases
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import joint_positions
from gesticulator.types import Motion

_DISTAL = ("index3", "middle3", "ring3", "pinky3", "thumb3")
HAND_POINTS: dict[str, tuple[int, ...]] = {
    side: tuple(sk.JOINT_INDEX[f"{side}_{n}"] for n in ("wrist", *_DISTAL)) for side in ("left", "right")
}
STILL_SPEED = 0.05  # m/s: a clip whose hands never move faster than this has no gesture phases
_SIDE_PARTS = {
    "left": ("left_arm", "left_hand"),
    "right": ("right_arm", "right_hand"),
}


def active_sides(body_parts: Sequence[str] | None) -> tuple[str, ...]:
    """The arms a gesture uses, from its body parts ("right_arm" -> right; "hands", "upper" -> both)."""
    parts = set(body_parts or ())
    sides = tuple(s for s in ("left", "right") if parts & {f"{s}_arm", f"{s}_hand"})
    if not sides and parts & {"hands", "upper", "all"}:
        sides = ("left", "right")
    return sides or ("left", "right")


def hand_positions(motion: Motion, sides: Sequence[str] = ("left", "right")) -> np.ndarray:
    """(T, P, 3) world positions of the wrists and finger tips of `sides`, relative to the pelvis."""
    pos = joint_positions(motion)
    idx = [j for s in sides for j in HAND_POINTS[s]]
    return pos[:, idx] - pos[:, :1]


def _smoothed_points(motion: Motion, sides: Sequence[str], smooth_s: float) -> np.ndarray:
    pts = hand_positions(motion, sides)
    if motion.num_frames > 1 and smooth_s > 0:
        pts = gaussian_filter1d(pts, sigma=max(smooth_s * motion.fps, 0.5), axis=0, mode="nearest")
    return pts


def _speed(pts: np.ndarray, fps: float) -> np.ndarray:
    if pts.shape[0] < 2:
        return np.zeros(pts.shape[0])
    return np.linalg.norm(np.gradient(pts, 1.0 / fps, axis=0), axis=-1).mean(axis=1)


def speed_profile(
    motion: Motion, sides: Sequence[str] = ("left", "right"), *, smooth_s: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """(speed, displacement), each (T,): the hands' mean speed (m/s) and mean distance (m) from
    their first-frame position, positions smoothed with a Gaussian of `smooth_s` seconds."""
    pts = _smoothed_points(motion, sides, smooth_s)
    return _speed(pts, motion.fps), np.linalg.norm(pts - pts[:1], axis=-1).mean(axis=1)


def estimate_phases(
    motion: Motion, body_parts: Sequence[str] | None = None, *, smooth_s: float = 0.05
) -> Phases:
    """Phase marks (seconds) of a gesture clip from the speed profile of its active arm(s).

    `body_parts` (as in a gesture file: "right_arm", "left_hand", "hands", ...) picks the hands
    whose movement counts; both when it names neither side.
    """
    n = motion.num_frames
    last = (n - 1) / motion.fps
    pts = _smoothed_points(motion, active_sides(body_parts), smooth_s) if n else np.zeros((0, 1, 3))
    speed = _speed(pts, motion.fps)
    vmax = float(speed.max()) if n else 0.0
    if n < 3 or vmax < STILL_SPEED:
        return _phases([0.0, 0.2 * last, 0.5 * last, 0.8 * last, last])
    low = max(0.08 * vmax, 0.02)
    moving = np.flatnonzero(speed > low)
    onset, settle = int(moving[0]), int(moving[-1])

    # Displacement from the pose where the movement starts.
    disp = np.linalg.norm(pts - pts[onset], axis=-1).mean(axis=1)

    # Apex: the held point near the extreme displacement.
    window = np.arange(onset, settle + 1)
    k_far = int(window[np.argmax(disp[window])])
    near = disp >= disp[k_far] - max(0.12 * disp[k_far], 0.01)
    lo = hi = k_far
    while lo > onset and near[lo - 1]:
        lo -= 1
    while hi < settle and near[hi + 1]:
        hi += 1
    region = np.arange(lo, hi + 1)
    floor = float(speed[region].min())
    apex = int(region[np.flatnonzero(speed[region] <= floor + 0.1 * vmax)[0]])

    # Stroke: the last speed peak before the apex; it starts at the valley after an earlier
    # (preparation) peak, else where its rise crosses half its height.
    stroke_start = onset
    peaks, _ = find_peaks(np.concatenate([[0.0], speed[onset : apex + 1], [0.0]]), prominence=0.1 * vmax)
    peaks = peaks - 1 + onset
    peaks = peaks[(peaks >= onset) & (peaks <= apex)]
    if len(peaks):
        main = int(peaks[-1])
        half = main
        while half > onset and speed[half - 1] >= 0.5 * speed[main]:
            half -= 1
        stroke_start = half
        if len(peaks) > 1:
            prev = int(peaks[-2])
            valley = prev + int(np.argmin(speed[prev : main + 1]))
            if speed[valley] < 0.6 * min(speed[prev], speed[main]):
                stroke_start = valley
        stroke_start = min(stroke_start, apex)

    # Stroke end: the hold after the apex lasts until the speed rises into the retraction.
    rise = max(0.2 * vmax, low)
    after = np.flatnonzero(speed[apex:] > rise)
    if len(after) == 0:
        stroke_end = settle
    else:
        k1 = apex + int(after[0])
        calm = np.flatnonzero(speed[apex:k1] <= max(low, speed[apex] + 0.05 * vmax))
        stroke_end = apex + int(calm[-1]) if len(calm) else apex
    marks = [onset, stroke_start, apex, stroke_end, settle]
    return _phases([k / motion.fps for k in marks])


def _phases(marks: list[float]) -> Phases:
    out: list[float] = []
    for m in marks:
        v = round(max(0.0, float(m)), 3)
        out.append(max(v, out[-1]) if out else v)
    return Phases(prep_start=out[0], stroke_start=out[1], apex=out[2], stroke_end=out[3], retract_end=out[4])


def arm_activity(motion: Motion, *, smooth_s: float = 0.05) -> dict[str, float]:
    """Mean hand speed (m/s, wrist and finger tips relative to the pelvis) of each side."""
    pts = _smoothed_points(motion, ("left", "right"), smooth_s)
    k = len(HAND_POINTS["left"])
    return {
        "left": float(_speed(pts[:, :k], motion.fps).mean()),
        "right": float(_speed(pts[:, k:], motion.fps).mean()),
    }


def estimate_handedness(
    motions: Motion | Sequence[Motion], *, both_ratio: float = 0.5, still: float = 0.02
) -> tuple[str, list[str]]:
    """(handedness, body_parts) from which arm moves most over one or more takes.

    "both" when the quieter arm moves at least `both_ratio` as much as the busier one; "none"
    with ["head"] when neither hand moves faster than `still` m/s on average.
    """
    takes = [motions] if isinstance(motions, Motion) else list(motions)
    left = right = 0.0
    for m in takes:
        act = arm_activity(m)
        left, right = left + act["left"], right + act["right"]
    left, right = left / max(len(takes), 1), right / max(len(takes), 1)
    if max(left, right) < still:
        return "none", ["head"]
    if min(left, right) >= both_ratio * max(left, right):
        return "both", [*_SIDE_PARTS["left"], *_SIDE_PARTS["right"]]
    side = "left" if left > right else "right"
    return side, list(_SIDE_PARTS[side])


__all__ = [
    "HAND_POINTS",
    "active_sides",
    "arm_activity",
    "estimate_handedness",
    "estimate_phases",
    "hand_positions",
    "speed_profile",
]
