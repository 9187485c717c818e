"""Build a library's authored gestures: compile each `author:` spec into take clips on disk.

`build_gesture` writes ``clips/<id>/<take>.npz`` (float32, each file atomically) and then the
gesture file with its `takes` and `phases` filled in. The gesture file is rewritten by splicing
only those two top-level blocks into its text, so the author's formatting (flow-style keys,
comments) survives; the result is re-read and checked before it replaces the file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from gesticulator.io.atomic import write_text_atomic
from gesticulator.io.npz import save_npz
from gesticulator.library.authoring.compile import CompiledTake, SpecError, compile_take, parse_spec
from gesticulator.library.schema import CatalogError, Gesture, Phases, Take, parse_gesture
from gesticulator.library.store import (
    CLIPS_DIR,
    GESTURES_DIR,
    gesture_to_yaml,
    read_gesture_file,
    take_clip_path,
)
from gesticulator.types import Motion

LICENSE = "Apache-2.0"


def take_source(gesture_id: str) -> str:
    return f"authored from gestures/{gesture_id}.yaml (gesticulator authoring)"


def compile_gesture(gesture: Gesture, file: Path | str | None = None) -> list[CompiledTake]:
    """Compile every take of a gesture's `author:` spec (no files written)."""
    where = file or f"gestures/{gesture.id}.yaml"
    if gesture.author is None:
        raise CatalogError(
            f"{where}: no `author:` spec to build", "add one or give the gesture recorded takes"
        )
    try:
        spec = parse_spec(gesture.author)
        takes = [compile_take(spec, i, gesture_id=gesture.id) for i in range(spec.takes)]
    except SpecError as e:
        raise CatalogError(
            f"{where}: {e}", "see gesticulator.library.authoring for the spec language"
        ) from None
    if gesture.handedness == "left":  # authored right-handed; a left-handed gesture stores left takes
        from gesticulator.motion.ops import mirror

        for t in takes:
            t.motion = mirror(t.motion)
    return takes


def _compact(motion: Motion, gesture_id: str, take_id: str) -> Motion:
    meta = {k: v for k, v in motion.metadata.items() if v is not None}
    meta["source"] = take_source(gesture_id)
    return motion.copy(
        poses=motion.poses.astype(np.float32), trans=motion.trans.astype(np.float32), metadata=meta
    )


_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:")


def _split_top_level(text: str) -> list[tuple[str | None, str]]:
    """Split YAML text into (top-level key, its text) chunks; None for leading comments."""
    chunks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines(keepends=True):
        m = _TOP_KEY.match(line)
        if m:
            chunks.append((m.group(1), [line]))
        else:
            chunks[-1][1].append(line)
    return [(k, "".join(lines)) for k, lines in chunks if k is not None or lines]


def _dump_block(key: str, value) -> str:
    return yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=100)


def splice_gesture_text(text: str, phases: dict, takes: list[dict]) -> str:
    """Replace the top-level `phases` and `takes` blocks of a gesture file's text."""
    chunks = _split_top_level(text)
    keys = [k for k, _ in chunks]
    new = {"phases": _dump_block("phases", phases), "takes": _dump_block("takes", takes)}
    out = []
    for k, chunk in chunks:
        if k in new:
            out.append(new.pop(k) + _trailing_blank(chunk))
            if k == "phases" and "takes" not in keys:
                out.append(new.pop("takes"))
        else:
            if k == "author" and new:  # missing blocks go before the spec
                out.extend(new.pop(n) for n in list(new))
            if not chunk.endswith("\n"):
                chunk += "\n"
            out.append(chunk)
    out.extend(new.values())
    return "".join(out)


def _trailing_blank(chunk: str) -> str:
    stripped = chunk.rstrip("\n")
    return "\n" * max(0, len(chunk) - len(stripped) - 1)


def build_gesture(gesture: Gesture, library_root: str | Path, *, file: str | Path | None = None) -> Gesture:
    """Compile a gesture's `author:` spec into `clips/<id>/<take>.npz` under `library_root` and
    write the gesture file (default ``gestures/<id>.yaml``) with `takes` and `phases` filled in.

    Clips are written first, each atomically, then the gesture file (atomically); a failure
    leaves newly created clip files removed. Returns the updated gesture."""
    root = Path(library_root)
    path = Path(file) if file is not None else root / GESTURES_DIR / f"{gesture.id}.yaml"
    compiled = compile_gesture(gesture, path)
    takes = [
        Take(
            id=c.take_id,
            clip=take_clip_path(gesture.id, c.take_id),
            source=take_source(gesture.id),
            license=LICENSE,
            phases=Phases(**c.phases),
        )
        for c in compiled
    ]
    updated = gesture.model_copy(update={"takes": takes, "phases": Phases(**compiled[0].phases)})
    written: list[Path] = []
    try:
        for c, take in zip(compiled, takes, strict=True):
            clip = root / take.clip
            existed = clip.exists()
            save_npz(_compact(c.motion, gesture.id, c.take_id), clip)
            if not existed:
                written.append(clip)
        take_dicts = [t.model_dump(mode="json", exclude_none=True) for t in takes]
        phases = updated.phases.model_dump(mode="json")
        text = None
        if path.is_file():  # keep the file's own formatting when it holds this gesture
            old_text = path.read_text(encoding="utf-8")
            try:
                on_disk = parse_gesture(yaml.safe_load(old_text), path)
            except (CatalogError, yaml.YAMLError):
                on_disk = None
            same = {"takes", "phases"}
            if on_disk is not None and on_disk.model_dump(exclude=same) == gesture.model_dump(exclude=same):
                text = splice_gesture_text(old_text, phases, take_dicts)
                if parse_gesture(yaml.safe_load(text), path).model_dump() != updated.model_dump():
                    text = None
        if text is None:  # a new file, or the caller changed the gesture: write it whole
            text = gesture_to_yaml(updated)
        write_text_atomic(path, text)
    except BaseException:
        for clip in written:
            clip.unlink(missing_ok=True)
        raise
    # Clips of takes the spec no longer makes are stale.
    keep = {Path(t.clip).name for t in takes}
    folder = root / CLIPS_DIR / gesture.id
    for old in folder.glob("*.npz"):
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return updated


def build_library(
    root: str | Path,
    ids: list[str] | None = None,
    *,
    progress: Callable[[str, float], None] | None = None,
) -> list[Gesture]:
    """Build every gesture with an `author:` spec in the library folder `root` (or only `ids`).

    Returns the rebuilt gestures. Unknown ids raise a `CatalogError`."""
    root = Path(root)
    folder = root / GESTURES_DIR
    files = {p.stem: p for p in sorted(folder.glob("*.y*ml"))}
    if ids is not None:
        unknown = [i for i in ids if i not in files]
        if unknown:
            raise CatalogError(
                f"unknown gesture id(s) in {folder}: {', '.join(unknown)}", "see `gesticulator library list`"
            )
        files = {i: files[i] for i in ids}
    built = []
    for gid, path in files.items():
        gesture = read_gesture_file(path)
        if gesture.author is None:
            if ids is not None:
                raise CatalogError(f"{path}: no `author:` spec to build")
            continue
        start = time.perf_counter()
        built.append(build_gesture(gesture, root, file=path))
        if progress is not None:
            progress(gid, time.perf_counter() - start)
    return built


def hand_clearance(motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the smallest signed distance (m) of either hand's wrist and fingertips to the
    torso capsules and to the head sphere: (torso (T,), head (T,)); negative is inside."""
    from gesticulator.library.authoring import body
    from gesticulator.motion.kinematics import local_rotations_flat_hand
    from gesticulator.motion.rotations import axis_angle_to_matrix

    rot = axis_angle_to_matrix(local_rotations_flat_hand(motion.copy(trans=np.zeros_like(motion.trans))))
    pos, wrot = body.fk(rot)
    pts = np.concatenate([body.hand_points(pos, "left"), body.hand_points(pos, "right")], axis=-2)
    return body.torso_clearance(pts, pos).min(-1), body.head_clearance(pts, pos, wrot).min(-1)


__all__ = [
    "build_gesture",
    "build_library",
    "compile_gesture",
    "hand_clearance",
    "splice_gesture_text",
    "take_source",
]
