"""`RhythmModel`: the user-facing wrapper around the motion tokenizer and the rhythm GPT.

    model = RhythmModel.load("default")                 # or a path to an exported checkpoint
    motion = model.generate("talk.wav", seed=0)         # Motion at 30 fps, as long as the audio
    motion = model.generate(features, seed=1, temperature=0.8)

    codes = model.encode(clip)                          # (tokens, parts, levels) int64
    motion = model.generate(features, forced=[ForcedSpan(start_token=40, codes=codes)])
    model.decode(codes)                                 # codes -> Motion (no encoder needed)

Rest pose: the motion starts and ends at the standing rest pose (`rest_at_ends`), and pauses of
`min_pause_seconds` or longer get rest-pose codes forced into their middle (`rest_at_silence`),
so the arms come down in pauses. Shorter pauses (from `hold_pause_seconds`, 0.5 s) are held:
the body eases from the pose it stopped in to the pose it resumes from instead of gesturing on
(`hold_pauses`, after decoding). The rest pose goes through forced codes: forced steps are visible
to the GPT `anchor_horizon` tokens ahead, so it heads into them (and into spliced semantic
clips) instead of jumping, and continues out of them. Forced codes are copied unchanged.

Generation runs torch on one thread (see `single_thread`): ~0.6-1.0 s for a minute of speech
with the default model on the 2-core development CPU, decoding included (features not).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gesticulator.errors import GesticulatorError, InputFileError
from gesticulator.motion.ops import hold_spans
from gesticulator.motion.stance import on_floor
from gesticulator.rhythm import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, HOLD_PAUSE_SECONDS, REST_PAUSE_SECONDS
from gesticulator.rhythm.features import (
    FEATURE_DIM,
    FEATURE_VERSION,
    FRAMES_PER_TOKEN,
    MOTION_FPS,
    TOKEN_RATE,
    audio_features,
    fit_length,
    num_motion_frames,
    num_tokens,
    pause_spans,
    silent_tokens,
)
from gesticulator.rhythm.lm import GPTConfig, RhythmGPT
from gesticulator.rhythm.representation import REPRESENTATION_VERSION, motion_to_parts, parts_to_motion
from gesticulator.rhythm.tokenizer import MotionTokenizer, TokenizerConfig
from gesticulator.rhythm.train import CARD_FILE, CHECKPOINT_FORMAT, MODEL_FILE
from gesticulator.types import Motion, Transcript

DEFAULT_NAME = "rhythm_default"
TRAIN_HINT = "train one with `gesticulator train pipelines/rhythm_default.yaml --data <corpus>` or pass a checkpoint path"


@dataclass
class ForcedSpan:
    """Codes (n, parts, levels) to place at token steps start_token .. start_token + n - 1."""

    start_token: int
    codes: np.ndarray

    @property
    def end_token(self) -> int:
        return self.start_token + int(np.asarray(self.codes).shape[0])


def default_checkpoint_dir() -> Path:
    from gesticulator.resources import data_dir

    try:
        return data_dir("checkpoints") / DEFAULT_NAME
    except FileNotFoundError:
        return Path("checkpoints") / DEFAULT_NAME


def resolve_checkpoint(name_or_path: str | os.PathLike) -> Path:
    """The model.pt of "default", an exported folder, a run folder (its model/), or a file."""
    if str(name_or_path) in ("default", DEFAULT_NAME):
        path = default_checkpoint_dir() / MODEL_FILE
        if not path.is_file():
            raise InputFileError(f"the default rhythm model is not installed (no {path})", TRAIN_HINT)
        return path
    p = Path(name_or_path).expanduser()
    for candidate in (p, p / MODEL_FILE, p / "model" / MODEL_FILE):
        if candidate.is_file():
            return candidate
    raise InputFileError(f"rhythm model checkpoint not found: {p}", TRAIN_HINT)


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread, then restore. Generation is hundreds of tiny ops per token step;
    with 2 threads on a 2-core machine shared with other work it measured 10-15x slower (OpenMP
    threads spin-waiting on each other), with 1 thread it is never slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RhythmModel:
    """Tokenizer + GPT + rest codes: audio features -> codes -> Motion."""

    token_rate = TOKEN_RATE

    def __init__(
        self,
        tokenizer: MotionTokenizer,
        gpt: RhythmGPT,
        *,
        rest_codes: np.ndarray,
        style_names: list[str] | None = None,
        info: dict[str, Any] | None = None,
    ):
        self.tokenizer = tokenizer.eval()
        self.gpt = gpt.eval()
        self.rest_codes = np.asarray(rest_codes, dtype=np.int64)  # (parts, levels)
        self.style_names = list(style_names or ["default"])
        self.info = dict(info or {})

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | os.PathLike = "default", *, device: str = "cpu") -> RhythmModel:
        """Load "default" (the shipped checkpoint), an exported folder/file, or a run folder."""
        path = resolve_checkpoint(name_or_path)
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
            raise InputFileError(
                f"{path} is not a readable rhythm checkpoint ({type(e).__name__})", TRAIN_HINT
            ) from e
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise InputFileError(f"{path} is not a gesticulator rhythm checkpoint", TRAIN_HINT)
        if state.get("feature_version") != FEATURE_VERSION:
            raise InputFileError(
                f"{path} was trained on audio features v{state.get('feature_version')}, this version computes v{FEATURE_VERSION}",
                "retrain the model with this version of gesticulator",
            )
        if state.get("representation_version", 1) != REPRESENTATION_VERSION:
            raise InputFileError(
                f"{path} was trained on motion representation v{state.get('representation_version', 1)}, "
                f"this version uses v{REPRESENTATION_VERSION}",
                "retrain the model with this version of gesticulator",
            )
        missing = [
            k for k in ("tokenizer_config", "tokenizer", "gpt_config", "gpt", "rest_codes") if k not in state
        ]
        if missing:  # a hand-made or cut-down file: say what is missing, not KeyError
            raise InputFileError(f"{path} is incomplete: no {', '.join(missing)}", TRAIN_HINT)
        try:
            tokenizer = MotionTokenizer(TokenizerConfig(**state["tokenizer_config"]))
            gpt = RhythmGPT(GPTConfig(**state["gpt_config"]))
        except (TypeError, ValueError) as e:
            raise InputFileError(
                f"{path} has a model configuration this version cannot build ({e})", TRAIN_HINT
            ) from None
        _load_weights(tokenizer, state["tokenizer"], path)
        _load_weights(gpt, state["gpt"], path)
        info = {k: v for k, v in state.items() if k not in ("tokenizer", "gpt")}
        info["path"] = str(path)
        card = path.parent / CARD_FILE
        if card.is_file():
            import json
            import warnings

            try:  # the model card is a description (data, settings, scores): never a reason to fail
                info["card"] = json.loads(card.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                warnings.warn(
                    f"{card} is unreadable ({type(e).__name__}); ignored it — the model itself loaded fine",
                    stacklevel=2,
                )
        return cls(tokenizer.to(device), gpt.to(device), rest_codes=np.asarray(state["rest_codes"]),
                   style_names=state.get("style_names"), info=info)  # fmt: skip

    # -- facts -------------------------------------------------------------------------------------
    @property
    def parts(self) -> int:
        return self.gpt.config.parts

    @property
    def levels(self) -> int:
        return self.gpt.config.levels

    @property
    def codebook_size(self) -> int:
        return self.gpt.config.codebook_size

    @staticmethod
    def num_tokens(seconds: float) -> int:
        return num_tokens(seconds)

    @staticmethod
    def features(
        audio: np.ndarray | str | os.PathLike,
        transcript: Transcript | None = None,
        *,
        sr: int = 16000,
        prosody: Any = None,
    ) -> np.ndarray:
        """Token-rate audio features (see `gesticulator.rhythm.features`); `prosody`: the audio's
        30 fps prosody when the caller has computed it already."""
        return audio_features(audio, transcript, sr=sr, prosody=prosody)

    # -- codes <-> motion --------------------------------------------------------------------------
    def encode(self, motion: Motion) -> np.ndarray:
        """Codes (ceil(frames / 4), parts, levels) int64 of a motion (resampled to 30 fps)."""
        device = next(self.tokenizer.parameters()).device
        parts = {p: torch.from_numpy(a)[None].to(device) for p, a in motion_to_parts(motion).items()}
        with torch.inference_mode(), single_thread():
            return self.tokenizer.encode(parts)[0].cpu().numpy()

    def decode(
        self, codes: np.ndarray, *, num_frames: int | None = None, metadata: dict | None = None
    ) -> Motion:
        """A 30 fps Motion (4 frames per token, or the first `num_frames`) from codes (N, parts, levels)."""
        codes = self._check_codes(codes, "codes")
        device = next(self.tokenizer.parameters()).device
        with torch.inference_mode(), single_thread():
            parts = self.tokenizer.decode(torch.from_numpy(codes)[None].to(device))
        arrays = {p: a[0, :num_frames].float().cpu().numpy() for p, a in parts.items()}
        return parts_to_motion(arrays, metadata=metadata)

    def _check_codes(self, codes: np.ndarray, what: str) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 3 or codes.shape[1:] != (self.parts, self.levels):
            raise GesticulatorError(
                f"{what} must have shape (tokens, {self.parts}, {self.levels}), got {codes.shape}",
                "encode the clip with this model's tokenizer (RhythmModel.encode)",
            )
        if (
            not np.issubdtype(codes.dtype, np.integer)
            or codes.min(initial=0) < 0
            or codes.max(initial=0) >= self.codebook_size
        ):
            raise GesticulatorError(
                f"{what} must be integers in [0, {self.codebook_size})",
                "encode the clip with RhythmModel.encode",
            )
        return codes.astype(np.int64)

    # -- generation --------------------------------------------------------------------------------
    def _prepare_features(
        self, features: np.ndarray | str | os.PathLike, seconds: float | None, transcript: Transcript | None
    ) -> tuple[np.ndarray, int]:
        """(features fitted to the token count, motion frame count)."""
        if isinstance(features, (str, os.PathLike)):
            from gesticulator.speech.prosody import SR, _prepare

            y, duration = _prepare(features, SR)
            feats = audio_features(y, transcript)
            seconds = duration if seconds is None else seconds
        else:
            feats = np.asarray(features, dtype=np.float32)
            if feats.ndim != 2 or feats.shape[1] != FEATURE_DIM:
                raise GesticulatorError(
                    f"features must have shape (tokens, {FEATURE_DIM}), got {feats.shape}",
                    "compute them with gesticulator.rhythm.features.audio_features",
                )
            if seconds is None:
                if feats.shape[0] == 0:
                    raise GesticulatorError(
                        "no audio features given (0 tokens)", "pass features of a non-empty recording"
                    )
                return feats, feats.shape[0] * FRAMES_PER_TOKEN
        if not (seconds > 0 and np.isfinite(seconds)):
            raise GesticulatorError(f"seconds must be positive, got {seconds}")
        return fit_length(feats, num_tokens(seconds)), num_motion_frames(seconds)

    def _forced(self, n: int, features: np.ndarray, forced: list[ForcedSpan] | None, **options: Any):
        """Forced codes (n, parts, levels) and mask (n,): rest at the ends and in long pauses, then
        the caller's spans (which win where they overlap)."""
        codes = np.zeros((n, self.parts, self.levels), dtype=np.int64)
        mask = np.zeros(n, dtype=bool)
        rest = np.zeros(n, dtype=bool)
        if options["rest_at_ends"]:
            rest[[0, n - 1]] = True
        if options["rest_at_silence"]:
            lead, tail = 4, 2  # tokens: settle into the pause first; rise before speech resumes
            for start, stop in _runs(silent_tokens(features)):
                if (stop - start) / TOKEN_RATE < options["min_pause_seconds"]:
                    continue
                lo = 0 if start == 0 else start + lead  # a pause at an end needs no settling
                hi = n if stop == n else stop - tail
                rest[lo : max(lo, hi)] = True
        codes[rest] = self.rest_codes
        mask |= rest
        for i, span in enumerate(forced or []):
            span_codes = self._check_codes(span.codes, f"forced[{i}].codes")
            start = int(span.start_token)
            if start < 0 or start >= n:
                raise GesticulatorError(
                    f"forced[{i}] starts at token {start}, outside the {n} tokens generated",
                    "place it inside the audio",
                )
            stop = min(n, start + len(span_codes))
            codes[start:stop] = span_codes[: stop - start]
            mask[start:stop] = True
        return codes, mask

    def generate_codes(
        self,
        features: np.ndarray | str | os.PathLike,
        seconds: float | None = None,
        *,
        seed: int = 0,
        temperature: float = DEFAULT_TEMPERATURE,
        top_k: int | None = DEFAULT_TOP_K,
        forced: list[ForcedSpan] | None = None,
        transcript: Transcript | None = None,
        style: str | int = 0,
        rest_at_ends: bool = True,
        rest_at_silence: bool = True,
        min_pause_seconds: float = REST_PAUSE_SECONDS,
    ) -> np.ndarray:
        """Codes (num_tokens, parts, levels) for audio features (or an audio path); options as `generate`."""
        feats, _ = self._prepare_features(features, seconds, transcript)
        forced_codes, forced_mask = self._forced(
            feats.shape[0], feats, forced,
            rest_at_ends=rest_at_ends, rest_at_silence=rest_at_silence, min_pause_seconds=min_pause_seconds,
        )  # fmt: skip
        device = next(self.gpt.parameters()).device
        with single_thread():
            codes = self.gpt.generate(
                torch.from_numpy(feats).to(device),
                prime=torch.from_numpy(self.rest_codes[:, 0]).to(device),
                forced_codes=torch.from_numpy(forced_codes).to(device),
                forced_mask=torch.from_numpy(forced_mask).to(device),
                style=self._style_id(style),
                temperature=temperature,
                top_k=top_k,
                generator=torch.Generator().manual_seed(int(seed)),
            )
        return codes.cpu().numpy()

    def generate(
        self,
        features: np.ndarray | str | os.PathLike,
        seconds: float | None = None,
        *,
        seed: int = 0,
        temperature: float = DEFAULT_TEMPERATURE,
        top_k: int | None = DEFAULT_TOP_K,
        forced: list[ForcedSpan] | None = None,
        transcript: Transcript | None = None,
        style: str | int = 0,
        rest_at_ends: bool = True,
        rest_at_silence: bool = True,
        min_pause_seconds: float = REST_PAUSE_SECONDS,
        hold_pause_seconds: float | None = HOLD_PAUSE_SECONDS,
    ) -> Motion:
        """Beat motion for audio features (tokens, 37) or an audio file.

        Length: `seconds` if given (features cropped or padded with silence), else the audio's
        duration (a path) or 4 frames per feature row (an array). The same seed gives the same
        motion; `temperature` / `top_k` trade variety for steadiness. `forced` spans are copied
        unchanged (the model heads into them and continues out of them). `transcript` fills the
        word columns when a path is given (an array has them already). `rest_at_ends`: the first
        and last token are the rest pose; `rest_at_silence`: pauses of `min_pause_seconds` or
        longer rest in their middle; shorter pauses of `hold_pause_seconds` or longer are held
        (`hold_pauses`; None: not). `style`: a style name or id (one "default" style unless the
        model was trained with several). The motion stands on y = 0 (`motion.stance.on_floor`);
        `decode` keeps SMPL-X's own coordinates (feet 1.3 m below the origin)."""
        feats, frames = self._prepare_features(features, seconds, transcript)  # audio decoded once
        codes = self.generate_codes(
            feats, None, seed=seed, temperature=temperature, top_k=top_k, forced=forced, style=style,
            rest_at_ends=rest_at_ends, rest_at_silence=rest_at_silence, min_pause_seconds=min_pause_seconds,
        )  # fmt: skip
        meta = {"generator": "gesticulator.rhythm", "seed": int(seed), "temperature": float(temperature),
                "model": self.info.get("name", ""), "data_hash": self.info.get("data_hash", "")}  # fmt: skip
        motion = self.decode(codes, num_frames=frames, metadata=meta)
        if hold_pause_seconds is not None:
            motion = self.hold_pauses(
                motion, feats, forced=forced, min_seconds=hold_pause_seconds, max_seconds=min_pause_seconds
            )
        return on_floor(motion)  # standing on y = 0, like BEAT2 takes (`motion.stance.on_floor`)

    def hold_pauses(
        self,
        motion: Motion,
        features: np.ndarray,
        *,
        forced: list[ForcedSpan] | None = None,
        min_seconds: float = HOLD_PAUSE_SECONDS,
        max_seconds: float | None = None,
    ) -> Motion:
        """`motion` with its pose held through the audio's pauses of `min_seconds` or longer
        (shorter than `max_seconds`, if given: longer pauses rest instead).

        Why: the GPT, trained on TTS speech with clean pauses, keeps gesturing through the short
        pauses of real speech, so its beats follow speech and pauses alike; a speaker holds the
        last stroke's pose instead (a post-stroke hold). On held-out BEAT2 takes this turns BC's
        lift over other takes' audio from about 0 to about +0.02 (benchmarks/rhythm_eval.py).
        Frames inside `forced` spans (spliced gestures) are never held."""
        feats = np.asarray(features, dtype=np.float32)
        blocked = np.zeros(motion.num_frames + 1, dtype=bool)
        for span in forced or []:
            a = int(span.start_token) * FRAMES_PER_TOKEN
            blocked[a : a + len(span.codes) * FRAMES_PER_TOKEN] = True
        spans = []
        for a, b in pause_spans(feats, min_seconds=min_seconds):
            b = min(b, motion.num_frames - 1)
            too_long = max_seconds is not None and (b - a) / MOTION_FPS >= max_seconds
            if b > a and not too_long and not blocked[a : b + 1].any():
                spans.append((a, b))
        return hold_spans(motion, spans)

    def _style_id(self, style: str | int) -> int:
        if isinstance(style, str):
            if style not in self.style_names:
                raise GesticulatorError(
                    f"unknown style {style!r}", f"use one of {', '.join(self.style_names)}"
                )
            return self.style_names.index(style)
        if not 0 <= int(style) < self.gpt.config.num_styles:
            raise GesticulatorError(
                f"style id {style} out of range", f"use 0..{self.gpt.config.num_styles - 1}"
            )
        return int(style)


def _load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """fp16 weights into the fp32 module; only the codebooks' EMA training buffers may be absent."""
    try:
        result = module.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError, AttributeError) as e:  # a tensor of another shape, not a dict
        first = str(e).strip().splitlines()[-1].strip()[:160]
        raise InputFileError(f"{path} does not match this version's model ({first})", TRAIN_HINT) from None
    missing = [k for k in result.missing_keys if not k.endswith((".cluster_size", ".embed_avg"))]
    if missing or result.unexpected_keys:
        raise InputFileError(
            f"{path} does not match this version's model (missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})",
            TRAIN_HINT,
        )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    m = np.r_[False, np.asarray(mask, dtype=bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
