"""Regenerate the fuzz seed corpus: `python -m tests.fuzz_corpus.make_corpus` from the repo root.

Small valid files the mutation fuzzer in tests/test_properties.py starts from: SMPL-X BVHs written
by the project's own writer, hand-made odd hierarchies (one joint, a deep chain, zero frames,
extra and partial channels) and Praat TextGrids (long/short format, empty tier, unicode, UTF-16).
"""

from __future__ import annotations

from pathlib import Path

from gesticulator.io.bvh import motion_to_bvh_text
from tests.conftest import smooth_motion
from tests.test_transcripts import LONG_TG, SHORT_TG

HERE = Path(__file__).resolve().parent


def _chain(depth: int) -> str:
    out = [
        "HIERARCHY",
        "ROOT j0",
        "{",
        "  OFFSET 0 100 0",
        "  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation",
    ]
    for d in range(1, depth):
        out += [
            f"{'  ' * d}JOINT j{d}",
            f"{'  ' * d}{{",
            f"{'  ' * d}  OFFSET 0 5 0",
            f"{'  ' * d}  CHANNELS 3 Zrotation Xrotation Yrotation",
        ]
    out += [
        f"{'  ' * depth}End Site",
        f"{'  ' * depth}{{",
        f"{'  ' * depth}  OFFSET 0 2 0",
        f"{'  ' * depth}}}",
    ]
    out += [f"{'  ' * d}}}" for d in range(depth - 1, -1, -1)]
    channels = 6 + 3 * (depth - 1)
    rows = [" ".join(f"{(k * 7 + f * 3) % 50 - 25:.2f}" for k in range(channels)) for f in range(3)]
    return "\n".join(out + ["MOTION", "Frames: 3", "Frame Time: 0.033333"] + rows) + "\n"


ONE_JOINT = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 3 Xrotation Yrotation Zrotation
}
MOTION
Frames: 2
Frame Time: 0.0333333
10 20 30
-170 89.5 179.9
"""

ZERO_FRAMES = """HIERARCHY
ROOT Hips
{
  OFFSET 0 90 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 0
Frame Time: 0.04
"""

EXTRA_CHANNELS = """HIERARCHY
ROOT Hips
{
  OFFSET 1 90 2
  CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 6 Xposition Yposition Zposition Xrotation Zrotation Yrotation
    JOINT Arm
    {
      OFFSET 20 0 0
      CHANNELS 1 Zrotation
      End Site
      {
        OFFSET 10 0 0
      }
    }
    JOINT Head
    {
      OFFSET 0 8 0
      CHANNELS 2 Yposition Xrotation
    }
    JOINT Tail
    {
      OFFSET 0 -3 0
      CHANNELS 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 90 2 0 0 0 0 10 0 5 0 0 45 8 10
1 91 2 90 0 0 0 10 0.5 -5 30 -90 -45 8.5 -10
"""

# The TextGrid fixtures of the reader tests seed the fuzzer too (one copy of each).
EMPTY_TIER_TG = """File type = "ooTextFile"
Object class = "TextGrid"

0
1
<exists>
2
"IntervalTier"
"words"
0
1
0
"IntervalTier"
"phones"
0
1
1
0
1
"a"
"""

UNICODE_TG = SHORT_TG.replace("hello", "héllo 你好 🙂").replace("world", "wörld — «ok»")


def main() -> None:
    (HERE / "smplx_3frames.bvh").write_text(motion_to_bvh_text(smooth_motion(3, seed=1)), encoding="utf-8")
    (HERE / "smplx_1frame_m_xyz.bvh").write_text(
        motion_to_bvh_text(smooth_motion(1, seed=2), units="m", rotation_order="XYZ"), encoding="utf-8"
    )
    (HERE / "one_joint.bvh").write_text(ONE_JOINT)
    (HERE / "deep_chain.bvh").write_text(_chain(40))
    (HERE / "zero_frames.bvh").write_text(ZERO_FRAMES)
    (HERE / "extra_channels.bvh").write_text(EXTRA_CHANNELS)
    (HERE / "long.TextGrid").write_text(LONG_TG)
    (HERE / "short.TextGrid").write_text(SHORT_TG)
    (HERE / "empty_tier.TextGrid").write_text(EMPTY_TIER_TG)
    (HERE / "unicode.TextGrid").write_text(UNICODE_TG, encoding="utf-8")
    (HERE / "unicode_utf16.TextGrid").write_bytes(UNICODE_TG.encode("utf-16"))


if __name__ == "__main__":
    main()
