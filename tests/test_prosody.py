"""Prosody extraction on synthetic signals whose onsets, energy and pitch are known exactly."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from gesticulator.errors import GesticulatorError
from gesticulator.speech.prosody import (
    FEATURE_NAMES,
    ONSET_HOP,
    SR,
    extract_prosody,
    feature_matrix,
    num_frames,
    onset_times,
    resample_prosody,
)
from gesticulator.types import Transcript, Word

from .conftest import BEAT2_TAKE, shared_file

RNG = np.random.default_rng(0)


def sawtooth(f0: float | np.ndarray, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    """A harmonic-rich voiced tone (every harmonic present, like a glottal source)."""
    n = int(round(seconds * SR))
    freq = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = np.cumsum(freq) / SR
    return (amplitude * (2 * (phase % 1.0) - 1)).astype(np.float32)


def click_train(times: list[float], seconds: float) -> np.ndarray:
    y = 1e-4 * RNG.standard_normal(int(seconds * SR))  # a faint noise floor, like a real room
    for t in times:
        i, n = int(t * SR), int(0.01 * SR)
        y[i : i + n] += 0.5 * RNG.standard_normal(n) * np.exp(-np.arange(n) / 40)
    return y.astype(np.float32)


# -- onsets ----------------------------------------------------------------------------------------
CLICKS = [0.31, 1.07, 1.66, 2.42, 3.13, 3.87, 4.5]


def test_click_onsets_within_one_frame():
    y = click_train(CLICKS, 5.0)
    p = extract_prosody(y, SR, fps=30.0)
    # Onsets live on the BC metric's 32 ms grid (hop 512): compare grid frames.
    detected = np.round(p.onset_times * SR / ONSET_HOP)
    clicks = np.round(np.array(CLICKS) * SR / ONSET_HOP)
    # Every click is found within one onset frame of the frame that holds it...
    for c in clicks:
        assert np.min(np.abs(detected - c)) <= 1
    # ...and nothing is reported away from a click (librosa's defaults may report a sharp click
    # twice, one hop apart; that is what the BC metric sees too).
    for d in detected:
        assert np.min(np.abs(clicks - d)) <= 2
    # The per-frame envelope peaks in the frame that contains each click (or the next one).
    for t in CLICKS:
        k = int(t * 30)
        assert p.onset_strength[k : k + 2].max() == pytest.approx(1.0, abs=0.35)
    quiet = np.ones(p.num_frames, bool)
    for t in CLICKS:
        quiet[max(0, int(t * 30) - 2) : int(t * 30) + 5] = False
    assert p.onset_strength[quiet].max() < 0.3


def test_onset_times_helper_matches_bc_definition():
    """onset_times() is what the BC metric uses: librosa onset_detect at 16 kHz, hop 512."""
    import librosa

    y = click_train(CLICKS, 5.0)
    expected = librosa.onset.onset_detect(y=y, sr=16000, hop_length=512, units="time")
    np.testing.assert_allclose(onset_times(y, SR), expected)
    np.testing.assert_allclose(extract_prosody(y, SR).onset_times, expected)
    # Another input rate is resampled to 16 kHz first: the same clicks, the same onsets (±1 hop).
    y44 = np.interp(np.arange(int(5.0 * 44100)) / 44100, np.arange(len(y)) / SR, y).astype(np.float32)
    on44 = np.round(onset_times(y44, 44100) * SR / ONSET_HOP)
    for c in np.round(np.array(CLICKS) * SR / ONSET_HOP):
        assert np.min(np.abs(on44 - c)) <= 1


# -- energy ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [30.0, 7.5])
def test_energy_steps_at_the_right_frame(fps):
    # 220 Hz tone: amplitude 0.1 for 2 s, 0.5 for 2 s, 0.2 for 2 s.
    t = np.arange(6 * SR) / SR
    amp = np.select([t < 2, t < 4], [0.1, 0.5], 0.2)
    y = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    p = extract_prosody(y, SR, fps=fps)
    e = p.energy
    step_up, step_down = int(2 * fps), int(4 * fps)  # the frames starting at 2 s and 4 s
    inner = lambda a, b: e[a + 1 : b - 1]  # noqa: E731  frames clear of the transitions
    assert np.allclose(inner(step_up, step_down), 1.0, atol=0.03)  # the loud part is the robust max
    assert np.allclose(inner(0, step_up), 0.2, atol=0.03)
    assert np.allclose(inner(step_down, len(e)), 0.4, atol=0.03)
    # The first frame above the midpoint is the frame that starts at the step.
    assert np.argmax(e > 0.6) == step_up
    assert step_down + np.argmax(e[step_down:] < 0.7) == step_down


# -- pitch -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [30.0, 7.5])
def test_f0_of_two_tones_within_5_percent(fps):
    y = np.concatenate([sawtooth(200.0, 1.0), sawtooth(120.0, 1.0)])
    p = extract_prosody(y, SR, fps=fps)
    k = int(fps * 1.0)  # the frame where the pitch changes
    margin = max(1, int(round(0.1 * fps)))
    first, second = p.f0[margin : k - margin], p.f0[k + margin : p.num_frames - margin]
    assert p.voiced[margin : k - margin].all() and p.voiced[k + margin : p.num_frames - margin].all()
    np.testing.assert_allclose(first, 200.0, rtol=0.05)
    np.testing.assert_allclose(second, 120.0, rtol=0.05)
    assert np.all(np.isnan(p.f0[~p.voiced]))


def test_pyin_option_agrees():
    y = np.concatenate([sawtooth(200.0, 1.0), sawtooth(120.0, 1.0)])
    p = extract_prosody(y, SR, f0_method="pyin")
    np.testing.assert_allclose(np.nanmedian(p.f0[3:27]), 200.0, rtol=0.05)
    np.testing.assert_allclose(np.nanmedian(p.f0[33:57]), 120.0, rtol=0.05)
    assert np.all(np.isnan(p.f0[~p.voiced]))


def test_noise_is_unvoiced():
    y = (0.2 * RNG.standard_normal(2 * SR)).astype(np.float32)
    p = extract_prosody(y, SR)
    assert p.voiced.mean() < 0.1
    assert p.energy.mean() > 0.5  # loud, just not periodic


# -- silence and edge cases ------------------------------------------------------------------------
def test_silence_is_unvoiced_quiet_and_onset_free():
    words = [Word(word="nothing", start=0.2, end=0.8), Word(word="here", start=0.9, end=1.4)]
    p = extract_prosody(np.zeros(2 * SR, np.float32), SR, transcript=Transcript(words=words))
    assert p.num_frames == 60
    assert not p.voiced.any() and np.all(np.isnan(p.f0))
    assert np.all(p.energy == 0) and np.all(p.onset_strength == 0)
    assert len(p.onset_times) == 0
    assert np.all((p.word_emphasis >= 0) & (p.word_emphasis <= 1))
    np.testing.assert_allclose(p.word_peak_times, [0.2 + 0.3 * 0.6, 0.9 + 0.3 * 0.5])  # the fallback
    assert np.all(np.isfinite(feature_matrix(p)))


def test_empty_and_tiny_audio():
    p = extract_prosody(np.zeros(0, np.float32), SR)
    assert p.num_frames == 0 and p.duration == 0.0 and feature_matrix(p).shape == (0, len(FEATURE_NAMES))
    p = extract_prosody(np.full(100, 0.1, np.float32), SR)  # 6 ms: one partial frame
    assert p.num_frames == 1


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(GesticulatorError, match="fps"):
        extract_prosody(np.zeros(SR, np.float32), SR, fps=0)
    with pytest.raises(GesticulatorError, match="shape"):
        extract_prosody(np.zeros((2, 3, 4), np.float32), SR)
    with pytest.raises(GesticulatorError, match="f0 method"):
        extract_prosody(np.zeros(SR, np.float32), SR, f0_method="crepe")  # type: ignore[arg-type]


def test_stereo_int16_and_other_rates():
    mono = sawtooth(150.0, 1.0)
    ref = extract_prosody(mono, SR)
    stereo = np.stack([mono, mono], axis=1)
    np.testing.assert_allclose(extract_prosody(stereo, SR).energy, ref.energy, atol=1e-5)
    np.testing.assert_allclose(extract_prosody(stereo.T, SR).energy, ref.energy, atol=1e-5)
    pcm = (mono * 32767).astype(np.int16)
    np.testing.assert_allclose(extract_prosody(pcm, SR).energy, ref.energy, atol=1e-3)
    at44 = sawtooth(150.0 * SR / 44100, 44100 / SR)  # the same 1 s tone, sampled at 44.1 kHz
    p44 = extract_prosody(at44, 44100)
    assert p44.duration == pytest.approx(1.0, abs=1e-3) and p44.num_frames == 30
    np.testing.assert_allclose(np.nanmedian(p44.f0), 150.0, rtol=0.02)


# -- frame grid ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [30.0, 7.5, 120.0])
@pytest.mark.parametrize("seconds", [2.0, 2.01, 1.99, 0.5])
def test_frame_count_is_ceil_of_duration_times_fps(fps, seconds):
    y = sawtooth(180.0, seconds)
    p = extract_prosody(y, SR, fps=fps)
    n = math.ceil(len(y) / SR * fps - 1e-6)
    assert p.num_frames == n == num_frames(len(y) / SR, fps)
    for arr in (p.onset_strength, p.energy, p.f0, p.voiced):
        assert arr.shape == (n,)
    assert p.fps == fps and p.duration == pytest.approx(len(y) / SR)
    # Every frame, also at 120 fps (finer than the 10 ms analysis hop), gets a real value.
    assert p.voiced[1:-1].all()


def test_num_frames_examples():
    assert num_frames(63.5, 30.0) == 1905 and num_frames(63.5, 7.5) == 477
    assert num_frames(2.0, 7.5) == 15 and num_frames(2.0001, 7.5) == 16 and num_frames(0.0, 30.0) == 0


def test_resample_between_rates():
    y = np.concatenate([sawtooth(200.0, 1.0, 0.1), sawtooth(120.0, 1.0, 0.4)])
    p30 = extract_prosody(y, SR, fps=30.0)
    p7 = extract_prosody(y, SR, fps=7.5)
    down = resample_prosody(p30, 7.5)
    assert down.num_frames == p7.num_frames == 15
    np.testing.assert_allclose(down.energy, p7.energy, atol=0.05)
    np.testing.assert_allclose(down.onset_strength, p7.onset_strength, atol=1e-6)  # max of maxes
    np.testing.assert_allclose(down.f0[p7.voiced], p7.f0[p7.voiced], rtol=0.02)
    up = resample_prosody(p7, 30.0)
    assert up.num_frames == p30.num_frames == 60
    np.testing.assert_array_equal(up.energy[::4], p7.energy)  # each token frame spans 4 frames
    same = resample_prosody(p30, 30.0)
    np.testing.assert_array_equal(same.energy, p30.energy)


# -- features --------------------------------------------------------------------------------------
def test_feature_matrix_columns():
    y = np.concatenate([sawtooth(200.0, 0.5), np.zeros(SR // 2, np.float32), sawtooth(120.0, 0.5)])
    p = extract_prosody(y, SR, fps=30.0)
    f = feature_matrix(p)
    assert f.shape == (p.num_frames, len(FEATURE_NAMES)) == (45, 5) and f.dtype == np.float32
    col = {name: f[:, i] for i, name in enumerate(FEATURE_NAMES)}
    np.testing.assert_array_equal(col["onset"], p.onset_strength)
    np.testing.assert_array_equal(col["energy"], p.energy)
    np.testing.assert_array_equal(col["voiced"], p.voiced.astype(np.float32))
    assert np.all(col["log_f0_z"][~p.voiced] == 0)
    assert col["log_f0_z"][3:12].mean() > 0.5 > -0.5 > col["log_f0_z"][33:42].mean()  # high, then low
    np.testing.assert_allclose(col["delta_energy"][1:], np.diff(p.energy), atol=1e-7)
    assert col["delta_energy"][0] == 0


# -- word emphasis ---------------------------------------------------------------------------------
def test_louder_higher_word_is_emphasised():
    # Four 0.3 s "words" separated by 0.1 s pauses; the third is louder and higher.
    gap = np.zeros(int(0.1 * SR), np.float32)
    parts, words, t = [gap], [], 0.1
    for i, (f0, amp) in enumerate([(120, 0.15), (125, 0.15), (180, 0.45), (118, 0.15)]):
        glide = np.linspace(f0, f0 * 0.9, int(0.3 * SR))  # a falling contour, as in speech
        parts += [sawtooth(glide, 0.3, amp), gap]
        words.append(Word(word=f"w{i}", start=t, end=t + 0.3))
        t += 0.4
    p = extract_prosody(np.concatenate(parts), SR, transcript=Transcript(words=words))
    assert p.word_emphasis.shape == (4,) and p.word_peak_times.shape == (4,)
    assert np.all((p.word_emphasis >= 0) & (p.word_emphasis <= 1))
    assert int(np.argmax(p.word_emphasis)) == 2
    assert p.word_emphasis[2] > 0.8 and np.all(np.delete(p.word_emphasis, 2) < 0.5)
    for w, peak in zip(words, p.word_peak_times, strict=True):
        assert w.start <= peak <= w.end
    # The stressed word's pitch falls, so its peak is early in the word, not at the fallback.
    assert p.word_peak_times[2] < words[2].start + 0.15


def test_no_transcript_no_word_fields():
    p = extract_prosody(sawtooth(150.0, 0.5), SR)
    assert p.word_emphasis.shape == (0,) and p.word_peak_times.shape == (0,)


# -- numba cache -----------------------------------------------------------------------------------
def test_numba_cache_dir_defaults_to_user_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = "import os, gesticulator.speech.prosody; print(os.environ['NUMBA_CACHE_DIR'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "gesticulator" / "numba")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")  # a user's own setting wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "mine")


# -- real speech -----------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_beat2_take_has_speech_like_prosody():
    from gesticulator.speech.transcripts import read_textgrid

    wav = shared_file(BEAT2_TAKE.with_suffix(".wav"))
    transcript = read_textgrid(shared_file(BEAT2_TAKE.with_suffix(".TextGrid")))
    p = extract_prosody(wav, fps=30.0, transcript=transcript)
    assert p.num_frames == math.ceil(p.duration * 30 - 1e-6) and 60 < p.duration < 70
    assert 80 < np.nanmedian(p.f0) < 250
    assert 0.3 < p.voiced.mean() < 0.8
    assert 1.0 < len(p.onset_times) / p.duration < 10.0  # a few syllable onsets per second
    assert 0.05 < p.energy.mean() < 0.6 and 0.05 < p.onset_strength.mean() < 0.6
    words = transcript.words
    assert p.word_emphasis.shape == (len(words),)
    assert np.all((p.word_emphasis >= 0) & (p.word_emphasis <= 1))
    assert all(w.start <= t <= w.end for w, t in zip(words, p.word_peak_times, strict=True))
    # Stress falls on content words more than on function words.
    function = {"the", "a", "an", "to", "of", "and", "i", "is", "in", "it", "that"}
    is_function = np.array([w.word.lower() in function for w in words])
    assert p.word_emphasis[~is_function].mean() > p.word_emphasis[is_function].mean()
