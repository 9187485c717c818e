"""Bad input, for every command and API entry (issue 9, see RELIABILITY.md): each one gives a
one-line `error: <problem> — <fix>` on stderr, a non-zero exit and no traceback (unless --debug),
or a one-line `warning:` and a sensible result; a failed command leaves no output behind.

Fast on purpose: the shipped default rhythm model (loads in about a second), 3 s of speech, npz
outputs only (no video)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from gesticulator.api import Gesticulator, TranscriptWarning
from gesticulator.cli import app
from gesticulator.errors import GesticulatorError, InputFileError, MotionError
from gesticulator.io import load_motion, load_npz, save_bvh, save_npz
from gesticulator.resources import example
from gesticulator.speech.audio import load_audio
from gesticulator.speech.transcripts import read_transcript
from tests.conftest import smooth_motion

SR = 16000
SECONDS = 3.0
runner = CliRunner()


# -- inputs ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """Every bad (and every odd-but-fine) input, written once."""
    import librosa

    d = tmp_path_factory.mktemp("bad_input")
    speech = load_audio(example("hello_demo.wav"), sr=SR)[: int(SR * SECONDS)]
    sf.write(d / "ok.wav", speech, SR)
    (d / "empty.wav").write_bytes(b"")
    (d / "junk.wav").write_bytes(b"this is not audio at all " * 40)
    whole = (d / "ok.wav").read_bytes()
    (d / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    (d / "header_only.wav").write_bytes(whole[:30])
    sf.write(d / "8k.wav", librosa.resample(speech, orig_sr=SR, target_sr=8000), 8000)
    sf.write(d / "48k.wav", librosa.resample(speech, orig_sr=SR, target_sr=48000), 48000)
    sf.write(d / "stereo.wav", np.stack([speech, 0.5 * speech], axis=1), SR)
    sf.write(d / "six.wav", 0.5 * np.stack([speech] * 6, axis=1), SR)
    sf.write(d / "silence.wav", np.zeros(SR, np.float32), SR)
    sf.write(d / "short.wav", speech[: int(0.2 * SR)], SR)

    words = [{"word": "Hello", "start": 0.1, "end": 0.5}, {"word": "everyone!", "start": 0.6, "end": 1.2}]
    (d / "good.json").write_text(json.dumps({"words": words}))
    (d / "bad.json").write_text("{not json")
    (d / "list_of_numbers.json").write_text("[1, 2, 3]")
    (d / "no_word_field.json").write_text(json.dumps({"words": [{"text": "hi", "start": 0, "end": 1}]}))
    (d / "bad.TextGrid").write_text("garbage\nxmin = ")
    (d / "bad.srt").write_text("1\nnot a time --> x\nhello\n")
    late = [*words, {"word": "later", "start": 9.0, "end": 9.5}]
    (d / "too_long.json").write_text(json.dumps({"words": late}))
    (d / "out_of_order.json").write_text(json.dumps({"words": words[::-1]}))

    (d / "unknown_gesture.txt").write_text("Hello [gesture:xyz] everyone!")
    (d / "unclosed.txt").write_text("Hello [no-gesture] everyone!")
    (d / "bad_density.txt").write_text("Hello [density:ultra] everyone!")

    m = smooth_motion(30)
    save_npz(m, d / "m.npz")
    np.savez(d / "shape.npz", poses=np.zeros((10, 7)), trans=np.zeros((10, 3)), betas=np.zeros(10))
    poses = m.poses.copy()
    poses[3, 5] = np.nan
    np.savez(d / "nan.npz", poses=poses, trans=m.trans, betas=m.betas, mocap_frame_rate=30)
    np.savez(d / "zero.npz", poses=np.zeros((0, 165)), trans=np.zeros((0, 3)), betas=np.zeros(10))
    save_bvh(m, d / "m.bvh")
    text = (d / "m.bvh").read_text()
    (d / "zero.bvh").write_text(text[: text.index("MOTION")] + "MOTION\nFrames: 0\nFrame Time: 0.0333333\n")

    (d / "a_file").write_text("I am a file, not a folder")
    (d / "broken_lib" / "gestures").mkdir(parents=True)
    (d / "broken_lib" / "gestures" / "broken.yaml").write_text("id: [unclosed\n  : :\n")
    (d / "schema_lib" / "gestures").mkdir(parents=True)
    (d / "schema_lib" / "gestures" / "thing.yaml").write_text("id: thing\nfoo: 3\n")
    (d / "no_gestures_lib").mkdir()
    (d / "no_gestures_lib" / "wave.yaml").write_text("id: wave\n")
    return d


@pytest.fixture(scope="module")
def g() -> Gesticulator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Gesticulator.load()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_error(r, *needles: str) -> str:
    """Non-zero exit, stderr one line `error: ...` naming the problem, no traceback."""
    err = r.stderr.strip()
    assert r.exit_code not in (0, None), (r.exit_code, r.stdout, err)
    assert r.exit_code != 3, f"an internal error, not a user error: {err}"
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in r.stdout + err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def assert_ok(r, *warnings_: str) -> None:
    err = r.stderr.strip()
    assert r.exit_code == 0, (r.exit_code, r.stdout, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == len(warnings_), lines
    for line, needle in zip(lines, warnings_, strict=True):
        assert line.startswith("warning: ") and needle in line, line


def nothing_left(d: Path, name: str) -> bool:
    """No output folder, no temporary folder or file beside it."""
    return not (d / name).exists() and not list(d.glob(f".{name}.*"))


def animate(d, audio, name, *extra):
    return cli("animate", d / audio, "-o", d / name, "--formats", "npz", *extra)


def seconds(path: Path) -> float:
    m = load_npz(path)
    assert np.isfinite(m.poses).all() and np.isfinite(m.trans).all()
    return m.num_frames / m.fps


# -- audio -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("audio", "needles"),
    [
        ("missing.wav", ["audio file not found", "check the AUDIO path"]),
        ("empty.wav", ["is empty (0 bytes)", "re-record"]),
        ("junk.wav", ["not a readable audio file", "pass a WAV"]),
        ("header_only.wav", ["not a readable audio file"]),
        ("truncated.wav", ["is truncated", "ffmpeg -i in.wav fixed.wav"]),
        ("short.wav", ["too short to animate (0.20 s)", "at least 0.25 s"]),
    ],
)
def test_animate_bad_audio(d, audio, needles):
    name = f"out_{audio}"
    assert_error(animate(d, audio, name, "--transcript", d / "good.json"), *needles)
    assert nothing_left(d, name)


@pytest.mark.parametrize("audio", ["8k.wav", "48k.wav", "stereo.wav", "six.wav"])
def test_odd_rates_and_channels_are_resampled_and_downmixed(d, g, audio):
    result = g.animate(d / audio, transcript=d / "good.json")
    assert abs(result.motion.num_frames / result.motion.fps - SECONDS) < 0.1
    assert np.isfinite(result.motion.poses).all()
    assert [e.word for e in result.transcript.words] == ["Hello", "everyone!"]


def test_animate_48k_stereo_on_the_command_line(d):
    assert_ok(animate(d, "stereo.wav", "out_stereo", "--transcript", d / "good.json"))
    assert abs(seconds(d / "out_stereo" / "motion.npz") - SECONDS) < 0.1


def test_silence_with_asr_warns_and_gives_beat_only_motion(d, g):
    from gesticulator.speech.asr import NoSpeechWarning

    with pytest.warns(NoSpeechWarning, match="no speech detected"):
        result = g.animate(d / "silence.wav")
    assert result.transcript.words == [] and result.events == []
    assert abs(result.motion.num_frames / result.motion.fps - 1.0) < 0.1
    assert np.isfinite(result.motion.poses).all()


def test_silence_with_a_transcript_animates_the_given_words(d):
    assert_ok(animate(d, "silence.wav", "out_silence", "--transcript", d / "good.json"))
    assert abs(seconds(d / "out_silence" / "motion.npz") - 1.0) < 0.1


def test_api_bad_audio(d, g):
    with pytest.raises(InputFileError, match="audio file not found"):
        g.animate(d / "missing.wav")
    with pytest.raises(InputFileError, match="not a readable audio file"):
        g.animate(d / "junk.wav", transcript=d / "good.json")
    with pytest.raises(InputFileError, match="too short to animate"):
        g.animate(d / "short.wav", transcript=d / "good.json")


def test_transcribe_truncated_audio(d):
    assert_error(cli("transcribe", d / "truncated.wav", "-o", d / "t.json"), "is truncated")
    assert not (d / "t.json").exists()


# -- transcripts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("transcript", "needles"),
    [
        ("missing.json", ["--transcript file not found"]),
        ("bad.json", ["bad.json line 1: not valid JSON", "fix the JSON syntax"]),
        ("list_of_numbers.json", ["words[0]", "expected {"]),
        ("no_word_field.json", ["words[0].word: Field required"]),
        ("bad.TextGrid", ["bad.TextGrid", "re-export it from Praat"]),
        ("bad.srt", ["bad.srt line 2: bad cue timing", "00:00:01,000 --> 00:00:02,500"]),
    ],
)
def test_animate_bad_transcript(d, transcript, needles):
    name = f"out_{transcript}"
    assert_error(animate(d, "ok.wav", name, "--transcript", d / transcript), *needles)
    assert nothing_left(d, name)


def test_plan_bad_transcript(d):
    assert_error(cli("plan", d / "bad.json", "-o", d / "plan.json"), "not valid JSON")
    assert not (d / "plan.json").exists()


def test_read_transcript_api(d):
    for name, match in (("bad.json", "not valid JSON"), ("bad.srt", "bad cue timing")):
        with pytest.raises(InputFileError, match=match):
            read_transcript(d / name)


def test_transcript_longer_than_the_audio_drops_the_late_words(d, g):
    with pytest.warns(TranscriptWarning, match="1 of 3 words start after the audio ends"):
        result = g.animate(d / "ok.wav", transcript=d / "too_long.json")
    assert [w.word for w in result.transcript.words] == ["Hello", "everyone!"]
    assert all(e.apex < SECONDS for e in result.events)
    r = animate(d, "ok.wav", "out_too_long", "--transcript", d / "too_long.json")
    assert_ok(r, "dropped them — check that the transcript belongs to this audio")


def test_transcript_out_of_order_is_sorted(d, g):
    with pytest.warns(TranscriptWarning, match="not in time order"):
        result = g.animate(d / "ok.wav", transcript=d / "out_of_order.json")
    assert [w.word for w in result.transcript.words] == ["Hello", "everyone!"]
    assert result.transcript.sentences[0].start <= result.transcript.sentences[0].end


# -- script markup ---------------------------------------------------------------------------------
MARKUP = [
    ("unknown_gesture.txt", ["[gesture:xyz] names an unknown gesture id 'xyz'"]),
    ("unclosed.txt", ["unclosed [no-gesture] at line 1, column 7", "end the span with [/no-gesture]"]),
    ("bad_density.txt", ["bad density 'ultra'", "use [density:low], [density:normal] or [density:high]"]),
]


@pytest.mark.parametrize(("script", "needles"), MARKUP)
def test_animate_bad_markup(d, script, needles):
    name = f"out_{script}"
    assert_error(animate(d, "ok.wav", name, "--script", d / script), *needles)
    assert nothing_left(d, name)


@pytest.mark.parametrize(("script", "needles"), MARKUP)
def test_plan_bad_markup(d, script, needles):
    assert_error(cli("plan", d / script, "-o", d / "plan.json"), *needles)
    assert not (d / "plan.json").exists()


def test_speak_bad_markup_fails_before_speaking(d, g):
    pytest.importorskip("piper")
    for script, needles in MARKUP:
        with pytest.raises(GesticulatorError, match=needles[0].replace("[", r"\[")):
            g.speak((d / script).read_text())
    r = cli("speak", (d / "unclosed.txt").read_text(), "-o", d / "out_speak", "--audio-only")
    assert_error(r, "unclosed [no-gesture]")
    assert_error(cli("speak", "   ", "-o", d / "out_speak"), "the script is empty")
    assert nothing_left(d, "out_speak")


# -- motion files ----------------------------------------------------------------------------------
MOTIONS = [
    ("shape.npz", "poses has shape (10, 7), expected (frames, 165) for SMPL-X"),
    ("nan.npz", "poses contains 1 NaN/Inf values"),
    ("zero.npz", "has zero frames"),
    ("missing.npz", "motion file not found"),
]


@pytest.mark.parametrize(("motion", "needle"), MOTIONS)
def test_bad_motion_files(d, motion, needle):
    assert_error(cli("info", d / motion), needle)
    name = f"out_{motion}"
    assert_error(cli("export", d / motion, "--to", "npz,bvh", "-o", d / name), needle)
    assert nothing_left(d, name)
    with pytest.raises((MotionError, InputFileError), match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_motion(d / motion)


def test_zero_frame_bvh(d):
    assert_ok(cli("info", d / "zero.bvh"), "zero.bvh has zero frames")
    r = cli("export", d / "zero.bvh", "--to", "npz", "-o", d / "out_zero_bvh")
    assert_error(r, "zero.bvh has zero frames", "export a BVH with at least one frame")
    assert nothing_left(d, "out_zero_bvh")


# -- outputs ---------------------------------------------------------------------------------------
def test_output_folder_that_is_a_file(d):
    before = (d / "a_file").read_text()
    r = animate(d, "ok.wav", "a_file", "--transcript", d / "good.json")
    assert_error(r, "exists and is not a folder", "choose another -o folder")
    r = cli("export", d / "m.npz", "--to", "npz,bvh", "-o", d / "a_file")
    assert_error(r, "exists and is not a folder", "choose another -o folder")
    assert (d / "a_file").read_text() == before and not list(d.glob(".a_file.*"))


def test_a_failed_write_leaves_nothing_behind(d, g, monkeypatch):
    """A full disk (or a read-only folder, which root ignores) while writing the outputs."""
    import gesticulator.io.bvh

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(gesticulator.io.bvh, "save_bvh", full_disk)
    result = g.animate(d / "ok.wav", transcript=d / "good.json")
    with pytest.raises(GesticulatorError, match="No space left on device — free disk space"):
        result.save(d / "out_full", ["npz", "bvh"])
    assert nothing_left(d, "out_full")
    r = animate(d, "ok.wav", "out_full", "--transcript", d / "good.json", "--formats", "npz,bvh")
    assert_error(r, "cannot write the outputs into", "No space left on device")
    assert nothing_left(d, "out_full")


def test_export_is_all_or_nothing(d, monkeypatch):
    """A format that fails after others were written (here the BVH, on a full disk) leaves -o as
    it was: no npz from before the failure, no output or temporary folder."""
    import gesticulator.io

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(gesticulator.io, "save_bvh", full_disk)
    r = cli("export", d / "m.npz", "--to", "npz,bvh", "-o", d / "out_export_full")
    assert_error(r, "cannot write the outputs into", "No space left on device")
    assert nothing_left(d, "out_export_full")
    (d / "out_export_kept").mkdir()
    (d / "out_export_kept" / "m.npz").write_bytes(b"an older export")
    r = cli("export", d / "m.npz", "--to", "npz,bvh", "-o", d / "out_export_kept")
    assert_error(r, "No space left on device")
    assert (d / "out_export_kept" / "m.npz").read_bytes() == b"an older export"
    assert not list(d.glob(".out_export_kept.*"))


def test_read_only_output_folder_simulated(d, monkeypatch):
    """What a read-only folder does to a non-root user: creating the temporary file/folder fails."""
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    r = cli("export", d / "m.npz", "--to", "npz,bvh", "-o", d / "out_ro")
    assert_error(r, "cannot write into", "Permission denied — choose a writable folder")
    r = animate(d, "ok.wav", "out_ro2", "--transcript", d / "good.json")
    assert_error(r, "cannot write into", "Permission denied — choose a writable folder")
    assert nothing_left(d, "out_ro") and nothing_left(d, "out_ro2")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(d):
    ro = d / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_error(
            animate(d, "ok.wav", "read_only/out", "--transcript", d / "good.json"), "Permission denied"
        )
        assert_error(cli("export", d / "m.npz", "--to", "npz", "-o", ro), "Permission denied")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# -- gesture library -------------------------------------------------------------------------------
def test_broken_gesture_yaml(d):
    lib = d / "broken_lib"
    needles = ("broken.yaml line 2: not valid YAML", "fix the syntax")
    assert_error(cli("library", "validate", "--library", lib), *needles)
    assert_error(animate(d, "ok.wav", "out_lib", "--transcript", d / "good.json", "--library", lib), *needles)
    assert nothing_left(d, "out_lib")
    r = cli("library", "validate", "--library", d / "schema_lib")
    assert_error(r, "thing.yaml: field 'category': Field required", "fix the gesture file")


def test_library_folder_problems(d):
    r = cli("library", "validate", "--library", d / "a_file")
    assert_error(r, "gesture library folder not found", "check the --library path")
    assert_ok(
        cli("library", "validate", "--library", d / "no_gestures_lib"),
        "has YAML files but no gestures/ folder",
    )


# -- the real process: one line, no traceback; --debug shows it --------------------------------------
def test_real_process_one_line_and_debug_traceback(d):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "gesticulator.cli", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    r = run("animate", d / "junk.wav", "-o", d / "out_proc", "--transcript", d / "good.json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run("--debug", "info", d / "nan.npz")
    assert r.returncode != 0 and "Traceback" in r.stderr and "MotionError" in r.stderr
    assert nothing_left(d, "out_proc")


# == the other entry points (issue 9, second part) ===================================================
# Each case is the real command in this process (CliRunner) or the real API; nothing of ours is
# stubbed. Fast: every case here fails (or warns) before any model runs, except where noted.


@pytest.fixture(scope="module")
def e(tmp_path_factory) -> Path:
    """Inputs for the entry points below: configs, checkpoints, libraries, manifests, encodings."""
    import torch

    e = tmp_path_factory.mktemp("entry_points")
    speech = load_audio(example("hello_demo.wav"), sr=SR)[: int(SR * SECONDS)]
    sf.write(e / "ok.wav", speech, SR)
    (e / "a_file").write_text("I am a file, not a folder")
    (e / "empty").mkdir()
    # training configs
    (e / "bad.yaml").write_text("tokenizer: [unclosed\n")
    (e / "unknown.yaml").write_text("tokenizer:\n  hiden: 3\n")
    # checkpoints: garbage, cut off, another motion representation, keys missing, a broken card
    from gesticulator.rhythm.model import default_checkpoint_dir

    real = default_checkpoint_dir() / "model.pt"
    for name in ("garbage", "truncated", "other_repr", "no_config", "bad_card"):
        (e / name).mkdir()
    (e / "garbage" / "model.pt").write_bytes(b"not a checkpoint " * 100)
    (e / "truncated" / "model.pt").write_bytes(real.read_bytes()[:100_000])
    state = torch.load(real, weights_only=True)
    torch.save({**state, "representation_version": 1}, e / "other_repr" / "model.pt")
    torch.save({k: v for k, v in state.items() if k != "tokenizer_config"}, e / "no_config" / "model.pt")
    (e / "bad_card" / "model.pt").symlink_to(real)
    (e / "bad_card" / "model.json").write_text("{not json")
    return e


def e_cli(e: Path, *args):
    return cli(*[str(a).replace("{e}", str(e)) for a in args])


# -- train / eval / generate / data bootstrap ----------------------------------------------------------
RHYTHM_CASES = [
    (("train", "{e}/missing.yaml", "--data", "{e}/empty"), ["training config not found", "pipelines/ preset"]),
    (("train", "{e}/bad.yaml", "--data", "{e}/empty"), ["bad.yaml line 2: not valid YAML (expected", "fix the YAML syntax"]),
    (("train", "{e}/unknown.yaml", "--data", "{e}/empty"), ["unknown setting(s) hiden", "known settings:"]),
    (("train", "rhythm_debug", "--data", "{e}/missing"), ["dataset folder not found", "data bootstrap"]),
    (("train", "rhythm_debug", "--data", "{e}/a_file"), ["dataset folder not found"]),
    (("train", "rhythm_debug", "--data", "{e}/empty", "--run", "{e}/run"), ["no takes with both motion and audio"]),
    (("train", "rhythm_debug", "--data", "{e}/empty", "--run", "{e}/a_file"), ["run folder", "is a file, not a folder"]),
    (("eval", "--data", "{e}/missing"), ["evaluation folder not found"]),
    (("eval", "--data", "{e}/empty"), ["no .wav takes found", "BEAT2 folder"]),
    (("eval", "--data", "{e}/empty", "--model", "{e}/truncated"), ["is not a readable rhythm checkpoint"]),
    (("generate", "{e}/ok.wav", "-o", "{e}/g.npz", "--model", "{e}/garbage"), ["is not a readable rhythm checkpoint (UnpicklingError)", "gesticulator train"]),
    (("generate", "{e}/ok.wav", "-o", "{e}/g.npz", "--model", "{e}/truncated"), ["is not a readable rhythm checkpoint"]),
    (("generate", "{e}/ok.wav", "-o", "{e}/g.npz", "--model", "{e}/other_repr"), ["trained on motion representation v1, this version uses v2", "retrain"]),
    (("generate", "{e}/ok.wav", "-o", "{e}/g.npz", "--model", "{e}/no_config"), ["is incomplete: no tokenizer_config"]),
    (("generate", "{e}/ok.wav", "-o", "{e}/g.npz", "--model", "{e}/missing"), ["rhythm model checkpoint not found"]),
    (("generate", "{e}/ok.wav", "-o", "{e}/g.txt"), ["output must be a .npz file", "-o motion.npz"]),
    (("generate", "{e}/ok.wav", "-o", "{e}/g.npz", "--temperature", "nan"), ["--temperature must be a number"]),
    (("generate", "{e}/missing.wav", "-o", "{e}/g.npz"), ["audio file not found"]),
    (("data", "bootstrap", "-o", "{e}/corpus", "--hours", "-1"), ["--hours must be positive"]),
    (("data", "bootstrap", "-o", "{e}/corpus", "--hours", "nan"), ["--hours must be positive"]),
    (("data", "bootstrap", "-o", "{e}/corpus", "--workers", "-2"), ["--workers must be 0 (one per CPU core) or more"]),
    (("data", "bootstrap", "-o", "{e}/a_file", "--hours", "0.001"), ["corpus folder", "is a file, not a folder"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needles"), RHYTHM_CASES, ids=lambda x: "-".join(x)[:60] if isinstance(x, tuple) else None
)
def test_rhythm_commands_bad_input(e, args, needles):
    assert_error(e_cli(e, *args), *needles)
    assert not (e / "g.npz").exists() and not (e / "corpus").exists()


def test_an_unreadable_model_card_is_a_warning(e):
    """model.json beside a checkpoint only describes it: broken, the model still loads."""
    r = e_cli(e, "generate", "{e}/ok.wav", "-o", "{e}/card.npz", "--model", "{e}/bad_card")
    assert_ok(r, "model.json is unreadable (JSONDecodeError); ignored it")
    assert abs(seconds(e / "card.npz") - SECONDS) < 0.1


# -- serve ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)  # a case that wrongly passes its checks would start the server: fail, not hang
def test_serve_bad_options(e, monkeypatch):
    """Only what fails before the server starts; HTTP-level bad input is tests/test_service.py
    (and a public address without a token is its test_refuses_public_address_without_token)."""
    import socket

    pytest.importorskip("fastapi")
    monkeypatch.delenv("GESTICULATOR_TOKEN", raising=False)
    data = ("--data", e / "service")
    port = str(_free_port())
    cases = [
        (("--port", "0"), ["--port 0 is out of range", "between 1 and 65535"]),
        (("--port", port, "--workers", "0"), ["--workers and --queue-size must be at least 1, got 0 and 16"]),
        (
            ("--port", port, "--max-upload-mb", "-1"),
            ["the --max-* limits must be positive", "--max-upload-mb 50"],
        ),
        (("--port", port, "--model", e / "missing"), ["rhythm model checkpoint not found"]),
        (
            ("--port", port, "--data", e / "a_file"),
            ["cannot create the data folder", "choose another --data"],
        ),
    ]
    for extra, needles in cases:
        assert_error(cli("serve", *data, *extra), *needles)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = cli("serve", *data, "--port", busy.getsockname()[1])
        assert_error(r, "Address already in use", "choose another --port or --host")
    monkeypatch.setenv("GESTICULATOR_TOKEN", "secret")
    r = cli("serve", *data, "--host", "no-such-host.invalid", "--port", port)
    assert_error(r, "cannot listen on no-such-host.invalid", "choose another --port or --host")


# -- view ----------------------------------------------------------------------------------------------
def test_view_bad_folders(e):
    """A missing folder is tests/test_viewer.py::test_find_outputs."""
    (e / "npz_only").mkdir()
    save_npz(smooth_motion(10), e / "npz_only" / "motion.npz")
    for folder in ("empty", "npz_only"):
        r = cli("view", e / folder, "--no-browser")
        assert_error(r, f"no .glb in {e / folder}", "--formats npz,glb")
    assert_error(cli("view", e / "a_file", "--no-browser"), "is not a folder or a .glb file")


# -- library add / import / build ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def lib_inputs(e) -> Path:
    import yaml

    from gesticulator.library.store import default_library_dir

    shipped = sorted((default_library_dir() / "gestures").glob("*.yaml"))
    data = yaml.safe_load(shipped[0].read_text(encoding="utf-8")) if shipped else None
    root = e / "lib_inputs"
    root.mkdir()
    if data is not None:
        (root / shipped[0].name).write_text(shipped[0].read_text(encoding="utf-8"))  # a duplicate id
        mine = {k: v for k, v in data.items() if k not in ("author", "takes")} | {"id": "my_gesture"}
        (root / "my_gesture.yaml").write_text(yaml.safe_dump(mine, allow_unicode=True))
        # the same gesture saved by a Windows editor (Windows-1252), with an accent in its text
        latin = mine | {"id": "my_latin", "meaning": "déjà vu, naïve café"}
        (root / "my_latin.yaml").write_bytes(yaml.safe_dump(latin, allow_unicode=True).encode("cp1252"))
    (root / "broken.yaml").write_text("id: [x\n")
    save_npz(smooth_motion(40), root / "clip.npz")
    np.savez(root / "nan.npz", poses=np.full((10, 165), np.nan), trans=np.zeros((10, 3)), betas=np.zeros(10))
    (root / "bvhs").mkdir()
    save_bvh(smooth_motion(20), root / "bvhs" / "wave.bvh")
    (root / "zero_bvhs").mkdir()
    text = (root / "bvhs" / "wave.bvh").read_text()
    (root / "zero_bvhs" / "x.bvh").write_text(
        text[: text.index("MOTION")] + "MOTION\nFrames: 0\nFrame Time: 0.0333333\n"
    )
    (root / "syntax_map.yaml").write_text("joints: [oops\n")
    (root / "keys_map.yaml").write_text("pelvis: Hips\n")
    (root / "list_map.yaml").write_text("- 1\n- 2\n")
    return root


def test_library_writing_commands_bad_input(lib_inputs):
    r_ = lib_inputs
    into = ("--into", r_ / "out_lib")
    clip = f"a={r_ / 'clip.npz'}"
    cases = [
        (("add", r_ / "missing.yaml", *into), ["gesture file not found"]),
        (("add", r_ / "broken.yaml", *into), ["broken.yaml line 2: not valid YAML", "fix the syntax"]),
        (("add", r_ / "my_gesture.yaml", *into), ["has no author: spec and no --clip was given", "--clip a=FILE.npz"]),
        (("add", r_ / "my_gesture.yaml", *into, "--clip", "a"), ["--clip 'a' is not TAKE=FILE.npz"]),
        (("add", r_ / "my_gesture.yaml", *into, "--clip", f"a={r_ / 'missing.npz'}"), ["motion file not found"]),
        (("add", r_ / "my_gesture.yaml", *into, "--clip", f"a={r_ / 'nan.npz'}"), ["poses contains 1650 NaN/Inf values"]),
        (("add", r_ / "my_gesture.yaml", "--into", r_ / "clip.npz", "--clip", clip), ["is a file, not a folder"]),
        (("import-bvh", r_ / "missing", "--joint-map", "mixamo", *into), ["BVH folder not found"]),
        (("import-bvh", r_ / "bvhs", "--joint-map", "nosuchmap", *into), ["joint map 'nosuchmap' not found (shipped maps:"]),
        (("import-bvh", r_ / "bvhs", "--joint-map", r_ / "syntax_map.yaml", *into), ["syntax_map.yaml line 2 is not valid YAML"]),
        (("import-bvh", r_ / "bvhs", "--joint-map", r_ / "keys_map.yaml", *into), ["unknown key(s) pelvis"]),
        (("import-bvh", r_ / "bvhs", "--joint-map", r_ / "list_map.yaml", *into), ["must be a YAML mapping with a 'joints:' section"]),
        (("import-bvh", r_ / "zero_bvhs", "--joint-map", "mixamo", *into), ["x.bvh has zero frames"]),
        (("import-npz", r_ / "missing.npz", "--id", "x_y", "--start", "0", "--end", "1", *into), ["motion file not found"]),
        (("import-npz", r_ / "clip.npz", "--id", "x_y", "--start", "1", "--end", "0.5", *into), ["clip range 1-0.5 s of clip.npz is empty"]),
        (("import-npz", r_ / "clip.npz", "--id", "Bad Id", "--start", "0", "--end", "1", *into), ["must be snake_case"]),
        (("build", "nosuch", *into), ["unknown gesture id(s)", "nosuch"]),
        (("build", "--into", r_ / "clip.npz"), ["is a file, not a folder"]),
    ]  # fmt: skip
    (r_ / "empty_bvhs").mkdir(exist_ok=True)
    cases.append((("import-bvh", r_ / "empty_bvhs", "--joint-map", "mixamo", *into), ["no .bvh files in"]))
    for args, needles in cases:
        if args[0] == "add" and "my_gesture" in str(args[1]) and not (r_ / "my_gesture.yaml").exists():
            continue  # no shipped library to copy a gesture from
        assert_error(cli("library", *args), *needles)
    assert not (r_ / "out_lib" / "gestures").exists() or not list((r_ / "out_lib" / "gestures").iterdir())


def test_library_duplicates_and_odd_but_usable_input(lib_inputs):
    r_ = lib_inputs
    if not (r_ / "my_gesture.yaml").exists():
        pytest.skip("no shipped gesture library")
    into = ("--into", r_ / "lib_ok")
    shipped = next(
        p
        for p in r_.glob("*.yaml")
        if p.stem not in ("my_gesture", "my_latin", "broken") and "map" not in p.stem
    )
    assert_error(
        cli("library", "add", shipped, *into), f"gesture id '{shipped.stem}' already exists", "--overwrite"
    )
    assert_ok(cli("library", "add", r_ / "my_gesture.yaml", *into, "--clip", f"a={r_ / 'clip.npz'}"))
    r = cli("library", "add", r_ / "my_gesture.yaml", *into, "--clip", f"a={r_ / 'clip.npz'}")
    assert_error(r, "gesture id 'my_gesture' already exists", "choose another id or pass --overwrite")
    # a clip range past the end of the take is cut at the end, with a warning
    r = cli(
        "library", "import-npz", r_ / "clip.npz", "--id", "long_cut", "--start", "0", "--end", "100", *into
    )
    assert_ok(r, "clip range 0-100 s ends after the end of clip.npz (1.33 s); cut 0-1.33 s")
    # a gesture file in Windows-1252 is read, with one warning naming it
    r = cli("library", "add", r_ / "my_latin.yaml", *into, "--clip", f"a={r_ / 'clip.npz'}")
    assert_ok(r, "my_latin.yaml is not UTF-8; read it as Windows-1252")
    from gesticulator.library.store import Library

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (
            Library.load([r_ / "lib_ok"], include_default=False).get("my_latin").meaning
            == "déjà vu, naïve café"
        )


# -- batch manifests (at the command line; the manifest parser's cases are tests/test_batch.py) -------
def test_batch_manifest_problems_on_the_command_line(e):
    (e / "man.csv").write_text("file,x\na.wav,1\n")
    (e / "man_1252.csv").write_bytes("audio\nGrüße.wav\n".encode("cp1252"))
    (e / "man.jsonl").write_text('{"audio": "ok.wav"}\n{"audio": "ok.wav",}\n')
    cases = [
        ("man.csv", ["man.csv line 1: no 'audio' column (header: file,x)", "use some of id, audio"]),
        ("empty", ["no audio files in", "pass a manifest"]),
        ("man.jsonl", ["man.jsonl line 2: not valid JSON", "one JSON object per line"]),
        (
            "man_1252.csv",
            ["man_1252.csv is not UTF-8 text (byte 0xfc at offset 8)", "save the manifest as UTF-8"],
        ),
    ]
    for name, needles in cases:
        assert_error(cli("batch", e / name, "-o", e / "batch_out"), *needles)
    assert not (e / "batch_out").exists()


# -- animate --timeline ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timeline(e, g) -> dict:
    """A real timeline.json (one placed gesture) as a dict, to be edited."""
    words = [("Hello", 0.1, 0.5), ("everyone!", 0.6, 1.2), ("three", 1.5, 1.9), ("ideas.", 2.0, 2.5)]
    (e / "tl_words.json").write_text(
        json.dumps({"words": [dict(word=w, start=s, end=t) for w, s, t in words]})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = g.animate(e / "ok.wav", transcript=e / "tl_words.json")
    data = json.loads(result.timeline.to_json())
    assert any(ev["status"] == "placed" for ev in data["events"])
    return data


def edited(e: Path, timeline: dict, name: str, change) -> Path:
    data = json.loads(json.dumps(timeline))
    placed = next(ev for ev in data["events"] if ev["status"] == "placed")
    change(data, placed)
    (e / name).write_text(json.dumps(data))
    return e / name


def test_animate_timeline_errors_fail_before_the_models_load(e, timeline):
    (e / "tl_broken.json").write_text(json.dumps(timeline)[:300])
    cases = [
        (e / "tl_broken.json", ["tl_broken.json is not valid JSON", "fix the file or re-animate"]),
        (edited(e, timeline, "tl_type.json", lambda t, ev: ev.update(apex="soon")), ["field 'events.", ".apex': Input should be a valid number"]),
        (edited(e, timeline, "tl_version.json", lambda t, ev: t.update(version=7)), ["timeline version 7 is not supported", "re-animate"]),
        (edited(e, timeline, "tl_negative.json", lambda t, ev: ev.update(apex=-1.0)), ["greater than or equal to 0"]),
        (e / "tl_missing.json", ["timeline file not found"]),
    ]  # fmt: skip
    for path, needles in cases:
        # --model names no checkpoint: a case that got past the timeline check to loading the
        # models would fail with "checkpoint not found" instead of its own message
        r = cli(
            "animate", "--timeline", path, "-o", e / "tl_out", "--formats", "npz", "--model", e / "missing"
        )
        assert_error(r, *needles)
    assert nothing_left(e, "tl_out")


def test_rerender_unknown_gesture_and_times_outside_the_audio(e, g, timeline):
    from gesticulator.api import TimelineWarning
    from gesticulator.library.schema import CatalogError

    path = edited(e, timeline, "tl_unknown.json", lambda t, ev: ev.update(gesture_id="moonwalk"))
    with pytest.raises(CatalogError, match="unknown gesture id 'moonwalk'"):
        g.rerender(path)
    r = cli("animate", "--timeline", path, "-o", e / "tl_out2", "--formats", "npz")
    assert_error(r, "unknown gesture id 'moonwalk'", "library list")
    assert nothing_left(e, "tl_out2")
    path = edited(e, timeline, "tl_no_audio.json", lambda t, ev: t["inputs"].update(audio=None))
    with pytest.raises(InputFileError, match="the timeline names no audio file — pass the audio"):
        g.rerender(path)
    path = edited(e, timeline, "tl_late.json", lambda t, ev: ev.update(apex=99.0))
    with pytest.warns(
        TimelineWarning, match=r"1 timeline event\(s\) lie past the end of the audio \(3.00 s\)"
    ):
        result = g.rerender(path)
    assert result.events == [] and abs(result.motion.num_frames / 30 - SECONDS) < 0.1
    late = [ev for ev in result.timeline.events if ev.apex == 99.0]
    assert late and late[0].status == "dropped"  # kept in the timeline, with the reason
    # a timeline saved back by an editor as UTF-16 reads the same
    (e / "tl_utf16.json").write_bytes(json.dumps(timeline, ensure_ascii=False).encode("utf-16"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimelineWarning)
        assert [ev.gesture_id for ev in g.rerender(e / "tl_utf16.json").events] == [
            ev["gesture_id"] for ev in timeline["events"] if ev["status"] == "placed"
        ]


# -- text encodings: scripts, transcripts ----------------------------------------------------------------
def test_text_encodings(e, g):
    """UTF-8 and UTF-16 (any BOM) are read silently; anything else is read as Windows-1252 with one
    warning naming the file (batch manifests, holding file names, refuse instead: above)."""
    from gesticulator.api import _read_script
    from gesticulator.io.text import TextEncodingWarning

    text = "Grüße an alle! Ça va très bien."
    for enc in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le"):
        (e / f"s_{enc}.txt").write_bytes(text.encode(enc))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _read_script(e / f"s_{enc}.txt") == text
    (e / "s_1252.txt").write_bytes((text + " “quoted”").encode("cp1252"))
    with pytest.warns(TextEncodingWarning, match="s_1252.txt is not UTF-8; read it as Windows-1252"):
        assert _read_script(e / "s_1252.txt") == text + " “quoted”"
    r = cli("plan", e / "s_1252.txt", "-o", e / "plan_1252.json")
    assert_ok(
        r,
        "s_1252.txt is not UTF-8; read it as Windows-1252 — if accented letters look wrong, save the file as UTF-8",
    )
    words = [{"word": "Grüße", "start": 0.1, "end": 0.5}, {"word": "alle!", "start": 0.6, "end": 1.2}]
    (e / "t_1252.json").write_bytes(json.dumps({"words": words}, ensure_ascii=False).encode("cp1252"))
    (e / "t_utf16.json").write_bytes(json.dumps({"words": words}, ensure_ascii=False).encode("utf-16"))
    with pytest.warns(TextEncodingWarning, match="t_1252.json is not UTF-8"):
        assert read_transcript(e / "t_1252.json").words[0].word == "Grüße"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_transcript(e / "t_utf16.json").words[0].word == "Grüße"
    r = animate(e, "ok.wav", "out_1252", "--transcript", e / "t_1252.json")
    assert_ok(r, "t_1252.json is not UTF-8; read it as Windows-1252")


# -- damaged compressed audio, a video without sound ---------------------------------------------------
@pytest.fixture(scope="module")
def containers(e) -> Path:
    import imageio_ffmpeg

    ff = imageio_ffmpeg.get_ffmpeg_exe()
    c = e / "containers"
    c.mkdir()

    def ffmpeg(*args):
        subprocess.run([ff, "-y", "-loglevel", "error", *map(str, args)], check=True, timeout=60)

    ffmpeg("-i", e / "ok.wav", "-b:a", "64k", c / "ok.mp3")
    sf.write(c / "ok.flac", load_audio(e / "ok.wav", sr=SR), SR)
    black = ("-f", "lavfi", "-i", "color=c=black:s=64x64:d=3")
    ffmpeg(*black, "-pix_fmt", "yuv420p", c / "silent_video.mp4")
    ffmpeg(*black, "-i", e / "ok.wav", "-shortest", "-pix_fmt", "yuv420p", c / "video.mp4")
    for name in ("ok.mp3", "ok.flac", "video.mp4"):
        data = (c / name).read_bytes()
        (c / f"cut_{name}").write_bytes(data[: len(data) // 2])
    data = bytearray((c / "ok.mp3").read_bytes())  # a third of the frames overwritten with noise
    data[len(data) // 4 : len(data) // 4 + len(data) // 3] = np.random.default_rng(0).bytes(len(data) // 3)
    (c / "garbled.mp3").write_bytes(bytes(data))
    return c


def test_damaged_compressed_audio_and_silent_video(e, containers):
    c = containers
    # FLAC: libsndfile stops at the damage -> refused, like a truncated WAV
    r = animate(c, "cut_ok.flac", "out_flac", "--transcript", d_words(e))
    assert_error(
        r,
        "cut_ok.flac: flac decoder lost sync (the file is damaged or cut off)",
        "ffmpeg -i cut_ok.flac fixed.wav",
    )
    # MP4 cut off before its index, a video without an audio track
    assert_error(
        animate(c, "cut_video.mp4", "out_mp4", "--transcript", d_words(e)),
        "is cut off: its MP4 index (moov atom) is missing",
    )
    assert_error(
        animate(c, "silent_video.mp4", "out_silent", "--transcript", d_words(e)),
        "has no audio stream",
        "a video with an audio track",
    )
    for name in ("out_flac", "out_mp4", "out_silent"):
        assert nothing_left(c, name)
    # MP3 cut in half, or with a third of it garbled: ffmpeg decodes what is there -> animated, warned
    for name, announced in (("cut_ok.mp3", 3.0), ("garbled.mp3", 3.0)):
        r = animate(c, name, f"out_{name}", "--transcript", d_words(e))
        assert_ok(r, f"{name}: decoded ")
        assert f"of the {announced:.2f} s its header announces (the file is damaged or cut off)" in r.stderr
        got = seconds(c / f"out_{name}" / "motion.npz")
        assert 1.0 < got < 0.9 * announced
    # the intact ones, for comparison: no warning, full length
    for name in ("ok.mp3", "ok.flac", "video.mp4"):
        r = animate(c, name, f"out_{name}", "--transcript", d_words(e))
        assert_ok(r)
        assert abs(seconds(c / f"out_{name}" / "motion.npz") - SECONDS) < 0.15


def d_words(e: Path) -> Path:
    path = e / "words.json"
    if not path.exists():
        path.write_text(json.dumps({"words": [{"word": "Hello", "start": 0.1, "end": 0.5}]}))
    return path


# -- transcripts out of time order, not English, not matching ---------------------------------------------
def test_read_transcript_words_out_of_order_give_ordered_sentences(e):
    from gesticulator.api import TranscriptWarning

    words = [
        {"word": "world.", "start": 1.0, "end": 1.4},
        {"word": "Hello", "start": 0.2, "end": 0.6},
        {"word": "again!", "start": 2.4, "end": 2.8},
        {"word": "Hi", "start": 2.0, "end": 2.3},
    ]
    (e / "shuffled.json").write_text(json.dumps({"words": words}))
    srt = "1\n00:00:02,000 --> 00:00:02,800\nHi again!\n\n2\n00:00:00,200 --> 00:00:01,400\nHello world.\n"
    (e / "shuffled.srt").write_text(srt)
    for name in ("shuffled.json", "shuffled.srt"):
        with pytest.warns(TranscriptWarning, match=f"{name}: words are not in time order; sorted them"):
            t = read_transcript(e / name)
        assert [w.word for w in t.words] == ["Hello", "world.", "Hi", "again!"]
        assert [s.text for s in t.sentences] == ["Hello world.", "Hi again!"]
        for s in t.sentences:  # before: "world. Hello" ran from 1.0 s to 0.6 s
            assert s.start <= s.end and t.words[s.first_word].start == s.start


@pytest.mark.slow  # speech synthesis and recognition of four sentences: ~15 s
def test_non_english_speech_warns_that_the_recogniser_is_unsure():
    """No non-English recording ships with the project: German, French and Spanish text read by the
    bundled English voice stand in (English phonemes, foreign words: what tiny.en hears is much
    the same). English speech stays silent."""
    pytest.importorskip("piper")
    from gesticulator.speech.asr import UnsureSpeechWarning, get_transcriber
    from gesticulator.speech.tts import speak

    transcriber = get_transcriber()
    sentences = {
        "en": "Good morning everyone. Today I want to talk about three big ideas for our city.",
        "de": "Guten Morgen zusammen. Heute möchte ich über drei große Ideen für unsere Stadt sprechen.",
        "fr": "Bonjour à tous. Aujourd'hui je voudrais parler de trois grandes idées pour notre ville.",
        "es": "Buenos días a todos. Hoy quiero hablar de tres grandes ideas para nuestra ciudad.",
    }
    for lang, text in sentences.items():
        speech = speak(text, seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = transcriber.transcribe(speech.samples, sample_rate=speech.sample_rate)
        unsure = [w for w in caught if issubclass(w.category, UnsureSpeechWarning)]
        assert t.words, lang  # words come out either way: their timing still drives the beat
        assert bool(unsure) == (lang != "en"), (lang, t.text, [str(w.message) for w in unsure])


def test_joint_map_not_in_utf8_is_read_with_a_warning(tmp_path):
    from gesticulator.io.text import TextEncodingWarning
    from gesticulator.library.retarget import joint_maps_dir, load_joint_map

    text = (joint_maps_dir() / "mixamo.yaml").read_text(encoding="utf-8")
    latin = tmp_path / "rig_café.yaml"
    latin.write_bytes(("# squelette exporté depuis Blender\n" + text).encode("cp1252"))
    with pytest.warns(TextEncodingWarning):
        jm = load_joint_map(latin)
    assert jm.joints["pelvis"] == "mixamorig:Hips"
