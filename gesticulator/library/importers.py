"""Build gesture libraries from other people's motion: folders of BVH clips and cuts of SMPL-X takes.

`import_bvh_dir` turns a folder of labelled BVH clips (e.g. the Semantic Gesticulator dataset,
``THUMB_UP-3.bvh``) into gestures: every file is retargeted onto SMPL-X with a joint map
(`gesticulator.library.retarget`), files sharing a label become takes of one gesture, texts come
from an optional metadata table (CSV or XLSX), handedness and phase marks are estimated from the
motion (`gesticulator.library.phases`). `import_npz_clip` adds one gesture cut from an SMPL-X
take.

Both validate everything before they write anything: a bad file raises one `InputFileError` /
`CatalogError` line and leaves the library folder as it was (unless `skip_bad=True`, which
records the file in the result's `skipped` list and imports the rest). Writing goes through
`Library.add`; if a write fails half-way, everything this import wrote is rolled back.

Clips are normalised for the library: the root starts at x = z = 0 and (by default) the body faces
+Z on the first frame.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import numpy as np
from pydantic import ValidationError

from gesticulator.errors import GesticulatorError, InputFileError
from gesticulator.io.bvh import read_bvh
from gesticulator.io.npz import load_npz
from gesticulator.library.phases import estimate_handedness, estimate_phases
from gesticulator.library.retarget import JointMap, Retargeter, load_joint_map
from gesticulator.library.schema import (
    ID_PATTERN,
    CatalogError,
    Category,
    Gesture,
    Handedness,
    Phases,
    format_validation_error,
)
from gesticulator.library.store import CLIPS_DIR, GESTURES_DIR, Library, take_clip_path
from gesticulator.motion.kinematics import forward_kinematics
from gesticulator.motion.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from gesticulator.types import CANONICAL_FPS, Motion

CATEGORIES: tuple[str, ...] = get_args(Category)
HANDEDNESS: tuple[str, ...] = get_args(Handedness)
ProgressFn = Callable[[int, int, str], None]  # (done, total, file name)

_TAKE_SUFFIX = re.compile(r"^(?P<label>.*?)\s*-\s*(?P<num>\d+)$")
_STOPWORDS = frozenset(
    "a an and are at be but by do for from i i'm im in is it it's its me my no not of off on or so the "
    "this that to up us we you your you're".split()
)

# Metadata table columns (normalised: lower case, letters and digits only) -> gesture field.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "label": ("label", "gesture", "gesturelabel", "name"),
    "description": ("description", "gesturedescription"),
    "meaning": ("contextualmeaning", "meaning", "semantics"),
    "examples": ("example", "examples", "examplesentence", "examplesentences"),
    "not_examples": ("notexamples", "notexample", "counterexamples", "counterexample", "negativeexamples"),
    "triggers": ("triggers", "keywords", "trigger"),
    "category": ("category", "gesturetype", "type"),
    "copyright": ("copyrightsource", "copyright", "license", "licence"),
}


# -- names -----------------------------------------------------------------------------------------


def parse_clip_name(stem: str) -> tuple[str, int | None]:
    """A clip file name (no extension) -> (label, take number): "THUMB_UP-3" -> ("THUMB_UP", 3).

    Files without a "-N" suffix give (label, None).
    """
    m = _TAKE_SUFFIX.match(stem.strip())
    if m and m.group("label"):
        return m.group("label"), int(m.group("num"))
    return stem.strip(), None


def label_key(label: str) -> str:
    """The gesture id a label stands for: "THUMB UP", "THUMB_UP", "I'm sorry" -> "thumb_up", "im_sorry"."""
    text = label.strip().lower()
    text = re.sub(r"['’`´]", "", text)  # apostrophes: "I'M" -> "im", not "i_m"
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if text and not text[0].isalpha():
        text = f"g_{text}"
    return text


def label_text(label: str) -> str:
    """Readable text of a label: "THUMB_UP" -> "thumb up"."""
    return re.sub(r"\s+", " ", re.sub(r"[_]+", " ", label)).strip().lower()


def label_triggers(label: str) -> list[str]:
    """Trigger words of a label: the phrase itself plus its content words ("thumb up" -> ["thumb up", "thumb"])."""
    phrase = label_text(label)
    words = [w for w in re.findall(r"[a-z0-9']+", phrase) if w not in _STOPWORDS and len(w) > 1]
    out = [phrase] if phrase else []
    if len(phrase.split()) > 1:
        out += [w for w in words if w not in out]
    return out


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if len(text) >= 3 else f"{text} gesture".strip()


# -- metadata tables -------------------------------------------------------------------------------


@dataclass
class MetadataRow:
    """One labelled row of a metadata table."""

    label: str
    description: str | None = None
    meaning: str | None = None
    examples: list[str] = field(default_factory=list)
    not_examples: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    category: str | None = None
    copyright: str | None = None
    line: int = 0


def _norm_header(h: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(h or "").lower())


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _split_examples(text: str) -> list[str]:
    parts = re.split(r"\r?\n|\s*\|\s*", text)
    out = []
    for p in parts:
        p = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", p).strip().strip("\"“”'").strip()
        if p:
            out.append(p)
    return out


def read_metadata_table(path: str | os.PathLike) -> dict[str, MetadataRow]:
    """Rows of a CSV or XLSX metadata table keyed by `label_key(Label)`.

    Columns are matched loosely (case and punctuation ignored): Label (required), Description,
    Contextual Meaning / Meaning, Example(s) (several separated by new lines or "|"), Not
    Examples / Counter-examples (sentences where a trigger is not meant, separated likewise),
    Triggers / Keywords (separated by "," or ";"), Category, Copyright Source / License. Other
    columns (e.g. SeG's "Semantics-Aware Index") are ignored. A label listed twice fills fields
    its first row left empty.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"metadata table not found: {path}", "check the path")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        rows = _csv_rows(path)
    else:
        raise InputFileError(f"metadata table {path} is not .csv or .xlsx", "save the table as CSV or XLSX")
    header_at = next((i for i, r in enumerate(rows) if any(_cell(c) for c in r)), None)
    if header_at is None:
        raise InputFileError(f"metadata table {path} is empty", "give a table with a Label column")
    header = [_norm_header(h) for h in rows[header_at]]
    cols: dict[str, int] = {}
    for fieldname, aliases in _COLUMNS.items():
        for alias in aliases:
            if alias in header:
                cols[fieldname] = header.index(alias)
                break
    if "label" not in cols:
        shown = ", ".join(_cell(h) for h in rows[header_at] if _cell(h))
        raise InputFileError(
            f"metadata table {path} has no Label column (columns: {shown})",
            "name the column holding the gesture labels 'Label'",
        )
    out: dict[str, MetadataRow] = {}
    for i, raw in enumerate(rows[header_at + 1 :], start=header_at + 2):

        def get(name: str, raw: list[Any] = raw) -> str:
            k = cols.get(name)
            return _cell(raw[k]) if k is not None and k < len(raw) else ""

        label = get("label")
        if not label:
            continue
        category = get("category").lower() or None
        if category is not None and category not in CATEGORIES:
            raise CatalogError(
                f"{path} row {i}: category {category!r} of {label!r} is not one of {', '.join(CATEGORIES)}",
                "fix the Category column",
            )
        row = MetadataRow(
            label=label,
            description=get("description") or None,
            meaning=get("meaning") or None,
            examples=_split_examples(get("examples")),
            not_examples=_split_examples(get("not_examples")),
            triggers=[t.strip().lower() for t in re.split(r"[,;\n]", get("triggers")) if t.strip()],
            category=category,
            copyright=get("copyright") or None,
            line=i,
        )
        key = label_key(label)
        if not key:
            continue
        if key in out:
            first = out[key]
            for name in ("description", "meaning", "category", "copyright"):
                if getattr(first, name) is None:
                    setattr(first, name, getattr(row, name))
            first.examples += [e for e in row.examples if e not in first.examples]
            first.not_examples += [e for e in row.not_examples if e not in first.not_examples]
            first.triggers += [t for t in row.triggers if t not in first.triggers]
        else:
            out[key] = row
    return out


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="cp1252", errors="replace")
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror}", "check the file's permissions") from e
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    try:
        return [list(r) for r in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as e:
        raise InputFileError(f"metadata table {path} is not valid CSV ({e})", "re-export it as CSV") from None


def _xlsx_rows(path: Path) -> list[list[Any]]:
    try:
        import openpyxl
    except ImportError as e:  # pragma: no cover - openpyxl is optional
        from gesticulator.errors import MissingDependencyError

        raise MissingDependencyError(
            "reading .xlsx tables needs openpyxl", "pip install openpyxl, or save the table as CSV"
        ) from e
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zipfile/KeyError/InvalidFileException for bad files
        raise InputFileError(
            f"metadata table {path} is not a readable XLSX file ({type(e).__name__})",
            "re-save it from a spreadsheet program",
        ) from None
    try:
        sheet = wb.worksheets[0]
        return [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        wb.close()


# -- motion helpers --------------------------------------------------------------------------------


def normalize_root(motion: Motion, *, face_forward: bool = True) -> Motion:
    """Start the root at x = z = 0 and (with `face_forward`) turn the body about the vertical so
    the pelvis faces +Z on the first frame. Height and all body-relative motion are kept."""
    out = motion.copy()
    if face_forward:
        r0 = axis_angle_to_matrix(motion.rotations[0, 0].astype(np.float64))
        fwd = r0 @ np.array([0.0, 0.0, 1.0])
        yaw = float(np.arctan2(fwd[0], fwd[2]))
        if abs(yaw) > 1e-6:
            c, s = np.cos(-yaw), np.sin(-yaw)
            turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
            pelvis = axis_angle_to_matrix(motion.rotations[:, 0].astype(np.float64))
            poses = out.poses.reshape(out.num_frames, -1, 3)
            poses[:, 0] = matrix_to_axis_angle(turn @ pelvis)
            out.poses = poses.reshape(out.num_frames, -1)
            # The pelvis joint sits at rest_pelvis + trans; turn its path about the first frame.
            rest_pelvis = forward_kinematics(motion.slice(0, 1)).positions[0, 0] - motion.trans[0]
            path = rest_pelvis + motion.trans
            path = path[:1] + (path - path[:1]) @ turn.T
            out.trans = path - rest_pelvis
    out.trans[:, [0, 2]] -= out.trans[0, [0, 2]]
    return out


def _check_clip(motion: Motion, what: str) -> None:
    if motion.num_frames < 2:
        raise InputFileError(f"{what} is empty ({motion.num_frames} frame)", "choose a longer range")


# -- writing with rollback -------------------------------------------------------------------------


def _write_gestures(
    root: Path, items: Sequence[tuple[Gesture, dict[str, Motion]]], *, overwrite: bool
) -> None:
    """Library.add every gesture; if any write fails, restore every file and folder as it was."""
    root = Path(root)
    paths = {root / GESTURES_DIR / f"{g.id}.yaml" for g, _ in items}
    paths |= {root / t.clip for g, _ in items for t in g.takes}
    saved = {p: p.read_bytes() for p in paths if p.is_file()}
    dirs = {root, root / GESTURES_DIR, root / CLIPS_DIR} | {p.parent for p in paths}
    new_dirs = sorted((d for d in dirs if not d.exists()), key=lambda d: len(d.parts), reverse=True)
    library = Library([root])
    try:
        for gesture, clips in items:
            library.add(gesture, clips, root=root, overwrite=overwrite)
    except BaseException:
        for p in paths:
            if p in saved:
                p.write_bytes(saved[p])
            else:
                p.unlink(missing_ok=True)
        for d in new_dirs:
            try:
                d.rmdir()
            except OSError:
                pass
        raise


def _existing_ids(root: Path) -> set[str]:
    return set(Library([Path(root)]).ids()) if (Path(root) / GESTURES_DIR).is_dir() else set()


# -- BVH folders -----------------------------------------------------------------------------------


class ImportResult(list):
    """The imported gestures (a list of `Gesture`), plus what was skipped and noticed on the way."""

    def __init__(
        self,
        gestures: Iterable[Gesture] = (),
        skipped: list[tuple[str, str]] | None = None,
        notes: list[str] | None = None,
    ):
        super().__init__(gestures)
        self.skipped: list[tuple[str, str]] = skipped or []  # (file, one-line problem)
        self.notes: list[str] = notes or []  # e.g. files without a metadata row


@dataclass
class _Clip:
    file: Path
    label: str
    key: str
    number: int | None
    motion: Motion
    take_id: str = ""


def import_bvh_dir(
    directory: str | os.PathLike,
    joint_map: str | os.PathLike | JointMap,
    library_root: str | os.PathLike,
    metadata_table: str | os.PathLike | None = None,
    *,
    category: str | None = None,
    license: str | None = None,
    source: str | None = None,
    start: float | None = None,
    end: float | None = None,
    fps: float = CANONICAL_FPS,
    skip_bad: bool = False,
    overwrite: bool = False,
    face_forward: bool = True,
    recursive: bool = False,
    betas: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Import every ``.bvh`` in `directory` into the library folder `library_root`.

    - One gesture per label: ``THUMB_UP-3.bvh`` is take ``t3`` of gesture ``thumb_up``;
      apostrophes are dropped (``I'M_SORRY-1`` -> ``im_sorry``); a file without ``-N`` gets the
      lowest free take number.
    - Each clip is the whole file retargeted with `joint_map` (a shipped name such as "seg51",
      "mixamo", "beat_zeggs75", or a YAML path), or [`start`, `end`) seconds of it; resampled to
      `fps`; root normalised (see `normalize_root`).
    - `metadata_table` (CSV/XLSX, see `read_metadata_table`) fills description, meaning,
      examples, triggers (plus the label's words), category and per-take source/license from
      the row whose Label matches the file label (``THUMB UP`` ~ ``THUMB_UP``). Without a row,
      description and meaning are the label text. `category` (default "emblem") applies where the
      table has none; `license` overrides the table's Copyright Source; `source` is added to
      every take's source note.
    - Handedness/body parts are estimated from which arm moves most (both if similar), phase
      marks from the hand-speed profile (per take; the first take's are the gesture's).

    Everything is read, retargeted and validated before anything is written. Errors (unreadable
    BVH, joint names missing from a file, empty range, an id that exists in the library without
    `overwrite`) raise one `InputFileError`/`CatalogError` line and leave the library unchanged;
    with `skip_bad=True` bad files are listed in the result's `skipped` instead.
    Returns the gestures written (an `ImportResult` list).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise InputFileError(f"BVH folder not found: {folder}", "check the path")
    files = sorted(folder.rglob("*.bvh") if recursive else folder.glob("*.bvh"), key=lambda p: str(p).lower())
    files += sorted(
        p for p in (folder.rglob("*.BVH") if recursive else folder.glob("*.BVH")) if p not in files
    )
    if not files:
        raise InputFileError(f"no .bvh files in {folder}", "point at the folder that holds the clips")
    if category is not None and category not in CATEGORIES:
        raise CatalogError(
            f"category {category!r} is not one of {', '.join(CATEGORIES)}", "pick one of those"
        )
    jmap = load_joint_map(joint_map)
    table = read_metadata_table(metadata_table) if metadata_table is not None else {}
    result = ImportResult()

    clips: list[_Clip] = []
    for i, file in enumerate(files):
        if progress is not None:
            progress(i, len(files), file.name)
        label, number = parse_clip_name(file.stem)
        key = label_key(label)
        try:
            if not key:
                raise InputFileError(
                    f"{file}: no gesture label in the file name", "name clips like LABEL-1.bvh"
                )
            rt = Retargeter(read_bvh(file), jmap, betas=betas)
            motion = rt.motion(rt.frame_range(start, end))
            if abs(motion.fps - fps) > 1e-6:
                motion = motion.resample(fps)
            _check_clip(motion, f"{file} (range {start}-{end} s)" if start or end else str(file))
            motion = normalize_root(motion, face_forward=face_forward)
            motion.metadata.update({"source": file.name, "joint_map": jmap.name})
        except GesticulatorError as e:
            if not skip_bad:
                raise
            result.skipped.append((str(file), str(e)))
            continue
        clips.append(_Clip(file, label, key, number, motion))
    if progress is not None:
        progress(len(files), len(files), "")

    groups: dict[str, list[_Clip]] = {}
    for c in clips:
        groups.setdefault(c.key, []).append(c)
    existing = _existing_ids(Path(library_root))
    items: list[tuple[Gesture, dict[str, Motion]]] = []
    for key, group in groups.items():
        try:
            item = _gesture_from_clips(key, group, table.get(key), jmap, category, license, source)
            if item[0].id in existing and not overwrite:
                raise CatalogError(
                    f"gesture id {item[0].id!r} already exists in {library_root} (from {group[0].file.name})",
                    "replace it with --overwrite, or rename the files",
                )
        except GesticulatorError as e:
            if not skip_bad:
                raise
            result.skipped += [(str(c.file), str(e)) for c in group]
            continue
        if table and key not in table:
            result.notes.append(
                f"{group[0].file.name}: no row for label {group[0].label!r} in the metadata table"
            )
        items.append(item)
    if items:
        _write_gestures(Path(library_root), items, overwrite=overwrite)
    result.extend(g for g, _ in items)
    return result


def _gesture_from_clips(
    key: str,
    group: list[_Clip],
    row: MetadataRow | None,
    jmap: JointMap,
    category: str | None,
    license: str | None,
    source: str | None,
) -> tuple[Gesture, dict[str, Motion]]:
    # Take ids: t<N> from the file names; unnumbered files get the lowest free numbers.
    used: dict[int, Path] = {}
    for c in group:
        if c.number is not None:
            if c.number in used:
                raise CatalogError(
                    f"{c.file.name} and {used[c.number].name} are both take t{c.number} of gesture {key!r}",
                    "rename one of the files",
                )
            used[c.number] = c.file
    free = (n for n in range(1, 10**6) if n not in used)
    for c in group:
        if c.number is None:
            c.number = next(free)
            used[c.number] = c.file
        c.take_id = f"t{c.number}"
    group.sort(key=lambda c: c.number or 0)

    handedness, body_parts = estimate_handedness([c.motion for c in group])
    text = label_text(group[0].label)
    description = (row.description if row else None) or _sentence(text)
    meaning = (row.meaning if row else None) or _sentence(text)
    triggers = list(dict.fromkeys([*(row.triggers if row else []), *label_triggers(group[0].label)]))
    examples = list(row.examples) if row else []
    not_examples = list(row.not_examples) if row else []
    cat = (row.category if row else None) or category or "emblem"
    takes, clips = [], {}
    first_phases: Phases | None = None
    for c in group:
        phases = estimate_phases(c.motion, body_parts)
        side = None
        if handedness in ("left", "right"):
            take_side, _ = estimate_handedness(c.motion)
            side = take_side if take_side in ("left", "right") and take_side != handedness else None
        copyright_ = row.copyright if row else None
        note = [f"{c.file.name} retargeted with joint map '{jmap.name}'"]
        if source:
            note.append(source)
        if copyright_:
            note.append(copyright_)
        takes.append(
            {
                "id": c.take_id,
                "clip": take_clip_path(key, c.take_id),
                "source": "; ".join(note),
                "license": license or copyright_ or "unspecified",
                "side": side,
                "phases": None if first_phases is None else phases,
            }
        )
        first_phases = first_phases or phases
        clips[c.take_id] = c.motion
    data = {
        "id": key,
        "category": cat,
        "description": description,
        "meaning": meaning,
        "triggers": triggers,
        "examples": examples,
        "not_examples": not_examples,
        "handedness": handedness,
        "body_parts": body_parts,
        "phases": first_phases,
        "takes": takes,
    }
    try:
        gesture = Gesture.model_validate(data)
    except ValidationError as e:
        raise CatalogError(
            format_validation_error(group[0].file, e), "fix the file name or the metadata row"
        ) from None
    return gesture, clips


# -- SMPL-X cuts -----------------------------------------------------------------------------------


def import_npz_clip(
    file: str | os.PathLike,
    start: float,
    end: float,
    gesture_id: str,
    library_root: str | os.PathLike,
    *,
    take_id: str | None = None,
    category: str = "emblem",
    description: str | None = None,
    meaning: str | None = None,
    triggers: Sequence[str] | None = None,
    examples: Sequence[str] | None = None,
    not_examples: Sequence[str] | None = None,
    handedness: str | None = None,
    body_parts: Sequence[str] | None = None,
    phases: Phases | dict[str, float] | None = None,
    source: str | None = None,
    license: str = "unspecified",
    overwrite: bool = False,
    append: bool = False,
    face_forward: bool = True,
) -> Gesture:
    """Cut [`start`, `end`) seconds from an SMPL-X take (.npz) and add it as gesture `gesture_id`.

    The clip is resampled to 30 fps and root-normalised. `handedness`/`body_parts` and `phases`
    (seconds from the cut's start) are estimated when not given; `description`/`meaning` default
    to the id as text; `triggers` default to the id's words. An existing id is an error unless
    `overwrite=True` (replace the gesture) or `append=True` (add this cut as a new take, id
    `take_id` or the next free letter, keeping the gesture's texts). An empty range is an
    `InputFileError`. Returns the gesture as written.
    """
    file = Path(file)
    root = Path(library_root)
    if not ID_PATTERN.match(gesture_id or ""):
        raise CatalogError(
            f"gesture id {gesture_id!r} must be snake_case (a-z, 0-9, _; starting with a letter)",
            "choose another id",
        )
    if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
        raise InputFileError(
            f"clip range {start:g}-{end:g} s of {file.name} is empty", "give 0 <= start < end (seconds)"
        )
    if overwrite and append:
        raise CatalogError("overwrite and append exclude each other", "pick one")
    motion = load_npz(file)
    if abs(motion.fps - CANONICAL_FPS) > 1e-6:
        motion = motion.resample(CANONICAL_FPS)
    if start >= motion.duration:
        raise InputFileError(
            f"clip range {start:g}-{end:g} s starts after the end of {file.name} ({motion.duration:.2f} s)",
            "choose a range inside the take",
        )
    if end > motion.duration + 1 / CANONICAL_FPS:
        import warnings

        warnings.warn(
            f"clip range {start:g}-{end:g} s ends after the end of {file.name} ({motion.duration:.2f} s); "
            f"cut {start:g}-{motion.duration:.2f} s — check --end",
            stacklevel=2,
        )
    clip = motion.slice_seconds(start, min(end, motion.duration))
    _check_clip(clip, f"clip {start:g}-{end:g} s of {file.name}")
    clip = normalize_root(clip, face_forward=face_forward)
    clip.metadata.update({"source": file.name, "cut": [float(start), float(end)]})

    library = Library([root]) if (root / GESTURES_DIR).is_dir() else None
    existing = library.get(gesture_id) if library is not None and gesture_id in library else None
    if existing is not None and not (overwrite or append):
        raise CatalogError(
            f"gesture id {gesture_id!r} already exists in {root}",
            "choose another --id, or replace it with --overwrite",
        )
    if handedness is not None and handedness not in HANDEDNESS:
        raise CatalogError(f"handedness {handedness!r} is not one of {', '.join(HANDEDNESS)}")
    if body_parts is None or handedness is None:
        est_hand, est_parts = estimate_handedness(clip)
        handedness = handedness or est_hand
        body_parts = list(body_parts) if body_parts is not None else est_parts
    if isinstance(phases, dict):
        try:
            phases = Phases(**phases)
        except (ValidationError, TypeError) as e:
            raise CatalogError(
                f"phase marks {phases}: {e}".splitlines()[0], "give ordered marks in seconds"
            ) from None
    phases = phases or estimate_phases(clip, body_parts)
    if phases.retract_end > clip.duration + 1.5 / clip.fps:
        raise CatalogError(
            f"phase mark retract_end {phases.retract_end:.2f} s is past the clip's end ({clip.duration:.2f} s)",
            "give marks in seconds from the start of the cut",
        )
    note = source or f"cut {start:g}-{end:g} s from {file.name}"

    if existing is not None and append:
        ids = {t.id for t in existing.takes}
        tid = take_id or next(
            c for c in (*"abcdefghijklmnopqrstuvwxyz", *(f"t{i}" for i in range(1, 10**4))) if c not in ids
        )
        if tid in ids:
            raise CatalogError(f"gesture {gesture_id!r} already has a take {tid!r}", "choose another take id")
        take = {
            "id": tid,
            "clip": take_clip_path(gesture_id, tid),
            "source": note,
            "license": license,
            "phases": phases,
        }
        data = existing.model_dump(mode="python")
        data["takes"] = [*data["takes"], take]
        clips = {t.id: load_npz(root / t.clip) for t in existing.takes}
        over = True
    else:
        tid = take_id or "a"
        text = gesture_id.replace("_", " ")
        data = {
            "id": gesture_id,
            "category": category,
            "description": description or _sentence(text),
            "meaning": meaning or _sentence(text),
            "triggers": list(triggers) if triggers is not None else label_triggers(gesture_id),
            "examples": list(examples or []),
            "not_examples": list(not_examples or []),
            "handedness": handedness,
            "body_parts": list(body_parts),
            "phases": phases,
            "takes": [
                {"id": tid, "clip": take_clip_path(gesture_id, tid), "source": note, "license": license}
            ],
        }
        clips = {}
        over = overwrite
    try:
        gesture = Gesture.model_validate(data)
    except ValidationError as e:
        raise CatalogError(
            format_validation_error(f"gesture {gesture_id}", e), "fix the given metadata"
        ) from None
    clips[tid] = clip
    _write_gestures(root, [(gesture, clips)], overwrite=over)
    return gesture


__all__ = [
    "ImportResult",
    "MetadataRow",
    "import_bvh_dir",
    "import_npz_clip",
    "label_key",
    "label_text",
    "label_triggers",
    "normalize_root",
    "parse_clip_name",
    "read_metadata_table",
]
