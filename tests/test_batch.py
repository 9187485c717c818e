"""`gesticulator batch`: manifests, resume logic and crash leftovers (with a light stand-in
animator, so those run in a second), and the real pipeline end to end: 20 items with 2 bad ones
on 2 worker processes, killed half-way with SIGKILL and resumed; the Ray engine against the local
one (slow).

Module-level imports stay light: pool workers import this module for `fake_factory`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gesticulator.batch import BatchOptions, ManifestError, read_items, run_batch
from gesticulator.batch.runner import MARKER, PARTIAL_DIR, STATUS_FILE, StatusLog, is_done, read_marker
from gesticulator.errors import GesticulatorError, InputFileError

FAKE = "tests.test_batch:fake_factory"
SCRIPT = "Hello everyone! Today I have three big ideas for you."


# -- a stand-in animator: same interface as Gesticulator.animate / AnimationResult.save ------------
class _Inputs:
    def __init__(self, duration: float):
        self.duration = duration


class _Timeline:
    def __init__(self, duration: float):
        self.inputs = _Inputs(duration)


class FakeResult:
    def __init__(self, poses: np.ndarray, duration: float, info: dict):
        self.poses, self.timeline, self.info = poses, _Timeline(duration), info

    def save(self, outdir, formats, *, size=512):
        out = Path(outdir)
        out.mkdir(parents=True)
        paths = {}
        if "npz" in formats:
            np.savez(out / "motion.npz", poses=self.poses)
            paths["npz"] = out / "motion.npz"
        (out / "timeline.json").write_text(json.dumps(self.info))
        paths["timeline"] = out / "timeline.json"
        return paths


class FakeAnimator:
    def __init__(self, llm):
        self.llm = llm

    def animate(self, audio, *, transcript=None, script=None, seed=0, density=None):
        path = Path(audio)
        if not path.is_file():
            raise InputFileError(f"audio file not found: {path}", "check the AUDIO path")
        data = path.read_bytes()
        if data.startswith(b"BAD"):
            raise InputFileError(f"{path} is not a readable audio file", "pass a WAV")
        if data.startswith(b"DIE"):
            os._exit(9)  # a worker that crashes hard
        if data.startswith(b"SLOW"):
            time.sleep(0.3)
        rng = np.random.default_rng([seed, len(data)])
        info = {"seed": seed, "density": density, "llm": self.llm, "script": str(script) if script else None}
        return FakeResult(rng.normal(size=(4, 3)), len(data) / 100.0, info)


def fake_factory(options, llm):
    if llm and llm.startswith("broken:"):
        raise GesticulatorError(f"unknown LLM provider {llm!r}", "use openai:, ollama:, ...")
    if Path(options.model).name == "unloadable.pt":
        raise InputFileError(f"{options.model} is not a readable rhythm checkpoint", "train one")
    return FakeAnimator(llm)


@pytest.fixture
def fake(tmp_path) -> BatchOptions:
    (tmp_path / "model.pt").write_bytes(b"a checkpoint")
    return BatchOptions(model=str(tmp_path / "model.pt"), formats=("npz",), factory=FAKE)


def write_manifest(path: Path, rows: list[dict]) -> Path:
    cols = ["id", "audio", "transcript", "script", "seed", "density", "formats", "llm"]
    lines = [",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def records(out: Path) -> list[dict]:
    return [r for r in StatusLog(out / STATUS_FILE).read() if "id" in r]


def mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")}


# -- manifests -------------------------------------------------------------------------------------
def test_manifest_csv_jsonl_tsv_and_folder(tmp_path):
    (tmp_path / "talks").mkdir()
    csv_text = (
        "ID,audio,transcript,script,seed,density,formats,llm\n"
        'intro,talks/intro.wav,talks/intro.json,,3,high,"npz,bvh",\n'
        "\n"
        "# a comment row\n"
        ',talks/q.mp3,,"Hello, everyone.",,,,ollama:llama3.1\n'
        ",talks/q.mp3,,talks/q.txt,,,npz;glb,\n"
        f",{tmp_path / 'abs' / 'x y.wav'},,,,,,\n"
    )
    (tmp_path / "m.csv").write_text(csv_text)
    m = read_items(tmp_path / "m.csv")
    assert m.kind == "csv" and [i.id for i in m.items] == ["intro", "q", "q-2", "x_y"]
    a, b, c, d = m.items
    assert a.audio == tmp_path / "talks" / "intro.wav" and a.transcript == tmp_path / "talks" / "intro.json"
    assert (a.seed, a.density, a.formats, a.llm) == (3, "high", ("npz", "bvh"), None)
    assert (
        b.script == "Hello, everyone." and b.llm == "ollama:llama3.1" and b.seed is None and b.formats is None
    )
    assert c.script == tmp_path / "talks" / "q.txt" and c.formats == ("npz", "glb")
    assert d.audio == tmp_path / "abs" / "x y.wav" and a.where == "m.csv line 2" and c.where == "m.csv line 6"
    (tmp_path / "m.jsonl").write_text(
        '{"audio": "talks/intro.wav", "seed": 7, "formats": ["npz"], "transcript": "talks/intro.TextGrid"}\n\n'
        '{"id": "two", "audio": "talks/intro.wav", "script": "Hi there."}\n'
    )
    m = read_items(tmp_path / "m.jsonl")
    assert [(i.id, i.seed, i.formats) for i in m.items] == [("intro", 7, ("npz",)), ("two", None, None)]
    (tmp_path / "m.tsv").write_text("audio\tseed\ntalks/a.wav\t1\n")
    assert read_items(tmp_path / "m.tsv").items[0].seed == 1
    # a folder: every audio file, with <stem>.json as its transcript, else <stem>.txt as its script
    for name in ("a.wav", "a.json", "a.txt", "b.flac", "b.txt", "c.mp3", "notes.txt", ".hidden.wav"):
        (tmp_path / "talks" / name).write_text("x")
    m = read_items(tmp_path / "talks")
    assert m.kind == "folder"
    assert [
        (i.id, i.audio.name, i.transcript and i.transcript.name, i.script and i.script.name) for i in m.items
    ] == [
        ("a", "a.wav", "a.json", None),
        ("b", "b.flac", None, "b.txt"),
        ("c", "c.mp3", None, None),
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.csv", "path,seed\nx.wav,1\n", "m.csv line 1: no 'audio' column"),
        ("m.csv", "audio,sead\nx.wav,1\n", "unknown column 'sead' — did you mean 'seed'?"),
        (
            "m.csv",
            "audio,seed\nx.wav,1\nx.wav,one\n",
            "m.csv line 3: seed 'one' is not a whole number — write",
        ),
        ("m.csv", "audio,seed\nx.wav,-1\n", "seed -1 is out of range"),
        ("m.csv", "audio,density\nx.wav,lots\n", "line 2: density 'lots' is not low, normal or high"),
        ("m.csv", "audio,formats\nx.wav,fbx\n", "line 2: unknown output format 'fbx' — use some of npz"),
        ("m.csv", "audio,transcript,script\nx.wav,x.json,x.txt\n", "line 2: both a transcript and a script"),
        ("m.csv", "audio,transcript\nx.wav,x.txt\n", "belongs in the 'script' column"),
        ("m.csv", "audio,seed\n,1\n", "m.csv line 2: no audio — every row needs"),
        ("m.csv", "id,audio\na,x.wav\na,y.wav\n", "line 3: id 'a' is also used by m.csv line 2"),
        ("m.csv", "id,audio\n../up,x.wav\n", "id '../up' cannot be a folder name"),
        ("m.csv", "audio\nx.wav,extra\n", "line 2: 2 cells but 1 columns — quote cells"),
        ("m.csv", "audio,seed\n", "lists no items"),
        ("m.jsonl", '{"audio": "x.wav"}\n{"audio": "y.wav",}\n', "m.jsonl line 2: not valid JSON"),
        ("m.jsonl", '["x.wav"]\n', "line 1: expected a JSON object"),
        ("m.jsonl", '{"audio": "x.wav", "seed": 1.5}\n', "seed 1.5 is not a whole number"),
        ("m.jsonl", '{"audio": "x.wav", "speed": 2}\n', "unknown column 'speed'"),
        ("m.txt", "audio\nx.wav\n", "a manifest must be .csv, .tsv or .jsonl"),
    ],
)
def test_manifest_mistakes_are_one_line_naming_the_row_and_the_fix(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError) as e:
        read_items(tmp_path / name)
    assert message in str(e.value) and " — " in str(e.value) and "\n" not in str(e.value)


def test_missing_inputs(tmp_path):
    with pytest.raises(InputFileError, match="batch input not found"):
        read_items(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no audio files in"):
        read_items(tmp_path / "empty")


# -- resume logic (in this process, stand-in animator) ---------------------------------------------
def test_resume_skips_done_retries_failed_and_redoes_changed(tmp_path, fake):
    for name, data in (("a.wav", b"aaaa"), ("b.wav", b"bbbbbbbb"), ("bad.wav", b"BAD!")):
        (tmp_path / name).write_bytes(data)
    rows = [
        {"id": "a0", "audio": "a.wav", "seed": 0},
        {"id": "a1", "audio": "a.wav", "seed": 1},
        {"id": "b0", "audio": "b.wav", "seed": 0, "density": "high"},
        {"audio": "b.wav", "script": "Hello there."},
        {"id": "missing", "audio": "missing.wav"},
        {"id": "corrupt", "audio": "bad.wav"},
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    out = tmp_path / "out"
    seen = []
    s = run_batch(
        manifest, out, options=fake, workers=0, on_start=lambda *a: seen.append(a), on_item=seen.append
    )
    assert (s.total, s.done, s.skipped, s.failed) == (6, 4, 0, 2)
    assert seen[0] == (6, 6, 0) and len(seen) == 7
    assert s.audio_seconds == pytest.approx(0.04 * 2 + 0.08 * 2)
    assert {p.name for p in out.iterdir()} == {"a0", "a1", "b0", "b", STATUS_FILE, ".batch.lock"}
    assert sorted(p.name for p in (out / "a0").iterdir()) == sorted([MARKER, "motion.npz", "timeline.json"])
    errors = {f["id"]: f["error"] for f in s.failures}
    assert (
        errors["missing"].startswith("audio file not found:")
        and "bad.wav is not a readable" in errors["corrupt"]
    )
    recs = records(out)
    assert [r["status"] for r in recs].count("done") == 4
    rec = next(r for r in recs if r["id"] == "b0")
    assert rec["output"] == str(out / "b0") and rec["audio"] == str(tmp_path / "b.wav") and rec["seed"] == 0
    assert len(rec["input_hash"]) == 64 and len(rec["config_hash"]) == 64 and rec["seconds"] >= 0
    assert json.loads((out / "b0" / "timeline.json").read_text())["density"] == "high"
    assert json.loads((out / "b" / "timeline.json").read_text())["script"] == "Hello there."
    marker = read_marker(out / "a1")
    assert marker["config"]["seed"] == 1 and marker["outputs"] == ["motion.npz", "timeline.json"]

    # The same run again: nothing redone, the failed ones retried.
    before = mtimes(out)
    s = run_batch(manifest, out, options=fake, workers=0)
    assert (s.done, s.skipped, s.failed) == (0, 4, 2) and mtimes(out) == before
    assert len(records(out)) == 6 + 2

    # Fixed inputs, a changed seed, a changed audio file, a deleted output: exactly those are redone.
    (tmp_path / "missing.wav").write_bytes(b"now here")
    (tmp_path / "bad.wav").write_bytes(b"fixed")
    rows[1]["seed"] = 5
    write_manifest(manifest, rows)
    (tmp_path / "b.wav").write_bytes(b"b changed")  # b0 and b
    s = run_batch(manifest, out, options=fake, workers=0)
    assert (s.done, s.skipped, s.failed) == (5, 1, 0)
    assert mtimes(out)["a0"] == before["a0"] and read_marker(out / "a1")["config"]["seed"] == 5
    (out / "a0" / "motion.npz").unlink()
    s = run_batch(manifest, out, options=fake, workers=0)
    assert (s.done, s.skipped) == (1, 5) and (out / "a0" / "motion.npz").is_file()
    # Another default seed: the rows without a seed of their own are redone, the others kept.
    s = run_batch(manifest, out, options=BatchOptions(**{**fake.__dict__, "seed": 9}), workers=0)
    assert (s.done, s.skipped) == (3, 3) and read_marker(out / "b")["config"]["seed"] == 9


def test_crash_leftovers_are_never_taken_as_done(tmp_path, fake):
    for i in range(4):
        (tmp_path / f"t{i}.wav").write_bytes(b"x" * (10 + i))
    manifest = write_manifest(tmp_path / "m.csv", [{"audio": f"t{i}.wav"} for i in range(4)])
    out = tmp_path / "out"
    assert run_batch(manifest, out, options=fake, workers=0).done == 4
    first = records(out)
    # What a SIGKILL can leave: an item half-written in .partial (its folder without a marker)...
    half = out / PARTIAL_DIR / "t0.abc" / "item"
    half.mkdir(parents=True)
    (half / "motion.npz").write_bytes(b"half")
    # ...a finished item whose batch.jsonl line was never written, and a line cut short.
    import shutil

    shutil.rmtree(out / "t1")
    (out / STATUS_FILE).write_text(
        "".join(json.dumps(r) + "\n" for r in first if r["id"] != "t2") + '{"id": "t3", "sta'
    )
    s = run_batch(manifest, out, options=fake, workers=0)
    assert (s.done, s.skipped) == (1, 3)  # t1 redone; t0, t2, t3 kept
    assert not (out / PARTIAL_DIR).exists()
    recs = records(out)
    recovered = [r for r in recs if r.get("recovered")]
    assert [r["id"] for r in recovered] == ["t2"] and recovered[0]["status"] == "done"  # logged once, now
    assert [r["id"] for r in recs if r["status"] == "done"].count("t2") == 1
    # A stale output (other settings) is replaced whole; a folder we did not write is never touched.
    marker = read_marker(out / "t3")
    (out / "t3" / MARKER).write_text(json.dumps({**marker, "config_hash": "old"}))
    (out / "t3" / "extra.txt").write_text("from an older run")
    shutil.rmtree(out / "t0")
    (out / "t0").mkdir()
    (out / "t0" / "mine.txt").write_text("user's own")
    s = run_batch(manifest, out, options=fake, workers=0)
    assert (s.done, s.skipped, s.failed) == (1, 2, 1)
    assert not (out / "t3" / "extra.txt").exists() and is_done(
        out / "t3", marker["input_hash"], marker["config_hash"]
    )
    assert "t0 exists and was not written by gesticulator batch" in s.failures[0]["error"]
    assert [p.name for p in (out / "t0").iterdir()] == ["mine.txt"]


def test_one_batch_per_folder_and_model_errors_stop_the_batch(tmp_path, fake):
    import fcntl

    (tmp_path / "a.wav").write_bytes(b"aaa")
    manifest = write_manifest(tmp_path / "m.csv", [{"audio": "a.wav"}, {"audio": "a.wav", "llm": "broken:x"}])
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".batch.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(GesticulatorError, match="another batch is writing into"):
            run_batch(manifest, out, options=fake, workers=0)
    # A row's own LLM that cannot be loaded fails that row only.
    s = run_batch(manifest, out, options=fake, workers=0)
    assert (s.done, s.failed) == (1, 1) and "unknown LLM provider 'broken:x'" in s.failures[0]["error"]
    # The batch's own models cannot be loaded: one line, no item left half-done.
    (tmp_path / "unloadable.pt").write_bytes(b"")
    bad = BatchOptions(**{**fake.__dict__, "model": str(tmp_path / "unloadable.pt")})
    with pytest.raises(GesticulatorError, match="the workers cannot load the models: .*unloadable.pt"):
        run_batch(manifest, tmp_path / "out2", options=bad, workers=0)
    with pytest.raises(InputFileError, match="rhythm model checkpoint not found"):
        run_batch(manifest, tmp_path / "out3", options=BatchOptions(model=str(tmp_path / "none")))
    with pytest.raises(GesticulatorError, match="unknown engine"):
        run_batch(manifest, tmp_path / "out3", options=fake, engine="dask")


def test_process_pool_survives_a_crashing_worker(tmp_path, fake):
    """2 spawned workers; an item that kills its worker is retried once in a fresh pool, then
    recorded as failed; every other item is done."""
    for i in range(5):
        (tmp_path / f"ok{i}.wav").write_bytes(b"SLOW" + b"x" * i)
    (tmp_path / "die.wav").write_bytes(b"DIE")
    rows = (
        [{"audio": f"ok{i}.wav"} for i in range(2)]
        + [{"audio": "die.wav"}]
        + [{"audio": f"ok{i}.wav"} for i in range(2, 5)]
    )
    s = run_batch(write_manifest(tmp_path / "m.csv", rows), tmp_path / "out", options=fake, workers=2)
    assert (s.done, s.failed) == (5, 1) and s.workers == 2
    assert s.failures[0]["id"] == "die" and "worker process died" in s.failures[0]["error"]
    pids = {r["pid"] for r in records(tmp_path / "out") if r["status"] == "done"}
    assert len(pids) >= 2  # spread over the workers


def test_cli_batch_errors_are_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from gesticulator.cli import app

    runner = CliRunner()
    (tmp_path / "a.wav").write_bytes(b"a")
    write_manifest(tmp_path / "m.csv", [{"audio": "a.wav"}])
    cases = [
        (("batch", tmp_path / "none.csv", "-o", tmp_path / "o"), "batch input not found"),
        (
            ("batch", tmp_path / "m.csv", "-o", tmp_path / "o", "--formats", "fbx"),
            "unknown output format 'fbx'",
        ),
        (("batch", tmp_path / "m.csv", "-o", tmp_path / "o", "--density", "x"), "--density must be"),
        (
            ("batch", tmp_path / "m.csv", "-o", tmp_path / "o", "--model", tmp_path / "x"),
            "checkpoint not found",
        ),
    ]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the ray extra were not installed
    cases.append(
        (
            ("batch", tmp_path / "m.csv", "-o", tmp_path / "o", "--engine", "ray"),
            "needs Ray, which is not installed — install it",
        )
    )
    for args, message in cases:
        r = runner.invoke(app, [str(a) for a in args])
        assert r.exit_code not in (0, 2), (args, r.output)
        assert message in r.output and "Traceback" not in r.output, (args, r.output)
    assert not (tmp_path / "o").exists()


# -- the real pipeline, end to end -----------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """The shipped example (4.3 s) and its first 2.5 s, with word-timed transcripts (so no ASR),
    a corrupt file, and a manifest of 20 items: 18 good ones (seeds 0-17) and 2 bad ones."""
    import shutil

    import soundfile as sf

    from gesticulator.resources import example
    from tests.test_align import debug_rhythm_model

    root = tmp_path_factory.mktemp("batch_inputs")
    y, sr = sf.read(example("hello_demo.wav"))
    shutil.copy(example("hello_demo.wav"), root / "hello.wav")
    sf.write(root / "short.wav", y[: int(2.5 * sr)], sr)
    words = SCRIPT.split()
    for name, n, step in (("hello", len(words), 0.36), ("short", 6, 0.34)):
        tr = [{"word": w, "start": round(0.3 + i * step, 3), "end": round(0.55 + i * step, 3)} for i, w in enumerate(words[:n])]  # fmt: skip
        (root / f"{name}.json").write_text(json.dumps({"words": tr}))
    (root / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    rows = [
        {"id": f"item{i:02d}", "audio": f"{a}.wav", "transcript": f"{a}.json", "seed": i}
        for i, a in enumerate(["hello", "short"] * 9)
    ]
    rows.insert(5, {"id": "bad_corrupt", "audio": "corrupt.wav", "transcript": "hello.json"})
    rows.insert(11, {"id": "bad_missing", "audio": "missing.wav", "transcript": "hello.json"})
    return {"root": root, "manifest": write_manifest(root / "m.csv", rows), "model": debug_rhythm_model()}


def _batch_cmd(inputs: dict, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gesticulator.cli", "batch", str(inputs["manifest"]), "-o", str(out),
            "--model", str(inputs["model"]), "--formats", "npz", *extra]  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_batch_killed_half_way_resumes_without_redoing_items(inputs, tmp_path):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        _batch_cmd(inputs, out, "--workers", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while time.perf_counter() - t0 < 240 and proc.poll() is None:
            if sum(r["status"] == "done" for r in records(out)) >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (
            f"the batch ended before it could be killed: {proc.stderr.read().decode()}"
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    workers = {r["pid"] for r in records(out) if r.get("pid")}
    deadline = time.monotonic() + 10  # the orphaned pool workers notice and exit
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers and not any(_alive(p) for p in workers), "pool workers outlived the killed batch"
    first = records(out)
    # Every item folder under its final name is complete (marker last, one rename), the rest is in .partial.
    done_before = {p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert 6 <= len(done_before) < 18, done_before
    for name in done_before:
        assert read_marker(out / name) and (out / name / "motion.npz").is_file()
    before = {**mtimes(out), **{f"{n}.npz": (out / n / "motion.npz").stat().st_mtime_ns for n in done_before}}

    rerun = subprocess.run(
        _batch_cmd(inputs, out, "--workers", "2"), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 2, rerun.stderr  # finished, with 2 failed items
    assert "error: 2 of 20 items failed" in rerun.stderr and "Traceback" not in rerun.stderr
    assert f"{len(done_before)} skipped" in rerun.stdout
    final = {p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert final == {f"item{i:02d}" for i in range(18)} and not (out / PARTIAL_DIR).exists()
    for name in done_before:  # not redone
        assert (out / name / "motion.npz").stat().st_mtime_ns == before[f"{name}.npz"]
        assert (out / name / MARKER).stat().st_mtime_ns == before[name]
    second = records(out)[len(first) :]
    redone = [r["id"] for r in second if r["status"] == "done" and not r.get("recovered")]
    assert not set(redone) & done_before and len(redone) == 18 - len(done_before)
    dones = [r["id"] for r in records(out) if r["status"] == "done"]
    assert sorted(dones) == sorted(final)  # each item logged done exactly once over both runs
    failed = {r["id"]: r["error"] for r in second if r["status"] == "failed"}
    assert set(failed) == {"bad_corrupt", "bad_missing"}
    assert (
        "audio file not found" in failed["bad_missing"]
        and "not a readable audio file" in failed["bad_corrupt"]
    )
    from gesticulator.io import load_npz

    m = load_npz(out / "item01" / "motion.npz")
    assert m.num_frames == int(np.ceil(2.5 * 30)) and np.isfinite(m.poses).all()


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_results(inputs, tmp_path):
    pytest.importorskip("ray")
    rows = [
        {"id": f"r{i}", "audio": f"{a}.wav", "transcript": f"{a}.json", "seed": i}
        for i, a in enumerate(["hello", "short", "hello", "short"])
    ] + [{"id": "bad", "audio": "corrupt.wav", "transcript": "hello.json"}]
    manifest = write_manifest(inputs["root"] / "ray.csv", rows)
    options = BatchOptions(model=str(inputs["model"]), formats=("npz",))
    local = run_batch(manifest, tmp_path / "local", options=options, workers=2)
    ray_run = run_batch(manifest, tmp_path / "ray", options=options, engine="ray", workers=2)
    for s in (local, ray_run):
        assert (s.done, s.failed) == (4, 1) and "not a readable audio file" in s.failures[0]["error"]
    assert ray_run.engine == "ray" and ray_run.workers == 2
    from gesticulator.io import load_npz

    for i in range(4):
        a = load_npz(tmp_path / "local" / f"r{i}" / "motion.npz")
        b = load_npz(tmp_path / "ray" / f"r{i}" / "motion.npz")
        np.testing.assert_array_equal(a.poses, b.poses)
        np.testing.assert_array_equal(a.trans, b.trans)
    assert not np.array_equal(
        load_npz(tmp_path / "ray" / "r0" / "motion.npz").poses,
        load_npz(tmp_path / "ray" / "r2" / "motion.npz").poses,
    )  # other seed, other motion
    # A rerun through Ray skips what the first run finished.
    again = run_batch(manifest, tmp_path / "ray", options=options, engine="ray", workers=2)
    assert (again.done, again.skipped, again.failed) == (0, 4, 1)
