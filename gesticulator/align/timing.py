"""Placing semantic gestures in time: apex on the word's emphasis, prep/retract time-warped to fit.

    placed = place_events(requests_from_plan(plan, transcript, prosody), library,
                          duration=audio_seconds, seed=0)

Every planned event becomes a `PlacedEvent` (the rows of timeline.json), whether it was placed,
merged or dropped, with the reason. The rules, in order:

1. **Apex target.** The stroke's apex lands on the word's emphasis point: the stressed point
   from prosody (`Prosody.word_peak_times`) when it lies inside the word, else the planner's apex
   when it lies inside the word, else word start + `unknown_apex_fraction` x word length. A
   timeline event's `apex` (possibly moved by the user) is used as given.
2. **Clip timing.** The take's phase marks (prep_start <= stroke_start <= apex <= stroke_end <=
   retract_end, seconds in the clip) are laid out around the target: the stroke plays at its
   authored speed (that is what makes it recognisable), the preparation and the retraction are
   time-warped to fit the room before and after: up to `max_prep_warp` / `max_retract_warp` of
   the authored length where there is room, never shorter than `min_prep_warp` /
   `min_retract_warp` of it (the limits).
3. **Conflicts.** Two events conflict when they use a common body part (left/right arm or hand,
   torso, head) and their strokes come closer than `min_transition`. The higher priority one is
   kept (markup > llm > embedded, then confidence, then the earlier one); the other is *merged*
   into it when it is the same gesture, else *dropped*. An event whose stroke cannot start after
   the shortest allowed preparation from the audio's start (or end before the shortest
   retraction from its end) is dropped too.
4. **Room.** Between two kept events on a common part the gap (stroke end -> next stroke start)
   is shared by the first one's retraction and the second one's preparation, both shrunk by the
   same factor down to their limits. When the gap is shorter than `chain_below` (or even the
   limits do not fit), the two are *chained* into one gesture unit: the arm goes straight from
   the first stroke's end pose to the second stroke's start pose (no retraction, no
   preparation), as speakers hold between close gestures instead of dropping their hands.
5. **Active arms** come from the gesture's handedness (and the side a one-handed gesture is
   played on): only those arms (and the parts the gesture lists) take the clip; the other arm
   keeps the base motion (see `gesticulator.align.splice`).

Takes are chosen deterministically from the seed, the word and the gesture id (same seed, same
takes); a timeline can fix the take and the side of each event.
"""

from __future__ import annotations

import difflib
import math
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from gesticulator.library.schema import CatalogError, Gesture, Phases
from gesticulator.types import Prosody, SemanticEvent, SemanticPlan, Transcript

if TYPE_CHECKING:
    from gesticulator.library.store import Library

Side = Literal["right", "left", "both", "none"]
Status = Literal["placed", "merged", "dropped"]

#: Priority of an event's source when two conflict (higher wins).
SOURCE_PRIORITY = {"markup": 3, "user": 3, "llm": 1, "embedded": 0}

#: Body-part groups that can conflict (two events on a common group cannot overlap).
PART_GROUPS = ("left_arm", "right_arm", "left_hand", "right_hand", "torso", "head")


class PlacementSettings(BaseModel):
    """Timing limits of `place_events` (stored in timeline.json)."""

    model_config = ConfigDict(extra="forbid")

    unknown_apex_fraction: float = Field(0.35, ge=0, le=1)  # apex at word start + this x length
    # Played length / authored length of the preparation and the retraction: as long as the room
    # allows up to the max (a slower approach reads better than the authored clips' quick rise
    # from rest), down to the min when neighbours or the audio's ends leave less room.
    min_prep_warp: float = Field(0.5, gt=0, le=1)
    max_prep_warp: float = Field(1.5, ge=1)
    min_retract_warp: float = Field(0.5, gt=0, le=1)
    max_retract_warp: float = Field(1.2, ge=1)
    min_transition: float = Field(0.3, ge=0)  # s between two strokes on a common part, else one goes
    # Two gestures on a common part whose strokes are closer than this are chained (one gesture
    # unit: straight from one stroke to the next) instead of dipping back into the beat motion.
    chain_below: float = Field(0.8, ge=0)


class PlacedEvent(BaseModel):
    """One semantic gesture on the timeline (a row of timeline.json).

    Editable in a timeline (then `gesticulator animate --timeline`): `gesture_id`, `take` (null:
    chosen from the seed), `side` (left/right for one-handed gestures; null: as authored),
    `apex` (seconds: where the stroke's apex lands) and `status` (set "dropped", or delete the row,
    to remove a gesture). The other fields are computed when the timeline is rendered.
    """

    model_config = ConfigDict(extra="forbid")

    gesture_id: str
    take: str | None = None
    side: Side | None = None
    word_index: int = Field(0, ge=0)
    word: str = ""
    apex: float = Field(ge=0)  # seconds: the stroke's apex lands here
    apex_source: str = "plan"  # prosody | plan | word | timeline
    status: Status = "placed"
    note: str = ""  # why merged/dropped, chaining, fallbacks
    source: str = "embedded"  # the planner's source: embedded | llm | markup
    confidence: float = Field(1.0, ge=0, le=1)
    reason: str = ""  # the planner's reason
    # -- computed --------------------------------------------------------------------------------
    active_arms: list[str] = Field(default_factory=list)  # "left" / "right"
    body_parts: list[str] = Field(default_factory=list)  # as played (mirrored for side swaps)
    clip_start: float = 0.0  # seconds in the clip: the span used (prep_start .. retract_end)
    clip_end: float = 0.0
    clip_apex: float = 0.0  # the clip's apex mark (seconds in the clip)
    prep_start: float = 0.0  # seconds in the output motion
    stroke_start: float = 0.0
    stroke_end: float = 0.0
    retract_end: float = 0.0
    prep_warp: float = 1.0  # played preparation length / authored length
    retract_warp: float = 1.0
    chained_to_next: bool = False  # goes straight into the next gesture on a common part
    chained_from_previous: bool = False
    unit: int = -1  # gesture unit: chained events share it (-1 when not placed)

    @property
    def is_placed(self) -> bool:
        return self.status == "placed"


class PlacementRequest(BaseModel):
    """What `place_events` places: a planned event, or a (possibly edited) timeline row."""

    gesture_id: str
    word_index: int = 0
    word: str = ""
    apex: float
    apex_source: str = "plan"
    take: str | None = None
    side: Side | None = None
    source: str = "embedded"
    confidence: float = 1.0
    reason: str = ""


# -- requests --------------------------------------------------------------------------------------
def emphasis_time(
    event: SemanticEvent,
    transcript: Transcript | None,
    prosody: Prosody | None = None,
    *,
    fraction: float = 0.35,
) -> tuple[float, str]:
    """(apex target, where it came from) for a planned event: the word's stressed point from
    prosody, else the planner's apex, else word start + `fraction` of the word."""
    start, end = event.start, max(event.end, event.start)
    if transcript is not None and 0 <= event.word_index < len(transcript.words):
        w = transcript.words[event.word_index]
        start, end = w.start, max(w.end, w.start)
        if prosody is not None and len(prosody.word_peak_times) == len(transcript.words):
            t = float(prosody.word_peak_times[event.word_index])
            if math.isfinite(t) and start <= t <= end:
                return t, "prosody"
    if start <= event.apex <= end and end > start:
        return float(event.apex), "plan"
    return start + fraction * (end - start), "word"


def requests_from_plan(
    plan: SemanticPlan | Sequence[SemanticEvent],
    transcript: Transcript | None = None,
    prosody: Prosody | None = None,
    *,
    settings: PlacementSettings | None = None,
) -> list[PlacementRequest]:
    """One request per planned event, its apex on the word's emphasis (see `emphasis_time`)."""
    settings = settings or PlacementSettings()
    events = plan.events if isinstance(plan, SemanticPlan) else list(plan)
    out = []
    for e in events:
        apex, how = emphasis_time(e, transcript, prosody, fraction=settings.unknown_apex_fraction)
        out.append(
            PlacementRequest(
                gesture_id=e.gesture_id, word_index=e.word_index, word=e.word, apex=apex, apex_source=how,
                source=e.source, confidence=e.confidence, reason=e.reason,
            )
        )  # fmt: skip
    return out


def requests_from_timeline(events: Iterable[PlacedEvent]) -> list[PlacementRequest]:
    """Requests from (possibly user-edited) timeline rows; dropped and merged rows stay out."""
    return [
        PlacementRequest(
            gesture_id=e.gesture_id, word_index=e.word_index, word=e.word, apex=e.apex,
            apex_source="timeline", take=e.take, side=e.side, source=e.source,
            confidence=e.confidence, reason=e.reason,
        )
        for e in events
        if e.status == "placed"
    ]  # fmt: skip


# -- placement -------------------------------------------------------------------------------------
def mirror_part(part: str) -> str:
    if part.startswith("left_"):
        return "right_" + part[5:]
    if part.startswith("right_"):
        return "left_" + part[6:]
    return part


def choose_take(gesture: Gesture, seed: int, word_index: int) -> str:
    """A take id chosen deterministically from (seed, word, gesture)."""
    if not gesture.takes:
        raise CatalogError(f"gesture {gesture.id!r} has no takes", "run `gesticulator library build`")
    key = f"{int(seed)}:{int(word_index)}:{gesture.id}".encode()
    return gesture.takes[zlib.crc32(key) % len(gesture.takes)].id


def resolve_side(gesture: Gesture, take_side: str | None, requested: str | None) -> tuple[str, bool, str]:
    """(side played, mirrored?, note). One-handed gestures may be played on either side."""
    authored = take_side or gesture.handedness
    if requested is None or requested == authored:
        return authored, False, ""
    if authored in ("left", "right") and requested in ("left", "right"):
        return requested, True, ""
    return authored, False, f"side {requested!r} ignored: {gesture.id} is {gesture.handedness}-handed"


def _priority(r: PlacementRequest) -> tuple:
    return (-SOURCE_PRIORITY.get(r.source, 0), -r.confidence, r.apex)


def _groups(parts: Iterable[str]) -> set[str]:
    out = set()
    for p in parts:
        if p in PART_GROUPS:
            out.add(p)
        elif p == "upper":
            out |= {"left_arm", "right_arm", "torso", "head"}
        elif p == "hands":
            out |= {"left_hand", "right_hand"}
        elif p == "all":
            out |= set(PART_GROUPS)
    return out


def place_events(
    requests: Sequence[PlacementRequest],
    library: Library,
    *,
    duration: float,
    seed: int = 0,
    settings: PlacementSettings | None = None,
) -> list[PlacedEvent]:
    """Place requests on a `duration`-second timeline. Returns one PlacedEvent per request, in
    apex order; `status` says whether it is placed, merged into another or dropped (and `note` why).

    Unknown gesture ids raise a one-line CatalogError naming close ids.
    """
    settings = settings or PlacementSettings()
    rows: list[tuple[PlacementRequest, PlacedEvent, Phases, set[str]]] = []
    for r in requests:
        if r.gesture_id not in library:
            close = difflib.get_close_matches(r.gesture_id, library.ids(), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else "see `gesticulator library list`"
            raise CatalogError(f"unknown gesture id {r.gesture_id!r} (word {r.word!r})", hint)
        gesture = library.get(r.gesture_id)
        notes = []
        take_id = r.take
        if take_id is None or take_id not in {t.id for t in gesture.takes}:
            if take_id is not None:
                notes.append(f"take {take_id!r} not in {gesture.id}: chose another")
            take_id = choose_take(gesture, seed, r.word_index)
        take = gesture.take(take_id)
        side, mirrored, side_note = resolve_side(gesture, take.side, r.side)
        if side_note:
            notes.append(side_note)
        parts = [mirror_part(p) if mirrored else p for p in gesture.body_parts]
        arms = ["left", "right"] if side == "both" else [side] if side in ("left", "right") else []
        ph = gesture.phases_of(take)
        apex = float(r.apex)
        ev = PlacedEvent(
            gesture_id=gesture.id, take=take_id, side=side, word_index=r.word_index, word=r.word,
            apex=apex, apex_source=r.apex_source, source=r.source, confidence=r.confidence,
            reason=r.reason, active_arms=arms, body_parts=parts, clip_start=ph.prep_start,
            clip_end=ph.retract_end, clip_apex=ph.apex,
            stroke_start=apex - (ph.apex - ph.stroke_start), stroke_end=apex + (ph.stroke_end - ph.apex),
            note="; ".join(notes),
        )  # fmt: skip
        rows.append((r, ev, ph, _groups(parts)))

    # Edges and conflicts, greedily by priority.
    kept: list[int] = []
    order = sorted(range(len(rows)), key=lambda i: _priority(rows[i][0]))
    for i in order:
        r, ev, ph, groups = rows[i]
        min_prep = settings.min_prep_warp * (ph.stroke_start - ph.prep_start)
        min_retract = settings.min_retract_warp * (ph.retract_end - ph.stroke_end)
        if ev.stroke_start - min_prep < -1e-9:
            _reject(
                ev, "dropped", f"too close to the start: the stroke needs {min_prep:.2f} s of preparation"
            )
            continue
        if ev.stroke_end + min_retract > duration + 1e-9:
            _reject(ev, "dropped", f"too close to the end: the stroke needs {min_retract:.2f} s to retract")
            continue
        clash = None
        for k in kept:
            other, og = rows[k][1], rows[k][3]
            if not (groups & og):
                continue
            gap = max(ev.stroke_start - other.stroke_end, other.stroke_start - ev.stroke_end)
            if gap < settings.min_transition:
                clash = other
                break
        if clash is not None:
            if clash.gesture_id == ev.gesture_id:
                _reject(
                    ev, "merged", f"merged into {clash.gesture_id} at {clash.apex:.2f} s (strokes overlap)"
                )
            else:
                _reject(
                    ev, "dropped",
                    f"stroke overlaps {clash.gesture_id} at {clash.apex:.2f} s ({clash.word!r}), which has priority",
                )  # fmt: skip
            continue
        kept.append(i)

    # Room: start from the authored prep/retract, clamp by the audio's ends, then share each gap.
    kept.sort(key=lambda i: rows[i][1].apex)
    prep = {i: rows[i][2].stroke_start - rows[i][2].prep_start for i in kept}
    retract = {i: rows[i][2].retract_end - rows[i][2].stroke_end for i in kept}
    prep_len = {i: min(prep[i] * settings.max_prep_warp, rows[i][1].stroke_start) for i in kept}
    retract_len = {
        i: min(retract[i] * settings.max_retract_warp, duration - rows[i][1].stroke_end) for i in kept
    }
    chained: set[tuple[int, int]] = set()
    for group in PART_GROUPS:
        seq = [i for i in kept if group in rows[i][3]]
        for a, b in zip(seq, seq[1:], strict=False):
            ea, eb = rows[a][1], rows[b][1]
            gap = eb.stroke_start - ea.stroke_end
            if gap >= retract_len[a] + prep_len[b] - 1e-9:
                continue
            if (a, b) in chained:
                continue
            lo_r, lo_p = settings.min_retract_warp * retract[a], settings.min_prep_warp * prep[b]
            if gap >= max(lo_r + lo_p, settings.chain_below) - 1e-9:
                factor = gap / (retract_len[a] + prep_len[b])
                r, p = retract_len[a] * factor, prep_len[b] * factor
                if r < lo_r:
                    r, p = lo_r, gap - lo_r
                elif p < lo_p:
                    r, p = gap - lo_p, lo_p
                retract_len[a], prep_len[b] = r, p
            else:
                chained.add((a, b))
    for a, b in chained:
        ea, eb = rows[a][1], rows[b][1]
        gap = eb.stroke_start - ea.stroke_end
        ea.chained_to_next = eb.chained_from_previous = True
        retract_len[a] = min(retract_len[a], gap)
        prep_len[b] = min(prep_len[b], gap)
        _add_note(ea, f"chained into {eb.gesture_id} at {eb.apex:.2f} s (no room to retract)")
        _add_note(eb, f"chained from {ea.gesture_id} at {ea.apex:.2f} s (no room to prepare)")
    unit_of = {i: n for n, i in enumerate(kept)}
    for a, b in sorted(chained, key=lambda ab: rows[ab[0]][1].apex):
        root = unit_of[a]
        old = unit_of[b]
        for i in kept:
            if unit_of[i] == old:
                unit_of[i] = root
    units = {u: n for n, u in enumerate(dict.fromkeys(unit_of[i] for i in kept))}
    for i in kept:
        ev = rows[i][1]
        ev.unit = units[unit_of[i]]
        ev.prep_start = ev.stroke_start - prep_len[i]
        ev.retract_end = ev.stroke_end + retract_len[i]
        ev.prep_warp = round(prep_len[i] / prep[i], 4) if prep[i] > 0 else 1.0
        ev.retract_warp = round(retract_len[i] / retract[i], 4) if retract[i] > 0 else 1.0
    return sorted((row[1] for row in rows), key=lambda e: (e.apex, e.gesture_id))


def _reject(ev: PlacedEvent, status: Status, why: str) -> None:
    ev.status = status
    _add_note(ev, why)


def _add_note(ev: PlacedEvent, text: str) -> None:
    ev.note = f"{ev.note}; {text}" if ev.note else text


def clip_time(ev: PlacedEvent, phases: Phases, t: float | Sequence[float]):
    """Clip time(s) (seconds in the take) played at output time(s) `t`: piecewise linear through
    (prep_start, stroke_start, apex, stroke_end, retract_end), the stroke at authored speed."""
    import numpy as np

    xs = [ev.prep_start, ev.stroke_start, ev.apex, ev.stroke_end, ev.retract_end]
    ys = [phases.prep_start, phases.stroke_start, phases.apex, phases.stroke_end, phases.retract_end]
    # Strictly increasing x for np.interp (zero-length phases collapse onto a point).
    xs_u, ys_u = [xs[0]], [ys[0]]
    for x, y in zip(xs[1:], ys[1:], strict=True):
        if x > xs_u[-1] + 1e-9:
            xs_u.append(x)
            ys_u.append(y)
        else:
            ys_u[-1] = y
    t_arr = np.asarray(t, dtype=np.float64)
    if len(xs_u) == 1:
        return np.full_like(t_arr, ys_u[0])
    # Outside the placed span the clip holds its first/last used pose.
    return np.interp(t_arr, xs_u, ys_u)


__all__ = [
    "PART_GROUPS",
    "PlacedEvent",
    "PlacementRequest",
    "PlacementSettings",
    "SOURCE_PRIORITY",
    "choose_take",
    "clip_time",
    "emphasis_time",
    "mirror_part",
    "place_events",
    "requests_from_plan",
    "requests_from_timeline",
    "resolve_side",
]
