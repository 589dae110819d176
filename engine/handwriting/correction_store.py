"""Style corrections kept between runs, in the user's cache folder.

Measuring a style's correction (engine.handwriting.style_matching) writes the style's text a few dozen times:
one to three seconds on one thread, once per style, neatness step and model. ``penwright write`` starts afresh
every time and the app after every restart, so both read the correction back from here instead. An entry's key
covers everything the measure depends on (the model's weights, the backend that ran it, the style's strokes and
text, the neatness step, the measuring settings), so a changed input is measured anew, never looked up. A cache:
a damaged, unreadable or deleted file only costs measuring again; values are stored as Python writes floats
(``repr``), so a correction read back is the one measured, to the bit, and the output's bytes stay the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from pathlib import Path

from engine.atomic import atomic_write_text
from engine.handwriting.style_matching import StyleCorrection
from engine.paths import cache_dir

FILE_NAME = "style-corrections.json"
FORMAT = 1
KEPT = 256  # entries, the oldest dropped first: about 60 bytes each


def correction_key(*parts: object) -> str:
    """One key for everything a correction depends on (JSON-serialisable parts, in a fixed order)."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class CorrectionStore:
    """A small JSON file of corrections by key; reads and writes whole (written atomically).

    ``path`` None: the cache folder could not be made (read-only, or a file in its place); the store then keeps
    nothing and corrections are measured as without it."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None

    @classmethod
    def default(cls) -> CorrectionStore:
        try:
            return cls(cache_dir() / FILE_NAME)
        except OSError:
            return cls(None)

    def _entries(self) -> dict[str, list]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError, RecursionError):  # missing, unreadable or damaged: start again
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("corrections"), dict):
            return {}
        return data["corrections"]

    def get(self, key: str) -> StyleCorrection | None:
        value = self._entries().get(key)
        if (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(v, float) and math.isfinite(v) for v in value)  # as written: floats, never ints
            and value[0] > 0
            and value[2] > 0
        ):
            return StyleCorrection(*(float(v) for v in value))
        return None

    def put(self, key: str, correction: StyleCorrection) -> None:
        if self.path is None:
            return
        entries = self._entries()
        entries.pop(key, None)
        entries[key] = [float(correction.width), float(correction.shear), float(correction.height)]
        while len(entries) > KEPT:
            entries.pop(next(iter(entries)))
        with contextlib.suppress(OSError):  # a read-only or full cache folder: measured again next time
            atomic_write_text(self.path, json.dumps({"format": FORMAT, "corrections": entries}))
