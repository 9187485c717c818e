"""Evaluation: motion metrics (beat consistency, diversity, hand speed, jerk, frozen stretches)."""

from gesticulator.eval.metrics import (
    BCLift,
    BeatConsistency,
    FrozenStretches,
    MotionStats,
    Onsets,
    StatsComparison,
    bc_lift,
    beat_consistency,
    beat_consistency_details,
    compare_to_reference,
    frozen_stretches,
    joint_position_error_cm,
    l1_diversity,
    motion_stats,
    speech_mask_from_audio,
    speech_mask_from_transcript,
)

__all__ = [
    "BCLift",
    "BeatConsistency",
    "FrozenStretches",
    "MotionStats",
    "Onsets",
    "StatsComparison",
    "bc_lift",
    "beat_consistency",
    "beat_consistency_details",
    "compare_to_reference",
    "frozen_stretches",
    "joint_position_error_cm",
    "l1_diversity",
    "motion_stats",
    "speech_mask_from_audio",
    "speech_mask_from_transcript",
]
