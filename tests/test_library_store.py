import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from gesticulator.cli import app
from gesticulator.io import save_npz
from gesticulator.library import CatalogError, Gesture, Library, Phases, Take, take_clip_path
from gesticulator.library.store import gesture_to_yaml, read_gesture_file
from gesticulator.types import Motion

runner = CliRunner()
PHASES = {"prep_start": 0.0, "stroke_start": 0.2, "apex": 0.4, "stroke_end": 0.6, "retract_end": 0.9}


def gesture(gid="test_wave", **over):
    data = dict(
        id=gid, category="emblem", description="right hand waves", meaning="greeting", triggers=["hello", "hi"],
        examples=["Hello there!"], handedness="right", body_parts=["right_arm", "right_hand"], phases=Phases(**PHASES),
        takes=[Take(id="a", clip=take_clip_path(gid, "a"), source="test", license="CC0")],
    )  # fmt: skip
    data.update(over)
    return Gesture(**data)


def clip(frames=30, lift=0.5):
    m = Motion.rest(frames)
    m.poses[:, 17 * 3 + 2] = np.linspace(1.2, 1.2 - lift, frames)  # right shoulder rises
    return m


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_add_load_and_mirror(tmp_path):
    lib = Library.load([tmp_path], include_default=False)
    lib.add(gesture(), {"a": clip()})
    again = Library.load([tmp_path], include_default=False)
    assert again.ids() == ["test_wave"]
    right = again.clip("test_wave")
    left = again.clip("test_wave", side="left")
    assert right.poses.dtype == np.float32  # library clips are stored compactly
    np.testing.assert_allclose(left.poses[:, 16 * 3 + 2], -right.poses[:, 17 * 3 + 2], atol=1e-6)
    assert again.validate() == []


def test_duplicate_id_and_empty_clip_leave_library_unchanged(tmp_path):
    lib = Library.load([tmp_path], include_default=False)
    lib.add(gesture(), {"a": clip()})
    before = listing(tmp_path)
    with pytest.raises(CatalogError, match="already exists"):
        lib.add(gesture(), {"a": clip()})
    with pytest.raises(CatalogError, match="empty"):
        lib.add(gesture("other_one"), {"a": Motion.rest(1)})
    assert listing(tmp_path) == before


def test_schema_errors_name_file_and_field(tmp_path):
    folder = tmp_path / "gestures"
    folder.mkdir()
    good = yaml.safe_load(gesture_to_yaml(gesture()))
    cases = {
        "category": ("dance", "category"),
        "phases": ({**PHASES, "apex": 0.1}, "phases"),
        "body_parts": (["tail"], "body_parts"),
        "id": ("Test-Wave", "id"),
        "schema_version": (7, "schema_version"),
    }
    for key, (value, field) in cases.items():
        path = folder / "test_wave.yaml"
        path.write_text(yaml.safe_dump({**good, key: value}))
        with pytest.raises(CatalogError) as info:
            read_gesture_file(path)
        message = str(info.value)
        assert str(path) in message and f"field '{field}" in message and "\n" not in message
    path.write_text("id: [unclosed")
    with pytest.raises(CatalogError, match="not valid YAML"):
        read_gesture_file(path)
    path.write_text(yaml.safe_dump({**good, "id": "another_id"}))
    with pytest.raises(CatalogError, match="does not match the file name"):
        read_gesture_file(path)


def test_layering_first_library_wins(tmp_path):
    base, user = tmp_path / "base", tmp_path / "user"
    Library([base]).add(gesture(), {"a": clip()})
    Library([base]).add(gesture("base_only"), {"a": clip()})
    Library([user]).add(gesture(meaning="a friendly hello"), {"a": clip()})
    lib = Library([user, base])
    assert lib.ids() == ["base_only", "test_wave"]
    assert lib.get("test_wave").meaning == "a friendly hello"
    assert lib.entry("base_only").root == base


def test_user_library_is_layered_automatically(tmp_path, monkeypatch):
    monkeypatch.setenv("GESTICULATOR_LIBRARY", str(tmp_path / "mine"))
    Library([tmp_path / "mine"]).add(gesture("my_gesture"), {"a": clip()})
    assert "my_gesture" in Library.load()


def test_unknown_id_suggests(tmp_path):
    lib = Library.load([tmp_path], include_default=False)
    lib.add(gesture(), {"a": clip()})
    with pytest.raises(CatalogError, match="unknown gesture id 'test_wav'.*test_wave"):
        lib.get("test_wav")


def test_validate_reports_missing_clip(tmp_path):
    lib = Library.load([tmp_path], include_default=False)
    lib.add(gesture(), {"a": clip()})
    (tmp_path / take_clip_path("test_wave", "a")).unlink()
    problems = Library.load([tmp_path], include_default=False).validate()
    assert len(problems) == 1 and "clip missing" in problems[0]


def test_cli_add_list_show(tmp_path):
    spec = tmp_path / "test_wave.yaml"
    spec.write_text(gesture_to_yaml(gesture(takes=[])))
    save_npz(clip(), tmp_path / "wave.npz")
    into = tmp_path / "lib"
    r = runner.invoke(
        app, ["library", "add", str(spec), "--clip", f"a={tmp_path / 'wave.npz'}", "--into", str(into)]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["library", "list", "--library", str(into), "--json"])
    rows = json.loads(r.output)
    assert {"id": "test_wave", "takes": 1}.items() <= next(x for x in rows if x["id"] == "test_wave").items()
    r = runner.invoke(app, ["library", "show", "test_wave", "--library", str(into), "--json"])
    assert json.loads(r.output)["meaning"] == "greeting"
    r = runner.invoke(
        app, ["library", "add", str(spec), "--clip", f"a={tmp_path / 'wave.npz'}", "--into", str(into)]
    )
    assert r.exit_code == 1 and "already exists" in r.output
