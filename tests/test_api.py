"""The Python API and the `animate` / `speak` commands, end to end with real models: the debug
rhythm model (trained once per session, see tests/test_align.py), the default library and
planner, the bundled ASR and TTS, on the shipped hello_demo example."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gesticulator.api import AnimationResult, Gesticulator, Timeline
from gesticulator.cli import app
from gesticulator.errors import ExportError, GesticulatorError, InputFileError
from gesticulator.io import load_npz
from gesticulator.resources import example
from gesticulator.speech.transcripts import write_transcript
from tests.test_align import debug_rhythm_model

SCRIPT = "Hello everyone! Today I have three big ideas for you."
OUTPUTS = {"motion.npz", "motion.bvh", "motion.glb", "preview.mp4", "timeline.json"}
runner = CliRunner()


@pytest.fixture(scope="module")
def g(tmp_path_factory) -> Gesticulator:
    with pytest.MonkeyPatch.context() as mp:  # never the real user library
        mp.setenv("GESTICULATOR_LIBRARY", str(tmp_path_factory.mktemp("user_library")))
        return Gesticulator.load(debug_rhythm_model())


@pytest.fixture(scope="module")
def hello(g) -> AnimationResult:
    return g.animate(example("hello_demo.wav"), script=SCRIPT, seed=0)


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


# -- the API ---------------------------------------------------------------------------------------
def test_animate_puts_gestures_on_their_words(hello):
    r = hello
    assert [w.word for w in r.transcript.words] == SCRIPT.split()
    assert r.timeline.inputs.transcript_from == "script+asr"
    by_word = {e.word: e for e in r.events}
    assert "three" in by_word and by_word["three"].gesture_id == "count_three"
    for ev in r.events:
        word = r.transcript.words[ev.word_index]
        assert word.start <= ev.apex <= word.end  # on its word
        assert ev.apex_source == "prosody" and ev.active_arms
        assert ev.prep_start < ev.stroke_start < ev.apex < ev.stroke_end < ev.retract_end
    assert r.plan.events and r.plan.selector == "embedded"
    assert max(r.quality.recognisability_cm) <= 3.0  # recognisable after blending
    fades = np.array(
        [x for s, x in zip(r.quality.seams, r.quality.seam_ratios, strict=True) if s.kind != "stream"]
    )
    assert np.nanmax(fades) <= 1.5
    assert r.motion.num_frames == r.base_motion.num_frames == int(np.ceil(4.281 * 30))
    assert not np.array_equal(r.motion.poses, r.base_motion.poses)
    from gesticulator.motion.kinematics import joint_positions
    from gesticulator.motion.stance import FOOT_JOINTS

    for m in (r.motion, r.base_motion):  # standing on y = 0 like a BEAT2 take, not 1.3 m under it
        feet = joint_positions(m)[:, list(FOOT_JOINTS), 1]
        assert abs(feet.min()) < 0.03 and feet.max() < 0.2
    t = r.timeline
    assert t.seed == 0 and t.models.rhythm_data_hash and t.models.library_hash and t.models.asr
    assert {"asr", "prosody", "features", "plan", "place", "generate", "splice"} <= set(t.timings)
    assert t.quality["recognisability_cm_max"] is not None
    assert r.caption(by_word["three"].apex).startswith("[count_three")


def test_same_seed_same_motion_other_seed_other_motion(g, hello):
    again = g.animate(example("hello_demo.wav"), transcript=hello.transcript, seed=0)
    twice = g.animate(example("hello_demo.wav"), transcript=hello.transcript, seed=0)
    np.testing.assert_array_equal(again.motion.poses, twice.motion.poses)
    np.testing.assert_array_equal(again.motion.trans, twice.motion.trans)
    other = g.animate(example("hello_demo.wav"), transcript=hello.transcript, seed=1)
    assert not np.array_equal(other.base_motion.poses, again.base_motion.poses)
    assert "asr" not in again.timeline.timings and again.timeline.inputs.transcript_from == "transcript"


def test_save_writes_every_output_or_nothing(hello, tmp_path, monkeypatch):
    paths = hello.save(tmp_path / "out")
    assert {p.name for p in paths.values()} == OUTPUTS == {p.name for p in (tmp_path / "out").iterdir()}
    np.testing.assert_array_equal(load_npz(paths["npz"]).poses, hello.motion.poses)
    back = Timeline.load(paths["timeline"])
    assert back.events == hello.timeline.events and back.transcript == hello.transcript
    assert back.plan == hello.plan and back.seed == 0 and "save_mp4" in back.timings
    # A failure half-way leaves no output folder, and an existing one as it was.
    import gesticulator.io.glb

    def broken(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(gesticulator.io.glb, "save_glb", broken)
    with pytest.raises(ExportError, match="disk full — free disk space"):
        hello.save(tmp_path / "fresh", formats=("npz", "glb"))
    assert not (tmp_path / "fresh").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="disk full — free disk space"):
        hello.save(tmp_path / "kept", formats=("npz", "glb"))
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "out"]  # no temporary folders left
    with pytest.raises(GesticulatorError, match="unknown output format"):
        hello.save(tmp_path / "x", formats=("fbx",))


def test_rerender_reproduces_and_applies_edits(g, hello, tmp_path):
    hello.save(tmp_path / "a", formats=("npz",))
    same = g.rerender(tmp_path / "a" / "timeline.json")
    np.testing.assert_array_equal(same.motion.poses, hello.motion.poses)  # nothing re-planned
    assert "plan" not in same.timeline.timings and "asr" not in same.timeline.timings
    data = json.loads((tmp_path / "a" / "timeline.json").read_text())
    rows = [e for e in data["events"] if e["status"] == "placed"]
    three = next(e for e in rows if e["word"] == "three")
    three["gesture_id"] = "count_two"  # the user fixes a gesture...
    three["apex"] = round(three["apex"] + 0.1, 3)  # ...moves it...
    three["take"] = None
    data["events"] = [three]  # ...and deletes the others
    (tmp_path / "edited.json").write_text(json.dumps(data))
    edited = g.rerender(tmp_path / "edited.json", audio=example("hello_demo.wav"))
    [ev] = edited.events
    assert ev.gesture_id == "count_two" and ev.apex == pytest.approx(three["apex"])
    assert max(edited.quality.recognisability_cm) <= 3.0  # the new clip, on its new apex
    assert not np.array_equal(edited.motion.poses, hello.motion.poses)
    np.testing.assert_array_equal(edited.base_motion.poses, hello.base_motion.poses)  # same seed
    data["events"][0]["gesture_id"] = "count_twoo"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(GesticulatorError, match="unknown gesture id 'count_twoo'.*count_two"):
        g.rerender(tmp_path / "bad.json", audio=example("hello_demo.wav"))


def test_speak_animates_a_script_and_rerenders_from_its_own_wav(g, tmp_path):
    pytest.importorskip("piper")
    r = g.speak("Hello everyone. I have [gesture:count_three] three ideas for you.", seed=0)
    assert r.speech is not None and r.timeline.inputs.transcript_from == "tts"
    assert any(e.gesture_id == "count_three" and e.source == "markup" for e in r.events)
    paths = r.save(tmp_path / "talk", formats=("npz",), audio_stem="talk")
    assert {p.name for p in (tmp_path / "talk").iterdir()} == {
        "talk.wav",
        "talk.json",
        "motion.npz",
        "timeline.json",
    }
    tl = Timeline.load(paths["timeline"])
    assert tl.inputs.audio == "talk.wav" and len(tl.inputs.audio_sha256) == 64
    again = g.rerender(paths["timeline"])  # the audio is found beside the timeline
    np.testing.assert_array_equal(again.base_motion.poses[:10], r.base_motion.poses[:10])
    assert [e.gesture_id for e in again.events] == [e.gesture_id for e in r.events]


def test_timeline_and_input_errors_are_one_line(g, tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        Timeline.load(bad)
    bad.write_text(json.dumps({"version": 9}))
    with pytest.raises(InputFileError, match="version 9"):
        Timeline.load(bad)
    bad.write_text(json.dumps({"events": [{"gesture_id": "x"}]}))
    with pytest.raises(InputFileError, match="field 'events.0.apex'"):
        Timeline.load(bad)
    with pytest.raises(InputFileError, match="audio file not found"):
        g.animate(tmp_path / "missing.wav")
    with pytest.raises(GesticulatorError, match="not both"):
        g.animate(example("hello_demo.wav"), transcript="t.json", script="s.txt")
    with pytest.raises(GesticulatorError, match="density"):
        g.animate(example("hello_demo.wav"), density="lots")
    with pytest.raises(InputFileError, match="script file not found"):
        g.animate(example("hello_demo.wav"), script=tmp_path / "nope.txt")


# -- the command line ------------------------------------------------------------------------------
def test_cli_animate_speak_and_timeline_rerender_write_all_files(hello, tmp_path):
    model = debug_rhythm_model()
    write_transcript(hello.transcript, tmp_path / "words.json")
    r = cli("animate", example("hello_demo.wav"), "--transcript", tmp_path / "words.json", "--model", model,
            "-o", tmp_path / "a", "--size", 128)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "a").iterdir()} == OUTPUTS
    assert "count_three" in r.output and "RTF" in r.output
    r = cli("animate", "--timeline", tmp_path / "a" / "timeline.json", "--model", model, "-o", tmp_path / "b",
            "--formats", "npz")  # fmt: skip
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(
        load_npz(tmp_path / "b" / "motion.npz").poses, load_npz(tmp_path / "a" / "motion.npz").poses
    )
    pytest.importorskip("piper")
    r = cli("speak", "Hello everyone, I have three big ideas.", "--model", model, "-o", tmp_path / "s",
            "--name", "talk", "--size", 128)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "s").iterdir()} == OUTPUTS | {"talk.wav", "talk.json"}
    r = cli("speak", "Hello there.", "-o", tmp_path / "w", "--audio-only")
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "w").iterdir()} == {"speech.wav", "speech.json"}


def test_cli_bad_inputs(tmp_path):
    wav = example("hello_demo.wav")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "s.txt").write_text(SCRIPT)
    cases = [
        (("animate", tmp_path / "none.wav", "-o", tmp_path / "o"), "audio file not found"),
        (("animate", "-o", tmp_path / "o"), "no audio given"),
        (("animate", wav, "--transcript", tmp_path / "bad.json", "--script", tmp_path / "s.txt", "-o", tmp_path / "o"), "not both"),
        (("animate", wav, "--timeline", tmp_path / "nope.json", "-o", tmp_path / "o"), "timeline file not found"),
        (("animate", wav, "--timeline", tmp_path / "bad.json", "--script", tmp_path / "s.txt", "-o", tmp_path / "o"), "already holds"),
        (("animate", wav, "--density", "lots", "-o", tmp_path / "o"), "--density must be"),
        (("animate", wav, "--formats", "fbx", "-o", tmp_path / "o"), "unknown output format"),
        (("animate", wav, "--script", tmp_path / "none.txt", "-o", tmp_path / "o"), "--script file not found"),
        (("animate", wav, "--model", tmp_path / "nomodel", "-o", tmp_path / "o"), "checkpoint not found"),
        (("speak", "Hi.", "--formats", "fbx", "-o", tmp_path / "o"), "unknown output format"),
    ]  # fmt: skip
    for args, message in cases:
        r = cli(*args)
        assert r.exit_code != 0, args
        assert message in r.output, (args, r.output)
        assert "Traceback" not in r.output
    assert not (tmp_path / "o").exists()
    # through a real process: one line on stderr, nothing else
    p = subprocess.run(
        [sys.executable, "-m", "gesticulator.cli", "animate", str(tmp_path / "none.wav"), "-o", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (
        p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1 and "audio file not found" in p.stderr
    )


def test_import_stays_light():
    code = (
        "import sys, gesticulator; "
        "print('gesticulator.api' in sys.modules, 'torch' in sys.modules); "
        "from gesticulator import Gesticulator, AnimationResult, Timeline; print(Gesticulator.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "False", "Gesticulator"]


def test_an_llm_picks_the_gestures(hello, monkeypatch, tmp_path):
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the LLM answer cache
    three = [w.word for w in hello.transcript.words].index("three")
    reply = json.dumps(
        {"events": [{"sentence": 1, "word_index": three, "gesture_id": "count_three", "reason": "t"}]}
    )
    g = Gesticulator.load(debug_rhythm_model(), llm=FakeListChatModel(responses=[reply] * 4))
    r = g.animate(example("hello_demo.wav"), transcript=hello.transcript, seed=0)
    assert r.plan.selector.startswith("llm:") and r.timeline.models.planner_selector == r.plan.selector
    assert [(e.gesture_id, e.word, e.source) for e in r.events] == [("count_three", "three", "llm")]


def test_unpunctuated_transcripts_get_sentences_from_pauses():
    from gesticulator.api import split_long_sentences
    from gesticulator.types import Transcript, Word

    words, t = [], 0.0
    for i in range(60):
        words.append(Word(word=f"w{i}", start=t, end=t + 0.2))
        t += 0.25 + (0.5 if i in (19, 44) else 0.0)  # two pauses
    tr = split_long_sentences(Transcript(words=words))
    assert [(s.first_word, s.last_word) for s in tr.sentences] == [(0, 19), (20, 44), (45, 59)]
    short = Transcript(words=words[:10])
    assert split_long_sentences(short) is short
