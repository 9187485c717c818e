"""Gesture authoring: IK, hand shapes, the spec compiler, builds, and the shipped default library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from gesticulator.library.authoring import (
    body,
    build_gesture,
    build_library,
    compile_spec,
    compile_take,
    hand_clearance,
    hands,
    ik,
    parse_spec,
    rest_motion,
)
from gesticulator.library.authoring import build as build_mod
from gesticulator.library.authoring.build import splice_gesture_text
from gesticulator.library.schema import CatalogError
from gesticulator.library.store import Library, read_gesture_file
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import forward_kinematics
from gesticulator.motion.ops import mirror, resample
from gesticulator.types import Motion

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "motion_library"
J = sk.JOINT_INDEX
FINGERS4 = ("index", "middle", "ring", "pinky")

THUMBS_UP = {
    "keys": [
        {"dur": 0.35, "right": {"at": "chest_front", "offset": [0, -0.06, -0.04], "palm": "in", "fingers": "forward", "hand": "fist"}},
        {"dur": 0.2, "hold": 0.4, "mark": "apex", "right": {"at": "chest_front", "hand": "thumbs_up"}, "head": {"nod": 4}},
    ]
}  # fmt: skip
WAVE = {
    "keys": [
        {"dur": 0.35, "right": {"at": "beside_head", "palm": "forward", "fingers": "up", "hand": "open"}},
        {"repeat": 2, "keys": [
            {"dur": 0.2, "right": {"offset": [0.04, 0, 0], "fingers": "up+out*0.4"}, "mark": "apex"},
            {"dur": 0.2, "right": {"offset": [-0.03, 0, 0], "fingers": "up+in*0.3"}},
        ]},
    ]
}  # fmt: skip
CLAP = {
    "contact": True,
    "keys": [
        {"dur": 0.3, "both": {"at": [0.14, -0.04, 0.30], "palm": "in", "fingers": "forward+up*0.5", "hand": "open"}},
        {"repeat": 2, "keys": [
            {"dur": 0.13, "ease": "hit", "both": {"at": [0.0, -0.04, 0.30], "effector": "palm", "offset": [0.009, 0, 0]}},
            {"dur": 0.14, "both": {"at": [0.13, -0.02, 0.30], "effector": "wrist"}},
        ]},
    ]
}  # fmt: skip


# -- helpers ---------------------------------------------------------------------------------------
def _rest_frames() -> tuple[np.ndarray, np.ndarray]:
    """World positions/rotations of the neutral T-pose (identity locals)."""
    return body.fk(np.tile(np.eye(3), (55, 1, 1)))


def _motion_from_locals(locals_: list[np.ndarray]) -> Motion:
    rv = Rotation.from_matrix(np.stack(locals_).reshape(-1, 3, 3)).as_rotvec().reshape(len(locals_), 55, 3)
    rv[:, 25:55] -= sk.hand_mean()[None]
    return Motion(poses=rv.reshape(len(locals_), -1), trans=np.zeros((len(locals_), 3)))


def _angular_speed(m: Motion) -> np.ndarray:
    """(T-1, 55) geodesic angle between consecutive frames, radians per second."""
    q = Rotation.from_rotvec(m.poses.reshape(-1, 3)).as_quat().reshape(m.num_frames, 55, 4)
    dots = np.abs(np.sum(q[1:] * q[:-1], -1)).clip(0.0, 1.0)
    return 2.0 * np.arccos(dots) * m.fps


def _tip_to_palm(flat15: np.ndarray) -> dict[str, float]:
    rv = np.zeros((55, 3))
    rv[40:55] = flat15
    pos, _ = body.fk_axis_angle(rv)
    w = pos[J["right_wrist"]]
    palm = 0.5 * w + 0.5 * (pos[J["right_index1"]] + pos[J["right_pinky1"]] + pos[J["right_middle1"]]) / 3
    tips = body.fingertips(pos, "right")
    out = {f: float(np.linalg.norm(tips[f] - palm)) for f in body.FINGERS}
    out["thumb_index"] = float(np.linalg.norm(tips["thumb"] - tips["index"]))
    return out


def _random_reachable(rng, side: str, chest: np.ndarray) -> np.ndarray:
    sx = -1.0 if side == "right" else 1.0
    while True:
        p = chest + np.array(
            [sx * rng.uniform(-0.05, 0.45), rng.uniform(-0.35, 0.5), rng.uniform(0.12, 0.45)]
        )
        shoulder = body.skeleton()[1][J[f"{side}_shoulder"]]
        if 0.15 < np.linalg.norm(p - shoulder) < 0.45:
            return p


# -- IK --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["right", "left"])
def test_ik_reaches_targets_within_a_centimetre(side):
    rng = np.random.default_rng(1)
    pos, rot = _rest_frames()
    chest_p, chest_r = pos[J["spine3"]], rot[J["spine3"]]
    locals_, targets = [], []
    for _ in range(40):
        target = _random_reachable(rng, side, chest_p)
        palm, fingers = rng.normal(size=3), rng.normal(size=3)
        sol = ik.solve_arm(side, target, ik.hand_rotation(palm, fingers, side), chest_p, chest_r)
        loc = np.tile(np.eye(3), (55, 1, 1))
        for part in ("collar", "shoulder", "elbow", "wrist"):
            loc[J[f"{side}_{part}"]] = getattr(sol, part)
        loc[25:55] = Rotation.from_rotvec(sk.hand_mean()).as_matrix()
        locals_.append(loc)
        targets.append(target)
    # checked with the project's own FK (mannequin-x), not the authoring FK the solver used
    wrist = forward_kinematics(_motion_from_locals(locals_)).positions[:, J[f"{side}_wrist"]]
    err = np.linalg.norm(wrist - np.array(targets), axis=1)
    assert err.max() < 0.01, err.max()


def test_ik_reproduces_a_reachable_hand_orientation_exactly():
    pos, rot = _rest_frames()
    target = pos[J["spine3"]] + np.array([-0.15, 0.0, 0.30])  # right hand in front of the chest
    want = ik.hand_rotation(palm=[1.0, 0, 0], fingers=[0, 0, 1.0])  # thumbs-up orientation
    sol = ik.solve_arm("right", target, want, pos[J["spine3"]], rot[J["spine3"]])
    loc = np.tile(np.eye(3), (55, 1, 1))
    for part in ("collar", "shoulder", "elbow", "wrist"):
        loc[J[f"right_{part}"]] = getattr(sol, part)
    _, wrot = body.fk(loc)
    assert not sol.clamped
    assert Rotation.from_matrix(wrot[J["right_wrist"]].T @ want).magnitude() < 1e-6


def test_ik_respects_joint_limits_and_clamps_unreachable_targets():
    rng = np.random.default_rng(2)
    pos, rot = _rest_frames()
    chest_p, chest_r = pos[J["spine3"]], rot[J["spine3"]]
    for _ in range(60):
        target = chest_p + rng.uniform([-0.9, -0.8, -0.3], [0.3, 0.9, 0.9])
        hand = ik.hand_rotation(rng.normal(size=3), rng.normal(size=3))
        sol = ik.solve_arm("right", target, hand, chest_p, chest_r)
        assert ik.ELBOW_MIN - 1e-9 <= sol.elbow_flex <= ik.ELBOW_MAX + 1e-9  # no hyperextension
        assert ik.TWIST_RANGE[0] - 1e-9 <= sol.twist <= ik.TWIST_RANGE[1] + 1e-9
        assert ik.WRIST_FLEX[0] - 1e-9 <= sol.wrist_flex <= ik.WRIST_FLEX[1] + 1e-9
        assert ik.WRIST_DEV[0] - 1e-9 <= sol.wrist_dev <= ik.WRIST_DEV[1] + 1e-9
        # the elbow joint is a hinge plus forearm twist: flexion about y, twist about the bone
        fore = ik.arm_chain("right").fore
        expect = Rotation.from_rotvec([0, sol.elbow_flex, 0]) * Rotation.from_rotvec(
            sol.twist * fore / np.linalg.norm(fore)
        )
        assert (Rotation.from_matrix(sol.elbow).inv() * expect).magnitude() < 1e-6
    far = chest_p + np.array([-1.5, 0.2, 0.3])  # out of reach: the arm points at it, fully extended
    sol = ik.solve_arm("right", far, None, chest_p, chest_r)
    assert sol.clamped and sol.elbow_flex == pytest.approx(ik.ELBOW_MIN)
    loc = np.tile(np.eye(3), (55, 1, 1))
    for part in ("collar", "shoulder", "elbow", "wrist"):
        loc[J[f"right_{part}"]] = getattr(sol, part)
    p, _ = body.fk(loc)
    shoulder, wrist = p[J["right_shoulder"]], p[J["right_wrist"]]
    assert np.allclose(wrist, sol.wrist_world)
    cos = (
        np.dot(wrist - shoulder, far - shoulder)
        / np.linalg.norm(wrist - shoulder)
        / np.linalg.norm(far - shoulder)
    )
    assert cos > 0.999  # pointing straight at the target


def test_ik_keeps_the_elbow_out_of_the_torso_on_cross_body_reaches():
    pos, rot = _rest_frames()
    torso = (
        np.stack([pos[J[a]] for a, _, _ in body.TORSO_CAPSULES]),
        np.stack([pos[J[b]] for _, b, _ in body.TORSO_CAPSULES]),
        np.array([r for _, _, r in body.TORSO_CAPSULES]),
    )
    for target_local in (
        [0.10, 0.0, 0.16],
        [0.05, -0.15, 0.18],
        [0.12, 0.25, 0.15],
    ):  # to the left chest, belly, chin
        target = pos[J["spine3"]] + np.array(target_local)
        sol = ik.solve_arm("right", target, None, pos[J["spine3"]], rot[J["spine3"]], torso=torso)
        clearance = body.torso_clearance(sol.elbow_world[None, None], pos[None])[0, 0]
        assert clearance > 0.0, (target_local, clearance)


# -- hand shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(hands.EXTENDED))
def test_hand_shapes_extend_the_expected_fingers(name):
    d = _tip_to_palm(hands.flat_pose(name))
    extended = hands.EXTENDED[name]
    for f in FINGERS4:
        if f in extended:
            assert d[f] > 0.10, (name, f, d[f])
        elif name == "ok_ring" and f == "index":
            assert d[f] < 0.095, d[f]  # bent round to meet the thumb (checked below)
        else:
            assert d[f] < 0.08, (name, f, d[f])
    if "thumb" in extended:
        assert d["thumb"] > 0.084, (name, d["thumb"])
    elif name in ("ok_ring",):
        assert d["thumb_index"] < 0.025, d["thumb_index"]  # the ring closes
    else:
        assert d["thumb"] < 0.076, (name, d["thumb"])  # folded over the fingers / palm


def test_hand_shape_conventions():
    mean = sk.hand_mean()
    assert np.allclose(hands.shape_pose("relaxed", "right"), 0.0)
    assert np.allclose(hands.shape_pose("relaxed", "left"), 0.0)
    fist = hands.flat_pose("fist")
    assert np.allclose(hands.shape_pose("fist", "right") + mean[15:], fist)  # flat_hand_mean=False
    assert np.allclose(hands.shape_pose("fist", "left") + mean[:15], hands.mirror_hand(fist))
    pinch = _tip_to_palm(hands.flat_pose("pinch"))
    assert pinch["thumb_index"] < 0.025  # thumb and index tips close
    assert _tip_to_palm(hands.flat_pose("pinch_open"))["thumb_index"] > pinch["thumb_index"] + 0.01
    assert hands.resolve("fsit") is None and hands.resolve("ok") == "ok_ring"


# -- compile ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiled() -> dict[str, list]:
    return {
        name: compile_spec(spec, name)
        for name, spec in (("thumbs_up", THUMBS_UP), ("wave", WAVE), ("clap", CLAP))
    }


def test_clips_start_and_end_at_rest_and_never_pop(compiled):
    rest = rest_motion(1).poses[0]
    for name, takes in compiled.items():
        for take in takes:
            m = take.motion
            assert m.fps == 30.0 and 1.0 < m.duration < 3.0
            assert np.allclose(m.poses[0], rest, atol=1e-6) and np.allclose(m.poses[-1], rest, atol=1e-6)
            speed = _angular_speed(m)
            assert speed[0].max() < 0.05 and speed[-1].max() < 0.05, name  # at rest, not moving
            arm = [J[f"{s}_{p}"] for s in ("left", "right") for p in ("collar", "shoulder", "elbow", "wrist")]
            assert speed[:, arm].max() < 15.0, (name, speed[:, arm].max())  # rad/s
            assert speed.max() < 25.0, (name, speed.max())  # fingers included
            accel = np.abs(np.diff(speed, axis=0)) * m.fps
            assert accel.max() < 600.0, (name, accel.max())  # rad/s^2: no jumps between frames


def test_overshoot_and_settle_at_the_apex():
    from gesticulator.library.authoring.compile import ease_profile

    s = np.linspace(0, 1, 201)
    plain, over = ease_profile("smooth", s), ease_profile("smooth", s, 0.04)
    assert plain.max() == pytest.approx(1.0) and over.max() == pytest.approx(1.04, abs=2e-3)
    assert over[-1] == pytest.approx(1.0) and over[0] == pytest.approx(0.0)
    for ease in ("smooth", "snap", "hit"):
        v = np.gradient(ease_profile(ease, s), s)
        assert abs(v[0]) < 0.05 and abs(v[-1]) < 0.1  # zero velocity at the keys


def test_phase_marks_follow_the_keys(compiled):
    for takes in compiled.values():
        for take in takes:
            p = take.phases
            marks = [p["prep_start"], p["stroke_start"], p["apex"], p["stroke_end"], p["retract_end"]]
            assert marks == sorted(marks) and marks[-1] <= take.motion.duration
    a = compiled["thumbs_up"][0]
    assert a.phases["prep_start"] == pytest.approx(0.1)
    assert a.phases["stroke_start"] == pytest.approx(a.key_times[0], abs=1e-3)  # leaves the ready pose
    assert a.key_times[0] < a.phases["apex"] <= a.key_times[1]  # overshoot peak just before arrival
    assert a.phases["stroke_end"] == pytest.approx(a.key_times[1] + 0.4, abs=1e-3)


def test_takes_vary_but_not_by_much(compiled):
    a, b = compiled["thumbs_up"][0], compiled["thumbs_up"][1]
    assert a.take_id == "a" and b.take_id == "b" and b.seed is not None
    assert 0.8 < b.motion.duration / a.motion.duration < 1.2 and a.phases != b.phases
    # same gesture: the same hand near the same place at the apex, but not a copy
    fa, fb = (int(round(t.phases["apex"] * 30)) for t in (a, b))
    wa = forward_kinematics(a.motion).positions[fa, J["right_wrist"]]
    wb = forward_kinematics(b.motion).positions[fb, J["right_wrist"]]
    assert 0.003 < np.linalg.norm(wa - wb) < 0.08
    rb = resample(b.motion.copy(fps=30.0 * (b.motion.num_frames - 1) / (a.motion.num_frames - 1)), 30.0)
    n = min(rb.num_frames, a.motion.num_frames)
    diff = Rotation.from_rotvec(a.motion.poses[:n].reshape(-1, 3)).inv() * Rotation.from_rotvec(
        rb.poses[:n].reshape(-1, 3)
    )
    mean_deg = np.degrees(diff.magnitude().mean())
    assert 0.2 < mean_deg < 12.0, mean_deg
    again = compile_spec(THUMBS_UP, "thumbs_up")[1]  # seeded: a rebuild gives the same take
    assert np.array_equal(again.motion.poses, b.motion.poses)


def test_left_take_is_the_mirror_of_the_right():
    spec = parse_spec(THUMBS_UP)
    right = compile_take(spec, 0, gesture_id="t")
    left = compile_take(spec, 0, gesture_id="t", side="left")  # solved on the left arm directly
    mirrored = mirror(right.motion)
    pr, pl = forward_kinematics(mirrored).positions, forward_kinematics(left.motion).positions
    # the neutral skeleton is symmetric to about a centimetre
    assert np.abs(pr[:, J["left_wrist"]] - pl[:, J["left_wrist"]]).max() < 0.025
    assert np.abs(pl[:, J["right_wrist"]] - pl[0, J["right_wrist"]]).max() < 1e-6  # the right arm rests
    assert np.array_equal(mirror(mirrored).poses, right.motion.poses)
    lib = Library.load([LIBRARY], include_default=False)
    assert np.allclose(lib.clip("thumbs_up", side="left").poses, mirror(lib.clip("thumbs_up")).poses)


def test_symmetric_two_handed_keys_give_mirror_image_arms(compiled):
    m = compiled["clap"][0].motion
    pos = forward_kinematics(m).positions
    lw, rw = pos[:, J["left_wrist"]], pos[:, J["right_wrist"]]
    assert np.abs(lw[:, 0] + rw[:, 0]).max() < 0.03  # x mirrored (the body is centred near x=0)
    assert np.abs(lw[:, 1:] - rw[:, 1:]).max() < 0.03


def test_circles_and_vias_compile():
    spec = {
        "keys": [
            {
                "dur": 0.3,
                "right": {"at": [0.14, -0.02, 0.32], "palm": "down", "fingers": "forward", "hand": "point"},
            },
            {
                "dur": 0.1,
                "hold": 0.9,
                "right": {"offset": [0, 0, 0.01]},
                "circle": {"radius": 0.08, "turns": 2, "plane": "side"},
            },
            {"dur": 0.5, "right": {"at": [0.5, -0.1, 0.2]}, "via": {"right": {"at": [0.3, -0.1, 0.45]}}},
        ]
    }
    take = compile_spec(spec, "c")[0]
    pos = forward_kinematics(take.motion).positions[:, J["right_wrist"]]
    hold = slice(int(0.5 * 30), int(1.3 * 30))
    extent = pos[hold].max(0) - pos[hold].min(0)
    assert extent[1] > 0.12 and extent[2] > 0.12  # a circle of radius 8 cm in the sagittal plane
    assert _angular_speed(take.motion).max() < 15.0


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("author", "field", "text"),
    [
        (
            {"keys": [{"right": {"at": "center", "hand": "fsit"}}]},
            "author.keys[0].right.hand",
            "unknown hand shape 'fsit' — known: claw",
        ),
        ({"keys": [{"right": {"at": "chset"}}]}, "author.keys[0].right.at", "unknown place 'chset'"),
        ({"keys": [{"rigth": {"at": "center"}}]}, "author.keys[0].rigth", "unknown field"),
        ({"keys": [{"dur": -1, "right": {"at": "center"}}]}, "author.keys[0].dur", "out of range"),
        (
            {"keys": [{"right": {"at": "center", "palm": "sideways"}}]},
            "author.keys[0].right.palm",
            "unknown direction 'sideways'",
        ),
        ({"keys": [{"right": {"touch": "center"}}]}, "author.keys[0].right.touch", "unknown body surface"),
        ({"keys": [{"right": {"palm": "up"}}]}, "author.keys[0].right", "needs `at`"),
        (
            {"keys": [{"repeat": 2, "keys": [{"head": {"nodd": 3}}]}]},
            "author.keys[0].keys[0].head.nodd",
            "unknown field",
        ),
        ({"takes": 2}, "author.keys", "missing"),
    ],
)
def test_bad_spec_is_a_one_line_error_naming_file_and_field(tmp_path, author, field, text):
    g = read_gesture_file(LIBRARY / "gestures" / "thumbs_up.yaml").model_copy(
        update={"author": author, "takes": []}
    )
    with pytest.raises(CatalogError) as err:
        build_gesture(g, tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert "thumbs_up.yaml" in msg and f"field '{field}'" in msg and text in msg, msg
    assert not (tmp_path / "clips").exists()


# -- building --------------------------------------------------------------------------------------
def _scratch_library(tmp_path: Path, gesture_id: str = "thumbs_up") -> Path:
    src = (LIBRARY / "gestures" / f"{gesture_id}.yaml").read_text()
    data = yaml.safe_load(src)
    text = splice_gesture_text(src, data["phases"], [])  # as the catalog author left it: no takes
    (tmp_path / "gestures").mkdir()
    (tmp_path / "gestures" / f"{gesture_id}.yaml").write_text(text)
    return tmp_path


def test_build_writes_clips_takes_and_phases(tmp_path):
    root = _scratch_library(tmp_path)
    before = (root / "gestures" / "thumbs_up.yaml").read_text()
    built = build_library(root)
    assert [g.id for g in built] == ["thumbs_up"]
    after = (root / "gestures" / "thumbs_up.yaml").read_text()
    # only takes and phases changed: the texts and the flow-style author spec are kept verbatim
    assert before[: before.index("phases:")] == after[: after.index("phases:")]
    assert before[before.index("author:") :] == after[after.index("author:") :]
    assert "- {dur: 0.35, right: {at: chest_front" in after
    g = read_gesture_file(root / "gestures" / "thumbs_up.yaml")
    assert [t.id for t in g.takes] == ["a", "b"]
    assert g.phases == g.takes[0].phases
    for t in g.takes:
        assert t.source == "authored from gestures/thumbs_up.yaml (gesticulator authoring)"
        assert t.license == "Apache-2.0" and t.clip == f"clips/thumbs_up/{t.id}.npz"
        with np.load(root / t.clip) as z:
            assert z["poses"].dtype == np.float32
    lib = Library.load([root], include_default=False)
    assert lib.validate() == []
    assert lib.clip("thumbs_up", "b").num_frames > 30
    assert sorted(p.name for p in (root / "clips" / "thumbs_up").iterdir()) == ["a.npz", "b.npz"]


def test_build_failure_leaves_the_library_unchanged(tmp_path, monkeypatch):
    root = _scratch_library(tmp_path)
    before = (root / "gestures" / "thumbs_up.yaml").read_text()
    real = build_mod.save_npz
    calls = []

    def flaky(motion, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(motion, path)

    monkeypatch.setattr(build_mod, "save_npz", flaky)
    with pytest.raises(OSError):
        build_library(root)
    assert (root / "gestures" / "thumbs_up.yaml").read_text() == before
    assert not list((root / "clips").rglob("*.npz"))  # the first, new clip was removed again
    assert not list(root.rglob("*.tmp"))
    with pytest.raises(CatalogError, match="unknown gesture id"):
        build_library(root, ["no_such_gesture"])


def test_rebuild_drops_takes_the_spec_no_longer_makes(tmp_path):
    root = _scratch_library(tmp_path)
    build_library(root)
    g = read_gesture_file(root / "gestures" / "thumbs_up.yaml")
    g3 = g.model_copy(update={"author": {**g.author, "takes": 3}})
    assert [t.id for t in build_gesture(g3, root).takes] == ["a", "b", "c"]
    g1 = g.model_copy(update={"author": {**g.author, "takes": 1}})
    assert [t.id for t in build_gesture(g1, root).takes] == ["a"]
    assert [p.name for p in (root / "clips" / "thumbs_up").iterdir()] == ["a.npz"]


# -- the shipped default library -------------------------------------------------------------------
DEFAULT_IDS = """point_self point_you point_up point_down_here point_there point_back_past point_forward_future
thumbs_up thumbs_down ok_sign wave_hello stop_palm shrug head_nod head_shake finger_wag fingers_crossed shush
victory_v clap facepalm think_chin hand_on_heart tap_temple_idea beckon open_arms_welcome palms_up_question
offer_palm push_away_reject count_one count_two count_three count_four count_five big_wide small_pinch tall_high
rise_increase fall_decrease sweep_all bring_together separate_apart balance_compare circle_cycle stack_build
burst_explode fast_flick slow_down_calm cut_finish precise_pinch grasp_hold emphatic_fist""".split()


@pytest.fixture(scope="module")
def default_library():
    lib = Library.load([LIBRARY], include_default=False)
    clips = {(g.id, t.id): lib.clip(g.id, t.id) for g in lib.gestures() for t in g.takes}
    return lib, clips


def test_default_library_has_two_takes_of_every_gesture(default_library):
    lib, clips = default_library
    assert set(DEFAULT_IDS) <= set(lib.ids()) and len(DEFAULT_IDS) == 52
    rest = rest_motion(1).poses[0]
    for gid in DEFAULT_IDS:
        g = lib.get(gid)
        assert g.author is not None and len(g.takes) >= 2, gid
        assert g.phases == g.takes[0].phases
        for t in g.takes:
            m = clips[(gid, t.id)]
            assert np.all(np.isfinite(m.poses)) and m.fps == 30.0
            assert 1.2 <= m.duration <= 2.7, (gid, m.duration)
            assert np.allclose(m.poses[0], rest, atol=1e-5) and np.allclose(m.poses[-1], rest, atol=1e-5)
            assert g.phases_of(t).retract_end <= m.duration + 1e-6
    assert lib.validate() == []


def test_default_library_hands_stay_out_of_the_body(default_library):
    lib, clips = default_library
    for (gid, tid), m in clips.items():
        contact = bool((lib.get(gid).author or {}).get("contact"))
        torso, head = hand_clearance(m)
        if contact:  # touching the chest or face, not inside it
            assert torso.min() > -0.01 and head.min() > -0.03, (gid, tid, torso.min(), head.min())
        else:
            assert torso.min() > 0.04 and head.min() > 0.04, (gid, tid, torso.min(), head.min())


def _apex(lib, clips, gid):
    g = lib.get(gid)
    m = clips[(gid, "a")]
    f = int(round(g.phases.apex * m.fps))
    fk = forward_kinematics(m)
    return fk.positions[f], fk.rotations[f]


def test_default_library_gestures_read_right(default_library):
    lib, clips = default_library
    # thumbs up: a fist in front of the chest with the thumb pointing up (down for thumbs_down)
    for gid, sign in (("thumbs_up", 1.0), ("thumbs_down", -1.0)):
        pos, rot = _apex(lib, clips, gid)
        tips = body.fingertips(pos, "right")
        thumb_dir = tips["thumb"] - pos[J["right_thumb2"]]
        assert sign * thumb_dir[1] / np.linalg.norm(thumb_dir) > 0.7, gid
        chest_local = rot[J["spine3"]].T @ (pos[J["right_wrist"]] - pos[J["spine3"]])
        assert chest_local[2] > 0.15 and -0.15 < chest_local[1] < 0.2, (gid, chest_local)
        palm = (pos[J["right_index1"]] + pos[J["right_pinky1"]]) / 2
        assert all(np.linalg.norm(tips[f] - palm) < 0.07 for f in FINGERS4), gid  # a fist
    # point_you: the index points forward at the viewer, the other fingers curled
    pos, _ = _apex(lib, clips, "point_you")
    tips = body.fingertips(pos, "right")
    index_dir = tips["index"] - pos[J["right_index1"]]
    assert index_dir[2] / np.linalg.norm(index_dir) > 0.85
    # counting shows the right number of fingers
    for n, gid in enumerate(("count_one", "count_two", "count_three", "count_four", "count_five"), start=1):
        pos, _ = _apex(lib, clips, gid)
        tips = body.fingertips(pos, "right")
        palm = (
            0.5 * pos[J["right_wrist"]]
            + 0.5 * (pos[J["right_index1"]] + pos[J["right_pinky1"]] + pos[J["right_middle1"]]) / 3
        )
        out = sum(np.linalg.norm(tips[f] - palm) > 0.10 for f in FINGERS4)
        out += np.linalg.norm(tips["thumb"] - palm) > 0.084
        assert out == n, (gid, out)
    # head-only gestures move only the head
    for gid in ("head_nod", "head_shake"):
        m = clips[(gid, "a")]
        moving = np.abs(m.rotations - m.rotations[:1]).max(axis=(0, 2)) > 1e-6
        assert set(np.nonzero(moving)[0]) <= {J["neck"], J["head"]}, gid
