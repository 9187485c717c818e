"""Procedural co-speech motion: beat gestures driven by a voice's prosody, on the authoring body.

`synthesize(transcript, prosody, seed)` turns word times and prosody (onsets, per-word emphasis
and stressed points, energy) into a 30 fps SMPL-X `Motion` as long as the audio. It is the
motion half of the bootstrap corpus the default rhythm model is trained on, so it aims at the
statistics of real co-speech motion rather than at any one gesture.

What it does, layer by layer:

* **Gesture units.** Words are grouped into units separated by pauses longer than
  `SynthSettings.retract_pause`. Most units are gestured, with one or both hands (the other hand
  usually follows low and small): the hands *prepare* from rest into a gesture space in front
  of the torso, make several *beats* and *retract* to rest at the next long pause (or hold in
  the gesture space when the next unit follows soon). A unit that is not gestured mostly gets
  small beats with the hands low by the hips. Silence is a still rest with breathing.
* **Beats.** Candidate beat times are the stressed point of each word (`word_peak_times`)
  snapped to the nearest audio onset; stressed and content words are likelier to get one, and
  beats are at least ~0.3 s apart. Each beat is a key pose pair: a *ready* pose slightly before
  and the *stroke* pose exactly at the beat, with zero key velocity at both, so the stroke ends
  (the hand's speed minimum and direction reversal) on the stressed syllable. Beat types:
  downward baton, palm-up open hand, side sweep and a small wrist flick; hand shapes relaxed,
  loose, open, cupped, loose point and open pinch (`hands.SHAPES`). Amplitude follows the word's
  emphasis and a per-unit intensity, limited so that no segment is faster than a natural pace
  (wrist peaks ~2 m/s); the gesture space wanders around the unit's home between beats.
* **Arms.** Key poses are solved with a vectorised version of the authoring IK
  (`gesticulator.library.authoring.ik`: collar lift, two-bone elbow, swivel chosen to keep the
  elbow out of the torso, forearm twist from the wanted palm direction, wrist flexion) and
  interpolated per joint with slerp on the authoring ease curves -- no per-frame IK. While a
  hand is up, a slow loop and wandering of shoulder, elbow and wrist run on top, so the hand
  reverses on a curved path instead of stopping dead.
* **Trunk and head.** Posture (lean, turn, side bend) and weight shifts change at pauses;
  breathing (~0.25 Hz), slow sway and a slow loop of the pelvis, trunk and head run all the
  time, livelier while speaking; every beat bobs the trunk and most nod the head (bumps whose
  overlaps are soft-limited). The body layers run on a clock that slows on every syllable onset
  and catches up in between (`entrain`), so the trunk and head ride the rhythm of the voice.
  The head keeps looking at the audience (it takes back most of the trunk's turn and bend).
  Overall joint speeds are calibrated to the BEAT2 dataset's mean per-joint speeds.
* **Legs.** The pelvis shifts its weight (sideways shift with the matching hip roll, small
  yaw, pitch and bob) over soft knees; each leg is solved with two-bone IK from the fixed ankle
  and the ankle is counter-rotated, so the feet stay exactly planted (no foot sliding).
* **Semantic clips.** About one every `semantic_every` seconds, a library gesture whose trigger
  words occur in the transcript is placed with its apex on the trigger word's stressed point
  and cross-faded in (slerp) over the procedural arms, head and torso; the arms involved rest
  around it and the trunk calms down while it plays. Clips are slowed (up to 1.8x) where their
  hands would move faster than `max_clip_speed`.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same inputs and seed give the
same motion, bit for bit.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from scipy.special import betainc

from gesticulator.library.authoring import body, hands, ik
from gesticulator.library.authoring.compile import (
    EASES,
    HEAD_SHARE,
    SPINE_SHARE,
    rest_pose,
)
from gesticulator.motion import skeleton as sk
from gesticulator.motion.rotations import quat_slerp
from gesticulator.motion.stance import planted_stance
from gesticulator.types import CANONICAL_FPS, Motion, Prosody, Transcript

J = sk.JOINT_INDEX
SIDES = ("right", "left")
ARM_PARTS = ("collar", "shoulder", "elbow", "wrist")
BEAT_TYPES = ("baton", "palm_up", "sweep", "flick")
BEAT_SHAPES = ("relaxed", "loose", "open", "cupped", "point", "pinch_open")
STOPWORDS = frozenset(
    "a an the and or but so of to in on at for with from by as is are was were be been am it its this that "
    "these those i you he she we they me him her us them my your his our their do does did not no if then "
    "than there here what which who will would can could should just very really about up out into over "
    "has have had".split()
)  # fmt: skip
_WORD = re.compile(r"[^a-z0-9']+")


@dataclass(frozen=True)
class SynthSettings:
    """Knobs of the procedural motion. Defaults are calibrated against BEAT2: the wrists' mean speed
    while speaking and the time with hands in the gesture space against the take
    2_scott_0_1_1, the per-joint mean speeds against the dataset's means
    (`gesticulator.eval.metrics.BEAT2_MEAN_SPEED`)."""

    fps: float = CANONICAL_FPS
    amplitude: float = 1.0  # scales beat amplitude (metres of hand travel)
    beat_rate: float = 1.4  # scales the probability that a stressed word gets a beat
    gesture_prob: float = 0.9  # chance that a unit (speech between long pauses) is gestured
    both_hands: float = 0.55  # share of gestured units made with both hands
    helper_hand: float = 0.9  # in one-handed units, chance that the other hand follows, low and small
    low_beats: float = 0.7  # in units without gestures, chance that both hands make small low beats
    retract_pause: float = 0.75  # seconds of pause that end a gesture unit
    hold_gap: float = 1.2  # units closer than this (s) keep the hands up in between
    min_beat_gap: float = 0.3  # seconds between beats of one hand, at least
    onset_snap: float = 0.12  # snap a beat to an audio onset this close (s)
    semantic_every: float = 25.0  # mean seconds between semantic library clips (0: none)
    max_clip_speed: float = 3.3  # library clips are slowed (up to 1.8x) to keep hands under this, m/s
    head_accent: float = 1.0  # scales head nods/tilts
    arm_wander: float = 9.0  # degrees of slow shoulder/elbow/wrist wandering while gesturing
    sway: float = 0.9  # scales the slow torso sway
    loop: float = 1.8  # scales the trunk's, head's and pelvis's slow loops
    bob: float = 0.8  # scales the torso bob and head nod on beats
    entrain: float = 0.9  # how much the trunk and head slow down on each syllable onset (0: not)
    breathing: float = 1.0  # scales breathing


@dataclass
class Beat:
    time: float
    side: str  # right | left | both
    kind: str
    amplitude: float  # metres
    word: int  # word index


@dataclass
class SemanticUse:
    gesture_id: str
    take: str
    side: str
    word_index: int
    word: str
    apex: float  # seconds: where the clip's apex was placed
    start: float
    end: float
    stretch: float = 1.0  # clip played this many times slower (its peak hand speed capped)


@dataclass
class SynthPlan:
    """What the synthesizer decided (for tests, reports and the corpus manifest)."""

    duration: float
    num_frames: int
    units: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, hands)
    beats: list[Beat] = field(default_factory=list)
    semantic: list[SemanticUse] = field(default_factory=list)

    def beat_times(self, side: str | None = None) -> np.ndarray:
        keep = [b.time for b in self.beats if side is None or b.side in (side, "both")]
        return np.array(sorted(keep))

    def summary(self) -> dict[str, Any]:
        return {
            "units": len(self.units),
            "beats": len(self.beats),
            "semantic": [asdict(s) for s in self.semantic],
        }


# -- small rotation helpers (quaternions are x, y, z, w like scipy) ------------------------------------
def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) about unit axes (N, 3) by angles (N,)."""
    return Rotation.from_rotvec(axis * angle[:, None]).as_matrix()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _align(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotations taking directions u (N, 3) to v (N, 3)."""
    u, v = _unit(u), _unit(v)
    axis = np.cross(u, v)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(u * v, -1)
    axis = np.where(s[:, None] > 1e-9, axis / np.maximum(s, 1e-12)[:, None], np.array([0.0, 0.0, 1.0]))
    return _axis_angle(axis, np.arctan2(s, c))


def _slerp(qa: np.ndarray, qb: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Quaternion slerp, qa/qb (..., 4), u broadcastable to (..., 1)."""
    return quat_slerp(qa, qb, np.asarray(u)[..., 0])


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        -1,
    )


def _quat(rotvec: np.ndarray) -> np.ndarray:
    shape = rotvec.shape[:-1]
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_quat().reshape(*shape, 4)


def _mirror_rotvec(rv: np.ndarray) -> np.ndarray:
    out = np.array(rv, dtype=np.float64, copy=True)
    out[..., 1:] *= -1.0
    return out


def ease(s: np.ndarray, kind: np.ndarray | str = "smooth") -> np.ndarray:
    """The authoring ease curves (0 -> 1, zero velocity at both ends), per element."""
    s = np.clip(s, 0.0, 1.0)
    if isinstance(kind, str):
        return betainc(*EASES[kind], s)
    out = np.empty_like(s)
    for k, name in enumerate(EASE_KINDS):
        m = kind == k
        if m.any():
            out[m] = betainc(*EASES[name], s[m])
    return out


EASE_KINDS = ("smooth", "hit", "snap")
SMOOTH, HIT, SNAP = 0, 1, 2


# -- vectorised arm IK ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ArmModel:
    chest: np.ndarray  # spine3 rest position in the solver's (right-arm) frame
    chain: ik.ArmChain
    dist_table: np.ndarray  # shoulder-wrist distance for elbow angles `theta_table` (decreasing)
    theta_table: np.ndarray
    capsules: tuple[np.ndarray, np.ndarray, np.ndarray]  # torso segments (a, b, radius), solver frame


@cache
def _arm_model(side: str) -> _ArmModel:
    _, pos = body.skeleton()
    chain = ik.arm_chain(side)
    theta = np.linspace(ik.ELBOW_MIN, ik.ELBOW_MAX, 512)
    dist = np.linalg.norm(chain.upper[None] + np.einsum("nij,j->ni", _ry(theta), chain.fore), axis=-1)
    a = np.stack([pos[J[x]] for x, _, _ in body.TORSO_CAPSULES])
    b = np.stack([pos[J[y]] for _, y, _ in body.TORSO_CAPSULES])
    r = np.array([rr for _, _, rr in body.TORSO_CAPSULES])
    chest = pos[J["spine3"]].copy()
    if side == "left":
        chest, a, b = ik.MIRROR @ chest, a @ ik.MIRROR, b @ ik.MIRROR
    return _ArmModel(chest, chain, dist[::-1].copy(), theta[::-1].copy(), (a, b, r))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3 - 2 * x)


def solve_arms(
    side: str,
    targets: np.ndarray,
    palms: np.ndarray,
    wrist_flex: np.ndarray,
    swivel: np.ndarray | None = None,
    wrist_dev: np.ndarray | None = None,
) -> np.ndarray:
    """Local rotations (N, 4, 3) rotation vectors of collar, shoulder, elbow, wrist of `side`.

    `targets` (N, 3) are wrist positions in the lateral body frame (x out toward `side`, y up,
    z forward, metres from the rest chest joint spine3); `palms` (N, 3) the wanted palm directions
    in the same frame (the forearm twist that best realises it is used, within natural limits);
    `wrist_flex` (N,) radians (+ toward the palm); `swivel` (N,) radians (+ lifts the elbow out).
    Follows `ik.solve_arm` (collar, two-bone elbow, pole, limits), vectorised, with a small swivel
    search that keeps the elbow out of the torso instead of the full one."""
    m = _arm_model(side)
    n = len(targets)
    lat = np.array([-1.0, 1.0, 1.0])
    tgt = m.chest + targets * lat  # solver frame (right-arm world)
    palm = _unit(palms * lat)
    swivel = np.zeros(n) if swivel is None else swivel
    dev = np.zeros(n) if wrist_dev is None else wrist_dev
    collar_pos = m.chest + m.chain.collar
    shoulder_rest = collar_pos + m.chain.shoulder
    d = tgt - shoulder_rest
    up = np.clip((d[:, 1] + 0.05) / (0.5 * 0.52 + 0.05), 0.0, 1.0)
    fwd = np.clip((d[:, 2] - 0.25) / 0.25, 0.0, 1.0)
    elev = ik.COLLAR_ELEVATION_MAX * _smoothstep(up)
    prot = ik.COLLAR_PROTRACTION_MAX * _smoothstep(fwd)
    collar = _ry(prot) @ _rz(-elev)  # (N, 3, 3)
    shoulder = collar_pos + collar @ m.chain.shoulder
    dvec = tgt - shoulder
    dist = np.linalg.norm(dvec, axis=-1)
    theta = np.interp(dist, m.dist_table, m.theta_table)
    ry = _ry(theta)
    v = m.chain.upper + np.einsum("nij,j->ni", ry, m.chain.fore)
    axis = _unit(dvec)
    base = _align(v, axis)
    e0 = base @ m.chain.upper
    pole = _unit(ik.POLE)

    def perp(x: np.ndarray) -> np.ndarray:
        return _unit(x - np.sum(x * axis, -1, keepdims=True) * axis)

    pe, pp = perp(e0), perp(np.broadcast_to(pole, e0.shape))
    phi0 = np.arctan2(np.sum(np.cross(pe, pp) * axis, -1), np.sum(pe * pp, -1))
    # Swivel candidates: the pole direction (+ the requested offset), then further out if the
    # elbow would come near the torso.
    cands = np.radians(np.arange(-30.0, 61.0, 10.0))
    best_cost = np.full(n, np.inf)
    best_phi = phi0 + swivel
    a, b, r = m.capsules
    for dphi in cands:
        phi = phi0 + swivel + dphi
        r_sw = _axis_angle(axis, phi) @ base
        elbow = shoulder + r_sw @ m.chain.upper
        clr = np.min(body._segment_distance(elbow[:, None], a[None], b[None]) - r[None], axis=-1) - 0.05
        cost = 0.6 * dphi**2 + 40.0 * np.minimum(clr, 0.0) ** 2 / 0.01
        better = cost < best_cost
        best_cost = np.where(better, cost, best_cost)
        best_phi = np.where(better, phi, best_phi)
    r_sw = _axis_angle(axis, best_phi) @ base
    shoulder_local = np.swapaxes(collar, -1, -2) @ r_sw
    # forearm twist toward the wanted palm direction
    fore = _unit(m.chain.fore)
    elbow_world = r_sw @ ry
    p_local = np.einsum("nji,nj->ni", elbow_world, palm)  # E^T p
    n0 = np.array([0.0, -1.0, 0.0])
    n0p = _unit(n0 - np.dot(n0, fore) * fore)
    plp = _unit(p_local - np.sum(p_local * fore, -1, keepdims=True) * fore)
    twist = np.arctan2(np.sum(np.cross(n0p, plp) * fore, -1), np.sum(n0p * plp, -1))
    twist = np.clip(twist, ik.TWIST_RANGE[0], ik.TWIST_RANGE[1])
    elbow_local = ry @ _axis_angle(np.broadcast_to(fore, (n, 3)), twist)
    flex = np.clip(wrist_flex, ik.WRIST_FLEX[0], ik.WRIST_FLEX[1])
    dev = np.clip(dev, ik.WRIST_DEV[0], ik.WRIST_DEV[1])
    wrist_rv = np.stack([np.zeros(n), dev, flex], -1)
    out = np.stack(
        [
            Rotation.from_matrix(collar).as_rotvec(),
            Rotation.from_matrix(shoulder_local).as_rotvec(),
            Rotation.from_matrix(elbow_local).as_rotvec(),
            wrist_rv,
        ],
        1,
    )
    return _mirror_rotvec(out) if side == "left" else out


@cache
def _hand_rotvecs(shape: str, side: str, curl: float) -> np.ndarray:
    flat = hands.flat_pose(shape, curl_scale=curl)
    return hands.mirror_hand(flat) if side == "left" else flat


# -- planning -----------------------------------------------------------------------------------------
def _norm_word(w: str) -> str:
    return _WORD.sub("", w.lower())


@dataclass
class _Unit:
    first: int
    last: int
    start: float
    end: float


def _units(transcript: Transcript, pause: float) -> list[_Unit]:
    words = [w for w in transcript.words if w.end > w.start]
    idx = [i for i, w in enumerate(transcript.words) if w.end > w.start]
    out: list[_Unit] = []
    for i, w in zip(idx, words, strict=True):
        if out and w.start - out[-1].end <= pause:
            out[-1].last, out[-1].end = i, w.end
        else:
            out.append(_Unit(i, i, w.start, w.end))
    return out


def _beat_candidates(transcript: Transcript, prosody: Prosody, snap: float) -> list[tuple[float, float, int]]:
    """(time, strength, word) per spoken word: the stressed point snapped to a nearby onset."""
    onsets = np.asarray(prosody.onset_times, dtype=np.float64)
    out = []
    for i, w in enumerate(transcript.words):
        if w.end <= w.start:
            continue
        t = float(prosody.word_peak_times[i]) if i < len(prosody.word_peak_times) else w.start
        if len(onsets):
            k = int(np.argmin(np.abs(onsets - t)))
            if abs(onsets[k] - t) <= snap:
                t = float(onsets[k])
        emph = float(prosody.word_emphasis[i]) if i < len(prosody.word_emphasis) else 0.3
        token = _norm_word(w.word)
        strength = emph * (0.45 if token in STOPWORDS else 1.0)
        if len(token) >= 6:
            strength = min(1.0, strength + 0.1)
        out.append((t, strength, i))
    return out


# -- keys -------------------------------------------------------------------------------------------------
@dataclass
class _Key:
    time: float
    target: np.ndarray | None  # lateral frame wrist target; None = rest
    palm: np.ndarray | None = None
    flex: float = 0.0
    shape: str = "relaxed"
    curl: float = 1.0
    ease: int = SMOOTH  # ease of the segment arriving at this key
    swivel: float = 0.0


@dataclass
class _ArmTrack:
    keys: list[_Key] = field(default_factory=list)

    def add(self, key: _Key) -> None:
        if self.keys and key.time <= self.keys[-1].time + 1e-3:
            key.time = self.keys[-1].time + 1e-3
        self.keys.append(key)


BEAT_TYPE_P = (0.34, 0.26, 0.14, 0.26)
BEAT_SHAPE_P = (0.22, 0.24, 0.2, 0.12, 0.1, 0.12)
BEAT_AMPLITUDE = 0.22  # metres of hand travel scale for a typical stressed word

PALMS = {
    "down_in": np.array([-0.55, -0.8, 0.1]),
    "in": np.array([-1.0, -0.15, 0.1]),
    "in_up": np.array([-0.9, 0.3, 0.1]),
    "up_in": np.array([-0.6, 0.75, 0.1]),
    "up": np.array([-0.25, 1.0, 0.15]),
    "down": np.array([-0.2, -1.0, 0.1]),
}


class _Planner:
    def __init__(self, transcript: Transcript, prosody: Prosody, rng: np.random.Generator, st: SynthSettings):
        self.tr, self.pr, self.rng, self.st = transcript, prosody, rng, st
        self.duration = float(prosody.duration or prosody.num_frames / prosody.fps)
        self.tracks = {s: _ArmTrack() for s in SIDES}
        self.plan = SynthPlan(self.duration, 0)
        self.rest_jitter = {s: rng.normal(0, 1, 3) for s in SIDES}

    # -- poses of one beat
    def _beat_pair(self, kind: str, home: np.ndarray, a: float, r: np.random.Generator):
        """(ready target, ready palm, ready flex, stroke target, stroke palm, stroke flex)."""
        jitter = r.normal(0, 0.15, 3)
        if kind == "baton":
            up, down = np.array([0.0, 0.55, -0.15]), np.array([0.05, -0.45, 0.2])
            palm_r, palm_s = PALMS["down_in"], PALMS["down_in"]
            flex_r, flex_s = np.radians(-12), np.radians(14)
        elif kind == "palm_up":
            up, down = np.array([-0.3, 0.3, -0.25]), np.array([0.4, -0.3, 0.35])
            palm_r, palm_s = PALMS["in_up"], PALMS["up_in"]
            flex_r, flex_s = np.radians(-5), np.radians(-15)
        elif kind == "sweep":
            up, down = np.array([-0.45, 0.15, 0.0]), np.array([0.55, -0.2, 0.08])
            palm_r, palm_s = PALMS["down"], PALMS["down_in"]
            flex_r, flex_s = np.radians(-8), np.radians(5)
        else:  # flick: small arm motion, the wrist does the work
            up, down = np.array([0.0, 0.25, 0.0]), np.array([0.05, -0.25, 0.08])
            palm_r, palm_s = PALMS["in"], PALMS["down_in"]
            flex_r, flex_s = np.radians(-28), np.radians(22)
        ready = home + a * (up + 0.5 * jitter)
        stroke = home + a * (down + 0.5 * jitter)
        return ready, palm_r, flex_r, stroke, palm_s, flex_s

    def _home(self, r: np.random.Generator, low: bool = False) -> np.ndarray:
        if low:  # hand low, forearm a little raised: small beats near rest
            return np.array([r.uniform(0.22, 0.28), r.uniform(-0.42, -0.34), r.uniform(0.1, 0.15)])
        return np.array([r.uniform(0.1, 0.3), r.uniform(-0.28, -0.06), r.uniform(0.15, 0.3)])

    @staticmethod
    def _clamp_space(p: np.ndarray) -> np.ndarray:
        """Keep a wrist target in a comfortable gesture space in front of the torso."""
        out = p.copy()
        out[0] = np.clip(out[0], 0.02, 0.45)
        out[1] = np.clip(out[1], -0.4, 0.06)
        # the nearer the midline, the further forward (hands stay clear of the chest and belly)
        min_fwd = 0.12 + 0.12 * np.clip((0.2 - out[0]) / 0.15, 0.0, 1.0)
        out[2] = np.clip(out[2], min_fwd, 0.42)
        return out

    @staticmethod
    def _clamp_low(p: np.ndarray) -> np.ndarray:
        """Low hands stay beside and in front of the hips (clear of the pelvis when the trunk turns)."""
        lo, hi = np.array([0.22, -0.44, 0.1]), np.array([0.32, -0.3, 0.18])
        return np.clip(p, lo, hi)

    def _retract(self, side: str, at: float, r: np.random.Generator) -> None:
        """Bring a hand that is still up back to rest, starting no earlier than `at`."""
        track = self.tracks[side]
        if not track.keys or track.keys[-1].target is None:
            return
        last = track.keys[-1]
        start = max(at, last.time + 0.05)
        if start > last.time + 0.1:
            track.add(
                _Key(start, last.target + r.normal(0, 0.01, 3), last.palm, last.flex, last.shape, last.curl)
            )
        back = max(r.uniform(0.5, 0.8), 1.3 * float(np.linalg.norm(last.target - _rest_wrist(side))))
        track.add(_Key(start + back, None))

    def run(self, library=None) -> SynthPlan:
        st, rng = self.st, self.rng
        units = _units(self.tr, st.retract_pause)
        cands = _beat_candidates(self.tr, self.pr, st.onset_snap)
        busy = (
            self._semantic(library)
            if library is not None and st.semantic_every > 0
            else {s: [] for s in SIDES}
        )
        for u_i, unit in enumerate(units):
            r = np.random.default_rng(rng.integers(2**63))
            dur = unit.end - unit.start
            p_active = st.gesture_prob if dur > 0.9 else 0.45 * st.gesture_prob
            next_start = units[u_i + 1].start if u_i + 1 < len(units) else self.duration + 10
            unit_cands = [c for c in cands if unit.first <= c[2] <= unit.last]
            active = r.random() < p_active
            quiet = not active and r.random() < st.low_beats  # hands stay low, with small beats
            beats = self._pick_beats(unit_cands, r) if active or quiet else []
            if (active or quiet) and not beats and unit_cands:
                beats = [max(unit_cands, key=lambda c: c[1])]
            both = r.random() < st.both_hands
            main = "right" if r.random() < 0.68 else "left"
            other = "left" if main == "right" else "right"
            helper = not both and r.random() < st.helper_hand
            if quiet:
                both, helper = True, False
            sides = ["right", "left"] if both else [main] + ([other] if helper else [])
            if not beats:
                sides = []
            for side in SIDES:  # a hand still up from an earlier unit that this one does not use
                if side not in sides:
                    self._retract(side, unit.start - 0.3, r)
            if not beats:
                self.plan.units.append((unit.start, unit.end, "none"))
                continue
            self.plan.units.append((unit.start, unit.end, "low" if quiet else "both" if both else main))
            intensity = r.uniform(0.8, 1.2)
            kind = str(r.choice(BEAT_TYPES, p=BEAT_TYPE_P))
            for side in sides:
                free = [b for b in beats if not _in_busy(b[0], busy[side])]
                low = quiet or (side == other and helper)
                if not free:
                    self._retract(side, unit.start - 0.3, r)
                    continue
                amp = intensity * (0.45 if low else 1.0 if side == main or not both else r.uniform(0.6, 1.0))
                made = self._unit_keys(side, free, "flick" if low else kind, amp, unit, next_start, r, low)
                if side == main:
                    self.plan.beats += [Beat(t, "both" if both else side, k, a, w) for t, k, a, w in made]
        for side in SIDES:
            self._retract(side, self.tracks[side].keys[-1].time + 0.3 if self.tracks[side].keys else 0.0, rng)
            for a, b in busy[side]:
                self._clear(side, a, b)
        return self.plan

    def _clear(self, side: str, a: float, b: float) -> None:
        """Rest for `side` over [a, b] (a semantic clip plays there): keys inside (and a
        retraction's worth before) are dropped, the hand reaches rest by `a` and prepares again
        after `b`. Beats dropped with them leave the plan."""
        keys = self.tracks[side].keys
        before = [k for k in keys if k.time < a - 0.6]
        after = [k for k in keys if k.time > b + 0.35]
        mid: list[_Key] = []
        if before and before[-1].target is not None:
            mid.append(_Key(max(a - 0.05, before[-1].time + 0.4), None))
        if after and after[0].target is not None:
            mid.append(_Key(b, None))
        elif after:
            mid.append(_Key(b, None))
        self.tracks[side].keys = before + mid + after
        lo, hi = a - 0.6, b + 0.35
        self.plan.beats = [
            x for x in self.plan.beats if not (lo <= x.time <= hi and x.side in (side, "both"))
        ]

    def _pick_beats(self, cands, r: np.random.Generator) -> list[tuple[float, float, int]]:
        st = self.st
        out: list[tuple[float, float, int]] = []
        last = -10.0
        gap = st.min_beat_gap * r.uniform(1.0, 1.25)
        for t, s, w in sorted(cands):
            since = t - last
            if since < gap:
                # a much stronger candidate right after a weak beat replaces it
                if out and s > out[-1][1] + 0.35 and (len(out) < 2 or t - out[-2][0] >= gap):
                    out[-1] = (t, s, w)
                    last = t
                continue
            p = (0.3 + 1.1 * s) * st.beat_rate
            if since > 0.9:
                p += 0.3
            if r.random() < min(p, 0.97):
                out.append((t, s, w))
                last = t
        return out

    def _unit_keys(self, side, beats, kind, intensity, unit, next_start, r, low=False) -> list:
        """Keys of one arm for one unit; returns the beats made as (time, kind, amplitude, word)."""
        st = self.st
        track = self.tracks[side]
        home = self._home(r, low)
        place = home.copy()
        shape = str(r.choice(BEAT_SHAPES, p=BEAT_SHAPE_P))
        curl = float(r.uniform(0.85, 1.1))
        swivel = float(r.normal(0.0, np.radians(6)))
        prep = r.uniform(0.35, 0.6)
        stroke_dur0 = r.uniform(0.16, 0.24)
        up = bool(track.keys) and track.keys[-1].target is not None
        if not up:
            # prepare from rest, at a natural pace for the distance; a first beat without room
            # for it is skipped
            prep = max(prep, 1.9 * float(np.linalg.norm(home - _rest_wrist(side))))
            earliest = track.keys[-1].time + 0.05 if track.keys else 0.0
            while beats and beats[0][0] - stroke_dur0 - earliest < 0.85 * prep:
                beats = beats[1:]
            if not beats:
                return []
            track.add(_Key(max(beats[0][0] - stroke_dur0 - prep, earliest), None))
        cur_kind = kind
        made = []
        for i, (t, strength, w) in enumerate(beats):
            if i and r.random() < 0.15 and not low:
                cur_kind = str(r.choice(BEAT_TYPES, p=BEAT_TYPE_P))
                shape = str(r.choice(BEAT_SHAPES, p=BEAT_SHAPE_P))
            # the gesture space wanders around the unit's home (mean-reverting)
            place = 0.7 * place + 0.3 * home + r.normal(0.0, 0.035, 3)
            place = self._clamp_low(place) if low else self._clamp_space(place)
            a = BEAT_AMPLITUDE * st.amplitude * intensity * (0.6 + 0.6 * strength)
            if cur_kind == "flick":
                a *= 0.6
            # a beat soon after the previous one is smaller: up and down again at a natural pace
            if track.keys and track.keys[-1].target is not None:
                a = min(a, (t - track.keys[-1].time) / 2.8)
            ready, palm_r, flex_r, stroke, palm_s, flex_s = self._beat_pair(cur_kind, place, a, r)
            clamp = self._clamp_low if low else self._clamp_space
            ready, stroke = clamp(ready), clamp(stroke)
            if low:  # low hands keep the palm toward the thigh (fingers clear of the hips)
                palm_r = palm_s = PALMS["in"]
            prev = track.keys[-1]
            travel = float(np.linalg.norm(stroke - ready))
            stroke_dur = max(stroke_dur0 * r.uniform(0.85, 1.15), 1.3 * travel)  # wrist peak < ~2 m/s
            stroke_dur = float(np.clip(stroke_dur, 0.1, 0.5 * (t - prev.time)))
            gap = t - stroke_dur - prev.time
            if prev.target is not None:
                # no faster than a natural pace: the way back up starts from where the last
                # stroke ended, and the stroke itself must fit its time
                back = float(np.linalg.norm(ready - prev.target))
                if back > 0 and 1.3 * back > gap:
                    ready = prev.target + (ready - prev.target) * gap / (1.3 * back)
                travel = float(np.linalg.norm(stroke - ready))
                if travel > 0 and 1.3 * travel > stroke_dur:
                    stroke = ready + (stroke - ready) * stroke_dur / (1.3 * travel)
            if i and gap > 0.6 and prev.target is not None:
                # between strokes far apart the hand drifts on toward the next one
                mid = 0.5 * (prev.target + ready) + r.normal(0, 0.04, 3)
                mid = self._clamp_low(mid) if low else self._clamp_space(mid)
                track.add(_Key(prev.time + r.uniform(0.3, 0.45) * gap, mid, prev.palm, 0.0, prev.shape, prev.curl,
                               SMOOTH, swivel))  # fmt: skip
            track.add(_Key(t - stroke_dur, ready, palm_r, flex_r, shape, curl, SMOOTH, swivel))
            track.add(_Key(t, stroke, palm_s, flex_s, shape, curl, HIT, swivel))
            made.append((t, cur_kind, round(float(a), 4), w))
        # after the last beat: recoil, hold, then retract (or keep holding into the next unit)
        last = track.keys[-1]
        hold = last.target + np.array([0.0, 0.3, -0.1]) * a + r.normal(0, 0.02, 3)
        hold = self._clamp_low(hold) if low else self._clamp_space(hold)
        track.add(
            _Key(
                last.time + r.uniform(0.25, 0.4), hold, last.palm, 0.0, last.shape, last.curl, SMOOTH, swivel
            )
        )
        end_hold = max(unit.end + r.uniform(0.15, 0.5), track.keys[-1].time + 0.1)
        track.add(_Key(end_hold, hold + r.normal(0, 0.025, 3), last.palm, 0.0, last.shape, last.curl))
        if next_start - end_hold >= st.hold_gap:
            back = max(r.uniform(0.5, 0.8), 1.3 * float(np.linalg.norm(hold - _rest_wrist(side))))
            track.add(_Key(end_hold + back, None))
        return made

    # -- semantic clips
    def _semantic(self, library) -> dict[str, list[tuple[float, float]]]:
        busy: dict[str, list[tuple[float, float]]] = {s: [] for s in SIDES}
        st, r = self.st, np.random.default_rng(self.rng.integers(2**63))
        words = [_norm_word(w.word) for w in self.tr.words]
        triggers = _trigger_table(library)
        found: list[tuple[int, str]] = []  # (word index, gesture id)
        for i in range(len(words)):
            for n in (4, 3, 2, 1):
                phrase = " ".join(words[i : i + n])
                for gid in triggers.get(phrase, ()):
                    found.append((i, gid))
        if not found:
            return busy
        want = self.duration / st.semantic_every * r.uniform(0.6, 1.4)
        count = int(want) + (1 if r.random() < want - int(want) else 0)
        order = r.permutation(len(found))
        chosen: list[SemanticUse] = []
        for k in order:
            if len(chosen) >= count:
                break
            wi, gid = found[k]
            word = self.tr.words[wi]
            if word.end <= word.start:
                continue
            g = library.get(gid)
            take = g.takes[int(r.integers(len(g.takes)))]
            ph = g.phases_of(take)
            stretch = _clip_stretch(library, gid, take.id, st.max_clip_speed)
            apex = float(self.pr.word_peak_times[wi]) if wi < len(self.pr.word_peak_times) else word.start
            start = apex - ph.apex * stretch
            side = g.handedness
            if side in ("right", "left") and r.random() < 0.3:
                side = "left" if side == "right" else "right"
            end = start + ph.retract_end * stretch + 0.1
            if start < 0.2 or end > self.duration - 0.2:
                continue
            if any(not (end + 3.0 < c.start or start > c.end + 3.0) for c in chosen):
                continue
            chosen.append(
                SemanticUse(
                    gid, take.id, side, wi, word.word, round(apex, 4), round(start, 4), round(end, 4), stretch
                )
            )
        chosen.sort(key=lambda c: c.start)
        for c in chosen:
            for s in SIDES:
                if c.side in (s, "both"):
                    busy[s].append((c.start - 0.3, c.end + 0.1))
        self.plan.semantic = chosen
        return busy


def _clip_stretch(library, gesture_id: str, take_id: str, max_speed: float) -> float:
    """How much slower to play a clip so its hands (wrists and fingers) stay under `max_speed` m/s
    (1.0 .. 1.8): the authored clips are brisk, and our trunk moves under them too."""
    key = (str(library.clip_path(gesture_id, take_id)), gesture_id, take_id)
    peak = _CLIP_PEAK.get(key)
    if peak is None:
        from gesticulator.motion.kinematics import joint_positions

        clip = library.clip(gesture_id, take_id)
        pos = joint_positions(clip)[:, [J["left_wrist"], J["right_wrist"], *sk.LEFT_HAND, *sk.RIGHT_HAND]]
        peak = float(np.max(np.linalg.norm(np.gradient(pos, axis=0), axis=-1)) * clip.fps)
        _CLIP_PEAK[key] = peak
    return round(float(np.clip(peak / max_speed, 1.0, 1.8)), 3)


_CLIP_PEAK: dict[tuple, float] = {}


@cache
def _rest_wrist(side: str) -> np.ndarray:
    """The wrist at rest in the lateral chest frame of the arm solver (metres from spine3)."""
    rv = rest_pose().copy()
    for i, part in enumerate(ARM_PARTS):
        rv[J[f"{side}_{part}"]] = _rest_arm(side, np.zeros(3))[i]
    pos, _ = body.fk_axis_angle(rv)
    d = pos[J[f"{side}_wrist"]] - pos[J["spine3"]]
    return np.array([abs(d[0]), d[1], d[2]])


def _in_busy(t: float, spans: list[tuple[float, float]]) -> bool:
    return any(a - 0.25 <= t <= b + 0.25 for a, b in spans)


def _trigger_table(library) -> dict[str, tuple[str, ...]]:
    key = id(library)
    cached = _TRIGGERS.get(key)
    if cached is not None and cached[0] is library:
        return cached[1]
    table: dict[str, list[str]] = {}
    for g in library.gestures():
        if not g.takes:
            continue
        for trig in g.triggers:
            phrase = " ".join(_norm_word(x) for x in trig.split() if _norm_word(x))
            if phrase:
                table.setdefault(phrase, []).append(g.id)
    out = {k: tuple(sorted(set(v))) for k, v in table.items()}
    _TRIGGERS.clear()
    _TRIGGERS[key] = (library, out)
    return out


_TRIGGERS: dict[int, tuple[Any, dict[str, tuple[str, ...]]]] = {}


# -- rendering the plan ---------------------------------------------------------------------------------
def _rest_arm(side: str, jitter: np.ndarray) -> np.ndarray:
    """(4, 3) rotvecs of the arm at rest (rest_pose with a small per-take variation)."""
    base = rest_pose()
    out = np.stack([base[J[f"{side}_{p}"]] for p in ARM_PARTS]).copy()
    sgn = 1.0 if side == "right" else -1.0
    # elbow a little more or less bent, arm a little closer or further from the body
    extra = Rotation.from_euler("y", sgn * np.radians(5.0 * jitter[0] + 3.0)).as_rotvec()
    out[2] = (Rotation.from_rotvec(out[2]) * Rotation.from_rotvec(extra)).as_rotvec()
    tilt = Rotation.from_euler("z", sgn * np.radians(2.0 * jitter[1])).as_rotvec()
    out[1] = (Rotation.from_rotvec(out[1]) * Rotation.from_rotvec(tilt)).as_rotvec()
    return out


def _arm_quats(
    track: _ArmTrack, side: str, t: np.ndarray, rest_jitter: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 19, 4) quaternions of collar, shoulder, elbow, wrist and the 15 finger joints, and the
    arm's activity (T,): 1 in the gesture space, 0 at rest, eased in between."""
    rest_arm = _rest_arm(side, rest_jitter)
    rest_hand = _hand_rotvecs("relaxed", side, 1.0)
    keys = track.keys
    if not keys:
        rv = np.concatenate([rest_arm, rest_hand])
        return np.broadcast_to(_quat(rv), (len(t), 19, 4)).copy(), np.zeros(len(t))
    active = [k for k in keys if k.target is not None]
    arm_rv = np.repeat(rest_arm[None], len(keys), 0)
    if active:
        idx = [i for i, k in enumerate(keys) if k.target is not None]
        sol = solve_arms(
            side,
            np.stack([k.target for k in active]),
            np.stack([k.palm for k in active]),
            np.array([k.flex for k in active]),
            np.array([k.swivel for k in active]),
        )
        arm_rv[idx] = sol
    hand_rv = np.stack([_hand_rotvecs(k.shape if k.target is not None else "relaxed", side, round(k.curl, 3))
                        for k in keys])  # fmt: skip
    q_keys = _quat(np.concatenate([arm_rv, hand_rv], 1))  # (K, 19, 4)
    up = np.array([k.target is not None for k in keys], dtype=np.float64)
    # continuity between consecutive keys
    for k in range(1, len(q_keys)):
        flip = np.sum(q_keys[k] * q_keys[k - 1], -1) < 0
        q_keys[k][flip] *= -1
    times = np.array([k.time for k in keys])
    kinds = np.array([k.ease for k in keys])
    if len(keys) == 1:
        return np.broadcast_to(q_keys[0], (len(t), 19, 4)).copy(), np.full(len(t), up[0])
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(keys) - 2)
    span = np.maximum(times[seg + 1] - times[seg], 1e-6)
    s = np.clip((t - times[seg]) / span, 0.0, 1.0)
    u = ease(s, kinds[seg + 1])
    u = np.where(t < times[0], 0.0, u)
    activity = up[seg] * (1 - u) + up[seg + 1] * u
    return _slerp(q_keys[seg], q_keys[seg + 1], u[:, None, None]), activity


def _wander(t: np.ndarray, rng: np.random.Generator, dims: int, freq: tuple[float, float]) -> np.ndarray:
    """(T, dims) smooth band-limited wandering in [-1, 1]-ish: three sinusoids per dimension."""
    out = np.zeros((len(t), dims))
    for d in range(dims):
        f = rng.uniform(*freq, 3)
        ph = rng.uniform(0, 2 * np.pi, 3)
        w = np.array([0.5, 0.3, 0.2])
        out[:, d] = np.sum(w * np.sin(2 * np.pi * f * t[:, None] + ph), axis=1)
    return out


def _smooth_track(
    times: list[float], values: list[np.ndarray], t: np.ndarray, kind: str = "smooth"
) -> np.ndarray:
    """Piecewise eased interpolation of value vectors between key times (held outside)."""
    times_a = np.asarray(times)
    vals = np.stack(values)
    if len(times_a) == 1:
        return np.repeat(vals[:1], len(t), 0)
    seg = np.clip(np.searchsorted(times_a, t, side="right") - 1, 0, len(times_a) - 2)
    s = np.clip((t - times_a[seg]) / np.maximum(times_a[seg + 1] - times_a[seg], 1e-6), 0.0, 1.0)
    u = ease(s, kind)[:, None]
    return vals[seg] * (1 - u) + vals[seg + 1] * u


def _pulse(t: np.ndarray, center: float, width: float) -> np.ndarray:
    """Raised-cosine bump of `width` seconds peaking at `center` (zero outside)."""
    x = (t - (center - width / 2)) / width
    return np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)) ** 2, 0.0)


LOOP_HZ = (0.7, 1.05)  # rate of the body's slow loops (trunk, head, pelvis, arms)
SYLLABLE_WIDTH = 0.14


def _syllables(prosody: Prosody, t: np.ndarray, speaking: np.ndarray) -> np.ndarray:
    """(T,) in [0, 1]: a narrow bump on every audio onset while speaking."""
    out = np.zeros(len(t))
    for o in np.asarray(prosody.onset_times, dtype=np.float64):
        lo, hi = np.searchsorted(t, [o - SYLLABLE_WIDTH / 2, o + SYLLABLE_WIDTH / 2])
        if hi > lo:
            out[lo:hi] = np.maximum(out[lo:hi], _pulse(t[lo:hi], o, SYLLABLE_WIDTH))
    return out * np.clip(speaking, 0.0, 1.0)


def _body_layers(planner: _Planner, t: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-frame body layers: torso (lean, turn, bend) and head (nod, turn, tilt) in degrees, collar
    lift in degrees, pelvis rotation (T, 3) rotation vectors and shift (T, 3) metres.

    Posture (torso and weight) changes at pauses; sway, a slow loop of the trunk and head and
    breathing run all the time, livelier while speaking; every beat bobs the torso and most nod
    the head (bumps peaking on the beat). The trunk never comes to a dead stop while talking, and
    is nearly still in silence."""
    st, tr, dur = planner.st, planner.tr, planner.duration
    n = len(t)
    words = [w for w in tr.words if w.end > w.start]
    # speaking envelope: 1 while speaking (short gaps bridged), eased in and out
    speaking = np.zeros(n)
    for w in words:
        speaking[(t >= w.start - 0.25) & (t < w.end + 0.35)] = 1.0
    k = max(1, int(0.3 * st.fps))
    speaking = np.convolve(np.pad(speaking, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), "same")[k:-k]
    # while a semantic clip plays, the trunk calms down (the clips were authored on a still
    # trunk; hands that cross or touch the body must find it where they expect)
    calm = np.zeros(n)
    for use in planner.plan.semantic:
        calm = np.maximum(calm, ease((t - use.start + 0.4) / 0.4) * (1 - ease((t - use.end) / 0.4)))
    live = ((0.25 + 0.75 * speaking) * (1.0 - 0.85 * calm))[:, None]
    syl = _syllables(planner.pr, t, speaking)
    # Entrainment: the body layers run on a clock that slows on every syllable onset and makes
    # up for it in between (the local mean rate stays 1, the drift under ~0.05 s), so the trunk
    # and head slow down with each syllable, as speakers' bodies do.
    k2 = max(1, int(0.4 * st.fps))
    mean = np.convolve(np.pad(syl, k2, mode="edge"), np.ones(2 * k2 + 1) / (2 * k2 + 1), "same")[k2:-k2]
    rate = 1.0 + st.entrain * (mean - syl)
    t = t[0] + np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])

    # posture (lean, turn, bend) and weight (pelvis shift x, yaw): new targets at pauses
    def posture() -> np.ndarray:
        return np.array([rng.normal(2.0, 1.2), rng.normal(0, 3.0), rng.normal(0, 1.0), rng.normal(0, 0.008),
                         rng.normal(0, 2.0)])  # fmt: skip

    p_times, p_vals = [0.0], [posture()]
    for a, b in zip(words, words[1:], strict=False):
        if b.start - a.end > 0.4 and rng.random() < 0.65 and a.end - p_times[-1] > 1.5:
            start = a.end + 0.05
            p_times += [start, start + rng.uniform(0.8, 1.6)]
            p_vals += [p_vals[-1], posture()]
    pose = _smooth_track(p_times, p_vals, t)
    torso = pose[:, :3].copy()
    # breathing, sway and the trunk's slow loop
    breath = np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 2 * np.pi) + 0.6 * np.sin(0.3 * t))
    torso[:, 0] += 0.5 * st.breathing * breath
    torso += _wander(t, rng, 3, (0.08, 0.3)) * np.array([1.5, 3.0, 1.5]) * st.sway * live
    loop = _orbit(t, rng, LOOP_HZ) * 1.7 * st.loop * live
    torso[:, 0] += loop[:, 0]
    torso[:, 2] += loop[:, 1]
    collar = 0.7 * st.breathing * np.maximum(breath, -0.3)
    # head: slow gaze changes, a small loop and wandering while speaking
    g_times, g_vals = [0.0], [np.array([rng.normal(1.0, 2.0), rng.normal(0, 6.0), rng.normal(0, 2.0)])]
    tt = rng.uniform(1.5, 4.0)
    while tt < dur:
        g_times += [tt, tt + rng.uniform(0.4, 0.9)]
        g_vals += [g_vals[-1], np.array([rng.normal(1.0, 2.5), rng.normal(0, 6.0), rng.normal(0, 2.5)])]
        tt = g_times[-1] + rng.uniform(1.5, 4.5)
    head = _smooth_track(g_times, g_vals, t)
    h_loop = _orbit(t, rng, LOOP_HZ) * 1.5 * st.loop * live
    head[:, 0] += h_loop[:, 0]
    head[:, 2] += h_loop[:, 1]
    head += _wander(t, rng, 3, (0.2, 0.7)) * np.array([1.0, 2.5, 1.0]) * st.head_accent * speaking[:, None]
    # pelvis: weight shifts (sideways shift with the matching hip roll), a little yaw and bob
    shift = np.zeros((n, 3))
    shift[:, 0] = pose[:, 3] + 0.006 * _wander(t, rng, 1, (0.05, 0.2))[:, 0]
    shift[:, 1] = -0.01  # soft knees (about 18 degrees): room for the hips to move
    yaw = pose[:, 4] + 1.2 * _wander(t, rng, 1, (0.05, 0.25))[:, 0] * live[:, 0]
    # accents: torso bob on every beat, head nod on most. Bumps of nearby beats overlap; their sum
    # is soft-limited so a run of beats rides the trunk instead of bending it further and further.
    bob_lean, bob_turn, nod, tilt = (np.zeros(n) for _ in range(4))
    sign = 1.0
    for b in planner.plan.beats:
        strength = float(np.clip(b.amplitude / 0.2, 0.25, 1.0))
        bob = rng.uniform(2.5, 4.5) * strength * st.bob
        bob_lean += bob * _pulse(t, b.time + 0.02, rng.uniform(0.35, 0.5))
        sign = -sign if rng.random() < 0.7 else sign
        bob_turn += sign * 0.6 * bob * _pulse(t, b.time, rng.uniform(0.4, 0.6))
        collar = collar + rng.uniform(0.8, 2.0) * strength * _pulse(t, b.time, 0.35)
        shift[:, 1] -= 0.004 * strength * _pulse(t, b.time + 0.03, 0.4)
        if rng.random() > 0.55 + 0.45 * strength:
            continue
        amp = st.bob * st.head_accent * rng.uniform(2.0, 5.0) * (0.6 + 0.6 * strength)
        pulse = _pulse(t, b.time + 0.03, rng.uniform(0.3, 0.45))
        nod += amp * pulse
        if rng.random() < 0.25:
            tilt += rng.choice([-1.0, 1.0]) * 0.6 * amp * pulse
    quiet = 1.0 - 0.85 * calm

    def soft(x: np.ndarray, cap: float) -> np.ndarray:
        return cap * np.tanh(x / cap)

    torso[:, 0] += soft(bob_lean, 3.5 * max(st.bob, 1e-6)) * quiet
    torso[:, 1] += soft(bob_turn, 2.5 * max(st.bob, 1e-6)) * quiet
    head[:, 0] += soft(nod, 5.0 * max(st.bob, 1e-6))
    head[:, 2] += soft(tilt, 3.0 * max(st.bob, 1e-6))
    # the head keeps looking at the audience while the trunk sways: it takes back most of the
    # trunk's turn and side bend, and some of its lean
    head -= torso * np.array([0.4, 0.7, 0.6])
    head[:, 1] -= 0.7 * yaw
    p_loop = _orbit(t, rng, LOOP_HZ) * 1.6 * st.loop * live
    pitch = 0.3 * (torso[:, 0] - 2.0) + p_loop[:, 0]  # part of the lean comes from the hips
    roll = -shift[:, 0] / 0.01 * 1.2 + p_loop[:, 1]  # the hip over the standing leg rises
    torso[:, 2] -= roll  # the spine rights the head over the tilted pelvis
    pelvis_euler = np.stack([pitch, yaw, roll], -1)
    pelvis_rv = Rotation.from_euler("XYZ", pelvis_euler, degrees=True).as_rotvec()
    return {
        "torso": torso,
        "head": head,
        "collar": collar,
        "pelvis_rv": pelvis_rv,
        "shift": shift,
        "clock": t,
    }


def _semantic_blend(quats: np.ndarray, plan: SynthPlan, library, t: np.ndarray, fps: float) -> None:
    """Cross-fade the planned library clips into `quats` (T, 55, 4), in place."""
    for use in plan.semantic:
        g = library.get(use.gesture_id)
        take = g.take(use.take)
        ph = g.phases_of(take)
        clip = library.clip(use.gesture_id, use.take, side=use.side if use.side in SIDES else None)
        rv = clip.rotations.astype(np.float64).copy()
        rv[:, 25:55] += sk.hand_mean()[None]  # flat-hand convention, like everything here
        i0 = int(np.ceil(use.start * fps - 1e-9))
        i1 = min(
            int(np.floor((use.start + (clip.num_frames - 1) / clip.fps * use.stretch) * fps + 1e-9)),
            len(t) - 1,
        )
        if i1 <= i0:
            continue
        ft = t[i0 : i1 + 1]
        # clip pose at our frame times (nearest-two slerp), played `stretch` times slower
        pos = (ft - use.start) * clip.fps / use.stretch
        k0 = np.clip(np.floor(pos).astype(int), 0, clip.num_frames - 1)
        k1 = np.clip(k0 + 1, 0, clip.num_frames - 1)
        frac = (pos - k0)[:, None, None]
        cq = _quat(rv)
        cq = _slerp(cq[k0], cq[k1], frac)
        # weight: in over the preparation, out over the retraction
        k = use.stretch
        s_in = (ft - use.start) / max(ph.stroke_start * k, 0.15)
        s_out = (ft - (use.start + ph.stroke_end * k)) / max((ph.retract_end - ph.stroke_end) * k, 0.15)
        w = np.where(ft < use.start + ph.stroke_start * k, ease(s_in), 1.0)
        w = np.where(ft > use.start + ph.stroke_end * k, 1.0 - ease(s_out), w)[:, None, None]
        joints: list[int] = []
        parts = set(g.body_parts)
        for s in SIDES:
            if use.side in (s, "both"):
                joints += [J[f"{s}_{p}"] for p in ARM_PARTS]
                joints += list(sk.LEFT_HAND if s == "left" else sk.RIGHT_HAND)
        if joints:
            quats[i0 : i1 + 1, joints] = _slerp(quats[i0 : i1 + 1, joints], cq[:, joints], w)
        # head and torso: the clip's rotation is a delta over the upright rest, applied on top
        delta_joints = []
        if "head" in parts:
            delta_joints += [J["neck"], J["head"]]
        if "torso" in parts:
            delta_joints += [J["spine1"], J["spine2"], J["spine3"]]
        if delta_joints:
            ident = np.zeros((len(ft), len(delta_joints), 4))
            ident[..., 3] = 1.0
            d = _slerp(ident, cq[:, delta_joints], w)
            quats[i0 : i1 + 1, delta_joints] = _qmul(quats[i0 : i1 + 1, delta_joints], d)


def _stance(quats: np.ndarray, pelvis_rv: np.ndarray, pelvis_shift: np.ndarray) -> np.ndarray:
    """Move the pelvis (rotation vectors (T, 3), translation (T, 3) metres from the rest stance) with
    the feet planted (`gesticulator.motion.stance.planted_stance`). Writes pelvis, hip, knee and
    ankle rotations into `quats`; returns the root translation (T, 3)."""
    stance = planted_stance(pelvis_rv, pelvis_shift)
    quats[:, 0] = Rotation.from_rotvec(pelvis_rv).as_quat()
    for k, joint in enumerate(stance.joints[1:], start=1):
        quats[:, joint] = Rotation.from_matrix(stance.rotations[:, k]).as_quat()
    return stance.trans


def _orbit(
    t: np.ndarray, rng: np.random.Generator, freq: tuple[float, float], slow: np.ndarray | None = None
) -> np.ndarray:
    """(T, 2) a slow loop (two components in quadrature) whose rate and size wander: motion that
    never stops, like a body that is never quite still. Unit radius on average. `slow` (T,) in
    [0, 1] slows the loop down (to 35 % at 1): the syllable pulses of the voice (`_syllables`)
    make the body's speed dip on every onset, the way a speaker's trunk and head ride the rhythm
    of their speech."""
    f = 0.5 * (freq[0] + freq[1]) + 0.5 * (freq[1] - freq[0]) * _wander(t, rng, 1, (0.03, 0.1))[:, 0]
    if slow is not None:
        f = f * (1.0 - 0.65 * slow)
    dt = np.diff(t, prepend=t[0] - (t[1] - t[0] if len(t) > 1 else 1.0))
    phase = 2 * np.pi * np.cumsum(f * dt) + rng.uniform(0, 2 * np.pi)
    radius = 1.0 + 0.35 * _wander(t, rng, 1, (0.03, 0.12))[:, 0]
    return np.stack([np.sin(phase), np.cos(phase)], -1) * radius[:, None]


def plan_motion(
    transcript: Transcript,
    prosody: Prosody,
    seed: int,
    library=None,
    settings: SynthSettings | None = None,
) -> tuple[SynthPlan, _Planner]:
    st = settings or SynthSettings()
    rng = np.random.default_rng(seed)
    planner = _Planner(transcript, prosody, rng, st)
    planner.run(library)
    return planner.plan, planner


def synthesize_with_plan(
    transcript: Transcript,
    prosody: Prosody,
    seed: int,
    library=None,
    settings: SynthSettings | None = None,
) -> tuple[Motion, SynthPlan]:
    """`synthesize`, also returning what was planned (beats, units, semantic clips)."""
    st = settings or SynthSettings()
    plan, planner = plan_motion(transcript, prosody, seed, library, st)
    duration = planner.duration
    n = int(np.ceil(duration * st.fps - 1e-9))
    plan.num_frames = n
    t = np.arange(n) / st.fps
    body_rng = np.random.default_rng([seed, 7])
    rest = rest_pose()  # (55, 3) flat-hand convention
    quats = np.broadcast_to(_quat(rest), (n, 55, 4)).copy()
    activity = {}
    for side in SIDES:
        q, activity[side] = _arm_quats(planner.tracks[side], side, t, planner.rest_jitter[side])
        quats[:, [J[f"{side}_{p}"] for p in ARM_PARTS]] = q[:, :4]
        quats[:, list(sk.LEFT_HAND if side == "left" else sk.RIGHT_HAND)] = q[:, 4:]
    layers = _body_layers(planner, t, body_rng)
    # arms never freeze while gesturing: a slow wandering of shoulder, elbow and wrist on top of
    # the keys (real hands reverse on curved paths, not by stopping dead)
    for side, sgn in (("right", 1.0), ("left", -1.0)):
        act = activity[side][:, None]
        # (on the plain clock: the trunk's syllable clock would slow the arms exactly where the
        # strokes end, which are onsets too)
        wander = np.radians(_wander(t, body_rng, 5, (0.3, 1.1)) * st.arm_wander)
        loop = np.radians(_orbit(t, body_rng, LOOP_HZ) * st.arm_wander * 0.8)
        sh = np.stack([loop[:, 0] + 0.5 * wander[:, 0], sgn * wander[:, 1], sgn * loop[:, 1]], -1) * act
        el = np.stack([np.zeros(n), sgn * 1.3 * wander[:, 3], np.zeros(n)], -1) * act
        wr = np.stack([np.zeros(n), np.zeros(n), 1.5 * wander[:, 4]], -1) * act
        for part, rv in (("shoulder", sh), ("elbow", el), ("wrist", wr)):
            j = J[f"{side}_{part}"]
            quats[:, j] = _qmul(quats[:, j], _quat(rv))
    torso, head, collar = layers["torso"], layers["head"], layers["collar"]
    for joint, share in SPINE_SHARE.items():
        e = np.stack([torso[:, 0] * share, -torso[:, 1] * share, torso[:, 2] * share], -1)
        quats[:, J[joint]] = Rotation.from_euler("XYZ", e, degrees=True).as_quat()
    for joint, share in HEAD_SHARE.items():
        e = np.stack([head[:, 0] * share, -head[:, 1] * share, head[:, 2] * share], -1)
        quats[:, J[joint]] = Rotation.from_euler("XYZ", e, degrees=True).as_quat()
    for side, sgn in (("right", 1.0), ("left", -1.0)):
        lift = Rotation.from_euler("z", (-sgn * collar)[:, None], degrees=True).as_quat()
        quats[:, J[f"{side}_collar"]] = _qmul(quats[:, J[f"{side}_collar"]], lift)
    trans = _stance(quats, layers["pelvis_rv"], layers["shift"])
    if library is not None and plan.semantic:
        _semantic_blend(quats, plan, library, t, st.fps)
    rv = Rotation.from_quat(quats.reshape(-1, 4)).as_rotvec().reshape(n, 55, 3)
    rv[:, 25:55] -= sk.hand_mean()[None]
    motion = Motion(
        poses=rv.reshape(n, sk.POSE_DIM),
        trans=trans,
        fps=st.fps,
        metadata={
            "source": "gesticulator bootstrap synthesizer",
            "seed": int(seed),
            "flat_hand_mean": False,
            "bootstrap": plan.summary(),
        },
    )
    return motion, plan


def synthesize(
    transcript: Transcript,
    prosody: Prosody,
    seed: int,
    library=None,
    settings: SynthSettings | None = None,
) -> Motion:
    """Procedural co-speech motion for speech with these word times and prosody.

    `prosody` comes from `gesticulator.speech.prosody.extract_prosody(wav, fps=30,
    transcript=transcript)`; its duration sets the length: ceil(duration * fps) frames.
    `library` (a `gesticulator.library.store.Library`) enables the occasional semantic clip.
    """
    return synthesize_with_plan(transcript, prosody, seed, library, settings)[0]


__all__ = [
    "BEAT_SHAPES",
    "BEAT_TYPES",
    "Beat",
    "SemanticUse",
    "SynthPlan",
    "SynthSettings",
    "plan_motion",
    "solve_arms",
    "synthesize",
    "synthesize_with_plan",
]
