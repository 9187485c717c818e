"""gesticulator: speech in, meaningful full-body SMPL-X gesture animation out."""

from gesticulator.errors import GesticulatorError
from gesticulator.types import Motion

__version__ = "0.1.0"

__all__ = ["GesticulatorError", "Motion", "__version__"]
