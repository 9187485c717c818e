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
    assert_error(r, "cannot create output folder")
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
    assert list((d / "out_ro").iterdir()) == [] and nothing_left(d, "out_ro2")


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
