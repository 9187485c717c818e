import math

import numpy as np
import pytest

from gesticulator.errors import GesticulatorError, MotionError
from gesticulator.eval import (
    Onsets,
    bc_lift,
    beat_consistency,
    beat_consistency_details,
    compare_to_reference,
    frozen_stretches,
    joint_position_error_cm,
    l1_diversity,
    motion_stats,
    speech_mask_from_audio,
    speech_mask_from_transcript,
)
from gesticulator.eval.metrics import joint_indices
from gesticulator.motion import joint_positions, rest_skeleton
from gesticulator.motion.skeleton import BODY_PARTS, JOINT_INDEX
from gesticulator.types import Motion, Word

from .conftest import BEAT2_TAKE, shared_file

FPS = 30.0
SHARED = BEAT2_TAKE.parent


def rhythmic_positions(
    seconds: float, period: float, amplitude: float = 0.6, phase: float = 0.5
) -> np.ndarray:
    """(T, 55, 3) rest-skeleton positions where every joint but the pelvis moves along x with
    speed amplitude * (1.2 - cos(2 pi (t - phase) / period)): speed minima (0.2 * amplitude, above
    BC's threshold) exactly at t = phase + k * period. (The default phase keeps minima off the
    edges of BC's window, where argrelextrema never reports one.)"""
    n = int(round(seconds * FPS))
    t = np.arange(n) / FPS
    w = 2 * np.pi / period
    x = amplitude * (1.2 * t - (np.sin(w * (t - phase)) - np.sin(-w * phase)) / w)
    p = np.repeat(rest_skeleton().rest_positions[None], n, axis=0)
    p[:, 1:, 0] += x[:, None]
    return p


def beat_times(seconds: float, period: float, phase: float = 0.5) -> np.ndarray:
    return np.arange(phase, seconds, period)


# -- beat consistency --------------------------------------------------------------------------------
def test_bc_is_one_when_speed_minima_sit_on_the_onsets():
    p = rhythmic_positions(20, period=2.0)
    onsets = Onsets(beat_times(20, 2.0))
    d = beat_consistency_details(p, onsets)
    assert d.score > 0.99
    assert d.window == (2.0, 18.0)
    assert np.allclose(d.onsets, np.arange(0.5, 16.0, 2.0))  # window-relative
    for beats in d.motion_beats:  # every joint beats on every onset inside the window
        assert np.allclose(beats, np.arange(0.5, 16.0, 2.0), atol=1e-9)
    assert beat_consistency(p, onsets, reference_speed="self") > 0.99


def test_bc_is_low_when_onsets_are_a_second_off():
    p = rhythmic_positions(20, period=2.0)
    shifted = Onsets(beat_times(20, 2.0) + 1.0)
    assert beat_consistency(p, shifted) == pytest.approx(math.exp(-1 / (2 * 0.3**2)), abs=1e-6)
    # sigma sets the tolerance: with sigma = 2 s a 1 s miss still scores exp(-1/8).
    assert beat_consistency(p, shifted, sigma=2.0) == pytest.approx(math.exp(-1 / 8), abs=1e-6)


def test_bc_of_a_still_motion_is_zero_and_of_silence_nan():
    rest = Motion.rest(600)
    onsets = Onsets(beat_times(20, 0.5))
    d = beat_consistency_details(rest, onsets)
    assert d.score == 0.0 and all(len(b) == 0 for b in d.motion_beats)
    assert beat_consistency(rest, onsets, reference_speed="self") == 0.0  # 0/0 speed is 0, no beats
    assert math.isnan(beat_consistency(rhythmic_positions(20, 2.0), Onsets([])))
    assert math.isnan(beat_consistency(rhythmic_positions(3, 2.0), onsets))  # nothing left after trim


def test_bc_ignores_root_translation():
    p = rhythmic_positions(20, period=2.0)
    walking = p + np.linspace(0, 3, len(p))[:, None, None] * np.array([1.0, 0.0, 0.5])
    onsets = Onsets(beat_times(20, 2.0) + 0.4)
    assert beat_consistency(walking, onsets) == pytest.approx(beat_consistency(p, onsets))


def test_bc_threshold_drops_minima_of_a_nearly_still_joint():
    p = rhythmic_positions(20, period=2.0, amplitude=0.02)  # minima at 0.004 m/s
    assert beat_consistency(p, Onsets(beat_times(20, 2.0))) < 0.5  # torso minima fall below 0.1
    assert beat_consistency(p, Onsets(beat_times(20, 2.0)), threshold=0.0) > 0.99


def test_emage_compat_tests_the_threshold_two_seconds_early():
    moving = rhythmic_positions(20, period=1.0)
    p = moving.copy()
    p[:60] = moving[60]  # still for the first 2 s (before the window), rhythmic after
    onsets = Onsets(beat_times(20, 1.0))
    ours = beat_consistency_details(p, onsets)
    emage = beat_consistency_details(p, onsets, emage_compat=True, reference_speed="beat2")
    # EMAGE tests a minimum at window frame j against the speed at motion frame j (not 60 + j):
    # for j < 60 that is the still start, so the window's first 2 s of beats are dropped.
    assert all(np.all(b >= 2.0 - 1e-9) for b in emage.motion_beats)
    assert all(np.any(b < 2.0) for b in ours.motion_beats)
    assert emage.score < ours.score


def test_bc_from_audio_clicks(tmp_path):
    import soundfile as sf

    seconds, period = 12.0, 1.0
    sr = 16000
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    rng = np.random.default_rng(0)
    for t in beat_times(seconds, period):
        i = int(t * sr)
        y[i : i + 800] = rng.uniform(-0.8, 0.8, 800) * np.exp(-np.arange(800) / 200)
    wav = tmp_path / "clicks.wav"
    sf.write(wav, y, sr)
    p = rhythmic_positions(seconds, period)
    d = beat_consistency_details(p, wav)
    # Detected onsets are within a hop or two (32 ms each) of the clicks, window-relative.
    nearest = np.abs(d.onsets[:, None] - np.arange(0.5, 8.0, 1.0)[None]).min(axis=1)
    assert len(d.onsets) >= 7 and nearest.max() < 0.07
    assert d.score > 0.97
    assert beat_consistency(p, y, sr=sr) == pytest.approx(d.score)  # samples work as well
    y32 = np.repeat(y, 2)  # the same audio at 32 kHz
    assert beat_consistency(p, y32, sr=32000) == pytest.approx(d.score, abs=0.02)
    assert bc_lift(p, wav, [np.roll(y, sr // 2)], sr=sr).lift > 0.5  # clicks half a beat off


def test_bc_lift_separates_own_from_other_onsets():
    p = rhythmic_positions(20, period=2.0)
    lift = bc_lift(p, Onsets(beat_times(20, 2.0)), [Onsets(beat_times(20, 2.0) + 1.0), Onsets([])])
    assert lift.own > 0.99 and math.isnan(lift.others[1])
    assert lift.other_mean == pytest.approx(lift.others[0])  # NaN (silent) others are skipped
    assert lift.lift == pytest.approx(lift.own - lift.other_mean) and lift.lift > 0.9
    with pytest.raises(GesticulatorError, match="at least one"):
        bc_lift(p, Onsets([1.0]), [])


def test_bc_resamples_a_motion_to_30_fps():
    m = Motion.rest(600, fps=60.0)
    assert beat_consistency(m, Onsets([3.0])) == 0.0
    with pytest.raises(MotionError, match="shape"):
        beat_consistency(np.zeros((100, 22, 3)), Onsets([3.0]))


# -- diversity, stats, freezes -------------------------------------------------------------------------
def test_l1_diversity_known_value():
    p = np.zeros((10, 55, 3))
    p[::2, JOINT_INDEX["right_wrist"], 0] = 0.1
    p[1::2, JOINT_INDEX["right_wrist"], 0] = -0.1
    assert l1_diversity(p) == pytest.approx(0.1)
    assert l1_diversity(p, ("upper", "hands")) == pytest.approx(0.1)
    assert l1_diversity(p, "lower") == 0.0
    p[:, :, 2] += np.arange(10)[:, None]  # walking does not count...
    assert l1_diversity(p) == pytest.approx(0.1)
    assert l1_diversity(p, root_relative=False) > 1.0  # ...unless asked


def linear_wrists(n: int = 300, speed: float = 0.5) -> np.ndarray:
    p = np.repeat(rest_skeleton().rest_positions[None], n, axis=0)
    for w in ("left_wrist", "right_wrist"):
        p[:, JOINT_INDEX[w], 1] += speed * np.arange(n) / FPS
    return p


def test_motion_stats_of_steady_hands():
    s = motion_stats(linear_wrists(speed=0.5))
    assert s.hand_speed == pytest.approx(0.5) and s.hand_speed_all == pytest.approx(0.5)
    assert s.jerk == pytest.approx(0.0, abs=1e-6)
    assert s.duration == pytest.approx(10.0) and s.speaking_fraction == 1.0
    mask = np.zeros(300, dtype=bool)
    mask[:150] = True
    half = motion_stats(linear_wrists(speed=0.5), speech_mask=mask)
    assert half.speaking_fraction == 0.5 and half.hand_speed == pytest.approx(0.5)
    with pytest.raises(GesticulatorError, match="frames"):
        motion_stats(linear_wrists(), speech_mask=mask[:100])


def test_motion_stats_of_a_motion_runs_fk(motion):
    s = motion_stats(motion)
    assert s.hand_speed > 0 and s.jerk > 0 and s.l1_diversity > 0
    assert s.l1_diversity_all >= s.l1_diversity  # all 55 joints include the 43 upper + hands


def test_frozen_stretch_detection():
    n = 600
    t = np.arange(n) / FPS
    p = np.repeat(rest_skeleton().rest_positions[None], n, axis=0)
    p[:, list(BODY_PARTS["upper"]), 1] += 0.05 * np.sin(2 * np.pi * t)[:, None]  # ~0.2 m/s swing
    p[240:330] = p[240]  # a 3 s freeze at 8-11 s
    p[450:480] = p[450]  # a 1 s pause at 15-16 s: too short to count
    p += (0.3 * t)[:, None, None] * np.array([1.0, 0.0, 0.0])  # walking does not count as moving
    f = frozen_stretches(p)
    assert f.count == 1 and 2.3 < f.longest <= 3.0
    ((start, end),) = f.stretches
    assert 8.0 <= start < 8.4 and 10.6 < end <= 11.0
    mask = np.ones(n, dtype=bool)
    mask[255:300] = False  # the speaker pauses in the middle of the freeze: no 2 s stretch left
    assert frozen_stretches(p, mask).count == 0
    rest = frozen_stretches(Motion.rest(300))
    assert rest.count == 1 and rest.longest == pytest.approx(10.0)


def test_compare_to_reference():
    ref = motion_stats(linear_wrists(speed=0.5))
    gen = motion_stats(linear_wrists(speed=0.6))
    c = compare_to_reference(gen, ref)
    assert c.relative["hand_speed"] == pytest.approx(0.2)
    assert c.within["hand_speed"] and c.frozen_count_diff == 0
    still = motion_stats(Motion.rest(300))
    c = compare_to_reference(still, ref, {"hand_speed": 0.3})
    assert c.relative == {"hand_speed": pytest.approx(-1.0)} and not c.ok
    assert c.frozen_count_diff == 1 and c.frozen_longest_diff == pytest.approx(10.0)


# -- joint position error -------------------------------------------------------------------------------
def test_joint_error_zero_for_identical_and_translated_motions(motion):
    assert joint_position_error_cm(motion, motion) == 0.0
    moved = motion.copy(trans=motion.trans + np.array([1.0, 0.2, -3.0]))
    assert joint_position_error_cm(motion, moved) == pytest.approx(0.0, abs=1e-9)


def test_joint_error_of_a_translated_arm():
    a = np.repeat(rest_skeleton().rest_positions[None], 5, axis=0)
    b = a.copy()
    arm = list(BODY_PARTS["left_arm"])
    b[:, arm] += np.array([0.0, 0.03, 0.04])  # 5 cm
    assert joint_position_error_cm(a, b, "left_arm") == pytest.approx(5.0)
    assert joint_position_error_cm(a, b) == pytest.approx(5.0 * len(arm) / 55)
    assert joint_position_error_cm(a, b, "right_arm") == 0.0


def test_joint_error_of_a_rotated_shoulder():
    a = Motion.rest(4)
    poses = a.poses.copy()
    angle = 0.5
    poses[:, JOINT_INDEX["left_shoulder"] * 3 + 2] = angle  # about z
    b = a.copy(poses=poses)
    offset = rest_skeleton().offsets[JOINT_INDEX["left_elbow"]]
    expected = 2 * np.linalg.norm(offset[:2]) * math.sin(angle / 2) * 100  # chord of the xy part
    assert joint_position_error_cm(a, b, "left_elbow") == pytest.approx(expected, rel=1e-6)
    with pytest.raises(MotionError, match="same number of frames"):
        joint_position_error_cm(a, Motion.rest(3))


# -- speech masks ---------------------------------------------------------------------------------------
def test_speech_mask_from_transcript_bridges_short_gaps():
    words = [Word(word="a", start=0.0, end=1.0), Word(word="b", start=1.3, end=2.0), (3.0, 3.5)]
    mask = speech_mask_from_transcript(words, 120)
    assert mask[:60].all()  # 0.3 s gap bridged
    assert not mask[60:90].any()  # 1 s gap kept
    assert mask[90:105].all() and not mask[105:].any()


def test_speech_mask_from_audio():
    sr = 16000
    rng = np.random.default_rng(0)
    y = np.zeros(4 * sr, dtype=np.float32)
    for a, b in ((0.0, 1.0), (1.3, 2.0), (3.0, 3.5)):
        y[int(a * sr) : int(b * sr)] = 0.3 * rng.standard_normal(int((b - a) * sr))
    mask = speech_mask_from_audio(y, num_frames=120)
    assert mask[:60].all() and not mask[61:89].any() and mask[90:105].all() and not mask[106:].any()
    assert len(speech_mask_from_audio(y)) == 120
    assert not speech_mask_from_audio(np.zeros(sr)).any()


def test_joint_indices():
    assert joint_indices("upper") == BODY_PARTS["upper"]
    assert joint_indices(["left_wrist", 21, "left_wrist"]) == (20, 21)
    with pytest.raises(GesticulatorError, match="unknown joint"):
        joint_indices("tail")
    with pytest.raises(GesticulatorError, match="out of range"):
        joint_indices(55)


# -- the real BEAT2 take --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def beat2():
    from gesticulator.io import load_npz

    m = load_npz(shared_file(BEAT2_TAKE.with_suffix(".npz")))
    return m, joint_positions(m)


@pytest.mark.shared_data
def test_beat2_bc_and_lift(beat2):
    _, p = beat2
    own = shared_file(BEAT2_TAKE.with_suffix(".wav"))
    others = [shared_file(SHARED / f"2_scott_0_{i}_{i}.wav") for i in range(2, 6)]
    lift = bc_lift(p, own, others)
    assert 0.72 <= lift.own <= 0.80
    assert 0.70 <= lift.other_mean <= 0.78 and lift.own > max(lift.others)
    emage = beat_consistency(p, own, emage_compat=True)  # EMAGE's code: about 0.76
    assert 0.74 <= emage <= 0.79


@pytest.mark.shared_data
def test_beat2_motion_stats(beat2):
    from gesticulator.speech.transcripts import read_textgrid

    m, p = beat2
    transcript = read_textgrid(shared_file(BEAT2_TAKE.with_suffix(".TextGrid")))
    mask = speech_mask_from_transcript(transcript, m.num_frames)
    assert 0.85 < mask.mean() < 0.98
    audio_mask = speech_mask_from_audio(shared_file(BEAT2_TAKE.with_suffix(".wav")), num_frames=m.num_frames)
    assert (audio_mask == mask).mean() > 0.9
    s = motion_stats(p, mask)
    assert 0.3 < s.hand_speed < 0.8 and 20 < s.jerk < 120
    assert 5 < s.l1_diversity < 25 and s.frozen_count == 0
