"""A pickle payload that runs code when unpickled unsafely (for the bad-input and weights-only tests)."""

from __future__ import annotations

import os
from pathlib import Path


class Evil:
    """Unpickling this runs ``touch <path>``: a checkpoint that would execute code when loaded unsafely."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch '{self.path}'",))
