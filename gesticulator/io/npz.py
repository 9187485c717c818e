"""SMPL-X motion as .npz with BEAT2/AMASS keys.

Written keys: `poses (T,165)`, `trans (T,3)`, `betas`, `gender`, `mocap_frame_rate` (BEAT2 and
AMASS SMPL-X), `mocap_framerate` (older AMASS tools), `model`, `expressions (T,100)`,
`flat_hand_mean` and `gesticulator_metadata` (JSON). Strings are plain unicode arrays, so the file
loads with ``np.load(path)`` without ``allow_pickle``. Arrays keep their dtype, so a
load/save/load round trip is exact.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from gesticulator.errors import InputFileError
from gesticulator.io.atomic import atomic_path
from gesticulator.types import POSE_DIM, Motion

SMPLX_MODEL_TAG = "smplx2020"


def load_npz(path: str | os.PathLike) -> Motion:
    """Read an SMPL-X motion npz (BEAT2, AMASS SMPL-X, EMAGE output, or our own)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"motion file not found: {path}", "check the path")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as e:
        if "pickle" in str(e) and zipfile.is_zipfile(path):
            # Object arrays are pickles: loading them runs code from the file, so we refuse.
            raise InputFileError(
                f"{path} stores Python objects (pickled arrays), which are unsafe to load",
                "re-save it with plain numeric/string arrays (np.savez with no object arrays)",
            ) from e
        raise InputFileError(f"{path} is not a readable .npz file", "give an SMPL-X .npz motion") from e
    except (OSError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as e:
        raise InputFileError(f"{path} is not a readable .npz file ({e})", "re-export it as SMPL-X npz") from e
    return _motion_from_arrays(arrays, path)


def _motion_from_arrays(arrays: dict[str, np.ndarray], path: Path) -> Motion:
    if "poses" not in arrays:
        if {"root_orient", "pose_body"} <= arrays.keys():
            arrays = _from_amass_parts(arrays)
        else:
            keys = ", ".join(sorted(arrays)) or "none"
            raise InputFileError(
                f"{path} has no 'poses' array (keys: {keys})",
                "give an SMPL-X npz with poses (T,165), trans (T,3), betas",
            )
    poses = arrays["poses"]
    if poses.ndim != 2 or poses.shape[1] != POSE_DIM:
        raise InputFileError(
            f"{path}: poses has shape {poses.shape}, expected (frames, {POSE_DIM}) for SMPL-X",
            "SMPL (72) and SMPL-H (156) motion must be converted to SMPL-X first",
        )
    if poses.shape[0] == 0:
        raise InputFileError(f"{path} has zero frames", "export a motion with at least one frame")
    trans = arrays.get("trans")
    if trans is None:
        trans = np.zeros((poses.shape[0], 3), dtype=poses.dtype)
    betas = arrays.get("betas", np.zeros(10, dtype=np.float32))
    betas = np.asarray(betas)
    if betas.ndim == 2:  # some tools store per-frame betas; the shape is constant
        betas = betas[0]
    fps = _scalar(arrays, ("mocap_frame_rate", "mocap_framerate", "fps"), 30.0)
    gender = str(arrays["gender"]) if "gender" in arrays else "neutral"
    metadata: dict = {}
    if "gesticulator_metadata" in arrays:
        try:
            metadata = json.loads(str(arrays["gesticulator_metadata"]))
        except json.JSONDecodeError:
            metadata = {}
    if "expressions" in arrays and arrays["expressions"].shape[0] == poses.shape[0]:
        if np.any(arrays["expressions"]):
            metadata.setdefault("has_expressions", True)
    metadata.setdefault("source", str(path))
    from gesticulator.errors import MotionError

    try:
        motion = Motion(poses=poses, trans=trans, betas=betas, fps=fps, gender=gender, metadata=metadata)
    except MotionError as e:
        raise InputFileError(f"{path}: {e.problem}", e.fix) from e
    if "expressions" in arrays and arrays["expressions"].shape[0] == poses.shape[0]:
        motion.metadata["_expressions"] = arrays["expressions"]
    return motion


def _scalar(arrays: dict, keys: tuple[str, ...], default: float) -> float:
    for k in keys:
        if k in arrays:
            return float(np.asarray(arrays[k]).ravel()[0])
    return default


def _from_amass_parts(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    t = a["root_orient"].shape[0]
    zeros = lambda n: np.zeros((t, n), dtype=a["root_orient"].dtype)  # noqa: E731
    poses = np.concatenate(
        [
            a["root_orient"],
            a["pose_body"],
            a.get("pose_jaw", zeros(3)),
            a.get("pose_eye", zeros(6)),
            a.get("pose_hand", zeros(90)),
        ],
        axis=1,
    )
    return {**a, "poses": poses}


def save_npz(motion: Motion, path: str | os.PathLike) -> Path:
    """Write `motion` atomically as an SMPL-X npz readable by BEAT2/EMAGE tools and the SMPL-X
    Blender add-on."""
    path = Path(path)
    metadata = {k: v for k, v in motion.metadata.items() if not k.startswith("_")}
    expressions = motion.metadata.get("_expressions")
    if expressions is None or np.shape(expressions)[0] != motion.num_frames:
        expressions = np.zeros((motion.num_frames, 100), dtype=np.float32)
    arrays = {
        "poses": motion.poses,
        "trans": motion.trans,
        "betas": motion.betas,
        "gender": np.asarray(motion.gender),
        "mocap_frame_rate": np.asarray(motion.fps if motion.fps % 1 else int(motion.fps)),
        "mocap_framerate": np.asarray(motion.fps),
        "model": np.asarray(SMPLX_MODEL_TAG),
        "expressions": np.asarray(expressions),
        "flat_hand_mean": np.asarray(False),
        "gesticulator_metadata": np.asarray(json.dumps(metadata, default=str)),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path
