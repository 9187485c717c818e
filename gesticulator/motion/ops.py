"""Motion operations: slicing, concatenation, resampling (slerp), mirroring. Pure functions."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from gesticulator.errors import MotionError
from gesticulator.motion import skeleton as sk
from gesticulator.motion.rotations import axis_angle_to_quat, quat_continuity, quat_slerp, quat_to_axis_angle
from gesticulator.types import Motion


def slice_frames(motion: Motion, start: int = 0, stop: int | None = None) -> Motion:
    """Frames [start, stop) as a new Motion (negative indices count from the end)."""
    idx = range(motion.num_frames)[slice(start, stop)]
    if len(idx) == 0:
        raise MotionError(
            f"slice [{start}:{stop}] of a {motion.num_frames}-frame motion is empty",
            "choose a range inside the motion",
        )
    out = motion.copy(poses=motion.poses[idx.start : idx.stop], trans=motion.trans[idx.start : idx.stop])
    if "_expressions" in motion.metadata:  # per-frame face data rides along with the frames
        out.metadata["_expressions"] = motion.metadata["_expressions"][idx.start : idx.stop]
    return out


def slice_seconds(motion: Motion, start: float = 0.0, stop: float | None = None) -> Motion:
    """The frames whose times fall in [start, stop) seconds."""
    first = int(np.ceil(start * motion.fps - 1e-9))
    last = motion.num_frames if stop is None else int(np.ceil(stop * motion.fps - 1e-9))
    return slice_frames(motion, first, last)


def concatenate(motions: list[Motion]) -> Motion:
    """Join motions end to end. They must share fps and body shape."""
    if not motions:
        raise MotionError("nothing to concatenate", "pass at least one motion")
    first = motions[0]
    for m in motions[1:]:
        if abs(m.fps - first.fps) > 1e-6:
            raise MotionError(f"cannot concatenate motions at {first.fps} and {m.fps} fps", "resample first")
        if m.betas.shape != first.betas.shape or not np.allclose(m.betas, first.betas):
            raise MotionError("cannot concatenate motions with different body shapes (betas)")
    out = first.copy(
        poses=np.concatenate([m.poses for m in motions]),
        trans=np.concatenate([m.trans for m in motions]),
    )
    out.metadata.pop("_expressions", None)
    return out


def resample(motion: Motion, fps: float) -> Motion:
    """Resample to `fps`: rotations by slerp, translation linearly. Covers the same duration."""
    if not (np.isfinite(fps) and fps > 0):
        raise MotionError(f"target fps must be positive, got {fps}")
    if abs(fps - motion.fps) < 1e-9:
        return motion.copy()
    n = motion.num_frames
    src_t = np.arange(n) / motion.fps
    dst_n = max(1, int(round((n - 1) * fps / motion.fps)) + 1)
    dst_t = np.minimum(np.arange(dst_n) / fps, src_t[-1])
    if n == 1:
        return motion.copy(
            poses=np.repeat(motion.poses, dst_n, 0), trans=np.repeat(motion.trans, dst_n, 0), fps=fps
        )
    rot = motion.rotations.astype(np.float64)
    out = np.empty((dst_n, sk.NUM_JOINTS, 3))
    for j in range(sk.NUM_JOINTS):
        out[:, j] = Slerp(src_t, Rotation.from_rotvec(rot[:, j]))(dst_t).as_rotvec()
    trans = np.stack([np.interp(dst_t, src_t, motion.trans[:, k]) for k in range(3)], axis=1)
    result = motion.copy(poses=out.reshape(dst_n, sk.POSE_DIM), trans=trans, fps=float(fps))
    result.metadata.pop("_expressions", None)
    return result


def hold_spans(motion: Motion, spans: list[tuple[int, int]], ramp_frames: int = 2) -> Motion:
    """Hold the pose through each frame span [start, stop): inside it the body eases (smoothstep
    slerp per joint) from the pose at `start` to the pose at `stop`, so it moves once, slowly,
    instead of going on gesturing; the change is blended in over `ramp_frames` at both ends, so
    the motion slows into the hold and speeds out of it rather than stopping dead. A speaker
    holds the last stroke's pose through a short pause like this (a post-stroke hold). Spans
    touching the first or last frame, or shorter than 3 frames, are left as they are."""
    n = motion.num_frames
    spans = [(int(a), int(b)) for a, b in spans if 0 < int(a) and int(b) < n - 1 and int(b) - int(a) >= 3]
    if not spans:
        return motion.copy()
    poses = motion.poses.copy()
    trans = motion.trans.copy()
    for a, b in spans:  # frames a..b inclusive: both ends keep their pose; frames outside are untouched
        q = quat_continuity(axis_angle_to_quat(motion.rotations[a : b + 1].astype(np.float64)), axis=0)
        t = np.arange(b - a + 1) / (b - a)
        ease = t * t * (3 - 2 * t)
        k = np.arange(b - a + 1)
        blend = np.clip(np.minimum(k, b - a - k) / max(1, ramp_frames), 0.0, 1.0)
        blend = blend * blend * (3 - 2 * blend)
        weights = np.broadcast_to(ease[:, None], q.shape[:2])
        held = quat_slerp(np.broadcast_to(q[0], q.shape), np.broadcast_to(q[-1], q.shape), weights)
        q = quat_slerp(q, held, np.broadcast_to(blend[:, None], q.shape[:2]))
        poses[a : b + 1] = quat_to_axis_angle(q).reshape(b - a + 1, sk.POSE_DIM)
        held_trans = trans[a] * (1 - ease[:, None]) + trans[b] * ease[:, None]
        trans[a : b + 1] += blend[:, None] * (held_trans - trans[a : b + 1])
    return motion.copy(poses=poses, trans=trans)


def mirror(motion: Motion) -> Motion:
    """Mirror left<->right across the body's sagittal (YZ) plane.

    Reflecting x negates the y and z axis-angle components and swaps left/right joints.
    """
    rot = motion.rotations[:, list(sk.MIRROR_INDEX)].copy()
    rot[..., 1:] *= -1
    trans = motion.trans.copy()
    trans[:, 0] *= -1
    return motion.copy(poses=rot.reshape(motion.num_frames, sk.POSE_DIM), trans=trans)
