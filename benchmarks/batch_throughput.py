"""Batch throughput: audio minutes animated per wall-clock minute with 1 and 2 local workers.

    python benchmarks/batch_throughput.py [--model PATH] [--items 24] [--workers 1 2]
                                          [--formats npz] [--asr] [--ray] [--keep DIR]

Inputs: six talk-like scripts spoken by the bundled voice (`gesticulator.speech.tts`, what
`gesticulator speak --audio-only` writes), 6-10 s each, with their exact word-timed transcripts,
cycled with different seeds up to --items items (`--asr`: no transcripts, each item is transcribed
by the bundled Whisper with its script aligned). Without the TTS (piper) the shipped
examples/hello_demo.wav and its script are used. Needs the default rhythm checkpoint (or --model);
without it the benchmark says so and skips.

Each worker count runs the same manifest into a fresh folder with `run_batch` (the engine behind
`gesticulator batch`), so every run pays for starting its workers and loading their models.
Columns:

- wall s: the whole run, worker start-up and model loading included;
- start-up s: until the first item was finished, less that item's own seconds (spawn, imports,
  `Gesticulator.load` in each worker, in parallel);
- audio min / wall min: throughput over the whole run; "after start-up": items finished after the
  first one over the time after it (what a long batch approaches);
- item RTF: mean seconds per item / audio seconds inside one worker (contention shows here);
- cores used by the batch / by other jobs: CPU seconds per wall second over the run, of this
  process and its workers, and of everything else on the machine (Linux; on a shared machine
  the second column says how many cores were really free).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPTS = [
    "Good morning, everyone. Today I want to talk about three big changes in our team. "
    "First, we are growing fast. Second, we will work closer together.",
    "Last year our sales went up by twenty percent. That is great news for all of us, "
    "and I want to thank every one of you for that.",
    "Small details matter. A tiny change here can make a huge difference over there, "
    "so please take your time and check your work twice.",
    "I have a question for you. What would you do if you had one more hour every day? "
    "Think about it for a moment.",
    "We tried it once and it failed. We tried it again and it failed again. "
    "The third time, it finally worked, and we learned a lot.",
    "Thank you all for coming. Please stop by my office if you want to talk more. "
    "Let's finish this year strong, together.",
]


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def _model_arg(requested: str | None) -> str | None:
    if requested:
        return requested
    from gesticulator.batch.runner import resolve_model_file
    from gesticulator.errors import GesticulatorError

    try:
        resolve_model_file("default")
    except GesticulatorError:
        return None
    return "default"


def make_inputs(folder: Path, items: int, asr: bool) -> tuple[Path, float]:
    """Write the clips and a manifest of `items` rows; returns (manifest, audio seconds in total)."""
    import soundfile as sf

    rows, clips = [], []
    try:
        from gesticulator.speech.tts import save_speech, speak

        for i, text in enumerate(SCRIPTS):
            wav, js = save_speech(speak(text, seed=i), folder, stem=f"talk{i}")
            (folder / f"talk{i}.txt").write_text(text)
            clips.append((wav, js, folder / f"talk{i}.txt"))
        print(f"inputs: {len(clips)} clips spoken by the bundled voice")
    except ImportError:
        from gesticulator.resources import example

        wav = example("hello_demo.wav")
        script = folder / "hello_demo.txt"
        script.write_text("Hello everyone! Today I have three big ideas for you.")
        clips.append((wav, None, script))
        asr = True
        print("inputs: piper not installed: the shipped examples/hello_demo.wav with its script (ASR timing)")
    durations = {str(w): sf.info(str(w)).duration for w, _, _ in clips}
    total = 0.0
    for i in range(items):
        wav, js, script = clips[i % len(clips)]
        row = {"id": f"item{i:03d}", "audio": str(wav), "seed": i // len(clips)}
        if asr or js is None:
            row["script"] = str(script)
        else:
            row["transcript"] = str(js)
        rows.append(row)
        total += durations[str(wav)]
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest, total


def _busy_cores() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far (Linux /proc/stat), else None."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_once(manifest: Path, out: Path, options, engine: str, workers: int) -> dict:
    from gesticulator.batch import run_batch

    busy0, own0 = _busy_cores(), _own_cpu()
    t0 = time.perf_counter()
    marks: list[tuple[float, dict]] = []
    summary = run_batch(
        manifest, out, options=options, engine=engine, workers=workers,
        on_item=lambda rec: marks.append((time.perf_counter() - t0, rec)),
    )  # fmt: skip
    wall = time.perf_counter() - t0
    busy1, own = _busy_cores(), _own_cpu() - own0
    # Other jobs on the machine: its busy CPU time less ours (pool workers are our children and
    # are reaped by the end of the run; Ray's workers are not, so the figure is left out for Ray).
    others = (busy1[0] - busy0[0] - own) / wall if busy0 and busy1 and engine == "local" else float("nan")
    done = [(t, r) for t, r in marks if r["status"] == "done"]
    if not done:
        raise SystemExit(f"no item finished: {summary.failures[:1]}")
    t_first, first = done[0]
    startup = t_first - (first.get("seconds") or 0.0)
    after = sum(r["audio_seconds"] for _, r in done[1:])
    steady = after / (wall - t_first) if wall > t_first else float("nan")
    return {
        "engine": engine,
        "workers": summary.workers,
        "items": summary.done,
        "failed": summary.failed,
        "audio_min": summary.audio_seconds / 60,
        "wall": wall,
        "startup": startup,
        "throughput": summary.audio_seconds / wall,
        "steady": steady,
        "item_rtf": sum(r["seconds"] for _, r in done) / sum(r["audio_seconds"] for _, r in done),
        "load": max((r.get("load_seconds") or 0.0) for _, r in done),
        "cpu": own / wall if engine == "local" else float("nan"),
        "others": others,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="rhythm model: 'default' (if installed) or a checkpoint path")
    ap.add_argument("--items", type=int, default=24, help="items in the batch (default 24)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    ap.add_argument("--formats", default="npz", help="output formats per item (timeline.json always)")
    ap.add_argument("--asr", action="store_true", help="no transcripts: scripts timed by the bundled ASR")
    ap.add_argument("--ray", action="store_true", help="also run the Ray engine (local Ray) with 2 workers")
    ap.add_argument("--keep", type=Path, help="keep the inputs and outputs here")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    model = _model_arg(args.model)
    if model is None:
        print("skipped: the default rhythm checkpoint is not installed; pass --model PATH")
        return 0
    from gesticulator.batch import BatchOptions
    from gesticulator.batch.manifest import check_defaults

    work = Path(tempfile.mkdtemp(prefix="batch_throughput_")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        manifest, audio_s = make_inputs(work, args.items, args.asr)
        fmts = check_defaults(seed=0, density="normal", formats=args.formats)
        options = BatchOptions(model=model, formats=fmts)
        print(
            f"{args.items} items, {audio_s / 60:.2f} min of audio, formats {','.join(fmts)} + timeline.json, "
            f"{'ASR + script' if args.asr else 'transcripts given'}; model {model}; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} at start\n"
        )
        runs = [("local", w) for w in args.workers]
        if args.ray:
            try:
                import ray  # noqa: F401

                runs.append(("ray", 2))
            except ImportError:
                print("(Ray not installed: the ray row is skipped)")
        results = []
        for engine, workers in runs:
            out = work / f"out_{engine}_{workers}"
            shutil.rmtree(out, ignore_errors=True)
            results.append(run_once(manifest, out, options, engine, workers))
            r = results[-1]
            print(
                f"  {engine} x{workers}: {r['wall']:.1f} s, {r['throughput']:.2f} audio min / wall min",
                flush=True,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print("\n### Batch throughput (audio minutes animated per wall-clock minute)\n")
    print(
        "| engine | workers | items (failed) | audio min | wall s | start-up s | audio min / wall min "
        "| after start-up | item RTF | model load s | cores used by the batch | by other jobs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['engine']} | {r['workers']} | {r['items']} ({r['failed']}) | {r['audio_min']:.2f} | {r['wall']:.1f} "
            f"| {r['startup']:.1f} | **{r['throughput']:.2f}** | {r['steady']:.2f} | {r['item_rtf']:.3f} | {r['load']:.1f} "
            f"| {_fmt(r['cpu'])} | {_fmt(r['others'])} |"
        )
    base = next((r for r in results if r["engine"] == "local" and r["workers"] == 1), None)
    if base is not None:
        for r in results:
            if r is not base:
                print(
                    f"\n{r['engine']} x{r['workers']} vs local x1: {r['throughput'] / base['throughput']:.2f}x overall, "
                    f"{r['steady'] / base['steady']:.2f}x after start-up"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
