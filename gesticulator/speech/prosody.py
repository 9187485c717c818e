"""Prosody: the rhythm of a voice (onsets, energy, pitch, stressed words) at any frame rate.

    prosody = extract_prosody("talk.wav", fps=30.0, transcript=transcript)
    feats = feature_matrix(prosody)           # (N, 5) float32, see FEATURE_NAMES
    tokens = resample_prosody(prosody, 7.5)   # the rhythm model's token rate

Time grid. Everything is analysed at 16 kHz on a fine 10 ms hop, then aggregated to `fps` so
that output frame k covers exactly [k / fps, (k + 1) / fps): a fine analysis frame (centred at
j * hop / sr) belongs to the output frame that contains its centre. Any fps works, including
rates that do not divide 16 kHz (7.5, 29.97). The frame count is

    N = ceil(duration * fps)

so every audio sample lies in some frame (the last one may be partial). A 63.5 s clip gives
1905 frames at 30 fps and 477 at 7.5 fps.

Per-frame features and how they are aggregated inside a frame:
- onset strength: librosa spectral flux, max within the frame, / robust max -> [0, 1];
- energy: RMS, mean within the frame, / robust max -> [0, 1] (0 for digital silence);
- f0: YIN (period of the first dip of the cumulative mean normalised difference) in Hz,
  geometric mean over the voiced 10 ms frames, NaN when the frame is unvoiced;
- voiced: at least half of the frame's 10 ms frames are voiced. A 10 ms frame is voiced when
  YIN's aperiodicity (the CMNDF value at the chosen period; 0 = perfectly periodic) is below
  0.3 and the energy is above a silence floor; 20 ms gaps are bridged and 40 ms blips dropped.

Why YIN and not pYIN: pYIN (librosa.pyin) is more careful about voicing but its Viterbi over
~600 pitch states costs ~0.14 x real time warm on 2 cores for pitch alone (measured on the 63 s
BEAT2 take), which blows the 0.1 x budget for the whole extraction; YIN is ~0.005 x and
agrees with pYIN's f0 to a median 2.6 cents on frames both call voiced. `f0_method="pyin"`
is still there for offline analysis.

Onset *times* use exactly the settings of the BC (beat consistency) metric: librosa
`onset_detect` at 16 kHz, hop 512, default parameters (see `onset_times`). Note that these
defaults can report a sharp click twice, one hop apart; that is what the metric sees.

numba: librosa JIT-compiles its kernels on first use (~30 s on 2 cores). numba can cache the
compiled code on disk, but only where it may write; `configure_numba_cache` (run when this
module is imported) points NUMBA_CACHE_DIR at the user cache, so a fresh process starts in ~3 s
(mostly imports) instead of ~30 s, also when site-packages is read-only.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from gesticulator.errors import GesticulatorError
from gesticulator.types import Prosody, Transcript

if TYPE_CHECKING:
    from types import ModuleType

# -- analysis constants ---------------------------------------------------------------------------
SR = 16000  # every feature is computed at 16 kHz, the rate of the BC metric and of Whisper
FINE_HOP = 160  # 10 ms: fine enough to aggregate into 30 fps frames (3-4 fine frames each)
ONSET_HOP = 512  # the BC metric's hop for onset detection (EMAGE)
RMS_FRAME = 512  # 32 ms, about one 30 fps frame: energy steps stay sharp
F0_FRAME = 1024  # 64 ms: holds >= 2 periods at FMIN, which YIN needs
FMIN, FMAX = 65.0, 400.0  # speech f0 range (low male voices to high female/child voices)
YIN_TROUGH = 0.1  # YIN's absolute threshold: the first CMNDF dip below it gives the period
APERIODICITY_VOICED = 0.3  # CMNDF at the period below this = voiced (tuned against pYIN on BEAT2)
SILENCE_DB = 45.0  # frames quieter than (robust max - 45 dB) count as silence (never voiced)
SILENCE_RMS = 1e-4  # absolute floor (-80 dBFS): digital silence or dither is never voiced
MIN_VOICED_RUN = 4  # fine frames (40 ms): shorter voiced blips are noise
MAX_VOICED_GAP = 2  # fine frames (20 ms): shorter unvoiced gaps inside a vowel are bridged

#: Columns of `feature_matrix`, in order.
FEATURE_NAMES = ("onset", "energy", "log_f0_z", "voiced", "delta_energy")

F0Method = Literal["yin", "pyin"]


# -- numba cache -----------------------------------------------------------------------------------
def configure_numba_cache() -> str | None:
    """Point numba's on-disk cache at a user-writable folder unless NUMBA_CACHE_DIR is set.

    librosa marks its kernels `cache=True`, but numba's default cache lives next to librosa's
    sources, which is read-only in system/site installs: then every process recompiles (~30 s).
    Returns the cache folder in use (None when none could be created).
    """
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return current
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "gesticulator" / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # no writable home: numba falls back to its default location
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:
        # numba reads its environment once, at import: make it re-read. Kernels of librosa
        # modules imported before this keep their default cache location.
        from numba.core import config

        config.reload_config()
    return str(folder)


configure_numba_cache()


def _librosa() -> ModuleType:
    """librosa, imported on first use: importing it costs ~1-3 s, not worth paying at import."""
    import librosa

    return librosa


# -- public API ------------------------------------------------------------------------------------
def extract_prosody(
    audio: np.ndarray | str | os.PathLike,
    sr: int = SR,
    *,
    fps: float = 30.0,
    transcript: Transcript | None = None,
    f0_method: F0Method = "yin",
) -> Prosody:
    """Onset strength, onset times, energy, f0/voicing at `fps`, plus per-word emphasis.

    `audio` is a path (decoded at 16 kHz, mono) or a sample array at rate `sr`: (n,), or
    (n, channels) / (channels, n) which is averaged to mono. With a `transcript`, every word
    gets an emphasis in [0, 1] and the time of its stressed point (how: `_word_emphasis`).
    """
    y, duration = _prepare(audio, sr)
    n = num_frames(duration, fps)
    hop = _fine_hop(fps)
    if duration == 0.0:
        empty = np.zeros(0, dtype=np.float32)
        return Prosody(
            fps=float(fps), onset_strength=empty, onset_times=np.zeros(0), energy=empty,
            f0=np.zeros(0), voiced=np.zeros(0, bool),
            word_emphasis=np.zeros(len(transcript.words) if transcript else 0, np.float32),
            word_peak_times=np.array([w.start + 0.3 * (w.end - w.start) for w in transcript.words] if transcript else []),
            duration=0.0,
        )  # fmt: skip

    if len(y) < 2048:
        # Shorter than librosa's largest FFT (the BC onset envelope's 2048): pad with silence so
        # every analysis sees whole windows; frames past `duration` are dropped below.
        y = np.pad(y, (0, 2048 - len(y)))
    onset_fine, onsets = _onsets(y, hop)
    onsets = onsets[onsets < duration]
    rms = _rms(y, hop)
    f0_fine, voiced_fine = _f0(y, hop, rms, method=f0_method)
    m = min(len(onset_fine), len(rms), len(f0_fine))  # all are 1 + len(y) // hop; be safe
    onset_fine, rms, f0_fine, voiced_fine = onset_fine[:m], rms[:m], f0_fine[:m], voiced_fine[:m]

    bins = _bins(np.arange(m) * hop / SR, fps)
    voiced = _reduce(voiced_fine.astype(np.float64), bins, n, "mean") >= 0.5
    log_f0 = _reduce(np.log(np.where(voiced_fine, f0_fine, 1.0)), bins, n, "sum")
    n_voiced = _reduce(voiced_fine.astype(np.float64), bins, n, "sum")
    f0 = np.full(n, np.nan)
    ok = voiced & (n_voiced > 0)
    f0[ok] = np.exp(log_f0[ok] / n_voiced[ok])  # geometric mean: the mean in the log-pitch domain
    voiced = ok

    if transcript is not None and transcript.words:
        emphasis, peaks = _word_emphasis(transcript, rms, f0_fine, voiced_fine, hop=hop, duration=duration)
    else:
        emphasis, peaks = np.zeros(0, np.float32), np.zeros(0)

    return Prosody(
        fps=float(fps),
        onset_strength=_reduce(_normalise(onset_fine), bins, n, "max").astype(np.float32),
        onset_times=onsets,
        energy=_reduce(_normalise(rms), bins, n, "mean").astype(np.float32),
        f0=f0,
        voiced=voiced,
        word_emphasis=emphasis,
        word_peak_times=peaks,
        duration=duration,
    )


def num_frames(duration: float, fps: float) -> int:
    """Frames at `fps` covering `duration` seconds: ceil(duration * fps), last one partial."""
    if not (math.isfinite(fps) and fps > 0):
        raise GesticulatorError(f"fps must be a positive number, got {fps}")
    # The small tolerance keeps 2.0 s * 7.5 fps at 15 frames despite float round-off.
    return max(0, math.ceil(duration * fps - 1e-6))


def onset_times(audio: np.ndarray | str | os.PathLike, sr: int = SR) -> np.ndarray:
    """Onset times in seconds exactly as the BC metric defines them (EMAGE):
    ``librosa.onset.onset_detect(y, sr=16000, hop_length=512, units="time")``."""
    y, _ = _prepare(audio, sr)
    if len(y) == 0:
        return np.zeros(0)
    librosa = _librosa()
    return librosa.onset.onset_detect(y=y, sr=SR, hop_length=ONSET_HOP, units="time")


def resample_prosody(prosody: Prosody, fps: float) -> Prosody:
    """The same prosody at another frame rate (e.g. 30 fps motion <-> 7.5 fps tokens).

    Source frame j (centred at (j + 0.5) / fps_src) goes into the target frame that contains its
    centre; onsets take the max, energy the mean, f0 the geometric mean of voiced frames, voiced
    the majority. Target frames that receive no source frame (upsampling) copy the source frame
    that contains their centre. Word-level fields and onset times are rate-free and kept.
    """
    src_fps = prosody.fps
    duration = prosody.duration or prosody.num_frames / src_fps
    n = num_frames(duration, fps)
    if abs(fps - src_fps) < 1e-9 and n == prosody.num_frames:
        return Prosody(**{**prosody.__dict__})
    m = prosody.num_frames
    bins = _bins((np.arange(m) + 0.5) / src_fps, fps)
    src_voiced = prosody.voiced.astype(bool) & np.isfinite(prosody.f0)
    voiced_share = _reduce(src_voiced.astype(np.float64), bins, n, "mean")
    n_voiced = _reduce(src_voiced.astype(np.float64), bins, n, "sum")
    log_f0 = _reduce(np.log(np.where(src_voiced, prosody.f0, 1.0)), bins, n, "sum")
    onset = _reduce(prosody.onset_strength.astype(np.float64), bins, n, "max")
    energy = _reduce(prosody.energy.astype(np.float64), bins, n, "mean")
    f0 = np.full(n, np.nan)
    voiced = (voiced_share >= 0.5) & (n_voiced > 0)
    f0[voiced] = np.exp(log_f0[voiced] / n_voiced[voiced])

    # Upsampling leaves target frames without a source frame: copy the one covering their centre.
    empty = np.flatnonzero(_reduce(np.ones(m), bins, n, "sum") == 0)
    if len(empty) and m:
        src = np.minimum(((empty + 0.5) / fps * src_fps).astype(int), m - 1)
        onset[empty] = prosody.onset_strength[src]
        energy[empty] = prosody.energy[src]
        voiced[empty] = src_voiced[src]
        f0[empty] = np.where(src_voiced[src], prosody.f0[src], np.nan)

    return Prosody(
        fps=float(fps),
        onset_strength=onset.astype(np.float32),
        onset_times=prosody.onset_times.copy(),
        energy=energy.astype(np.float32),
        f0=f0,
        voiced=voiced,
        word_emphasis=prosody.word_emphasis.copy(),
        word_peak_times=prosody.word_peak_times.copy(),
        duration=duration,
    )


def feature_matrix(prosody: Prosody) -> np.ndarray:
    """(N, 5) float32 conditioning features for the rhythm model, columns as in FEATURE_NAMES:

    0 onset         onset strength in [0, 1]
    1 energy        RMS energy in [0, 1]
    2 log_f0_z      pitch in semitones, z-scored over this take's voiced frames (per-speaker
                    normalisation: a deep and a high voice give the same contour), clipped to
                    [-3, 3]; 0 where unvoiced
    3 voiced        1.0 voiced / 0.0 unvoiced
    4 delta_energy  energy[k] - energy[k-1] (0 at k = 0), in [-1, 1]: rises mark stressed syllables
    """
    n = prosody.num_frames
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if n == 0:
        return out
    voiced = prosody.voiced.astype(bool) & np.isfinite(prosody.f0)
    out[:, 0] = prosody.onset_strength
    out[:, 1] = prosody.energy
    out[:, 2] = _pitch_z(prosody.f0, voiced)
    out[:, 3] = voiced
    out[1:, 4] = np.diff(prosody.energy)
    return out


def _word_emphasis(
    transcript: Transcript,
    rms: np.ndarray,
    f0: np.ndarray,
    voiced: np.ndarray,
    *,
    hop: int = FINE_HOP,
    duration: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-word emphasis in [0, 1] and the time of each word's stressed point (seconds).

    Inputs are fine-rate frames (centred at j * hop / 16000): RMS, f0 in Hz, voiced flags.
    Loudness (dB) is z-scored over the utterance's non-silent frames and pitch (semitones) over
    its voiced frames, i.e. per speaker. The prominence curve is their mean (pitch counts as 0,
    the speaker's average, where unvoiced). A word's score is the peak of that curve inside the
    word; scores are then compared across the utterance's words with a robust z-score
    (median / MAD, spread >= 0.5) and squashed: emphasis = sigmoid(2 (z - 0.5)), so a typical
    word gets ~0.27, a word one spread above typical ~0.73, and a clearly stressed word -> 1.

    The peak time is where the prominence curve peaks among the word's voiced frames; when the
    word has no voiced frame or its curve is flat, start + 0.3 * duration (stress tends to fall
    early in English words).
    """
    words = transcript.words
    count = len(words)
    emphasis = np.zeros(count, dtype=np.float32)
    peaks = np.array([w.start + 0.3 * (w.end - w.start) for w in words], dtype=np.float64)
    if count == 0 or len(rms) == 0:
        return emphasis, peaks

    times = np.arange(len(rms)) * hop / SR
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    speech = _not_silent(rms)
    z_energy = _zscore(db, speech, floor=1.0)
    z_pitch = _pitch_z(f0, voiced, clip=None)
    prominence = 0.5 * (z_energy + z_pitch)  # z_pitch is 0 where unvoiced

    raw = np.full(count, np.nan)
    end_time = times[-1] + hop / SR if duration is None else duration
    for i, w in enumerate(words):
        if w.start >= end_time:
            continue  # the word lies beyond the audio: no evidence, emphasis stays 0
        lo, hi = np.searchsorted(times, [w.start, w.end])
        if hi <= lo:  # shorter than one fine frame: take the frame nearest its middle
            lo = min(int(round((w.start + w.end) / 2 * SR / hop)), len(times) - 1)
            hi = lo + 1
        seg = prominence[lo:hi]
        raw[i] = seg.max()
        seg_voiced = voiced[lo:hi]
        if seg_voiced.any() and np.ptp(seg[seg_voiced]) > 0.05:
            j = np.flatnonzero(seg_voiced)[np.argmax(seg[seg_voiced])]
            peaks[i] = times[lo + j]

    have = np.isfinite(raw)
    if have.any():
        centre = np.median(raw[have])
        spread = max(1.4826 * np.median(np.abs(raw[have] - centre)), 0.5)
        z = (raw[have] - centre) / spread
        emphasis[have] = 1.0 / (1.0 + np.exp(-2.0 * (z - 0.5)))
    return emphasis, peaks


# -- components (also used by benchmarks/prosody_speed.py) ------------------------------------------
# Every feature below is computed frame by frame from the zero-padded ("centred") signal, exactly
# as librosa frames it, so a long recording is analysed in blocks of _BLOCK_FRAMES frames with the
# same result as one pass, and memory stays at one block's spectrogram instead of growing with
# the length: an hour at the 10 ms hop is 360,000 frames, and YIN's autocorrelation of all of them
# at once needed ~7 GB (117 MB per minute of audio); the spectrograms another ~50 MB per minute.
# Only the small per-frame results (a mel band matrix, f0, RMS) are kept for the whole recording.
# YIN is exact per frame whatever the block; the mel projection is a matrix product whose float32
# rounding can differ by one ulp with the block width, so spectrogram blocks are long enough
# (16384 frames: 164 s at the 10 ms hop, ~70 MB of STFT) that recordings up to ~2.7 min give
# bit-identical features to one pass, and longer ones agree to float32 rounding (~1e-7).
_YIN_BLOCK_FRAMES = 4096  # ~65 MB of autocorrelation per block
_SPEC_BLOCK_FRAMES = 16384


def _padded(y: np.ndarray, start: int, stop: int, pad: int) -> np.ndarray:
    """`np.pad(y, pad)[start:stop]` (zeros outside y) without padding all of y."""
    lo, hi = start - pad, stop - pad
    if lo >= 0 and hi <= len(y):
        return y[lo:hi]
    out = np.zeros(stop - start, dtype=y.dtype)
    a, b = max(lo, 0), min(hi, len(y))
    if b > a:
        out[a - lo : b - lo] = y[a:b]
    return out


def _frame_blocks(y: np.ndarray, frame_length: int, hop: int, pad: int, block: int = _SPEC_BLOCK_FRAMES):
    """The samples of consecutive blocks of `block` frames of `np.pad(y, pad)` framed at
    (frame_length, hop): each block holds whole frames, so framing it without padding gives
    exactly those frames."""
    total = 1 + (len(y) + 2 * pad - frame_length) // hop
    for a in range(0, max(total, 0), block):
        b = min(total, a + block)
        yield _padded(y, a * hop, (b - 1) * hop + frame_length, pad)


def mel_db(y: np.ndarray, *, n_fft: int, hop: int, n_mels: int, **kwargs) -> np.ndarray:
    """`librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=n_fft,
    hop_length=hop, n_mels=n_mels, **kwargs))` (centred frames, zero padding), computed block by
    block. power_to_db's floor (80 dB below the loudest frame) needs the whole recording, so it is
    applied once at the end, to the small mel matrix."""
    librosa = _librosa()
    blocks = [
        librosa.feature.melspectrogram(
            y=seg, sr=SR, n_fft=n_fft, hop_length=hop, n_mels=n_mels, center=False, **kwargs
        )
        for seg in _frame_blocks(y, n_fft, hop, n_fft // 2)
    ]
    return librosa.power_to_db(np.concatenate(blocks, axis=-1))


def _onsets(y: np.ndarray, hop: int = FINE_HOP) -> tuple[np.ndarray, np.ndarray]:
    """Fine-rate onset strength envelope and the BC metric's onset times."""
    librosa = _librosa()
    # The BC metric's envelope (n_fft 2048, 128 mels, hop 512; onset_strength's own mel settings,
    # fmax = sr / 2) and its peak picking, untouched: the log-mel spectrogram is computed in
    # blocks and handed to onset_strength, which then does exactly what it does from samples.
    coarse_db = mel_db(y, n_fft=2048, hop=ONSET_HOP, n_mels=128, fmax=0.5 * SR)
    coarse = librosa.onset.onset_strength(S=coarse_db, sr=SR, hop_length=ONSET_HOP, n_fft=2048)
    times = librosa.onset.onset_detect(onset_envelope=coarse, sr=SR, hop_length=ONSET_HOP, units="time")
    # The per-frame envelope on the fine hop with a 64 ms window: sharper in time than the 128 ms
    # window (64 mels: 128 would leave empty low filters at this FFT size).
    fine_db = mel_db(y, n_fft=1024, hop=hop, n_mels=64, fmax=0.5 * SR)
    fine = librosa.onset.onset_strength(S=fine_db, sr=SR, hop_length=hop, n_fft=1024)
    return fine, np.asarray(times, dtype=np.float64)


def _rms(y: np.ndarray, hop: int = FINE_HOP) -> np.ndarray:
    """`librosa.feature.rms(y=y, frame_length=RMS_FRAME, hop_length=hop)[0]`, block by block."""
    librosa = _librosa()
    blocks = [
        librosa.feature.rms(y=seg, frame_length=RMS_FRAME, hop_length=hop, center=False)[0]
        for seg in _frame_blocks(y, RMS_FRAME, hop, RMS_FRAME // 2)
    ]
    return np.concatenate(blocks)


def _f0(y: np.ndarray, hop: int, rms: np.ndarray, method: F0Method = "yin") -> tuple[np.ndarray, np.ndarray]:
    """Fine-rate f0 in Hz (NaN where unvoiced) and voiced flags."""
    if method == "pyin":
        librosa = _librosa()
        f0, voiced, _ = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=SR, frame_length=F0_FRAME, hop_length=hop)
        voiced = voiced & np.isfinite(f0)
    elif method == "yin":
        f0, aperiodicity = _yin(y, hop)
        m = min(len(f0), len(rms))
        f0, aperiodicity, rms = f0[:m], aperiodicity[:m], rms[:m]
        voiced = (aperiodicity < APERIODICITY_VOICED) & _not_silent(rms)
        voiced = _clean_runs(voiced)
        f0 = _median_in_runs(f0, voiced)
    else:
        raise GesticulatorError(f"unknown f0 method {method!r}", "use 'yin' (fast) or 'pyin' (slow, careful)")
    return np.where(voiced, f0, np.nan), voiced


def _yin(y: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN f0 (Hz) and aperiodicity per frame, frames centred at j * hop (block by block)."""
    blocks = _frame_blocks(y, F0_FRAME, hop, F0_FRAME // 2, block=_YIN_BLOCK_FRAMES)
    results = [_yin_block(seg, hop) for seg in blocks]
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def _yin_block(samples: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN over the whole frames of `samples` (already padded).

    librosa.yin computes the same f0 but throws away the CMNDF value at the chosen period, which
    is the aperiodicity we need for a voicing decision, so the few lines are repeated here.
    """
    librosa = _librosa()
    frames = librosa.util.frame(samples, frame_length=F0_FRAME, hop_length=hop)  # (L, T)
    min_period = int(np.floor(SR / FMAX))
    max_period = min(int(np.ceil(SR / FMIN)), F0_FRAME - 1)
    # Difference function d(k) = 2 (r(0) - r(k)) - sum_{m<k} y(m)^2 via the autocorrelation r.
    acf = librosa.autocorrelate(frames, max_size=max_period + 1, axis=0)
    energy = np.cumsum(np.square(frames[:max_period], dtype=np.float64), axis=0)
    diff = 2 * (acf[:1] - acf[1 : max_period + 1]) - energy
    # Cumulative mean normalised difference (YIN eq. 8) over the searched lags.
    mean = np.cumsum(diff, axis=0) / np.arange(1, max_period + 1)[:, None]
    cmndf = diff[min_period - 1 :] / (mean[min_period - 1 :] + 1e-12)  # row i = lag min_period + i

    # Period: the first local minimum below the threshold, else the global minimum.
    trough = np.zeros(cmndf.shape, dtype=bool)
    trough[1:-1] = (cmndf[1:-1] < cmndf[:-2]) & (cmndf[1:-1] <= cmndf[2:])
    trough &= cmndf < YIN_TROUGH
    idx = np.where(trough.any(axis=0), trough.argmax(axis=0), cmndf.argmin(axis=0))
    cols = np.arange(cmndf.shape[1])
    left = cmndf[np.maximum(idx - 1, 0), cols]
    mid = cmndf[idx, cols]
    right = cmndf[np.minimum(idx + 1, len(cmndf) - 1), cols]
    # Parabolic interpolation between lags for sub-sample periods.
    curvature = left - 2 * mid + right
    safe = np.abs(curvature) > 1e-12
    shift = np.where(safe, 0.5 * (left - right) / np.where(safe, curvature, 1.0), 0.0)
    period = min_period + idx + np.clip(shift, -1.0, 1.0)
    return SR / period, np.clip(mid, 0.0, None)


# -- helpers ---------------------------------------------------------------------------------------
def _prepare(audio: np.ndarray | str | os.PathLike, sr: int) -> tuple[np.ndarray, float]:
    """Mono float32 samples at 16 kHz and the duration in seconds."""
    if isinstance(audio, (str, os.PathLike)):
        from gesticulator.speech.audio import load_audio

        y = load_audio(audio, sr=SR)
        return np.ascontiguousarray(y, dtype=np.float32), len(y) / SR
    y = np.asarray(audio)
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise GesticulatorError(f"audio must be numeric samples, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.integer):
        y = y / float(np.iinfo(y.dtype).max)  # PCM integers -> [-1, 1]
    if y.ndim == 2:
        # (n, channels) as soundfile/load_audio give it, or (channels, n) as librosa does.
        channel_axis = 0 if y.shape[0] <= 8 and y.shape[0] < y.shape[1] else 1
        y = y.mean(axis=channel_axis)
    if y.ndim != 1:
        raise GesticulatorError(
            f"audio must be 1-D samples or (samples, channels), got shape {y.shape}", "pass mono samples"
        )
    if not (sr and sr > 0):
        raise GesticulatorError(f"sample rate must be positive, got {sr}")
    y = np.nan_to_num(y.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    duration = len(y) / sr
    if sr != SR and len(y):
        import soxr

        y = soxr.resample(y, sr, SR).astype(np.float32)
    return np.ascontiguousarray(y), duration


def _fine_hop(fps: float) -> int:
    """10 ms, or shorter for fps > 100 so that every output frame contains a fine frame."""
    return max(1, min(FINE_HOP, int(SR // fps)))


def _bins(times: np.ndarray, fps: float) -> np.ndarray:
    """Output frame index containing each time: floor(t * fps) (tolerant to float round-off)."""
    return np.floor(times * fps + 1e-9).astype(np.int64)


def _reduce(values: np.ndarray, bins: np.ndarray, n: int, how: str) -> np.ndarray:
    """Aggregate `values` into n frames by sorted `bins`; frames with no value get 0."""
    out = np.zeros(n, dtype=np.float64)
    keep = (bins >= 0) & (bins < n)
    values, bins = values[keep], bins[keep]
    if len(bins) == 0:
        return out
    frames, starts = np.unique(bins, return_index=True)  # bins are sorted: contiguous runs
    if how == "max":
        out[frames] = np.maximum.reduceat(values, starts)
    else:
        sums = np.add.reduceat(values, starts)
        out[frames] = sums / np.diff(np.r_[starts, len(values)]) if how == "mean" else sums
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by a robust max: the 99th percentile, so one spike does not squash the
    rest, but never below a tenth of the true max, so a sparse signal (a few clicks) whose 99th
    percentile is ~0 is not blown up; all-zero input stays zero."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    if len(x) == 0:
        return x
    scale = max(float(np.percentile(x, 99)), 0.1 * float(x.max()))
    if scale <= 1e-10:
        return np.zeros_like(x)
    return np.clip(x / scale, 0.0, 1.0)


def _not_silent(rms: np.ndarray) -> np.ndarray:
    """Frames louder than both the absolute floor and SILENCE_DB below the take's robust max."""
    if len(rms) == 0:
        return np.zeros(0, dtype=bool)
    loud = float(np.percentile(rms, 99))
    return (rms > SILENCE_RMS) & (rms > loud * 10 ** (-SILENCE_DB / 20))


def _clean_runs(voiced: np.ndarray) -> np.ndarray:
    """Bridge short unvoiced gaps, then drop short voiced blips."""
    v = voiced.copy()
    for value, max_len in ((False, MAX_VOICED_GAP), (True, MIN_VOICED_RUN - 1)):
        for start, stop in _runs(v, value):
            # Only interior gaps are bridged (a gap at the edge is silence, not a glitch).
            interior = start > 0 and stop < len(v)
            if stop - start <= max_len and (value or interior):
                v[start:stop] = not value
    return v


def _runs(mask: np.ndarray, value: bool) -> list[tuple[int, int]]:
    """[start, stop) of each run of `value` in a boolean array."""
    m = np.r_[False, mask == value, False].astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _median_in_runs(f0: np.ndarray, voiced: np.ndarray, width: int = 5) -> np.ndarray:
    """5-frame median of log f0 inside each voiced run: removes YIN's isolated octave jumps
    without smoothing across voicing boundaries."""
    from scipy.ndimage import median_filter

    out = f0.copy()
    for start, stop in _runs(voiced, True):
        if stop - start >= 3:
            out[start:stop] = np.exp(median_filter(np.log(f0[start:stop]), size=width, mode="nearest"))
    return out


def _zscore(x: np.ndarray, mask: np.ndarray, floor: float) -> np.ndarray:
    """(x - mean) / std over the masked frames (std >= floor); zeros when nothing is masked."""
    if not mask.any():
        return np.zeros_like(x, dtype=np.float64)
    mu = float(x[mask].mean())
    sd = max(float(x[mask].std()), floor)
    return (x - mu) / sd


def _pitch_z(f0: np.ndarray, voiced: np.ndarray, clip: float | None = 3.0) -> np.ndarray:
    """Semitones z-scored over the voiced frames (std >= 1 semitone), 0 where unvoiced."""
    voiced = voiced & np.isfinite(f0) & (f0 > 0)
    semitones = 12 * np.log2(np.where(voiced, f0, 1.0))
    z = np.where(voiced, _zscore(semitones, voiced, floor=1.0), 0.0)
    return np.clip(z, -clip, clip) if clip is not None else z
