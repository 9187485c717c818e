"""Text on frames: view labels (once per clip), a time counter and a caption line (per frame).

Uses Pillow's bundled FreeType font (`ImageFont.load_default(size)`), so no system fonts are
needed and frames look the same on every machine. Per-frame text is rasterised once per distinct
string (or character, for the counter) into a cached coverage mask and blended with numpy, so a
caption that stays up for many frames costs one small blend per frame.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[float, float, float]


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, int(size)))


def label_size(height: int) -> int:
    """Font size of labels and the time counter for a frame `height` pixels tall."""
    return max(9, round(height * 0.024))


def caption_band(height: int) -> int:
    """Rows at the bottom of the frame kept for the caption."""
    return max(12, round(height * 0.085))


def label_band(height: int) -> int:
    """Rows at the top of the frame kept for labels and the time counter."""
    return max(4, round(height * 0.06))


@lru_cache(maxsize=1024)
def _mask(text: str, size: int, stroke: int = 0) -> tuple[np.ndarray, int, int]:
    """Coverage mask (h, w) float32 of `text`, and the offset of its top-left from the text origin."""
    f = font(size)
    left, top, right, bottom = f.getbbox(text, stroke_width=stroke)
    w, h = max(1, right - left), max(1, bottom - top)
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((-left, -top), text, font=f, fill=255, stroke_width=stroke, stroke_fill=255)
    mask = np.asarray(img, dtype=np.float32) / 255.0
    mask.setflags(write=False)
    return mask, left, top


def _blend(
    img: np.ndarray, mask: np.ndarray, x: int, y: int, color: np.ndarray, opacity: float = 1.0
) -> None:
    """Blend `color` into `img` (float or uint8, H x W x 3) through `mask` placed at (x, y)."""
    h, w = img.shape[:2]
    mh, mw = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + mw, w), min(y + mh, h)
    if x0 >= x1 or y0 >= y1:
        return
    a = mask[y0 - y : y1 - y, x0 - x : x1 - x, None] * opacity
    region = img[y0:y1, x0:x1]
    if region.dtype == np.uint8:
        f = region.astype(np.float32)
        region[:] = (f + (color * 255.0 - f) * a + 0.5).astype(np.uint8)
    else:
        region += (color - region) * a


def text_width(text: str, size: int) -> float:
    return font(size).getlength(text)


def draw_labels(
    img: np.ndarray,
    labels: list[tuple[float, str]],
    color: RGB,
    left_color: RGB,
    right_color: RGB,
    legend_right: float,
) -> np.ndarray:
    """Panel titles at the top of each view and a left/right colour legend (float image, once per clip)."""
    h = img.shape[0]
    size = label_size(h)
    y = max(1, (label_band(h) - size) // 2)
    col = np.array(color, np.float32)
    for x, text in labels:
        mask, dx, dy = _mask(text, size)
        _blend(img, mask, round(x) + dx, y + dy, col, 0.75)
    # Legend ending at `legend_right`: which colour is the figure's left and which its right.
    x = legend_right
    for text, c in (("right", right_color), ("left", left_color)):
        c = np.array(c, np.float32)
        mask, dx, dy = _mask(text, size)
        x -= text_width(text, size)
        _blend(img, mask, round(x) + dx, y + dy, c)
        dot = _disc(size * 0.27)
        x -= dot.shape[1] + size * 0.25
        _blend(img, dot, round(x), round(y + size * 0.5 - dot.shape[0] / 2), c)
        x -= size * 0.9
    return img


def _disc(radius: float) -> np.ndarray:
    """Anti-aliased filled circle mask (the legend's colour dots)."""
    n = int(np.ceil(2 * radius + 2))
    c = (np.arange(n, dtype=np.float32) + 0.5) - n / 2
    d = np.hypot(c[:, None], c[None, :])
    return np.clip(radius + 0.5 - d, 0.0, 1.0)


def format_time(t: float) -> str:
    minutes, seconds = divmod(max(0.0, t), 60.0)
    return f"{int(minutes)}:{seconds:05.2f}"


def draw_text(
    frame: np.ndarray, *, time_s: float | None = None, caption: str | None = None, color: RGB
) -> np.ndarray:
    """Time counter (top right) and caption (bottom, centred on a dark band), in place on uint8 RGB."""
    h, w = frame.shape[:2]
    if time_s is not None:
        size = label_size(h)
        text = format_time(time_s)
        col = np.array(color, np.float32)
        # Fixed-width cells per digit so the counter does not wobble as digits change.
        cell = max(text_width(d, size) for d in "0123456789")
        widths = [cell if ch.isdigit() else text_width(ch, size) for ch in text]
        x = w - size * 0.6 - sum(widths)
        y = max(1, (label_band(h) - size) // 2)
        for ch, cw in zip(text, widths, strict=True):
            mask, dx, dy = _mask(ch, size)
            _blend(frame, mask, round(x + (cw - text_width(ch, size)) / 2) + dx, y + dy, col)
            x += cw
    if caption:
        caption = " ".join(str(caption).split())  # one line, whatever came in
    if caption:
        band = caption_band(h)
        # Darken the band so white text reads over the floor grid.
        frame[h - band :] = (frame[h - band :] >> 1) + (frame[h - band :] >> 3)
        size, max_w = max(10, round(h * 0.042)), w * 0.94
        while text_width(caption, size) > max_w and size > 10:
            size -= 1
        if text_width(caption, size) > max_w:
            while caption and text_width(caption + "…", size) > max_w:
                caption = caption[:-1]
            caption += "…"
        stroke = max(1, size // 12)
        outline, ox, oy = _mask(caption, size, stroke)
        fill, fx, fy = _mask(caption, size)
        # Centre the text box in the band; the fill mask sits `stroke` pixels inside the outline.
        x = round((w - outline.shape[1]) / 2) - ox
        # Place the baseline from a reference string, so words with and without descenders or
        # capitals sit on the same line.
        _, top, _, bottom = font(size).getbbox("Hg")
        y = h - band + round((band - (bottom - top)) / 2) - top
        _blend(frame, outline, x + ox, y + oy, np.array((0.08, 0.08, 0.09), np.float32), 0.9)
        _blend(frame, fill, x + fx, y + fy, np.ones(3, np.float32))
    return frame
