"""Readers and writers: SMPL-X npz, BVH, GLB."""

from __future__ import annotations

import os
from pathlib import Path

from gesticulator.errors import InputFileError
from gesticulator.io.bvh import BvhData, load_bvh_motion, read_bvh, save_bvh
from gesticulator.io.glb import save_glb
from gesticulator.io.npz import load_npz, save_npz
from gesticulator.types import Motion

MOTION_SUFFIXES = (".npz", ".bvh")


def load_motion(path: str | os.PathLike) -> Motion:
    """Load an SMPL-X motion from .npz (BEAT2/AMASS keys) or a BVH written by gesticulator."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"motion file not found: {path}", "check the path")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".bvh":
        return load_bvh_motion(path)
    raise InputFileError(
        f"cannot read motion from {path.name}: unknown type {suffix or '(no suffix)'}",
        f"give one of {', '.join(MOTION_SUFFIXES)}",
    )


__all__ = [
    "BvhData",
    "load_bvh_motion",
    "load_motion",
    "load_npz",
    "read_bvh",
    "save_bvh",
    "save_glb",
    "save_npz",
]
