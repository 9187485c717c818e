"""What a batch animates: the items of a manifest (CSV/TSV or JSONL) or of a folder of audio files.

A manifest row names one recording and, optionally, how to animate it:

    id,audio,transcript,script,seed,density,formats,llm
    intro,talks/intro.wav,talks/intro.json,,0,,,
    ,talks/q_and_a.mp3,,talks/q_and_a.txt,3,high,"npz,bvh",

JSONL takes the same keys, one object a line (`formats` may be a list). Relative paths are
relative to the manifest's folder. Empty cells mean "the batch's default" (the command's options).

Mistakes in the manifest itself (an unknown column, a seed that is not a number, a transcript and
a script on one row, two rows with one id) stop the batch before anything runs, with one line
naming the row and the fix. A missing or unreadable *file* is not a manifest mistake: that item
fails, is recorded, and the batch goes on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gesticulator.errors import GesticulatorError, InputFileError

COLUMNS = ("id", "audio", "transcript", "script", "seed", "density", "formats", "llm")
OUTPUT_FORMATS = ("npz", "bvh", "glb", "mp4")  # as gesticulator.api.OUTPUT_FORMATS (not imported: heavy)
DENSITIES = ("low", "normal", "high")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".mp4", ".mov", ".webm")
TRANSCRIPT_SUFFIXES = (".json", ".textgrid", ".srt", ".vtt")
SCRIPT_SUFFIXES = (".txt", ".md")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ManifestError(InputFileError):
    """A manifest that cannot be read as it is (the batch does not start)."""


@dataclass(frozen=True)
class BatchItem:
    """One recording to animate. `None` fields take the batch's defaults."""

    id: str
    audio: Path
    transcript: Path | None = None
    script: Path | str | None = None  # a .txt/.md file, or the script's text itself
    seed: int | None = None
    density: str | None = None
    formats: tuple[str, ...] | None = None
    llm: str | None = None
    where: str = ""  # "talks.csv line 4" / "talks/ (folder)": for messages

    def input_paths(self) -> dict[str, str | None]:
        """The inputs as recorded in batch.jsonl and the completion marker."""
        script = self.script
        if isinstance(script, str):
            script = "(text) " + (script if len(script) <= 60 else script[:57] + "...")
        return {
            "audio": str(self.audio),
            "transcript": str(self.transcript) if self.transcript is not None else None,
            "script": str(script) if script is not None else None,
        }

    def input_hash(self) -> str:
        """sha256 over the content of the audio, the transcript and the script (its file or text).
        Raises InputFileError when a file is missing or unreadable."""
        h = hashlib.sha256()
        h.update(b"audio\x00" + _file_digest(self.audio, "audio file", "check the audio path").encode())
        if self.transcript is not None:
            h.update(b"\x00transcript\x00" + _file_digest(self.transcript, "transcript file", "check the transcript path").encode())  # fmt: skip
        if isinstance(self.script, Path):
            h.update(
                b"\x00script\x00" + _file_digest(self.script, "script file", "check the script path").encode()
            )
        elif self.script is not None:
            h.update(
                b"\x00script-text\x00" + hashlib.sha256(self.script.encode("utf-8")).hexdigest().encode()
            )
        return h.hexdigest()


@dataclass
class Manifest:
    items: list[BatchItem]
    source: Path
    kind: str  # csv | tsv | jsonl | folder
    notes: list[str] = field(default_factory=list)  # e.g. files in a folder that were not used


def _file_digest(path: Path, what: str, fix: str) -> str:
    if not path.is_file():
        raise InputFileError(f"{what} not found: {path}", fix)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise InputFileError(f"cannot read {what} {path}: {e.strerror}", fix) from None
    return h.hexdigest()


# -- reading ---------------------------------------------------------------------------------------
def read_items(source: str | os.PathLike) -> Manifest:
    """The items of a manifest file (.csv, .tsv, .jsonl) or of a folder of audio files."""
    src = Path(source).expanduser().absolute()
    if src.is_dir():
        return _read_folder(src)
    if not src.is_file():
        raise InputFileError(
            f"batch input not found: {src}", "give a manifest (.csv/.jsonl) or a folder of audio files"
        )
    suffix = src.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise ManifestError(
            f"{src.name}: a manifest must be .csv, .tsv or .jsonl (got {suffix or 'no suffix'})",
            "write a CSV with an 'audio' column or a JSONL file, or pass a folder of audio files",
        )
    try:
        data = src.read_bytes()
    except OSError as e:
        raise ManifestError(f"cannot read {src}: {e.strerror}", "check the path and permissions") from None
    from gesticulator.io.text import decode_text

    # UTF-8 or UTF-16 (Excel's "Unicode text"); no guessing otherwise: a wrong guess would turn
    # file names into names of files that do not exist.
    try:
        text = decode_text(data, str(src), legacy=False, fix="save the manifest as UTF-8")
    except InputFileError as e:
        raise ManifestError(e.problem, e.fix) from None
    if suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(src, text)
        kind = "jsonl"
    else:
        rows = _csv_rows(src, text, delimiter="\t" if suffix == ".tsv" else ",")
        kind = suffix[1:]
    items = [_item(src, where, row) for where, row in rows]
    if not items:
        raise ManifestError(f"{src.name} lists no items", "add one row per recording (an 'audio' column)")
    return Manifest(_assign_ids(items), src, kind)


def _csv_rows(src: Path, text: str, delimiter: str) -> list[tuple[str, dict[str, Any]]]:
    lines = text.splitlines()
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ManifestError(f"{src.name} is empty", "write a header row (audio,transcript,seed,...) and rows") from None  # fmt: skip
    names = [h.strip().lower() for h in header]
    if "audio" not in names:
        raise ManifestError(
            f"{src.name} line 1: no 'audio' column (header: {','.join(names) or '(empty)'})",
            f"the first row names the columns; use some of {', '.join(COLUMNS)}",
        )
    _check_columns(src.name, "line 1", names)
    dupes = sorted({n for n in names if names.count(n) > 1 and n})
    if dupes:
        raise ManifestError(f"{src.name} line 1: column {dupes[0]!r} appears twice", "keep one of them")
    rows = []
    try:
        for cells in reader:
            where = f"{src.name} line {reader.line_num}"
            if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue  # blank lines and comments
            if len(cells) > len(names):
                raise ManifestError(
                    f"{where}: {len(cells)} cells but {len(names)} columns",
                    'quote cells that contain the delimiter, e.g. "npz,bvh"',
                )
            rows.append((where, {n: c.strip() for n, c in zip(names, cells, strict=False) if n}))
    except csv.Error as e:
        raise ManifestError(
            f"{src.name} line {reader.line_num}: {e}", "fix the quoting of that row"
        ) from None
    return rows


def _jsonl_rows(src: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{src.name} line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(
                f"{where}: not valid JSON ({e.msg})", "write one JSON object per line"
            ) from None
        if not isinstance(row, dict):
            raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}", 'write {"audio": "talk.wav", ...}')  # fmt: skip
        row = {str(k).strip().lower(): v for k, v in row.items()}
        _check_columns(src.name, f"line {n}", list(row))
        rows.append((where, row))
    return rows


def _check_columns(name: str, where: str, keys: list[str]) -> None:
    unknown = [k for k in keys if k and k not in COLUMNS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], COLUMNS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ManifestError(
            f"{name} {where}: unknown column {unknown[0]!r}", f"{hint}columns are {', '.join(COLUMNS)}"
        )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _item(src: Path, where: str, row: dict[str, Any]) -> BatchItem:
    base = src.parent

    def text(key: str) -> str | None:
        value = row.get(key)
        if _blank(value):
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ManifestError(f"{where}: {key} must be text, got {json.dumps(value)}", f"write the {key} as a string")  # fmt: skip
        return str(value).strip()

    def path(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    audio = text("audio")
    if audio is None:
        raise ManifestError(f"{where}: no audio", "every row needs the path of its recording in 'audio'")
    transcript = text("transcript")
    script = text("script")
    if transcript is not None and script is not None:
        raise ManifestError(f"{where}: both a transcript and a script", "keep one: a transcript has the timing already")  # fmt: skip
    if transcript is not None and Path(transcript).suffix.lower() not in TRANSCRIPT_SUFFIXES:
        raise ManifestError(
            f"{where}: transcript {transcript!r} is not a .json, .TextGrid, .srt or .vtt file",
            "a plain text belongs in the 'script' column",
        )
    script_value: Path | str | None = None
    if script is not None:
        looks_like_file = "\n" not in script and Path(script).suffix.lower() in SCRIPT_SUFFIXES
        script_value = path(script) if looks_like_file else script
    return BatchItem(
        id=text("id") or "",
        audio=path(audio),
        transcript=path(transcript) if transcript is not None else None,
        script=script_value,
        seed=_seed(row.get("seed"), where),
        density=_density(row.get("density"), where),
        formats=_formats(row.get("formats"), where),
        llm=text("llm"),
        where=where,
    )


def _seed(value: Any, where: str) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise ManifestError(f"{where}: seed {value!r} is not a whole number", "write e.g. 0 or 42, or leave it empty")  # fmt: skip
    try:
        seed = int(value) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: seed {value!r} is not a whole number", "write e.g. 0 or 42, or leave it empty") from None  # fmt: skip
    if not 0 <= seed < 2**32:
        raise ManifestError(f"{where}: seed {seed} is out of range", "use a seed between 0 and 4294967295")
    return seed


def _density(value: Any, where: str) -> str | None:
    if _blank(value):
        return None
    d = str(value).strip().lower()
    if d not in DENSITIES:
        raise ManifestError(f"{where}: density {value!r} is not low, normal or high", "use low, normal or high, or leave it empty")  # fmt: skip
    return d


def _formats(value: Any, where: str) -> tuple[str, ...] | None:
    if _blank(value):
        return None
    if isinstance(value, list):
        parts = [str(v) for v in value]
    elif isinstance(value, str):
        parts = re.split(r"[,;|\s]+", value)
    else:
        raise ManifestError(f'{where}: formats must be text like "npz,bvh" or a list', "e.g. npz,bvh,glb,mp4")
    from gesticulator.api import check_formats

    try:
        return tuple(check_formats(parts))
    except GesticulatorError as e:
        raise ManifestError(f"{where}: {e.problem}", e.fix) from None


def _read_folder(folder: Path) -> Manifest:
    """Every audio file directly in `folder` (sorted by name), with `<stem>.json` (or .TextGrid,
    .srt, .vtt) beside it as its transcript, else `<stem>.txt` as its script."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    items = []
    for p in files:
        if p.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        siblings = {q.suffix.lower(): q for q in by_stem[p.stem] if q != p}
        transcript = next((siblings[s] for s in TRANSCRIPT_SUFFIXES if s in siblings), None)
        script = None if transcript is not None else siblings.get(".txt") or siblings.get(".md")
        items.append(BatchItem(id="", audio=p, transcript=transcript, script=script, where=f"{folder.name}/{p.name}"))  # fmt: skip
    if not items:
        raise InputFileError(
            f"no audio files in {folder}",
            f"put recordings ({', '.join(s[1:] for s in AUDIO_SUFFIXES[:5])}, ...) there or pass a manifest",
        )
    return Manifest(_assign_ids(items), folder, "folder")


def _assign_ids(items: list[BatchItem]) -> list[BatchItem]:
    """Explicit ids must be unique folder names; the others are the audio file's stem, made
    unique in manifest order (talk, talk-2, talk-3 …)."""
    from dataclasses import replace

    taken: dict[str, str] = {}
    for it in items:
        if not it.id:
            continue
        if not _ID_OK.match(it.id):
            raise ManifestError(
                f"{it.where}: id {it.id!r} cannot be a folder name",
                "use letters, digits, '.', '_' and '-' (not first), at most 128 characters",
            )
        if it.id in taken:
            raise ManifestError(f"{it.where}: id {it.id!r} is also used by {taken[it.id]}", "give every row its own id")  # fmt: skip
        taken[it.id] = it.where
    out = []
    counts: dict[str, int] = {}
    for it in items:
        if it.id:
            out.append(it)
            continue
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", it.audio.stem).strip("._-")[:100] or "item"
        n = counts.get(stem, 0)
        candidate = stem if n == 0 else f"{stem}-{n + 1}"
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n + 1}"
        counts[stem] = n + 1
        taken[candidate] = it.where
        out.append(replace(it, id=candidate))
    return out


def check_defaults(*, seed: int, density: str, formats: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """Validate the command's defaults like a row's; returns the formats as a tuple."""
    _seed(seed, "--seed")
    if density not in DENSITIES:
        raise GesticulatorError(f"--density must be low, normal or high, got {density!r}")
    fmts = _formats(list(formats) if not isinstance(formats, str) else formats, "--formats")
    assert fmts is not None
    return fmts


__all__ = [
    "AUDIO_SUFFIXES",
    "COLUMNS",
    "BatchItem",
    "Manifest",
    "ManifestError",
    "check_defaults",
    "read_items",
]
