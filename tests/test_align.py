"""Alignment and blending: placing events (apex, warps, conflicts, arms) and the masked splice.

Placement and blending run on the real default library and a synthetic base motion; the token
splice runs on a debug-size rhythm model trained once per test session (`debug_rhythm_model`,
also used by tests/test_api.py).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from gesticulator.align.splice import (
    BASE,
    FREE,
    GESTURE,
    BlendSettings,
    ClipBank,
    active_joints,
    apply_layers,
    build_layers,
    ease,
    keep_beat,
    qslerp,
    recognisability_cm,
    seam_speed_ratios,
    splice,
    token_plan,
)
from gesticulator.align.timing import (
    PlacedEvent,
    PlacementRequest,
    PlacementSettings,
    clip_time,
    emphasis_time,
    place_events,
    requests_from_plan,
    requests_from_timeline,
)
from gesticulator.library.schema import CatalogError
from gesticulator.library.store import Library
from gesticulator.motion.kinematics import joint_positions
from gesticulator.motion.rotations import angle_between, axis_angle_to_quat
from gesticulator.motion.skeleton import BODY_PARTS, JOINT_INDEX
from gesticulator.types import Motion, Prosody, SemanticEvent, SemanticPlan, Transcript, Word

FPS = 30.0


@functools.cache
def debug_rhythm_model() -> Path:
    """A debug-size rhythm checkpoint trained once per session (as tests/test_rhythm.py does)."""
    from gesticulator.rhythm.train import load_config, train_rhythm
    from tests.test_rhythm import _tiny_corpus

    base = Path(tempfile.mkdtemp(prefix="gesticulator-debug-rhythm-"))
    atexit.register(shutil.rmtree, base, True)
    corpus = _tiny_corpus(base / "corpus")
    cfg = load_config("rhythm_debug")
    cfg.data.cache_dir = str(base / "cache")
    return train_rhythm(cfg, corpus, base / "run", log=lambda *_: None).model_dir


@pytest.fixture(scope="module")
def library() -> Library:
    return Library.load(include_user=False)


@pytest.fixture(scope="module")
def clips(library) -> ClipBank:
    return ClipBank(library)


def beat_base(seconds: float = 6.0, seed: int = 0) -> Motion:
    """A smooth beat-like base: every upper-body joint swings gently around the rest pose."""
    from gesticulator.rhythm.representation import rest_axis_angle

    n = int(seconds * FPS)
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / FPS
    rest = rest_axis_angle().reshape(-1)
    amp = np.zeros(165)
    for j in BODY_PARTS["upper"] + BODY_PARTS["hands"]:
        amp[3 * j : 3 * j + 3] = rng.uniform(0.03, 0.15, 3)
    poses = rest + amp * np.sin(2 * np.pi * rng.uniform(0.4, 1.2, 165) * t + rng.uniform(0, 6.3, 165))
    return Motion(poses=poses, trans=np.zeros((n, 3)))


def req(gid: str, apex: float, **kw) -> PlacementRequest:
    return PlacementRequest(
        gesture_id=gid, apex=apex, word=kw.pop("word", gid), take=kw.pop("take", "a"), **kw
    )


def phases(library, gid, take="a"):
    g = library.get(gid)
    return g.phases_of(g.take(take))


# -- timing ----------------------------------------------------------------------------------------
def test_apex_target_is_the_stressed_point_else_plan_else_word_fraction():
    words = [Word(word="we", start=0.0, end=0.2), Word(word="great", start=0.3, end=0.8)]
    tr = Transcript(words=words)
    ev = SemanticEvent(gesture_id="thumbs_up", word_index=1, word="great", start=0.3, apex=0.5, end=0.8,
                       confidence=0.9, source="embedded")  # fmt: skip
    z = np.zeros(0)
    prosody = Prosody(30.0, z, z, z, z, z.astype(bool), np.array([0.1, 0.9]), np.array([0.1, 0.62]))
    assert emphasis_time(ev, tr, prosody) == (pytest.approx(0.62), "prosody")
    prosody.word_peak_times[1] = 0.95  # outside the word: not trusted
    assert emphasis_time(ev, tr, prosody) == (pytest.approx(0.5), "plan")
    assert emphasis_time(ev.model_copy(update={"apex": 2.0}), tr, None) == (
        pytest.approx(0.3 + 0.35 * 0.5),
        "word",
    )
    [r] = requests_from_plan(SemanticPlan(events=[ev]), tr, None)
    assert (r.apex, r.apex_source, r.gesture_id, r.word_index) == (0.5, "plan", "thumbs_up", 1)


def test_stroke_plays_at_authored_speed_around_the_apex(library):
    [ev] = place_events([req("thumbs_up", 2.0)], library, duration=6.0)
    ph = phases(library, "thumbs_up")
    assert ev.status == "placed" and ev.active_arms == ["right"] and ev.side == "right"
    assert ev.stroke_start == pytest.approx(2.0 - (ph.apex - ph.stroke_start))
    assert ev.stroke_end == pytest.approx(2.0 + (ph.stroke_end - ph.apex))
    settings = PlacementSettings()
    assert (ev.prep_warp, ev.retract_warp) == (settings.max_prep_warp, settings.max_retract_warp)  # room
    assert ev.prep_start == pytest.approx(ev.stroke_start - ev.prep_warp * (ph.stroke_start - ph.prep_start))
    assert clip_time(ev, ph, 2.0) == pytest.approx(ph.apex)
    assert clip_time(ev, ph, ev.prep_start) == pytest.approx(ph.prep_start)
    assert clip_time(ev, ph, ev.retract_end) == pytest.approx(ph.retract_end)


def test_prep_and_retract_are_warped_within_limits_to_fit(library):
    settings = PlacementSettings()
    a, b = phases(library, "thumbs_up"), phases(library, "count_three")
    retract, prep = a.retract_end - a.stroke_end, b.stroke_start - b.prep_start
    [alone] = place_events([req("count_three", 3.0)], library, duration=8.0)
    assert alone.prep_warp == settings.max_prep_warp  # room enough: the slowest approach allowed
    first = 2.0
    gap = 0.9 * (settings.max_retract_warp * retract + settings.max_prep_warp * prep)  # both shrink
    second = first + (a.stroke_end - a.apex) + gap + (b.apex - b.stroke_start)
    e1, e2 = place_events([req("thumbs_up", first), req("count_three", second)], library, duration=8.0)
    assert settings.min_retract_warp <= e1.retract_warp < settings.max_retract_warp
    assert settings.min_prep_warp <= e2.prep_warp < settings.max_prep_warp
    assert e1.retract_warp == pytest.approx(0.9 * settings.max_retract_warp, abs=1e-3)
    assert e1.retract_warp / settings.max_retract_warp == pytest.approx(
        e2.prep_warp / settings.max_prep_warp, abs=1e-3
    )
    assert e1.retract_end == pytest.approx(e2.prep_start)
    assert not e1.chained_to_next and e1.unit != e2.unit
    # Near the start: the preparation shrinks to fit, down to its limit, then the event goes.
    ph = phases(library, "count_three")
    lead = ph.apex - ph.stroke_start
    [near] = place_events([req("count_three", lead + 0.7 * prep)], library, duration=5.0)
    assert near.status == "placed" and near.prep_warp == pytest.approx(0.7, abs=1e-3)
    assert near.prep_start == pytest.approx(0.0, abs=1e-9)
    [gone] = place_events([req("count_three", lead + 0.3 * prep)], library, duration=5.0)
    assert gone.status == "dropped" and "start" in gone.note
    [late] = place_events([req("count_three", 4.9)], library, duration=5.0)
    assert late.status == "dropped" and "end" in late.note


def test_close_events_are_chained_merged_or_dropped_by_priority(library):
    a, b = phases(library, "thumbs_up"), phases(library, "count_three")
    # Too close to retract and prepare but with room for a transition: one gesture unit.
    gap = 0.4
    second = 2.0 + (a.stroke_end - a.apex) + gap + (b.apex - b.stroke_start)
    e1, e2 = place_events([req("thumbs_up", 2.0), req("count_three", second)], library, duration=8.0)
    assert e1.chained_to_next and e2.chained_from_previous and e1.unit == e2.unit >= 0
    assert e1.status == e2.status == "placed" and "chained" in e1.note
    # Overlapping strokes: the same gesture merges, another one is dropped, by priority.
    same = place_events(
        [req("thumbs_up", 2.0, confidence=0.9), req("thumbs_up", 2.3, confidence=0.5)], library, duration=8.0
    )
    assert [e.status for e in same] == ["placed", "merged"] and "merged into thumbs_up" in same[1].note
    mixed = place_events(
        [req("thumbs_up", 2.0, confidence=0.9, source="embedded"), req("count_three", 2.3, confidence=0.2, source="markup")],
        library, duration=8.0,
    )  # fmt: skip
    by_id = {e.gesture_id: e for e in mixed}
    assert by_id["count_three"].status == "placed"  # markup beats a more confident embedded pick
    assert by_id["thumbs_up"].status == "dropped" and "count_three" in by_id["thumbs_up"].note
    # A head gesture shares no part with a one-handed one: both stay, overlapping in time.
    both = place_events([req("thumbs_up", 2.0), req("head_nod", 2.1)], library, duration=8.0)
    assert [e.status for e in both] == ["placed", "placed"]
    assert [e.active_arms for e in both] == [["right"], []]


def test_sides_takes_and_unknown_ids(library):
    [left] = place_events([req("thumbs_up", 2.0, side="left")], library, duration=5.0)
    assert left.active_arms == ["left"] and set(left.body_parts) == {"left_arm", "left_hand"}
    [both] = place_events([req("big_wide", 2.0, side="left")], library, duration=5.0)
    assert both.active_arms == ["left", "right"] and "ignored" in both.note
    r = PlacementRequest(gesture_id="thumbs_up", apex=2.0, word_index=4)
    takes = {place_events([r], library, duration=5.0, seed=s)[0].take for s in range(8)}
    assert takes == {"a", "b"}  # chosen from the seed...
    assert (
        place_events([r], library, duration=5.0, seed=3)[0].take
        == place_events([r], library, duration=5.0, seed=3)[0].take
    )
    [fixed] = place_events([req("thumbs_up", 2.0, take="zz")], library, duration=5.0)
    assert fixed.take in ("a", "b") and "take 'zz'" in fixed.note
    with pytest.raises(CatalogError, match="thumbs_upp.*did you mean thumbs_up"):
        place_events([req("thumbs_upp", 2.0)], library, duration=5.0)
    rows = [
        PlacedEvent(gesture_id="ok_sign", apex=1.0),
        PlacedEvent(gesture_id="clap", apex=2.0, status="dropped"),
    ]
    assert [r.gesture_id for r in requests_from_timeline(rows)] == ["ok_sign"]


# -- blending --------------------------------------------------------------------------------------
def test_token_plan_and_keep_beat(library, clips):
    [ev] = place_events([req("count_three", 2.5)], library, duration=6.0)
    plan = token_plan([ev], 45, margin=0.4)
    gesture = np.flatnonzero(plan == GESTURE)
    assert gesture[0] / 7.5 >= ev.stroke_start and (gesture[-1] + 1) / 7.5 <= ev.stroke_end
    free = np.flatnonzero(plan == FREE)
    assert free[0] == int(np.floor((ev.prep_start - 0.4) * 7.5)) and plan[0] == plan[-1] == BASE
    base = beat_base(6.0)
    layers, _ = build_layers([ev], clips, base.num_frames)
    out = apply_layers(base, layers)
    assert keep_beat(out, base, layers, 0.0) is out
    beat = keep_beat(out, base, layers, 1.0)
    k = int(round(2.5 * FPS))
    elbow = JOINT_INDEX["right_elbow"]
    assert not np.allclose(beat.rotations[k, elbow], out.rotations[k, elbow])
    np.testing.assert_array_equal(
        beat.rotations[:, JOINT_INDEX["left_elbow"]], out.rotations[:, JOINT_INDEX["left_elbow"]]
    )


def test_slerp_and_ramps():
    q0 = axis_angle_to_quat(np.array([0.0, 0.0, 0.0]))
    q1 = axis_angle_to_quat(np.array([0.0, 0.0, 1.0]))
    mid = qslerp(q0, q1, np.array(0.5))
    assert np.allclose(mid, axis_angle_to_quat(np.array([0.0, 0.0, 0.5])))
    assert np.allclose(qslerp(q0, -q1, np.array(1.0)), -q1) or np.allclose(qslerp(q0, -q1, np.array(1.0)), q1)
    x = np.linspace(0, 1, 11)
    s = ease(x)
    assert s[0] == 0 and s[-1] == 1 and np.all(np.diff(s) >= 0)


def test_one_handed_gesture_keeps_the_other_arm_and_lands_its_apex(library, clips):
    base = beat_base(6.0)
    [ev] = place_events([req("count_three", 2.5)], library, duration=6.0)
    layers, seams = build_layers([ev], clips, base.num_frames, BlendSettings())
    out = apply_layers(base, layers)
    left = list(BODY_PARTS["left_arm"] + BODY_PARTS["left_hand"] + BODY_PARTS["head"])
    np.testing.assert_array_equal(out.rotations[:, left], base.rotations[:, left])  # bit for bit
    right = list(BODY_PARTS["right_arm"])
    k = int(round(2.5 * FPS))
    assert not np.allclose(out.rotations[k, right], base.rotations[k, right])
    far = [f for f in range(base.num_frames) if abs(f / FPS - 2.5) > 2.0]
    np.testing.assert_array_equal(out.poses[far], base.poses[far])  # untouched outside the event
    # The apex lands within one frame: the best integer alignment of the played stroke with the
    # clip's own frames is the target's.
    ph = phases(library, "count_three")
    pos = joint_positions(out)
    clip_pos = joint_positions(clips.sample_motion(ev, np.arange(0, 60) / FPS))
    wrist = [JOINT_INDEX["right_wrist"], JOINT_INDEX["right_index3"], JOINT_INDEX["right_thumb3"]]
    frames = np.arange(int(np.ceil(ev.stroke_start * FPS)), int(ev.stroke_end * FPS))
    expected = ph.apex * FPS - ev.apex * FPS  # clip frame = output frame + expected
    errors = {}
    for d in range(int(np.floor(expected)) - 4, int(np.ceil(expected)) + 5):
        src = frames + d
        ok = (src >= 0) & (src < len(clip_pos))
        rel = pos[frames[ok]][:, wrist] - pos[frames[ok]][:, :1]
        crel = clip_pos[src[ok]][:, wrist] - clip_pos[src[ok]][:, :1]
        errors[d] = np.linalg.norm(rel - crel, axis=-1).mean()
    best = min(errors, key=errors.get)
    assert abs(best - expected) <= 1.0, (best, expected, errors)
    # recognisable: the played stroke is the clip (torso follows the clip during the stroke)
    assert max(recognisability_cm(out, [ev], clips)) <= 3.0
    assert active_joints(ev) == sorted(BODY_PARTS["right_arm"] + BODY_PARTS["right_hand"])
    assert {s.kind for s in seams} == {"fade-in", "fade-out"}


def test_chained_gestures_do_not_pass_through_the_base(library, clips):
    base = beat_base(6.0)
    a, b = phases(library, "thumbs_up"), phases(library, "count_three")
    second = 2.0 + (a.stroke_end - a.apex) + 0.4 + (b.apex - b.stroke_start)
    placed = place_events([req("thumbs_up", 2.0), req("count_three", second)], library, duration=6.0)
    layers, seams = build_layers(placed, clips, base.num_frames)
    assert any("->" in layer.label for layer in layers) and any(s.kind == "chain" for s in seams)
    out = apply_layers(base, layers)
    elbow = JOINT_INDEX["right_elbow"]
    gap = range(int(np.ceil(placed[0].stroke_end * FPS)), int(placed[1].stroke_start * FPS))
    # In the gap the elbow goes from stroke pose to stroke pose, whatever the base does there.
    qa = clips.sample(placed[0], np.array([a.stroke_end]))[0, elbow]
    qb = clips.sample(placed[1], np.array([b.stroke_start]))[0, elbow]
    for f in gap:
        q = axis_angle_to_quat(out.rotations[f, elbow])
        between = min(abs(np.dot(q, qa)), abs(np.dot(q, qb)))
        assert between > 0.9 or abs(np.dot(qa, qb)) < 0.9


def test_no_velocity_spikes_at_seams_on_a_smooth_base(library, clips):
    base = beat_base(8.0, seed=2)
    placed = place_events(
        [req("thumbs_up", 2.0), req("big_wide", 4.5), req("point_self", 6.5)], library, duration=8.0
    )
    layers, seams = build_layers(placed, clips, base.num_frames)
    out = apply_layers(base, layers)
    ratios = seam_speed_ratios(joint_positions(out), seams)
    assert np.nanmax(ratios) <= 1.5, ratios
    assert max(recognisability_cm(out, placed, clips)) <= 3.0


def test_splice_forces_stroke_tokens_and_blends_the_clip_back(library, clips):
    from gesticulator.resources import example
    from gesticulator.rhythm.model import RhythmModel

    model = RhythmModel.load(debug_rhythm_model())
    wav = example("hello_demo.wav")
    feats = model.features(wav)
    seconds = 4.28
    placed = place_events([req("count_three", 2.2)], library, duration=seconds)
    a = splice(model, feats, seconds, placed, clips, seed=0)
    b = splice(model, feats, seconds, placed, clips, seed=0)
    np.testing.assert_array_equal(a.motion.poses, b.motion.poses)  # deterministic
    assert a.forced_tokens and all(placed[0].stroke_start * 7.5 <= k0 for k0, _ in a.forced_tokens)
    base_only = model.decode(model.generate_codes(feats, seconds, seed=0), num_frames=a.base.num_frames)
    np.testing.assert_array_equal(a.base.poses, base_only.poses)
    # The inactive arm comes from the model's stream, bit for bit, which keeps the beat motion's
    # own arm there (the model's way into and out of the gesture moves only its joints).
    left = list(BODY_PARTS["left_arm"] + BODY_PARTS["left_hand"])
    np.testing.assert_array_equal(a.motion.rotations[:, left], a.stream.rotations[:, left])
    angle = angle_between(a.motion.rotations[:, left], a.base.rotations[:, left])
    assert float(np.max(angle)) < 1e-5
    pos = joint_positions(a.motion)
    assert max(recognisability_cm(a.motion, placed, clips, positions=pos)) <= 3.0
    # The crossfades are smooth whatever the model does; the forced-token edges of the stream
    # are the model's business (a debug model is too small to judge: the benchmark does).
    fades = [s for s in a.seams if s.kind != "stream"]
    assert len(fades) >= 2 and np.nanmax(seam_speed_ratios(pos, fades)) <= 1.5
    assert any(s.kind == "stream" for s in a.seams)
    # The stream keeps the beat motion's tokens away from the gesture, the gesture's over its
    # stroke, and the model's own in between.
    plan = a.token_plan
    assert set(np.unique(plan)) == {BASE, FREE, GESTURE}
    np.testing.assert_array_equal(a.stream_codes[plan == BASE], a.base_codes[plan == BASE])
    k0, k1 = a.forced_tokens[0]
    assert np.all(plan[k0:k1] == GESTURE) and plan[k0 - 1] == FREE and plan[k1] == FREE
    # With no events the result is the base motion.
    none = splice(model, feats, seconds, [], clips, seed=0)
    np.testing.assert_array_equal(none.motion.poses, none.base.poses)
    assert PlacementSettings().min_prep_warp == 0.5
