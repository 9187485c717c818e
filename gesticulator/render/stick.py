"""Shaded capsule ("stick") figure renderer: FK joint positions in, an RGB frame with two views out.

Each bone is drawn as a capsule (a cylinder with round caps), the head as a sphere with eye dots
and a nose so the facing direction reads at a glance. Capsules are rasterised analytically with
numpy: for every pixel in a bone's bounding box we take the distance d to the projected bone axis,
which gives the silhouette with exact anti-aliasing (coverage = r + 0.5 - d), a tube/sphere
surface normal for Lambert + specular shading, and a per-pixel depth. All capsules of a view are
evaluated in one flat batch (every (capsule, pixel) pair in the capsule's own box), the nearest
opaque sample per pixel wins a z-buffer, and the partly covered edge samples in front of it are
blended on top, so joints intersect cleanly and every edge is smooth. That keeps the numpy call
count per frame small and independent of the bone count, which is what makes it fast.

Views are orthographic with a slight downward tilt so the floor reads as a plane. The camera is
framed once per clip from the motion's bounding box (no per-frame reframing, so no jitter), and
the background (gradient, floor disc and grid, labels) is rendered once per clip and copied.

Coordinates: world is Y-up, +Z the body's forward, +X the body's left (SMPL-X). The front view
looks at the face (camera on +Z), so the figure's left limbs appear on the viewer's right; the side
view is taken from the figure's right (camera on -X), so forward points right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gesticulator.motion import skeleton as sk
from gesticulator.render import overlay

RGB = tuple[float, float, float]

# --- the figure ------------------------------------------------------------------------------
# Extra points appended after the 55 SMPL-X joints: the head sphere's centre, two eye dots on its
# surface, the two ends of the nose, and a fingertip beyond each finger's last joint (SMPL-X has
# no fingertip joint, so a drawn finger would otherwise stop a third short).
_J = sk.JOINT_INDEX
HEAD_CENTER = 55
EYE_L, EYE_R = 56, 57
NOSE_ROOT, NOSE_TIP = 58, 59
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
TIPS = {
    f"{side}_{f}": 60 + 5 * s + i for s, side in enumerate(("left", "right")) for i, f in enumerate(_FINGERS)
}
NUM_POINTS = 70

# Head geometry in the head joint's frame (metres, SMPL-X neutral proportions): the skull is a
# sphere a little above the head joint (which sits near the base of the skull).
HEAD_RADIUS = 0.1
HEAD_CENTER_OFFSET = (0.0, 0.045, 0.0)  # (left, up, forward): crown ~0.145 m above the head joint
EYE_RADIUS = 0.016
NOSE_RADIUS = 0.016
# Rest offset from the head joint to the mid-point of the eyes, (up, forward); used to recover
# the head's up/forward axes from joint positions alone (see `extended_points`).
_EYE_UP, _EYE_FWD = sk.FACE_OFFSETS_FROM_HEAD["left_eye"][1:]
FINGERTIP_EXTENSION = 0.8  # fingertip = last joint + this x the last phalanx

CENTER, LEFT, RIGHT, DARK = 0, 1, 2, 3  # colour slots


@dataclass(frozen=True)
class Capsule:
    """A bone drawn as a capsule between two points (a sphere when a == b)."""

    a: int  # point index (0..NUM_POINTS-1)
    b: int  # same as `a` for a sphere
    radius: float  # metres
    color: int  # CENTER / LEFT / RIGHT / DARK


def _side(name: str) -> int:
    return LEFT if name.startswith("left_") else RIGHT if name.startswith("right_") else CENTER


def _build_groups() -> dict[str, tuple[Capsule, ...]]:
    def cap(a: str | int, b: str | int, r: float, color: int | None = None) -> Capsule:
        ia = _J[a] if isinstance(a, str) else a
        ib = _J[b] if isinstance(b, str) else b
        name = b if isinstance(b, str) else a
        return Capsule(ia, ib, r, _side(str(name)) if color is None else color)

    # Groups are body parts: a capsule's dark rim is drawn only where no other capsule of its own
    # group overlaps it, so a part reads as one smooth piece while parts crossing each other
    # (an arm in front of the torso) stay outlined.
    groups: dict[str, list[Capsule]] = {
        # The torso is a chain of fat capsules; a hip bar and a chest bar give it width.
        "torso": [
            cap("left_hip", "right_hip", 0.08, CENTER),
            cap("pelvis", "spine1", 0.095), cap("spine1", "spine2", 0.10),
            cap("spine2", "spine3", 0.11), cap("left_collar", "right_collar", 0.085, CENTER),
            cap("left_collar", "left_shoulder", 0.058, CENTER), cap("right_collar", "right_shoulder", 0.058, CENTER),
            cap("spine3", "neck", 0.055),
        ],
        "head": [
            cap("neck", "head", 0.048), Capsule(HEAD_CENTER, HEAD_CENTER, HEAD_RADIUS, CENTER),
            Capsule(EYE_L, EYE_L, EYE_RADIUS, DARK), Capsule(EYE_R, EYE_R, EYE_RADIUS, DARK),
            Capsule(NOSE_ROOT, NOSE_TIP, NOSE_RADIUS, CENTER),
        ],
    }  # fmt: skip
    for side in ("left", "right"):
        groups[f"{side}_arm"] = [
            cap(f"{side}_shoulder", f"{side}_elbow", 0.045),
            cap(f"{side}_elbow", f"{side}_wrist", 0.037),
        ]
        groups[f"{side}_leg"] = [
            cap(f"{side}_hip", f"{side}_knee", 0.068),
            cap(f"{side}_knee", f"{side}_ankle", 0.052),
            cap(f"{side}_ankle", f"{side}_foot", 0.04),
        ]
        # Hands: palm rays from the wrist, a knuckle bar that fills the palm, then three
        # phalanges and a tip per finger. Thinner than the arm so they read as fingers.
        hand = [cap(f"{side}_index1", f"{side}_pinky1", 0.016), cap(f"{side}_wrist", f"{side}_wrist", 0.03)]
        for f in _FINGERS:
            hand.append(cap(f"{side}_wrist", f"{side}_{f}1", 0.018 if f != "thumb" else 0.015))
            hand.append(cap(f"{side}_{f}1", f"{side}_{f}2", 0.0105))
            hand.append(cap(f"{side}_{f}2", f"{side}_{f}3", 0.0095))
            hand.append(Capsule(_J[f"{side}_{f}3"], TIPS[f"{side}_{f}"], 0.0085, _side(side + "_")))
        groups[f"{side}_hand"] = hand
    return {k: tuple(v) for k, v in groups.items()}


GROUPS = _build_groups()


def extended_points(positions: np.ndarray) -> np.ndarray:
    """(..., 55, 3) joint positions -> (..., NUM_POINTS, 3) with head centre, eye dots, fingertips.

    Works from positions alone (no rotations), so `render_frame` can take any FK output: the
    head's axes come from the eye joints, which FK places at fixed offsets in the head frame.
    """
    p = np.asarray(positions, dtype=np.float64)
    out = np.empty(p.shape[:-2] + (NUM_POINTS, 3))
    out[..., :55, :] = p
    head, le, re = p[..., _J["head"], :], p[..., _J["left_eye"], :], p[..., _J["right_eye"], :]
    left = _unit(le - re)
    v = _unit(0.5 * (le + re) - head)  # = (up*_EYE_UP + fwd*_EYE_FWD) / norm, in the head frame
    w = np.cross(left, v)  # = (fwd*_EYE_UP - up*_EYE_FWD) / norm
    norm = math.hypot(_EYE_UP, _EYE_FWD)
    up = (_EYE_UP * v - _EYE_FWD * w) / norm
    fwd = (_EYE_FWD * v + _EYE_UP * w) / norm
    ox, oy, oz = HEAD_CENTER_OFFSET
    center = head + ox * left + oy * up + oz * fwd
    out[..., HEAD_CENTER, :] = center
    # Eye dots sit on the skull's surface (the SMPL-X eye joints are inside the sphere), mostly
    # sunk in: the cap that pokes out wins the depth test against the skull in the front view
    # but does not stick out of the head's outline in the side view.
    for idx, eye in ((EYE_L, le), (EYE_R, re)):
        direction = _unit(eye + 0.02 * fwd - center)
        out[..., idx, :] = center + direction * (HEAD_RADIUS - 0.75 * EYE_RADIUS)
    # A small nose shows where the head points in the side view.
    out[..., NOSE_ROOT, :] = center + (HEAD_RADIUS - 0.03) * fwd - 0.015 * up
    out[..., NOSE_TIP, :] = center + (HEAD_RADIUS + 0.008) * fwd - 0.03 * up
    for side in ("left", "right"):
        for f in _FINGERS:
            j2, j3 = p[..., _J[f"{side}_{f}2"], :], p[..., _J[f"{side}_{f}3"], :]
            out[..., TIPS[f"{side}_{f}"], :] = j3 + FINGERTIP_EXTENSION * (j3 - j2)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


# --- look ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """Colours (sRGB 0..1) and camera settings. The defaults are a dark studio look."""

    center: RGB = (0.86, 0.84, 0.80)  # torso, head: warm light grey
    left: RGB = (0.47, 0.68, 0.95)  # the figure's left limbs: blue
    right: RGB = (0.96, 0.62, 0.40)  # the figure's right limbs: orange
    dark: RGB = (0.12, 0.12, 0.14)  # eyes
    background_top: RGB = (0.215, 0.230, 0.260)
    background_bottom: RGB = (0.105, 0.110, 0.125)
    floor: RGB = (0.30, 0.32, 0.355)
    grid: RGB = (0.44, 0.46, 0.50)
    text: RGB = (0.80, 0.82, 0.86)
    elevation_deg: float = 9.0  # camera looks down this much so the floor is a visible plane
    grid_spacing: float = 0.5  # metres
    min_radius_px: float = 0.75  # thinner capsules would flicker in and out of the image
    light: tuple[float, float, float] = (-0.40, 0.60, 0.70)  # camera space: from upper-left, front
    ambient: float = 0.38
    diffuse: float = 0.62
    specular: float = 0.22
    depth_dim: float = 0.28  # how much the far side of the body is darkened (depth cue)
    labels: bool = True
    colors: tuple[RGB, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "colors", (self.center, self.left, self.right, self.dark))


DEFAULT_STYLE = Style()


# --- camera ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """An orthographic view: world -> panel pixels. `axes` rows are screen right, up, toward-camera."""

    name: str
    axes: np.ndarray  # (3, 3)
    scale: float  # pixels per metre
    x0: int  # panel's left edge in the frame
    width: int  # panel width
    cx: float  # frame x of the world point with u = 0
    cy: float  # frame y of v = 0

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world -> (..., 3): frame x, frame y (down), depth toward camera in pixels."""
        c = points @ self.axes.T
        out = np.empty_like(c)
        out[..., 0] = self.cx + c[..., 0] * self.scale
        out[..., 1] = self.cy - c[..., 1] * self.scale
        out[..., 2] = c[..., 2] * self.scale
        return out


def _view_axes(right: tuple, toward: tuple, elevation_deg: float) -> np.ndarray:
    """Screen axes of a camera looking along -toward with world up +Y, tilted down by elevation."""
    e = math.radians(elevation_deg)
    r, t, y = np.array(right, float), np.array(toward, float), np.array([0.0, 1.0, 0.0])
    up = math.cos(e) * y - math.sin(e) * t  # nearer points drop down the screen
    toward_tilted = math.cos(e) * t + math.sin(e) * y
    return np.stack([r, up, toward_tilted])


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    views: tuple[View, ...]
    floor_y: float  # world height of the floor plane
    floor_center: np.ndarray  # (3,) world point on the floor under the clip's mean root
    floor_radius: float  # metres
    top_pad: int  # rows kept free for labels
    bottom_pad: int  # rows kept free for the caption


def frame_clip(points: np.ndarray, width: int, height: int, style: Style = DEFAULT_STYLE) -> Layout:
    """Frame both views once for a whole clip: `points` (T, NUM_POINTS, 3) extended points.

    One scale for both views (so the figure is the same height in each), each view centred on its
    own horizontal extent, both sharing the vertical placement so the floors line up.
    """
    pts = points.reshape(-1, 3)
    foot = points[:, [_J["left_ankle"], _J["right_ankle"], _J["left_foot"], _J["right_foot"]], 1]
    floor_y = float(foot.min()) - 0.04  # foot joints sit inside the foot, about a radius above the sole
    root = points[:, _J["pelvis"]]
    floor_center = np.array([root[:, 0].mean(), floor_y, root[:, 2].mean()])
    horizontal = np.hypot(pts[:, 0] - floor_center[0], pts[:, 2] - floor_center[2])
    floor_radius = float(np.clip(horizontal.max() + 0.25, 0.8, 3.0))

    top_pad = overlay.label_band(height)
    bottom_pad = overlay.caption_band(height)
    panel_w = width // 2
    margin = 0.13  # metres around the joint points: the head's radius, finger and limb thickness
    e = math.radians(style.elevation_deg)
    floor_v_lo = floor_y * math.cos(e) - floor_radius * 0.6 * math.sin(e)

    axes = (
        ("front", _view_axes((1, 0, 0), (0, 0, 1), style.elevation_deg)),
        ("side", _view_axes((0, 0, 1), (-1, 0, 0), style.elevation_deg)),
    )
    extents = []
    for _, ax in axes:
        c = pts @ ax.T
        u_lo, u_hi = c[:, 0].min() - margin, c[:, 0].max() + margin
        v_lo = min(c[:, 1].min() - margin, floor_v_lo)
        v_hi = c[:, 1].max() + margin
        extents.append((u_lo, u_hi, v_lo, v_hi))
    v_lo = min(x[2] for x in extents)
    v_hi = max(x[3] for x in extents)
    avail_h = height - top_pad - bottom_pad
    scale = min(avail_h / (v_hi - v_lo), *((panel_w * 0.94) / (x[1] - x[0]) for x in extents))
    # Vertically: centre the figure in the free band between labels and caption.
    cy = top_pad + 0.5 * avail_h + 0.5 * (v_hi + v_lo) * scale
    views = []
    for i, ((name, ax), (u_lo, u_hi, _, _)) in enumerate(zip(axes, extents, strict=True)):
        x0 = i * panel_w
        w = panel_w if i == 0 else width - panel_w
        cx = x0 + 0.5 * w - 0.5 * (u_lo + u_hi) * scale
        views.append(View(name, ax, float(scale), x0, w, float(cx), float(cy)))
    return Layout(width, height, tuple(views), floor_y, floor_center, floor_radius, top_pad, bottom_pad)


# --- renderer --------------------------------------------------------------------------------
class StickFigureRenderer:
    """Renders frames of one clip. Build once per clip (framing, background), then call `render`."""

    def __init__(
        self,
        clip_positions: np.ndarray,
        size: int | tuple[int, int] = 512,
        style: Style = DEFAULT_STYLE,
    ):
        """`clip_positions`: (T, 55, 3) or (55, 3) FK joint positions used to frame the camera.

        `size`: an int for a square frame or (width, height); both are rounded down to even numbers
        because H.264 with 4:2:0 chroma needs even dimensions.
        """
        width, height = (size, size) if isinstance(size, int) else size
        width, height = int(width) // 2 * 2, int(height) // 2 * 2
        if width < 64 or height < 64:
            raise ValueError(f"render size must be at least 64x64, got {width}x{height}")
        clip = np.asarray(clip_positions, dtype=np.float64)
        if clip.ndim == 2:
            clip = clip[None]
        if clip.ndim != 3 or clip.shape[1:] != (55, 3) or clip.shape[0] == 0:
            raise ValueError(f"clip positions must have shape (T, 55, 3), got {clip.shape}")
        self.style = style
        self.width, self.height = width, height
        self.layout = frame_clip(extended_points(clip), width, height, style)
        scale = self.layout.views[0].scale  # both views share it
        light = np.array(style.light, dtype=np.float32)
        self._light = light / np.linalg.norm(light)
        half = self._light + np.array([0, 0, 1], np.float32)
        self._half = half / np.linalg.norm(half)
        self._sin_e = math.sin(math.radians(style.elevation_deg))
        self._depth_norm = 1.0 / (0.5 * scale)  # depth dimming is full half a metre behind the pelvis
        self._px = np.arange(width, dtype=np.float32) + 0.5  # pixel centres
        self._py = np.arange(height, dtype=np.float32) + 0.5
        self._background = self._render_background()
        self._background8 = (self._background * 255.0).astype(np.uint8)
        # Persistent buffers: each frame only restores and converts the rectangles the previous
        # and current figures touched, instead of the whole frame.
        self._canvas = self._background.copy()
        self._frame = self._background8.copy()
        self._dirty: list[tuple[slice, slice]] = []
        # Per-capsule constants, flattened over all groups (the scale is fixed per clip, so the
        # radii in pixels are too).
        caps = [(gi, c) for gi, group in enumerate(GROUPS.values()) for c in group]
        self._ia = np.array([c.a for _, c in caps])
        self._ib = np.array([c.b for _, c in caps])
        self._radius = np.maximum(
            np.array([c.radius for _, c in caps], np.float32) * scale, style.min_radius_px
        )
        self._group = np.array([gi for gi, _ in caps])
        self._num_groups = len(GROUPS)
        self._cap_colors = np.array(style.colors, dtype=np.float32)[[c.color for _, c in caps]]
        # Outlines only on limb-sized capsules a few pixels wide; on fingers, eyes and the nose an
        # outline would swallow the shape.
        self._outline = (self._radius > 2.5) & np.array([c.radius >= 0.03 for _, c in caps])

    @property
    def background(self) -> np.ndarray:
        """The clip's static backdrop (floor, grid, labels) as uint8 RGB: a frame without the figure."""
        return self._background8.copy()

    # -- static background ---------------------------------------------------------------------
    def _render_background(self) -> np.ndarray:
        st, lay = self.style, self.layout
        h, w = self.height, self.width
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        top, bottom = np.array(st.background_top, np.float32), np.array(st.background_bottom, np.float32)
        img = np.broadcast_to(top + (bottom - top) * t, (h, w, 3)).copy()
        for view in lay.views:
            self._draw_floor(img, view)
        # A thin divider between the panels.
        split = lay.views[1].x0
        img[:, max(split - 1, 0) : split + 1] *= 0.6
        if st.labels:
            pad = overlay.label_size(h) * 0.8
            labels = [(v.x0 + pad, "FRONT" if v.name == "front" else "SIDE") for v in lay.views]
            overlay.draw_labels(
                img, labels, st.text, st.left, st.right, legend_right=lay.views[0].width - pad
            )
        return np.clip(img, 0.0, 1.0)

    def _draw_floor(self, img: np.ndarray, view: View) -> None:
        """A soft disc of floor under the clip, with a fading grid; analytic, once per clip."""
        st, lay = self.style, self.layout
        e = math.radians(st.elevation_deg)
        x0, x1 = view.x0, view.x0 + view.width
        xs = self._px[x0:x1][None, :]
        ys = self._py[:, None]
        # Invert the projection for points on the floor plane: screen (u, v) -> floor (u, depth).
        u = (xs - view.cx) / view.scale
        v = (view.cy - ys) / view.scale
        depth = (lay.floor_y * math.cos(e) - v) / math.sin(e)  # toward-camera coordinate (untilted)
        right = view.axes[0]
        toward = np.cross(right, [0.0, 1.0, 0.0])  # the untilted toward-camera axis
        cu = float(lay.floor_center @ right)
        cd = float(lay.floor_center @ toward)
        r = np.hypot(u - cu, depth - cd) / lay.floor_radius
        disc = np.clip((1.0 - r) / 0.35, 0.0, 1.0) ** 1.5  # soft edge
        g = st.grid_spacing
        # Distance to the nearest grid line in pixels: lines of constant u are vertical on screen;
        # lines of constant depth are horizontal and foreshortened by sin(elevation).
        du = np.abs((u - cu + 0.5 * g) % g - 0.5 * g) * view.scale
        dd = np.abs((depth - cd + 0.5 * g) % g - 0.5 * g) * view.scale * math.sin(e)
        line = np.clip(1.2 - np.minimum(du, dd), 0.0, 1.0) * 0.55
        region = img[:, x0:x1]
        floor = np.array(st.floor, np.float32)
        grid = np.array(st.grid, np.float32)
        a = disc[..., None].astype(np.float32)
        region += (floor - region) * a * 0.9
        region += (grid - region) * (a * line[..., None].astype(np.float32))

    # -- per frame -----------------------------------------------------------------------------
    def render(
        self,
        positions_t: np.ndarray,
        *,
        time_s: float | None = None,
        caption: str | None = None,
    ) -> np.ndarray:
        """One frame: (55, 3) joint positions -> a new (H, W, 3) uint8 RGB array."""
        pos = np.asarray(positions_t, dtype=np.float64)
        if pos.shape != (55, 3):
            raise ValueError(f"positions_t must have shape (55, 3), got {pos.shape}")
        points = extended_points(pos)
        canvas, frame = self._canvas, self._frame
        for ys, xs in self._dirty:  # undo the previous frame
            canvas[ys, xs] = self._background[ys, xs]
            frame[ys, xs] = self._background8[ys, xs]
        self._dirty = []
        for view in self.layout.views:
            box = [self.width, self.height, 0, 0]  # x0, y0, x1, y1 touched in this view
            self._draw_shadow(canvas, view, points, box)
            self._draw_figure(canvas, view, points, box)
            if box[0] < box[2] and box[1] < box[3]:
                self._dirty.append((slice(box[1], box[3]), slice(box[0], box[2])))
        for ys, xs in self._dirty:
            # Sample colours are clipped when drawn and the background is in [0, 1]: no clip needed.
            frame[ys, xs] = canvas[ys, xs] * 255.0
        out = frame.copy()
        if time_s is not None or caption:
            overlay.draw_text(out, time_s=time_s, caption=caption, color=self.style.text)
        return out

    def _draw_shadow(self, img: np.ndarray, view: View, points: np.ndarray, box: list[int]) -> None:
        """Soft contact shadows on the floor under the pelvis and each foot (light from above)."""
        fy = self.layout.floor_y
        x0, x1 = view.x0, view.x0 + view.width
        for joint, radius, strength in _SHADOW_BLOBS:
            p = points[joint]
            strength *= min(max(1.0 - (p[1] - fy) / 1.5, 0.15), 1.0)  # fainter as it lifts
            sx, sy, _ = view.project(np.array([p[0], fy, p[2]]))
            a = radius * view.scale
            b = max(a * self._sin_e, 1.0)
            xa, xb = max(int(sx - 2 * a), x0), min(int(sx + 2 * a) + 1, x1)
            ya, yb = max(int(sy - 2 * b), 0), min(int(sy + 2 * b) + 1, self.height)
            if xa >= xb or ya >= yb:
                continue
            # A Gaussian is separable: an outer product of two 1-D profiles is cheap.
            gx = np.exp(-2.0 * ((self._px[xa:xb] - sx) / a) ** 2)
            gy = np.exp(-2.0 * ((self._py[ya:yb] - sy) / b) ** 2) * strength
            img[ya:yb, xa:xb] *= (1.0 - np.outer(gy, gx))[..., None]
            _grow(box, xa, ya, xb, yb)

    def _draw_figure(self, img: np.ndarray, view: View, points: np.ndarray, box: list[int]) -> None:
        """Rasterise every capsule of one view in a single flat batch of (capsule, pixel) samples."""
        st = self.style
        screen = view.project(points).astype(np.float32)
        a, b = screen[self._ia], screen[self._ib]
        r = self._radius
        # Each capsule's own pixel box, clipped to the panel.
        lo = np.floor(np.minimum(a[:, :2], b[:, :2]) - (r + 1.0)[:, None]).astype(np.int64)
        hi = np.ceil(np.maximum(a[:, :2], b[:, :2]) + (r + 2.0)[:, None]).astype(np.int64)
        x0 = np.clip(lo[:, 0], view.x0, view.x0 + view.width)
        x1 = np.clip(hi[:, 0], view.x0, view.x0 + view.width)
        y0 = np.clip(lo[:, 1], 0, self.height)
        y1 = np.clip(hi[:, 1], 0, self.height)
        w = x1 - x0
        area = w * (y1 - y0)
        total = int(area.sum())
        if total == 0:
            return
        # Flatten: sample s belongs to capsule cap[s] and sits at pixel (xs, ys) in its box.
        cap = np.repeat(np.arange(len(r)), area)
        local = np.arange(total) - np.repeat(np.cumsum(area) - area, area)
        wc = w[cap]
        row = local // wc
        xs = x0[cap] + (local - row * wc)
        ys = y0[cap] + row
        # Closest point on the projected bone axis; the capsule is everything within r of it.
        ab = b - a
        inv_len2 = 1.0 / np.maximum(ab[:, 0] * ab[:, 0] + ab[:, 1] * ab[:, 1], 1e-6)
        pax = self._px[xs] - a[cap, 0]
        pay = self._py[ys] - a[cap, 1]
        bax, bay = ab[cap, 0], ab[cap, 1]
        t = (pax * bax + pay * bay) * inv_len2[cap]
        np.clip(t, 0.0, 1.0, out=t)
        qx = pax - bax * t
        qy = pay - bay * t
        d2 = qx * qx + qy * qy
        rc = r[cap]
        keep = np.flatnonzero(d2 < (rc + 0.5) ** 2)  # samples the capsule covers at all
        if keep.size == 0:
            return
        cap, xs, ys, t, qx, qy, d2, rc = (v[keep] for v in (cap, xs, ys, t, qx, qy, d2, rc))
        d = np.sqrt(d2)
        alpha = np.minimum(rc + 0.5 - d, 1.0)  # analytic anti-aliasing
        # Surface height above the axis for a tube/sphere of radius r: nz = sqrt(1 - (d/r)^2).
        nz = np.sqrt(np.maximum(1.0 - d2 / (rc * rc), 0.0))
        z = a[cap, 2] + ab[cap, 2] * t + rc * nz  # depth toward the camera, pixels

        # Visibility: a z-buffer over opaque samples, then the partly covered edge samples that
        # lie in front of it are blended on top (so a limb's edge blends over what is behind it).
        rx0, ry0 = int(x0[area > 0].min()), int(y0[area > 0].min())
        rw, rh = int(x1[area > 0].max()) - rx0, int(y1[area > 0].max()) - ry0
        pix = (ys - ry0) * rw + (xs - rx0)
        solid = np.flatnonzero(alpha >= 1.0)
        edge_s = np.flatnonzero(alpha < 1.0)
        zbuf = np.full(rw * rh, -np.inf, np.float32)
        np.maximum.at(zbuf, pix[solid], z[solid])
        front = solid[z[solid] >= zbuf[pix[solid]]]
        fringe = edge_s[z[edge_s] > zbuf[pix[edge_s]]]
        # Outlines go on a capsule's rim only where no other capsule of its group covers the
        # pixel: an arm over the torso gets a rim, the torso's own segments show no seams.
        group = self._group[cap]
        counts = np.bincount(pix * self._num_groups + group, minlength=rw * rh * self._num_groups)
        lonely = counts[pix * self._num_groups + group] == 1

        pelvis_depth = float(screen[_J["pelvis"], 2])
        lx, ly, lz = self._light
        hx, hy, hz = self._half
        for sel, blend in ((front, False), (fringe, True)):
            if sel.size == 0:
                continue
            k = cap[sel]
            inv_r = 1.0 / rc[sel]
            nx, ny, nzs = qx[sel] * inv_r, qy[sel] * -inv_r, nz[sel]  # screen y points down
            ndl = np.maximum(nx * lx + ny * ly + nzs * lz, 0.0)
            ndh = np.maximum(nx * hx + ny * hy + nzs * hz, 0.0)
            shade = st.ambient + st.diffuse * ndl
            # Depth cue: parts behind the pelvis get darker, so the far arm reads as behind.
            shade *= 1.0 - st.depth_dim * np.clip((pelvis_depth - z[sel]) * self._depth_norm, 0.0, 1.0)
            rim = np.clip(d[sel] - rc[sel] + 1.1, 0.0, 1.0) * (self._outline[k] & lonely[sel])
            shade *= 1.0 - 0.45 * rim
            ndh *= ndh
            ndh *= ndh
            ndh *= ndh  # ^8: a soft highlight
            color = self._cap_colors[k] * shade[:, None] + (st.specular * ndh * (1.0 - rim))[:, None]
            np.minimum(color, 1.0, out=color)
            yy, xx = ys[sel], xs[sel]
            if blend:
                under = img[yy, xx]
                color = under + (color - under) * np.maximum(alpha[sel], 0.0)[:, None]
            img[yy, xx] = color
        _grow(box, rx0, ry0, rx0 + rw, ry0 + rh)


def _grow(box: list[int], x0: int, y0: int, x1: int, y1: int) -> None:
    box[0], box[1] = min(box[0], x0), min(box[1], y0)
    box[2], box[3] = max(box[2], x1), max(box[3], y1)


# (joint, radius in metres, darkness) of the soft floor shadows.
_SHADOW_BLOBS = (
    (_J["pelvis"], 0.30, 0.30),
    (_J["left_foot"], 0.12, 0.45),
    (_J["right_foot"], 0.12, 0.45),
)


def render_frame(
    positions_t: np.ndarray,
    *,
    size: int | tuple[int, int] = 512,
    clip_positions: np.ndarray | None = None,
    time_s: float | None = None,
    caption: str | None = None,
    style: Style = DEFAULT_STYLE,
) -> np.ndarray:
    """Render one pose: (55, 3) FK joint positions -> (H, W, 3) uint8 RGB, front and side views.

    The camera is framed on `clip_positions` (T, 55, 3) when given (so a still matches the video
    it comes from), else on this pose alone. For many frames build a `StickFigureRenderer` once.
    """
    framing = positions_t if clip_positions is None else clip_positions
    return StickFigureRenderer(framing, size=size, style=style).render(
        positions_t, time_s=time_s, caption=caption
    )
