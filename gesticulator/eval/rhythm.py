"""Evaluate a rhythm model against real BEAT2 motion (issue: rhythm model, "Evaluation").

    report = evaluate_rhythm_model(RhythmModel.load("default"), "../shared/data/beat2_sample")
    print(report.markdown())

What is measured, on a BEAT2-layout folder (or the flat `beat2_sample` folder: `<take>.npz`,
`<take>.wav`), none of which the default model was trained on:

- tokenizer reconstruction: every take with motion is encoded and decoded; the error is the mean
  joint-position error (cm, pelvis-relative) over the modelled joints (upper body + hands)
  against the same take passed through the model's representation (lower body and pelvis
  orientation are not modelled, so they are set equal on both sides first);
- generation on every take's audio (the audio-only takes included): BC against its own audio and
  against the other takes' audio (the lift), L1 diversity, mean hand speed and jerk while
  speaking, frozen stretches > 2 s while speaking; compared with the real motion's figures;
- speed: generation time per second of audio after load (features precomputed), and the
  feature extraction time, as real-time factors.

BC is reported in the metric's intended form (the default of `beat_consistency`) and in EMAGE's
code form (`emage_compat=True`), since the design's "0.76" target was measured with the latter.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gesticulator.eval.metrics import (
    MotionStats,
    bc_lift,
    joint_position_error_cm,
    motion_stats,
    speech_mask_from_audio,
)
from gesticulator.types import Motion


@dataclass(frozen=True)
class Take:
    name: str
    audio: Path
    motion: Path | None  # None for audio-only takes


@dataclass
class GeneratedTake:
    name: str
    seconds: float
    bc_own: float
    bc_other: float
    lift: float
    bc_own_emage: float
    lift_emage: float
    stats: MotionStats
    generate_seconds: float
    feature_seconds: float


@dataclass
class RhythmEvalReport:
    reconstruction_cm: dict[str, float] = field(default_factory=dict)
    real: dict[str, tuple[float, float, float, float, MotionStats]] = field(default_factory=dict)
    generated: list[GeneratedTake] = field(default_factory=list)
    seed: int = 0

    # -- summaries ----------------------------------------------------------------------------
    def _mean(self, attr: str) -> float:
        vals = [getattr(g, attr) for g in self.generated]
        vals = [v for v in vals if math.isfinite(v)]
        return float(np.mean(vals)) if vals else math.nan

    def _gen_stat(self, attr: str) -> float:
        vals = [getattr(g.stats, attr) for g in self.generated]
        return float(np.nanmean(vals)) if vals else math.nan

    def _real_stat(self, attr: str) -> float:
        vals = [getattr(r[4], attr) for r in self.real.values()]
        return float(np.nanmean(vals)) if vals else math.nan

    @property
    def rtf(self) -> float:
        secs = sum(g.seconds for g in self.generated)
        return sum(g.generate_seconds for g in self.generated) / secs if secs else math.nan

    @property
    def feature_rtf(self) -> float:
        secs = sum(g.seconds for g in self.generated)
        return sum(g.feature_seconds for g in self.generated) / secs if secs else math.nan

    @property
    def hand_speed_ratio(self) -> float:
        return self._gen_stat("hand_speed") / self._real_stat("hand_speed")

    def markdown(self) -> str:
        out = []
        if self.reconstruction_cm:
            out.append("### Tokenizer reconstruction (held-out real motion)\n")
            out.append("| take | mean joint-position error, upper body + hands (cm) |\n|---|---|")
            for k, v in self.reconstruction_cm.items():
                out.append(f"| {k} | {v:.2f} |")
            out.append("")
        out.append(f"### Generated motion on held-out audio (seed {self.seed})\n")
        out.append(
            "| take | s | BC own | BC other | lift | BC own (EMAGE code) | lift (EMAGE code) | L1 div (m) "
            "| hand speed (m/s) | jerk (m/s³) | frozen > 2 s | RTF |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, (own, other, own_e, lift_e, st) in self.real.items():
            out.append(
                f"| **real** {name} | {st.duration:.1f} | {own:.3f} | {other:.3f} | {own - other:+.3f} | "
                f"{own_e:.3f} | {lift_e:+.3f} | {st.l1_diversity:.2f} | {st.hand_speed:.3f} | {st.jerk:.0f} "
                f"| {st.frozen_count} | |"
            )
        for g in self.generated:
            st = g.stats
            out.append(
                f"| {g.name} | {g.seconds:.1f} | {g.bc_own:.3f} | {g.bc_other:.3f} | {g.lift:+.3f} | "
                f"{g.bc_own_emage:.3f} | {g.lift_emage:+.3f} | {st.l1_diversity:.2f} | {st.hand_speed:.3f} "
                f"| {st.jerk:.0f} | {st.frozen_count} (longest {st.frozen_longest:.1f} s) "
                f"| {g.generate_seconds / g.seconds:.4f} |"
            )
        out.append(
            f"| **generated, mean** | | {self._mean('bc_own'):.3f} | {self._mean('bc_other'):.3f} | "
            f"{self._mean('lift'):+.3f} | {self._mean('bc_own_emage'):.3f} | {self._mean('lift_emage'):+.3f} | "
            f"{self._gen_stat('l1_diversity'):.2f} | {self._gen_stat('hand_speed'):.3f} | "
            f"{self._gen_stat('jerk'):.0f} | {sum(g.stats.frozen_count for g in self.generated)} | "
            f"{self.rtf:.4f} |"
        )
        out.append("")
        out.append(
            f"Hand speed generated / real: {self.hand_speed_ratio:.2f} (target 0.70-1.30). "
            f"Generation RTF {self.rtf:.4f} (target <= 0.02, features precomputed); "
            f"feature extraction RTF {self.feature_rtf:.4f}."
        )
        return "\n".join(out)


def find_eval_takes(root: str | os.PathLike) -> list[Take]:
    """Takes of a BEAT2-layout folder (`wave16k/`, `smplxflame_30/`) or of a flat folder of
    `<take>.wav` [+ `<take>.npz`] (the shared beat2_sample)."""
    root = Path(root)
    wav_dir = root / "wave16k" if (root / "wave16k").is_dir() else root
    npz_dir = root / "smplxflame_30" if (root / "smplxflame_30").is_dir() else root
    takes = []
    for wav in sorted(wav_dir.glob("*.wav")):
        npz = npz_dir / f"{wav.stem}.npz"
        takes.append(Take(wav.stem, wav, npz if npz.is_file() else None))
    return takes


def evaluate_rhythm_model(
    model,
    data_root: str | os.PathLike,
    *,
    seed: int = 0,
    generate_takes: list[str] | None = None,
    log=None,
) -> RhythmEvalReport:
    """Reconstruction on every take with motion; generation on `generate_takes` (default: the
    audio-only takes, i.e. those the real motion does not cover; every take if all have motion)."""
    from gesticulator.io.npz import load_npz
    from gesticulator.rhythm.representation import motion_to_parts, parts_to_motion
    from gesticulator.speech.audio import load_audio

    say = log or (lambda *_: None)
    takes = find_eval_takes(data_root)
    if not takes:
        from gesticulator.errors import InputFileError

        raise InputFileError(
            f"no .wav takes found in {data_root}", "point at a BEAT2 folder (wave16k/, smplxflame_30/)"
        )
    audio = {t.name: load_audio(t.audio, sr=16000) for t in takes}
    report = RhythmEvalReport(seed=seed)

    for t in takes:
        if t.motion is None:
            continue
        real = load_npz(t.motion)
        if abs(real.fps - 30.0) > 1e-6:
            real = real.resample(30.0)
        reference = parts_to_motion(motion_to_parts(real))  # what the representation can express
        recon = model.decode(model.encode(reference), num_frames=reference.num_frames)
        report.reconstruction_cm[t.name] = joint_position_error_cm(
            reference, recon, joints=("upper", "hands")
        )
        others = [audio[o.name] for o in takes if o.name != t.name]
        report.real[t.name] = _bc_and_stats(real, audio[t.name], others)
        say(f"real {t.name}: reconstruction {report.reconstruction_cm[t.name]:.2f} cm")

    names = generate_takes or [t.name for t in takes if t.motion is None] or [t.name for t in takes]
    for name in names:
        y = audio[name]
        seconds = len(y) / 16000.0
        t0 = time.perf_counter()
        feats = model.features(y)
        t1 = time.perf_counter()
        motion = model.generate(feats, seconds=seconds, seed=seed)
        t2 = time.perf_counter()
        others = [audio[o.name] for o in takes if o.name != name]
        own, other, own_e, lift_e, st = _bc_and_stats(motion, y, others)
        report.generated.append(
            GeneratedTake(name, seconds, own, other, own - other, own_e, lift_e, st, t2 - t1, t1 - t0)
        )
        say(f"generated {name}: BC {own:.3f} lift {own - other:+.3f} ({t2 - t1:.2f} s)")
    return report


def _bc_and_stats(motion: Motion, own_audio: np.ndarray, other_audios: list[np.ndarray]):
    from gesticulator.motion.kinematics import joint_positions

    positions = joint_positions(motion)
    lift = bc_lift(positions, own_audio, other_audios)
    lift_e = bc_lift(positions, own_audio, other_audios, emage_compat=True)
    mask = speech_mask_from_audio(own_audio, num_frames=motion.num_frames)
    stats = motion_stats(positions, mask, fps=motion.fps)
    return lift.own, lift.other_mean, lift_e.own, lift_e.lift, stats


__all__ = ["RhythmEvalReport", "GeneratedTake", "Take", "evaluate_rhythm_model", "find_eval_takes"]
