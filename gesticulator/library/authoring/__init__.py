"""Authoring gestures without mocap: a small YAML language compiled to gesture clips.

A gesture file may carry an ``author:`` section. ``build_library`` (``gesticulator library
build``) compiles it into take clips ``clips/<id>/<take>.npz`` and fills the file's ``takes`` and
``phases``. Everything is authored for the RIGHT hand; the store mirrors a take at load time
(``Library.clip(id, side="left")``), so a left-handed version never needs its own spec.

Spec language
-------------

::

    author:
      takes: 2            # takes to compile: a = the spec as written, b, c... = varied (1..8)
      variation: 1.0      # how much takes differ (0 = identical; 1 = about ±10-15 %)
      lead: 0.1           # seconds at rest before the first move
      retract: 0.5        # seconds from the last key back to rest
      tail: 0.1           # seconds at rest at the end
      contact: false      # true when the hand touches the body on purpose (documentation and checks)
      keys:               # poses in time order; the clip starts and ends in the relaxed rest pose
        - dur: 0.35       # seconds to move here from the previous key (default 0.3)
          hold: 0.2       # seconds to stay (default 0)
          ease: smooth    # smooth (ease in-out) | snap (fast start) | hit (fast arrival)
          overshoot: 0.04 # overshoot-and-settle, a fraction of the move (default 0.04 on the apex
                          # key, 0 elsewhere and whenever a hand touches the body)
          mark: apex      # phase marks: stroke_start (the stroke leaves this key) | apex (this
                          # key is the stroke's peak) | stroke_end (the stroke ends after this
                          # key's hold); a list is allowed
          right: {...}    # arm spec (below) for the right arm; `left` for the left arm; `both`
                          # for both (the left one mirrored: a symmetric pair)
          head: {nod: 8, turn: 0, tilt: 0}    # degrees: chin down +, turn to the right +,
                                              # right ear toward the shoulder +
          torso: {lean: 3, turn: 0, bend: 0}  # degrees: forward +, turn right +, bend right +
          shrug: 10       # both shoulders up, degrees (per arm: the arm spec's `shrug`)
          via: {right: {...}}  # a pose the move passes through half way (same fields as a key)
          circle: {arm: right, radius: 0.08, turns: 2, plane: side, direction: 1}
                          # the hand draws circles during the key's hold (plane: front | side | top)
        - repeat: 3       # a block of keys repeated (wave, wag, clap, nod)
          keys: [...]

Every setting persists to later keys until changed: a key only lists what moves. An arm spec
merges over the previous key's (giving `at` or `touch` resets `offset`).

Arm spec (all optional except a target)::

    at: chest_front        # a place (below) or [x, y, z] metres from the chest joint (spine3)
    offset: [0, 0.05, 0]   # metres added to the place
    touch: chin            # instead of `at`: put the effector ON a body surface place
    effector: wrist        # the hand point that goes to the target: wrist | palm | index_tip |
                           # middle_tip | thumb_tip | fingertips | knuckles (touch: palm)
    palm: forward          # where the palm faces
    fingers: up            # where the fingers point (the hand's long axis); default: along the
                           # forearm
    hand: point            # hand shape (below; default relaxed)
    elbow: 10              # swivel the elbow out/up (+) or in/down (-), degrees
    shrug: 5               # raise this shoulder, degrees
    rest: true             # this arm back at the relaxed rest pose

Coordinates are a *lateral* body frame: x is OUT toward the side of the arm being solved (so
``both`` specs are symmetric), y up, z forward, in metres from the chest joint. Directions are
words -- forward, back, up, down, out, in (also front/viewer = forward, body = back) -- summed
with weights ("forward+up*0.5"), or vectors [x, y, z].

Places (`gesticulator.library.authoring.body.PLACES`): in the air, carried by the chest --
center, chest_front, front_mid, front_low, waist_front, front_high, shoulder_front, far_front,
far_front_high, side_low, side_mid, side_high, far_side, beside_head, overhead, shoulder_top;
body surfaces (for ``touch``) -- sternum, heart (the chest's far side), belly, and on the head
(they follow nods and turns) chin, lips, nose, eyes, forehead, temple, cheek.

Hand shapes (`gesticulator.library.authoring.hands.SHAPES`): relaxed (the SMPL-X mean hand),
fist, point, open, flat, spread, thumbs_up, thumbs_down, ok_ring, v, pinch, pinch_open,
count_1 .. count_5 (count_3 = thumb, index, middle; count_3_ring = index, middle, ring), cupped,
claw, grasp, shush, crossed, loose.

Example (``motion_library/gestures/thumbs_up.yaml``)::

    author:
      keys:
        - {dur: 0.35, right: {at: chest_front, offset: [0, -0.06, -0.04], palm: in,
                              fingers: forward, hand: fist}}
        - {dur: 0.2, hold: 0.4, mark: apex, right: {at: chest_front, hand: thumbs_up},
           head: {nod: 4}}

How it compiles
---------------

Each key becomes a full pose: torso and head accents, then per arm an analytic two-bone IK
(`ik.solve_arm`: collar lift for high hands, elbow angle from the reach, a swivel that keeps
the elbow down and a little out, away from the torso and consistent with the previous key,
then forearm twist and wrist flexion/deviation for the palm, all clamped to natural limits) and
the hand shape. Poses are interpolated per joint with slerp on an ease curve (zero velocity at
every key, so holds and reversals never pop), with a cubic overshoot-and-settle on the apex.
Takes after the first draw, from a seed fixed by the gesture id and take, an amplitude factor
(±12 % on offsets and angles), timing (±8 % overall and per key), small place jitter, palm
orientation, elbow swivel and finger-curl differences. Phase marks follow from the key times.
"""

from gesticulator.library.authoring.build import build_gesture, build_library, compile_gesture, hand_clearance
from gesticulator.library.authoring.compile import (
    CompiledTake,
    Spec,
    SpecError,
    compile_spec,
    compile_take,
    parse_spec,
    rest_motion,
    rest_pose,
)

__all__ = [
    "CompiledTake",
    "Spec",
    "SpecError",
    "build_gesture",
    "build_library",
    "compile_gesture",
    "compile_spec",
    "compile_take",
    "hand_clearance",
    "parse_spec",
    "rest_motion",
    "rest_pose",
]
