"""Matching a style's proportions: a per-style correction of letter height, width and slant, measured once.

Primed, the network follows a writer's letter height, width and slant only part of the way (across testset_v
writers the primed output's width moves about half as far as the prime's, its height and slant two thirds to
three quarters; docs/training.md), adds an error of its own per writer, and bias shrinks all writing. So, per
style, the network writes the style's own text in that style a few dozen times; the difference between those lines
and the style's strokes, in letter height, letter width (ink extent per character) and slant, becomes a linear
map of every pen step written in the style afterwards: y and x scaled, then x sheared. (A page is then scaled to
the letter height the user asks for: there what counts is the width's proportion to the height, and the slant.)

The proportions are clamped (``MAX_WIDTH_FACTOR``, ``MAX_SLANT_DEG``) so that a badly measured style cannot
distort the writing, and the identity is used when the measure fails (no ink).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.handwriting.sampling import MixtureParams
from engine.handwriting.style_metrics import StyleMetrics, flip_y, segment_vectors, slant_of_segments

MAX_SIZE_FACTOR = 2.0  # the writing's size (letter height) scaled by at most this factor either way
MAX_WIDTH_FACTOR = 1.3  # letter width relative to the size changed by at most this factor either way
MAX_SLANT_DEG = 12.0  # slant changed by at most this many degrees either way
REFINEMENTS = 12
TRIMMED = 0.15  # the share of lines left out at each end when averaging a measure over written lines
# Raised when the measuring changes in a way the settings below do not show (this module, the measures in
# style_metrics.py, how sampling.py starts and ends a line): corrections kept by an older version are then measured
# anew (engine.handwriting.correction_store).
MEASURING_VERSION = 3


# what a stored correction was measured with (engine.handwriting.correction_store): a change measures anew
MEASURING_SETTINGS = (MEASURING_VERSION, MAX_SIZE_FACTOR, MAX_WIDTH_FACTOR, MAX_SLANT_DEG, REFINEMENTS, TRIMMED)


def robust_mean(values) -> float:
    """The mean of the values after leaving out the lowest and highest ``TRIMMED`` share: a line the network
    botches (a stray stroke twice the letter height) must not move the style, yet the average of the lines is
    what a page shows (a median of a dozen lines missed it by up to 7% in letter height, which varies about 18%
    from line to line at bias 0)."""
    v = np.asarray(values, np.float64)
    v = np.sort(v[np.isfinite(v)])  # a line that could not be measured says nothing about the style
    if len(v) == 0:
        return float("nan")
    k = int(np.ceil(TRIMMED * len(v))) if len(v) > 2 else 0  # rounded up: from three lines on, one at each end
    return float(v[k : len(v) - k].mean())


@dataclass(frozen=True)
class StyleCorrection:
    """x' = width * x + shear * y', y' = height * y (y up), applied to pen steps (dx, dy-up, eos)."""

    width: float = 1.0
    shear: float = 0.0  # tan of the slant added (positive: leaning further right)
    height: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self.width == 1.0 and self.shear == 0.0 and self.height == 1.0

    @property
    def matrix(self) -> np.ndarray:
        """The 2x2 map of (x, y-up) vectors."""
        return np.array([[self.width, self.shear * self.height], [0.0, self.height]])

    def map_xy(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2) vectors or points (x, y-up) mapped: steps and points transform alike (the map is linear)."""
        return np.asarray(xy) @ self.matrix.T

    def apply(self, offsets: np.ndarray) -> np.ndarray:
        """A corrected copy of (T, 3) steps (dx, dy-up, eos); the pen lifts are unchanged."""
        out = np.array(offsets, copy=True)
        if len(out) and not self.is_identity:
            out[:, :2] = self.map_xy(out[:, :2])
        return out

    def apply_to_strokes(self, strokes: list[np.ndarray]) -> list[np.ndarray]:
        """The same map on absolute y-up strokes."""
        return [self.map_xy(np.asarray(s, np.float64)[:, :2]) for s in strokes]

    def apply_to_params(self, params: MixtureParams, mean, std) -> MixtureParams:
        """The mixture of a step's offset as the corrected writing sees it (the Insight views draw it around the
        corrected pen): each Gaussian of (normalised) offsets, n = (d - mean) / std, mapped through d -> A d."""
        if self.is_identity:
            return params
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        # in normalised units the map is n -> B n + b with B = D^-1 A D, b = D^-1 (A mean - mean), D = diag(std)
        A = self.matrix
        B = A * std[None, :] / std[:, None]
        b = (A @ mean - mean) / std
        mu = params.mu @ B.T + b
        sx, sy, rho = params.sigma[..., 0], params.sigma[..., 1], params.rho
        cov = np.stack([np.stack([sx * sx, rho * sx * sy], -1), np.stack([rho * sx * sy, sy * sy], -1)], -2)
        cov = B @ cov @ B.T
        sigma = np.sqrt(np.stack([cov[..., 0, 0], cov[..., 1, 1]], -1))
        rho = cov[..., 0, 1] / (sigma[..., 0] * sigma[..., 1])
        return MixtureParams(params.eos, params.pi, mu, sigma, rho)

    def describe(self) -> str:
        slant = math.degrees(math.atan(self.shear))
        return f"letter height x{self.height:.2f}, width x{self.width:.2f}, slant {slant:+.1f} deg"


def measured(lines: list[tuple[list[np.ndarray], str]]) -> StyleMetrics | None:
    """Style measures of y-up strokes with their texts, each a :func:`robust_mean` over the lines (None without
    ink to measure)."""
    ms = [StyleMetrics.measure(flip_y(strokes), text) for strokes, text in lines if strokes]
    ms = [m for m in ms if m.width > 0 and np.isfinite(m.slant)]
    if not ms:
        return None
    return StyleMetrics(*(robust_mean([getattr(m, f) for m in ms]) for f in ("height", "slant", "width")))


class _Ink:
    """Written lines' segment vectors and points (y up), to measure their slant and width under a correction
    without rebuilding strokes (a linear map of the ink is a linear map of these)."""

    def __init__(self, lines: list[tuple[list[np.ndarray], str]]):
        kept = [(strokes, text) for strokes, text in lines if strokes]
        self.vectors = [segment_vectors(strokes) for strokes, _ in kept]
        self.points = [np.concatenate([np.asarray(s)[:, :2] for s in strokes]) for strokes, _ in kept]
        self.chars = [max(len(text), 1) for _, text in kept]

    def slant_and_width(self, c: StyleCorrection) -> tuple[float, float]:
        """Slant and letter width of the lines with ``c`` applied (each a :func:`robust_mean` over the lines)."""
        slants, widths = [], []
        for vecs, pts, n in zip(self.vectors, self.points, self.chars, strict=True):
            slants.append(slant_of_segments(c.map_xy(vecs) * [1.0, -1.0]))  # the measure takes y down
            widths.append(float(np.ptp(c.map_xy(pts)[:, 0])) / n)
        return robust_mean(slants), robust_mean(widths)


def correction_between(target: StyleMetrics | None, lines: list[tuple[list[np.ndarray], str]]) -> StyleCorrection:
    """The map taking written ``lines`` (y-up strokes, text) to ``target``'s letter height, width and slant.

    The size (letter height) is matched as it is; the proportions are clamped: the width relative to the size by
    ``MAX_WIDTH_FACTOR``, the slant by ``MAX_SLANT_DEG`` (bias shrinks writing as a whole, which is not a
    proportion). Slant is a mean of angles, which a shear does not move by exactly its own angle, and a shear
    widens the ink: both are refined on the lines themselves until they measure as the target does."""
    written = measured(lines)
    if target is None or written is None or not (target.width > 0 and written.width > 0):
        return StyleCorrection()
    size = target.height / written.height if target.height > 0 < written.height else 1.0
    size = float(np.clip(size, 1 / MAX_SIZE_FACTOR, MAX_SIZE_FACTOR))
    ink = _Ink(lines)
    limit = math.tan(math.radians(MAX_SLANT_DEG))
    proportion, shear = 1.0, 0.0
    for _ in range(REFINEMENTS):
        now_slant, now_width = ink.slant_and_width(StyleCorrection(size * proportion, shear, size))
        if not now_width > 0:
            return StyleCorrection()
        if abs(target.slant - now_slant) < 0.05 and abs(now_width / target.width - 1) < 1e-3:
            break
        proportion = float(np.clip(proportion * target.width / now_width, 1 / MAX_WIDTH_FACTOR, MAX_WIDTH_FACTOR))
        shear = float(np.clip(shear + math.tan(math.radians(target.slant - now_slant)), -limit, limit))
    return StyleCorrection(size * proportion, shear, size)
