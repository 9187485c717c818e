"""Run a batch: every item animated once, in parallel, resumable after a crash.

    from gesticulator.batch import BatchOptions, run_batch
    summary = run_batch("talks.csv", "out/", options=BatchOptions(formats=("npz",)), workers=2)

Layout of OUTDIR:

    OUTDIR/<id>/                  one folder per item (motion.npz …, timeline.json)
    OUTDIR/<id>/.gesticulator-batch.json   completion marker: input hash, config hash, outputs
    OUTDIR/batch.jsonl            append-only log: a record per item per run (+ run start/end)
    OUTDIR/.partial/              items being written (removed at the start of the next run)
    OUTDIR/.batch.lock            held while a batch runs (two runs never write one OUTDIR)

An item's outputs are written into `.partial/`, its completion marker last, and the finished
folder is renamed into `OUTDIR/<id>` in one step: a folder under its final name is always
complete. An item is done when its marker records the same input hash (the content of its audio,
transcript and script) and config hash (seed, density, formats, LLM, preview size, the rhythm
checkpoint's and the gesture libraries' content, the gesticulator version): a rerun skips done
items, retries failed ones and redoes items whose inputs or settings changed.

Engines: "local" runs a pool of spawned worker processes (one torch thread each); "ray" runs the
same work as Ray actors, on an existing cluster (`address`) or a local Ray. Each worker loads the
models once (`Gesticulator.load`) and reuses them for all its items.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gesticulator.batch.manifest import OUTPUT_FORMATS, BatchItem, Manifest, check_defaults, read_items
from gesticulator.errors import GesticulatorError, InputFileError, MissingDependencyError

MARKER = ".gesticulator-batch.json"
STATUS_FILE = "batch.jsonl"
PARTIAL_DIR = ".partial"
LOCK_FILE = ".batch.lock"
ENGINES = ("local", "ray")
DEFAULT_FACTORY = "gesticulator.batch.runner:load_gesticulator"
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class BatchFailed(GesticulatorError):
    """The batch ran, but some items failed (they are listed in batch.jsonl)."""

    exit_code = 2


@dataclass(frozen=True)
class BatchOptions:
    """The batch's defaults (a manifest row may override seed, density, formats and llm) and the
    models every worker loads."""

    model: str = "default"  # rhythm model: "default", an exported checkpoint or a run folder
    library: tuple[str, ...] = ()  # extra gesture library folders
    density: str = "normal"
    formats: tuple[str, ...] = OUTPUT_FORMATS
    seed: int = 0
    llm: str | None = None  # PROVIDER:MODEL; None = the embedded selector
    size: int = 512  # preview video size
    # "module:function" called as fn(options, llm) in each worker to build the animator (an object
    # with Gesticulator's animate); tests plug in a light one. None = Gesticulator.load.
    factory: str | None = None


@dataclass
class BatchSummary:
    outdir: Path
    total: int  # items in the manifest
    done: int  # animated in this run
    skipped: int  # already done by an earlier run
    failed: int
    seconds: float  # wall time of this run
    audio_seconds: float  # audio animated in this run
    failures: list[dict[str, Any]] = field(default_factory=list)  # their batch.jsonl records
    engine: str = "local"
    workers: int = 1

    @property
    def status_file(self) -> Path:
        return self.outdir / STATUS_FILE

    @property
    def throughput(self) -> float:
        """Audio minutes animated per wall-clock minute in this run."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0


# -- hashing ---------------------------------------------------------------------------------------
def _sha256_file(path: Path, h: Any = None) -> str:
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_model_file(model: str) -> Path:
    """The checkpoint file `RhythmModel.load(model)` reads (same rules, without importing torch)."""
    if str(model) in ("default", "rhythm_default"):
        from gesticulator.resources import data_dir

        try:
            path = data_dir("checkpoints") / "rhythm_default" / "model.pt"
        except FileNotFoundError:
            path = Path("checkpoints") / "rhythm_default" / "model.pt"
        if not path.is_file():
            raise InputFileError(
                f"the default rhythm model is not installed (no {path})",
                "train one (see README) or pass --model PATH",
            )
        return path
    p = Path(model).expanduser()
    for candidate in (p, p / "model.pt", p / "model" / "model.pt"):
        if candidate.is_file():
            return candidate
    raise InputFileError(f"rhythm model checkpoint not found: {p}", "check the --model path")


def library_roots(extra: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """The gesture library folders a worker layers (as `Library.load`): extra, user, default."""
    from gesticulator.library.store import GESTURES_DIR, default_library_dir, user_library_dir

    roots = []
    for r in extra:
        p = Path(r).expanduser()
        if not p.is_dir():
            raise InputFileError(f"gesture library folder not found: {p}", "check the --library path")
        roots.append(p)
    user = user_library_dir()
    if (user / GESTURES_DIR).is_dir():
        roots.append(user)
    roots.append(default_library_dir())
    return roots


def _folder_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue  # .index/ and other caches
        h.update(str(rel).encode() + b"\x00")
        _sha256_file(p, h)
        h.update(b"\x01")
    return h.hexdigest()


def fingerprints(options: BatchOptions) -> dict[str, str]:
    """Content hashes of what shapes every output besides the item's own settings."""
    from gesticulator import __version__

    model = resolve_model_file(options.model)
    lib = hashlib.sha256()
    for root in library_roots(options.library):
        lib.update(_folder_digest(root).encode())
    return {
        "model": _sha256_file(model)[:20],
        "library": lib.hexdigest()[:20],
        "gesticulator": __version__,
        "factory": options.factory or "",
    }


def item_config(item: BatchItem, options: BatchOptions, prints: dict[str, str]) -> dict[str, Any]:
    """The item's effective settings (its overrides over the batch's defaults) + fingerprints."""
    formats = list(item.formats or options.formats)
    return {
        "seed": options.seed if item.seed is None else item.seed,
        "density": item.density or options.density,
        "formats": formats,
        "llm": item.llm if item.llm is not None else options.llm,
        "size": options.size if "mp4" in formats else None,
        **prints,
    }


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


# -- the output folder -----------------------------------------------------------------------------
def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(folder: Path, input_hash: str, cfg_hash: str) -> bool:
    """The folder holds a finished item for exactly these inputs and settings, every output still there."""
    m = read_marker(folder)
    if m is None or m.get("input_hash") != input_hash or m.get("config_hash") != cfg_hash:
        return False
    return all((folder / name).is_file() for name in m.get("outputs", []))


@contextlib.contextmanager
def _locked(outdir: Path) -> Iterator[None]:
    """One batch at a time per OUTDIR (the lock dies with the process, even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; running two batches into one folder is on the user
        yield
        return
    fh = open(outdir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise GesticulatorError(
                f"another batch is writing into {outdir}", "wait for it to finish or choose another -o folder"
            ) from None
        yield
    finally:
        fh.close()


class StatusLog:
    """OUTDIR/batch.jsonl: one JSON record per line, appended and flushed one by one. A line cut
    short by a crash is skipped when read, and the next record starts on a fresh line."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with open(self.path, "a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())


def one_line(error: BaseException | str, limit: int = 400) -> str:
    text = error if isinstance(error, str) else str(error)
    if not isinstance(error, str) and not isinstance(error, GesticulatorError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- the worker side -------------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


def load_gesticulator(options: BatchOptions, llm: str | None) -> Any:
    """The default animator: a Gesticulator with the batch's models (and this LLM)."""
    from gesticulator.api import Gesticulator

    return Gesticulator.load(
        options.model, library=list(options.library) or None, llm=llm, density=options.density
    )


def _limit_threads() -> None:
    """One torch/BLAS thread per worker: N workers use N cores without oversubscribing them."""
    for var in _THREAD_VARS:  # read by torch/OpenMP when first imported
        os.environ[var] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:  # imported already (a Ray worker may have): set it directly
        torch.set_num_threads(1)


def _watch_parent(parent_pid: int) -> None:
    """Exit when the batch process is gone (killed, even by SIGKILL): no orphan keeps working."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)
            time.sleep(0.25)

    threading.Thread(target=watch, name="gesticulator-batch-parent-watch", daemon=True).start()


def init_worker(options: BatchOptions, parent_pid: int | None = None) -> None:
    """Set up a worker process (pool initializer, Ray actor constructor or the batch process
    itself with workers=0). Models are loaded on the first item and kept."""
    _limit_threads()
    _STATE.clear()
    _STATE.update(options=options, models={})
    if parent_pid is not None:  # a pool process: watch the batch process, and exit fast
        _watch_parent(parent_pid)
        atexit.register(_exit_now)


def _exit_now() -> None:
    """End a pool worker without the interpreter's 1-2 s teardown of the models (its results
    are already sent: the pool's result queue writes synchronously)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _animator(llm: str | None) -> Any:
    models = _STATE["models"]
    key = llm or ""
    if key not in models:
        options: BatchOptions = _STATE["options"]
        module, _, name = (options.factory or DEFAULT_FACTORY).partition(":")
        factory = getattr(importlib.import_module(module), name)
        models[key] = factory(options, llm)
        _limit_threads()
    return models[key]


def process_item(task: dict[str, Any]) -> dict[str, Any]:
    """Animate one item and move its finished folder into place. Never raises for the item's
    own problems: returns {"status": "done"|"failed"|"fatal", ...} ("fatal": the batch's models
    cannot be loaded, so no item can succeed)."""
    item: BatchItem = task["item"]
    cfg: dict[str, Any] = task["config"]
    options: BatchOptions = _STATE["options"]
    outdir = Path(task["outdir"])
    final = outdir / item.id
    out = {"id": item.id, "status": "failed", "error": None, "seconds": 0.0, "load_seconds": 0.0,
           "audio_seconds": None, "pid": os.getpid(), "warnings": []}  # fmt: skip
    t0 = time.perf_counter()
    try:
        g = _animator(cfg["llm"])
    except Exception as e:  # noqa: BLE001 - reported, never raised
        out["error"] = one_line(e)
        if (cfg["llm"] or None) == (options.llm or None):
            out["status"] = "fatal"
        return out
    out["load_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    staging: Path | None = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = g.animate(
                item.audio,
                transcript=item.transcript,
                script=item.script,
                seed=cfg["seed"],
                density=cfg["density"],
            )
            (outdir / PARTIAL_DIR).mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{item.id}.", dir=outdir / PARTIAL_DIR))
            paths = result.save(staging / "item", cfg["formats"], size=cfg["size"] or options.size)
        out["warnings"] = list(dict.fromkeys(one_line(str(w.message), 200) for w in caught))[:5]
        out["audio_seconds"] = float(result.timeline.inputs.duration)
        seconds = round(time.perf_counter() - t0, 3)
        marker = {
            "id": item.id,
            "input_hash": task["input_hash"],
            "config_hash": task["config_hash"],
            "inputs": item.input_paths(),
            "config": cfg,
            "outputs": sorted(Path(p).name for p in paths.values()),
            "audio_seconds": out["audio_seconds"],
            "seconds": seconds,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        from gesticulator.io.atomic import write_text_atomic

        write_text_atomic(staging / "item" / MARKER, json.dumps(marker, indent=1) + "\n")
        _install(staging / "item", final, staging, task["input_hash"], task["config_hash"])
        out["status"] = "done"
    except Exception as e:  # noqa: BLE001 - one bad item never stops the batch
        out["error"] = one_line(e)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _install(new: Path, final: Path, staging: Path, input_hash: str, cfg_hash: str) -> None:
    """Rename the finished folder onto `final` (one atomic rename). An older item there (other
    inputs or settings) is moved aside first; a folder we did not write is never touched."""
    for attempt in range(3):
        if final.exists() or final.is_symlink():
            if is_done(final, input_hash, cfg_hash):
                return  # finished meanwhile by another worker (e.g. one left by a killed run)
            if read_marker(final) is None:
                raise GesticulatorError(
                    f"{final} exists and was not written by gesticulator batch",
                    "move it away or use another -o",
                )
            os.replace(final, staging / f"old{attempt}")
        try:
            os.replace(new, final)
            return
        except OSError:  # appeared in between: look again
            continue
    raise GesticulatorError(f"cannot move the outputs into {final}", "check that nothing else writes there")


# -- engines ---------------------------------------------------------------------------------------
OutcomeFn = Callable[[dict[str, Any], dict[str, Any]], None]  # (task, outcome)


class _Fatal(Exception):
    pass


def _died(task: dict[str, Any], why: str) -> dict[str, Any]:
    return {"id": task["item"].id, "status": "failed", "error": why, "seconds": 0.0, "load_seconds": 0.0,
            "audio_seconds": None, "pid": None, "warnings": []}  # fmt: skip


def _run_inline(tasks: list[dict[str, Any]], options: BatchOptions, on_outcome: OutcomeFn) -> None:
    saved = dict(_STATE)
    init_worker(options)
    try:
        for task in tasks:
            outcome = process_item(task)
            if outcome["status"] == "fatal":
                raise _Fatal(outcome["error"])
            on_outcome(task, outcome)
    finally:
        _STATE.clear()
        _STATE.update(saved)


def _run_local(
    tasks: list[dict[str, Any]], options: BatchOptions, workers: int, on_outcome: OutcomeFn
) -> None:
    """A pool of spawned processes, one item in flight per worker. A worker that dies (crash,
    out of memory) takes its pool down with the items in flight; those are retried one at a
    time in a fresh pool, so only the item that kills its worker when alone is failed."""
    queue = deque(tasks)
    suspects: deque[dict[str, Any]] = deque()  # in flight when a worker died: retried alone
    # Children inherit the environment at spawn: one OpenMP thread from the very first import.
    env_before = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        while queue or suspects:
            _one_pool(queue, suspects, options, min(workers, len(queue) + len(suspects)), on_outcome)
    finally:
        for var, value in env_before.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _one_pool(
    queue: deque[dict[str, Any]],
    suspects: deque[dict[str, Any]],
    options: BatchOptions,
    size: int,
    on_outcome: OutcomeFn,
) -> None:
    """Run items in one pool until both queues are empty or a worker dies (the pool is broken)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # never fork a process that may run torch threads
    pool = ProcessPoolExecutor(
        size, mp_context=context, initializer=init_worker, initargs=(options, os.getpid())
    )
    inflight: dict[Any, dict[str, Any]] = {}
    alone: dict[str, Any] | None = None  # a suspect running by itself
    broken = False
    try:
        while True:
            if not broken and suspects and not inflight:
                alone = suspects.popleft()
                inflight[pool.submit(process_item, alone)] = alone
            while not broken and not suspects and queue and len(inflight) < size:
                task = queue.popleft()
                inflight[pool.submit(process_item, task)] = task
            if not inflight:
                break
            finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in finished:
                task = inflight.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    broken = True
                    if task is alone:
                        on_outcome(
                            task, _died(task, "a worker process died on this item (crashed or out of memory)")
                        )
                    else:
                        suspects.append(task)
                    continue
                except Exception as e:  # noqa: BLE001 - e.g. a task that cannot be pickled
                    outcome = _died(task, one_line(e))
                if outcome["status"] == "fatal":
                    raise _Fatal(outcome["error"])
                on_outcome(task, outcome)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _stop_pool(pool: Any) -> None:
    """Stop now: cancel queued items and end the workers (they would finish their item first)."""
    pool.shutdown(wait=False, cancel_futures=True)
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.terminate()


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "the ray engine needs Ray, which is not installed",
            "install it (pip install ray, or the package's ray extra) or use --engine local",
        ) from None
    return ray


class RayWorker:
    """A Ray actor: loads the models once, then animates the items it is given."""

    def __init__(self, options: BatchOptions):
        init_worker(options)

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        return process_item(task)


def _run_ray(
    tasks: list[dict[str, Any]],
    options: BatchOptions,
    workers: int | None,
    address: str | None,
    on_outcome: OutcomeFn,
) -> int:
    """The same items as Ray actor calls; returns the number of actors used."""
    import logging

    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=max(1, workers or os.cpu_count() or 1), include_dashboard=False, **kwargs)
        started = True
    env = dict.fromkeys(_THREAD_VARS, "1")
    for var in ("GESTICULATOR_LIBRARY", "XDG_CACHE_HOME", "HF_HUB_OFFLINE"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(n, len(tasks)))
        actor_cls = ray.remote(num_cpus=1, max_restarts=0)(RayWorker).options(runtime_env={"env_vars": env})
        idle = [actor_cls.remote(options) for _ in range(n)]
        queue = deque(tasks)
        attempts: Counter[str] = Counter()
        inflight: dict[Any, tuple[Any, dict[str, Any]]] = {}
        while queue or inflight:
            while idle and queue:
                actor, task = idle.pop(), queue.popleft()
                inflight[actor.run.remote(task)] = (actor, task)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                actor, task = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as e:
                    # The actor died (crash, node lost): a fresh one takes its place.
                    with contextlib.suppress(Exception):
                        ray.kill(actor)
                    idle.append(actor_cls.remote(options))
                    attempts[task["item"].id] += 1
                    if attempts[task["item"].id] >= 2:
                        on_outcome(
                            task, _died(task, f"the Ray worker died on this item ({one_line(e, 200)})")
                        )
                    else:
                        queue.appendleft(task)
                    continue
                idle.append(actor)
                if outcome["status"] == "fatal":
                    raise _Fatal(outcome["error"])
                on_outcome(task, outcome)
        for actor in idle:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        return n
    finally:
        if started:
            ray.shutdown()


# -- the batch -------------------------------------------------------------------------------------
def run_batch(
    source: str | os.PathLike | Manifest,
    outdir: str | os.PathLike,
    *,
    options: BatchOptions | None = None,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    on_start: Callable[[int, int, int], None] | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
) -> BatchSummary:
    """Animate every item of `source` (a manifest or a folder) into `outdir/<id>/`.

    Items already done (same inputs and settings) are skipped; failed ones are retried. One bad
    item is recorded with its error and the batch goes on. `workers`: local processes (0 = in this
    process; default 1) or Ray actors (default: the cluster's CPUs). `on_start(total, to_run,
    skipped)` and `on_item(record)` report progress. Raises GesticulatorError for problems that
    stop the whole batch (an unreadable manifest, a model that cannot be loaded)."""
    options = options or BatchOptions()
    if engine not in ENGINES:
        raise GesticulatorError(f"unknown engine {engine!r}", "use --engine local or --engine ray")
    if workers is not None and (workers < 0 or (workers == 0 and engine == "ray")):
        raise GesticulatorError(
            f"--workers must be >= 1, got {workers}", "give the number of worker processes"
        )
    formats = check_defaults(seed=options.seed, density=options.density, formats=options.formats)
    if options.size < 64 or options.size > 4096:
        raise GesticulatorError(f"--size {options.size} is out of range", "use a size between 64 and 4096")
    if engine == "ray":
        import_ray()  # a missing extra is reported before any work
    options = dataclasses.replace(options, formats=formats)
    manifest = source if isinstance(source, Manifest) else read_items(source)
    out = Path(outdir).expanduser().absolute()
    prints = fingerprints(options)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GesticulatorError(f"cannot create {out}: {e.strerror}", "choose a writable -o folder") from None
    t_start = time.perf_counter()
    log = StatusLog(out / STATUS_FILE)
    with _locked(out):
        shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)  # left by a killed run
        logged_done = {
            (r.get("id"), r.get("input_hash"), r.get("config_hash"))
            for r in log.read()
            if r.get("status") == "done"
        }
        run_id = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        tasks, upfront, skipped = [], [], 0
        for item in manifest.items:
            cfg = item_config(item, options, prints)
            chash = config_hash(cfg)
            task = {"item": item, "config": cfg, "config_hash": chash, "input_hash": None, "outdir": str(out)}
            final = out / item.id
            try:
                task["input_hash"] = item.input_hash()
                if (final.exists() or final.is_symlink()) and (
                    not final.is_dir() or read_marker(final) is None
                ):
                    raise GesticulatorError(
                        f"{final} exists and was not written by gesticulator batch", "move it away or give the row another id"
                    )  # fmt: skip
            except GesticulatorError as e:
                upfront.append((task, _died(task, one_line(e))))
                continue
            if is_done(final, task["input_hash"], chash):
                skipped += 1
                if (item.id, task["input_hash"], chash) not in logged_done:
                    # Finished by a run killed before it could log it: log it now, once.
                    m = read_marker(final) or {}
                    outcome = {"id": item.id, "status": "done", "error": None, "seconds": m.get("seconds"),
                               "audio_seconds": m.get("audio_seconds"), "recovered": True}  # fmt: skip
                    log.append(_record(task, outcome, run_id))
                continue
            tasks.append(task)
        log.append({"event": "start", "run": run_id, "time": _now(), "source": str(manifest.source),
                    "engine": engine, "workers": workers, "items": len(manifest.items), "to_run": len(tasks),
                    "skipped": skipped, "failed_before_start": len(upfront)})  # fmt: skip
        if on_start is not None:
            on_start(len(manifest.items), len(tasks) + len(upfront), skipped)
        counts = Counter()
        audio_seconds = 0.0
        failures: list[dict[str, Any]] = []

        def on_outcome(task: dict[str, Any], outcome: dict[str, Any]) -> None:
            nonlocal audio_seconds
            rec = _record(task, outcome, run_id)
            log.append(rec)
            counts[rec["status"]] += 1
            if rec["status"] == "done":
                audio_seconds += rec.get("audio_seconds") or 0.0
            else:
                failures.append(rec)
            if on_item is not None:
                on_item(rec)

        for task, outcome in upfront:
            on_outcome(task, outcome)
        used = workers if workers is not None else 1
        try:
            if tasks:
                if engine == "ray":
                    used = _run_ray(tasks, options, workers, address, on_outcome)
                elif workers == 0:
                    _run_inline(tasks, options, on_outcome)
                else:
                    _run_local(tasks, options, max(1, min(used, len(tasks))), on_outcome)
        except _Fatal as e:
            log.append({"event": "abort", "run": run_id, "time": _now(), "error": str(e)})
            raise GesticulatorError(
                f"the workers cannot load the models: {e}",
                "fix the model options (--model, --library, --llm)",
            ) from None
        finally:
            shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
        seconds = time.perf_counter() - t_start
        log.append({"event": "end", "run": run_id, "time": _now(), "done": counts["done"], "failed": counts["failed"],
                    "skipped": skipped, "seconds": round(seconds, 3), "audio_seconds": round(audio_seconds, 3)})  # fmt: skip
    return BatchSummary(
        outdir=out, total=len(manifest.items), done=counts["done"], skipped=skipped, failed=counts["failed"],
        seconds=seconds, audio_seconds=audio_seconds, failures=failures, engine=engine, workers=used,
    )  # fmt: skip


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _record(task: dict[str, Any], outcome: dict[str, Any], run_id: str) -> dict[str, Any]:
    """One batch.jsonl line for an item."""
    item: BatchItem = task["item"]
    rec = {
        "id": item.id,
        "status": outcome["status"],
        **item.input_paths(),
        "input_hash": task["input_hash"],
        "config_hash": task["config_hash"],
        "seed": task["config"]["seed"],
        "output": str(Path(task["outdir"]) / item.id) if outcome["status"] == "done" else None,
        "error": outcome.get("error"),
        "seconds": outcome.get("seconds"),
        "audio_seconds": outcome.get("audio_seconds"),
        "time": _now(),
        "run": run_id,
    }
    for key in ("load_seconds", "pid", "recovered"):
        if outcome.get(key):
            rec[key] = outcome[key]
    if outcome.get("warnings"):
        rec["warnings"] = outcome["warnings"]
    if item.where:
        rec["row"] = item.where
    return rec


__all__ = [
    "BatchFailed",
    "BatchOptions",
    "BatchSummary",
    "MARKER",
    "STATUS_FILE",
    "StatusLog",
    "config_hash",
    "fingerprints",
    "init_worker",
    "is_done",
    "process_item",
    "read_marker",
    "run_batch",
]
