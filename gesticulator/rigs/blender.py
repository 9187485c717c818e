"""FBX through Blender, run as a separate process.

Blender's Python (`bpy`) pins its own numpy and Python, so it never loads into gesticulator's
environment: `blender_script.py` runs in a child process, either a Python that has bpy (`pip
install bpy==5.0.1` in its own virtual environment: `make blender` makes `.venv-blender`) or a
`blender` executable (Debian: `apt install blender`). Where it is found, first hit wins:

1. ``GESTICULATOR_BLENDER``: a `blender` executable or a Python with bpy (told apart by name, else
   by its ``--version``);
2. ``GESTICULATOR_BLENDER_PYTHON``: a Python with bpy (the older variable; same detection);
3. ``.venv-blender/bin/python`` at the repository root (`make blender`);
4. ``blender`` on PATH.

A variable that is set but names nothing usable is an error, not a silent fallback: the user
asked for that Blender.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from gesticulator.errors import ExportError, GesticulatorError, InputFileError, MissingDependencyError
from gesticulator.io.atomic import atomic_path

ENV_BLENDER = "GESTICULATOR_BLENDER"
ENV_BLENDER_PYTHON = "GESTICULATOR_BLENDER_PYTHON"
REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_ENV = REPO_ROOT / ".venv-blender"
SCRIPT = Path(__file__).with_name("blender_script.py")
# The script's output markers (blender_script.py defines the same; it cannot import this module).
RESULT_MARKER = "GESTICULATOR_RESULT "
ERROR_MARKER = "GESTICULATOR_ERROR "
HOW_TO_ENABLE = (
    "run `make blender` (bpy in .venv-blender, needs Python 3.11), or `apt install blender`, "
    f"or set {ENV_BLENDER} to a blender executable or a Python that has bpy"
)
# Starting Blender takes 1-3 s; baking and writing take about a millisecond per frame. The base
# leaves room for a slow disk or a cold start; the per-frame part for long takes.
BASE_TIMEOUT_S = 120.0
Axis = str | Sequence[float]  # "Y", "-Z", ... or a direction vector along one of them
TIMEOUT_PER_FRAME_S = 0.02


@dataclass(frozen=True)
class BlenderCommand:
    """How to run a script in Blender: `kind` says whether `executable` is a `blender` binary or a
    Python that imports bpy; `source` says where it was found (for messages)."""

    kind: Literal["blender", "python"]
    executable: Path
    source: str

    def argv(self, script: Path, *args: str) -> list[str]:
        if self.kind == "python":
            return [str(self.executable), str(script), "--", *args]
        # --factory-startup: no user preferences or add-ons change what the script sees;
        # --python-exit-code: an uncaught error in the script exits non-zero instead of 0.
        return [
            str(self.executable),
            "-b",
            "--factory-startup",
            "--python-exit-code",
            "1",
            "--python",
            str(script),
            "--",
            *args,
        ]


@dataclass(frozen=True)
class FbxInfo:
    """What Blender sees in an FBX (re-imported in a fresh scene)."""

    bone_names: tuple[str, ...]
    frame_start: int | None
    frame_end: int | None
    fps: float
    actions: tuple[str, ...]
    meshes: int  # mesh objects
    skinned_meshes: int  # of which bound to the armature
    mesh_vertices: int  # in the skinned meshes
    height: float  # metres between the lowest and highest joint in the rest pose
    armature_scale: tuple[float, float, float]
    probe: tuple[float, float, float] | None = None  # a bone's head at a frame, Blender world (Z up, m)

    @property
    def bones(self) -> int:
        return len(self.bone_names)

    @property
    def frames(self) -> int:
        return 0 if self.frame_start is None else self.frame_end - self.frame_start + 1

    @property
    def action_count(self) -> int:
        return len(self.actions)


# -- finding Blender -------------------------------------------------------------------------------


def find_blender() -> BlenderCommand | None:
    """The Blender to run scripts with, or None when none is configured or installed.

    Raises `MissingDependencyError` when a variable names something that is not a usable Blender.
    """
    for var in (ENV_BLENDER, ENV_BLENDER_PYTHON):
        value = os.environ.get(var, "").strip()
        if value:
            return _configured(var, value)
    for local in (LOCAL_ENV / "bin" / "python", LOCAL_ENV / "Scripts" / "python.exe"):
        if local.is_file() and _kind_of(local) == "python":
            return BlenderCommand("python", local, str(LOCAL_ENV.name))
    exe = shutil.which("blender")
    if exe:
        return BlenderCommand("blender", Path(exe), "PATH")
    return None


def require_blender(what: str = "FBX export") -> BlenderCommand:
    blender = find_blender()
    if blender is None:
        raise MissingDependencyError(f"{what} needs Blender, which was not found", HOW_TO_ENABLE)
    return blender


def _configured(var: str, value: str) -> BlenderCommand:
    path = Path(value).expanduser()
    if not path.is_file():
        found = shutil.which(value)
        if found is None:
            raise MissingDependencyError(f"{var}={value} does not exist", HOW_TO_ENABLE)
        path = Path(found)
    kind = _kind_of(path)
    if kind is None:
        raise MissingDependencyError(
            f"{var}={value} is neither a blender executable nor a Python that has bpy", HOW_TO_ENABLE
        )
    return BlenderCommand(kind, path, var)


def _kind_of(path: Path) -> Literal["blender", "python"] | None:
    stat = path.stat()
    return _probe(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _probe(path: str, _mtime_ns: int, _size: int) -> Literal["blender", "python"] | None:
    """ "blender", "python" (a Python with bpy) or None. By name when it says (python3.11,
    blender-3.4); otherwise by what `--version` prints. Cached per file version: a check runs a
    process."""
    name = Path(path).name.lower()
    if name.startswith("blender"):
        return "blender"
    if not name.startswith("python"):
        try:
            out = subprocess.run(
                [path, "--version"],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=60,
                env=_child_env(),
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        first = (out.stdout + out.stderr).strip().splitlines()[:1]
        if first and first[0].startswith("Blender"):
            return "blender"
        if not (first and first[0].startswith("Python")):
            return None
    # find_spec, not import: importing bpy starts Blender (about a second).
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('bpy') is None)"
    try:
        r = subprocess.run([path, "-c", code], capture_output=True, timeout=60, env=_child_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "python" if r.returncode == 0 else None


def _child_env() -> dict[str, str]:
    """The environment for Blender: without our Python's path settings, which would put this
    environment's numpy (2.x) in front of the one Blender was built against."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(var, None)
    return env


# -- running the script ------------------------------------------------------------------------------


def run_script(
    mode: str, params: dict, *, what: str, timeout: float, blender: BlenderCommand | None = None
) -> dict:
    """Run blender_script.py in `mode` and return its JSON answer. `what` names the job in errors."""
    blender = blender or require_blender()
    argv = blender.argv(SCRIPT, mode, json.dumps(params))
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        check = "-c 'import bpy'" if blender.kind == "python" else "-b --version"
        raise ExportError(
            f"Blender ({blender.executable}) did not finish {what} within {timeout:g} s",
            f"pass a longer timeout, or check that Blender runs: {blender.executable} {check}",
        ) from None
    except OSError as e:
        raise MissingDependencyError(
            f"cannot run Blender ({blender.executable}, from {blender.source}): {e.strerror}", HOW_TO_ENABLE
        ) from e
    result = next(
        (ln[len(RESULT_MARKER) :] for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARKER)), None
    )
    if proc.returncode != 0 or result is None:
        raise ExportError(
            f"Blender failed {what}: {last_error_line(proc.stderr, proc.stdout)}",
            f"run it by hand to see everything: {' '.join(argv[:-1])} '<json>'",
        )
    return json.loads(result)


def last_error_line(stderr: str, stdout: str = "") -> str:
    """The line that says what went wrong: the script's error marker, else the last line of
    stderr (a traceback's exception), else of stdout; one line, at most 300 characters."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(ERROR_MARKER):
            return line[len(ERROR_MARKER) :].strip()[:300]
    for text in (stderr, stdout):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if lines:
            return lines[-1][:300]
    return "no output (it may have crashed)"


def _timeout(frames: int, timeout: float | None) -> float:
    return float(timeout) if timeout is not None else BASE_TIMEOUT_S + TIMEOUT_PER_FRAME_S * frames


# -- the jobs ----------------------------------------------------------------------------------------


def bvh_to_fbx(
    bvh: str | os.PathLike,
    fbx: str | os.PathLike,
    *,
    glb: str | os.PathLike | None = None,
    up: Axis = "Y",
    forward: Axis = "Z",
    timeout: float | None = None,
) -> Path:
    """Convert a BVH into an FBX for Unity (Humanoid) and Unreal, in Blender (atomically).

    The FBX holds the BVH's skeleton (same bone names, no leaf bones) under an armature named
    "Armature", every frame baked as one take named after the file (frame 0 first, the BVH's
    rate), a skinned mesh, in metres, Y up, the figure facing +Z. `up` and `forward` say
    which BVH axes point up and the way the figure faces ("Y" and "Z" for SMPL-X and most BVH;
    a rig's `axes[1]` and `axes[2]`). The mesh is the `glb`'s (a GLB whose skeleton has the BVH's
    rest pose: the SMPL-X GLB of the same export) or else an octahedron per bone.
    Raises `MissingDependencyError` when Blender is absent, `ExportError` when it fails.
    """
    from gesticulator.io import read_bvh

    bvh, fbx = Path(bvh), Path(fbx)
    data = read_bvh(bvh)  # InputFileError for a missing or malformed file, before Blender starts
    if data.num_frames == 0:
        raise InputFileError(f"{bvh.name} has no frames: nothing to animate in the FBX", "export a motion")
    if glb is not None and not Path(glb).is_file():
        raise InputFileError(f"GLB file not found: {glb}", "check the path, or leave out the GLB")
    up, forward = axis_pair(up, forward)
    blender = require_blender()
    with atomic_path(fbx) as tmp:
        result = run_script(
            "fbx",
            {
                "bvh": str(bvh.resolve()),
                "fbx": str(tmp.resolve()),
                "scale": bvh_scale(data.rest_positions()),
                "fps": 1.0 / data.frame_time,
                "take": fbx.stem,
                "glb": str(Path(glb).resolve()) if glb is not None else None,
                "up": up,
                "forward": forward,
            },
            what=f"converting {bvh.name} to FBX",
            timeout=_timeout(data.num_frames, timeout),
            blender=blender,
        )
        frames = result["frame_end"] - result["frame_start"] + 1
        if result["bones"] != data.num_joints or frames != data.num_frames:
            raise ExportError(
                f"Blender made {result['bones']} bones and {frames} frames from {bvh.name}, "
                f"which has {data.num_joints} joints and {data.num_frames} frames",
                "report this with the BVH",
            )
        if glb is not None and result["mesh"] != "glb":
            warnings.warn(
                f"{fbx.name}: not the GLB's mesh but an octahedron per bone, because {result['note']}",
                stacklevel=2,
            )
        if tmp.stat().st_size == 0:
            raise ExportError(f"Blender wrote an empty FBX for {bvh.name}", "check the disk and try again")
    return fbx


def axis_pair(up: Axis, forward: Axis) -> tuple[str, str]:
    """("Y", "-Z")-style names for an up and a facing axis, given as names or as vectors (a rig's
    `axes` rows); they must lie along different coordinate axes."""
    names = (_axis_name(up, "up"), _axis_name(forward, "forward"))
    if names[0][-1] == names[1][-1]:
        raise ExportError(
            f"up ({names[0]}) and forward ({names[1]}) lie along one axis", "give two different axes"
        )
    return names


def _axis_name(value: Axis, what: str) -> str:
    if isinstance(value, str):
        name = value.strip().upper()
        if name.lstrip("+-") in ("X", "Y", "Z") and len(name.lstrip("+")) <= 2:
            return name.lstrip("+")
        raise ExportError(f"{what} axis {value!r} is not one of X, Y, Z, -X, -Y, -Z")
    v = np.asarray(value, dtype=float).reshape(-1)
    k = int(np.argmax(np.abs(v))) if v.shape == (3,) else 0
    # Blender's importer turns files by whole axes only; a rig's axes are (near) signed unit vectors.
    if v.shape != (3,) or abs(v[k]) < 0.99 * float(np.linalg.norm(v)):
        raise ExportError(
            f"{what} direction {v.tolist()} is not along a coordinate axis", "export the rig axis-aligned"
        )
    return ("-" if v[k] < 0 else "") + "XYZ"[k]


def bvh_scale(rest_positions: np.ndarray) -> float:
    """Metres per BVH unit. BVH has no unit field; a figure taller than 10 units is taken to be in
    centimetres (gesticulator's default, Mixamo's), a smaller one in metres (`--bvh-units m`)."""
    span = float(np.ptp(rest_positions, axis=0).max()) if len(rest_positions) else 0.0
    return 0.01 if span > 10.0 else 1.0


def inspect_fbx(
    fbx: str | os.PathLike, *, probe: tuple[str, int] | None = None, timeout: float | None = None
) -> FbxInfo:
    """Re-import `fbx` in a fresh Blender process and describe it. `probe` (bone, frame) also
    returns that bone's head position at that frame (Blender's world: metres, Z up)."""
    fbx = Path(fbx)
    if not fbx.is_file():
        raise InputFileError(f"FBX file not found: {fbx}", "check the path")
    r = run_script(
        "inspect",
        {"fbx": str(fbx.resolve()), "probe": list(probe) if probe else None},
        what=f"reading {fbx.name}",
        timeout=_timeout(0, timeout),
    )
    return FbxInfo(
        bone_names=tuple(r["bone_names"]),
        frame_start=r["frame_start"],
        frame_end=r["frame_end"],
        fps=float(r["fps"]),
        actions=tuple(r["actions"]),
        meshes=int(r["meshes"]),
        skinned_meshes=int(r["skinned_meshes"]),
        mesh_vertices=int(r["mesh_vertices"]),
        height=float(r["height"]),
        armature_scale=tuple(r["armature_scale"]),
        probe=tuple(r["probe"]) if r["probe"] is not None else None,
    )


def render_frames(
    source: str | os.PathLike,
    frames: Sequence[int],
    pngs: Sequence[str | os.PathLike],
    *,
    size: tuple[int, int] = (360, 480),
    azimuth: float = -25.0,
    fps: float = 30.0,
    up: Axis = "Y",
    forward: Axis = "Z",
    timeout: float | None = None,
) -> list[Path]:
    """Render `frames` of an FBX, BVH or GLB in Blender (Workbench engine, headless) into `pngs`,
    one camera framing them all. Meshless files get an octahedron per bone. `fps` is a GLB's frame
    rate (glTF keeps seconds; BVH and FBX say their own); `up`/`forward` a BVH's axes. Used for the docs' pictures
    (docs/avatars/make_pictures.py)."""
    source = Path(source)
    if not source.is_file():
        raise InputFileError(f"file not found: {source}", "check the path")
    if len(frames) != len(pngs) or not frames:
        raise ValueError("give one PNG path per frame")
    params: dict = {"source": str(source.resolve()), "frames": [int(f) for f in frames]}
    params.update(width=int(size[0]), height=int(size[1]), azimuth=float(azimuth), fps=float(fps))
    params["up"], params["forward"] = axis_pair(up, forward)
    if source.suffix.lower() == ".bvh":
        from gesticulator.io import read_bvh

        data = read_bvh(source)
        params.update(scale=bvh_scale(data.rest_positions()), fps=1.0 / data.frame_time)
    with ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(Path(p))) for p in pngs]
        # Blender picks the image type from the name: give it .png paths inside the temp names' folder.
        targets = [t.with_name(t.name + ".png") for t in tmps]
        params["pngs"] = [str(t.resolve()) for t in targets]
        try:
            run_script(
                "render", params, what=f"rendering {source.name}", timeout=_timeout(50 * len(frames), timeout)
            )
            for target, tmp in zip(targets, tmps, strict=True):
                os.replace(target, tmp)
        finally:
            for target in targets:
                target.unlink(missing_ok=True)
    return [Path(p) for p in pngs]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gesticulator.rigs.blender [FBX]`: say which Blender is used; describe an FBX."""
    args = list(sys.argv[1:] if argv is None else argv)
    blender = find_blender()
    if blender is None:
        print(f"no Blender found: {HOW_TO_ENABLE}")
        return 1
    print(f"Blender: {blender.executable} ({blender.kind}, from {blender.source})")
    for path in args:
        try:
            info = inspect_fbx(path)
        except GesticulatorError as e:
            print(f"{path}: {e}")
            return 1
        print(
            f"{path}: {info.bones} bones, frames {info.frame_start}..{info.frame_end} at {info.fps:g} fps, "
            f"{info.action_count} action(s), {info.skinned_meshes} skinned mesh(es) of {info.mesh_vertices} "
            f"vertices, {info.height:.2f} m from lowest to highest joint"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
