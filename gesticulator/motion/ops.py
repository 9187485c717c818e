"""Motion operations: slicing, concatenation, resampling (slerp), mirroring. Pure functions."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from gesticulator.errors import MotionError
from gesticulator.motion import skeleton as sk
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


def mirror(motion: Motion) -> Motion:
    """Mirror left<->right across the body's sagittal (YZ) plane.

    Reflecting x negates the y and z axis-angle components and swaps left/right joints.
    """
    rot = motion.rotations[:, list(sk.MIRROR_INDEX)].copy()
    rot[..., 1:] *= -1
    trans = motion.trans.copy()
    trans[:, 0] *= -1
    return motion.copy(poses=rot.reshape(motion.num_frames, sk.POSE_DIM), trans=trans)
