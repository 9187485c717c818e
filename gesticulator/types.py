"""The data types that pass between stages. Every stage imports from here; nothing here imports
a stage, so the module stays small and cycle-free.

`Motion` is the canonical SMPL-X motion: 55 joints x 3 axis-angle (`poses`), root translation
(`trans`), body shape (`betas`), frame rate, 30 fps canonical, Y-up, hands with
``flat_hand_mean=False`` (zero hand pose = relaxed SMPL-X mean hand). Operations on it live in
`gesticulator.motion` as pure functions; the methods here are thin conveniences over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gesticulator.errors import MotionError

CANONICAL_FPS = 30.0
NUM_JOINTS = 55
POSE_DIM = NUM_JOINTS * 3


@dataclass(eq=False)
class Motion:
    """SMPL-X motion. `poses` (T, 165) axis-angle in SMPL-X joint order, `trans` (T, 3) metres."""

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10, dtype=np.float32))
    fps: float = CANONICAL_FPS
    gender: str = "neutral"
    # Free-form provenance (source file, generator, model versions...). Saved as JSON in the npz.
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses)
        trans = np.asarray(self.trans)
        betas = np.asarray(self.betas)
        if poses.ndim == 3 and poses.shape[1:] == (NUM_JOINTS, 3):
            poses = poses.reshape(poses.shape[0], POSE_DIM)
        if poses.ndim != 2 or poses.shape[1] != POSE_DIM:
            raise MotionError(
                f"poses must have shape (frames, {POSE_DIM}) (SMPL-X 55 joints x 3 axis-angle), got {poses.shape}",
                "convert SMPL/SMPL-H motion to SMPL-X layout first",
            )
        if trans.shape != (poses.shape[0], 3):
            raise MotionError(
                f"trans must have shape ({poses.shape[0]}, 3) to match poses, got {trans.shape}",
                "give one root translation per frame",
            )
        if betas.ndim != 1 or betas.shape[0] < 1:
            raise MotionError(f"betas must be a 1-D vector of shape coefficients, got {betas.shape}")
        for name, arr in (("poses", poses), ("trans", trans), ("betas", betas)):
            if not np.issubdtype(arr.dtype, np.floating):
                arr = arr.astype(np.float64)
            if not np.all(np.isfinite(arr)):
                bad = int(np.count_nonzero(~np.isfinite(arr)))
                raise MotionError(f"{name} contains {bad} NaN/Inf values", "repair or re-export the motion")
            setattr(self, name, arr)
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise MotionError(f"fps must be a positive number, got {self.fps}")
        self.fps = float(self.fps)
        self.gender = str(self.gender)

    # -- basic facts ---------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        """Seconds covered, frame count / fps."""
        return self.num_frames / self.fps

    @property
    def rotations(self) -> np.ndarray:
        """(T, 55, 3) axis-angle view of `poses`."""
        return self.poses.reshape(self.num_frames, NUM_JOINTS, 3)

    def copy(self, **changes: Any) -> Motion:
        fields = {
            "poses": self.poses.copy(),
            "trans": self.trans.copy(),
            "betas": self.betas.copy(),
            "metadata": dict(self.metadata),
        }
        fields.update(changes)
        return replace(self, **fields)

    # -- conveniences over gesticulator.motion ------------------------------------------------
    def slice(self, start: int = 0, stop: int | None = None) -> Motion:
        from gesticulator.motion.ops import slice_frames

        return slice_frames(self, start, stop)

    def slice_seconds(self, start: float = 0.0, stop: float | None = None) -> Motion:
        from gesticulator.motion.ops import slice_seconds

        return slice_seconds(self, start, stop)

    def resample(self, fps: float) -> Motion:
        from gesticulator.motion.ops import resample

        return resample(self, fps)

    def joints(self):
        """Forward kinematics: a `JointTransforms` with world positions (T, 55, 3)."""
        from gesticulator.motion.kinematics import forward_kinematics

        return forward_kinematics(self)

    @classmethod
    def rest(cls, num_frames: int = 1, fps: float = CANONICAL_FPS, betas: np.ndarray | None = None) -> Motion:
        """The SMPL-X rest pose (T-pose, relaxed mean hands) for `num_frames` frames."""
        return cls(
            poses=np.zeros((num_frames, POSE_DIM)),
            trans=np.zeros((num_frames, 3)),
            betas=np.zeros(10) if betas is None else np.asarray(betas),
            fps=fps,
        )


# -- speech ----------------------------------------------------------------------------------------
# Transcripts are pydantic models: they are read from and written to JSON by users and tools, so
# their schema is the documented interface:
#   {"language": "en", "words": [{"word": "Hello", "start": 0.0, "end": 0.42}, ...]}

SENTENCE_END = (".", "!", "?", "…")


class Word(BaseModel):
    """One spoken word with its time span in seconds."""

    model_config = ConfigDict(extra="forbid")

    word: str = Field(min_length=1)
    start: float = Field(ge=0, allow_inf_nan=False)
    end: float = Field(ge=0, allow_inf_nan=False)
    confidence: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Word:
        if self.end < self.start:
            raise ValueError(f"word {self.word!r} ends ({self.end}) before it starts ({self.start})")
        return self


class Sentence(BaseModel):
    """A sentence as a span of word indices [first_word, last_word]."""

    model_config = ConfigDict(extra="forbid")

    text: str
    start: float
    end: float
    first_word: int = Field(ge=0)
    last_word: int = Field(ge=0)

    @classmethod
    def of(cls, words: list[Word], first: int, last: int) -> Sentence:
        """The sentence made of words[first..last] (inclusive)."""
        span = words[first : last + 1]
        return cls(
            text=" ".join(w.word for w in span),
            start=span[0].start,
            end=span[-1].end,
            first_word=first,
            last_word=last,
        )


class Transcript(BaseModel):
    """Words with times, sentences, language and where it came from (asr, tts, textgrid, ...)."""

    model_config = ConfigDict(extra="forbid")

    language: str = "en"
    words: list[Word] = Field(default_factory=list)
    sentences: list[Sentence] = Field(default_factory=list)
    source: str = ""
    duration: float | None = Field(default=None, ge=0)  # length of the audio, seconds, when known

    @model_validator(mode="after")
    def _fill_sentences(self) -> Transcript:
        if not self.sentences and self.words:
            self.sentences = split_sentences(self.words)
        for s in self.sentences:
            if s.last_word >= len(self.words) or s.first_word > s.last_word:
                raise ValueError(f"sentence {s.text[:30]!r} refers to words outside the transcript")
        return self

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)

    @property
    def end(self) -> float:
        return self.duration if self.duration is not None else (self.words[-1].end if self.words else 0.0)

    def word_at(self, t: float) -> int | None:
        """Index of the word being spoken at time t, if any."""
        for i, w in enumerate(self.words):
            if w.start <= t < w.end:
                return i
        return None


def split_sentences(words: list[Word]) -> list[Sentence]:
    """Sentences from terminal punctuation (the last open sentence ends with the last word)."""
    out: list[Sentence] = []
    first = 0
    for i, w in enumerate(words):
        if w.word.rstrip("\"')»”’").endswith(SENTENCE_END) or i == len(words) - 1:
            out.append(Sentence.of(words, first, i))
            first = i + 1
    return out


@dataclass(eq=False)
class Prosody:
    """The rhythm of a voice, sampled at `fps` (the motion rate, or the rhythm model's token rate).

    Every per-frame array has one value per frame, frame k covering time k / fps.
    """

    fps: float
    onset_strength: np.ndarray  # (N,) onset strength envelope, normalised to [0, 1]
    onset_times: np.ndarray  # (K,) seconds of detected onsets
    energy: np.ndarray  # (N,) RMS energy, normalised to [0, 1]
    f0: np.ndarray  # (N,) fundamental frequency in Hz, NaN where unvoiced
    voiced: np.ndarray  # (N,) bool
    word_emphasis: (
        np.ndarray
    )  # (W,) per-word emphasis in [0, 1] (pitch + energy peaks), if a transcript was given
    word_peak_times: np.ndarray  # (W,) seconds: the stressed point inside each word
    duration: float = 0.0

    @property
    def num_frames(self) -> int:
        return int(self.onset_strength.shape[0])


# -- semantic planning -------------------------------------------------------------------------------


class CandidateHit(BaseModel):
    """One library gesture the index proposes for a phrase window."""

    gesture_id: str
    score: float
    matched_text: str = ""
    counter: float = 0.0  # likeness to the gesture's counter-examples (`Gesture.not_examples`)


class CandidateWindow(BaseModel):
    """A phrase window of the transcript (words first_word..last_word) and its top-k gestures."""

    first_word: int = Field(ge=0)
    last_word: int = Field(ge=0)
    text: str
    sentence: int = Field(ge=0)  # index into Transcript.sentences
    kind: str = "window"  # "window" (sliding n-gram) or "sentence"
    hits: list[CandidateHit] = Field(default_factory=list)


class SemanticEvent(BaseModel):
    """A semantic gesture placed on a word: the stroke's apex lands at `apex`."""

    model_config = ConfigDict(extra="forbid")

    gesture_id: str
    word_index: int = Field(ge=0)
    word: str
    start: float = Field(ge=0)  # the word's start, seconds
    apex: float = Field(ge=0)  # where the stroke apex should land (stressed point of the word)
    end: float = Field(ge=0)  # the word's end
    confidence: float = Field(ge=0, le=1)
    source: str  # "embedded" | "llm" | "markup"
    reason: str = ""


class SemanticPlan(BaseModel):
    """Which words get which semantic gesture; JSON: {"events": [...]} (+ provenance)."""

    model_config = ConfigDict(extra="forbid")

    events: list[SemanticEvent] = Field(default_factory=list)
    selector: str = "embedded"  # what produced it: embedded | llm:<provider>:<model> (+ fallbacks)
    density: str = "normal"
    library_hash: str = ""
    warnings: list[str] = Field(default_factory=list)

    def gesture_ids(self) -> list[str]:
        return [e.gesture_id for e in self.events]
