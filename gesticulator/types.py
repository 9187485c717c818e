"""The data types that pass between stages. Every stage imports from here; nothing here imports
a stage, so the module stays small and cycle-free.

`Motion` is the canonical SMPL-X motion: 55 joints x 3 axis-angle (`poses`), root translation
(`trans`), body shape (`betas`), frame rate, 30 fps canonical, Y-up, hands with
``flat_hand_mean=False`` (zero hand pose = relaxed SMPL-X mean hand). Operations on it live in
`gesticulator.motion` as pure functions; the methods here are thin conveniences over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gesticulator.errors import MotionError

CANONICAL_FPS = 30.0
NUM_JOINTS = 55
POSE_DIM = NUM_JOINTS * 3


@dataclass(eq=False)
class Motion:
    """SMPL-X motion. `poses` (T, 165) axis-angle in SMPL-X joint order, `trans` (T, 3) metres."""

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10, dtype=np.float32))
    fps: float = CANONICAL_FPS
    gender: str = "neutral"
    # Free-form provenance (source file, generator, model versions...). Saved as JSON in the npz.
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses)
        trans = np.asarray(self.trans)
        betas = np.asarray(self.betas)
        if poses.ndim == 3 and poses.shape[1:] == (NUM_JOINTS, 3):
            poses = poses.reshape(poses.shape[0], POSE_DIM)
        if poses.ndim != 2 or poses.shape[1] != POSE_DIM:
            raise MotionError(
                f"poses must have shape (frames, {POSE_DIM}) (SMPL-X 55 joints x 3 axis-angle), got {poses.shape}",
                "convert SMPL/SMPL-H motion to SMPL-X layout first",
            )
        if trans.shape != (poses.shape[0], 3):
            raise MotionError(
                f"trans must have shape ({poses.shape[0]}, 3) to match poses, got {trans.shape}",
                "give one root translation per frame",
            )
        if betas.ndim != 1 or betas.shape[0] < 1:
            raise MotionError(f"betas must be a 1-D vector of shape coefficients, got {betas.shape}")
        for name, arr in (("poses", poses), ("trans", trans), ("betas", betas)):
            if not np.issubdtype(arr.dtype, np.floating):
                arr = arr.astype(np.float64)
            if not np.all(np.isfinite(arr)):
                bad = int(np.count_nonzero(~np.isfinite(arr)))
                raise MotionError(f"{name} contains {bad} NaN/Inf values", "repair or re-export the motion")
            setattr(self, name, arr)
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise MotionError(f"fps must be a positive number, got {self.fps}")
        self.fps = float(self.fps)
        self.gender = str(self.gender)

    # -- basic facts ---------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        """Seconds covered, frame count / fps."""
        return self.num_frames / self.fps

    @property
    def rotations(self) -> np.ndarray:
        """(T, 55, 3) axis-angle view of `poses`."""
        return self.poses.reshape(self.num_frames, NUM_JOINTS, 3)

    def copy(self, **changes: Any) -> Motion:
        fields = {
            "poses": self.poses.copy(),
            "trans": self.trans.copy(),
            "betas": self.betas.copy(),
            "metadata": dict(self.metadata),
        }
        fields.update(changes)
        return replace(self, **fields)

    # -- conveniences over gesticulator.motion ------------------------------------------------
    def slice(self, start: int = 0, stop: int | None = None) -> Motion:
        from gesticulator.motion.ops import slice_frames

        return slice_frames(self, start, stop)

    def slice_seconds(self, start: float = 0.0, stop: float | None = None) -> Motion:
        from gesticulator.motion.ops import slice_seconds

        return slice_seconds(self, start, stop)

    def resample(self, fps: float) -> Motion:
        from gesticulator.motion.ops import resample

        return resample(self, fps)

    def joints(self):
        """Forward kinematics: a `JointTransforms` with world positions (T, 55, 3)."""
        from gesticulator.motion.kinematics import forward_kinematics

        return forward_kinematics(self)

    @classmethod
    def rest(cls, num_frames: int = 1, fps: float = CANONICAL_FPS, betas: np.ndarray | None = None) -> Motion:
        """The SMPL-X rest pose (T-pose, relaxed mean hands) for `num_frames` frames."""
        return cls(
            poses=np.zeros((num_frames, POSE_DIM)),
            trans=np.zeros((num_frames, 3)),
            betas=np.zeros(10) if betas is None else np.asarray(betas),
            fps=fps,
        )
