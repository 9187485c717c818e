"""End-to-end `animate`: do semantic gestures keep the beat, blend cleanly, stay recognisable, fast?

On the held-out BEAT2 takes (audio 2_scott_0_2_2 .. 0_5_5 from ../shared/data/beat2_sample, with
their TextGrids where they exist; skipped when the research data is absent) and on a ~30 s TTS
script written here, for the same seed:

- BC and lift of the beat motion alone vs the motion with semantic gestures (the drop; target:
  neither drops by more than 0.02). Lift = BC with the own audio - mean BC with the other takes'
  audio (for the TTS script: a second TTS script and the BEAT2 takes).
- seam speed ratio: per seam (crossfade ends, forced-token edges), the max joint speed within
  +-0.1 s / the max over the surrounding 1 s (target <= 1.5): max and median over seams.
- recognisability: joint-position error over the stroke between the placed gesture and its
  library clip on the active arm(s), cm (target <= 3): max and mean over events.
- real-time factor (compute s / audio s, warm, after load; the planner's phrase-embedding cache
  cleared before each run): with a transcript given (BEAT2's TextGrid: lower case, no
  punctuation; and a punctuated one: the ASR words), with ASR, each to the motion
  (= `Gesticulator.animate`), plus writing npz+BVH+GLB; the preview render separately.
  Cold start: a fresh `python -c` doing the import + `Gesticulator.load()`.
- the quality rows of the BEAT2 takes use the ASR words (punctuated: the planner sees sentences).

    python benchmarks/animate_eval.py [--model PATH] [--takes N] [--keep DIR]

Uses the shipped default rhythm checkpoint when installed, else says so and needs --model.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BEAT2 = REPO.parent / "shared" / "data" / "beat2_sample"
HELD_OUT = ["2_scott_0_2_2", "2_scott_0_3_3", "2_scott_0_4_4", "2_scott_0_5_5"]

SCRIPT = (
    "Hello everyone, and welcome. Today I want to share three big ideas with you. "
    "First, we need to think about the future. Our sales went up this year, and that is great news. "
    "Second, small details matter. A tiny change here can make a huge difference over there. "
    "Third, we have to work together. Nobody can do this alone, so please, stop and ask for help. "
    "I really love this team. Thank you all, and let's finish strong."
)
OTHER_SCRIPT = (
    "The weather station sits on a hill above the old harbour. Every morning it records the wind, "
    "the rain and the temperature, and sends a short report to the town. Fishermen read it before "
    "they leave, and the ferry captain checks it twice. In winter the station is covered in ice, "
    "and somebody has to climb up and clean the sensors by hand."
)


def _fmt(x: float, spec: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _model_arg(requested: str | None) -> str:
    from gesticulator.rhythm.model import default_checkpoint_dir
    from gesticulator.rhythm.train import MODEL_FILE

    if requested:
        return requested
    if (default_checkpoint_dir() / MODEL_FILE).is_file():
        return "default"
    sys.exit(
        f"the default rhythm checkpoint is not installed ({default_checkpoint_dir()}); "
        "pass --model PATH (an exported checkpoint or a run folder)"
    )


def cold_start(model: str) -> tuple[float, float, float]:
    """(import + load seconds inside a fresh process, of which load, wall seconds of the process)."""
    code = (
        "import time; t = time.perf_counter(); from gesticulator import Gesticulator; "
        "import gesticulator.api; t1 = time.perf_counter(); "
        f"g = Gesticulator.load({model!r}); t2 = time.perf_counter(); print(t2 - t, t2 - t1)"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total, load = map(float, out.stdout.strip().splitlines()[-1].split())
    return total, load, time.perf_counter() - t0


def fresh_plan_cache() -> None:
    """Forget the planner's phrase embeddings, so a timed run pays for them like a new talk does
    (repeated runs on the same words would otherwise find them cached)."""
    from gesticulator.semantics import candidates

    candidates._VECTOR_CACHE.clear()


def timed(fn, *args, **kwargs):
    fresh_plan_cache()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def evaluate(result, own_audio, other_audios) -> dict:
    from gesticulator.align.splice import seam_speed_ratios
    from gesticulator.eval.metrics import bc_lift, joint_position_error_cm
    from gesticulator.motion.kinematics import joint_positions

    base_pos = joint_positions(result.base_motion)
    base = bc_lift(base_pos, own_audio, other_audios)
    # Calibration: the same ratio on the beat motion alone at the same instants (natural level).
    natural = seam_speed_ratios(base_pos, result.quality.seams)
    natural = natural[np.isfinite(natural)]
    full = bc_lift(joint_positions(result.motion), own_audio, other_audios)
    q = result.quality
    ratios = q.seam_ratios[np.isfinite(q.seam_ratios)]
    # One-handed gestures: how far the other arm strays from the beat motion (tokenizer loss and
    # the model's own continuation) over the event.
    other = []
    for e in result.timeline.placed:
        if len(e.active_arms) == 1:
            side = "left" if e.active_arms[0] == "right" else "right"
            f0, f1 = int(e.prep_start * 30), int(np.ceil(e.retract_end * 30))
            other.append(
                joint_position_error_cm(
                    result.motion.slice(f0, f1),
                    result.base_motion.slice(f0, f1),
                    joints=(f"{side}_arm", f"{side}_hand"),
                )
            )
    stream_seams = [
        x for seam, x in zip(q.seams, q.seam_ratios, strict=True) if seam.kind == "stream" and np.isfinite(x)
    ]
    rec = [r for r in q.recognisability_cm if math.isfinite(r)]
    placed = result.timeline.placed
    return {
        "bc_base": base.own, "bc": full.own, "lift_base": base.lift, "lift": full.lift,
        "seam_max": float(ratios.max()) if ratios.size else math.nan,
        "seam_median": float(np.median(ratios)) if ratios.size else math.nan,
        "seams": int(ratios.size),
        "rec_max": max(rec) if rec else math.nan, "rec_mean": float(np.mean(rec)) if rec else math.nan,
        "stream_max": max(stream_seams) if stream_seams else math.nan,
        "natural_max": float(natural.max()) if natural.size else math.nan,
        "other_arm": float(np.mean(other)) if other else math.nan,
        "events": len(placed),
        "chained": sum(e.chained_to_next for e in placed),
        "dropped": sum(e.status != "placed" for e in result.timeline.events),
    }  # fmt: skip


def save_seconds(result, folder: Path, preview: bool = True) -> tuple[float, float]:
    """(seconds to write npz+bvh+glb+timeline, seconds to render the preview or NaN)."""
    t0 = time.perf_counter()
    result.save(folder / "files", formats=("npz", "bvh", "glb"))
    files = time.perf_counter() - t0
    if not preview:
        return files, math.nan
    t0 = time.perf_counter()
    result.save(folder / "preview", formats=("mp4",))
    return files, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="rhythm model: 'default' (if installed) or a checkpoint path")
    ap.add_argument("--takes", type=int, default=len(HELD_OUT), help="how many held-out BEAT2 takes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="keep the outputs (TTS script animation, previews) here")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-start subprocess")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    model = _model_arg(args.model)

    from gesticulator import Gesticulator
    from gesticulator.speech.audio import load_audio
    from gesticulator.speech.transcripts import read_transcript
    from gesticulator.speech.tts import speak

    cold = cold_start(model) if not args.no_cold else (math.nan, math.nan, math.nan)
    t0 = time.perf_counter()
    g = Gesticulator.load(model)
    load_s = time.perf_counter() - t0
    info = g.rhythm.info
    print(f"rhythm model: {model} ({info.get('name')}, data {info.get('data_hash')}, {info.get('path')})")
    print(f"seed {args.seed}; load in this process {load_s:.1f} s\n")

    rows: list[tuple[str, float, dict]] = []
    # name, s, rtf with a TextGrid, rtf with a punctuated transcript, rtf with ASR, files, preview
    speed: list[tuple[str, float, float, float, float, float, float]] = []
    work = Path(tempfile.mkdtemp(prefix="animate_eval_")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)

    # -- the TTS script ----------------------------------------------------------------------------
    other_speech = speak(OTHER_SCRIPT)
    other_tts = load_audio_from(other_speech)
    beat2_audio = {}
    if BEAT2.is_dir():
        beat2_audio = {n: load_audio(BEAT2 / f"{n}.wav", sr=16000) for n in HELD_OUT[: args.takes]}
    t0 = time.perf_counter()
    r = g.speak(SCRIPT, seed=args.seed)
    tts_total = time.perf_counter() - t0
    tts_s = r.timeline.inputs.duration
    own = load_audio_from(r.speech)
    rows.append(("TTS script", tts_s, evaluate(r, own, [other_tts, *beat2_audio.values()])))
    paths = r.save(work / "tts_script", size=512)
    wav = paths["wav"]
    # The stroke error is zero by construction with the default blend (the stroke plays the
    # clip's rotations, torso included); without the torso following the clip it is not.
    from gesticulator.align.splice import BlendSettings

    loose = Gesticulator(g.rhythm, g.planner, g.library, blend=BlendSettings(torso_follow=0.0))
    free_torso = loose.animate(wav, transcript=r.transcript, seed=args.seed).quality.recognisability_cm
    # RTF on the spoken script's audio: with its exact transcript (TTS times), and with ASR.
    _, sec = timed(g.animate, wav, transcript=r.transcript, seed=args.seed)
    rtf_tr = sec / tts_s
    _, sec = timed(g.animate, wav, seed=args.seed)
    rtf_asr = sec / tts_s
    files_s, preview_s = save_seconds(r, work / "tts_speed")
    speed.append(("TTS script", tts_s, math.nan, rtf_tr, rtf_asr, files_s / tts_s, preview_s / tts_s))
    print(
        f"TTS script: {tts_s:.1f} s, speak() end to end {tts_total:.1f} s (RTF {tts_total / tts_s:.3f}, TTS included)"
    )
    print(f"outputs: {paths['mp4'].parent}\n")

    # -- held-out BEAT2 takes ----------------------------------------------------------------------
    if not beat2_audio:
        print(f"(BEAT2 held-out takes skipped: {BEAT2} not present)\n")
    for name, y in beat2_audio.items():
        wav = BEAT2 / f"{name}.wav"
        grid = BEAT2 / f"{name}.TextGrid"
        seconds = len(y) / 16000
        others = [a for n, a in beat2_audio.items() if n != name] + [other_tts]
        # ASR words (punctuated, so the planner sees sentences) for the quality figures.
        res, sec = timed(g.animate, wav, seed=args.seed)
        rtf_asr = sec / seconds
        _, sec = timed(g.animate, wav, transcript=res.transcript, seed=args.seed)
        rtf_words = sec / seconds
        rtf_grid = math.nan
        if grid.is_file():  # BEAT2's own word times: lower case, no punctuation
            _, sec = timed(g.animate, wav, transcript=read_transcript(grid), seed=args.seed)
            rtf_grid = sec / seconds
        rows.append((f"{name} (ASR words)", seconds, evaluate(res, y, others)))
        files_s, preview_s = save_seconds(res, work / name, preview=False)  # render speed: TTS row
        speed.append((name, seconds, rtf_grid, rtf_words, rtf_asr, files_s / seconds, preview_s / seconds))

    # -- tables ------------------------------------------------------------------------------------
    print(f"### Semantic gestures in the beat motion (seed {args.seed})\n")
    print(
        "| input | s | gestures (chained / dropped) | BC base | BC + gestures | BC drop | lift base | lift + gestures "
        "| lift drop | seam ratio max | seam ratio median (n) | of which stream edges max "
        "| beat motion alone at the same instants, max | stroke error max cm | mean cm | other arm vs beat motion cm |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, seconds, m in rows:
        print(
            f"| {label} | {seconds:.1f} | {m['events']} ({m['chained']} / {m['dropped']}) | {_fmt(m['bc_base'])} "
            f"| {_fmt(m['bc'])} | {_fmt(m['bc_base'] - m['bc'], '+.3f')} | {_fmt(m['lift_base'], '+.3f')} "
            f"| {_fmt(m['lift'], '+.3f')} | {_fmt(m['lift_base'] - m['lift'], '+.3f')} | {_fmt(m['seam_max'], '.2f')} "
            f"| {_fmt(m['seam_median'], '.2f')} ({m['seams']}) | {_fmt(m['stream_max'], '.2f')} "
            f"| {_fmt(m['natural_max'], '.2f')} "
            f"| {_fmt(m['rec_max'], '.2f')} | {_fmt(m['rec_mean'], '.2f')} | {_fmt(m['other_arm'], '.1f')} |"
        )
    worst_bc = max(m["bc_base"] - m["bc"] for _, _, m in rows)
    worst_lift = max(m["lift_base"] - m["lift"] for _, _, m in rows)
    mean_bc = float(np.mean([m["bc_base"] - m["bc"] for _, _, m in rows]))
    mean_lift = float(np.mean([m["lift_base"] - m["lift"] for _, _, m in rows]))
    seam_max = np.nanmax([m["seam_max"] for _, _, m in rows])
    rec_max = np.nanmax([m["rec_max"] for _, _, m in rows])
    print(
        f"\nBC drop mean {mean_bc:+.3f}, worst {worst_bc:+.3f}; lift drop mean {mean_lift:+.3f}, worst "
        f"{worst_lift:+.3f} (target <= 0.02); "
        f"worst seam ratio {seam_max:.2f} (target <= 1.5); worst stroke error {rec_max:.2f} cm (target <= 3)."
    )
    print(
        f"With the torso left to the beat motion (torso_follow=0) the TTS script's stroke error would be "
        f"max {np.nanmax(free_torso):.2f} cm, mean {np.nanmean(free_torso):.2f} cm."
    )

    print("\n### Speed (real-time factor = compute s / audio s, warm, phrase-embedding cache cleared)\n")
    print(
        "| input | s | RTF, TextGrid given | RTF, punctuated transcript given | RTF, with ASR "
        "| + npz/BVH/GLB | preview MP4 render |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, seconds, grid, words, asr, files, prev in speed:
        print(
            f"| {name} | {seconds:.1f} | {_fmt(grid)} | {_fmt(words)} | {_fmt(asr)} | +{_fmt(files)} | {_fmt(prev)} |"
        )
    secs = sum(s[1] for s in speed)

    def overall(k: int) -> float:
        rows_k = [s for s in speed if math.isfinite(s[k])]
        return sum(s[k] * s[1] for s in rows_k) / sum(s[1] for s in rows_k) if rows_k else math.nan

    files_all = sum(s[5] * s[1] for s in speed) / secs
    print(
        f"\nOverall RTF: punctuated transcript given {overall(3):.3f} (target <= 0.1; {overall(3) + files_all:.3f} "
        f"with the npz/BVH/GLB files), TextGrid given {_fmt(overall(2))}, with ASR {overall(4):.3f} (target <= 0.25). "
        f"Cold start (fresh process: import + Gesticulator.load, warm) {cold[0]:.1f} s, of which load {cold[1]:.1f} s "
        f"({cold[2]:.1f} s wall incl. interpreter start; target <= 10 s)."
    )
    return 0


def load_audio_from(speech) -> np.ndarray:
    """16 kHz samples of a SpeechResult."""
    import soxr

    return soxr.resample(speech.samples, speech.sample_rate, 16000).astype(np.float32)


if __name__ == "__main__":
    sys.exit(main())
