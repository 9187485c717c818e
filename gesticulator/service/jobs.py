"""The job store and the worker queue of `gesticulator serve`.

Jobs live in SQLite (`<data>/jobs.sqlite3`, WAL mode) and their files in `<data>/jobs/<id>/`
(`input/` the upload, `out/` the results), so a restarted server loses nothing: jobs that were
queued or running when it stopped are queued again, oldest first, when it starts.

A `JobQueue` runs jobs in worker threads. The models are loaded once (`Gesticulator.load()`, in
the first worker, while the server already answers) and shared by the workers; the model part of
a job (ASR, planning, beat motion, blending) runs under one lock, because the pipeline switches
torch's thread count while it plans, and the writing part (BVH, GLB, the MP4 preview) runs in
parallel. Results are written into a temporary folder and renamed into place
(`AnimationResult.save`), and a job is marked done only after that, so a crash never leaves a job
"done" with half its files.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gesticulator.errors import GesticulatorError

STATUSES = ("queued", "running", "done", "failed")
# The files a job can produce, by name (`AnimationResult.save` with the default stems).
RESULT_FILES = {
    "npz": "motion.npz",
    "bvh": "motion.bvh",
    "glb": "motion.glb",
    "mp4": "preview.mp4",
    "timeline": "timeline.json",
    "wav": "speech.wav",
    "transcript": "speech.json",
}
FILE_NAMES = tuple(RESULT_FILES.values())

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL,
    input_name TEXT,
    error TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    summary TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""


@dataclass
class Job:
    """One row of the store."""

    id: str
    status: str
    kind: str  # "audio" (an uploaded recording, optionally with its script) or "script" (TTS)
    created: float
    options: dict[str, Any]
    seq: int = 0
    started: float | None = None
    finished: float | None = None
    progress: float = 0.0
    stage: str = ""
    attempts: int = 0
    input_name: str | None = None  # the uploaded file, under <job dir>/input/
    error: str | None = None
    files: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Job:
        d = dict(row)
        for key in ("options", "files", "summary"):
            d[key] = json.loads(d[key])
        return cls(**d)


class JobStore:
    """Jobs in SQLite under `data_dir`; safe to use from several threads."""

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir).expanduser().resolve()
        try:
            (self.data_dir / "jobs").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GesticulatorError(
                f"cannot create the data folder {self.data_dir}: {e.strerror}", "choose another --data folder"
            ) from e
        self.path = self.data_dir / "jobs.sqlite3"
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise GesticulatorError(
                f"cannot open the job database {self.path}: {e}",
                "move the file away or choose another --data",
            ) from e

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- paths ---------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    def input_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "input"

    def output_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "out"

    # -- rows ----------------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def add(
        self,
        kind: str,
        options: dict[str, Any],
        *,
        job_id: str | None = None,
        input_name: str | None = None,
        max_queued: int | None = None,
    ) -> Job | None:
        """Insert a queued job; None when `max_queued` jobs are already waiting (queue full)."""
        job = Job(
            id=job_id or self.new_id(), status="queued", kind=kind, created=time.time(), options=options,
            input_name=input_name, stage="queued",
        )  # fmt: skip
        with self._tx() as db:
            if max_queued is not None:
                (queued,) = db.execute("SELECT COUNT(*) FROM jobs WHERE status='queued'").fetchone()
                if queued >= max_queued:
                    return None
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()
            job.seq = seq
            db.execute(
                "INSERT INTO jobs (id, seq, status, kind, created, stage, options, input_name)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, seq, job.status, kind, job.created, job.stage, json.dumps(options), input_name),
            )
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Job._from_row(row) if row else None

    def list(self, *, status: str | None = None, limit: int = 50) -> list[Job]:
        sql, args = "SELECT * FROM jobs", []
        if status is not None:
            sql += " WHERE status=?"
            args.append(status)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Job._from_row(r) for r in rows]

    def count(self, status: str) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM jobs WHERE status=?", (status,)).fetchone()
        return n

    def queued_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE status='queued' ORDER BY seq").fetchall()
        return [r[0] for r in rows]

    def claim(self, job_id: str) -> Job | None:
        """queued -> running; None when the job is gone or not queued (deleted meanwhile)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET status='running', started=?, progress=0, stage='starting',"
                " attempts=attempts+1, error=NULL WHERE id=? AND status='queued'",
                (time.time(), job_id),
            )
            if cur.rowcount != 1:
                return None
        return self.get(job_id)

    def set_progress(self, job_id: str, progress: float, stage: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET progress=?, stage=? WHERE id=? AND status='running'",
                (round(min(max(progress, 0.0), 1.0), 4), stage, job_id),
            )

    def finish(self, job_id: str, files: list[str], summary: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='done', finished=?, progress=1, stage='done', files=?, summary=?"
                " WHERE id=?",
                (time.time(), json.dumps(files), json.dumps(summary), job_id),
            )

    def fail(self, job_id: str, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='failed', finished=?, stage='failed', error=? WHERE id=?",
                (time.time(), error, job_id),
            )

    def requeue_unfinished(self) -> list[str]:
        """At start-up: jobs left running by a stopped server go back to the queue. Returns every
        queued job id, oldest first."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='queued', started=NULL, progress=0,"
                " stage='queued again after a restart' WHERE status='running'"
            )
        return self.queued_ids()

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not running, with its files. False when it is running."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM jobs WHERE id=? AND status!='running'", (job_id,))
            if cur.rowcount != 1:
                return False
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return True


# -- running jobs --------------------------------------------------------------------------------
ProgressFn = Callable[[float, str], None]


class Runner:
    """Runs one job with a shared `Gesticulator` (loaded on first use, once)."""

    def __init__(self, load: Callable[[], Any]):
        self._load = load
        self._g: Any = None
        self.load_error: str | None = None
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self.state = "not loaded"  # not loaded | loading | ready | error
        self.load_seconds: float | None = None

    def gesticulator(self) -> Any:
        with self._load_lock:
            if self._g is None:
                if self.load_error is not None:
                    raise GesticulatorError(f"the models failed to load: {self.load_error}")
                self.state = "loading"
                t0 = time.perf_counter()
                try:
                    self._g = self._load()
                except Exception as e:
                    self.state = "error"
                    self.load_error = str(e) or type(e).__name__
                    raise
                self.load_seconds = round(time.perf_counter() - t0, 3)
                self.state = "ready"
            return self._g

    def run(self, job: Job, input_dir: Path, out_dir: Path, progress: ProgressFn) -> dict[str, Any]:
        from gesticulator.api import check_formats
        from gesticulator.io.atomic import write_text_atomic

        opts = job.options
        formats = check_formats(opts.get("formats") or "npz,bvh,glb,mp4")
        progress(0.02, "loading models")
        g = self.gesticulator()
        t0 = time.perf_counter()
        with self._model_lock:
            if job.kind == "script":
                progress(0.05, "speaking the script")
                result = g.speak(opts["script"], seed=int(opts.get("seed", 0)), density=opts.get("density"))
            else:
                progress(0.05, "transcribing and animating")
                script = None
                if opts.get("script"):
                    # as a file: `animate` reads a short text that names an existing file as that
                    # file, and a client must never make the server read its files
                    script = write_text_atomic(input_dir / "script.txt", opts["script"])
                result = g.animate(
                    input_dir / str(job.input_name), script=script, seed=int(opts.get("seed", 0)),
                    density=opts.get("density"),
                )  # fmt: skip
        animate_seconds = time.perf_counter() - t0
        progress(0.5, "writing " + ", ".join(formats))

        def frames(done: int, total: int) -> None:
            progress(0.5 + 0.5 * done / max(total, 1), f"rendering preview: frame {done}/{total}")

        if out_dir.exists():  # a re-run after a crash: start from an empty folder
            shutil.rmtree(out_dir)
        paths = result.save(out_dir, formats, progress=frames if "mp4" in formats else None)
        tl = result.timeline
        return {
            "files": sorted(p.name for p in paths.values()),
            "summary": {
                "duration": tl.inputs.duration,
                "words": len(tl.transcript.words),
                "transcript": tl.transcript.text,
                "gestures": [
                    {"gesture_id": e.gesture_id, "word": e.word, "apex": round(e.apex, 3)} for e in tl.placed
                ],
                "animate_seconds": round(animate_seconds, 3),
            },
        }


class JobQueue:
    """Worker threads fed from the store. `submit` wakes a worker; the store is the queue."""

    def __init__(self, store: JobStore, runner: Runner, *, workers: int = 1, max_queued: int = 16):
        if workers < 1:
            raise GesticulatorError(f"--workers must be at least 1, got {workers}")
        if max_queued < 1:
            raise GesticulatorError(f"the queue size must be at least 1, got {max_queued}")
        self.store = store
        self.runner = runner
        self.workers = workers
        self.max_queued = max_queued
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending: list[str] = []  # queued job ids in order; the store has the truth
        self.running: set[str] = set()

    def start(self, *, preload: bool = True) -> list[str]:
        """Queue again what a previous server left unfinished, start the workers and (with
        `preload`) load the models in the background now. Returns the re-queued ids."""
        requeued = self.store.requeue_unfinished()
        with self._wake:
            self._pending = list(requeued)
        self._stop.clear()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"gesticulator-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if preload:
            threading.Thread(target=self._preload, name="gesticulator-load", daemon=True).start()
        return requeued

    def _preload(self) -> None:
        try:
            self.runner.gesticulator()
        except Exception:  # noqa: BLE001 - reported by /v1/health and by every job
            pass

    def stop(self, timeout: float = 2.0) -> None:
        """Stop taking jobs. A job still running is left "running" in the store (it is queued
        again on the next start); worker threads are daemons and do not hold the process."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def submit(self, kind: str, options: dict[str, Any], *, job_id: str | None = None, input_name=None):
        """Store a queued job and wake a worker; None when the queue is full."""
        job = self.store.add(kind, options, job_id=job_id, input_name=input_name, max_queued=self.max_queued)
        if job is not None:
            with self._wake:
                self._pending.append(job.id)
                self._wake.notify()
        return job

    def _next(self) -> str | None:
        with self._wake:
            while not self._pending and not self._stop.is_set():
                self._wake.wait(0.5)
            if self._stop.is_set():
                return None
            return self._pending.pop(0)

    def _work(self) -> None:
        while True:
            job_id = self._next()
            if job_id is None:
                return
            job = self.store.claim(job_id)
            if job is None:  # deleted while queued
                continue
            self.running.add(job_id)
            try:
                self._run(job)
            finally:
                self.running.discard(job_id)

    def _run(self, job: Job) -> None:
        last = [0.0]

        def progress(fraction: float, stage: str) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.25 or fraction in (0.0, 1.0) or not stage.startswith("rendering"):
                last[0] = now
                self.store.set_progress(job.id, fraction, stage)

        try:
            out = self.runner.run(job, self.store.input_dir(job.id), self.store.output_dir(job.id), progress)
        except GesticulatorError as e:
            self.store.fail(job.id, str(e))
        except Exception as e:  # noqa: BLE001 - a bug of ours: the job fails, the server goes on
            detail = traceback.format_exception_only(type(e), e)[-1].strip()
            self.store.fail(job.id, f"internal error: {detail}")
        else:
            self.store.finish(job.id, out["files"], out["summary"])
