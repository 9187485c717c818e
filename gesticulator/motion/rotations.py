"""Rotation conversions between axis-angle, quaternion, 6D and matrix.

Thin, named wrappers over nanomanifold's SO3 (a mannequin-x dependency) so the same functions
work on NumPy arrays and torch tensors. Quaternions are (w, x, y, z) unless `convention="xyzw"`
is passed (glTF uses xyzw). 6D is the first two columns of the matrix (Zhou et al. 2019), the
representation the rhythm model learns in.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from nanomanifold import SO3

QuatConvention = Literal["wxyz", "xyzw"]
Array = Any  # np.ndarray or torch.Tensor


def axis_angle_to_matrix(aa: Array) -> Array:
    return SO3.convert(aa, src="axis_angle", dst="rotmat")


def matrix_to_axis_angle(m: Array) -> Array:
    return SO3.convert(m, src="rotmat", dst="axis_angle")


def axis_angle_to_quat(aa: Array, convention: QuatConvention = "wxyz") -> Array:
    return SO3.convert(aa, src="axis_angle", dst="quat", dst_kwargs={"convention": convention})


def quat_to_axis_angle(q: Array, convention: QuatConvention = "wxyz") -> Array:
    return SO3.convert(q, src="quat", dst="axis_angle", src_kwargs={"convention": convention})


def quat_to_matrix(q: Array, convention: QuatConvention = "wxyz") -> Array:
    return SO3.convert(q, src="quat", dst="rotmat", src_kwargs={"convention": convention})


def matrix_to_quat(m: Array, convention: QuatConvention = "wxyz") -> Array:
    return SO3.convert(m, src="rotmat", dst="quat", dst_kwargs={"convention": convention})


def axis_angle_to_sixd(aa: Array) -> Array:
    return SO3.convert(aa, src="axis_angle", dst="sixd")


def sixd_to_axis_angle(d6: Array) -> Array:
    return SO3.convert(d6, src="sixd", dst="axis_angle")


def matrix_to_sixd(m: Array) -> Array:
    return SO3.convert(m, src="rotmat", dst="sixd")


def sixd_to_matrix(d6: Array) -> Array:
    """Gram-Schmidt: any 6-vector with independent halves maps to a valid rotation."""
    return SO3.convert(d6, src="sixd", dst="rotmat")


def euler_to_matrix(angles: Array, order: str) -> Array:
    """Intrinsic Euler angles in radians, `order` like "ZXY": R = Rz @ Rx @ Ry (BVH semantics)."""
    return SO3.convert(angles, src="euler", dst="rotmat", src_kwargs={"convention": order.upper()})


def matrix_to_euler(m: Array, order: str) -> Array:
    return SO3.convert(m, src="rotmat", dst="euler", dst_kwargs={"convention": order.upper()})


def angle_between(a: Array, b: Array) -> Array:
    """Geodesic angle in radians between rotations given as axis-angle vectors."""
    return SO3.distance(axis_angle_to_quat(a), axis_angle_to_quat(b))


def quat_continuity(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip quaternion signs along `axis` so consecutive ones lie in one hemisphere (no 180° jumps
    when interpolating or writing animation curves)."""
    q = np.array(q, copy=True)
    q = np.moveaxis(q, axis, 0)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1
    return np.moveaxis(q, 0, axis)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Slerp between unit quaternions (..., 4) with weights (...), shortest path."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / safe)
    b = np.where(small, w, np.sin(w * theta) / safe)
    out = a * q0 + b * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)
