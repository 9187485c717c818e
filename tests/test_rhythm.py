"""The rhythm model: representation, features, tokenizer, GPT, training (debug size), wrapper.

Real training and generation run end to end on a tiny BEAT2-layout corpus built from the shipped
hello_demo example (the debug config trains in seconds); the checkpoint is trained once per
module.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gesticulator.errors import GesticulatorError
from gesticulator.io import load_npz, save_npz
from gesticulator.motion.ops import mirror
from gesticulator.resources import example
from gesticulator.rhythm.features import FEATURE_DIM, WORD_SLICE, audio_features, num_tokens
from gesticulator.rhythm.lm import GPTConfig, RhythmGPT
from gesticulator.rhythm.model import ForcedSpan, RhythmModel, resolve_checkpoint
from gesticulator.rhythm.representation import (
    PART_DIMS,
    motion_to_parts,
    parts_to_motion,
    rest_parts,
)
from gesticulator.rhythm.tokenizer import MotionTokenizer, TokenizerConfig
from gesticulator.rhythm.train import load_config, train_rhythm
from gesticulator.types import Motion, Transcript, Word
from tests.conftest import BEAT2_TAKE, ZEGGS_TAKE, shared_file, smooth_motion

DEBUG = "rhythm_debug"


# -- representation --------------------------------------------------------------------------------
def test_parts_round_trip_keeps_modelled_joints_and_plants_the_feet(motion):
    parts = motion_to_parts(motion)
    assert {k: v.shape for k, v in parts.items()} == {"upper": (60, 84), "hands": (60, 180)}
    back = parts_to_motion(parts)
    assert back.num_frames == motion.num_frames and back.fps == 30.0
    # Compare as 6D (rotations), not axis-angle vectors: equal rotations can differ by 2*pi windings.
    again = motion_to_parts(back)
    np.testing.assert_allclose(again["hands"], parts["hands"], atol=1e-5)
    np.testing.assert_allclose(again["upper"][:, 6:], parts["upper"][:, 6:], atol=1e-5)
    # The pelvis: its heading is removed again on the way back in (nearly nothing left to remove).
    np.testing.assert_allclose(again["upper"][:, :6], parts["upper"][:, :6], atol=0.02)


def test_pelvis_keeps_tilt_loses_heading_and_the_feet_stay_planted(motion):
    from gesticulator.motion.kinematics import joint_positions
    from gesticulator.motion.rotations import axis_angle_to_matrix

    poses = motion.poses.copy().reshape(60, 55, 3)
    poses[:, 0] *= 0.25  # a speaker's pelvis: tilts and turns of a few degrees
    turned = poses.copy()
    turned[:, 0] = [0.0, 1.2, 0.0]  # facing 69 degrees to the side, upright
    parts = motion_to_parts(Motion(poses=poses.reshape(60, -1), trans=motion.trans, fps=30.0))
    upright = motion_to_parts(Motion(poses=turned.reshape(60, -1), trans=motion.trans, fps=30.0))
    np.testing.assert_allclose(upright["upper"][:, :6], np.tile([1, 0, 0, 0, 1, 0], (60, 1)), atol=1e-5)
    back = parts_to_motion(parts)
    tilt = axis_angle_to_matrix(back.rotations[:, 0])[:, :, 1]  # the pelvis's up axis
    assert np.degrees(np.arccos(tilt[:, 1].min())) > 2.0  # the tilt is kept
    pos = joint_positions(back)
    rest = joint_positions(parts_to_motion(rest_parts(1)))
    feet = [7, 8, 10, 11]  # ankles and feet
    np.testing.assert_allclose(pos[:, feet], np.repeat(rest[:, feet], 60, 0), atol=5e-3)


def test_parts_resample_other_frame_rates():
    m = smooth_motion(61, fps=60.0)  # 1 s at 60 fps -> 31 frames at 30 fps
    assert motion_to_parts(m)["upper"].shape[0] == 31


# -- features --------------------------------------------------------------------------------------
def test_audio_features_are_token_aligned_and_fill_word_columns():
    wav = example("hello_demo.wav")
    feats = audio_features(wav)
    assert feats.shape == (num_tokens(4.2810625), FEATURE_DIM) == (33, 37)
    assert np.isfinite(feats).all() and np.all(feats[:, WORD_SLICE] == 0)
    words = [Word(word="Hello", start=0.2, end=0.6), Word(word="everyone", start=0.7, end=1.3)]
    with_words = audio_features(wav, Transcript(words=words))
    cols = with_words[:, WORD_SLICE]
    assert np.all(cols[:, 0] == 1)  # has_transcript
    assert cols[1, 1] == 1 and cols[5, 1] == 1  # word starts at 0.2 s (token 1) and 0.7 s (token 5)
    assert cols[:, 3].max() <= 1 and cols[3, 3] == pytest.approx(1.0)  # token 3 = [0.4, 0.533) inside "Hello"
    np.testing.assert_array_equal(with_words[:, : WORD_SLICE.start], feats[:, : WORD_SLICE.start])


# -- tokenizer -------------------------------------------------------------------------------------
def _tiny_tokenizer() -> MotionTokenizer:
    torch.manual_seed(0)
    tok = MotionTokenizer(TokenizerConfig(hidden=16, latent=8, depth=1, levels=3, codebook_size=16))
    tok.train()
    parts = motion_to_parts(smooth_motion(64))
    tok({k: torch.from_numpy(v)[None] for k, v in parts.items()})  # k-means initialises the codebooks
    return tok.eval()


def test_tokenizer_codes_shape_and_decode_from_stored_codes(tmp_path):
    tok = _tiny_tokenizer()
    parts = {k: torch.from_numpy(v)[None] for k, v in motion_to_parts(smooth_motion(62)).items()}
    codes = tok.encode(parts)
    assert codes.shape == (1, 16, 2, 3) and codes.dtype == torch.int64  # ceil(62 / 4) tokens
    decoded = tok.decode(codes)
    assert {k: tuple(v.shape) for k, v in decoded.items()} == {"upper": (1, 64, 84), "hands": (1, 64, 180)}
    # Decoding needs only the decoder + codebooks: a fresh tokenizer without encoder weights.
    torch.save({k: v for k, v in tok.state_dict().items() if ".encoder." not in k}, tmp_path / "dec.pt")
    fresh = MotionTokenizer(tok.config)
    missing = fresh.load_state_dict(
        torch.load(tmp_path / "dec.pt", weights_only=True), strict=False
    ).missing_keys
    assert missing and all(".encoder." in k for k in missing)
    fresh.eval()
    for name in PART_DIMS:
        torch.testing.assert_close(fresh.decode(codes)[name], decoded[name])


# -- GPT -------------------------------------------------------------------------------------------
def _tiny_gpt() -> RhythmGPT:
    torch.manual_seed(0)
    return RhythmGPT(
        GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, levels=3, codebook_size=16, anchor_horizon=3)
    ).eval()


def test_gpt_cached_generation_matches_the_full_forward_pass():
    """The KV-cached single-step path computes what the training forward pass computes."""
    gpt = _tiny_gpt()
    n = 6
    audio = torch.randn(n, FEATURE_DIM)
    codes = gpt.generate(audio, prime=torch.tensor([1, 2]), temperature=0.0)
    prev = torch.cat([torch.tensor([[1, 2]]), codes[:-1, :, 0]])[None]
    margin = gpt.config.audio_margin
    padded = torch.nn.functional.pad(audio, (0, 0, margin, margin))[None]
    zeros = torch.zeros(1, n, 2, dtype=torch.long)
    x = gpt._previous(prev) + gpt.condition(padded, torch.zeros(1, dtype=torch.long), zeros, zeros[..., 0])
    x = x + gpt.pos_emb.weight[:n]
    for block in gpt.blocks:
        x = block(x)
    h = gpt.ln_f(x)
    greedy = gpt._part_logits(h, codes[None, :, :, 0], 0).argmax(-1)[0]
    torch.testing.assert_close(greedy, codes[:, 0, 0])


def test_gpt_generates_past_its_context_window_and_keeps_forced_codes():
    gpt = _tiny_gpt()
    n = 30  # > block_size 8: the window slides several times
    forced_codes = torch.zeros(n, 2, 3, dtype=torch.long)
    forced_mask = torch.zeros(n, dtype=torch.bool)
    forced_codes[12:16] = torch.randint(0, 16, (4, 2, 3))
    forced_mask[12:16] = True
    gen = torch.Generator().manual_seed(3)
    codes = gpt.generate(torch.randn(n, FEATURE_DIM), prime=torch.tensor([0, 0]), forced_codes=forced_codes,
                         forced_mask=forced_mask, temperature=1.0, top_k=8, generator=gen)  # fmt: skip
    assert codes.shape == (n, 2, 3) and int(codes.min()) >= 0 and int(codes.max()) < 16
    torch.testing.assert_close(codes[12:16], forced_codes[12:16])
    anchor_codes, dist = RhythmGPT.anchors(forced_codes[:, :, 0], forced_mask, horizon=3)
    assert dist[8:12].tolist() == [0, 3, 2, 1] and torch.equal(anchor_codes[11], forced_codes[12, :, 0])


# -- training end to end ---------------------------------------------------------------------------
def _tiny_corpus(root: Path) -> Path:
    """A BEAT2-layout corpus of hello_demo variants (the bootstrap corpus uses the same layout)."""
    (root / "smplxflame_30").mkdir(parents=True)
    (root / "wave16k").mkdir()
    (root / "transcripts").mkdir()
    demo = load_npz(example("hello_demo.npz"))
    variants = [demo, mirror(demo), demo.copy(poses=np.roll(demo.poses, 9, axis=0))]
    for i, m in enumerate(variants):
        save_npz(m, root / "smplxflame_30" / f"take{i}.npz")
        shutil.copy(example("hello_demo.wav"), root / "wave16k" / f"take{i}.wav")
    words = {
        "words": [
            {"word": "Hello", "start": 0.25, "end": 0.7},
            {"word": "everyone!", "start": 0.75, "end": 1.4},
        ]
    }
    (root / "transcripts" / "take0.json").write_text(json.dumps(words))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("rhythm")
    corpus = _tiny_corpus(base / "corpus")
    cfg = load_config(DEBUG)
    cfg.data.cache_dir = str(base / "cache")
    lines: list[str] = []
    result = train_rhythm(cfg, corpus, base / "run", log=lines.append)
    return {"base": base, "corpus": corpus, "cfg": cfg, "result": result, "lines": lines}


def test_debug_training_writes_checkpoints_logs_and_an_export(trained):
    result, run = trained["result"], trained["base"] / "run"
    assert result.tokenizer_step == 30 and result.gpt_step == 30
    for name in (
        "tokenizer.pt",
        "gpt.pt",
        "config.yaml",
        "train_log.jsonl",
        "model/model.pt",
        "model/model.json",
    ):
        assert (run / name).is_file(), name
    assert any(line.startswith("[tokenizer] step 10/30") for line in trained["lines"])
    assert any(line.startswith("[gpt] step 30/30") for line in trained["lines"])
    card = json.loads((run / "model" / "model.json").read_text())
    assert card["data_hash"] and card["gpt_step"] == 30 and card["size_mb"] < 1
    state = torch.load(run / "tokenizer.pt", weights_only=True)
    assert state["data_hash"] == card["data_hash"] and state["config"]["name"] == "rhythm_debug"


def test_training_resumes_from_the_run_directory(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["base"] / "run", run)
    cfg = copy.deepcopy(trained["cfg"])
    cfg.tokenizer_train.steps, cfg.gpt_train.steps = 30, 40  # tokenizer finished; the GPT trains on
    lines: list[str] = []
    result = train_rhythm(cfg, trained["corpus"], run, log=lines.append)
    assert "[tokenizer] finished at step 30; skipping" in lines
    assert any(line.startswith("[gpt] resuming from step 30 (") for line in lines)
    assert result.gpt_step == 40 and any(line.startswith("[gpt] step 40/40") for line in lines)
    assert not any(line.startswith("[gpt] step 10/") for line in lines)
    # The feature cache made the second run skip the prosody analysis: same data hash.
    assert (
        json.loads((run / "model" / "model.json").read_text())["data_hash"] == result.data_summary.split()[-1]
    )


def test_generate_is_finite_right_length_and_deterministic(trained):
    model = RhythmModel.load(trained["result"].model_dir)
    wav = example("hello_demo.wav")
    motion = model.generate(wav, seed=5)
    assert motion.num_frames == 129 and motion.fps == 30.0  # ceil(4.281 s * 30)
    assert np.isfinite(motion.poses).all() and np.all(motion.trans[:, [0, 2]] == 0)
    # standing on y = 0 like a BEAT2 take: the lowest ankle/foot joint on the floor
    from gesticulator.motion.kinematics import joint_positions
    from gesticulator.motion.stance import FOOT_JOINTS

    feet = joint_positions(motion)[:, list(FOOT_JOINTS), 1]
    assert abs(feet.min()) < 0.03 and feet.max() < 0.2
    again = model.generate(wav, seed=5)
    np.testing.assert_array_equal(motion.poses, again.poses)
    feats = audio_features(wav)
    other = model.generate(feats, seconds=10.0, seed=6)
    assert other.num_frames == 300
    assert not np.array_equal(model.generate_codes(feats, seed=5), model.generate_codes(feats, seed=6))


def test_forced_span_codes_come_out_unchanged(trained):
    model = RhythmModel.load(trained["base"] / "run")  # a run folder resolves to its model/
    clip = load_npz(example("hello_demo.npz")).slice(30, 62)
    clip_codes = model.encode(clip)
    assert clip_codes.shape == (8, model.parts, model.levels)
    feats = audio_features(example("hello_demo.wav"))
    codes = model.generate_codes(feats, seed=1, forced=[ForcedSpan(start_token=10, codes=clip_codes)])
    np.testing.assert_array_equal(codes[10:18], clip_codes)
    assert model.decode(codes).num_frames == 4 * len(feats)
    with pytest.raises(GesticulatorError, match="shape"):
        model.generate_codes(feats, forced=[ForcedSpan(start_token=0, codes=clip_codes[:, :1])])


def test_rest_is_forced_inside_long_pauses(trained):
    model = RhythmModel.load(trained["result"].model_dir)
    feats = audio_features(example("hello_demo.wav"))
    silence = np.zeros((20, FEATURE_DIM), dtype=np.float32)
    codes = model.generate_codes(np.concatenate([feats, silence, feats]), seed=0)
    n = len(feats)
    np.testing.assert_array_equal(codes[n + 4 : n + 18], np.repeat(model.rest_codes[None], 14, 0))
    np.testing.assert_array_equal(codes[[0, -1]], np.repeat(model.rest_codes[None], 2, 0))  # rest_at_ends
    free = model.generate_codes(feats, seed=0, rest_at_ends=False, rest_at_silence=False)
    assert free.shape == (n, model.parts, model.levels)


def test_short_pauses_are_held_not_gestured_through(trained):
    """A 0.8 s pause (shorter than the 1.2 s that rests) is held: the body eases once from the
    pose it stopped in to the pose it resumes from, so no joint reverses inside the pause."""
    from gesticulator.motion.kinematics import joint_positions
    from gesticulator.rhythm.features import pause_spans

    model = RhythmModel.load(trained["result"].model_dir)
    feats = audio_features(example("hello_demo.wav"))  # speech over frames 13..101
    pause = np.zeros((6, FEATURE_DIM), dtype=np.float32)  # 0.8 s of silence
    joined = np.concatenate([feats[:25], pause, feats[4:]])  # cut mid-speech on both sides
    spans = [s for s in pause_spans(joined) if s[1] > 100 and s[0] < 124]
    assert len(spans) == 1 and 24 <= spans[0][1] - spans[0][0] < 36
    a, b = spans[0]
    free = model.generate(joined, seed=3, hold_pause_seconds=None)
    held = model.generate(joined, seed=3)
    np.testing.assert_array_equal(free.poses[: a - 1], held.poses[: a - 1])  # only the pause changes
    np.testing.assert_array_equal(free.poses[b + 2 :], held.poses[b + 2 :])
    wrist = joint_positions(held)[a + 2 : b - 1, 21]  # right wrist, inside the ramps
    steps = np.diff(wrist, axis=0)
    assert (steps @ (wrist[-1] - wrist[0]) >= -1e-9).all()  # moves one way only: no beat in the pause
    forced = [
        ForcedSpan(
            start_token=len(feats), codes=model.generate_codes(joined, seed=3)[len(feats) : len(feats) + 6]
        )
    ]
    kept = model.generate(joined, seed=3, forced=forced)
    assert not np.allclose(kept.poses[a:b], held.poses[a:b])  # a forced span is never held


def test_missing_checkpoints_say_how_to_get_one(tmp_path, monkeypatch):
    with pytest.raises(GesticulatorError, match="gesticulator train"):
        RhythmModel.load(tmp_path / "nothing")
    import gesticulator.rhythm.model as model_module

    monkeypatch.setattr(model_module, "default_checkpoint_dir", lambda: tmp_path / "rhythm_default")
    with pytest.raises(GesticulatorError, match="default rhythm model is not installed.*gesticulator train"):
        resolve_checkpoint("default")


def test_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokenizer:\n  hiden: 3\n")
    with pytest.raises(GesticulatorError, match=r"bad.yaml.tokenizer: unknown setting\(s\) hiden"):
        load_config(bad)
    for name in ("rhythm_debug", "rhythm_default", "rhythm_gpu"):
        assert load_config(name).name == name


# -- real data -------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_beat2_layout_reader_on_the_beat2_sample(tmp_path):
    from gesticulator.rhythm.data import DataConfig, load_dataset

    take = BEAT2_TAKE.name
    for sub, suffix in (("smplxflame_30", ".npz"), ("wave16k", ".wav"), ("textgrid", ".TextGrid")):
        (tmp_path / "beat2" / sub).mkdir(parents=True)
        (tmp_path / "beat2" / sub / f"{take}{suffix}").symlink_to(shared_file(BEAT2_TAKE.with_suffix(suffix)))
    data = load_dataset(
        tmp_path / "beat2",
        DataConfig(mirror=False, style_by="speaker"),
        cache_dir=tmp_path / "cache",
        log=lambda _: None,
    )
    assert data.style_names == ["scott"] and len(data.takes) == 1
    t = data.takes[0]
    assert t.num_tokens == 1906 // 4 and t.parts["upper"].shape == (4 * t.num_tokens, 84)
    assert t.features[:, WORD_SLICE][:, 0].all()  # the TextGrid filled the word columns
    assert t.features[:, WORD_SLICE][:, 1].sum() > 150  # word starts (the take has ~200 words)


@pytest.mark.shared_data
def test_bvh_layout_reader_retargets_with_a_joint_map(tmp_path):
    from gesticulator.rhythm.data import DataConfig, load_dataset

    root = tmp_path / "zeggs"
    (root / "wav").mkdir(parents=True)
    (root / "take.bvh").symlink_to(shared_file(ZEGGS_TAKE.with_suffix(".bvh")))
    (root / "wav" / "take.wav").symlink_to(shared_file(ZEGGS_TAKE.with_suffix(".wav")))
    cfg = DataConfig(joint_map="beat_zeggs75", mirror=False)
    data = load_dataset(root, cfg, cache_dir=tmp_path / "cache", log=lambda _: None)
    t = data.takes[0]
    assert data.source.startswith("bvh:") and t.num_tokens > 60 * 7.5
    assert t.parts["hands"].shape == (4 * t.num_tokens, 180) and np.isfinite(t.parts["upper"]).all()


def test_cli_train_generate_eval(tmp_path, monkeypatch):
    """The user's path: `train` a debug model, export it, `generate` beat motion, `eval` it."""
    from typer.testing import CliRunner

    from gesticulator.cli import app

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    corpus = _tiny_corpus(tmp_path / "corpus")
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "train",
            DEBUG,
            "--data",
            str(corpus),
            "--run",
            str(tmp_path / "run"),
            "--export",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "model.pt").is_file()
    out = tmp_path / "beat.npz"
    res = runner.invoke(
        app, ["generate", str(example("hello_demo.wav")), "-o", str(out), "--model", str(tmp_path / "m")]
    )
    assert res.exit_code == 0, res.output
    motion = load_npz(out)
    assert np.isfinite(motion.poses).all() and abs(motion.duration - 4.3) < 0.05
    # eval on the tiny corpus (takes with motion: reconstruction; generation on every take)
    res = runner.invoke(
        app, ["eval", "--data", str(corpus), "--model", str(tmp_path / "m"), "--takes", "take0"]
    )
    assert res.exit_code == 0, res.output
    assert "Tokenizer reconstruction" in res.output and "generated, mean" in res.output
    # bad input: one line, non-zero exit
    res = runner.invoke(app, ["generate", str(tmp_path / "missing.wav"), "-o", str(out)])
    assert res.exit_code != 0 and "audio file not found" in res.output


def test_shipped_default_checkpoint_generates():
    """The checkpoint in checkpoints/rhythm_default (trained by pipelines/rhythm_default.yaml)."""
    model = RhythmModel.load("default")
    assert model.info["name"] == "rhythm_default" and model.info["data_hash"]
    motion = model.generate(str(example("hello_demo.wav")), seed=0)
    again = model.generate(str(example("hello_demo.wav")), seed=0)
    assert np.isfinite(motion.poses).all() and abs(motion.duration - 4.3) < 0.05
    np.testing.assert_array_equal(motion.poses, again.poses)
    # it moves while speaking (not a frozen rest pose)
    assert np.abs(np.diff(motion.poses, axis=0)).sum(axis=1).max() > 0.01
