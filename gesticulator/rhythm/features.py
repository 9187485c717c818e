"""Audio features at the rhythm model's token rate (7.5 tokens/s), aligned with motion tokens.

Token k covers motion frames 4k..4k+3 at 30 fps, i.e. audio time [k / 7.5, (k + 1) / 7.5).
Each token gets FEATURE_DIM = 37 numbers:

    0..19   the four 30 fps rows of `prosody.feature_matrix` inside the token, stacked
            (onset, energy, log_f0_z, voiced, delta_energy) x 4: sub-token timing of beats is
            kept, so a stroke can land on the right 33 ms frame although tokens are 133 ms long
    20..32  13 MFCCs averaged over the token, normalised per take (CMVN over the take's
            non-silent frames): what is being said / voice quality, independent of the
            microphone and of the speaker's loudness. The default model is trained on TTS speech
            and used on real recordings, so per-take normalisation matters; every other column
            is per-take normalised already (energy and onsets by a robust max, pitch by z-score)
    33      has_transcript: 1 when the word columns below are filled, else 0 (and they are 0)
    34      word_start: 1 when a word starts inside the token
    35      emphasis: the emphasis in [0, 1] of a word whose stressed point falls in the token
    36      in_word: fraction of the token covered by words (speech vs pause, from the transcript)

Feature extraction costs about 0.01 x real time warm (prosody dominates).
"""

from __future__ import annotations

import math
import os

import numpy as np

from gesticulator.speech.prosody import SR, _prepare, extract_prosody, feature_matrix, mel_db
from gesticulator.types import Prosody, Transcript

TOKEN_RATE = 7.5  # tokens per second
FRAMES_PER_TOKEN = 4  # 30 fps motion frames per token
MOTION_FPS = TOKEN_RATE * FRAMES_PER_TOKEN
NUM_MFCC = 13
PROSODY_COLS = ("onset", "energy", "log_f0_z", "voiced", "delta_energy")
WORD_COLS = ("has_transcript", "word_start", "emphasis", "in_word")
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"{c}@{i}" for i in range(FRAMES_PER_TOKEN) for c in PROSODY_COLS)
    + tuple(f"mfcc{i}" for i in range(NUM_MFCC))
    + WORD_COLS
)
FEATURE_DIM = len(FEATURE_NAMES)
WORD_SLICE = slice(FEATURE_DIM - len(WORD_COLS), FEATURE_DIM)  # the columns a transcript fills
#: Bump when the columns or their computation change: cached features are keyed on it.
FEATURE_VERSION = 1

_MFCC_HOP = 160  # 10 ms
_MFCC_FFT = 512  # 32 ms window


def num_tokens(seconds: float) -> int:
    """Tokens covering `seconds` of audio: ceil(seconds * 7.5) (the last one may be partial)."""
    return max(0, math.ceil(seconds * TOKEN_RATE - 1e-6))


def num_motion_frames(seconds: float) -> int:
    """30 fps frames covering `seconds`: ceil(seconds * 30)."""
    return max(0, math.ceil(seconds * MOTION_FPS - 1e-6))


def audio_features(
    audio: np.ndarray | str | os.PathLike,
    transcript: Transcript | None = None,
    *,
    sr: int = SR,
    prosody: Prosody | None = None,
) -> np.ndarray:
    """(num_tokens(duration), FEATURE_DIM) float32 features of a recording (path or samples at `sr`).

    `prosody`: `extract_prosody(audio, sr, fps=30, transcript=transcript)` when the caller has it
    already (the API does), so it is not computed twice (a quarter of the time of animating)."""
    y, duration = _prepare(audio, sr)
    n_tok = num_tokens(duration)
    out = np.zeros((n_tok, FEATURE_DIM), dtype=np.float32)
    if n_tok == 0:
        return out
    if prosody is None or abs(prosody.fps - MOTION_FPS) > 1e-9:
        prosody = extract_prosody(y, SR, fps=MOTION_FPS, transcript=transcript)
    rows = feature_matrix(prosody)[: n_tok * FRAMES_PER_TOKEN]
    stacked = np.zeros((n_tok * FRAMES_PER_TOKEN, len(PROSODY_COLS)), dtype=np.float32)
    stacked[: len(rows)] = rows
    out[:, : FRAMES_PER_TOKEN * len(PROSODY_COLS)] = stacked.reshape(n_tok, -1)
    mfcc_start = FRAMES_PER_TOKEN * len(PROSODY_COLS)
    out[:, mfcc_start : mfcc_start + NUM_MFCC] = _mfcc_per_token(y, n_tok)
    if transcript is not None and transcript.words:
        out[:, WORD_SLICE] = _word_columns(transcript, prosody.word_emphasis, prosody.word_peak_times, n_tok)
    return out


def _mfcc_per_token(y: np.ndarray, n_tok: int) -> np.ndarray:
    """(n_tok, 13) MFCCs averaged per token, CMVN over the take's non-silent 10 ms frames."""
    import librosa

    if len(y) < _MFCC_FFT:
        y = np.pad(y, (0, _MFCC_FFT - len(y)))
    # = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40), with
    # the log-mel spectrogram computed in blocks (bounded memory on hour-long audio, same values).
    log_mel = mel_db(y, n_fft=_MFCC_FFT, hop=_MFCC_HOP, n_mels=40)
    mfcc = librosa.feature.mfcc(
        S=log_mel, sr=SR, n_mfcc=NUM_MFCC
    ).T  # (frames, 13), frame j centred at j * hop / SR
    c0 = mfcc[:, 0]
    # c0 is log energy: frames within 40 dB-ish of the loudest are speech. CMVN statistics over
    # speech only, so a take with long pauses is normalised like one without.
    speech = c0 > np.percentile(c0, 99) - 0.5 * (np.percentile(c0, 99) - np.percentile(c0, 1))
    ref = mfcc[speech] if speech.sum() >= 10 else mfcc
    mfcc = (mfcc - ref.mean(0)) / np.maximum(ref.std(0), 1e-3)
    bins = np.floor(np.arange(len(mfcc)) * _MFCC_HOP / SR * TOKEN_RATE + 1e-9).astype(np.int64)
    keep = bins < n_tok
    sums = np.zeros((n_tok, NUM_MFCC))
    counts = np.zeros(n_tok)
    np.add.at(sums, bins[keep], mfcc[keep])
    np.add.at(counts, bins[keep], 1)
    return np.clip(sums / np.maximum(counts, 1)[:, None], -4.0, 4.0).astype(np.float32)


def _word_columns(transcript: Transcript, emphasis: np.ndarray, peaks: np.ndarray, n_tok: int) -> np.ndarray:
    cols = np.zeros((n_tok, len(WORD_COLS)), dtype=np.float32)
    cols[:, 0] = 1.0
    edges = np.arange(n_tok + 1) / TOKEN_RATE
    for i, word in enumerate(transcript.words):
        k = int(math.floor(word.start * TOKEN_RATE + 1e-9))
        if 0 <= k < n_tok:
            cols[k, 1] = 1.0
        if i < len(peaks) and i < len(emphasis):
            kp = int(math.floor(peaks[i] * TOKEN_RATE + 1e-9))
            if 0 <= kp < n_tok:
                cols[kp, 2] = max(cols[kp, 2], float(emphasis[i]))
        # Overlap of [start, end) with every token it touches.
        lo = max(0, k)
        hi = min(n_tok, int(math.ceil(word.end * TOKEN_RATE - 1e-9)))
        for t in range(lo, hi):
            overlap = min(word.end, edges[t + 1]) - max(word.start, edges[t])
            cols[t, 3] += max(0.0, overlap) * TOKEN_RATE
    np.clip(cols[:, 3], 0.0, 1.0, out=cols[:, 3])
    return cols


def fit_length(features: np.ndarray, n_tok: int) -> np.ndarray:
    """Crop, or pad with zeros (silence, no transcript), to exactly `n_tok` tokens."""
    features = np.asarray(features, dtype=np.float32)
    if features.shape[0] >= n_tok:
        return features[:n_tok]
    pad = np.zeros((n_tok - features.shape[0], features.shape[1]), dtype=np.float32)
    return np.concatenate([features, pad])


def silent_frames(features: np.ndarray, energy_threshold: float = 0.03) -> np.ndarray:
    """(N * 4,) bool per 30 fps frame (the four sub-token rows of every token): no voicing and
    energy below `energy_threshold` (of the take's robust maximum)."""
    rows = np.asarray(features)[:, : FRAMES_PER_TOKEN * len(PROSODY_COLS)].reshape(-1, len(PROSODY_COLS))
    return (rows[:, PROSODY_COLS.index("energy")] < energy_threshold) & (
        rows[:, PROSODY_COLS.index("voiced")] < 0.5
    )


def silent_tokens(features: np.ndarray, energy_threshold: float = 0.03) -> np.ndarray:
    """(N,) bool: tokens silent in all four sub-frames (`silent_frames`): a pause."""
    return silent_frames(features, energy_threshold).reshape(-1, FRAMES_PER_TOKEN).all(axis=1)


def pause_spans(
    features: np.ndarray, *, min_seconds: float = 0.5, energy_threshold: float = 0.06
) -> list[tuple[int, int]]:
    """30 fps frame spans [start, stop) of the pauses lasting at least `min_seconds`: runs of
    `silent_frames` (energy below `energy_threshold`, about -24 dB under the take's maximum)."""
    silent = silent_frames(features, energy_threshold)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
    runs = zip(edges[::2], edges[1::2], strict=True)
    return [(int(a), int(b)) for a, b in runs if (b - a) / MOTION_FPS >= min_seconds - 1e-9]
