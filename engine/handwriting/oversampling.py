"""Oversampling training lines that hold rare characters (Graves 2013 leaves them to chance).

In IAM-OnDB, z, j and q each appear on about 2% of the lines, most digits and capitals on under 1%: a
network sees them rarely and writes them poorly, often stalling in a scribble (a pangram line could take
twice the steps of an ordinary one). A line is repeated in every epoch by how rare its rarest character is:
``ceil(below / share)`` times, at most ``most``, where ``share`` is the fraction of training lines that hold
that character. ``most=1`` keeps the data as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

RARE_BELOW = 0.05  # characters on fewer than 5% of the lines count as rare


def rare_character_repeats(texts: Sequence[str], most: int, below: float = RARE_BELOW) -> np.ndarray:
    """How many times each line appears per epoch (int array, 1 for lines without rare characters)."""
    if most < 1:
        raise ValueError("--oversample-rare must be at least 1 (1: no oversampling)")
    repeats = np.ones(len(texts), np.int64)
    if most == 1 or not texts:
        return repeats
    lines_with = Counter(ch for text in texts for ch in set(text))
    n = len(texts)
    for i, text in enumerate(texts):
        if text:
            rarest = min(lines_with[ch] for ch in set(text)) / n
            repeats[i] = int(min(most, max(1, np.ceil(below / rarest - 1e-9))))
    return repeats
