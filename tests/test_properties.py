"""Property-based tests and a mutation fuzzer for the parsers and the script markup (issue 9).

Every reader either returns a valid result or raises a `GesticulatorError` with a one-line
message; anything else (IndexError, OverflowError, a pydantic ValidationError, ...) is a bug.

- transcripts (JSON, TextGrid, SRT, VTT): round trips through a writer (the project's JSON
  writer; small TextGrid/SRT/VTT writers here) and arbitrary bytes or text;
- script markup: any string parses or raises `MarkupError`; marks land on the right words of
  `script_words`; escaping makes any text literal;
- BVH: write -> read of generated motions keeps every rotation; arbitrary text is refused cleanly;
- the fuzzer mutates the seed files in tests/fuzz_corpus/ (bytes, lines and number tokens).

The default run keeps every property short; the `slow` variants (`make test-slow`) run many
more examples.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesticulator.errors import GesticulatorError
from gesticulator.io.bvh import bvh_to_motion, motion_to_bvh_text, parse_bvh, read_bvh
from gesticulator.motion import skeleton as sk
from gesticulator.motion.kinematics import local_rotations_flat_hand
from gesticulator.motion.rotations import angle_between
from gesticulator.speech.markup import MarkupError, script_words, strip_markup
from gesticulator.speech.transcripts import read_textgrid, read_transcript, write_transcript
from gesticulator.types import Motion, Transcript, Word

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
BVH_SEEDS = sorted(CORPUS.glob("*.bvh"))
TEXTGRID_SEEDS = sorted(CORPUS.glob("*.TextGrid"))

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
_TMP = Path(tempfile.mkdtemp(prefix="gesticulator_props_"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


def both(given_args: dict, fast: settings = FAST, slow: settings = SLOW):
    """A property as a quick default test and a `slow` test with many more examples."""

    def wrap(fn):
        quick = fast(given(**given_args)(fn))
        long = pytest.mark.slow(slow(given(**given_args)(fn)))
        return quick, long

    return wrap


def refused_cleanly(fn, *args, **kwargs):
    """Call fn; a GesticulatorError must be one line. Other exceptions propagate (a bug)."""
    try:
        return fn(*args, **kwargs)
    except GesticulatorError as e:
        msg = str(e)
        assert len(msg.splitlines()) == 1, f"multi-line error: {msg!r}"
        return None


def _file(name: str, data: bytes | str) -> Path:
    p = _TMP / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


# -- strategies ------------------------------------------------------------------------------------

_times = st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False)
_word_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éü"
_plain_word = st.builds(lambda a, b: a + b, st.sampled_from(_ALNUM), st.text(_ALNUM + "'", max_size=8))


@st.composite
def words(draw, text=_word_text, min_size=1, max_size=8) -> list[Word]:
    n = draw(st.integers(min_size, max_size))
    out, t = [], draw(_times)
    for _ in range(n):
        start = t + draw(st.floats(0, 2, allow_nan=False))
        end = start + draw(st.floats(0, 2, allow_nan=False))
        out.append(Word(word=draw(text), start=start, end=end))
        t = end
    return out


def _interesting_number(draw) -> str:
    return draw(
        st.sampled_from(
            ["nan", "inf", "-inf", "1e999", "-1e999", "5e-324", "-1", "0", "1e308", "-0", "3.5", "1" * 400]
            + ["99999999999999999999", "0x10", "1,5", ""]
        )
    )


@st.composite
def mutated(draw, seeds: list[Path]) -> bytes:
    """A seed file with a few byte-, line- and token-level mutations."""
    data = bytearray(draw(st.sampled_from(seeds)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["flip", "insert", "delete", "truncate", "dup_line", "drop_line", "number"])
        )
        n = len(data)
        if op == "flip" and n:
            data[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        elif op == "insert":
            at = draw(st.integers(0, n))
            data[at:at] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b"{", b"}", b"\n", b'"', b"]"])
            )
        elif op == "delete" and n:
            a = draw(st.integers(0, n - 1))
            del data[a : a + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[draw(st.integers(0, n)) :]
        elif op in ("dup_line", "drop_line"):
            lines = bytes(data).split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(k, lines[k])
            else:
                del lines[k]
            data = bytearray(b"\n".join(lines))
        elif op == "number":
            spans = [m.span() for m in re.finditer(rb"-?\d+(?:\.\d+)?(?:e-?\d+)?", data)]
            if spans:
                a, b = draw(st.sampled_from(spans[:500]))
                data[a:b] = _interesting_number(draw).encode()
    return bytes(data)


# -- transcripts: round trips ----------------------------------------------------------------------


def _textgrid_short(ws: list[Word], long_format: bool) -> str:
    """A minimal Praat TextGrid writer (the project only reads them): one "words" tier."""
    xmax = max([w.end for w in ws] + [0.0])
    intervals, t = [], 0.0
    for w in ws:
        if w.start > t:
            intervals.append((t, w.start, ""))
        intervals.append((w.start, w.end, w.word))
        t = w.end
    q = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    if not long_format:
        head = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", repr(xmax), "<exists>", "1"]
        body = ['"IntervalTier"', '"words"', "0", repr(xmax), str(len(intervals))]
        for a, b, label in intervals:
            body += [repr(a), repr(b), q(label)]
        return "\n".join(head + body) + "\n"
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax!r}"]
    out += ["tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"']
    out += ['        name = "words"', "        xmin = 0", f"        xmax = {xmax!r}"]
    out += [f"        intervals: size = {len(intervals)}"]
    for k, (a, b, label) in enumerate(intervals, 1):
        out += [f"        intervals [{k}]:", f"            xmin = {a!r}", f"            xmax = {b!r}"]
        out += [f"            text = {q(label)}"]
    return "\n".join(out) + "\n"


def _json_round_trip(ws, language):
    t = Transcript(words=ws, language=language, source="asr")
    back = read_transcript(write_transcript(t, _TMP / "rt.json"))
    assert back == t


test_json_round_trip, test_json_round_trip_slow = both(
    {"ws": words(), "language": st.sampled_from(["en", "de", "zh"])}
)(_json_round_trip)

_tg_label = _word_text.filter(
    lambda s: (
        s.strip().lower()
        not in {"", "sil", "sp", "spn", "<sil>", "<sp>", "<eps>", "<unk>", "{sl}", "#", "<p:>"}
    )
)


def _textgrid_round_trip(ws, long_format, encoding):
    text = _textgrid_short(ws, long_format)
    back = read_textgrid(_file("rt.TextGrid", text.encode(encoding)))
    assert [w.word for w in back.words] == [w.word.strip() for w in ws]
    assert [(w.start, w.end) for w in back.words] == [(w.start, w.end) for w in ws]


test_textgrid_round_trip, test_textgrid_round_trip_slow = both(
    {
        "ws": words(text=_tg_label.filter(lambda s: "\x00" not in s)),
        "long_format": st.booleans(),
        "encoding": st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]),
    }
)(_textgrid_round_trip)


def _stamp(t: float, sep: str) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def _subtitle_round_trip(cues, vtt):
    """Cue words come back in order, inside their cue, with the cue's time shared among them."""
    out = ["WEBVTT", ""] if vtt else []
    for k, (start, dur, toks) in enumerate(cues, 1):
        a, b = _stamp(start, "." if vtt else ","), _stamp(start + dur, "." if vtt else ",")
        out += [str(k), f"{a} --> {b}", " ".join(toks), ""]
    back = read_transcript(_file("rt.vtt" if vtt else "rt.srt", "\n".join(out)))
    assert [w.word for w in back.words] == [t for _, _, toks in cues for t in toks]
    for a, b in zip(back.words, back.words[1:], strict=False):
        assert a.end <= b.start + 1e-3  # cues are kept in order, overlaps trimmed
    assert back.words[-1].end <= round((cues[-1][0] + cues[-1][1]) * 1000) / 1000 + 1e-3


@st.composite
def _cues(draw):
    out, t = [], 0.0
    for _ in range(draw(st.integers(1, 5))):
        t += draw(st.floats(0, 5, allow_nan=False))
        dur = draw(st.floats(0.1, 5, allow_nan=False))
        out.append((round(t, 3), round(dur, 3), draw(st.lists(_plain_word, min_size=1, max_size=5))))
        t += dur
    return out


test_subtitle_round_trip, test_subtitle_round_trip_slow = both({"cues": _cues(), "vtt": st.booleans()})(
    _subtitle_round_trip
)


# -- transcripts: arbitrary input ------------------------------------------------------------------

_SUFFIXES = (".json", ".TextGrid", ".srt", ".vtt")
_JSON_KEYS = ["words", "word", "start", "end", "language", "confidence", "sentences", "x"]


def _json_containers(kids):
    return st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(_JSON_KEYS), kids, max_size=4)
    )


_json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    _json_containers,
    max_leaves=12,
)
_junk_text = st.text(max_size=300) | st.text(
    st.sampled_from(list('"{}[]:,-0123456789.e<>! \n\tWEBVTT-->ooTextFileTextGridIntervalTier')), max_size=300
)


def _transcript_arbitrary(data, suffix):
    refused_cleanly(read_transcript, _file("junk" + suffix, data))


test_transcript_arbitrary_bytes, test_transcript_arbitrary_bytes_slow = both(
    {
        "data": st.binary(max_size=400)
        | _junk_text.map(str.encode)
        | _json_values.map(lambda v: json.dumps(v).encode()),
        "suffix": st.sampled_from(_SUFFIXES),
    }
)(_transcript_arbitrary)


def test_transcript_known_crashers_are_refused():
    """Inputs the fuzzer found (each crashed with a non-GesticulatorError before the fix)."""
    tg = '"ooTextFile"\n"TextGrid"\n0\n1\n<exists>\n{n}\n"IntervalTier"\n"words"\n0\n1\n1\n{a}\n{b}\n"hi"\n'
    cases = {
        "deep.json": "[" * 100_000,  # RecursionError
        "bigint.json": "1" * 5000,  # ValueError: int exceeds 4300 digits
        "surrogate.TextGrid": b"\xff\xfe\x00\xd8ab",  # UnicodeDecodeError (UTF-16 lone surrogate)
        "tiers.TextGrid": tg.format(n="1e999", a=0, b=1),  # OverflowError: int(inf)
        "times.TextGrid": tg.format(n=1, a=0, b="1e999"),  # pydantic ValidationError
        "hours.srt": "1\n" + "9" * 400 + ":00:00,000 --> 00:00:01,000\nhi\n",  # OverflowError
        "digits.srt": "1\n" + "9" * 5000 + ":00:00,000 --> 00:00:01,000\nhi\n",  # ValueError
        "key.json": '{"words": [{"wo\\nrd": 1}]}',  # a JSON key with a newline: a two-line message
    }
    for name, data in cases.items():
        with pytest.raises(GesticulatorError) as info:
            read_transcript(_file(name, data))
        assert len(str(info.value).splitlines()) == 1 and name in str(info.value)


# -- script markup ---------------------------------------------------------------------------------

_TAGS = ["[gesture:wave]", "[gesture:thumbs_up]", "[no-gesture]", "[/no-gesture]", "[density:low]"]
_TAGS += ["[density:HIGH]", "[ gesture : a.b-c ]", "[gesture:]", "[density:max]", "[gestur:x]", "[", "]"]
_markup_text = st.text(max_size=120) | st.lists(
    st.sampled_from(_TAGS)
    | _plain_word
    | st.sampled_from([" ", "\n", "—", "...", '"', "\\[", "\\]", "%", ","]),
    max_size=25,
).map(" ".join)


def _markup_any_string(text):
    got = refused_cleanly(strip_markup, text)
    if got is None:
        with pytest.raises(MarkupError):
            strip_markup(text)
        return
    plain, marks = got
    words = script_words(plain)
    n = len(words)
    assert all(0 <= m.word < n for m in marks.gestures + marks.density)
    assert all(0 <= s.first_word <= s.last_word < n for s in marks.no_gesture)
    assert [m.word for m in marks.density] == sorted(m.word for m in marks.density)  # density_at relies on it
    for w in words:  # spans index the plain text, and the word text is the tokens in the span
        assert 0 <= w.start < w.end <= len(plain)
        assert w.text == "".join(plain[w.start : w.end].split())
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))


test_markup_any_string, test_markup_any_string_slow = both({"text": _markup_text})(_markup_any_string)


@pytest.mark.parametrize("text", ["[foo\nbar] x", "[gesture:a\nb] x", "[x\u2028] y", "[gestur\tx] y"])
def test_markup_errors_stay_on_one_line(text):
    """Tags with line breaks inside gave multi-line messages (the tag was quoted verbatim)."""
    with pytest.raises(MarkupError) as info:
        strip_markup(text)
    assert len(str(info.value).splitlines()) == 1


def _markup_marks_land_on_their_words(items):
    """Alphanumeric words and tags: each tag's mark is the next word's index, and the plain text
    is the words alone."""
    text = " ".join(items)
    plain_words = [x for x in items if not x.startswith("[")]
    expected_g, expected_d, k = [], [], 0
    for x in items:
        if x.startswith("[gesture:"):
            expected_g.append((k, x[9:-1]))
        elif x.startswith("[density:"):
            expected_d.append((k, x[9:-1]))
        elif not x.startswith("["):
            k += 1
    trailing = any(i >= len(plain_words) for i, _ in expected_g + expected_d)
    try:
        plain, marks = strip_markup(text)
    except MarkupError as e:
        assert trailing, f"valid markup refused: {e}"
        return
    assert not trailing
    assert plain.split() == plain_words
    assert [w.text for w in script_words(plain)] == plain_words
    assert [(m.word, m.gesture) for m in marks.gestures] == expected_g
    assert [(m.word, m.level) for m in marks.density] == expected_d
    for m in marks.gestures:
        assert marks.forced_gesture(m.word) is not None


test_markup_marks_land_on_their_words, test_markup_marks_land_on_their_words_slow = both(
    {
        "items": st.lists(
            _plain_word
            | st.sampled_from(["[gesture:wave]", "[gesture:a_1]", "[density:low]", "[density:high]"]),
            max_size=20,
        )
    }
)(_markup_marks_land_on_their_words)


def _escape(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def _markup_escaped_text_is_literal(text):
    plain, marks = strip_markup(_escape(text))
    assert plain == text and not marks


test_markup_escaped_text_is_literal, test_markup_escaped_text_is_literal_slow = both(
    {"text": st.text(max_size=200)}
)(_markup_escaped_text_is_literal)


# -- BVH: round trip -------------------------------------------------------------------------------


@st.composite
def motions(draw) -> Motion:
    frames = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Rotations up to (just under) pi about any axis: gimbal-lock poses included for every order.
    axes = rng.normal(size=(frames, sk.NUM_JOINTS, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    scale = draw(st.sampled_from([0.0, 0.3, 1.5, 3.1]))
    angles = rng.uniform(0, scale, size=(frames, sk.NUM_JOINTS, 1))
    poses = (axes * angles).reshape(frames, -1)
    if draw(st.booleans()):  # exact gimbal lock: 90 degrees about a random axis on a random joint
        j = draw(st.integers(0, sk.NUM_JOINTS - 1))
        poses[:, 3 * j : 3 * j + 3] = np.eye(3)[draw(st.integers(0, 2))] * np.pi / 2
    trans = rng.uniform(-2, 2, size=(frames, 3))
    betas = rng.normal(0, draw(st.sampled_from([0.0, 1.0])), size=10)
    fps = draw(st.sampled_from([24.0, 25.0, 30.0, 60.0, 29.97]))
    return Motion(poses=poses, trans=trans, betas=betas, fps=fps)


def _bvh_round_trip(motion, order, units):
    text = motion_to_bvh_text(motion, units=units, rotation_order=order)
    bvh = parse_bvh(text)
    assert bvh.num_frames == motion.num_frames and bvh.num_joints == sk.NUM_JOINTS
    back = bvh_to_motion(bvh, units=units)
    # Compare the rotations SMPL-X applies: pose + mean hand pose (axis-angle sum, flat_hand_mean=False).
    # Raw finger poses may differ where |pose + mean| > pi: two poses give the same rotation there.
    err = angle_between(local_rotations_flat_hand(motion), local_rotations_flat_hand(back))
    assert float(np.max(err)) < 1e-4, f"rotation error {np.degrees(np.max(err)):.5f} deg"
    np.testing.assert_allclose(back.trans, motion.trans, atol=1e-5)
    assert abs(back.fps - motion.fps) < 1e-3 * motion.fps


test_bvh_round_trip, test_bvh_round_trip_slow = both(
    {
        "motion": motions(),
        "order": st.sampled_from(["ZXY", "XYZ", "XZY", "YXZ", "YZX", "ZYX"]),
        "units": st.sampled_from(["cm", "m"]),
    },
    fast=settings(FAST, max_examples=30),
    slow=settings(SLOW, max_examples=400),
)(_bvh_round_trip)


# -- BVH: arbitrary and mutated input --------------------------------------------------------------


def _exercise_bvh(text: str) -> None:
    """Parse, then use the result the way the app does: FK, frame rate, SMPL-X conversion."""
    bvh = refused_cleanly(parse_bvh, text, source="fuzz.bvh")
    if bvh is None:
        return
    assert bvh.motion.shape == (bvh.num_frames, sum(len(c) for c in bvh.channels))
    assert np.isfinite(bvh.motion).all() and np.isfinite(bvh.offsets).all()
    with np.errstate(all="ignore"):  # huge but finite values may overflow FK; that is not a crash
        rot, pos = bvh.world_transforms()
    assert rot.shape == (bvh.num_frames, bvh.num_joints, 3, 3) and pos.shape[:2] == rot.shape[:2]
    assert np.isfinite(bvh.fps) and bvh.fps > 0
    refused_cleanly(bvh_to_motion, bvh)


_bvh_words = st.sampled_from(
    [
        "HIERARCHY",
        "ROOT",
        "JOINT",
        "End",
        "Site",
        "{",
        "}",
        "OFFSET",
        "CHANNELS",
        "MOTION",
        "Frames:",
        "Frame",
    ]
    + [
        "Time:",
        "Xrotation",
        "Yrotation",
        "Zrotation",
        "Xposition",
        "3",
        "6",
        "0",
        "1",
        "-1",
        "0.5",
        "nan",
        "\n",
    ]
)


def _bvh_arbitrary(text):
    _exercise_bvh(text)


test_bvh_arbitrary_text, test_bvh_arbitrary_text_slow = both(
    {
        "text": st.text(max_size=300)
        | st.lists(_bvh_words, max_size=60).map(lambda ws: "HIERARCHY\n" + " ".join(ws))
    }
)(_bvh_arbitrary)


def _bvh_mutated(data):
    p = _file("fuzz.bvh", data)
    bvh = refused_cleanly(read_bvh, p)
    if bvh is not None:
        _exercise_bvh(p.read_text(encoding="utf-8", errors="replace"))


test_fuzz_bvh_corpus, test_fuzz_bvh_corpus_slow = both(
    {"data": mutated(BVH_SEEDS)},
    fast=settings(FAST, max_examples=100),
    slow=settings(SLOW, max_examples=5000),
)(_bvh_mutated)


def _textgrid_mutated(data):
    t = refused_cleanly(read_textgrid, _file("fuzz.TextGrid", data))
    if t is not None:
        assert t.words and all(w.word.strip() for w in t.words)


test_fuzz_textgrid_corpus, test_fuzz_textgrid_corpus_slow = both(
    {"data": mutated(TEXTGRID_SEEDS)},
    fast=settings(FAST, max_examples=100),
    slow=settings(SLOW, max_examples=5000),
)(_textgrid_mutated)


def test_corpus_seeds_are_valid():
    """The seeds parse (the fuzzer mutates valid files, not noise)."""
    assert len(BVH_SEEDS) >= 5 and len(TEXTGRID_SEEDS) >= 4
    for p in BVH_SEEDS:
        bvh = read_bvh(p)
        assert bvh.world_positions().shape == (bvh.num_frames, bvh.num_joints, 3)
    for p in TEXTGRID_SEEDS:
        if p.name != "empty_tier.TextGrid":
            assert read_textgrid(p).words


def test_bvh_known_crashers_are_refused():
    """Inputs the fuzzer found (each crashed or misread silently before the fix)."""
    head = "HIERARCHY\nROOT a\n{\nOFFSET %s\nCHANNELS %s\n}\nMOTION\nFrames: %s\nFrame Time: %s\n%s\n"
    cases = [
        (
            ("0 0 0", "3 Xrotation Xrotation Zrotation", 1, 0.03, "1 2 3"),
            "listed twice",
        ),  # AssertionError in FK
        (
            ("0 0 0", "3 Xrotation Yrotation Zrotation", 1, "5e-324", "1 2 3"),
            "Frame Time",
        ),  # OverflowError in fps
        (("0 0 0", "3 Xrotation Yrotation Zrotation", -1, 0.03, "1 2 3"), "negative"),  # silently 0 frames
        (("nan 0 0", "0", 0, 0.03, ""), "non-finite"),  # NaN offsets reached FK
        (("0 0 0", "3 Xrotation Yrotation Zrotation", 1, 0.03, "# 1 2 3"), "malformed"),  # read as a comment
    ]
    for args, message in cases:
        with pytest.raises(GesticulatorError, match=message) as info:
            bvh = parse_bvh(head % args, source="bad.bvh")
            bvh.local_rotations(), bvh.fps  # noqa: B018
        assert len(str(info.value).splitlines()) == 1 and "bad.bvh" in str(info.value)
