"""Turn absolute pen points into the network's inputs, as in Graves (2013), section 4.

Each time step is an offset (dx, dy) from the previous point plus an end-of-stroke flag that is 1 when
the pen lifts after this point. The y axis points up (IAM records it growing downward). Rare huge jumps
(sensor glitches, 0.13% of offsets above 500 units) are clipped, then offsets are normalised to mean 0
and standard deviation 1; the statistics travel with the model.

Point conventions (recorded in every model's metadata):
- ``paper``: one time step per recorded point, as the paper; only then is the NLL comparable with it.
- ``skip2``: every second point kept within each stroke (each stroke's last point always kept, so pen
  lifts stay where they were), about 11 steps per character instead of 21: 3-4x cheaper to train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONVENTIONS = {"paper": 1, "skip2": 2}
CLIP_SENSOR_UNITS = 500.0


def downsample(points: np.ndarray, convention: str) -> np.ndarray:
    """Keep every n-th point inside each stroke, always keeping each stroke's first and last point."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown point convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    step = CONVENTIONS[convention]
    if step == 1 or len(points) == 0:
        return points
    ends = np.flatnonzero(points[:, 2] == 1)
    starts = np.concatenate([[0], ends + 1])
    starts = starts[starts < len(points)]
    index = np.arange(len(points))
    position_in_stroke = index - np.repeat(starts, np.diff(np.concatenate([starts, [len(points)]])))
    keep = (position_in_stroke % step == 0) | (points[:, 2] == 1)
    if ends.size == 0 or ends[-1] != len(points) - 1:
        keep[-1] = True
    return points[keep]


def points_to_offsets(points: np.ndarray, convention: str = "paper") -> np.ndarray:
    """Absolute points (x, y-down, eos) -> float32 steps (dx, dy-up, eos) in sensor units, jumps clipped.

    The first point only fixes where the line starts, so N points give N-1 steps.
    """
    pts = downsample(np.asarray(points), convention).astype(np.float32)
    if len(pts) < 2:
        raise ValueError("a line needs at least two points")
    offsets = np.empty((len(pts) - 1, 3), dtype=np.float32)
    offsets[:, 0] = np.diff(pts[:, 0])
    offsets[:, 1] = -np.diff(pts[:, 1])
    offsets[:, 2] = pts[1:, 2]
    np.clip(offsets[:, :2], -CLIP_SENSOR_UNITS, CLIP_SENSOR_UNITS, out=offsets[:, :2])
    return offsets


def offsets_to_points(offsets: np.ndarray, start: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Steps (dx, dy-up, eos) -> absolute points (x, y-up, eos), starting at ``start``."""
    offsets = np.asarray(offsets, dtype=np.float64)
    out = np.zeros((len(offsets) + 1, 3))
    out[0, :2] = start
    out[1:, :2] = start + np.cumsum(offsets[:, :2], axis=0)
    out[1:, 2] = offsets[:, 2]
    return out


@dataclass
class Normalizer:
    """Mean and std of (dx, dy) over the training set."""

    mean: tuple[float, float]
    std: tuple[float, float]

    @classmethod
    def fit(cls, sequences: list[np.ndarray]) -> Normalizer:
        xy = np.concatenate([s[:, :2] for s in sequences]).astype(np.float64)
        return cls(tuple(xy.mean(0).tolist()), tuple(xy.std(0).tolist()))

    def normalize(self, offsets: np.ndarray) -> np.ndarray:
        out = np.array(offsets, dtype=np.float32, copy=True)
        out[:, :2] = (out[:, :2] - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return out

    def denormalize(self, offsets: np.ndarray) -> np.ndarray:
        out = np.array(offsets, dtype=np.float32, copy=True)
        out[:, :2] = out[:, :2] * np.asarray(self.std, np.float32) + np.asarray(self.mean, np.float32)
        return out

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> Normalizer:
        return cls(tuple(data["mean"]), tuple(data["std"]))
