"""Where the prediction network expects the pen to go next, as a heat map over a writing surface (no Qt).

The paper's unconditional network (Graves 2013, section 4) reads the user's ink point by point; after every
point its mixture density says where the next point should land. :class:`PenPredictor` turns pen strokes in
screen pixels (y down) into the network's inputs, runs it, and sums the probability mass of each predicted
point over a grid of cells covering the surface:

    predictor = PenPredictor.load()                    # the shipped prediction network
    heat = predictor.heatmap(strokes, (800, 250), letter_height_px=36)
    heat.trail     # (rows, cols): mass of every step's prediction (the paper's "blobs" along the writing)
    heat.next      # (rows, cols): mass of the prediction after the last point: where the pen goes next

Scale: the ink's letter height (the interquartile band of its y, as styles measure it) maps to IAM-OnDB's
typical one in sensor units, and each stroke is resampled at IAM-OnDB's point spacing, as styles are
(engine.handwriting.styles), so the network sees ink that looks like its training data whatever the device.
Until there is enough ink to measure (``MEASURE_AFTER`` letter heights of it), the caller's prior is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.handwriting.checkpoint import ModelFile, ModelFileError, load_model_file
from engine.handwriting.preprocessing import Normalizer, downsample
from engine.handwriting.sampling import MixtureParams, mixture_params
from engine.handwriting.style_metrics import ink_length, letter_height
from engine.handwriting.styles import IAM_LETTER_HEIGHT, IAM_POINT_SPACING
from engine.handwriting.writer import make_stepper, shipped_model_path

MAX_STEPS = 1200  # the network reads at most this many of the latest points (a long line: about 1 s on a CPU)
REACH_SIGMAS = 3.5  # each component's density is evaluated this many standard deviations around its mean
MIN_WEIGHT = 1e-3  # components lighter than this are left out of the map
MEASURE_AFTER = 12.0  # letter heights of ink before the ink's own letter height replaces the prior


@dataclass(frozen=True)
class HeatMap:
    """Probability mass per grid cell; cell (r, c) covers pixels [c*cell, (c+1)*cell) x [r*cell, (r+1)*cell)."""

    trail: np.ndarray  # (rows, cols) float32, summed over every step read
    next: np.ndarray  # (rows, cols) float32, the next point only (sums to at most 1)
    cell: float
    steps: int  # how many predictions the trail sums


def ink_letter_height(strokes: list[np.ndarray], prior: float) -> float:
    """The ink's letter height once there is enough of it to measure (and it is plausible), else ``prior``."""
    xy = [np.asarray(s, np.float64)[:, :2] for s in strokes if len(s) > 1]
    if not xy:
        return prior
    measured = letter_height(xy)
    if measured > 0.25 * prior and ink_length(xy) >= MEASURE_AFTER * measured:
        return float(measured)
    return prior


def resample_stroke(xy: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` along the stroke (ends kept); a dot stays one point."""
    xy = np.asarray(xy, np.float64)[:, :2]
    if len(xy) < 2:
        return xy
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    if arc[-1] <= 0:
        return xy[:1]
    at = np.linspace(0.0, arc[-1], max(int(round(arc[-1] / spacing)), 1) + 1)
    return np.column_stack([np.interp(at, arc, xy[:, 0]), np.interp(at, arc, xy[:, 1])])


def pen_points(strokes: list[np.ndarray], sensor_per_px: float, convention: str) -> np.ndarray:
    """Strokes in pixels (y down) -> the network's points (x, y down, eos) in sensor units, after its convention."""
    spacing = IAM_POINT_SPACING * IAM_LETTER_HEIGHT / sensor_per_px
    parts = []
    for stroke in strokes:
        xy = resample_stroke(np.asarray(stroke, np.float64), spacing)
        if len(xy):
            eos = np.zeros((len(xy), 1))
            eos[-1] = 1
            parts.append(np.hstack([xy * sensor_per_px, eos]))
    if not parts:
        return np.zeros((0, 3))
    return downsample(np.vstack(parts), convention)


def component_grid(
    params: MixtureParams, row: int, centre: np.ndarray, normalizer: Normalizer, px_per_sensor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step's mixture in pixels, y down: (pi (M,), mu (M, 2), sigma (M, 2), rho (M,)), means around ``centre``."""
    mean, std = np.asarray(normalizer.mean), np.asarray(normalizer.std)
    mu = (params.mu[row] * std + mean) * px_per_sensor
    mu[:, 1] = -mu[:, 1]  # the network's y grows upward
    sigma = params.sigma[row] * std * px_per_sensor
    return params.pi[row], centre + mu, sigma, -params.rho[row]


def add_mixture_mass(
    grid: np.ndarray, cell: float, pi: np.ndarray, mu: np.ndarray, sigma: np.ndarray, rho: np.ndarray
) -> None:
    """Add a bivariate Gaussian mixture's probability mass per cell (density at the cell centre times its area,
    the density blurred by half a cell so that mass is kept however sharp a component is)."""
    rows, cols = grid.shape
    keep = np.flatnonzero(pi > MIN_WEIGHT)
    if not len(keep):
        return
    pi, mu = pi[keep], mu[keep]
    # Blurred to the grid's resolution (half a cell): a component narrower than a cell would otherwise put
    # its peak density times the cell's area, far more than its mass, on the cell holding its mean.
    raw = np.maximum(sigma[keep], 1e-6)
    sig = np.sqrt(raw**2 + (0.5 * cell) ** 2)
    r = np.clip(rho[keep] * raw[:, 0] * raw[:, 1] / (sig[:, 0] * sig[:, 1]), -0.999, 0.999)
    # One patch for the step: every kept component's mean +- REACH_SIGMAS of its spread, clipped to the grid.
    lo = ((mu - REACH_SIGMAS * sig) / cell).min(axis=0)
    hi = ((mu + REACH_SIGMAS * sig) / cell).max(axis=0)
    c0, c1 = max(int(math.floor(lo[0])), 0), min(int(math.ceil(hi[0])), cols)
    r0, r1 = max(int(math.floor(lo[1])), 0), min(int(math.ceil(hi[1])), rows)
    if c0 >= c1 or r0 >= r1:
        return
    zx = ((np.arange(c0, c1) + 0.5) * cell - mu[:, 0:1]) / sig[:, 0:1]  # (K, C)
    zy = ((np.arange(r0, r1) + 0.5) * cell - mu[:, 1:2]) / sig[:, 1:2]  # (K, R)
    one_minus = (1 - r * r)[:, None, None]
    q = zx[:, None, :] ** 2 + zy[:, :, None] ** 2 - 2 * r[:, None, None] * zx[:, None, :] * zy[:, :, None]
    norm = pi * cell * cell / (2 * math.pi * sig[:, 0] * sig[:, 1] * np.sqrt(1 - r * r))
    grid[r0:r1, c0:c1] += np.einsum("k,krc->rc", norm, np.exp(-q / (2 * one_minus))).astype(grid.dtype)


class PenPredictor:
    """The prediction network, ready to read pen strokes; not thread-safe (one heat map at a time)."""

    def __init__(self, model: ModelFile, stepper):
        if model.kind != "prediction":
            raise ModelFileError(f"the heat map needs a prediction model, not a {model.kind} model")
        self.model, self.stepper = model, stepper
        self.normalizer = Normalizer.from_dict(model.meta["normalizer"])
        self.convention: str = model.meta["convention"]
        self.mixtures = int(model.meta["config"]["mixtures"])

    @classmethod
    def load(cls, path: str | Path | None = None, backend: str = "auto", device: str = "cpu") -> PenPredictor:
        path = Path(path) if path is not None else shipped_model_path("prediction")
        model = load_model_file(path)
        return cls(model, make_stepper(model, backend, device, path))

    def predictions(self, points: np.ndarray, bias: float = 0.0) -> MixtureParams:
        """The mixture after each point of ``points`` (x, y-down, eos; sensor units): (len(points), ...)."""
        offsets = np.zeros((len(points), 3), np.float32)
        offsets[1:, 0] = np.diff(points[:, 0])
        offsets[1:, 1] = -np.diff(points[:, 1])
        offsets[1:, 2] = points[1:, 2]
        inputs = self.normalizer.normalize(offsets)
        inputs[0] = 0.0  # the first point only says where the writing starts: the network's first input is zero
        state = self.stepper.start(np.zeros((1, 1), np.int64))
        outputs = []
        for x in inputs:
            y, _, state = self.stepper.step(x[None], state)
            outputs.append(y[0])
        return mixture_params(np.asarray(outputs), self.mixtures, bias)

    def heatmap(
        self,
        strokes: list[np.ndarray],
        size: tuple[float, float],
        letter_height_px: float,
        cell: float = 4.0,
        bias: float = 0.0,
    ) -> HeatMap:
        """The heat map over a surface of ``size`` (width, height) pixels for strokes in its pixels (y down).

        ``letter_height_px``: the expected letter height (the interquartile band of the ink's y) until the ink
        is long enough to measure its own (:func:`ink_letter_height`)."""
        if not (letter_height_px > 0 and cell > 0):
            raise ValueError("the letter height and the cell size must be positive")
        rows, cols = max(1, math.ceil(size[1] / cell)), max(1, math.ceil(size[0] / cell))
        trail, upcoming = np.zeros((rows, cols), np.float32), np.zeros((rows, cols), np.float32)
        sensor_per_px = IAM_LETTER_HEIGHT / ink_letter_height(strokes, letter_height_px)
        points = pen_points(strokes, sensor_per_px, self.convention)[-MAX_STEPS:]
        if len(points) == 0:
            return HeatMap(trail, upcoming, cell, 0)
        params = self.predictions(points, bias)
        px = points[:, :2] / sensor_per_px
        for t in range(len(points)):
            mixture = component_grid(params, t, px[t], self.normalizer, 1.0 / sensor_per_px)
            add_mixture_mass(trail, cell, *mixture)
        add_mixture_mass(
            upcoming, cell, *component_grid(params, len(points) - 1, px[-1], self.normalizer, 1 / sensor_per_px)
        )
        return HeatMap(trail, upcoming, cell, len(points))
