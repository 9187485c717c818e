"""The HTTP service (`gesticulator serve`): auth, limits, the SQLite job store surviving a restart,
and a real audio job end to end (FastAPI TestClient, the debug rhythm model; the slow test runs
the real command with uvicorn and kills it mid-job)."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from gesticulator.cli import app as cli_app  # noqa: E402
from gesticulator.errors import GesticulatorError  # noqa: E402
from gesticulator.io import load_npz  # noqa: E402
from gesticulator.resources import example  # noqa: E402
from gesticulator.service.app import ServiceConfig, create_app  # noqa: E402
from gesticulator.service.cli import is_loopback  # noqa: E402
from gesticulator.service.jobs import JobStore  # noqa: E402

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HELLO = example("hello_demo.wav")


def wav_bytes(seconds: float, sr: int = 16000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    pcm = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def no_model():
    raise AssertionError("this test must not load models")


def make_client(tmp_path, *, load=no_model, start_workers=False, **cfg) -> TestClient:
    config = ServiceConfig(data_dir=tmp_path / "data", token=cfg.pop("token", TOKEN), **cfg)
    return TestClient(create_app(config, load=load, start_workers=start_workers, preload=False))


def wait_done(client: TestClient, job_id: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


# -- no models needed ------------------------------------------------------------------------------
def test_auth_is_required(tmp_path):
    with make_client(tmp_path) as c:
        assert c.get("/v1/health").json()["auth"] is True  # open: liveness only
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = c.post("/v1/jobs", json={"script": "Hello there."}, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in r.json()["detail"]
        assert c.get("/v1/jobs", headers={}).status_code == 401
        assert c.get("/v1/jobs/x/files/motion.npz").status_code == 401
        r = c.post("/v1/jobs", json={"script": "Hello there."}, headers=AUTH)
        assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        assert c.get("/openapi.json").json()["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
        docs = c.get("/docs")  # Swagger UI from the package's own files, no CDN
        assert docs.status_code == 200 and "cdn" not in docs.text.lower()
        assert c.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_limits_and_bad_input(tmp_path):
    with make_client(tmp_path, max_upload_mb=0.1, max_audio_seconds=2.0, max_script_chars=50) as c:
        big = wav_bytes(4.3)  # 137 kB > 0.1 MB
        r = c.post("/v1/jobs", files={"audio": ("big.wav", big, "audio/wav")}, headers=AUTH)
        assert r.status_code == 413 and "upload too large" in r.json()["detail"]
        assert "0.1 MB" in r.json()["detail"]

        def streamed():  # no Content-Length: refused while it streams in
            yield b'--b\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
            for _ in range(4):
                yield b"x" * 60_000

        r = c.post(
            "/v1/jobs",
            content=streamed(),
            headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 413
        r = c.post("/v1/jobs", files={"audio": ("long.wav", wav_bytes(3.0))}, headers=AUTH)
        assert r.status_code == 422 and "audio too long: 3.0 s" in r.json()["detail"]
        r = c.post("/v1/jobs", files={"audio": ("x.wav", b"this is no audio")}, headers=AUTH)
        assert r.status_code == 422 and "cannot read the upload as audio" in r.json()["detail"]
        assert str(tmp_path) not in r.json()["detail"]  # no server paths in messages
        r = c.post("/v1/jobs", json={"script": "word " * 20}, headers=AUTH)
        assert r.status_code == 422 and "script too long" in r.json()["detail"]
        for body, msg in (
            ({}, "nothing to animate"),
            ({"script": "Hi.", "density": "huge"}, "density must be one of"),
            ({"script": "Hi.", "formats": "npz,fbx"}, "unknown output format 'fbx'"),
            ({"script": "Hi.", "seed": "x"}, "seed must be an integer"),
            ({"script": "Hi.", "colour": "red"}, "unknown field(s): colour"),
        ):
            r = c.post("/v1/jobs", json=body, headers=AUTH)
            assert r.status_code == 422 and msg in r.json()["detail"], (body, r.json())
        r = c.post("/v1/jobs", data={"script": "Hi.", "seed": "4", "formats": "npz"}, headers=AUTH)
        assert r.status_code == 202  # a plain form works too
        job = c.get(f"/v1/jobs/{r.json()['id']}", headers=AUTH).json()
        assert job["options"] == {"seed": 4, "density": "normal", "formats": ["npz"], "script": "Hi."}
        assert job["status"] == "queued" and job["queue_position"] == 1
        r = c.get(f"/v1/jobs/{job['id']}/files/motion.npz", headers=AUTH)
        assert r.status_code == 409 and "is queued" in r.json()["detail"]
        assert c.get(f"/v1/jobs/{job['id']}/files/secret.txt", headers=AUTH).status_code == 404
        assert c.get("/v1/jobs/nope", headers=AUTH).status_code == 404
        assert not any((tmp_path / "data" / "jobs").iterdir())  # refused uploads leave no files
        assert c.delete(f"/v1/jobs/{job['id']}", headers=AUTH).status_code == 204
        assert c.get(f"/v1/jobs/{job['id']}", headers=AUTH).status_code == 404
        assert not any((tmp_path / "data" / "jobs").iterdir())


def test_queue_full_answers_429(tmp_path):
    with make_client(tmp_path, queue_size=2) as c:
        for _ in range(2):
            assert c.post("/v1/jobs", json={"script": "Hi."}, headers=AUTH).status_code == 202
        r = c.post("/v1/jobs", json={"script": "Hi."}, headers=AUTH)
        assert r.status_code == 429 and r.headers["retry-after"] and "queue is full" in r.json()["detail"]
        r = c.post("/v1/jobs", files={"audio": ("a.wav", wav_bytes(1.0))}, headers=AUTH)
        assert r.status_code == 429
        assert not any((tmp_path / "data" / "jobs").iterdir())  # the refused upload is gone


def test_refuses_public_address_without_token(tmp_path, monkeypatch):
    monkeypatch.delenv("GESTICULATOR_TOKEN", raising=False)
    r = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path)])
    assert r.exit_code != 0
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "refusing to serve on 0.0.0.0 without a token" in lines[0]
    assert "GESTICULATOR_TOKEN" in lines[0]
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org") and not is_loopback("10.1.2.3")


def test_script_text_is_never_read_as_a_server_path(tmp_path):
    seen = {}

    class Spy:
        def animate(self, audio, *, script, seed, density):
            seen["script"] = script
            raise GesticulatorError("stop here")

    with make_client(tmp_path, load=Spy, start_workers=True) as c:
        secret = tmp_path / "secret.txt"
        secret.write_text("server secret")
        r = c.post(
            "/v1/jobs", files={"audio": ("a.wav", wav_bytes(1.0))}, data={"script": str(secret)}, headers=AUTH
        )
        job = wait_done(c, r.json()["id"], timeout=20)
    assert job["status"] == "failed" and job["error"] == "stop here"
    assert isinstance(seen["script"], Path) and seen["script"].read_text() == str(secret)


def test_a_model_load_failure_fails_jobs_with_its_reason(tmp_path):
    def broken():
        raise GesticulatorError("checkpoint x was trained on motion representation v1", "retrain it")

    with make_client(tmp_path, load=broken, start_workers=True) as c:
        ids = [c.post("/v1/jobs", json={"script": "Hi."}, headers=AUTH).json()["id"] for _ in range(2)]
        jobs = [wait_done(c, i, timeout=20) for i in ids]
        health = c.get("/v1/health").json()
    assert [j["status"] for j in jobs] == ["failed", "failed"]
    assert "trained on motion representation v1" in jobs[0]["error"]
    assert jobs[1]["error"].startswith("the models failed to load: checkpoint x")  # not retried per job
    assert health["models"] == "error" and "representation v1" in health["models_error"]


# -- with models -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gesticulator(tmp_path_factory):
    from gesticulator.api import Gesticulator
    from tests.test_align import debug_rhythm_model

    with pytest.MonkeyPatch.context() as mp:  # never the real user library
        mp.setenv("GESTICULATOR_LIBRARY", str(tmp_path_factory.mktemp("user_library")))
        return Gesticulator.load(debug_rhythm_model())


def test_audio_job_end_to_end(tmp_path, gesticulator):
    loads = []

    def load():
        loads.append(1)
        return gesticulator

    with make_client(tmp_path, load=load, start_workers=True, workers=2) as c:
        with open(HELLO, "rb") as fh:
            r = c.post(
                "/v1/jobs", files={"audio": ("hello.wav", fh, "audio/wav")},
                data={"seed": "0", "formats": "npz,glb", "script": "Hello everyone! Today I have three big ideas for you."},
                headers=AUTH,
            )  # fmt: skip
        assert r.status_code == 202, r.text
        job = wait_done(c, r.json()["id"])
        assert job["status"] == "done", job
        assert set(job["files"]) == {"motion.npz", "motion.glb", "timeline.json"}
        assert job["progress"] == 1 and job["summary"]["duration"] == pytest.approx(4.281, abs=0.01)
        assert "count_three" in [g["gesture_id"] for g in job["summary"]["gestures"]]
        r = c.get(job["files"]["motion.npz"], headers=AUTH)
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        path = tmp_path / "motion.npz"
        path.write_bytes(r.content)
        motion = load_npz(path)
        assert motion.num_frames == int(np.ceil(4.281 * 30)) and motion.poses.shape[1] == 165
        r = c.get(job["files"]["timeline.json"], headers=AUTH)
        assert r.json()["inputs"]["transcript_from"] == "script+asr"
        assert c.get(job["files"]["motion.glb"], headers=AUTH).content[:4] == b"glTF"
        r = c.get(f"/v1/jobs/{job['id']}/files/preview.mp4", headers=AUTH)
        assert r.status_code == 404 and "made no preview.mp4" in r.json()["detail"]
        assert c.get("/v1/health").json()["models"] == "ready"
    assert loads == [1]  # loaded once


def test_restart_finishes_queued_and_interrupted_jobs(tmp_path, gesticulator):
    # A server takes two jobs and stops before running them; one was even "running" (a crash).
    with make_client(tmp_path) as c:
        ids = []
        for text in ("Hello everyone.", "I have three big ideas."):
            r = c.post("/v1/jobs", json={"script": text, "formats": ["npz"]}, headers=AUTH)
            assert r.status_code == 202
            ids.append(r.json()["id"])
    store = JobStore(tmp_path / "data")
    assert store.claim(ids[0]).status == "running"  # as if the server died mid-job
    store.close()
    with make_client(tmp_path, load=lambda: gesticulator, start_workers=True) as c:
        jobs = [wait_done(c, i) for i in ids]
        assert [j["status"] for j in jobs] == ["done", "done"], jobs
        assert jobs[0]["attempts"] == 2 and jobs[1]["attempts"] == 1
        for j in jobs:
            assert set(j["files"]) == {"motion.npz", "speech.wav", "speech.json", "timeline.json"}
            r = c.get(j["files"]["motion.npz"], headers=AUTH)
            assert r.status_code == 200
        assert jobs[1]["summary"]["transcript"] == "I have three big ideas."


# -- the real command: uvicorn, a kill -9 mid-job, a restart ----------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_server_survives_kill(tmp_path):
    import httpx

    from tests.test_align import debug_rhythm_model

    port = _free_port()
    env = {**os.environ, "GESTICULATOR_TOKEN": TOKEN, "GESTICULATOR_LIBRARY": str(tmp_path / "lib")}
    cmd = [
        sys.executable, "-m", "gesticulator.cli", "serve", "--port", str(port), "--data", str(tmp_path / "data"),
        "--model", str(debug_rhythm_model()),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(300):
            try:
                if httpx.get(f"{base}/v1/health").status_code == 200:
                    return proc
            except httpx.TransportError:
                time.sleep(0.2)
        proc.kill()
        raise AssertionError(proc.stderr.read().decode())

    proc = start()
    try:
        with open(HELLO, "rb") as fh:
            r = httpx.post(
                f"{base}/v1/jobs",
                files={"audio": ("hello.wav", fh)},
                data={"formats": "npz,mp4"},
                headers=AUTH,
            )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert httpx.post(f"{base}/v1/jobs", json={"script": "Hi."}).status_code == 401
        for _ in range(100):
            if httpx.get(f"{base}/v1/jobs/{job_id}", headers=AUTH).json()["status"] == "running":
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-job: it is queued again on the next start
        proc.wait()
    proc = start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=AUTH).json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        assert job["status"] == "done" and job["attempts"] == 2, job
        r = httpx.get(f"{base}{job['files']['motion.npz']}", headers=AUTH)
        path = Path(tmp_path / "m.npz")
        path.write_bytes(r.content)
        assert load_npz(path).num_frames == int(np.ceil(4.281 * 30))
        assert httpx.get(f"{base}{job['files']['preview.mp4']}", headers=AUTH).content[4:8] == b"ftyp"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
