"""Transcript readers/writer, script markup and script-to-recording alignment (no models needed)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from gesticulator.errors import ExportError, InputFileError
from gesticulator.speech.align import (
    ScriptMismatchWarning,
    align_script,
    align_script_to_words,
    merge_word_fragments,
    needleman_wunsch,
    normalize_word,
)
from gesticulator.speech.markup import (
    DensityMark,
    GestureMark,
    MarkupError,
    NoGestureSpan,
    script_words,
    sentence_spans,
    strip_markup,
)
from gesticulator.speech.transcripts import read_textgrid, read_transcript, write_transcript
from gesticulator.types import Transcript, Word

from .conftest import BEAT2_TAKE, shared_file

# -- JSON ------------------------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    t = Transcript(
        words=[Word(word="Hello", start=0.0, end=0.42), Word(word="world.", start=0.5, end=0.9)], source="asr"
    )
    path = write_transcript(t, tmp_path / "t.json")
    back = read_transcript(path)
    assert back == t
    assert back.sentences[0].text == "Hello world."


def test_json_documented_schema_and_bare_list(tmp_path):
    (tmp_path / "a.json").write_text(
        json.dumps({"language": "en", "words": [{"word": "Hi", "start": 0, "end": 0.3}]})
    )
    t = read_transcript(tmp_path / "a.json")
    assert t.words[0].word == "Hi" and t.source == "json"
    (tmp_path / "b.json").write_text(json.dumps([{"word": "Hi", "start": 0, "end": 0.3}]))
    assert read_transcript(tmp_path / "b.json").words[0].end == 0.3


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            '{"words": [{"word": "a", "start": -1, "end": 0.2}]}',
            r"b\.json: words\[0\]\.start: .*greater than or equal to 0",
        ),
        (
            '{"words": [{"word": "a", "start": 0.5, "end": 0.2}]}',
            r"words\[0\]: word 'a' ends \(0.2\) before it starts",
        ),
        ('{"words": [{"word": "a", "start": 0}]}', r"words\[0\]\.end: Field required"),
        (
            '{"words": [{"word": "a", "start": 0, "end": 1, "speaker": 2}]}',
            r"words\[0\]\.speaker: Extra inputs",
        ),
        ('{"words": [{"word": "a", "start": "soon", "end": 1}]}', r"words\[0\]\.start: .*\(got 'soon'\)"),
        ('{"text": "hello"}', r"no 'words' list"),
        ('"hello"', r"expected a JSON object"),
        ('{"words": [\n{"word": "a", "start": 0 "end": 1}]}', r"b\.json line 2: not valid JSON"),
    ],
)
def test_json_errors_name_file_and_field(tmp_path, content, match):
    (tmp_path / "b.json").write_text(content)
    with pytest.raises(InputFileError, match=match) as e:
        read_transcript(tmp_path / "b.json")
    assert "\n" not in str(e.value)


def test_missing_empty_and_unknown_files(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_transcript(tmp_path / "nope.json")
    (tmp_path / "e.srt").write_text("  \n")
    with pytest.raises(InputFileError, match="e.srt is empty"):
        read_transcript(tmp_path / "e.srt")
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(InputFileError, match="unknown transcript format '.docx'"):
        read_transcript(tmp_path / "x.docx")


def test_write_transcript_refuses_other_formats(tmp_path):
    with pytest.raises(ExportError, match=r"\.json"):
        write_transcript(Transcript(), tmp_path / "t.srt")


# -- TextGrid --------------------------------------------------------------------------------------

LONG_TG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 2.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 2.5
            text = "HH"
    item [2]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2.5
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.3
            text = ""
        intervals [2]:
            xmin = 0.3
            xmax = 0.8
            text = "hello"
        intervals [3]:
            xmin = 0.8
            xmax = 1.4
            text = "say ""hi"""
        intervals [4]:
            xmin = 1.4
            xmax = 2.5
            text = "sil"
'''

SHORT_TG = """File type = "ooTextFile"
Object class = "TextGrid"

0
2.5
<exists>
2
"TextTier"
"events"
0
2.5
1
1.0
"click"
"IntervalTier"
"Speaker A"
0
2.5
3
0
0.3
""
0.3
0.8
"hello"
0.8
2.5
"world"
"""


def test_textgrid_long_format_picks_word_tier(tmp_path):
    (tmp_path / "a.TextGrid").write_text(LONG_TG)
    t = read_transcript(tmp_path / "a.TextGrid")
    assert [w.word for w in t.words] == ["hello", 'say "hi"']  # empty and "sil" skipped
    assert (t.words[0].start, t.words[0].end) == (0.3, 0.8)
    assert t.duration == 2.5 and t.source == "textgrid"


def test_textgrid_short_format_first_interval_tier(tmp_path):
    (tmp_path / "b.TextGrid").write_text(SHORT_TG)
    t = read_transcript(tmp_path / "b.TextGrid")
    assert [(w.word, w.start, w.end) for w in t.words] == [("hello", 0.3, 0.8), ("world", 0.8, 2.5)]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-16-le"])
def test_textgrid_encodings(tmp_path, encoding):
    (tmp_path / "u.TextGrid").write_bytes(SHORT_TG.replace("hello", "héllo").encode(encoding))
    assert read_transcript(tmp_path / "u.TextGrid").words[0].word == "héllo"


def test_textgrid_malformed(tmp_path):
    bad = tmp_path / "bad.TextGrid"
    bad.write_text(LONG_TG[: LONG_TG.index("intervals [3]")])
    with pytest.raises(InputFileError, match=r"bad.TextGrid line \d+: TextGrid ends early"):
        read_transcript(bad)
    bad.write_text(LONG_TG.replace("xmax = 0.8\n            text", 'xmax = "x"\n            text'))
    with pytest.raises(
        InputFileError, match=r"bad.TextGrid line 31: expected interval xmax \(a number\), found 'x'"
    ):
        read_transcript(bad)
    bad.write_text("just some text\n")
    with pytest.raises(InputFileError, match="bad.TextGrid"):
        read_transcript(bad)
    bad.write_text(LONG_TG.replace('Object class = "TextGrid"', 'Object class = "Sound"'))
    with pytest.raises(InputFileError, match="object class is 'Sound'"):
        read_transcript(bad)


@pytest.mark.shared_data
def test_beat2_textgrid():
    path = shared_file(BEAT2_TAKE.with_suffix(".TextGrid"))
    t = read_textgrid(path)
    assert len(t.words) > 150 and t.words[0].word == "the"
    assert all(w.word.strip() for w in t.words)
    assert all(a.start <= b.start for a, b in zip(t.words, t.words[1:], strict=False))
    assert 60 < t.duration < 70


# -- SRT / WebVTT ----------------------------------------------------------------------------------

SRT = """1
00:00:01,000 --> 00:00:02,000
<i>Hello</i> there

2
00:00:02,500 --> 00:00:04,500 X1:40 X2:600
JOHN: I'm here. [MUSIC]
- Good &amp; well.

"""

VTT = """WEBVTT - a talk
Kind: captions

NOTE this is a comment
spanning lines

intro
00:01.000 --> 00:02.000 align:start position:10%
<v Roger Bingham>We are <c.loud>live</c>

00:00:02.000 --> 00:00:03.000
<00:00:02.100>ok
"""


def test_srt_cues_become_words(tmp_path):
    (tmp_path / "s.srt").write_text(SRT)
    t = read_transcript(tmp_path / "s.srt")
    assert [w.word for w in t.words] == ["Hello", "there", "I'm", "here.", "Good", "well."]
    assert t.source == "srt" and all(w.confidence is None for w in t.words)
    # Cue time shared by character length: "Hello" (5) and "there" (5) split 1..2 s evenly.
    assert t.words[0].start == 1.0 and t.words[0].end == pytest.approx(1.5) and t.words[1].end == 2.0
    cue2 = t.words[2:]
    assert cue2[0].start == 2.5 and cue2[-1].end == 4.5
    assert all(a.end == pytest.approx(b.start) for a, b in zip(cue2, cue2[1:], strict=False))
    assert cue2[1].end - cue2[1].start > cue2[0].end - cue2[0].start  # "here." is longer than "I'm"


def test_vtt_cues_become_words(tmp_path):
    (tmp_path / "v.vtt").write_text(VTT)
    t = read_transcript(tmp_path / "v.vtt")
    assert [w.word for w in t.words] == ["We", "are", "live", "ok"]
    assert t.source == "vtt" and t.words[0].start == 1.0 and t.words[-1].end == 3.0


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("a.srt", "1\n00:00:01,000 -> 00:00:02,000\nhi\n", r"a.srt line 1: cue without a timing line"),
        ("a.srt", "1\n00:00:01,000 --> 00:0x:02,000\nhi\n", r"a.srt line 2: bad cue timing"),
        ("a.srt", "1\n00:00:03,000 --> 00:00:02,000\nhi\n", r"a.srt line 2: cue ends .* before it starts"),
        ("a.srt", "1\n00:00:01,000 --> 00:00:02,000\n[MUSIC]\n", r"no spoken words"),
        ("a.vtt", "00:01.000 --> 00:02.000\nhi\n", r"a.vtt line 1: not a WebVTT file"),
    ],
)
def test_subtitle_errors(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(InputFileError, match=match):
        read_transcript(tmp_path / name)


# -- markup ----------------------------------------------------------------------------------------


def test_markup_all_tags():
    script = (
        "Great news [gesture:thumbs_up] everyone! [density:low] Now the details.\n"
        "[no-gesture]Terms and conditions apply.[/no-gesture] Price \\[draft\\]."
    )
    plain, marks = strip_markup(script)
    assert plain == "Great news everyone! Now the details.\nTerms and conditions apply. Price [draft]."
    words = [w.text for w in script_words(plain)]
    assert marks.gestures == [GestureMark(2, "thumbs_up")] and words[2] == "everyone!"
    assert marks.density == [DensityMark(3, "low")] and words[3] == "Now"
    assert marks.no_gesture == [NoGestureSpan(6, 9)] and words[6:10] == [
        "Terms",
        "and",
        "conditions",
        "apply.",
    ]
    assert marks.density_at(0) == "normal" and marks.density_at(5) == "low"
    assert not marks.gesture_allowed(7) and marks.gesture_allowed(10)
    assert marks.forced_gesture(2) == "thumbs_up" and marks.forced_gesture(3) is None
    assert marks.to_dict()["gestures"] == [{"word": 2, "gesture": "thumbs_up"}]


def test_markup_without_tags_is_identity():
    plain, marks = strip_markup("Just words, nothing else.")
    assert plain == "Just words, nothing else." and not marks


def test_markup_tag_glued_to_word_and_case():
    plain, marks = strip_markup("Say [Gesture: wave]hello and [DENSITY:High]bye")
    assert plain == "Say hello and bye"
    assert marks.gestures == [GestureMark(1, "wave")] and marks.density == [DensityMark(3, "high")]
    plain, marks = strip_markup("[density:low] So [gesture:count] [density:high] three")
    assert plain == "So three" and marks.gestures == [GestureMark(1, "count")]
    assert marks.density == [DensityMark(0, "low"), DensityMark(1, "high")]


@pytest.mark.parametrize(
    ("script", "match"),
    [
        ("[gestur:x] hi", r"unknown tag \[gestur:x\] at line 1, column 1 — did you mean \[gesture"),
        ("a\nhi [gesture:] there", r"empty gesture id in \[gesture:\] at line 2, column 4"),
        ("[no-gesture] hi", r"unclosed \[no-gesture\] at line 1, column 1"),
        ("hi [/no-gesture]", r"\[/no-gesture\] without an opening"),
        ("[no-gesture]a [no-gesture]b[/no-gesture]", r"inside another \[no-gesture\]"),
        ("hi [gesture:x", r"unclosed tag"),
        ("hi ] there", r"'\]' without a matching '\['"),
        ("hi [density:max] x", r"bad density 'max'"),
        ("x [gesture:a b] y", r"bad gesture id 'a b'"),
        ("hi [gesture:x]", r"has no word after it"),
        ("[foo] a", r"unknown tag \[foo\]"),
    ],
)
def test_markup_errors(script, match):
    with pytest.raises(MarkupError, match=match) as e:
        strip_markup(script)
    assert isinstance(e.value, InputFileError) and "\n" not in str(e.value)


def test_script_words_and_sentences():
    words = [
        w.text
        for w in script_words("— Dr. Smith met J. R. Tolkien at 3 p.m. today. Wow! Really... yes — ok.")
    ]
    assert words[0] == "—Dr." and "yes—" in words
    spans = sentence_spans(words)
    assert [" ".join(words[a : b + 1]) for a, b in spans] == [
        "—Dr. Smith met J. R. Tolkien at 3 p.m. today.",
        "Wow!",
        "Really... yes— ok.",
    ]


# -- alignment -------------------------------------------------------------------------------------


def _asr(text: str, step: float = 0.3, source: str = "asr") -> Transcript:
    return Transcript(
        words=[Word(word=w, start=i * step, end=i * step + 0.25) for i, w in enumerate(text.split())],
        source=source,
        duration=len(text.split()) * step,
    )


def test_normalize_word():
    assert normalize_word("3.5%") == ["three", "point", "five", "percent"]
    assert normalize_word("1,234") == ["one", "thousand", "two", "hundred", "thirty", "four"]
    assert normalize_word("isn't") == ["is", "not"] and normalize_word("It's") == ["it", "is"]
    assert normalize_word("21st") == ["twenty", "first"] and normalize_word("$5") == ["five", "dollars"]
    assert normalize_word("3:30") == normalize_word("3.30pm")[:2] == ["three", "thirty"]
    assert normalize_word("“Hello,”") == ["hello"] and normalize_word("—") == []


def test_needleman_wunsch_small():
    a, b = list("kitten"), list("sitting")
    sub = np.array([[0.0 if x == y else 1.0 for y in b] for x in a])
    path = needleman_wunsch(sub, np.ones(len(a)), np.ones(len(b)))
    cost = sum(sub[i, j] if i is not None and j is not None else 1.0 for i, j in path)
    assert cost == 3  # the edit distance
    assert [p for p in path if p[0] is not None and p[1] is not None][0] == (0, 0)


def test_align_exact_script_keeps_wording_and_times():
    asr = _asr("so we grew three point five percent in q three and that is not bad")
    r = align_script("So, we grew 3.5% in Q3, and that isn't bad.", asr)
    words = r.transcript.words
    assert [w.word for w in words] == [
        "So,",
        "we",
        "grew",
        "3.5%",
        "in",
        "Q3,",
        "and",
        "that",
        "isn't",
        "bad.",
    ]
    assert r.match_fraction == 1.0 and all(r.matched)
    assert words[3].start == asr.words[3].start and words[3].end == asr.words[6].end  # 3.5% = 4 ASR words
    assert words[8].start == asr.words[12].start and words[8].end == asr.words[13].end
    assert r.transcript.source == "script+asr;matched=1.00"


def test_align_extra_and_missing_words_interpolate():
    asr = _asr("hello everyone today I have big ideas for you")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 82 % matched: no warning
        r = align_script("Hello everyone! Today I have three big ideas for you.", asr)
    words = r.transcript.words
    three = words[5]
    assert three.word == "three" and not r.matched[5] and three.confidence == 0.0
    assert words[4].end <= three.start <= three.end <= words[6].start  # between its neighbours
    # The ASR's extra word is ignored; every script word appears once, in order.
    asr2 = _asr("hello everyone um today I have three big ideas for you")
    r2 = align_script("Hello everyone! Today I have three big ideas for you.", asr2)
    assert all(r2.matched) and r2.transcript.words[2].start == asr2.words[3].start


def test_align_extra_and_missing_sentences():
    asr = _asr("this is the first sentence this is the second one and here is the third one")
    script = (
        "Welcome, friends. This is the first sentence. This is the third one. And one more sentence here."
    )
    r = align_script(script, asr)
    words = r.transcript.words
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(w.end >= w.start for w in words)
    assert not r.matched[0] and not r.matched[1]  # "Welcome, friends." was not said
    assert words[0].start == 0.0 and words[1].end <= words[2].start
    first = [w.word for w in words].index("This")
    assert r.matched[first] and words[first].start == asr.words[0].start
    assert [s.text for s in r.transcript.sentences][0] == "Welcome, friends."
    assert words[-1].end <= asr.duration + 1e-9


def test_align_mismatched_script_warns_but_returns():
    asr = _asr("the weather today is sunny and warm")
    with pytest.warns(ScriptMismatchWarning, match="does not match the audio"):
        t = align_script_to_words("Quarterly revenue exceeded expectations across all regions.", asr)
    assert len(t.words) == 7 and t.source.startswith("script+asr;matched=0.")
    assert all(0 <= w.start <= w.end <= asr.duration for w in t.words)


def test_align_empty_recognition_and_empty_script():
    empty = Transcript(words=[], source="asr", duration=4.0)
    with pytest.warns(ScriptMismatchWarning):
        t = align_script_to_words("Nobody said this.", empty)
    assert t.words[0].start == 0.0 and t.words[-1].end == pytest.approx(4.0)
    with pytest.raises(InputFileError, match="no words"):
        align_script_to_words("  ", _asr("hello"))


def test_align_glues_whisper_fragments():
    asr = Transcript(
        words=[
            Word(word=w, start=i * 0.3, end=i * 0.3 + 0.25)
            for i, w in enumerate(["at", "3", ".30", "p", ".m."])
        ]
    )
    assert [w.word for w in merge_word_fragments(asr.words)] == ["at", "3.30", "p.m."]
    r = align_script("at 3:30 p.m.", asr)
    # "3.30" before "p.m." is read as a clock time, so all of "3:30" is matched to it.
    assert all(r.matched) and r.transcript.words[1].start == 0.3
    assert (
        r.transcript.words[1].end == pytest.approx(2 * 0.3 + 0.25) and r.transcript.words[1].confidence == 1.0
    )


def test_align_strips_markup():
    t = align_script_to_words("Hello [gesture:wave] everyone", _asr("hello everyone"))
    assert [w.word for w in t.words] == ["Hello", "everyone"]


def test_align_long_inputs_are_fast():
    import time

    rng = np.random.default_rng(0)
    vocab = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    script = [str(rng.choice(vocab)) for _ in range(3000)]
    heard = list(script)
    for k in sorted(rng.choice(len(heard), 150, replace=False), reverse=True):
        heard[k] = "nu" if k % 2 else heard[k]
        if k % 3 == 0:
            del heard[k]
    t0 = time.perf_counter()
    r = align_script(" ".join(script), _asr(" ".join(heard), step=0.2))
    assert time.perf_counter() - t0 < 5.0
    assert r.match_fraction > 0.9
