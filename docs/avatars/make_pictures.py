"""Make the pictures in docs/avatars.md, for real, from examples/hello_demo.npz.

    .venv/bin/python docs/avatars/make_pictures.py [OUT_DIR]   (default: docs/avatars)

- blender_smplx.png: `gesticulator export --to fbx` (SMPL-X, the mannequin mesh from the GLB),
  re-imported in headless Blender and rendered (Workbench) at three frames;
- blender_rigs.png: the FBX of each shipped rig (`--rig mixamo|vrm|generic`) in Blender at one
  frame (the stand-in octahedron per bone that the FBX carries), the SMPL-X FBX beside them;
- threejs.png: the SMPL-X and rig GLBs in three.js (docs/avatars/threejs_example.html) in headless
  Chromium at the same moment.

Needs Blender (`make blender`, or GESTICULATOR_BLENDER) and chromium + chromedriver + selenium.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageDraw

from gesticulator.io import load_motion
from gesticulator.rigs import export_to_rig, load_rig
from gesticulator.rigs.blender import bvh_to_fbx, render_frames

REPO = Path(__file__).resolve().parents[2]
MOTION = REPO / "examples" / "hello_demo.npz"  # 130 frames at 30 fps: a wave, then open arms
RIGS = ("mixamo", "vrm", "generic")
STRIP_FRAMES = (30, 85, 105)  # waving, both arms open, one hand out
RIG_FRAME = 85
PANEL = (220, 300)


def export(out: Path, rig: str | None) -> Path:
    """SMPL-X through `gesticulator export --to bvh,glb,fbx`; a rig through the same calls that
    `export --rig` makes (the rig's BVH and GLB, then Blender turns the BVH, stood up by the
    rig's own axes, into the FBX)."""
    folder = out / (rig or "smplx")
    if rig is None:
        cli = str(Path(sys.executable).with_name("gesticulator"))
        cmd = [cli, "export", str(MOTION), "--to", "bvh,glb,fbx", "-o", str(folder), "--name", "hello"]
        subprocess.run(cmd, check=True, capture_output=True)
        return folder
    rig_ = load_rig(rig)
    export_to_rig(load_motion(MOTION), rig_, folder, ("bvh", "glb"), name="hello")
    bvh_to_fbx(folder / "hello.bvh", folder / "hello.fbx", up=rig_.axes[1], forward=rig_.axes[2])
    return folder


def sheet(panels: list[Path], labels: list[str], target: Path) -> None:
    """Panels side by side with a caption under each, as a small palette PNG."""
    images = [Image.open(p).convert("RGB") for p in panels]
    w, h = images[0].size
    out = Image.new("RGB", (w * len(images), h + 22), (235, 235, 235))
    draw = ImageDraw.Draw(out)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        out.paste(image, (i * w, 0))
        left, _, right, _ = draw.textbbox((0, 0), label)
        draw.text((i * w + (w - (right - left)) / 2, h + 5), label, fill=(40, 40, 40))
    out.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def threejs_picture(folders: dict[str, Path], target: Path, seconds: float) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    class Handler(http.server.SimpleHTTPRequestHandler):
        """The repository (page, vendored three.js) and, under /files/, the exported GLBs."""

        def translate_path(self, path: str) -> str:
            if path.startswith("/files/"):
                return str(files_root / path.split("?")[0][len("/files/") :])
            return super().translate_path(path)

        def log_message(self, *args) -> None:
            pass

    files_root = next(iter(folders.values())).parent
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(REPO))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    query = "&".join(f"glb=/files/{f.name}/hello.glb" for f in folders.values())
    url = f"http://127.0.0.1:{server.server_port}/docs/avatars/threejs_example.html?{query}&t={seconds}"
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=880,330",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--hide-scrollbars"):  # fmt: skip
        opts.add_argument(arg)
    # chromedriver from PATH: without it selenium would try to download one
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        # the page's own size (headless windows lose some height to the window frame)
        metrics = {"width": 880, "height": 330, "deviceScaleFactor": 1, "mobile": False}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        browser.get(url)
        deadline = time.monotonic() + 60
        while not browser.execute_script(
            "return window.example && (window.example.ready || window.example.error)"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the three.js page did not load")
            time.sleep(0.2)
        error = browser.execute_script("return window.example.error")
        if error:
            raise RuntimeError(error)
        time.sleep(1.0)  # a few rendered frames
        png = target.with_suffix(".raw.png")
        browser.save_screenshot(str(png))
    finally:
        browser.quit()
        server.shutdown()
    Image.open(png).convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(
        target, optimize=True
    )
    png.unlink()


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "avatars"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gesticulator-pictures-") as tmp:
        out = Path(tmp)
        folders = {"SMPL-X": export(out, None)} | {rig: export(out, rig) for rig in RIGS}
        strip = [out / f"smplx_{f}.png" for f in STRIP_FRAMES]
        render_frames(folders["SMPL-X"] / "hello.fbx", STRIP_FRAMES, strip, size=PANEL)
        sheet(strip, [f"frame {f}" for f in STRIP_FRAMES], target / "blender_smplx.png")
        panels = []
        for name, folder in folders.items():
            panels.append(out / f"{name}.png")
            render_frames(folder / "hello.fbx", [RIG_FRAME], [panels[-1]], size=PANEL)
        sheet(panels, [f"{name} (FBX)" for name in folders], target / "blender_rigs.png")
        threejs_picture(folders, target / "threejs.png", RIG_FRAME / 30.0)
    for png in sorted(target.glob("*.png")):
        print(f"{png}: {png.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
