"""BVH: a general reader (any hierarchy, channel order, End Sites), a general writer and SMPL-X's.

Conventions (the ones Blender, MotionBuilder and most mocap tools share):
- rotation channels are intrinsic Euler angles in degrees, applied in the listed order
  ("Zrotation Xrotation Yrotation" means R = Rz @ Rx @ Ry);
- the root's position channels hold its absolute position (the root OFFSET is its rest position);
  position channels on other joints replace that joint's OFFSET for the frame.

The writer exports the 55-joint SMPL-X skeleton for the motion's body shape in centimetres (by
default), Y-up, T-pose with flat hands as the rest pose. Because SMPL-X poses use
``flat_hand_mean=False``, finger rotations in the file include the mean hand pose, so the BVH
shows the same relaxed hands as the SMPL-X model. `bvh_to_motion` undoes that.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gesticulator.errors import InputFileError, MotionError
from gesticulator.io.atomic import atomic_path
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import from_flat_hand, local_rotations_flat_hand, rest_skeleton
from gesticulator.motion.rotations import (
    axis_angle_to_matrix,
    euler_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler,
)
from gesticulator.types import Motion

UNIT_SCALE = {"cm": 100.0, "m": 1.0}
_AXES = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS = ("Xposition", "Yposition", "Zposition")


@dataclass
class BvhData:
    """A parsed BVH file. Joints are in file order (parents before children)."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J, 3) rest offset from the parent, file units
    channels: list[list[str]]  # channel names per joint, file order
    end_sites: dict[int, np.ndarray]  # joint index -> End Site offset
    frame_time: float
    motion: np.ndarray  # (F, total channels) raw values, file units / degrees
    source: str = ""
    _columns: list[tuple[int, int]] = field(default_factory=list)  # (first column, count) per joint

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def fps(self) -> float:
        fps = 1.0 / self.frame_time
        # Frame Time is printed with few digits (0.033333 for 30 fps); snap near-integer rates.
        return float(round(fps)) if abs(fps - round(fps)) < 1e-3 * fps else fps

    def joint_index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"joint {name!r} not in BVH (joints: {', '.join(self.names)})") from None

    def channel_values(self, joint: int) -> tuple[list[str], np.ndarray]:
        first, count = self._columns[joint]
        return self.channels[joint], self.motion[:, first : first + count]

    def local_rotations(self) -> np.ndarray:
        """(F, J, 3, 3) local rotation matrices (identity for joints without rotation channels)."""
        out = np.broadcast_to(np.eye(3), (self.num_frames, self.num_joints, 3, 3)).copy()
        for j in range(self.num_joints):
            names, values = self.channel_values(j)
            rot = [(k, _AXES[c]) for k, c in enumerate(names) if c in _AXES]
            if not rot:
                continue
            order = "".join(axis for _, axis in rot)
            angles = np.radians(values[:, [k for k, _ in rot]])
            if len(rot) < 3:  # pad partial rotation channel sets with zero angles on the other axes
                missing = [a for a in "XYZ" if a not in order]
                angles = np.concatenate([angles, np.zeros((self.num_frames, 3 - len(rot)))], axis=1)
                order += "".join(missing)
            out[:, j] = euler_to_matrix(angles, order)
        return out

    def local_translations(self) -> np.ndarray:
        """(F, J, 3) local translations: OFFSET, or the position channels where a joint has them."""
        out = np.broadcast_to(self.offsets, (self.num_frames, self.num_joints, 3)).copy()
        for j in range(self.num_joints):
            names, values = self.channel_values(j)
            for axis, c in enumerate(_POS):
                if c in names:
                    out[:, j, axis] = values[:, names.index(c)]
        return out

    def world_transforms(self, frames: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (F, J, 3, 3) and positions (F, J, 3, file units) by forward kinematics."""
        sel = slice(None) if frames is None else frames
        rot = self.local_rotations()[sel]
        trans = self.local_translations()[sel]
        world_r = np.empty_like(rot)
        world_p = np.empty_like(trans)
        for j, p in enumerate(self.parents):
            if p < 0:
                world_r[:, j], world_p[:, j] = rot[:, j], trans[:, j]
            else:
                world_r[:, j] = world_r[:, p] @ rot[:, j]
                world_p[:, j] = world_p[:, p] + np.einsum("fij,fj->fi", world_r[:, p], trans[:, j])
        return world_r, world_p

    def world_positions(self) -> np.ndarray:
        """(F, J, 3) joint world positions (file units) by forward kinematics."""
        return self.world_transforms()[1]

    def rest_positions(self) -> np.ndarray:
        """(J, 3) world positions in the rest pose (all rotations zero, OFFSETs only)."""
        pos = np.zeros((self.num_joints, 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] if p < 0 else pos[p] + self.offsets[j]
        return pos


# -- reading ---------------------------------------------------------------------------------------


def read_bvh(path: str | os.PathLike) -> BvhData:
    """Parse a BVH file. Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"BVH file not found: {path}", "check the path")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror}", "check the file's permissions") from e
    return parse_bvh(text, source=str(path))


def parse_bvh(text: str, source: str = "<string>") -> BvhData:
    lines = text.splitlines()
    tokens: list[tuple[int, list[str]]] = [(i + 1, ln.split()) for i, ln in enumerate(lines) if ln.strip()]

    def fail(line: int, what: str) -> InputFileError:
        what = what if what.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in what)
        return InputFileError(
            f"{source} line {line}: {what}", "check the BVH file (is it truncated or edited by hand?)"
        )

    if not tokens or tokens[0][1][0].upper() != "HIERARCHY":
        raise InputFileError(
            f"{source} is not a BVH file (no HIERARCHY header)", "give a .bvh motion capture file"
        )

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}
    stack: list[int] = []  # open joints; -2 marks an open End Site block
    pending: int | None = None  # joint (or -2) declared and waiting for its "{"
    pos = 1
    while pos < len(tokens):
        line, tok = tokens[pos]
        key = tok[0].upper()
        if key in ("ROOT", "JOINT"):
            if key == "ROOT" and names:
                raise fail(line, "several ROOT joints; only one skeleton per file is supported")
            if key == "JOINT" and not stack:
                raise fail(line, "JOINT outside of a ROOT block")
            if len(tok) < 2:
                raise fail(line, f"{tok[0]} without a name")
            parent = stack[-1] if stack else -1
            if parent == -2:
                raise fail(line, "JOINT inside an End Site")
            names.append(" ".join(tok[1:]))
            parents.append(parent)
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            pending = len(names) - 1
        elif key == "END":
            if not stack or stack[-1] < 0:
                raise fail(line, "End Site outside of a joint")
            pending = -2
            end_sites[stack[-1]] = np.zeros(3)
        elif key == "{":
            if pending is None:
                raise fail(line, "unexpected '{'")
            stack.append(pending)
            pending = None
        elif key == "}":
            if not stack:
                raise fail(line, "unbalanced '}'")
            stack.pop()
        elif key == "OFFSET":
            if not stack:
                raise fail(line, "OFFSET outside of a joint")
            try:
                vals = [float(v) for v in tok[1:4]]
            except ValueError:
                raise fail(line, f"OFFSET has non-numeric values: {' '.join(tok[1:])}") from None
            if len(vals) != 3:
                raise fail(line, "OFFSET needs three numbers")
            if not all(np.isfinite(vals)):
                raise fail(line, f"OFFSET has non-finite values: {' '.join(tok[1:4])}")
            if stack[-1] == -2:
                end_sites[stack[-2]] = np.asarray(vals)
            else:
                offsets[stack[-1]] = vals
        elif key == "CHANNELS":
            if not stack or stack[-1] < 0:
                raise fail(line, "CHANNELS outside of a joint")
            try:
                count = int(tok[1])
            except (IndexError, ValueError):
                raise fail(line, "CHANNELS needs a count") from None
            chans = tok[2:]
            if len(chans) != count:
                raise fail(line, f"CHANNELS says {count} but lists {len(chans)}")
            for c in chans:
                if c not in _AXES and c not in _POS:
                    raise fail(line, f"unknown channel {c!r}")
            if len(set(chans)) != len(chans):
                raise fail(line, f"a channel is listed twice: {' '.join(chans)}")
            channels[stack[-1]] = chans
        elif key == "MOTION":
            break
        else:
            raise fail(line, f"unexpected {tok[0]!r} in HIERARCHY")
        pos += 1
    else:
        raise InputFileError(f"{source} has no MOTION section", "the file is truncated; re-export it")
    if stack:
        raise fail(tokens[pos][0], "MOTION before every joint block was closed")
    if not names:
        raise InputFileError(f"{source} has no joints", "give a BVH with a ROOT joint")

    def header(idx: int, label: str) -> str:
        if idx >= len(tokens):
            raise InputFileError(f"{source} ends before '{label}'", "the file is truncated; re-export it")
        line, tok = tokens[idx]
        joined = " ".join(tok)
        if not joined.lower().startswith(label.lower()):
            raise fail(line, f"expected '{label}', found {joined[:40]!r}")
        return joined[len(label) :].strip()

    try:
        num_frames = int(header(pos + 1, "Frames:"))
        frame_time = float(header(pos + 2, "Frame Time:"))
    except ValueError:
        raise fail(tokens[pos + 1][0], "Frames/Frame Time are not numbers") from None
    if num_frames < 0:
        raise fail(tokens[pos + 1][0], f"Frames must not be negative, got {num_frames}")
    # 1 / frame_time must be a finite frame rate too (a denormal Frame Time would overflow it).
    if not (frame_time > 0 and np.isfinite(frame_time) and np.isfinite(1.0 / frame_time)):
        raise fail(tokens[pos + 2][0], f"Frame Time must be positive (seconds per frame), got {frame_time}")

    columns, total = [], 0
    for c in channels:
        columns.append((total, len(c)))
        total += len(c)
    first_data_line = tokens[pos + 3][0] if pos + 3 < len(tokens) else len(lines) + 1
    data_text = "\n".join(lines[first_data_line - 1 :])
    if num_frames == 0 or not data_text.strip():
        motion = np.zeros((0, total))
    else:
        try:
            # comments=None: BVH has no comments, so a '#' is corrupt data, not a line to skip.
            motion = np.loadtxt(io.StringIO(data_text), dtype=np.float64, ndmin=2, comments=None)
        except ValueError as e:
            raise InputFileError(
                f"{source}: motion data is malformed ({e})", "the file is truncated or corrupt; re-export it"
            ) from None
    if motion.shape[1] != total and motion.size:
        raise InputFileError(
            f"{source}: motion rows have {motion.shape[1]} values but the hierarchy declares {total} channels",
            "the file is corrupt; re-export it",
        )
    if motion.shape[0] < num_frames:
        raise InputFileError(
            f"{source}: header says {num_frames} frames but only {motion.shape[0]} are present",
            "the file is truncated; re-export it",
        )
    motion = motion[:num_frames]
    if not np.all(np.isfinite(motion)):
        raise InputFileError(f"{source}: motion data contains NaN/Inf values", "repair or re-export the file")
    return BvhData(
        names=names,
        parents=parents,
        offsets=np.asarray(offsets, dtype=np.float64),
        channels=channels,
        end_sites=end_sites,
        frame_time=frame_time,
        motion=motion,
        source=source,
        _columns=columns,
    )


# -- SMPL-X <-> BVH --------------------------------------------------------------------------------


def save_bvh(
    motion: Motion, path: str | os.PathLike, *, units: str = "cm", rotation_order: str = "ZXY"
) -> Path:
    """Write `motion` as a BVH of the 55-joint SMPL-X skeleton (atomically)."""
    with atomic_path(path) as tmp:
        tmp.write_text(
            motion_to_bvh_text(motion, units=units, rotation_order=rotation_order), encoding="utf-8"
        )
    return Path(path)


def motion_to_bvh_text(motion: Motion, *, units: str = "cm", rotation_order: str = "ZXY") -> str:
    if units not in UNIT_SCALE:
        raise MotionError(f"unknown BVH units {units!r}", f"use one of {', '.join(UNIT_SCALE)}")
    scale = UNIT_SCALE[units]
    skel = rest_skeleton(motion.betas)
    leaves = [j for j, kids in enumerate(sk.children(skel.parents)) if not kids]
    return hierarchy_bvh_text(
        skel.names,
        skel.parents,
        skel.offsets * scale,
        {j: _end_site_offset(skel, j) * scale for j in leaves},
        axis_angle_to_matrix(local_rotations_flat_hand(motion)),
        {0: (skel.rest_positions[0] + motion.trans) * scale},  # the pelvis rotates about itself
        fps=motion.fps,
        rotation_order=rotation_order,
        digits=6 if units == "cm" else 8,  # micrometre precision either way
    )


def hierarchy_bvh_text(
    names: Sequence[str],
    parents: Sequence[int],
    offsets: np.ndarray,
    end_sites: dict[int, np.ndarray],
    rotations: np.ndarray,
    positions: dict[int, np.ndarray],
    *,
    fps: float,
    rotation_order: str = "ZXY",
    digits: int = 6,
) -> str:
    """A BVH file of any hierarchy: joint 0 is the root, `parents[j]` is joint j's parent (-1 at the root),
    `offsets` (J, 3) and the leaves' `end_sites` in file units, `rotations` (F, J, 3, 3) local
    rotation matrices, and `positions` {joint: (F, 3)} for the joints that get position channels
    (the root's absolute position; another joint's replaces its OFFSET for the frame). Offsets
    and positions are written with `digits` decimals, angles with 6 (degrees); values are
    rounded to what is printed, so no "-0.000000" appears."""
    order = rotation_order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise MotionError(f"rotation order must be a permutation of XYZ, got {rotation_order!r}")
    kids = sk.children(list(parents))
    rot_channels = " ".join(f"{a}rotation" for a in order)
    out = ["HIERARCHY"]

    def fmt(v: np.ndarray) -> str:
        return " ".join(f"{x:.{digits}f}" for x in np.round(np.asarray(v, dtype=np.float64), digits) + 0.0)

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        out.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {names[j]}")
        out.append(f"{pad}{{")
        out.append(f"{pad}\tOFFSET {fmt(offsets[j])}")
        if j in positions:
            out.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            out.append(f"{pad}\tCHANNELS 3 {rot_channels}")
        for c in kids[j]:
            emit(c, depth + 1)
        if not kids[j]:
            out.append(f"{pad}\tEnd Site")
            out.append(f"{pad}\t{{")
            out.append(f"{pad}\t\tOFFSET {fmt(end_sites[j])}")
            out.append(f"{pad}\t}}")
        out.append(f"{pad}}}")

    emit(0, 0)
    file_order = _depth_first(kids)
    euler = np.degrees(matrix_to_euler(rotations[:, file_order], order))  # (F, J, 3)
    columns, formats = [], []
    for k, j in enumerate(file_order):
        if j in positions:
            columns.append(np.round(positions[j], digits))
            formats += [f"%.{digits}f"] * 3
        columns.append(np.round(euler[:, k], 6))
        formats += ["%.6f"] * 3
    frames = np.concatenate(columns, axis=1) + 0.0  # -0.0 + 0.0 is +0.0
    out += ["MOTION", f"Frames: {rotations.shape[0]}", f"Frame Time: {1.0 / fps:.10f}"]
    buf = io.StringIO()
    np.savetxt(buf, frames, fmt=formats)
    return "\n".join(out) + "\n" + buf.getvalue()


def _depth_first(kids: list[list[int]]) -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in kids[j]:
            visit(c)

    visit(0)
    return order


def _end_site_offset(skel, j: int) -> np.ndarray:
    """A short bone continuing the parent->joint direction, so leaves show up in viewers."""
    direction = skel.offsets[j]
    n = np.linalg.norm(direction)
    length = 0.02 if j in sk.LEFT_HAND + sk.RIGHT_HAND else 0.05
    name = skel.names[j]
    if name in ("jaw", "left_eye", "right_eye"):
        return np.array([0.0, 0.0, 0.02])
    if name.endswith("foot"):
        return np.array([0.0, 0.0, 0.06])
    return direction / n * length if n > 1e-6 else np.array([0.0, length, 0.0])


def bvh_to_motion(bvh: BvhData, *, units: str | None = None) -> Motion:
    """Read back a BVH written by `save_bvh` (SMPL-X joint names) into a Motion.

    BVH files of other skeletons need retargeting (the motion library's importer), not this.
    `units` defaults to a guess from the skeleton's height ("cm" if taller than 5 units).
    """
    missing = [n for n in sk.JOINT_NAMES if n not in bvh.names]
    if missing:
        raise InputFileError(
            f"{bvh.source} is not an SMPL-X skeleton (missing joints: {', '.join(missing[:5])}"
            f"{'…' if len(missing) > 5 else ''})",
            "import other skeletons with a joint map (motion library importer)",
        )
    if bvh.num_frames == 0:
        raise InputFileError(f"{bvh.source} has zero frames", "export a BVH with at least one frame")
    if units is None:
        rest = bvh.rest_positions()
        units = "cm" if np.ptp(rest[:, 1]) > 5.0 else "m"
    scale = UNIT_SCALE[units]
    index = [bvh.joint_index(n) for n in sk.JOINT_NAMES]
    local = bvh.local_rotations()[:, index]
    poses = from_flat_hand(matrix_to_axis_angle(local))
    root = bvh.joint_index(sk.JOINT_NAMES[0])
    root_pos = bvh.local_translations()[:, root] / scale
    rest_pelvis = bvh.offsets[root] / scale
    return Motion(
        poses=poses.reshape(bvh.num_frames, sk.POSE_DIM),
        trans=root_pos - rest_pelvis,
        betas=np.zeros(10),
        fps=bvh.fps,
        metadata={"source": bvh.source},
    )


def load_bvh_motion(path: str | os.PathLike) -> Motion:
    return bvh_to_motion(read_bvh(path))
