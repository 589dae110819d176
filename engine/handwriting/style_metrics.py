"""Measures of a handwriting's style on its strokes: letter height, slant and letter width.

All measures work on strokes as lists of (n, >=2) arrays of absolute points (x, y, ...) with y growing
DOWNWARD (as tablets and IAM-OnDB record them; flip generated y-up strokes first, see :func:`flip_y`).
Every measure weighs ink by arc length, never by point count, so the sampling rate does not matter.

- letter height: the interquartile band of the ink's y after removing the line's tilt (a straight line
  fitted through the ink). Half the ink lies in that band: it tracks the x-height of the writing and
  ignores ascenders, descenders, dots and the odd stray stroke.
- slant: the mean angle from vertical, in degrees, of the ink that runs downward within 45 degrees of
  vertical (positive: leaning right, as most right-handed writing does).
- letter width: the horizontal extent of the ink divided by the number of characters of the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def flip_y(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """y-up strokes (as the model writes them) -> y-down strokes, and back."""
    out = []
    for s in strokes:
        s = np.array(s, np.float64, copy=True)
        s[:, 1] = -s[:, 1]
        out.append(s)
    return out


def _segments(strokes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints (n, 2) and vectors (n, 2) of every segment inside the strokes."""
    mids, vecs = [], []
    for s in strokes:
        xy = np.asarray(s, np.float64)[:, :2]
        if len(xy) < 2:
            continue
        mids.append((xy[1:] + xy[:-1]) / 2)
        vecs.append(np.diff(xy, axis=0))
    if not mids:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return np.concatenate(mids), np.concatenate(vecs)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) - 0.5 * w
    return float(np.interp(q * w.sum(), cdf, v))


def ink_length(strokes: list[np.ndarray]) -> float:
    _, vecs = _segments(strokes)
    return float(np.hypot(vecs[:, 0], vecs[:, 1]).sum())


def letter_height(strokes: list[np.ndarray]) -> float:
    """Interquartile band of the detrended y of the ink, weighted by arc length (0 when there is no ink)."""
    mids, vecs = _segments(strokes)
    w = np.hypot(vecs[:, 0], vecs[:, 1])
    if len(w) == 0 or w.sum() <= 0:
        return 0.0
    x, y = mids[:, 0], mids[:, 1]
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1, w=np.sqrt(w))
        y = y - (slope * x + intercept)
    return _weighted_quantile(y, w, 0.75) - _weighted_quantile(y, w, 0.25)


def slant(strokes: list[np.ndarray]) -> float:
    """Mean angle from vertical (degrees, + leaning right) of the ink going down within 45 degrees of vertical."""
    return slant_of_segments(_segments(strokes)[1])


def segment_vectors(strokes: list[np.ndarray]) -> np.ndarray:
    """(n, 2) vectors of every segment inside the strokes (what :func:`slant_of_segments` measures)."""
    return _segments(strokes)[1]


def slant_of_segments(vecs: np.ndarray) -> float:
    """:func:`slant` of segment vectors (y down): a linear map of the ink maps these, so re-measuring is cheap."""
    down = vecs[vecs[:, 1] > np.abs(vecs[:, 0])]  # y down: dy > |dx| is a near-vertical down-stroke
    if len(down) == 0:
        return 0.0
    w = np.hypot(down[:, 0], down[:, 1])
    # Going down and to the left means the letter's top leans right.
    return float(np.degrees(np.average(np.arctan2(-down[:, 0], down[:, 1]), weights=w)))


def letter_width(strokes: list[np.ndarray], n_chars: int) -> float:
    xs = np.concatenate([np.asarray(s, np.float64)[:, 0] for s in strokes]) if strokes else np.zeros(1)
    return float(np.ptp(xs)) / max(n_chars, 1)


@dataclass
class StyleMetrics:
    height: float
    slant: float  # degrees
    width: float  # per character, same units as height

    @classmethod
    def measure(cls, strokes: list[np.ndarray], text: str) -> StyleMetrics:
        return cls(letter_height(strokes), slant(strokes), letter_width(strokes, len(text)))

    def relative_to(self, other: StyleMetrics) -> dict[str, float]:
        """Differences from ``other``: height and width in percent, slant in degrees."""
        return {
            "height_pct": 100 * (self.height / other.height - 1) if other.height else float("inf"),
            "width_pct": 100 * (self.width / other.width - 1) if other.width else float("inf"),
            "slant_deg": self.slant - other.slant,
        }
