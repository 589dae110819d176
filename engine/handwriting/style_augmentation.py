"""Style augmentation: each training sequence is written a little wider or narrower, taller or shorter, more or
less slanted, the same way from its first point to its last.

Priming asks the network to read a writer's letter width, height and slant from the prime and keep them.
IAM-OnDB's writers vary less than users do, and a small network learns to regress towards the average hand
(the shipped network follows a writer's letter width only about a third of the way). Stretching and shearing a
whole sequence (both lines of a joined pair alike) makes style vary more between sequences while staying
constant within one, so the continuation is predictable only by copying the style read so far.

A pen offset is a difference of two points, so an affine map of the page is the same linear map of every
offset: x' = sx * x + shear * y', y' = sy * y (shear > 0 leans the writing right; y is up in the data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.handwriting.preprocessing import Normalizer


@dataclass(frozen=True)
class StyleJitter:
    """Spreads of the random style per sequence: log-normal width and height factors, a shear (tan of the
    added slant). :meth:`scaled` multiplies all three; scaled by 0, every draw is the identity."""

    width: float = 0.15  # std of log(x factor): about +-15% wider or narrower
    height: float = 0.10  # std of log(y factor)
    shear: float = 0.12  # std of the added slant's tangent: about +-7 degrees

    def scaled(self, scale: float) -> StyleJitter:
        return StyleJitter(self.width * scale, self.height * scale, self.shear * scale)


def style_matrix(sx: float, sy: float, shear: float) -> np.ndarray:
    """The 2x2 map of (dx, dy) offsets: stretch, then shear x by y."""
    return np.array([[sx, shear * sy], [0.0, sy]], np.float64)


def draw_style(rng: np.random.Generator, jitter: StyleJitter) -> np.ndarray:
    sx = float(np.exp(rng.normal(0.0, jitter.width)))
    sy = float(np.exp(rng.normal(0.0, jitter.height)))
    return style_matrix(sx, sy, float(rng.normal(0.0, jitter.shear)))


def restyle(normalized: np.ndarray, matrix: np.ndarray, normalizer: Normalizer) -> np.ndarray:
    """A normalised (T, 3) sequence written with ``matrix`` applied to its raw offsets (pen state kept)."""
    raw = normalizer.denormalize(normalized)
    raw[:, :2] = raw[:, :2] @ matrix.T
    return normalizer.normalize(raw)
