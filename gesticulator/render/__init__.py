"""Preview rendering: a shaded stick figure in front and side views, as PNG stills and MP4 video.

`render_preview(motion, "out.mp4", audio="speech.wav")` writes an H.264 preview with the speech
muxed in; `save_still(motion, frame, "f.png")` one frame; `render_frame(positions)` returns the
pixels of one pose for tests and custom pipelines.
"""

from gesticulator.render.stick import DEFAULT_STYLE, StickFigureRenderer, Style, render_frame
from gesticulator.render.video import iter_frames, render_preview, save_still

__all__ = [
    "DEFAULT_STYLE",
    "StickFigureRenderer",
    "Style",
    "iter_frames",
    "render_frame",
    "render_preview",
    "save_still",
]
