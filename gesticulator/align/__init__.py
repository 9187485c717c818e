"""Alignment and blending: semantic gestures land on their words inside the beat motion.

- `timing`  placing events: apex on the word's emphasis, prep/retract time-warped within limits,
            conflicts merged or dropped by priority, active arms from handedness
- `splice`  forced-token splicing into the rhythm model's stream + per-joint masked slerp
            crossfades at the seams; seam-speed and recognisability measures

    from gesticulator.align import place_events, requests_from_plan, splice
    placed = place_events(requests_from_plan(plan, transcript, prosody), library, duration=secs, seed=0)
    result = splice(rhythm_model, features, secs, placed, library, seed=0)
"""

from gesticulator.align.splice import (
    BlendSettings,
    ClipBank,
    Seam,
    SpliceResult,
    apply_layers,
    build_layers,
    recognisability_cm,
    seam_speed_ratios,
    splice,
)
from gesticulator.align.timing import (
    PlacedEvent,
    PlacementRequest,
    PlacementSettings,
    emphasis_time,
    place_events,
    requests_from_plan,
    requests_from_timeline,
)

__all__ = [
    "BlendSettings",
    "ClipBank",
    "PlacedEvent",
    "PlacementRequest",
    "PlacementSettings",
    "Seam",
    "SpliceResult",
    "apply_layers",
    "build_layers",
    "emphasis_time",
    "place_events",
    "recognisability_cm",
    "requests_from_plan",
    "requests_from_timeline",
    "seam_speed_ratios",
    "splice",
]
