from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gesticulator.types import Motion

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BEAT2_TAKE = SHARED_DATA / "beat2_sample" / "2_scott_0_1_1"
ZEGGS_TAKE = SHARED_DATA / "zeggs_sample" / "067_Speech_2_x_1_0"


def shared_file(path: Path) -> Path:
    """A file under ../shared/data, or skip the test when the research data is absent."""
    if not path.exists():
        pytest.skip(f"research data not present: {path}")
    return path


def smooth_motion(num_frames: int = 60, seed: int = 0, fps: float = 30.0) -> Motion:
    """A deterministic, smooth, non-trivial motion touching every joint (arms well away from rest)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None] / fps
    amp = rng.uniform(0.1, 0.6, size=165)
    freq = rng.uniform(0.3, 1.5, size=165)
    phase = rng.uniform(0, 2 * np.pi, size=165)
    poses = amp * np.sin(2 * np.pi * freq * t + phase)
    poses[:, 16 * 3 + 2] -= 1.1  # left shoulder down toward the side
    poses[:, 17 * 3 + 2] += 1.1  # right shoulder down
    trans = np.stack([0.05 * np.sin(t[:, 0]), 0.01 * np.cos(t[:, 0]), 0.02 * t[:, 0]], axis=1)
    betas = rng.normal(0, 0.8, size=10)
    return Motion(poses=poses, trans=trans, betas=betas, fps=fps)


@pytest.fixture
def motion() -> Motion:
    return smooth_motion()


@pytest.fixture(autouse=True)
def _isolated_user_library(tmp_path_factory, monkeypatch):
    """Tests never read or write the real user library (~/.local/share/gesticulator/library)."""
    monkeypatch.setenv("GESTICULATOR_LIBRARY", str(tmp_path_factory.mktemp("user_library")))
