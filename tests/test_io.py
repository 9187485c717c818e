import numpy as np
import pytest

from gesticulator.errors import InputFileError
from gesticulator.io import load_motion, load_npz, read_bvh, save_bvh, save_npz
from gesticulator.io.bvh import bvh_to_motion, parse_bvh
from gesticulator.motion import JOINT_NAMES, joint_positions
from gesticulator.motion.rotations import angle_between

from .conftest import BEAT2_TAKE, ZEGGS_TAKE, shared_file, smooth_motion


def test_npz_round_trip_is_exact(tmp_path, motion):
    motion.metadata["note"] = "hello"
    first = save_npz(motion, tmp_path / "a.npz")
    m1 = load_npz(first)
    save_npz(m1, tmp_path / "b.npz")
    m2 = load_npz(tmp_path / "b.npz")
    for a, b in ((motion, m1), (m1, m2)):
        np.testing.assert_array_equal(a.poses, b.poses)
        np.testing.assert_array_equal(a.trans, b.trans)
        np.testing.assert_array_equal(a.betas, b.betas)
        assert a.fps == b.fps and a.gender == b.gender
    assert m2.metadata["note"] == "hello"


def test_npz_has_beat2_amass_keys_and_loads_without_pickle(tmp_path, motion):
    save_npz(motion, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as d:
        for key in ("poses", "trans", "betas", "gender", "mocap_frame_rate", "model", "expressions"):
            assert key in d.files
        assert d["poses"].shape == (60, 165) and d["expressions"].shape == (60, 100)
        assert str(d["gender"]) == "neutral" and str(d["model"]) == "smplx2020"
        assert int(d["mocap_frame_rate"]) == 30 and not bool(d["flat_hand_mean"])
        assert all(d[k].dtype != object for k in d.files)


def test_npz_reads_amass_split_keys(tmp_path):
    t = 5
    np.savez(
        tmp_path / "amass.npz",
        root_orient=np.zeros((t, 3)), pose_body=np.full((t, 63), 0.1), pose_hand=np.zeros((t, 90)),
        trans=np.zeros((t, 3)), betas=np.zeros(16), mocap_frame_rate=np.array(120.0), gender=np.array("female"),
    )  # fmt: skip
    m = load_npz(tmp_path / "amass.npz")
    assert m.fps == 120 and m.gender == "female" and m.num_frames == t
    np.testing.assert_allclose(m.poses[:, 3:66], 0.1)


def test_npz_bad_inputs_give_one_line_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip")
    with pytest.raises(InputFileError, match="not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "smpl.npz", poses=np.zeros((4, 72)), trans=np.zeros((4, 3)))
    with pytest.raises(InputFileError, match=r"expected \(frames, 165\)"):
        load_npz(tmp_path / "smpl.npz")
    np.savez(tmp_path / "nokeys.npz", foo=np.zeros(3))
    with pytest.raises(InputFileError, match="no 'poses' array"):
        load_npz(tmp_path / "nokeys.npz")
    np.savez(tmp_path / "obj.npz", poses=np.zeros((2, 165)), extra=np.array([1, "a"], dtype=object))
    with pytest.raises(InputFileError, match="unsafe"):
        load_npz(tmp_path / "obj.npz")
    nan = np.zeros((3, 165))
    nan[1, 1] = np.inf
    np.savez(tmp_path / "nan.npz", poses=nan, trans=np.zeros((3, 3)))
    with pytest.raises(InputFileError, match="NaN/Inf"):
        load_npz(tmp_path / "nan.npz")
    with pytest.raises(InputFileError, match="not found"):
        load_motion(tmp_path / "missing.npz")
    with pytest.raises(InputFileError, match="unknown type"):
        load_motion(_touch(tmp_path / "x.txt"))
    for e in (InputFileError("a", "b"),):
        assert "\n" not in str(e)


def _touch(path):
    path.write_text("x")
    return path


def test_failed_write_leaves_no_partial_file(tmp_path, motion, monkeypatch):
    target = tmp_path / "out.npz"

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        save_npz(motion, target)
    assert list(tmp_path.iterdir()) == []


def test_bvh_round_trip_within_1e4_rad(tmp_path, motion):
    save_bvh(motion, tmp_path / "m.bvh")
    bvh = read_bvh(tmp_path / "m.bvh")
    assert bvh.names == [n for n in _depth_first_names()] and bvh.num_frames == motion.num_frames
    assert bvh.fps == 30.0
    back = bvh_to_motion(bvh)
    assert angle_between(motion.rotations, back.rotations).max() < 1e-4
    np.testing.assert_allclose(back.trans, motion.trans, atol=1e-6)


def test_bvh_skeleton_fk_matches_smplx_fk(tmp_path, motion):
    """FK over the written BVH hierarchy (our reader) = mannequin-x FK: offsets, rotation order,
    mean-hand handling and root translation all agree."""
    save_bvh(motion, tmp_path / "m.bvh", units="m")
    bvh = read_bvh(tmp_path / "m.bvh")
    index = [bvh.names.index(n) for n in JOINT_NAMES]
    np.testing.assert_allclose(bvh.world_positions()[:, index], joint_positions(motion), atol=2e-6)


def test_bvh_units_and_rotation_orders(tmp_path, motion):
    for units, order in (("cm", "XYZ"), ("m", "YXZ")):
        save_bvh(motion, tmp_path / f"{units}.bvh", units=units, rotation_order=order)
        text = (tmp_path / f"{units}.bvh").read_text()
        assert f"{order[0]}rotation {order[1]}rotation {order[2]}rotation" in text
        back = bvh_to_motion(read_bvh(tmp_path / f"{units}.bvh"))
        assert angle_between(motion.rotations, back.rotations).max() < 1e-4
        np.testing.assert_allclose(back.trans, motion.trans, atol=1e-5)


def _depth_first_names():
    from gesticulator.motion.skeleton import children

    kids, order = children(), []

    def visit(j):
        order.append(JOINT_NAMES[j])
        for c in kids[j]:
            visit(c)

    visit(0)
    return order


TWO_JOINT_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 90 0
  CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Arm
    {
      OFFSET 20 0 0
      CHANNELS 1 Zrotation
      End Site
      {
        OFFSET 10 0 0
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 90 2 0 0 0 0 0 0 0
0 91 0 90 0 0 0 0 0 90
"""


def test_bvh_reader_general_hierarchy():
    bvh = parse_bvh(TWO_JOINT_BVH)
    assert bvh.names == ["Hips", "Spine", "Arm"] and bvh.parents == [-1, 0, 1]
    assert bvh.fps == 25.0 and bvh.num_frames == 2
    np.testing.assert_allclose(bvh.end_sites[2], [10, 0, 0])
    pos = bvh.world_positions()
    np.testing.assert_allclose(pos[0], [[1, 90, 2], [1, 100, 2], [21, 100, 2]], atol=1e-9)
    # frame 1: hips yaw 90 deg about Y turns +X into -Z; the arm's 1-channel Z rotation is honoured
    np.testing.assert_allclose(pos[1, 2], [0, 101, -20], atol=1e-9)
    np.testing.assert_allclose(bvh.rest_positions()[2], [20, 100, 0])


@pytest.mark.parametrize(
    "text, message",
    [
        ("hello", "not a BVH file"),
        (TWO_JOINT_BVH.split("MOTION")[0], "no MOTION section"),
        (TWO_JOINT_BVH.replace("Frames: 2", "Frames: 5"), "only 2 are present"),
        (TWO_JOINT_BVH.replace("1 90 2 0 0 0 0 0 0 0", "1 90 2 0 0"), "malformed|channels"),
        (TWO_JOINT_BVH.replace("CHANNELS 1 Zrotation", "CHANNELS 2 Zrotation"), "CHANNELS says 2"),
        (TWO_JOINT_BVH.replace("OFFSET 20 0 0", "OFFSET 20 zero 0"), "non-numeric"),
        (TWO_JOINT_BVH.replace("Frame Time: 0.04", "Frame Time: 0"), "Frame Time must be positive"),
        (TWO_JOINT_BVH.replace("Zrotation\n      End", "Wrotation\n      End"), "unknown channel"),
        (TWO_JOINT_BVH.replace("1 90 2 0 0 0 0 0 0 0", "1 90 2 0 0 0 nan 0 0 0"), "NaN"),
    ],
)
def test_bvh_reader_errors_name_the_problem(text, message):
    with pytest.raises(InputFileError, match=message) as info:
        parse_bvh(text, source="bad.bvh")
    assert "bad.bvh" in str(info.value) and "\n" not in str(info.value)


def test_bvh_zero_frames_reads_but_cannot_become_motion():
    text = TWO_JOINT_BVH.split("Frames:")[0] + "Frames: 0\nFrame Time: 0.04\n"
    bvh = parse_bvh(text)
    assert bvh.num_frames == 0 and bvh.world_positions().shape == (0, 3, 3)
    with pytest.raises(InputFileError, match="not an SMPL-X skeleton"):
        bvh_to_motion(bvh)


@pytest.mark.shared_data
def test_beat2_take_through_npz_and_bvh(tmp_path):
    m = load_npz(shared_file(BEAT2_TAKE.with_suffix(".npz")))
    assert m.num_frames == 1906 and m.fps == 30
    save_bvh(m, tmp_path / "t.bvh")
    back = bvh_to_motion(read_bvh(tmp_path / "t.bvh"))
    assert angle_between(m.rotations.astype(np.float64), back.rotations).max() < 1e-4


@pytest.mark.shared_data
def test_reads_zeggs_75_joint_bvh():
    bvh = read_bvh(shared_file(ZEGGS_TAKE.with_suffix(".bvh")))
    assert bvh.num_joints == 75 and bvh.num_frames == 2065 and bvh.fps == 30
    pos = bvh.world_positions()
    head, foot = bvh.joint_index("Head"), bvh.joint_index("LeftFoot")
    assert 120 < pos[0, head, 1] - pos[0, foot, 1] < 190  # a standing person, in centimetres
    assert np.isfinite(pos).all()


def test_smooth_motion_is_far_from_rest():
    m = smooth_motion()
    assert np.abs(m.poses).max() > 0.5


def test_outputs_get_normal_file_permissions(tmp_path, motion):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        save_npz(motion, tmp_path / "m.npz")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o644
