"""Training data for the rhythm model: dataset readers, on-disk feature cache, random windows.

Two layouts are read unchanged:

BEAT2 (also the layout of the project's own bootstrap corpus)::

    root/smplxflame_30/<take>.npz        SMPL-X motion, 30 fps (BEAT2/AMASS keys)
    root/wave16k/<take>.wav              speech
    root/textgrid/<take>.TextGrid        word times (optional), or
    root/transcripts/<take>.json         a gesticulator transcript (optional)
    root/train_test_split.csv            optional "id,type" table: only the configured types
                                         (default train + additional) are used

BVH + wav folders (any skeleton; retargeted onto SMPL-X with a joint map)::

    root/**/<take>.bvh                   with <take>.wav beside it, or in root/wav/ or root/wave16k/;
                                         transcripts likewise (.json / .TextGrid, optional)

Each take becomes per-part 6D arrays at 30 fps and token-rate audio features, cropped to a
whole number of tokens (motion and audio lengths rarely agree to the frame). Both are cached on
disk keyed by a hash of the source files' bytes (and of the code versions that made them), so a
second run, or a run with another config on the same corpus, skips the prosody analysis.
"""

from __future__ import annotations

import csv
import hashlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gesticulator.errors import GesticulatorError, InputFileError
from gesticulator.rhythm.features import FEATURE_DIM, FEATURE_VERSION, FRAMES_PER_TOKEN, WORD_SLICE
from gesticulator.rhythm.representation import PART_NAMES, REPRESENTATION_VERSION

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
TRANSCRIPT_SUFFIXES = (".TextGrid", ".textgrid", ".json")

Log = Callable[[str], None]


@dataclass
class DataConfig:
    layout: str = "auto"  # auto | beat2 | bvh
    joint_map: str | None = None  # BVH layout: a shipped joint map name or a YAML path
    splits: list[str] = field(default_factory=lambda: ["train", "additional"])  # BEAT2 csv types
    mirror: bool = True  # add left/right mirrored copies (same audio): doubles the motion data
    style_by: str = "none"  # none (one style) | speaker (BEAT2 file names <id>_<speaker>_...)
    max_takes: int | None = None
    min_tokens: int = 4  # shorter takes are skipped
    cache_dir: str | None = None  # default: $XDG_CACHE_HOME/gesticulator/rhythm
    workers: int = 2  # processes for feature extraction on first use


@dataclass(frozen=True)
class TakeFiles:
    name: str
    motion: Path
    audio: Path
    transcript: Path | None
    speaker: str = "default"


@dataclass
class Take:
    """One take, ready for training: per-part (T, D) arrays with T = 4 N, features (N, F)."""

    name: str
    parts: dict[str, np.ndarray]
    features: np.ndarray
    style: int = 0

    @property
    def num_tokens(self) -> int:
        return int(self.features.shape[0])


# -- readers ---------------------------------------------------------------------------------------
def _speaker(stem: str) -> str:
    fields = stem.split("_")
    return fields[1] if len(fields) >= 3 and fields[0].isdigit() else "default"


def _companion(stem: str, folders: list[Path], suffixes: tuple[str, ...]) -> Path | None:
    for folder in folders:
        for suffix in suffixes:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _split_filter(root: Path, splits: list[str]) -> set[str] | None:
    table = root / "train_test_split.csv"
    if not table.is_file() or not splits:
        return None
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {row["id"] for row in rows if row.get("type") in splits}


def find_beat2_takes(root: str | os.PathLike, splits: list[str] | None = None) -> list[TakeFiles]:
    """Takes of a BEAT2-layout folder that have motion and audio (sorted by name)."""
    root = Path(root)
    motion_dir = root / "smplxflame_30"
    if not motion_dir.is_dir():
        raise InputFileError(
            f"{root} has no smplxflame_30/ folder (BEAT2 layout)",
            "give the BEAT2 root (smplxflame_30/, wave16k/, textgrid/) or set data.layout: bvh",
        )
    keep = _split_filter(root, splits or [])
    audio_dirs = [root / "wave16k", root / "wav", root / "audio"]
    text_dirs = [root / "textgrid", root / "transcripts"]
    takes = []
    for motion in sorted(motion_dir.glob("*.npz")):
        if keep is not None and motion.stem not in keep:
            continue
        audio = _companion(motion.stem, audio_dirs, AUDIO_SUFFIXES)
        if audio is None:
            continue
        text = _companion(motion.stem, text_dirs, TRANSCRIPT_SUFFIXES)
        takes.append(TakeFiles(motion.stem, motion, audio, text, _speaker(motion.stem)))
    return takes


def find_bvh_takes(root: str | os.PathLike) -> list[TakeFiles]:
    """BVH files under `root` that have a recording with the same name (sorted by path)."""
    root = Path(root)
    takes = []
    for bvh in sorted(root.rglob("*.bvh")):
        folders = [bvh.parent, root / "wav", root / "wave16k", root / "audio"]
        audio = _companion(bvh.stem, folders, AUDIO_SUFFIXES)
        if audio is None:
            continue
        text = _companion(
            bvh.stem, [bvh.parent, root / "textgrid", root / "transcripts"], TRANSCRIPT_SUFFIXES
        )
        takes.append(TakeFiles(bvh.stem, bvh, audio, text, _speaker(bvh.stem)))
    return takes


def find_takes(
    root: str | os.PathLike, layout: str = "auto", splits: list[str] | None = None
) -> tuple[str, list[TakeFiles]]:
    """(layout, takes) of a corpus folder; `layout` auto picks BEAT2 when smplxflame_30/ exists."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(f"training data folder not found: {root}", "check the path")
    if layout == "auto":
        layout = "beat2" if (root / "smplxflame_30").is_dir() else "bvh"
    if layout == "beat2":
        takes = find_beat2_takes(root, splits)
    elif layout == "bvh":
        takes = find_bvh_takes(root)
    else:
        raise GesticulatorError(f"unknown data layout {layout!r}", "use auto, beat2 or bvh")
    if not takes:
        raise InputFileError(
            f"no takes with both motion and audio found in {root} ({layout} layout)",
            "BEAT2: smplxflame_30/<take>.npz + wave16k/<take>.wav; BVH: <take>.bvh + <take>.wav",
        )
    return layout, takes


# -- per-take processing (cached) ------------------------------------------------------------------
def _file_hash(*paths: Path | None, extra: str = "") -> str:
    h = hashlib.sha1(extra.encode())
    for path in paths:
        if path is None:
            h.update(b"<none>")
            continue
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:20]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gesticulator" / "rhythm"


def _save_cache(path: Path, **arrays: np.ndarray) -> None:
    from gesticulator.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _features_of(files: TakeFiles, cache: Path) -> tuple[str, np.ndarray]:
    key = _file_hash(files.audio, files.transcript, extra=f"features-v{FEATURE_VERSION}")
    path = cache / "features" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            return key, data["features"]
    from gesticulator.rhythm.features import audio_features

    transcript = None
    if files.transcript is not None:
        from gesticulator.speech.transcripts import read_transcript

        transcript = read_transcript(files.transcript)
    feats = audio_features(files.audio, transcript)
    _save_cache(path, features=feats)
    return key, feats


def _motion_of(files: TakeFiles, cache: Path, joint_map: str | None, mirror: bool) -> tuple[str, list[dict]]:
    map_text = ""
    if files.motion.suffix.lower() == ".bvh":
        from gesticulator.library.retarget import load_joint_map

        if joint_map is None:
            raise GesticulatorError(
                "BVH training data needs a joint map", "set data.joint_map (e.g. beat_zeggs75)"
            )
        map_text = repr(load_joint_map(joint_map))
    key = _file_hash(files.motion, extra=f"motion-v{REPRESENTATION_VERSION}-{map_text}-{mirror}")
    path = cache / "motion" / f"{key}.npz"
    names = [f"{v}:{p}" for v in (("orig", "mirror") if mirror else ("orig",)) for p in PART_NAMES]
    if path.is_file():
        with np.load(path) as data:
            if all(n in data.files for n in names):
                return key, _variants(data, mirror)
    from gesticulator.rhythm.representation import motion_to_parts

    if files.motion.suffix.lower() == ".bvh":
        from gesticulator.library.retarget import retarget_bvh

        motion = retarget_bvh(files.motion, joint_map)
    else:
        from gesticulator.io.npz import load_npz

        motion = load_npz(files.motion)
    arrays = {f"orig:{p}": a for p, a in motion_to_parts(motion).items()}
    if mirror:
        from gesticulator.motion.ops import mirror as mirror_motion

        arrays.update({f"mirror:{p}": a for p, a in motion_to_parts(mirror_motion(motion)).items()})
    _save_cache(path, **arrays)
    return key, _variants(arrays, mirror)


def _variants(data, mirror: bool) -> list[dict]:
    return [
        {p: np.asarray(data[f"{v}:{p}"]) for p in PART_NAMES}
        for v in (("orig", "mirror") if mirror else ("orig",))
    ]


def _process(
    args: tuple[TakeFiles, str, str | None, bool],
) -> tuple[TakeFiles, str, np.ndarray, str, list[dict]]:
    files, cache, joint_map, mirror = args
    cache_path = Path(cache)
    fkey, feats = _features_of(files, cache_path)
    mkey, variants = _motion_of(files, cache_path, joint_map, mirror)
    return files, fkey, feats, mkey, variants


# -- the dataset -----------------------------------------------------------------------------------
@dataclass
class RhythmDataset:
    takes: list[Take]
    style_names: list[str]
    data_hash: str
    source: str = ""  # "<layout>:<root>"
    skipped: list[str] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(t.num_tokens for t in self.takes)

    @property
    def hours(self) -> float:
        """Hours of distinct motion (mirrored copies not counted)."""
        return sum(t.num_tokens for t in self.takes if not t.name.endswith("#mirror")) / 7.5 / 3600

    def summary(self) -> str:
        return (
            f"{len(self.takes)} takes ({sum(not t.name.endswith('#mirror') for t in self.takes)} + mirrored), "
            f"{self.hours:.2f} h, {self.num_tokens} tokens, styles {self.style_names}, data hash {self.data_hash}"
        )

    def part_stats(self, floor: float = 0.01) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-part mean and std over all frames (std floored: near-constant dims are not blown up)."""
        out = {}
        for p in PART_NAMES:
            total = np.zeros(0)
            count = 0
            sq = None
            for t in self.takes:
                x = t.parts[p].astype(np.float64)
                total = x.sum(0) if count == 0 else total + x.sum(0)
                sq = (x**2).sum(0) if sq is None else sq + (x**2).sum(0)
                count += len(x)
            mean = total / count
            std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
            out[p] = (mean.astype(np.float32), np.maximum(std, floor).astype(np.float32))
        return out

    def feature_stats(self, floor: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        feats = np.concatenate([t.features for t in self.takes]).astype(np.float64)
        return feats.mean(0).astype(np.float32), np.maximum(feats.std(0), floor).astype(np.float32)

    # -- windows -----------------------------------------------------------------------------------
    def _pick(self, rng: np.random.Generator, lengths: np.ndarray, window: int, lo: int, batch: int):
        """(take index, start) pairs with start in [lo, length - window], uniform over all starts."""
        counts = np.maximum(lengths - window - lo + 1, 0)
        total = int(counts.sum())
        if total == 0:
            raise GesticulatorError(
                f"no take is long enough for a training window of {window + lo} steps",
                "use a smaller window in the config or longer takes",
            )
        flat = rng.integers(0, total, size=batch)
        bounds = np.cumsum(counts)
        take = np.searchsorted(bounds, flat, side="right")
        start = flat - (bounds[take] - counts[take]) + lo
        return take, start

    def motion_windows(self, rng: np.random.Generator, batch: int, frames: int) -> dict[str, np.ndarray]:
        """{part: (batch, frames, D)} random windows (frames a multiple of 4 for the tokenizer)."""
        lengths = np.array([t.parts[PART_NAMES[0]].shape[0] for t in self.takes])
        take, start = self._pick(rng, lengths, frames, 0, batch)
        return {
            p: np.stack([self.takes[i].parts[p][s : s + frames] for i, s in zip(take, start, strict=True)])
            for p in PART_NAMES
        }

    def token_windows(
        self,
        rng: np.random.Generator,
        codes: list[np.ndarray],
        batch: int,
        window: int,
        margin: int,
        transcript_dropout: float = 0.0,
    ) -> dict[str, np.ndarray]:
        """Random GPT windows: targets codes[s:s+W], prev coarse codes[s-1:s+W-1, :, 0], audio
        features [s-margin, s+W+margin) (zeros outside the take), style ids."""
        lengths = np.array([c.shape[0] for c in codes])
        take, start = self._pick(rng, lengths, window, 1, batch)
        parts, levels = codes[0].shape[1:]
        targets = np.zeros((batch, window, parts, levels), dtype=np.int64)
        prev = np.zeros((batch, window, parts), dtype=np.int64)
        audio = np.zeros((batch, window + 2 * margin, FEATURE_DIM), dtype=np.float32)
        for b, (i, s) in enumerate(zip(take, start, strict=True)):
            c, f = codes[i], self.takes[i].features
            targets[b] = c[s : s + window]
            prev[b] = c[s - 1 : s + window - 1, :, 0]
            lo, hi = s - margin, s + window + margin
            src_lo, src_hi = max(lo, 0), min(hi, len(f))
            audio[b, src_lo - lo : src_hi - lo] = f[src_lo:src_hi]
            if transcript_dropout > 0 and rng.random() < transcript_dropout:
                audio[b, :, WORD_SLICE] = 0.0  # as if no transcript was given
        style = np.array([self.takes[i].style for i in take], dtype=np.int64)
        return {"targets": targets, "prev": prev, "audio": audio, "style": style}


def load_dataset(
    root: str | os.PathLike,
    cfg: DataConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    log: Log = print,
) -> RhythmDataset:
    """Read, process (cached) and align every take of a corpus."""
    cfg = cfg or DataConfig()
    layout, files = find_takes(root, cfg.layout, cfg.splits)
    if cfg.max_takes is not None:
        files = files[: cfg.max_takes]
    cache = Path(cache_dir or cfg.cache_dir or default_cache_dir()).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    jobs = [(f, str(cache), cfg.joint_map, cfg.mirror) for f in files]
    log(f"data: {len(files)} takes ({layout} layout) from {root}; cache {cache}")
    if cfg.workers > 1 and len(jobs) > 1:
        # spawn, not fork: forking a process that already runs torch/OpenMP threads can deadlock.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(cfg.workers, len(jobs)), mp_context=context) as pool:
            results = list(pool.map(_process, jobs))
    else:
        results = [_process(job) for job in jobs]

    speakers = sorted({f.speaker for f in files}) if cfg.style_by == "speaker" else ["default"]
    if cfg.style_by not in ("none", "speaker"):
        raise GesticulatorError(f"unknown data.style_by {cfg.style_by!r}", "use none or speaker")
    takes, skipped, keys = [], [], []
    for files_i, fkey, feats, mkey, variants in results:
        frames = variants[0][PART_NAMES[0]].shape[0]
        n = min(frames // FRAMES_PER_TOKEN, len(feats))
        if n < cfg.min_tokens:
            skipped.append(files_i.name)
            continue
        keys.append(f"{files_i.name}:{fkey}:{mkey}")
        style = speakers.index(files_i.speaker) if cfg.style_by == "speaker" else 0
        for v, parts in enumerate(variants):
            takes.append(
                Take(
                    name=files_i.name + ("#mirror" if v else ""),
                    parts={
                        p: np.ascontiguousarray(a[: n * FRAMES_PER_TOKEN], dtype=np.float32)
                        for p, a in parts.items()
                    },
                    features=np.ascontiguousarray(feats[:n], dtype=np.float32),
                    style=style,
                )
            )
    if not takes:
        raise InputFileError(
            f"every take in {root} is shorter than {cfg.min_tokens} tokens", "give longer takes"
        )
    data_hash = hashlib.sha1("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    dataset = RhythmDataset(
        takes, speakers, data_hash, source=f"{layout}:{Path(root).resolve()}", skipped=skipped
    )
    log(f"data: {dataset.summary()}" + (f"; skipped (too short): {', '.join(skipped)}" if skipped else ""))
    return dataset
