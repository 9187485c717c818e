"""Semantic gesture planning: which words get which library gesture.

- `find_candidates` (candidates.py): phrase windows of a transcript and their top gestures
  (one batched index search) -> list[CandidateWindow];
- `EmbeddedSelector` (embedded.py): the default, LLM-free selector -> list[SemanticEvent];
  `schedule` enforces density, spacing and no back-to-back repeats for any selector;
- `Planner` (planner.py): candidates -> selector -> script markup -> SemanticPlan;
  `transcript_from_text` gives a script synthetic word times when there is no audio.
"""

from gesticulator.semantics.candidates import find_candidates, is_anchor_word, normalise_word
from gesticulator.semantics.embedded import DENSITY_PER_MINUTE, EmbeddedSelector, schedule
from gesticulator.semantics.planner import Planner, transcript_from_text

__all__ = [
    "DENSITY_PER_MINUTE",
    "EmbeddedSelector",
    "Planner",
    "find_candidates",
    "is_anchor_word",
    "normalise_word",
    "schedule",
    "transcript_from_text",
]
