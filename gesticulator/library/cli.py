"""`gesticulator library …`: list, show, search, validate, build, preview, add and import gestures.

Reading commands see the layered library: `--library DIR` folders (first wins), then the user
library ($GESTICULATOR_LIBRARY or ~/.local/share/gesticulator/library) when it exists, then the
shipped default. Writing commands write into `--into DIR` (default: the user library).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gesticulator._cli_util import console, frame_progress, friendly_errors
from gesticulator.errors import GesticulatorError, InputFileError

library_app = typer.Typer(help="Build, inspect and search semantic gesture libraries.", no_args_is_help=True)

LibraryOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--library", "-l", help="A library folder layered over the default (repeatable; first wins)."
    ),
]
IntoOpt = Annotated[
    Path | None, typer.Option("--into", help="Library folder to write into (default: your user library).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _library(paths: list[Path] | None):
    from gesticulator.library.store import Library

    return Library.load(paths)


def _target(into: Path | None) -> Path:
    from gesticulator.library.store import user_library_dir

    target = into or user_library_dir()
    if target.exists() and not target.is_dir():
        raise InputFileError(f"library target {target} is a file, not a folder", "give a folder with --into")
    return target


@library_app.command("list")
@friendly_errors
def list_(library: LibraryOpt = None, as_json: JsonOpt = False) -> None:
    """List the gestures (id, category, handedness, takes, meaning)."""
    lib = _library(library)
    rows = [
        {
            "id": g.id,
            "category": g.category,
            "handedness": g.handedness,
            "takes": len(g.takes),
            "meaning": g.meaning,
            "library": str(lib.entry(g.id).root),
        }
        for g in lib.gestures()
    ]
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"{len(rows)} gestures")
    for col in ("id", "category", "hand", "takes", "meaning"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], r["category"], r["handedness"], str(r["takes"]), r["meaning"])
    console.print(table)


@library_app.command()
@friendly_errors
def show(gesture_id: str, library: LibraryOpt = None, as_json: JsonOpt = False) -> None:
    """Everything about one gesture: texts, phases, takes."""
    lib = _library(library)
    entry = lib.entry(gesture_id)
    data = entry.gesture.model_dump(mode="json", exclude_none=True)
    data.pop("author", None)
    if as_json:
        print(json.dumps({**data, "file": str(entry.file)}, indent=1))
        return
    table = Table(show_header=False, box=None, title=f"{gesture_id}  ({entry.file})")
    for key in ("category", "description", "meaning", "handedness"):
        table.add_row(key, str(data[key]))
    table.add_row("body parts", ", ".join(data["body_parts"]))
    table.add_row("triggers", ", ".join(data["triggers"]))
    for ex in data["examples"]:
        table.add_row("example", ex)
    for ex in data.get("not_examples", []):
        table.add_row("not example", ex)
    table.add_row("phases", "  ".join(f"{k}={v:.2f}" for k, v in data["phases"].items()))
    for t in entry.gesture.takes:
        table.add_row(f"take {t.id}", f"{t.clip}  ({t.source}; {t.license})")
    console.print(table)


@library_app.command()
@friendly_errors
def search(
    query: str,
    k: Annotated[int, typer.Option("-k", help="How many results.")] = 5,
    library: LibraryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the gestures whose meaning fits a phrase (MiniLM embeddings + FAISS)."""
    from gesticulator.library.index import GestureIndex

    if not query.strip():
        raise GesticulatorError(
            "the search query is empty", 'give a phrase, e.g. library search "that is enormous"'
        )
    if k < 1:
        raise GesticulatorError(f"-k must be at least 1, got {k}")
    lib = _library(library)
    hits = GestureIndex.for_library(lib).search(query, k=k)
    if as_json:
        print(json.dumps([{"id": h.id, "score": round(float(h.score), 4)} for h in hits]))
        return
    table = Table(title=f"search: {query!r}")
    table.add_column("rank", justify="right")
    table.add_column("id")
    table.add_column("score", justify="right")
    table.add_column("matched text", overflow="fold")
    for rank, h in enumerate(hits, 1):
        table.add_row(str(rank), h.id, f"{h.score:.3f}", h.matched_text)
    console.print(table)


@library_app.command()
@friendly_errors
def validate(library: LibraryOpt = None) -> None:
    """Check every gesture file and clip; exits 1 when a problem is found."""
    lib = _library(library)
    problems = lib.validate()
    for p in problems:
        console.print(f"[red]✗[/] {p}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]✓[/] {len(lib)} gestures valid ({', '.join(str(r) for r in lib.roots)})")


@library_app.command()
@friendly_errors
def build(
    ids: Annotated[
        list[str] | None, typer.Argument(help="Gesture ids to rebuild (default: all authored).")
    ] = None,
    into: IntoOpt = None,
) -> None:
    """Compile authored gestures (their `author:` specs) into clips and refresh the index."""
    from gesticulator.library.authoring import build_library
    from gesticulator.library.index import GestureIndex
    from gesticulator.library.store import Library

    root = _target(into)
    built = build_library(root, ids=ids or None)
    console.print(f"built {len(built)} gesture(s) in {root}")
    GestureIndex.for_library(Library.load([root]))
    console.print("index up to date")


@library_app.command()
@friendly_errors
def preview(
    gesture_id: str,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output .mp4 (default: ID.mp4).")
    ] = None,
    take: Annotated[str | None, typer.Option("--take", help="Take id (default: the first).")] = None,
    side: Annotated[
        str | None, typer.Option("--side", help="left or right: mirror a one-handed take.")
    ] = None,
    size: Annotated[int, typer.Option("--size")] = 512,
    library: LibraryOpt = None,
) -> None:
    """Render a gesture take as an MP4 (two views, the phase shown in the caption)."""
    from gesticulator.render import render_preview

    if side not in (None, "left", "right"):
        raise GesticulatorError(f"--side must be left or right, got {side!r}")
    lib = _library(library)
    gesture = lib.get(gesture_id)
    take_obj = gesture.take(take)
    motion = lib.clip(gesture_id, take_obj.id, side=side)
    ph = gesture.phases_of(take_obj)

    def caption(t: float) -> str:
        phase = (
            "preparation" if t < ph.stroke_start else
            "stroke" if t < ph.apex - 0.05 else
            "apex" if t <= ph.apex + 0.05 else
            "hold" if t < ph.stroke_end else
            "retraction" if t < ph.retract_end else "rest"
        )  # fmt: skip
        return f"{gesture_id} ({take_obj.id}): {phase}"

    out = output or Path(f"{gesture_id}.mp4")
    with frame_progress("rendering") as progress:
        render_preview(motion, out, size=size, caption_fn=caption, progress=progress)
    console.print(f"wrote {out}")


@library_app.command()
@friendly_errors
def add(
    gesture_file: Annotated[Path, typer.Argument(help="A gesture YAML (see motion_library/README.md).")],
    clip: Annotated[
        list[str] | None, typer.Option("--clip", help="TAKE=FILE.npz for a gesture without an author: spec.")
    ] = None,
    into: IntoOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing gesture id.")] = False,
) -> None:
    """Add a gesture: an authored spec is compiled; otherwise give its clips with --clip."""
    from gesticulator.io import load_motion
    from gesticulator.library.schema import Take
    from gesticulator.library.store import Library, read_gesture_file, take_clip_path

    if not gesture_file.is_file():
        raise InputFileError(f"gesture file not found: {gesture_file}", "check the path")
    gesture = read_gesture_file(gesture_file)
    root = _target(into)
    lib = Library.load([root] if root.is_dir() else None)
    if gesture.id in lib and not overwrite:
        raise GesticulatorError(
            f"gesture id {gesture.id!r} already exists ({lib.entry(gesture.id).file})",
            "choose another id or pass --overwrite",
        )
    if gesture.author is not None and not clip:
        from gesticulator.library.authoring import build_gesture

        build_gesture(gesture, root, overwrite=overwrite)
    else:
        if not clip:
            raise GesticulatorError(
                f"{gesture_file} has no author: spec and no --clip was given", "pass --clip a=FILE.npz"
            )
        clips, takes = {}, []
        for item in clip:
            take_id, sep, path = item.partition("=")
            if not sep:
                raise GesticulatorError(f"--clip {item!r} is not TAKE=FILE.npz", "e.g. --clip a=wave.npz")
            clips[take_id] = load_motion(Path(path))
            takes.append(
                Take(
                    id=take_id,
                    clip=take_clip_path(gesture.id, take_id),
                    source=f"added from {path}",
                    license="user",
                )
            )
        gesture = gesture.model_copy(update={"takes": takes})
        Library([root]).add(gesture, clips, overwrite=overwrite)
    console.print(f"added {gesture.id} to {root}")


@library_app.command("import-bvh")
@friendly_errors
def import_bvh(
    folder: Annotated[Path, typer.Argument(help="A folder of .bvh files (one gesture label per file name).")],
    joint_map: Annotated[
        str,
        typer.Option("--joint-map", help="A shipped map name (mixamo, beat_zeggs75, seg51) or a YAML path."),
    ],
    metadata: Annotated[
        Path | None,
        typer.Option("--metadata", help="CSV/XLSX table of labels, descriptions, meanings, examples."),
    ] = None,
    into: IntoOpt = None,
    category: Annotated[
        str, typer.Option("--category", help="Category when the table gives none.")
    ] = "emblem",
    license_: Annotated[str | None, typer.Option("--license", help="Licence of the source clips.")] = None,
    start: Annotated[float | None, typer.Option("--start", help="Cut each file from this second.")] = None,
    end: Annotated[float | None, typer.Option("--end", help="Cut each file up to this second.")] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip unreadable files instead of stopping.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing gesture ids.")] = False,
) -> None:
    """Retarget a folder of BVH clips to SMPL-X and add them as gestures (one command for SeG)."""
    from gesticulator.library.importers import import_bvh_dir

    if not folder.is_dir():
        raise InputFileError(f"BVH folder not found: {folder}", "give a folder of .bvh files")
    root = _target(into)
    gestures = import_bvh_dir(
        folder,
        joint_map,
        root,
        metadata_table=metadata,
        category=category,
        license=license_,
        start=start,
        end=end,
        skip_bad=skip_bad,
        overwrite=overwrite,
    )
    takes = sum(len(g.takes) for g in gestures)
    console.print(f"imported {len(gestures)} gesture(s), {takes} take(s) into {root}")


@library_app.command("import-npz")
@friendly_errors
def import_npz(
    file: Annotated[Path, typer.Argument(help="An SMPL-X .npz take.")],
    gesture_id: Annotated[str, typer.Option("--id", help="The new gesture's id (snake_case).")],
    start: Annotated[float, typer.Option("--start", help="Clip start, seconds.")],
    end: Annotated[float, typer.Option("--end", help="Clip end, seconds.")],
    into: IntoOpt = None,
    category: Annotated[str, typer.Option("--category")] = "emblem",
    description: Annotated[str | None, typer.Option("--description")] = None,
    meaning: Annotated[str | None, typer.Option("--meaning")] = None,
    trigger: Annotated[
        list[str] | None, typer.Option("--trigger", help="Trigger word/phrase (repeatable).")
    ] = None,
    example: Annotated[
        list[str] | None, typer.Option("--example", help="Example sentence (repeatable).")
    ] = None,
    not_example: Annotated[
        list[str] | None,
        typer.Option("--not-example", help="A sentence with a trigger that does NOT mean it (repeatable)."),
    ] = None,
    license_: Annotated[str, typer.Option("--license")] = "user",
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Cut a clip from an SMPL-X take and add it as a gesture (phases estimated from hand speed)."""
    from gesticulator.library.importers import import_npz_clip

    root = _target(into)
    gesture = import_npz_clip(
        file,
        start,
        end,
        gesture_id,
        root,
        category=category,
        description=description,
        meaning=meaning,
        triggers=trigger or [],
        examples=example or [],
        not_examples=not_example or [],
        license=license_,
        overwrite=overwrite,
    )
    console.print(f"added {gesture.id} ({len(gesture.takes)} take) to {root}")
