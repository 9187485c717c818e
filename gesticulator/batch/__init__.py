"""Batch animation: a manifest or a folder of recordings in, one output folder per item out;
parallel (local processes or Ray), resumable after a crash, one bad item never stops the rest.

    from gesticulator.batch import BatchOptions, run_batch
    summary = run_batch("talks.csv", "out/", options=BatchOptions(formats=("npz",)), workers=2)

See `gesticulator.batch.manifest` (what a manifest holds) and `gesticulator.batch.runner`
(engines, the completion markers, batch.jsonl).
"""

from __future__ import annotations

from gesticulator.batch.manifest import BatchItem, Manifest, ManifestError, read_items
from gesticulator.batch.runner import BatchFailed, BatchOptions, BatchSummary, run_batch

__all__ = [
    "BatchFailed",
    "BatchItem",
    "BatchOptions",
    "BatchSummary",
    "Manifest",
    "ManifestError",
    "read_items",
    "run_batch",
]
