import subprocess
import sys
import zipfile

import pytest

from gesticulator.resources import DATA_FOLDERS, data_dir, example

from .conftest import REPO


def test_data_folders_resolve():
    for name in DATA_FOLDERS:
        assert data_dir(name).is_dir()
    assert example("hello_demo.npz").is_file() and example("hello_demo.wav").is_file()
    with pytest.raises(ValueError):
        data_dir("secrets")


def test_wheel_ships_the_data_folders(tmp_path):
    pytest.importorskip("hatchling")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("gesticulator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in DATA_FOLDERS:
        assert any(n.startswith(f"gesticulator/_data/{folder}/") for n in names), folder
    assert "gesticulator/_data/examples/hello_demo.npz" in names
    assert "gesticulator/cli.py" in names
    meta = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Requires-Dist: torch==2.13.0" in text  # never an open range
