"""Splicing placed semantic gestures into the rhythm model's motion, and blending them in.

    result = splice(model, features, seconds, placed, library, seed=0)
    result.motion      # the final motion: beat motion + semantic gestures
    result.base        # the beat motion alone (same seed, no gestures)

Three steps:

1. **Base.** The rhythm model generates the beat motion for the audio (seed fixed).
2. **Token splice.** Each placed gesture is laid over the base (step 3's blend) and the result is
   encoded with the model's tokenizer; the tokens over every stroke are forced into the model's
   stream, the base's own tokens are forced away from gestures, and the model generates the
   rest with the same seed: the stretch from a little before each preparation to a little after
   each retraction (`token_plan`). It sees forced tokens ahead, so it moves into the gesture and
   out of it, back into the beat motion, instead of being cut.
3. **Blend.** The tokenizer is lossy (a few cm), so the original clip poses are blended back over
   the spliced stream per joint with a masked slerp in pose space: weight 1 over the stroke, a
   smooth crossfade (`ease`: zero velocity at both ends, a flat-topped rate) over a window per
   body part inside the time-warped preparation and retraction, 0 elsewhere. During a crossfade
   the gesture's joints head for the stroke's first pose (and leave from its last), so the arm
   goes straight from wherever the beat motion has it (`BlendSettings.approach`). Only the
   gesture's joints are touched: the inactive arm of a one-handed gesture keeps the stream's
   motion exactly. Arm gestures also bring the torso to the clip's torso (`torso_follow`)
   during the stroke, because the arm hangs on the spine: a base motion leaning 5 degrees would
   move the hand by 4 cm. Chained gestures (see `gesticulator.align.timing`) go straight from
   one stroke's end pose to the next stroke's start pose on their common joints. Optionally
   (`keep_beat`) part of the beat motion's rhythm is put back on top of the held gesture.

Quality measures used by tests and the benchmark: `seam_speed_ratios` (max joint speed at each
seam / max over the surrounding second) and `recognisability_cm` (joint-position error over the
stroke between the placed gesture and its library clip, active arms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gesticulator.align.timing import PART_GROUPS, PlacedEvent, clip_time
from gesticulator.motion.rotations import axis_angle_to_quat, quat_continuity, quat_slerp, quat_to_axis_angle
from gesticulator.motion.skeleton import BODY_PARTS, JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from gesticulator.rhythm import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, HOLD_PAUSE_SECONDS, REST_PAUSE_SECONDS
from gesticulator.rhythm.representation import stand
from gesticulator.types import Motion

if TYPE_CHECKING:
    from gesticulator.library.store import Library
    from gesticulator.rhythm.model import RhythmModel

FPS = 30.0
FRAMES_PER_TOKEN = 4
TOKEN_RATE = FPS / FRAMES_PER_TOKEN

#: The joints the rhythm model generates (pelvis, upper body and hands): where seams are checked
#: and what is put back to the beat motion away from gestures. The legs follow the pelvis
#: (re-solved with the feet planted at the end of `splice`).
MODELLED_JOINTS: tuple[int, ...] = tuple(
    sorted({JOINT_INDEX["pelvis"]} | set(BODY_PARTS["upper"]) | set(BODY_PARTS["hands"]))
)

PELVIS, SPINE1 = JOINT_INDEX["pelvis"], JOINT_INDEX["spine1"]

#: Which crossfade window a joint uses.
JOINT_CATEGORY: dict[int, str] = {}
for _j, _name in enumerate(JOINT_NAMES):
    if _j in BODY_PARTS["left_hand"] or _j in BODY_PARTS["right_hand"]:
        JOINT_CATEGORY[_j] = "hand"
    elif _j in BODY_PARTS["torso"] or _j == JOINT_INDEX["pelvis"]:
        JOINT_CATEGORY[_j] = "torso"  # the pelvis carries the trunk's posture with the spine
    elif _j in BODY_PARTS["head"]:
        JOINT_CATEGORY[_j] = "head"
    elif _j in BODY_PARTS["left_arm"] or _j in BODY_PARTS["right_arm"]:
        JOINT_CATEGORY[_j] = "arm"
    else:
        JOINT_CATEGORY[_j] = "lower"


class BlendSettings(BaseModel):
    """How gestures are spliced and blended (stored in timeline.json)."""

    model_config = ConfigDict(extra="forbid")

    #: Longest crossfade per body part, seconds; each is capped by the time-warped preparation
    #: (fade in) or retraction (fade out) of the gesture, but never below `min_window`.
    windows: dict[str, float] = Field(
        default_factory=lambda: {"arm": 0.5, "hand": 0.5, "torso": 0.6, "head": 0.4, "lower": 0.3}
    )
    min_window: float = Field(0.25, gt=0)
    #: What the gesture's joints head for during a crossfade: "hold" = the stroke's first pose
    #: (fade in) / last pose (fade out), so the arm goes straight from where the base motion has
    #: it; "clip" = the clip's own time-warped preparation/retraction, which start and end at the
    #: rest pose (arms down) and so travel further and faster.
    approach: Literal["hold", "clip"] = "hold"
    #: How much of the beat motion's rhythm (its deviation from its own moving average) is
    #: kept on the joints a gesture drives, per joint category: 0 plays the clip exactly, 1 adds
    #: the full beat on top. By default the torso keeps its beat (the clip sets its posture, the
    #: beat motion its pulse), the arms keep a fifth of it (a held count still pulses with the
    #: voice; stroke error stays ~2 cm, at 0.4 it passes 3 cm) and the hands play the clip.
    keep_beat: dict[str, float] = Field(default_factory=lambda: {"torso": 1.0, "arm": 0.15})
    beat_sigma: float = Field(0.5, gt=0)  # s: the moving average the beat is measured against
    torso_follow: float = Field(1.0, ge=0, le=1)  # arm gestures: weight of the clip's torso
    force: Literal["stroke", "none"] = "stroke"  # which tokens are forced into the model's stream
    #: Around each gesture the model regenerates the stream from this long before the
    #: preparation to this long after the retraction; elsewhere the beat motion's own tokens
    #: are kept (`keep_base`), so the stream is the beat motion away from gestures.
    regenerate_margin: float = Field(0.5, ge=0)
    keep_base: bool = True
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0)
    top_k: int | None = DEFAULT_TOP_K
    #: The beat motion holds its pose through pauses this long or longer (`RhythmModel.hold_pauses`;
    #: None: it gestures on). Pauses of REST_PAUSE_SECONDS (1.2 s) or longer rest instead.
    hold_pause_seconds: float | None = Field(HOLD_PAUSE_SECONDS, gt=0)

    def window(self, category: str) -> float:
        return float(self.windows.get(category, self.windows.get("arm", 0.45)))


# -- quaternions -----------------------------------------------------------------------------------
qslerp = quat_slerp  # one slerp for the project: gesticulator.motion.rotations


def ease(x: np.ndarray, ramp: float = 0.25) -> np.ndarray:
    """0 -> 1 with a trapezoidal rate: it speeds up linearly over the first `ramp` of the way,
    goes at a constant rate, and slows down linearly over the last `ramp`. Velocity is continuous
    and zero at both ends (no velocity spikes), and the peak rate (1 / (1 - ramp) = 1.33x the
    mean for 0.25) is held on a plateau instead of reached at one instant, so the crossfade moves
    no faster than it must. ramp=0.5 is the piecewise-quadratic smoothstep."""
    r = float(np.clip(ramp, 1e-3, 0.5))
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    v = 1.0 / (1.0 - r)
    return np.where(
        x < r, v * x * x / (2 * r), np.where(x > 1 - r, 1.0 - v * (1 - x) ** 2 / (2 * r), v * (x - r / 2))
    )


class ClipBank:
    """Library clips as time-continuous quaternion arrays, loaded once per (gesture, take, side)."""

    def __init__(self, library: Library):
        self.library = library
        self._cache: dict[tuple[str, str | None, str | None], np.ndarray] = {}

    def quats(self, event: PlacedEvent) -> np.ndarray:
        side = event.side if event.side in ("left", "right") else None
        key = (event.gesture_id, event.take, side)
        if key not in self._cache:
            clip = self.library.clip(event.gesture_id, event.take, side=side)
            if abs(clip.fps - FPS) > 1e-6:
                clip = clip.resample(FPS)
            q = axis_angle_to_quat(clip.rotations.astype(np.float64))
            self._cache[key] = quat_continuity(q, axis=0)
        return self._cache[key]

    def phases(self, event: PlacedEvent):
        gesture = self.library.get(event.gesture_id)
        return gesture.phases_of(gesture.take(event.take))

    def sample(self, event: PlacedEvent, tau: np.ndarray) -> np.ndarray:
        """(n, 55, 4) clip rotations at clip times `tau` (slerp between frames, held at the ends)."""
        return sample_quats(self.quats(event), tau)

    def sample_motion(self, event: PlacedEvent, tau: np.ndarray) -> Motion:
        q = self.sample(event, tau)
        return Motion(poses=quat_to_axis_angle(q).reshape(len(tau), -1), trans=np.zeros((len(tau), 3)))


def sample_quats(quats: np.ndarray, tau: np.ndarray, fps: float = FPS) -> np.ndarray:
    f = np.clip(np.asarray(tau, dtype=np.float64) * fps, 0.0, quats.shape[0] - 1)
    i0 = np.floor(f).astype(np.int64)
    i1 = np.minimum(i0 + 1, quats.shape[0] - 1)
    frac = np.repeat((f - i0)[:, None], quats.shape[1], axis=1)
    return qslerp(quats[i0], quats[i1], frac)


# -- layers ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seam:
    """Where two motions are joined: the middle of a crossfade (`kind` "fade-in" / "fade-out"),
    or the edge of a forced token span in the model's stream ("stream"). `joints`: the joints
    whose speed is checked there (for a stream edge, those not held by a layer)."""

    time: float
    kind: str
    joints: tuple[int, ...]


@dataclass
class Layer:
    """Target rotations and weights for some joints over frames [start, stop)."""

    start: int
    joints: np.ndarray  # (J,) joint indices
    target: np.ndarray  # (n, J, 4) quaternions
    weight: np.ndarray  # (n, J) in [0, 1]
    label: str = ""

    @property
    def stop(self) -> int:
        return self.start + self.target.shape[0]


def event_joints(event: PlacedEvent, settings: BlendSettings) -> dict[int, float]:
    """{joint: weight scale} the event drives: its body parts, plus the torso (at `torso_follow`)
    for arm gestures that do not list it. The pelvis stays the beat motion's: the spine takes its
    rotation back where the torso follows a clip (`counter_rotate_trunk`)."""
    out: dict[int, float] = {}
    for part in event.body_parts:
        for j in BODY_PARTS.get(part, ()):
            out[j] = 1.0
    if event.active_arms and settings.torso_follow > 0:
        for j in BODY_PARTS["torso"]:
            out.setdefault(j, settings.torso_follow)
    return out


def _groups_of_joint(j: int) -> set[str]:
    return {g for g in PART_GROUPS if j in BODY_PARTS[g]}


def chained_joints(
    placed: Sequence[PlacedEvent], settings: BlendSettings
) -> dict[tuple[int, int], list[int]]:
    """{(a, b): joints} for chained pairs: the joints both drive at full weight, where a is the
    event before b among the events driving that joint and both are in one gesture unit."""
    out: dict[tuple[int, int], list[int]] = {}
    joints = [event_joints(e, settings) for e in placed]
    for j in range(NUM_JOINTS):
        seq = [i for i, e in enumerate(placed) if e.is_placed and joints[i].get(j, 0.0) > 0]
        for a, b in zip(seq, seq[1:], strict=False):
            ea, eb = placed[a], placed[b]
            if ea.unit >= 0 and ea.unit == eb.unit and ea.chained_to_next and eb.chained_from_previous:
                if joints[a][j] == 1.0 and joints[b][j] == 1.0:
                    out.setdefault((a, b), []).append(j)
    return out


def build_layers(
    placed: Sequence[PlacedEvent],
    clips: ClipBank,
    num_frames: int,
    settings: BlendSettings | None = None,
    fps: float = FPS,
) -> tuple[list[Layer], list[Seam]]:
    """Blend layers of the placed events (apex order) and their seams: the middle of each
    crossfade, where the blend itself moves the joints fastest. (At a crossfade's ends the blend
    rate is zero, so whatever speed shows there is the base motion's or the clip's own.)"""
    settings = settings or BlendSettings()
    chains = chained_joints(placed, settings)
    no_fade_in = {(b, j) for (a, b), js in chains.items() for j in js}
    no_fade_out = {(a, j) for (a, b), js in chains.items() for j in js}
    layers: list[Layer] = []
    seams: dict[float, str] = {}
    for i, ev in enumerate(placed):
        if not ev.is_placed:
            continue
        phases = clips.phases(ev)
        scales = event_joints(ev, settings)
        by_window: dict[tuple[float, float, float], list[int]] = {}
        prep_len = ev.stroke_start - ev.prep_start
        retract_len = ev.retract_end - ev.stroke_end
        for j, scale in scales.items():
            cat = JOINT_CATEGORY[j]
            w_in = (
                0.0 if (i, j) in no_fade_in else min(settings.window(cat), max(prep_len, settings.min_window))
            )
            w_out = (
                0.0
                if (i, j) in no_fade_out
                else min(settings.window(cat), max(retract_len, settings.min_window))
            )
            by_window.setdefault((w_in, w_out, scale), []).append(j)
        for (w_in, w_out, scale), js in sorted(by_window.items()):
            t0, t1 = ev.stroke_start - w_in, ev.stroke_end + w_out
            f0 = max(0, int(np.floor(t0 * fps)))
            f1 = min(num_frames, int(np.ceil(t1 * fps)) + 1)
            if f1 <= f0:
                continue
            t = np.arange(f0, f1) / fps
            w = np.ones_like(t)
            if w_in > 0:
                w = np.minimum(w, ease((t - t0) / w_in))
                seams[round(t0 + w_in / 2, 4)] = "fade-in"
            if w_out > 0:
                w = np.minimum(w, ease((t1 - t) / w_out))
                seams[round(t1 - w_out / 2, 4)] = "fade-out"
            w = np.where((t < t0) | (t > t1), 0.0, w) * scale
            tau = clip_time(ev, phases, t)
            if settings.approach == "hold":
                tau = np.clip(tau, phases.stroke_start, phases.stroke_end)
            target = clips.sample(ev, tau)[:, js]
            layers.append(
                Layer(
                    f0,
                    np.asarray(js),
                    target,
                    np.repeat(w[:, None], len(js), 1),
                    f"{ev.gesture_id}@{ev.apex:.2f}",
                )
            )
    for (a, b), js in sorted(chains.items()):
        ea, eb = placed[a], placed[b]
        t0, t1 = ea.stroke_end, eb.stroke_start
        f0 = max(0, int(np.floor(t0 * fps)) + 1)
        f1 = min(num_frames, int(np.ceil(t1 * fps)))
        if f1 <= f0:
            continue
        t = np.arange(f0, f1) / fps
        qa = clips.sample(ea, np.array([clips.phases(ea).stroke_end]))[0, js]
        qb = clips.sample(eb, np.array([clips.phases(eb).stroke_start]))[0, js]
        u = ease((t - t0) / max(t1 - t0, 1e-6))
        seams[round((t0 + t1) / 2, 4)] = "chain"
        target = qslerp(
            np.repeat(qa[None], len(t), 0), np.repeat(qb[None], len(t), 0), np.repeat(u[:, None], len(js), 1)
        )
        layers.append(
            Layer(f0, np.asarray(js), target, np.ones((len(t), len(js))), f"{ea.gesture_id}->{eb.gesture_id}")
        )
    return layers, [Seam(t, kind, MODELLED_JOINTS) for t, kind in sorted(seams.items())]


def held_joints(layers: Sequence[Layer], frame: int) -> set[int]:
    """Joints some layer holds at weight 1 at `frame`."""
    out: set[int] = set()
    for layer in layers:
        if layer.start <= frame < layer.stop:
            w = layer.weight[frame - layer.start]
            out |= {int(j) for j, x in zip(layer.joints, w, strict=True) if x >= 1.0}
    return out


#: Frames per block when a layer is applied: every frame is blended on its own, and the beat
#: motion's layer spans the whole take (an hour: ~1 GB of temporaries in one pass).
BLOCK_FRAMES = 4096


def apply_layers(base: Motion, layers: Sequence[Layer]) -> Motion:
    """Masked slerp of `base` toward each layer in turn; joints and frames with weight 0 are
    copied bit for bit."""
    poses = base.rotations.astype(np.float64).copy()
    for layer in layers:
        stop = min(layer.stop, poses.shape[0])
        for a in range(layer.start, stop, BLOCK_FRAMES):
            b = min(stop, a + BLOCK_FRAMES)
            k = slice(a - layer.start, b - layer.start)  # the block in the layer's own frames
            w = layer.weight[k]
            live = w > 0
            if not live.any():
                continue
            cur = poses[a:b][:, layer.joints]  # (n, J, 3)
            target = layer.target[k]
            q = qslerp(axis_angle_to_quat(cur), target, w)
            new = quat_to_axis_angle(q)
            full = w >= 1.0
            new[full] = quat_to_axis_angle(target[full]) if full.any() else new[full]
            cur[live] = new[live]
            poses[a:b, layer.joints] = cur
    return base.copy(poses=poses.reshape(base.num_frames, NUM_JOINTS * 3))


def counter_rotate_trunk(motion: Motion, layers: Sequence[Layer]) -> Motion:
    """Where a layer drives spine1 (the torso of an arm gesture), spine1 takes back the pelvis's
    rotation in proportion to that weight: the hips keep swaying with the beat motion while the
    chest, and so the arms, stand as in the clip (authored over an upright pelvis)."""
    if not layers:
        return motion
    w = layer_weights(layers, motion.num_frames)[:, SPINE1]
    frames = np.flatnonzero(w > 0)
    if not len(frames):
        return motion
    rot = motion.rotations.astype(np.float64)
    pelvis = axis_angle_to_quat(rot[frames, PELVIS])
    ident = np.zeros_like(pelvis)
    ident[:, 0] = 1.0
    undo = qslerp(ident, pelvis * np.array([1.0, -1.0, -1.0, -1.0]), w[frames])
    rot[frames, SPINE1] = quat_to_axis_angle(qmul(undo, axis_angle_to_quat(rot[frames, SPINE1])))
    return motion.copy(poses=rot.reshape(motion.num_frames, NUM_JOINTS * 3))


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) wxyz quaternions."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def smooth_quats(q: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian moving average of (T, J, 4) quaternions along time (sign-aligned, renormalised)."""
    q = quat_continuity(q, axis=0)
    radius = max(1, int(round(3 * sigma_frames)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    padded = np.concatenate([np.repeat(q[:1], radius, 0), q, np.repeat(q[-1:], radius, 0)])
    out = np.zeros_like(q)
    for i, w in enumerate(k):
        out += w * padded[i : i + q.shape[0]]
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def layer_weights(layers: Sequence[Layer], num_frames: int) -> np.ndarray:
    """(T, 55) the largest weight any layer gives each joint."""
    w = np.zeros((num_frames, NUM_JOINTS))
    for layer in layers:
        n = min(layer.stop, num_frames) - layer.start
        if n > 0:
            cur = w[layer.start : layer.start + n, layer.joints]
            w[layer.start : layer.start + n, layer.joints] = np.maximum(cur, layer.weight[:n])
    return w


def keep_beat(
    motion: Motion,
    stream: Motion,
    layers: Sequence[Layer],
    amount: float | dict[str, float],
    sigma: float = 0.5,
) -> Motion:
    """Put `amount` of the stream's beat (its deviation from its own ~`sigma` s moving average)
    back onto the joints the gestures drive, in proportion to their weight: speakers keep beating
    while they hold a gesture. `amount` is one number or one per joint category (arm, hand,
    torso, head; missing ones 0). 0 leaves `motion` unchanged."""
    if isinstance(amount, dict):
        per_joint = np.array([float(amount.get(JOINT_CATEGORY[j], 0.0)) for j in range(NUM_JOINTS)])
    else:
        per_joint = np.full(NUM_JOINTS, float(amount))
    if not per_joint.any() or not layers:
        return motion
    w = layer_weights(layers, motion.num_frames) * per_joint
    frames = np.flatnonzero(w.max(axis=1) > 0)
    joints = np.flatnonzero(w.max(axis=0) > 0)
    if not len(frames):
        return motion
    qs = axis_angle_to_quat(stream.rotations[:, joints].astype(np.float64))
    smooth = smooth_quats(qs, sigma * stream.fps)
    conj = smooth * np.array([1.0, -1.0, -1.0, -1.0])
    beat = qmul(conj, qs)  # the stream's deviation from its local average, in the joint's frame
    ident = np.zeros_like(beat)
    ident[..., 0] = 1.0
    part = qslerp(ident[frames], beat[frames], w[np.ix_(frames, joints)])
    qf = axis_angle_to_quat(motion.rotations[np.ix_(frames, joints)].astype(np.float64))
    poses = motion.rotations.astype(np.float64).copy()
    poses[np.ix_(frames, joints)] = quat_to_axis_angle(qmul(qf, part))
    return motion.copy(poses=poses.reshape(motion.num_frames, NUM_JOINTS * 3))


# -- splicing --------------------------------------------------------------------------------------
@dataclass
class SpliceResult:
    """The final motion, the base (beat) motion, the model's spliced stream and what was forced."""

    motion: Motion
    base: Motion
    stream: Motion  # the model's motion with the gesture tokens forced in (before the final blend)
    layers: list[Layer]
    seams: list[Seam]  # crossfade middles and forced-span edges
    forced_tokens: list[tuple[int, int]]  # [start, stop) token ranges of the gestures' tokens
    base_codes: np.ndarray | None = None  # (tokens, parts, levels)
    stream_codes: np.ndarray | None = None
    token_plan: np.ndarray | None = None  # BASE / FREE / GESTURE per token (see `token_plan`)
    timings: dict[str, float] = field(default_factory=dict)


BASE, FREE, GESTURE = 0, 1, 2


def token_plan(placed: Sequence[PlacedEvent], num_tokens: int, margin: float) -> np.ndarray:
    """(num_tokens,) what each token step of the spliced stream is: GESTURE (the gesture's tokens
    over its stroke, forced), FREE (generated by the model: from `margin` s before the
    preparation to `margin` s after the retraction, around the stroke) or BASE (the beat
    motion's own tokens, forced, so the stream is the beat motion away from gestures)."""
    plan = np.full(num_tokens, BASE, dtype=np.int8)
    for ev in placed:
        if not ev.is_placed:
            continue
        k0 = max(0, int(np.floor((ev.prep_start - margin) * TOKEN_RATE)))
        k1 = min(num_tokens, int(np.ceil((ev.retract_end + margin) * TOKEN_RATE)))
        plan[k0:k1] = np.maximum(plan[k0:k1], FREE)
    for a, b in stroke_tokens(placed):
        plan[a : min(b, num_tokens)] = GESTURE
    return plan


def rejoin_weights(
    placed: Sequence[PlacedEvent],
    num_frames: int,
    settings: BlendSettings,
    ramp: float = 0.3,
) -> tuple[np.ndarray, list[Seam]]:
    """(T, 55) weight of the beat motion over the spliced stream, per joint. A joint a gesture
    drives follows the stream (weight 0) over the tokens the model regenerated around that
    gesture (`token_plan`), easing back to the beat motion over `ramp` s outside them, where both
    decode the same tokens and differ only by the decoder's reach. Every other joint (the idle
    arm of a one-handed gesture, the head of an arm gesture) stays the beat motion itself: the
    model's way into and out of a gesture moves only the joints that make it. Also returns the
    middles of those crossfades (seams)."""
    t = np.arange(num_frames) / FPS
    stream_w = np.zeros((num_frames, NUM_JOINTS))
    seams = []
    margin = settings.regenerate_margin
    for ev in placed:
        if not ev.is_placed:
            continue
        joints = [j for j in event_joints(ev, settings) if j in MODELLED_JOINTS]
        a = np.floor((ev.prep_start - margin) * TOKEN_RATE) / TOKEN_RATE
        b = np.ceil((ev.retract_end + margin) * TOKEN_RATE) / TOKEN_RATE
        w = np.where((t >= a) & (t <= b), 1.0, 0.0)
        if ramp > 0:
            w = np.maximum(w, np.where(t < a, ease((t - (a - ramp)) / ramp), 0.0))
            w = np.maximum(w, np.where(t > b, ease(((b + ramp) - t) / ramp), 0.0))
        stream_w[:, joints] = np.maximum(stream_w[:, joints], w[:, None])
        seams += [Seam(x, "rejoin", tuple(joints)) for x in (a - ramp / 2, b + ramp / 2) if 0 < x < t[-1]]
    # Keep the seams where a crossfade really happens (not inside another gesture's window).
    seams = [
        s
        for s in seams
        if np.any(
            (stream_w[int(round(s.time * FPS)), list(s.joints)] > 0)
            & (stream_w[int(round(s.time * FPS)), list(s.joints)] < 1)
        )
    ]
    return 1.0 - stream_w, seams


def base_layer(base: Motion, weight: np.ndarray) -> Layer:
    """A layer pulling the modelled joints toward `base` with per-frame, per-joint `weight` (T, 55)."""
    joints = np.asarray(MODELLED_JOINTS)
    rot = base.rotations[:, joints]
    target = np.empty((*rot.shape[:2], 4))
    for a in range(0, len(rot), BLOCK_FRAMES):  # per frame, in blocks: bounded temporaries
        target[a : a + BLOCK_FRAMES] = axis_angle_to_quat(rot[a : a + BLOCK_FRAMES].astype(np.float64))
    return Layer(0, joints, target, np.asarray(weight)[:, joints], "beat motion")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.r_[False, np.asarray(mask, dtype=bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def stroke_tokens(placed: Sequence[PlacedEvent]) -> list[tuple[int, int]]:
    """[start, stop) token ranges lying wholly inside the strokes, merged."""
    spans = []
    for ev in placed:
        if not ev.is_placed:
            continue
        k0 = int(np.ceil(ev.stroke_start * TOKEN_RATE - 1e-6))
        k1 = int(np.floor(ev.stroke_end * TOKEN_RATE + 1e-6))
        if k1 > k0:
            spans.append((k0, k1))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def splice(
    model: RhythmModel,
    features: np.ndarray,
    seconds: float,
    placed: Sequence[PlacedEvent],
    library: Library | ClipBank,
    *,
    seed: int = 0,
    settings: BlendSettings | None = None,
    base_codes: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
) -> SpliceResult:
    """Beat motion for `features` (tokens, 37) over `seconds`, with the placed gestures spliced in."""
    import time

    from gesticulator.rhythm.features import num_motion_frames
    from gesticulator.rhythm.model import ForcedSpan

    settings = settings or BlendSettings()
    clips = library if isinstance(library, ClipBank) else ClipBank(library)
    frames = num_motion_frames(seconds)
    opts = {"seed": seed, "temperature": settings.temperature, "top_k": settings.top_k}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if base_codes is None:
        base_codes = model.generate_codes(features, seconds, **opts)
    base = _held(model, model.decode(base_codes, num_frames=frames, metadata=metadata), features, settings)
    timings["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    layers, seams = build_layers(placed, clips, frames, settings)
    forced: list[tuple[int, int]] = []
    stream, spliced, plan = base, base_codes, None
    if layers and settings.force == "stroke":
        n = len(base_codes)
        plan = token_plan(placed, n, settings.regenerate_margin)
        forced = [(a, b) for a, b in _runs(plan == GESTURE)]
        if forced:
            composite = apply_layers(base, layers)
            codes = model.encode(composite)[:n]
            spans = [ForcedSpan(a, codes[a:b]) for a, b in forced]
            if settings.keep_base:
                spans += [ForcedSpan(a, base_codes[a:b]) for a, b in _runs(plan == BASE)]
            spliced = model.generate_codes(features, seconds, forced=spans, **opts)
            stream = model.decode(spliced, num_frames=frames, metadata=metadata)
            stream = _held(model, stream, features, settings, spans)
            edges = {k for span in forced for k in span} | {k for run in _runs(plan != BASE) for k in run}
            if settings.keep_base:
                # Away from the gestures (and on the joints they do not drive) the stream is put
                # back to the beat motion itself: the decoder is convolutional, so changed tokens
                # also change a few frames around them. Joined by crossfades (`rejoin_weights`).
                weight, joins = rejoin_weights(placed, frames, settings)
                stream = apply_layers(stream, [base_layer(base, weight)])
                seams += joins
            for k in sorted(edges):
                frame = min(frames - 1, k * FRAMES_PER_TOKEN)
                held = held_joints(layers, frame)
                if settings.keep_base:  # only the joints that follow the stream there
                    held |= {j for j in MODELLED_JOINTS if weight[frame, j] >= 1.0}
                free = tuple(j for j in MODELLED_JOINTS if j not in held)
                if free:
                    seams.append(Seam(k / TOKEN_RATE, "stream", free))
            seams.sort(key=lambda s: s.time)
    motion = apply_layers(stream, layers) if layers else stream.copy()
    motion = keep_beat(motion, stream, layers, settings.keep_beat, settings.beat_sigma)
    motion = counter_rotate_trunk(motion, layers)
    # The pelvis now partly comes from the beat motion (base layer): the legs go under it again.
    poses, trans = stand(motion.rotations)
    motion = motion.copy(poses=poses.reshape(motion.num_frames, NUM_JOINTS * 3), trans=trans)
    timings["splice"] = time.perf_counter() - t0
    return SpliceResult(motion, base, stream, layers, seams, forced, base_codes, spliced, plan, timings)


def _held(model: RhythmModel, motion: Motion, features: np.ndarray, settings: BlendSettings, forced=None):
    """The beat motion held through pauses, as `RhythmModel.generate` does (not in forced spans)."""
    if settings.hold_pause_seconds is None:
        return motion
    return model.hold_pauses(
        motion,
        features,
        forced=forced,
        min_seconds=settings.hold_pause_seconds,
        max_seconds=REST_PAUSE_SECONDS,
    )


# -- quality ---------------------------------------------------------------------------------------


def joint_speeds(
    positions: np.ndarray, fps: float = FPS, joints: Sequence[int] = MODELLED_JOINTS
) -> np.ndarray:
    """(T,) the fastest pelvis-relative joint speed (m/s) per frame, central differences."""
    p = positions[:, list(joints)] - positions[:, :1]
    if p.shape[0] < 2:
        return np.zeros(p.shape[0])
    v = np.gradient(p, axis=0) * fps
    return np.linalg.norm(v, axis=-1).max(axis=1)


def seam_speed_ratios(
    positions: np.ndarray,
    seams: Sequence[Seam | float],
    fps: float = FPS,
    *,
    half_window: float = 1 / 30,
    surround: float = 1.0,
) -> np.ndarray:
    """Per seam: the max joint speed (over the seam's joints) within +-`half_window` s of it
    (3 frames at 30 fps: the seam instant and its neighbours) divided by the max over the rest of
    the surrounding `surround` s centred on it. A velocity spike at the seam (a pose jump shows
    as one or two fast frames) gives a ratio well above 1; a smooth join, even a quick one, and
    a natural beat that happens to peak there stay near 1, as their speed peaks are wider than
    the seam window and show in the surrounding frames too. NaN when the motion is still around
    the seam or the seam lies within `surround/2` of an end. Plain floats are seams over all
    modelled joints."""
    cache: dict[tuple[int, ...], np.ndarray] = {}
    n = positions.shape[0]
    out = []
    for seam in seams:
        seam = seam if isinstance(seam, Seam) else Seam(float(seam), "", MODELLED_JOINTS)
        if seam.joints not in cache:
            cache[seam.joints] = joint_speeds(positions, fps, seam.joints)
        speed = cache[seam.joints]
        c = seam.time * fps
        lo, hi = int(round(c - surround / 2 * fps)), int(round(c + surround / 2 * fps))
        a, b = int(round(c - half_window * fps)), int(round(c + half_window * fps))
        if lo < 0 or hi >= n:
            out.append(np.nan)
            continue
        around = np.r_[speed[lo:a], speed[b + 1 : hi + 1]]
        ref = around.max() if around.size else 0.0
        out.append(speed[a : b + 1].max() / ref if ref > 1e-3 else np.nan)
    return np.asarray(out, dtype=np.float64)


def active_joints(event: PlacedEvent) -> list[int]:
    """The joints recognisability is measured on: the active arms (collar to wrist) and hands,
    or the head for head-only gestures."""
    out: list[int] = []
    for side in event.active_arms:
        out += list(BODY_PARTS[f"{side}_arm"]) + list(BODY_PARTS[f"{side}_hand"])
    if not out:
        for part in event.body_parts:
            out += list(BODY_PARTS.get(part, ()))
    return sorted(set(out))


def recognisability_cm(
    motion: Motion,
    placed: Sequence[PlacedEvent],
    library: Library | ClipBank,
    positions: np.ndarray | None = None,
) -> list[float]:
    """Per placed event: mean joint-position error (cm, pelvis-relative) over the stroke between
    the final motion and the library clip played at the same clip times, on the active joints."""
    from gesticulator.eval.metrics import joint_position_error_cm
    from gesticulator.motion.kinematics import joint_positions

    clips = library if isinstance(library, ClipBank) else ClipBank(library)
    pos = joint_positions(motion) if positions is None else positions
    out = []
    for ev in placed:
        if not ev.is_placed:
            continue
        f0 = int(np.ceil(ev.stroke_start * motion.fps - 1e-6))
        f1 = min(motion.num_frames, int(np.floor(ev.stroke_end * motion.fps + 1e-6)) + 1)
        if f1 <= f0:
            out.append(float("nan"))
            continue
        tau = clip_time(ev, clips.phases(ev), np.arange(f0, f1) / motion.fps)
        clip = clips.sample_motion(ev, tau).copy(betas=motion.betas)
        out.append(joint_position_error_cm(pos[f0:f1], joint_positions(clip), joints=active_joints(ev)))
    return out


__all__ = [
    "BlendSettings",
    "ClipBank",
    "Layer",
    "Seam",
    "SpliceResult",
    "active_joints",
    "apply_layers",
    "build_layers",
    "joint_speeds",
    "qslerp",
    "recognisability_cm",
    "sample_quats",
    "seam_speed_ratios",
    "ease",
    "splice",
    "stroke_tokens",
    "token_plan",
]
