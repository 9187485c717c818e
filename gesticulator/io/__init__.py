"""Readers and writers: SMPL-X npz, BVH, GLB."""

from gesticulator.io.npz import load_npz, save_npz

__all__ = ["load_npz", "save_npz"]
