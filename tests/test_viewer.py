"""`gesticulator view`: the local server (files, Range requests, nothing outside the output) and
the page in a real headless Chromium (selenium): the figure renders, the gestures appear in the
strip, clicking one seeks the audio. The browser test skips when chromium/chromedriver are absent.

Regenerate docs/viewer.png from any output folder:
    python -m tests.test_viewer OUTDIR docs/viewer.png
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gesticulator.cli import app as cli_app
from gesticulator.errors import InputFileError
from gesticulator.resources import example
from gesticulator.viewer.server import STATIC_DIR, find_outputs, serve_in_thread

SCRIPT = "Hello everyone! Today I have three big ideas for you."
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def outdir(tmp_path_factory) -> Path:
    """A real `gesticulator animate` output folder (debug rhythm model, no MP4 to save time)."""
    from tests.test_align import debug_rhythm_model

    base = tmp_path_factory.mktemp("view")
    script = base / "script.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    out = base / "hello"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GESTICULATOR_LIBRARY", str(base / "user_library"))
        r = CliRunner().invoke(
            cli_app,
            ["animate", str(example("hello_demo.wav")), "-o", str(out), "--script", str(script),
             "--model", str(debug_rhythm_model()), "--formats", "npz,glb"],
        )  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# -- the server ------------------------------------------------------------------------------------
def test_find_outputs(outdir, tmp_path):
    data = find_outputs(outdir)
    assert data.glb.name == "motion.glb" and data.timeline == outdir.resolve() / "timeline.json"
    assert data.audio == example("hello_demo.wav").resolve()  # the timeline's (absolute) audio
    m = data.manifest()
    assert (m["audio"], m["timeline"], m["title"]) == ("/data/audio.wav", "/data/timeline.json", "hello")
    # an export folder: a named GLB, the audio beside it, no timeline
    shutil.copy(outdir / "motion.glb", tmp_path / "take.glb")
    shutil.copy(example("hello_demo.wav"), tmp_path / "take.wav")
    data = find_outputs(tmp_path)
    assert (data.glb.name, data.audio.name, data.title) == ("take.glb", "take.wav", "take")
    assert data.timeline is None
    assert find_outputs(tmp_path / "take.glb").glb.name == "take.glb"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no .glb in"):
        find_outputs(tmp_path / "empty")
    with pytest.raises(InputFileError, match="output folder not found"):
        find_outputs(tmp_path / "missing")
    r = CliRunner().invoke(cli_app, ["view", str(tmp_path / "missing"), "--no-browser"])
    assert r.exit_code == 1 and "error: output folder not found" in r.output


def test_server_serves_only_the_output(outdir):
    server, url = serve_in_thread(find_outputs(outdir))
    try:
        status, headers, body = get(url)
        assert status == 200 and b'<canvas id="canvas">' in body and "text/html" in headers["Content-Type"]
        status, headers, body = get(url + "static/vendor/three/three.module.min.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        manifest = json.loads(get(url + "data/manifest.json")[2])
        status, headers, body = get(url + manifest["glb"][1:])
        assert status == 200 and body[:4] == b"glTF" and headers["Content-Type"] == "model/gltf-binary"
        timeline = json.loads(get(url + "data/timeline.json")[2])
        assert timeline["events"] and timeline["transcript"]["words"]
        size = example("hello_demo.wav").stat().st_size
        status, headers, body = get(url + "data/audio.wav", {"Range": "bytes=100-199"})
        assert status == 206 and len(body) == 100 and headers["Content-Range"] == f"bytes 100-199/{size}"
        status, headers, body = get(url + "data/audio.wav", {"Range": "bytes=-10"})
        assert status == 206 and body == example("hello_demo.wav").read_bytes()[-10:]
        assert get(url + "data/audio.wav", {"Range": f"bytes={size}-"})[0] == 416
        for path in ("data/motion.npz", "data/../motion.npz", "static/../server.py", "static/%2e%2e/server.py",
                     "data/audio.mp3", "etc/passwd"):  # fmt: skip
            assert get(url + path)[0] == 404, path
    finally:
        server.shutdown()
        server.server_close()


def test_static_assets_are_vendored_and_shipped():
    three = STATIC_DIR / "vendor" / "three"
    for name in ("three.module.min.js", "three.core.min.js", "LICENSE", "addons/loaders/GLTFLoader.js"):
        assert (three / name).is_file(), name
    assert "MIT" in (three / "LICENSE").read_text()
    size = sum(p.stat().st_size for p in STATIC_DIR.rglob("*") if p.is_file())
    assert size < 1.5e6, size  # keep the wheel small
    page = (STATIC_DIR / "index.html").read_text() + (STATIC_DIR / "viewer.js").read_text()
    assert "http://" not in page and "https://" not in page  # no CDN
    # the repository's .gitignore (and so hatch) drops build/ folders: none among the assets
    assert not [p for p in STATIC_DIR.rglob("build") if p.is_dir()]


# -- the page in a real browser --------------------------------------------------------------------
def _browser() -> tuple[str, str]:
    pytest.importorskip("selenium")
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    return binary, driver


def open_browser(binary: str, driver: str, width: int = 1280, height: int = 860):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--mute-audio",
        "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars",
    ):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def wait_for(browser, script: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def middle(png: bytes):
    """The middle half (left to right) of a canvas screenshot, where the figure stands (the
    caption sits at the top left), as an int RGB array."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    w = rgb.shape[1]
    return rgb[:, w // 4 : 3 * w // 4]


def wood_fraction(png: bytes) -> float:
    """Share of pixels in the mannequin's wood colour (the background and floor are grey/beige)."""
    rgb = middle(png)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return float(((r - b > 50) & (r > g) & (g > b)).mean())


def image_difference(a: bytes, b: bytes) -> float:
    """Mean absolute RGB difference of the middles of two same-size canvas screenshots (0..255)."""
    return float(abs(middle(a) - middle(b)).mean())


def capture(browser, url: str, png: Path | None = None) -> dict:
    """Load the page, check it, click the last gesture, show its apex; returns what was seen."""
    from selenium.webdriver.common.by import By

    browser.get(url)
    wait_for(browser, "return window.viewer && (window.viewer.ready || window.viewer.error)")
    state = browser.execute_script("return window.viewer")
    assert state["error"] is None, state["error"]
    canvas = browser.find_element(By.ID, "canvas")
    first = canvas.screenshot_as_png
    figure = wood_fraction(first)
    play = browser.find_element(By.ID, "play")
    play.click()  # plays: the audio clock runs
    wait_for(browser, "return document.getElementById('audio').currentTime > 0.3", timeout=20)
    play.click()
    wait_for(browser, "return document.getElementById('audio').paused", timeout=5)
    events = browser.find_elements(By.CSS_SELECTOR, "#events .event")
    seen = {
        "state": state,
        "figure": figure,
        "events": [e.get_attribute("data-gesture") for e in events],
        "labels": [e.text for e in events],
        "words": [w.text for w in browser.find_elements(By.CSS_SELECTOR, "#words .word")],
    }
    if events:
        target = events[-1]
        target.click()
        seen["clicked_start"] = float(target.get_attribute("data-start"))
        seen["audio_time"] = browser.execute_script("return document.getElementById('audio').currentTime")
        seen["details"] = browser.find_element(By.ID, "details").text
        # for the picture: the clicked gesture at its apex
        index = int(target.get_attribute("data-index"))
        apex = browser.execute_script(
            "return fetch('/data/timeline.json').then(r => r.json()).then(t => t.events[arguments[0]].apex)",
            index,
        )
        browser.execute_script("document.getElementById('audio').currentTime = arguments[0]", apex)
        frames = browser.execute_script("return window.viewer.frames")
        wait_for(browser, f"return window.viewer.frames > {frames + 3}")
        seen["pose_change"] = image_difference(first, canvas.screenshot_as_png)
    seen["resources"] = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    if png is not None:
        png.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(png))
    return seen


def test_page_in_headless_chromium(request, tmp_path):
    binary, driver = _browser()  # skip before making the output folder
    outdir = request.getfixturevalue("outdir")
    server, url = serve_in_thread(find_outputs(outdir))
    browser = open_browser(binary, driver)
    try:
        seen = capture(browser, url, tmp_path / "viewer.png")
        logs = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    finally:
        browser.quit()
        server.shutdown()
        server.server_close()
    timeline = json.loads((outdir / "timeline.json").read_text())
    state = seen["state"]
    assert state["ready"] and state["meshes"] >= 1 and state["bones"] == 54
    assert state["duration"] == pytest.approx(timeline["inputs"]["duration"], abs=0.05)
    assert seen["figure"] > 0.01, f"the mannequin is not visible ({seen['figure']:.4f} of the canvas)"
    ids = [e["gesture_id"] for e in timeline["events"]]
    assert ids and seen["events"] == ids and seen["labels"] == ids
    assert "count_three" in ids
    assert seen["words"] == SCRIPT.split()
    assert seen["clicked_start"] > 0.5  # the click moved the audio to the gesture's start
    assert seen["audio_time"] == pytest.approx(seen["clicked_start"], abs=0.02)
    assert seen["details"].startswith(ids[-1])
    assert seen["pose_change"] > 0.2, seen["pose_change"]  # the figure moved with the audio time
    assert all(r.startswith(url) for r in seen["resources"]), seen["resources"]  # offline: nothing remote
    assert not logs, logs
    assert (tmp_path / "viewer.png").stat().st_size > 10_000
    if os.environ.get("GESTICULATOR_VIEWER_SCREENSHOT"):
        shutil.copy(tmp_path / "viewer.png", os.environ["GESTICULATOR_VIEWER_SCREENSHOT"])


if __name__ == "__main__":  # python -m tests.test_viewer OUTDIR PNG
    folder, png = Path(sys.argv[1]), Path(sys.argv[2])
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    srv, page = serve_in_thread(find_outputs(folder))
    b = open_browser(binary, shutil.which("chromedriver"))
    try:
        result = capture(b, page, png)
    finally:
        b.quit()
        srv.shutdown()
    print(json.dumps({k: v for k, v in result.items() if k != "resources"}, indent=1))
