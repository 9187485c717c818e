"""Retargeting BVH skeletons onto SMPL-X, phase estimation, and the library importers.

Sources are synthesised from known SMPL-X motion: a BVH of another skeleton (other names, rest
pose, proportions, units, axes, frame rate) whose bones point exactly where the SMPL-X bones do.
Retargeting it back must reproduce the bone directions (and, where the rest poses differ by a
rotation the retargeter can see, the poses themselves).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from gesticulator.errors import InputFileError
from gesticulator.io import save_npz
from gesticulator.io.bvh import read_bvh
from gesticulator.library import CatalogError, Library
from gesticulator.library.importers import (
    import_bvh_dir,
    import_npz_clip,
    label_key,
    parse_clip_name,
    read_metadata_table,
)
from gesticulator.library.phases import estimate_handedness, estimate_phases
from gesticulator.library.retarget import (
    Retargeter,
    available_joint_maps,
    bone_direction_errors,
    load_joint_map,
    retarget_bvh,
)
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import forward_kinematics, rest_skeleton
from gesticulator.motion.rotations import axis_angle_to_matrix, matrix_to_euler
from gesticulator.types import Motion
from tests.conftest import smooth_motion

ZEGGS_BVH = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "zeggs_sample" / "067_Speech_2_x_1_0.bvh"
)
J = sk.JOINT_INDEX
BODY_AND_HANDS = [n for n in sk.JOINT_NAMES if n not in ("jaw", "left_eye", "right_eye")]


# -- synthetic sources ---------------------------------------------------------------------------------


def rot(axis: str, degrees: float) -> np.ndarray:
    a = np.zeros(3)
    a["xyz".index(axis)] = np.radians(degrees)
    return axis_angle_to_matrix(a)


def axes_matrix(up: str, forward: str) -> np.ndarray:
    """C: source coordinates -> SMPL-X coordinates, for a source with these up/forward axes."""

    def vec(s):
        v = np.zeros(3)
        v["XYZ".index(s[-1])] = -1.0 if s.startswith("-") else 1.0
        return v

    u, f = vec(up), vec(forward)
    return np.stack([np.cross(u, f), u, f])


def bvh_text(names, parents, offsets, local, root_pos, fps, *, root_order="ZYX", joint_order="ZYX",
             root_channels=None, digits=6) -> str:  # fmt: skip
    """A BVH of any skeleton: local rotations (F, J, 3, 3), root positions (F, 3), offsets (J, 3)."""
    kids = [[] for _ in names]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    lines, order = ["HIERARCHY"], []

    def emit(j, depth):
        pad = "  " * depth
        order.append(j)
        lines.append(f"{pad}{'ROOT' if parents[j] < 0 else 'JOINT'} {names[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET " + " ".join(f"{v:.{digits}f}" for v in offsets[j]))
        if parents[j] < 0:
            chans = root_channels or (
                ["Xposition", "Yposition", "Zposition"] + [f"{a}rotation" for a in root_order]
            )
            lines.append(f"{pad}  CHANNELS {len(chans)} " + " ".join(chans))
        else:
            lines.append(f"{pad}  CHANNELS 3 " + " ".join(f"{a}rotation" for a in joint_order))
        for c in kids[j]:
            emit(c, depth + 1)
        if not kids[j]:
            end = (
                offsets[j]
                / max(np.linalg.norm(offsets[j]), 1e-9)
                * 0.3
                * max(np.linalg.norm(offsets[j]), 1.0)
            )
            lines.extend(
                [
                    f"{pad}  End Site",
                    pad + "  {",
                    f"{pad}    OFFSET " + " ".join(f"{v:.6f}" for v in end),
                    pad + "  }",
                ]
            )
        lines.append(pad + "}")

    emit(0, 0)
    rows = []
    for j in order:
        if parents[j] < 0:
            chans = root_channels or (
                ["Xposition", "Yposition", "Zposition"] + [f"{a}rotation" for a in root_order]
            )
            rot_order = "".join(c[0] for c in chans if c.endswith("rotation"))
            eul = np.degrees(matrix_to_euler(local[:, j], rot_order))
            cols = []
            for c in chans:
                cols.append(
                    root_pos[:, "XYZ".index(c[0])]
                    if c.endswith("position")
                    else eul[:, rot_order.index(c[0])]
                )
            rows.append(np.stack(cols, axis=1))
        else:
            rows.append(np.degrees(matrix_to_euler(local[:, j], joint_order)))
    data = np.concatenate(rows, axis=1)
    lines += ["MOTION", f"Frames: {len(data)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in data]
    return "\n".join(lines) + "\n"


def make_source(motion: Motion, names: dict[str, str], *, rest_rot=None, scale=100.0, up="Y", forward="Z",
                bone_scale=None, extra=None, zero_end=None, root_order="ZYX", joint_order="ZYX",
                root_channels=None, order=None) -> str:  # fmt: skip
    """A BVH whose bones follow `motion`'s SMPL-X bones: joints `names` (SMPL-X name -> source
    name), rest pose = SMPL-X T-pose with subtrees turned by `rest_rot` (SMPL-X name -> 3x3),
    bones scaled by `bone_scale` (name -> factor), in `scale` units per metre and the given axes.
    `extra` = (name, smplx child, rotation fn t->3x3 list): an unmapped joint inserted above that
    child with its own rotation. `zero_end`: names of zero-length leaf joints to add (ZEGGS-style).
    """
    rest_rot, bone_scale = rest_rot or {}, bone_scale or {}
    fk = forward_kinematics(motion)
    g, p_world = fk.rotations, fk.positions
    rest = rest_skeleton(motion.betas).rest_positions
    mapped = [j for j in range(sk.NUM_JOINTS) if sk.JOINT_NAMES[j] in names]
    rank = {n: i for i, n in enumerate(order or sk.JOINT_NAMES)}
    src_parent, cum, q, world = {}, {}, {}, {}
    for j in mapped:
        p = sk.PARENTS[j]
        while p >= 0 and sk.JOINT_NAMES[p] not in names:
            p = sk.PARENTS[p]
        src_parent[j] = p
        qj = rest_rot.get(sk.JOINT_NAMES[j], np.eye(3))
        cum[j] = qj if p < 0 else cum[p] @ qj
        q[j] = (
            rest[j] if p < 0 else q[p] + cum[p] @ (rest[j] - rest[p]) * bone_scale.get(sk.JOINT_NAMES[j], 1.0)
        )
        world[j] = g[:, j] @ cum[j].T
    # Source joint list in file order (children sorted by `order`).
    kids = {
        j: sorted((c for c in mapped if src_parent[c] == j), key=lambda c: rank.get(sk.JOINT_NAMES[c], 999))
        for j in mapped
    }
    seq = []

    def visit(j):
        seq.append(j)
        for c in kids[j]:
            visit(c)

    visit(mapped[0])
    idx = {j: i for i, j in enumerate(seq)}
    src_names = [names[sk.JOINT_NAMES[j]] for j in seq]
    parents = [-1 if src_parent[j] < 0 else idx[src_parent[j]] for j in seq]
    positions = [q[j] for j in seq]
    worlds = [world[j] for j in seq]
    n = motion.num_frames
    if extra is not None:
        ename, child, efn = extra
        c = idx[J[child]]
        p = parents[c]
        k = len(src_names)
        src_names.append(ename)
        parents.append(p)
        positions.append(0.5 * (positions[p] + positions[c]))
        worlds.append(worlds[p] @ np.stack([efn(t) for t in range(n)]))
        parents[c] = k
    for zname, of in zero_end or []:
        src_names.append(zname)
        parents.append(idx[J[of]])
        positions.append(positions[idx[J[of]]])
        worlds.append(worlds[idx[J[of]]])
    # Reorder so parents precede children (appended joints may be parents of earlier ones).
    file_order, placed = [], set()

    def place(i):
        if i in placed:
            return
        if parents[i] >= 0:
            place(parents[i])
        placed.add(i)
        file_order.append(i)

    for i in range(len(src_names)):
        place(i)
    new = {old: k for k, old in enumerate(file_order)}
    src_names = [src_names[i] for i in file_order]
    parents = [-1 if parents[i] < 0 else new[parents[i]] for i in file_order]
    positions = np.asarray([positions[i] for i in file_order])
    worlds = np.stack([worlds[i] for i in file_order], axis=1)  # (F, J, 3, 3)
    # Floor: the rest skeleton stands on y = 0.
    lift = -positions[:, 1].min()
    c_mat = axes_matrix(up, forward)
    local = np.empty_like(worlds)
    offsets = np.empty_like(positions)
    for j, p in enumerate(parents):
        local[:, j] = worlds[:, j] if p < 0 else np.swapaxes(worlds[:, p], -1, -2) @ worlds[:, j]
        offsets[j] = positions[j] + [0, lift, 0] if p < 0 else positions[j] - positions[p]
    local = c_mat.T @ local @ c_mat
    offsets = offsets @ c_mat * scale  # rows: C^T x
    root_pos = (p_world[:, 0] + [0, lift, 0]) @ c_mat * scale
    return bvh_text(src_names, parents, offsets, local, root_pos, motion.fps, root_order=root_order,
                    joint_order=joint_order, root_channels=root_channels)  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def identity_map(prefix="J_", joints=BODY_AND_HANDS, **extra) -> dict:
    return {"name": "test", "joints": {n: f"{prefix}{n}" for n in joints}, **extra}


def primary_errors(rt: Retargeter, motion=None, frames=None) -> dict[str, np.ndarray]:
    errs = rt.bone_errors(motion, frames)
    return {b.name: errs[b.name] for b in rt.bones() if not b.folded}


def pose_error(a: Motion, b: Motion, joints) -> float:
    ra = axis_angle_to_matrix(a.rotations[:, joints])
    rb = axis_angle_to_matrix(b.rotations[:, joints])
    cos = (np.trace(np.swapaxes(ra, -1, -2) @ rb, axis1=-2, axis2=-1) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max())


A_POSE = {"left_shoulder": rot("z", -45), "right_shoulder": rot("z", 45)}


@pytest.fixture(scope="module")
def source_motion() -> Motion:
    return smooth_motion(24, seed=3)


# -- retargeting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        dict(id="tpose_cm"),
        dict(id="apose_cm", rest_rot=A_POSE),
        dict(id="apose_m_zup", rest_rot=A_POSE, scale=1.0, up="Z", forward="-Y"),
        dict(id="palm_forward_hands", rest_rot={"left_wrist": rot("x", 70), "right_wrist": rot("x", -50)}),
    ],
    ids=lambda c: c["id"],
)
def test_retarget_recovers_motion(tmp_path, source_motion, case):
    opts = {k: v for k, v in case.items() if k != "id"}
    file = write(
        tmp_path / "src.bvh", make_source(source_motion, {n: f"J_{n}" for n in BODY_AND_HANDS}, **opts)
    )
    jmap = load_joint_map(identity_map())  # units, up and forward auto-detected
    rt = Retargeter(read_bvh(file), jmap, betas=source_motion.betas)
    assert rt.unit_scale == pytest.approx(0.01 if opts.get("scale", 100) == 100 else 1.0)
    out = rt.motion()
    errs = primary_errors(rt, out)
    assert len(errs) == 39  # every mapped joint but the leaves (head, feet, finger tips)
    worst = max(float(e.max()) for e in errs.values())
    assert worst < 0.05, worst
    # The rest poses differ by rotations the two-direction correction recovers exactly.
    body = [J[n] for n in BODY_AND_HANDS]
    assert pose_error(out, source_motion, body) < 0.05
    # Root translation: the source's, standing on the floor.
    drift = out.trans - source_motion.trans
    assert np.ptp(drift, axis=0).max() < 1e-4
    assert abs(drift[0, 0]) < 1e-4 and abs(drift[0, 2]) < 1e-4


def test_retarget_other_proportions_and_tilted_apose(tmp_path, source_motion):
    """A-pose arms also swung 20° forward, palms turned, longer arms, shorter legs: bone directions
    still match (the twist is then the corrector's best guess, so poses are not compared)."""
    rest_rot = {"left_shoulder": rot("y", -20) @ rot("z", -40), "right_shoulder": rot("y", 20) @ rot("z", 40),
                "left_elbow": rot("x", 30), "left_thumb1": rot("y", 25)}  # fmt: skip
    bone_scale = {n: 1.3 for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist")}
    bone_scale |= {n: 0.8 for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")}
    text = make_source(
        source_motion, {n: f"J_{n}" for n in BODY_AND_HANDS}, rest_rot=rest_rot, bone_scale=bone_scale
    )
    file = write(tmp_path / "src.bvh", text)
    errs = bone_direction_errors(file, identity_map())
    worst = max(float(e.max()) for e in errs.values())
    assert worst < 0.05, worst


def test_folded_source_joint_and_zero_length_ends(tmp_path, source_motion):
    """An unmapped source joint (like ZEGGS's Spine3) is folded into the next mapped joint; zero-length
    *End joints do not disturb the rest analysis."""
    wobble = lambda t: rot("x", 15 * np.sin(t / 3)) @ rot("z", 10 * np.cos(t / 4))  # noqa: E731
    text = make_source(source_motion, {n: f"J_{n}" for n in BODY_AND_HANDS}, extra=("J_spine4", "neck", wobble),
                       zero_end=[("J_handEnd", "left_wrist"), ("J_headEnd", "head")])  # fmt: skip
    rt = Retargeter(
        read_bvh(write(tmp_path / "src.bvh", text)), load_joint_map(identity_map()), betas=source_motion.betas
    )
    bones = {b.name: b for b in rt.bones()}
    assert bones["spine3->neck"].folded == ("J_spine4",)
    errs = rt.bone_errors()
    exact = [n for n, b in bones.items() if not b.folded]
    assert max(float(errs[n].max()) for n in exact) < 0.05
    # The folded joint's rotation lands in SMPL-X's neck: head and arms still follow the source.
    assert errs["neck->head"].max() < 0.05


def mixamo_names(prefix: str, fingers: bool = True) -> dict[str, str]:
    jm = load_joint_map("mixamo")
    names = dict(jm.joints) | (dict(jm.optional) if fingers else {})
    return {k: prefix + v.split(":")[-1] for k, v in names.items()}


@pytest.mark.parametrize("prefix", ["mixamorig:", ""])
def test_mixamo_named_with_and_without_prefix(tmp_path, source_motion, prefix):
    text = make_source(source_motion, mixamo_names(prefix), rest_rot=A_POSE)
    errs = bone_direction_errors(write(tmp_path / "mixamo.bvh", text), "mixamo")
    assert "left_index1->left_index2" in errs
    assert max(float(e.max()) for e in errs.values()) < 0.05


def test_mixamo_without_fingers_keeps_relaxed_hands(tmp_path, source_motion):
    text = make_source(source_motion, mixamo_names("mixamorig:", fingers=False))
    file = write(tmp_path / "mixamo.bvh", text)
    motion = retarget_bvh(file, "mixamo", fps=None)
    assert np.abs(motion.rotations[:, list(sk.LEFT_HAND + sk.RIGHT_HAND)]).max() == 0.0
    errs = bone_direction_errors(file, "mixamo")
    assert "left_wrist->left_middle1" not in errs
    assert max(float(e.max()) for e in errs.values()) < 0.05


def test_mixamo_partial_fingers_is_an_error(tmp_path, source_motion):
    names = mixamo_names("mixamorig:")
    del names["left_ring2"], names["left_ring3"]
    file = write(tmp_path / "mixamo.bvh", make_source(source_motion, names))
    with pytest.raises(InputFileError) as e:
        retarget_bvh(file, "mixamo")
    assert "mixamorig:LeftHandRing2" in str(e.value) and "\n" not in str(e.value)


def seg_source(motion: Motion, **kw) -> str:
    jm = load_joint_map("seg51")
    return make_source(
        motion, jm.joints, order=list(jm.joints), root_channels=["Xposition", "Yposition", "Zposition",
        "Zrotation", "Xrotation", "Yrotation"], joint_order="ZXY", **kw,
    )  # fmt: skip


def test_seg_named_60fps(tmp_path):
    motion = smooth_motion(40, seed=5, fps=60.0)
    file = write(tmp_path / "THUMB_UP-1.bvh", seg_source(motion, rest_rot=A_POSE))
    bvh = read_bvh(file)
    assert bvh.fps == 60 and bvh.num_joints == 51
    assert bvh.names[:6] == ["Hips", "Chest", "Chest2", "Neck", "Head", "LeftCollar"]
    assert bvh.names[9:12] == ["LeftFinger0", "LeftFinger01", "LeftFinger02"]
    assert bvh.names[-8:] == [
        "LeftHip",
        "LeftKnee",
        "LeftAnkle",
        "LeftToe",
        "RightHip",
        "RightKnee",
        "RightAnkle",
        "RightToe",
    ]
    assert bvh.channels[0][3:] == ["Zrotation", "Xrotation", "Yrotation"]
    errs = bone_direction_errors(bvh, "seg51")
    assert "right_thumb1->right_thumb2" in errs
    assert max(float(e.max()) for e in errs.values()) < 0.05
    out = retarget_bvh(bvh, "seg51")
    assert out.fps == 30 and out.num_frames == 21  # 39 frame steps at 60 fps cover 19.5 at 30


def test_unknown_joint_names_one_line_with_suggestions(tmp_path, source_motion):
    file = write(tmp_path / "src.bvh", make_source(source_motion, {n: f"J_{n}" for n in BODY_AND_HANDS}))
    jmap = identity_map()
    jmap["joints"]["left_elbow"] = "J_left_elbw"
    jmap["joints"]["head"] = "Kopf"
    with pytest.raises(InputFileError) as e:
        retarget_bvh(file, jmap)
    msg = str(e.value)
    assert "\n" not in msg and "J_left_elbw (closest: J_left_elbow" in msg and "Kopf" in msg


def test_bad_inputs_one_line(tmp_path, source_motion):
    bad = write(tmp_path / "bad.bvh", "HIERARCHY\nROOT Hips\n{\n OFFSET 0 0\n")
    with pytest.raises(InputFileError) as e:
        retarget_bvh(bad, "mixamo")
    assert "bad.bvh" in str(e.value) and "\n" not in str(e.value)
    file = write(tmp_path / "src.bvh", make_source(source_motion, mixamo_names("mixamorig:")))
    with pytest.raises(InputFileError, match="empty"):
        retarget_bvh(file, "mixamo", start=0.5, end=0.5)
    with pytest.raises(InputFileError, match="not found"):
        retarget_bvh(file, "no_such_map")
    with pytest.raises(InputFileError, match="unknown SMPL-X joint"):
        load_joint_map({"joints": {"pelvis": "Hips", "left_elbo": "X"}})


def test_shipped_joint_maps_load():
    assert {"mixamo", "beat_zeggs75", "seg51"} <= set(available_joint_maps())
    for name in ("mixamo", "beat_zeggs75", "seg51"):
        jm = load_joint_map(name)
        assert len(jm.all_joints()) == 22 + 30 - (1 if name == "seg51" else 0)


def test_zeggs_sample_arm_bones(capsys):
    """Real data: the BEAT/ZEGGS 75-joint skeleton, 10-14 s. Arm bones follow the source within a
    fraction of a degree (the folded Spine3/Neck1 only bend the neck bones a little)."""
    if not ZEGGS_BVH.is_file():
        pytest.skip(f"research data not present: {ZEGGS_BVH}")
    errs = bone_direction_errors(ZEGGS_BVH, "beat_zeggs75", start=10.0, end=14.0)
    # Independently of the retargeter's own bookkeeping: BvhData's FK against SMPL-X FK.
    bvh = read_bvh(ZEGGS_BVH)
    motion = retarget_bvh(bvh, "beat_zeggs75", start=10.0, end=14.0, fps=None)
    src = bvh.world_positions()[300:420]
    out = forward_kinematics(motion).positions
    for a, b, sa, sb in (("right_shoulder", "right_elbow", "RightArm", "RightForeArm"),
                         ("left_elbow", "left_wrist", "LeftForeArm", "LeftHand"),
                         ("left_index2", "left_index3", "LeftHandIndex2", "LeftHandIndex3")):  # fmt: skip
        u = out[:, J[b]] - out[:, J[a]]
        v = src[:, bvh.names.index(sb)] - src[:, bvh.names.index(sa)]
        cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.1
    arm = [
        f"{s}_{a}->{s}_{b}"
        for s in ("left", "right")
        for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "middle1"))
    ]
    table = {n: (float(errs[n].mean()), float(errs[n].max())) for n in arm}
    with capsys.disabled():
        print(
            "\nZEGGS arm bone direction error (deg, mean/max):",
            {k: f"{m:.3f}/{x:.3f}" for k, (m, x) in table.items()},
        )
    assert max(m for m, _ in table.values()) < 1.0
    assert max(x for _, x in table.values()) < 2.0
    assert errs["neck->head"].mean() < 10.0
    motion = retarget_bvh(ZEGGS_BVH, "beat_zeggs75", start=10.0, end=14.0)
    assert motion.fps == 30 and motion.num_frames == 120
    feet = forward_kinematics(motion).positions[:, [J["left_foot"], J["right_foot"]], 1]
    assert -0.1 < feet.min() < 0.15  # standing on the floor


# -- phases ---------------------------------------------------------------------------------------------


def arm_pose(side="right", sh=(0.0, 0.0, 0.0), el=(0.0, 0.0, 0.0)) -> np.ndarray:
    p = np.zeros((55, 3))
    p[J["left_shoulder"]] = [0, 0, -1.2]
    p[J["right_shoulder"]] = [0, 0, 1.2]
    sign = 1 if side == "right" else -1
    if any(sh) or any(el):
        p[J[f"{side}_shoulder"]] = [sh[0], sign * sh[1], sign * sh[2]]
        p[J[f"{side}_elbow"]] = [el[0], sign * el[1], sign * el[2]]
    return p


REST = arm_pose()
PRE = arm_pose(sh=(0, -0.6, 0.6), el=(0, -1.2, 0))
APEX = arm_pose(sh=(0, -1.1, 0.1), el=(0, -0.4, 0))


def keyframed(keys, duration, fps=30.0) -> Motion:
    """Poses interpolated (smoothstep) between (time, (55, 3) pose) keys; constant outside."""
    t = np.arange(int(round(duration * fps)) + 1) / fps
    times = np.array([k[0] for k in keys])
    out = np.empty((len(t), 55, 3))
    for i, tt in enumerate(t):
        k = int(np.clip(np.searchsorted(times, tt, side="right") - 1, 0, len(keys) - 1))
        if k == len(keys) - 1:
            out[i] = keys[-1][1]
            continue
        (t0, p0), (t1, p1) = keys[k], keys[k + 1]
        u = (tt - t0) / (t1 - t0)
        out[i] = p0 + (p1 - p0) * (u * u * (3 - 2 * u))
    return Motion(poses=out.reshape(len(t), 165), trans=np.zeros((len(t), 3)), fps=fps)


def gesture_clip(side="right", fps=30.0, scale=1.0) -> Motion:
    rest, pre, apex = (
        arm_pose(side),
        arm_pose(side, (0, -0.6, 0.6), (0, -1.2, 0)),
        arm_pose(side, (0, -1.1, 0.1), (0, -0.4, 0)),
    )
    pre, apex = rest + (pre - rest) * scale, rest + (apex - rest) * scale
    return keyframed(
        [(0, rest), (0.3, rest), (0.7, pre), (0.8, pre), (1.1, apex), (1.5, apex), (2.1, rest), (2.5, rest)],
        2.5,
        fps,
    )


def assert_marks(phases, expected, tol=0.1):
    got = phases.model_dump()
    for k, v in expected.items():
        assert abs(got[k] - v) <= tol, (k, got, expected)


def test_phases_prep_stroke_hold_retract():
    assert_marks(
        estimate_phases(gesture_clip(), ["right_arm", "right_hand"]),
        dict(prep_start=0.3, stroke_start=0.75, apex=1.1, stroke_end=1.5, retract_end=2.1),
    )


def test_phases_single_movement_with_hold_at_60fps():
    m = keyframed([(0, REST), (0.4, REST), (1.0, APEX), (1.8, APEX), (2.3, REST), (2.6, REST)], 2.6, fps=60)
    ph = estimate_phases(m, ["right_arm"])
    assert_marks(ph, dict(prep_start=0.4, apex=1.0, stroke_end=1.8, retract_end=2.3))
    assert 0.4 < ph.stroke_start < 0.75  # the rise of the one peak


def test_phases_two_strokes_apex_at_the_extreme():
    mid = REST + 0.5 * (APEX - REST)
    m = keyframed([(0, REST), (0.2, REST), (0.5, APEX), (0.8, mid), (1.1, APEX + 0.15 * (APEX - REST)),
                   (1.4, APEX), (2.0, REST), (2.3, REST)], 2.3)  # fmt: skip
    ph = estimate_phases(m, ["right_arm"])
    assert_marks(ph, dict(prep_start=0.2, stroke_start=0.8, apex=1.1, retract_end=2.0))


def test_phases_left_hand_and_still_clip():
    ph = estimate_phases(gesture_clip("left"), ["left_arm", "left_hand"])
    assert_marks(ph, dict(prep_start=0.3, apex=1.1, stroke_end=1.5, retract_end=2.1))
    still = estimate_phases(Motion.rest(30), ["right_arm"])
    assert still.prep_start == 0 and still.retract_end == pytest.approx(29 / 30, abs=1e-3)
    assert estimate_handedness(gesture_clip("left"))[0] == "left"
    both = gesture_clip("left")
    right = gesture_clip("right")
    for j in (J["right_shoulder"], J["right_elbow"]):
        both.poses[:, 3 * j : 3 * j + 3] = right.rotations[:, j]
    assert estimate_handedness(both) == ("both", ["left_arm", "left_hand", "right_arm", "right_hand"])
    assert estimate_handedness(Motion.rest(20)) == ("none", ["head"])


# -- importers ------------------------------------------------------------------------------------------


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


SEG_COLUMNS = [
    "Semantics-Aware Index",
    "Copyright Source",
    "Label",
    "Description",
    "Contextual Meaning",
    "Example",
]
SEG_ROWS = [
    ["1", "SeG dataset (CC BY-NC 4.0)", "THUMB UP", "Right fist raised, thumb up.", "approval, something is good",
     "That went really well.\nGreat job!"],
    ["2", "SeG dataset (CC BY-NC 4.0)", "I'M SORRY", "Left hand on the chest.", "apology", "I'm so sorry."],
    ["3", "SeG dataset (CC BY-NC 4.0)", "UNUSED LABEL", "not in the folder", "nothing", ""],
]  # fmt: skip


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seg_clips")
    right = gesture_clip("right", fps=60)
    right_small = gesture_clip("right", fps=60, scale=0.8)
    left = gesture_clip("left", fps=60)
    write(folder / "THUMB_UP-1.bvh", seg_source(right))
    write(folder / "THUMB_UP-3.bvh", seg_source(right_small, rest_rot=A_POSE))
    write(folder / "I'M_SORRY-2.bvh", seg_source(left))
    write(folder / "WAVE.bvh", seg_source(right))
    return folder


def write_csv(path: Path, rows=SEG_ROWS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(SEG_COLUMNS)
        w.writerows(rows)
    return path


def write_xlsx(path: Path, rows=SEG_ROWS) -> Path:
    openpyxl = pytest.importorskip("openpyxl")

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(SEG_COLUMNS)
    for r in rows:
        ws.append([int(r[0]), *r[1:]])
    wb.save(path)
    return path


def test_metadata_table_not_examples_column(tmp_path):
    table = tmp_path / "meta.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Label", "Example", "Counter-examples"])
        w.writerow(["BIG", "It was huge.", "I'm a big fan of jazz.|No big deal."])
        w.writerow(["BIG", "", "Big Ben was under scaffolding."])
    row = read_metadata_table(table)["big"]
    assert row.examples == ["It was huge."]
    assert row.not_examples == ["I'm a big fan of jazz.", "No big deal.", "Big Ben was under scaffolding."]


def test_names_and_ids():
    assert parse_clip_name("THUMB_UP-3") == ("THUMB_UP", 3)
    assert parse_clip_name("WAVE") == ("WAVE", None)
    assert label_key("I'M_SORRY") == label_key("I'M SORRY") == "im_sorry"
    assert label_key("THUMB UP") == "thumb_up"
    assert label_key("3 TIMES") == "g_3_times"


@pytest.mark.parametrize("table_kind", ["csv", "xlsx"])
def test_import_folder_with_metadata_table(tmp_path, clip_folder, table_kind):
    table = write_csv(tmp_path / "meta.csv") if table_kind == "csv" else write_xlsx(tmp_path / "meta.xlsx")
    assert set(read_metadata_table(table)) == {"thumb_up", "im_sorry", "unused_label"}
    lib_root = tmp_path / "lib"
    result = import_bvh_dir(clip_folder, "seg51", lib_root, table)
    by_id = {g.id: g for g in result}
    assert set(by_id) == {"thumb_up", "im_sorry", "wave"}
    thumb = by_id["thumb_up"]
    assert [t.id for t in thumb.takes] == ["t1", "t3"]
    assert thumb.description == "Right fist raised, thumb up."
    assert thumb.meaning == "approval, something is good"
    assert thumb.examples == ["That went really well.", "Great job!"]
    assert thumb.triggers[:2] == ["thumb up", "thumb"]
    assert thumb.category == "emblem"
    assert thumb.handedness == "right" and thumb.body_parts == ["right_arm", "right_hand"]
    assert thumb.takes[0].license == "SeG dataset (CC BY-NC 4.0)"
    assert "THUMB_UP-1.bvh" in thumb.takes[0].source
    assert thumb.takes[1].phases is not None  # the second take's own timing
    assert_marks(thumb.phases, dict(prep_start=0.3, apex=1.1, stroke_end=1.5, retract_end=2.1), tol=0.15)
    sorry = by_id["im_sorry"]
    assert [t.id for t in sorry.takes] == ["t2"] and sorry.handedness == "left"
    assert sorry.meaning == "apology" and sorry.examples == ["I'm so sorry."]
    wave = by_id["wave"]  # no row, no take number
    assert [t.id for t in wave.takes] == ["t1"] and wave.description == "Wave" and wave.meaning == "Wave"
    assert any("WAVE.bvh" in n for n in result.notes)
    # On disk, loadable, clips at 30 fps facing forward from x = z = 0.
    lib = Library.load([lib_root], include_default=False)
    assert set(lib.ids()) == {"thumb_up", "im_sorry", "wave"}
    assert lib.validate() == []
    clip = lib.clip("thumb_up", "t3")
    assert clip.fps == 30 and clip.num_frames == 76
    assert np.abs(clip.trans[0, [0, 2]]).max() < 1e-6


def test_import_without_table_options(tmp_path, clip_folder):
    result = import_bvh_dir(clip_folder, "seg51", tmp_path / "lib", category="iconic", license="CC-BY-4.0",
                            source="my capture session", start=0.2, end=2.4)  # fmt: skip
    thumb = next(g for g in result if g.id == "thumb_up")
    assert thumb.category == "iconic" and thumb.description == "Thumb up" and thumb.meaning == "Thumb up"
    assert thumb.takes[0].license == "CC-BY-4.0" and "my capture session" in thumb.takes[0].source
    clip = Library.load([tmp_path / "lib"], include_default=False).clip("thumb_up")
    assert clip.num_frames in (66, 67)  # 0.2-2.4 s at 30 fps (resampled from 60)


def make_bad_folder(tmp_path: Path, clip_folder: Path, bad_text: str) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for f in clip_folder.glob("*.bvh"):
        (folder / f.name).write_text(f.read_text())
    (folder / "BROKEN-1.bvh").write_text(bad_text)
    return folder


@pytest.fixture
def populated_library(tmp_path, clip_folder) -> Path:
    """A library folder that already holds a gesture (so 'unchanged' means something)."""
    root = tmp_path / "lib"
    import_bvh_dir(clip_folder, "seg51", root)
    return root


def test_bad_file_leaves_library_unchanged(tmp_path, clip_folder, populated_library):
    folder = make_bad_folder(tmp_path, clip_folder, "HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n")
    before = listing(populated_library)
    with pytest.raises(InputFileError) as e:
        import_bvh_dir(folder, "seg51", populated_library, overwrite=True)
    assert "BROKEN-1.bvh" in str(e.value) and "\n" not in str(e.value)
    assert listing(populated_library) == before
    fresh = tmp_path / "fresh"
    with pytest.raises(InputFileError):
        import_bvh_dir(folder, "seg51", fresh)
    assert not fresh.exists()
    # skip_bad: the rest is imported, the bad file reported.
    result = import_bvh_dir(folder, "seg51", fresh, skip_bad=True)
    assert {g.id for g in result} == {"thumb_up", "im_sorry", "wave"}
    assert [Path(f).name for f, _ in result.skipped] == ["BROKEN-1.bvh"]


def test_unknown_joint_names_leave_library_unchanged(tmp_path, clip_folder, populated_library):
    before = listing(populated_library)
    with pytest.raises(InputFileError) as e:
        import_bvh_dir(clip_folder, "mixamo", populated_library, overwrite=True)
    msg = str(e.value)
    assert "not in the file" in msg and "closest" in msg and "\n" not in msg
    assert listing(populated_library) == before


def test_empty_range_and_duplicate_id(tmp_path, clip_folder, populated_library):
    before = listing(populated_library)
    with pytest.raises(InputFileError, match="empty") as e:
        import_bvh_dir(clip_folder, "seg51", populated_library, start=2.0, end=1.0, overwrite=True)
    assert "\n" not in str(e.value)
    with pytest.raises(CatalogError, match="already exists") as e:
        import_bvh_dir(clip_folder, "seg51", populated_library)
    assert "\n" not in str(e.value)
    assert listing(populated_library) == before
    result = import_bvh_dir(clip_folder, "seg51", populated_library, overwrite=True, category="beat")
    assert {g.category for g in result} == {"beat"}


def test_failed_write_rolls_back(tmp_path, clip_folder, populated_library, monkeypatch):
    before = listing(populated_library)
    yaml_before = (populated_library / "gestures" / "thumb_up.yaml").read_text()
    calls = []
    real_add = Library.add

    def flaky_add(self, gesture, clips, **kw):
        calls.append(gesture.id)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_add(self, gesture, clips, **kw)

    monkeypatch.setattr(Library, "add", flaky_add)
    with pytest.raises(OSError):
        import_bvh_dir(clip_folder, "seg51", populated_library, overwrite=True, category="iconic")
    assert listing(populated_library) == before
    assert (populated_library / "gestures" / "thumb_up.yaml").read_text() == yaml_before


def test_import_npz_clip(tmp_path):
    take = gesture_clip("right", fps=60)
    take = take.copy(trans=take.trans + [0.3, 1.2, -0.4])
    npz = save_npz(take, tmp_path / "take.npz")
    root = tmp_path / "lib"
    before = listing(root)
    with pytest.raises(InputFileError, match="empty"):
        import_npz_clip(npz, 1.0, 1.0, "raise_hand", root)
    with pytest.raises(InputFileError, match="after the end"):
        import_npz_clip(npz, 9.0, 10.0, "raise_hand", root)
    assert listing(root) == before
    g = import_npz_clip(npz, 0.1, 2.3, "raise_hand", root, meaning="offering a point", license="CC0")
    assert g.handedness == "right" and g.meaning == "offering a point" and g.description == "Raise hand"
    assert g.triggers == ["raise hand", "raise", "hand"]
    assert_marks(g.phases, dict(prep_start=0.2, apex=1.0, stroke_end=1.4, retract_end=2.0), tol=0.12)
    lib = Library.load([root], include_default=False)
    clip = lib.clip("raise_hand")
    assert clip.fps == 30 and clip.num_frames == 66
    assert np.allclose(clip.trans[0], [0, 1.2, 0], atol=1e-5)
    before = listing(root)
    with pytest.raises(CatalogError, match="already exists") as e:
        import_npz_clip(npz, 0.0, 1.0, "raise_hand", root)
    assert "\n" not in str(e.value)
    assert listing(root) == before
    g2 = import_npz_clip(npz, 0.0, 2.5, "raise_hand", root, append=True)
    assert [t.id for t in g2.takes] == ["a", "b"] and g2.meaning == "offering a point"
    g3 = import_npz_clip(npz, 0.0, 2.5, "raise_hand", root, overwrite=True, description="Hand goes up.")
    assert [t.id for t in g3.takes] == ["a"] and g3.description == "Hand goes up."
    with pytest.raises(CatalogError, match="snake_case"):
        import_npz_clip(npz, 0.0, 1.0, "Raise Hand", root)
