import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gesticulator.errors import MotionError
from gesticulator.motion import (
    BODY_PARTS,
    JOINT_NAMES,
    PARENTS,
    concatenate,
    forward_kinematics,
    joint_mask,
    mirror,
    pose_mask,
    rest_skeleton,
)
from gesticulator.motion import rotations as R
from gesticulator.motion import skeleton as sk
from gesticulator.types import Motion

from .conftest import smooth_motion

J = {n: i for i, n in enumerate(JOINT_NAMES)}


def test_joint_tables_are_consistent():
    assert len(JOINT_NAMES) == len(PARENTS) == 55
    assert all(p < j for j, p in enumerate(PARENTS))  # parents come first
    assert PARENTS[J["left_index1"]] == J["left_wrist"] and PARENTS[J["jaw"]] == J["head"]
    assert len(BODY_PARTS["upper"]) == 13 and len(BODY_PARTS["hands"]) == 30
    assert pose_mask("left_arm").sum() == 12 and joint_mask("lower", "upper").sum() == 22
    with pytest.raises(ValueError, match="unknown body part"):
        joint_mask("tail")


def test_rest_skeleton_is_a_standing_t_pose():
    s = rest_skeleton()
    p = s.rest_positions
    # SMPL-X neutral: pelvis at (0.003, -0.351, 0.012); left side is +X; arms out horizontally.
    np.testing.assert_allclose(p[J["pelvis"]], [0.00312, -0.35141, 0.01204], atol=1e-4)
    assert p[J["left_wrist"], 0] == pytest.approx(0.67, abs=0.01)
    assert p[J["right_wrist"], 0] == pytest.approx(-0.67, abs=0.01)
    assert abs(p[J["left_wrist"], 1] - p[J["left_shoulder"], 1]) < 0.08
    assert 1.45 < p[J["head"], 1] - p[J["left_foot"], 1] < 1.65
    # flat hands: the middle finger continues the forearm's line
    assert p[J["left_middle3"], 0] > p[J["left_middle1"], 0] > p[J["left_wrist"], 0]
    assert abs(p[J["left_middle3"], 1] - p[J["left_wrist"], 1]) < 0.06
    for j, parent in enumerate(PARENTS):
        if parent >= 0:
            np.testing.assert_allclose(s.offsets[j], p[j] - p[parent], atol=1e-12)


def test_betas_change_bone_lengths():
    tall = rest_skeleton(np.array([-2.0] + [0.0] * 9)).rest_positions
    short = rest_skeleton(np.array([2.0] + [0.0] * 9)).rest_positions
    assert np.ptp(tall[:, 1]) != pytest.approx(np.ptp(short[:, 1]), abs=0.02)


def test_fk_of_known_pose_raised_arm():
    """Left shoulder rotated +90 deg about Z: the straight left arm points straight up."""
    m = Motion.rest(1)
    m.poses[0, J["left_shoulder"] * 3 + 2] = np.pi / 2
    m.trans[0] = [0.1, 0.2, 0.3]
    s = rest_skeleton()
    fk = forward_kinematics(m)
    shoulder = s.rest_positions[J["left_shoulder"]] + m.trans[0]
    np.testing.assert_allclose(fk.positions[0, J["left_shoulder"]], shoulder, atol=1e-9)
    arm = s.offsets[J["left_elbow"]] + s.offsets[J["left_wrist"]]
    expected = shoulder + np.array([-arm[1], arm[0], arm[2]])  # Rz(90): (x, y, z) -> (-y, x, z)
    np.testing.assert_allclose(fk.positions[0, J["left_wrist"]], expected, atol=1e-9)
    assert fk.positions[0, J["left_wrist"], 1] - shoulder[1] > 0.45  # the hand is above the shoulder
    # the right arm and the rest of the body do not move
    np.testing.assert_allclose(
        fk.positions[0, J["right_wrist"]], s.rest_positions[J["right_wrist"]] + m.trans[0]
    )
    np.testing.assert_allclose(
        fk.rotations[0, J["left_wrist"]], Rotation.from_euler("z", 90, degrees=True).as_matrix(), atol=1e-12
    )


def test_fk_pelvis_rotation_turns_the_body_about_the_pelvis():
    m = Motion.rest(1)
    m.poses[0, 1] = np.pi  # 180 deg about Y: the figure faces -Z
    fk = forward_kinematics(m)
    rest = rest_skeleton().rest_positions
    np.testing.assert_allclose(fk.positions[0, 0], rest[0], atol=1e-9)  # the pelvis stays put
    assert fk.positions[0, J["left_wrist"], 0] < -0.6  # left hand now on -X


def test_fk_matches_a_plain_hierarchy_walk(motion):
    """mannequin-x FK (with the mean hand and face joints) equals a textbook FK over our tables."""
    s = rest_skeleton(motion.betas)
    local = R.axis_angle_to_matrix(motion.rotations.astype(np.float64).copy())
    flat = motion.rotations.astype(np.float64).copy()
    flat[:, 25:] += sk.hand_mean()
    local = R.axis_angle_to_matrix(flat)
    T = motion.num_frames
    rot = np.zeros((T, 55, 3, 3))
    pos = np.zeros((T, 55, 3))
    for j, p in enumerate(PARENTS):
        if p < 0:
            rot[:, j] = local[:, j]
            pos[:, j] = s.rest_positions[0] + motion.trans
        else:
            rot[:, j] = rot[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + rot[:, p] @ s.offsets[j]
    fk = forward_kinematics(motion)
    np.testing.assert_allclose(fk.positions, pos, atol=1e-6)
    np.testing.assert_allclose(fk.rotations, rot, atol=1e-6)


def test_rotation_conversions_round_trip():
    rng = np.random.default_rng(1)
    aa = rng.normal(size=(200, 3))
    aa *= (rng.uniform(0, 3.0, size=200) / np.linalg.norm(aa, axis=1))[:, None]
    m = R.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(m, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(R.matrix_to_axis_angle(m), aa, atol=1e-9)
    np.testing.assert_allclose(R.quat_to_axis_angle(R.axis_angle_to_quat(aa)), aa, atol=1e-9)
    q = R.axis_angle_to_quat(aa, convention="xyzw")
    assert np.allclose(np.abs(np.sum(q * Rotation.from_rotvec(aa).as_quat(), axis=1)), 1.0)
    np.testing.assert_allclose(R.sixd_to_axis_angle(R.axis_angle_to_sixd(aa)), aa, atol=1e-9)
    e = R.matrix_to_euler(m, "ZXY")
    np.testing.assert_allclose(e, Rotation.from_matrix(m).as_euler("ZXY"), atol=1e-9)
    np.testing.assert_allclose(R.euler_to_matrix(e, "ZXY"), m, atol=1e-12)
    assert R.angle_between(aa, aa).max() < 1e-6


def test_rotations_work_on_torch_tensors():
    torch = pytest.importorskip("torch")
    aa = torch.tensor([[0.1, -0.4, 0.3]], dtype=torch.float64)
    d6 = R.axis_angle_to_sixd(aa)
    assert isinstance(d6, torch.Tensor) and d6.shape == (1, 6)
    assert torch.allclose(R.sixd_to_axis_angle(d6), aa, atol=1e-9)


def test_quat_continuity_removes_sign_flips():
    q = np.array([[1.0, 0, 0, 0], [-0.99, -0.1, 0, 0], [0.98, 0.2, 0, 0]])
    out = R.quat_continuity(q)
    assert np.all(np.sum(out[1:] * out[:-1], axis=1) > 0)


def test_resample_keeps_duration_and_interpolates_by_slerp():
    m = Motion.rest(31, fps=30)
    angles = np.linspace(0, np.pi / 2, 31)
    m.poses[:, J["left_elbow"] * 3 + 1] = angles
    m.trans[:, 0] = np.linspace(0, 1, 31)
    r = m.resample(60)
    assert r.num_frames == 61 and r.fps == 60
    assert r.duration == pytest.approx(m.duration + 1 / 60 - 1 / 30 * 0.5, abs=0.02)
    np.testing.assert_allclose(r.poses[1, J["left_elbow"] * 3 + 1], angles[0] / 2 + angles[1] / 2, atol=1e-9)
    np.testing.assert_allclose(r.trans[-1], m.trans[-1], atol=1e-12)
    back = r.resample(30)
    np.testing.assert_allclose(back.poses, m.poses, atol=1e-9)


def test_slerp_takes_the_short_way_round():
    m = Motion.rest(2, fps=1)
    m.poses[0, 3 * J["head"] + 1] = np.radians(170)
    m.poses[1, 3 * J["head"] + 1] = np.radians(-170)
    mid = m.resample(2).poses[1, 3 * J["head"] : 3 * J["head"] + 3]
    assert abs(abs(mid[1]) - np.pi) < 1e-6  # through 180 deg, not through 0


def test_slice_and_concatenate(motion):
    a, b = motion.slice(0, 20), motion.slice(20)
    assert a.num_frames == 20 and b.num_frames == motion.num_frames - 20
    joined = concatenate([a, b])
    np.testing.assert_array_equal(joined.poses, motion.poses)
    np.testing.assert_array_equal(joined.trans, motion.trans)
    s = motion.slice_seconds(0.5, 1.0)
    assert s.num_frames == 15
    np.testing.assert_array_equal(s.poses[0], motion.poses[15])
    with pytest.raises(MotionError, match="empty"):
        motion.slice(30, 30)
    with pytest.raises(MotionError, match="fps"):
        concatenate([a, b.resample(60)])


def test_mirror_swaps_sides(motion):
    """World rotations of the mirrored motion are the reflections (M R M, M = diag(-1,1,1)) of the
    other side's: exact, unlike positions (the SMPL-X template itself is a little asymmetric)."""
    rot = forward_kinematics(motion).rotations
    mrot = forward_kinematics(mirror(motion)).rotations
    M = np.diag([-1.0, 1.0, 1.0])
    for a, b in (("left_wrist", "right_wrist"), ("right_index3", "left_index3"), ("head", "head")):
        np.testing.assert_allclose(mrot[:, J[a]], M @ rot[:, J[b]] @ M, atol=1e-9)
    np.testing.assert_allclose(mirror(mirror(motion)).poses, motion.poses, atol=1e-12)


def test_motion_validation_messages():
    with pytest.raises(MotionError, match=r"poses must have shape \(frames, 165\)"):
        Motion(poses=np.zeros((10, 72)), trans=np.zeros((10, 3)))
    with pytest.raises(MotionError, match="trans must have shape"):
        Motion(poses=np.zeros((10, 165)), trans=np.zeros((9, 3)))
    bad = np.zeros((4, 165))
    bad[2, 5] = np.nan
    with pytest.raises(MotionError, match="1 NaN/Inf"):
        Motion(poses=bad, trans=np.zeros((4, 3)))
    with pytest.raises(MotionError, match="fps"):
        Motion(poses=np.zeros((4, 165)), trans=np.zeros((4, 3)), fps=0)
    assert Motion(poses=np.zeros((4, 55, 3)), trans=np.zeros((4, 3))).poses.shape == (4, 165)


def test_smooth_motion_fixture_is_deterministic():
    np.testing.assert_array_equal(smooth_motion(seed=3).poses, smooth_motion(seed=3).poses)


def test_hold_spans_eases_between_the_span_ends_and_keeps_the_rest():
    from gesticulator.motion.ops import hold_spans

    motion = smooth_motion(90)
    held = hold_spans(motion, [(30, 60)])
    np.testing.assert_allclose(held.poses[:30], motion.poses[:30], atol=1e-5)
    np.testing.assert_allclose(held.poses[61:], motion.poses[61:], atol=1e-5)
    rot = R.axis_angle_to_quat(held.rotations[30:61])
    ends = R.axis_angle_to_quat(motion.rotations[[30, 60]])
    # Inside (past the 2-frame ramps) every joint is on the slerp path between the end poses,
    # progressing monotonically: its angle from the start pose never decreases.
    from_start = 2 * np.arccos(np.clip(np.abs(np.sum(rot * ends[0], axis=-1)), 0, 1))
    assert (np.diff(from_start[2:-2], axis=0) >= -1e-6).all()
    # Spans at the ends of the motion or shorter than 3 frames are left alone.
    np.testing.assert_allclose(hold_spans(motion, [(0, 20), (40, 42)]).poses, motion.poses, atol=1e-5)
