"""The semantic gesture library: catalog schema, storage, authoring, importers and search index."""

from gesticulator.library.schema import SCHEMA_VERSION, CatalogError, Gesture, Phases, Take
from gesticulator.library.store import Library, default_library_dir, take_clip_path

__all__ = [
    "SCHEMA_VERSION",
    "CatalogError",
    "Gesture",
    "Library",
    "Phases",
    "Take",
    "default_library_dir",
    "take_clip_path",
]
