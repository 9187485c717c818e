import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from gesticulator.cli import app
from gesticulator.io import load_npz, read_bvh, save_npz

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_info_describes_a_motion(tmp_path, motion):
    save_npz(motion, tmp_path / "m.npz")
    r = run("info", tmp_path / "m.npz")
    assert r.exit_code == 0, r.output
    assert "60 at 30 fps = 2.00 s" in r.output


def test_export_npz_and_bvh(tmp_path, motion):
    save_npz(motion, tmp_path / "m.npz")
    r = run("export", tmp_path / "m.npz", "--to", "npz,bvh", "-o", tmp_path / "out", "--name", "take")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(load_npz(tmp_path / "out" / "take.npz").poses, motion.poses)
    assert read_bvh(tmp_path / "out" / "take.bvh").num_frames == 60
    # a BVH written by us converts back to npz
    r = run("export", tmp_path / "out" / "take.bvh", "--to", "npz", "-o", tmp_path / "back")
    assert r.exit_code == 0, r.output
    assert load_npz(tmp_path / "back" / "take.npz").num_frames == 60


def test_errors_are_one_line_without_traceback(tmp_path, motion):
    (tmp_path / "junk.npz").write_bytes(b"nope")
    save_npz(motion, tmp_path / "m.npz")
    cases = [
        (("info", tmp_path / "missing.npz"), "motion file not found"),
        (("info", tmp_path / "junk.npz"), "not a readable .npz"),
        (("export", tmp_path / "m.npz", "--to", "obj", "-o", tmp_path / "o"), "unknown export format"),
        (("export", tmp_path / "m.npz", "--to", "mp4", "--audio", tmp_path / "no.wav", "-o", tmp_path / "o"), "audio file not found"),
        (("render", tmp_path / "m.npz", "-o", tmp_path / "x.avi"), "must end in .mp4"),
        (("render", tmp_path / "m.npz", "-o", tmp_path / "x.png", "--frame", 999), "outside the motion"),
    ]  # fmt: skip
    for args, message in cases:
        r = subprocess.run(
            [sys.executable, "-m", "gesticulator.cli", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode != 0, args
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()  # failed commands left nothing behind


def test_debug_flag_shows_the_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "gesticulator.cli", "--debug", "info", str(tmp_path / "missing.npz")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode != 0 and "Traceback" in r.stderr


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "gesticulator.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_speak_then_transcribe_with_script(tmp_path):
    import json

    import pytest

    pytest.importorskip("piper")
    script = "Hello everyone! Today I have [gesture:count_three] three big ideas for you."
    r = _cli("speak", script, "-o", tmp_path, "--name", "talk")
    assert r.returncode == 0, r.stderr
    spoken = json.loads((tmp_path / "talk.json").read_text())
    assert [w["word"] for w in spoken["words"]][:3] == ["Hello", "everyone!", "Today"]
    (tmp_path / "script.txt").write_text(script)
    r = _cli(
        "transcribe", tmp_path / "talk.wav", "--script", tmp_path / "script.txt", "-o", tmp_path / "t.json"
    )
    assert r.returncode == 0, r.stderr
    aligned = json.loads((tmp_path / "t.json").read_text())
    assert [w["word"] for w in aligned["words"]] == [w["word"] for w in spoken["words"]]
    starts = [abs(a["start"] - b["start"]) for a, b in zip(aligned["words"], spoken["words"], strict=True)]
    assert sorted(starts)[len(starts) // 2] < 0.15
    # a script that does not match warns on one line and still writes a transcript
    (tmp_path / "wrong.txt").write_text("The weather in Paris is lovely in the spring.")
    r = _cli(
        "transcribe", tmp_path / "talk.wav", "--script", tmp_path / "wrong.txt", "-o", tmp_path / "w.json"
    )
    assert r.returncode == 0 and "warning: the script does not match the audio" in r.stderr
    assert "Warning:" not in r.stderr and (tmp_path / "w.json").is_file()


def test_transcribe_bad_audio_one_line(tmp_path):
    (tmp_path / "bad.wav").write_text("not audio at all")
    (tmp_path / "empty.wav").write_bytes(b"")
    for name, message in (
        ("bad.wav", "not a readable audio file"),
        ("empty.wav", "is empty"),
        ("none.wav", "not found"),
    ):
        r = _cli("transcribe", tmp_path / name, "-o", tmp_path / "x.json")
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()
