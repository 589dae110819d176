"""Model insight: what the network attended to and what it predicted, as the paper's figures show them.

Two plots, each in a dock the View menu opens beside the page:

* **Attention window** (the paper's alignment figure): for one line, the soft window's weight on each
  character (rows, top to bottom) at each pen step (columns), drawn while the line is written.
* **Mixture density** (the paper's "blobs"): for each pen step, the predicted Gaussian mixture for the next
  pen offset (its six most likely components), placed at the pen's position and summed on a grid over the
  line (:func:`density_grid`), with the ink drawn on top;
  shown on a square-root scale, saturating at the 99.5th percentile, so broad uncertain steps (the start
  of a stroke after a pen lift) stay visible beside the sharp confident ones.

The data comes from the write job, which always records it (measured: no measurable cost). A plot is drawn
only while it is visible, and pyqtgraph is imported when a plot is first drawn: closed docks cost the
app's start-up nothing (importing pyqtgraph took a third of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QStackedWidget, QVBoxLayout, QWidget

from desktop.workers import Recording, WriteProgress, WriteResult
from engine.handwriting.sampling import MixtureParams

GRID_WIDTH = 480  # density grid cells across the line
PATCH_RADIUS = 20  # cells either side of a step's mixture mean where its density is evaluated
TOP_COMPONENTS = 6  # per step; measured 98% of the mass on average at neatness 0.75
DENSITY_STOPS = ([0.0, 0.35, 1.0], [(255, 255, 255), (255, 176, 72), (160, 16, 32)])
END_LABEL = "⏎"  # the window's extra position past the text: attending there ends the line


def density_grid(
    offsets: np.ndarray,
    params: MixtureParams,
    mean: Sequence[float],
    std: Sequence[float],
    width: int = GRID_WIDTH,
    radius: int = PATCH_RADIUS,
    components: int = TOP_COMPONENTS,
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Sum of every step's predicted offset density, placed at the pen's position before that step.

    ``offsets`` (steps, 3) in sensor units (y up); ``params`` per step in normalised units, mapped to sensor
    units with ``mean``/``std``. Returns the grid (x cells, y cells) and (left, bottom, cell size).
    Each step is evaluated only on a patch of ``radius`` cells around its mixture's mean (about a pen step
    or two across a line), which holds nearly all of its mass.
    """
    steps = min(len(offsets), len(params.pi))
    mean_, std_ = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    pen = np.vstack([np.zeros((1, 2)), np.cumsum(np.asarray(offsets, np.float64)[:, :2], axis=0)])[:steps]
    # Each step's most likely components only: they hold nearly all of its mass, at a fraction of the cost.
    top = np.argsort(-params.pi[:steps], axis=1)[:, :components]
    pick = partial(np.take_along_axis, indices=top, axis=1)
    centre = pen[:, None, :] + pick(params.mu[:steps], indices=top[..., None]) * std_ + mean_  # (steps, K, 2)
    sigma = pick(params.sigma[:steps], indices=top[..., None]) * std_
    pi, rho = pick(params.pi[:steps]), np.clip(pick(params.rho[:steps]), -0.999, 0.999)
    pad = float(np.percentile(np.abs(centre - pen[:, None, :]) + 3 * sigma, 95)) if steps else 1.0
    lo, hi = pen.min(axis=0) - pad, pen.max(axis=0) + pad
    cell = max(float(hi[0] - lo[0]) / width, 1e-9)
    # Blurred to the grid's resolution: a component narrower than a cell would land between cell centres.
    sigma = np.sqrt(sigma**2 + (0.5 * cell) ** 2)
    shape = np.maximum(np.ceil((hi - lo) / cell).astype(int), 1)
    grid = np.zeros(tuple(shape))
    span = np.arange(-radius, radius + 1)
    patch = np.stack(np.meshgrid(span, span, indexing="ij"), axis=-1).reshape(-1, 2)
    home = np.floor(((pi[..., None] * centre).sum(axis=1) - lo) / cell).astype(int)  # the mixture's mean
    norm = pi / (2 * np.pi * sigma[..., 0] * sigma[..., 1] * np.sqrt(1 - rho**2))
    for start in range(0, steps, 16):
        b = slice(start, start + 16)
        cells = home[b, None, :] + patch[None]  # (batch, P, 2)
        d = (lo + (cells + 0.5) * cell)[:, :, None, :] - centre[b, None]  # (batch, P, M, 2)
        zx, zy, r = d[..., 0] / sigma[b, None, :, 0], d[..., 1] / sigma[b, None, :, 1], rho[b, None]
        z = (zx**2 + zy**2 - 2 * r * zx * zy) / (2 * (1 - r**2))
        density = (norm[b, None] * np.exp(-z)).sum(axis=-1)
        inside = ((cells >= 0) & (cells < shape)).all(axis=-1)
        flat = cells[..., 0][inside] * shape[1] + cells[..., 1][inside]
        grid += np.bincount(flat, density[inside], minlength=grid.size).reshape(grid.shape)
    return grid, (float(lo[0]), float(lo[1]), cell)


def _pyqtgraph() -> Any:
    import pyqtgraph

    return pyqtgraph


def _line_texts(texts: Sequence[str]) -> list[str]:
    return [str(t) for t in texts]


class _InsightPlot(QWidget):
    """A plot of one line at a time, or a hint while there is nothing to plot."""

    hint_text = ""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.texts: list[str] = []
        self.recording: Recording | None = None
        self.line_spin = QSpinBox()
        self.line_spin.setRange(1, 1)
        self.line_spin.setPrefix("Line ")
        self.line_spin.setToolTip("Which line of the page to show.")
        self.line_spin.valueChanged.connect(lambda _: self.redraw())
        self.hint = QLabel(self.hint_text)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: palette(placeholder-text); padding: 16px;")
        self.plot: Any = None  # a pyqtgraph PlotWidget, made when first drawn (see _ensure_plot)
        self._stale = True
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        top = QHBoxLayout()
        top.addWidget(self.line_spin)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        self.setMinimumWidth(320)

    @property
    def line(self) -> int:
        """The selected line, 0-based."""
        return self.line_spin.value() - 1

    @property
    def showing_hint(self) -> bool:
        return self.stack.currentWidget() is self.hint

    def begin(self, texts: Sequence[str]) -> None:
        """A new job writes ``texts``: forget the old page."""
        self.texts = _line_texts(texts)
        self.recording = None
        self.line_spin.setRange(1, max(len(self.texts), 1))
        self.redraw()

    def add_progress(self, progress: WriteProgress) -> None:
        """A chunk arrived (plots that draw while writing override this)."""

    def set_result(self, result: WriteResult) -> None:
        self.texts = _line_texts(result.texts)
        self.recording = result.recording
        self.line_spin.setRange(1, max(len(self.texts), 1))
        self.redraw()

    def show_hint(self, text: str | None = None) -> None:
        self.hint.setText(text or self.hint_text)
        self.stack.setCurrentWidget(self.hint)

    def show_plot(self) -> Any:
        """Switch to the plot (made on first use) and return it."""
        if self.plot is None:
            pg = _pyqtgraph()
            self.plot = pg.PlotWidget(background="w")
            self.plot.setMenuEnabled(False)
            self.stack.addWidget(self.plot)
            self._build_plot(pg)
        self.stack.setCurrentWidget(self.plot)
        return self.plot

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if self._stale:
            self.redraw()

    def redraw(self) -> None:
        """Draw the selected line now if the plot is visible, else when it is shown."""
        self._stale = not self.isVisible()
        if not self._stale:
            self._draw()

    def _build_plot(self, pg: Any) -> None:
        raise NotImplementedError

    def _draw(self) -> None:
        raise NotImplementedError


class AttentionPlot(_InsightPlot):
    """The soft window over the line's characters (rows) at each pen step (columns)."""

    hint_text = "Write some text to see which characters the model attends to as it writes."

    def __init__(self, parent: QWidget | None = None) -> None:
        self._live: list[list[np.ndarray]] = []
        self.image: Any = None
        super().__init__(parent)

    def _build_plot(self, pg: Any) -> None:
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self.plot.invertY(True)
        self.plot.setLabel("bottom", "pen step")
        self.plot.setLabel("left", "character")
        self.plot.showGrid(x=False, y=False)

    def begin(self, texts: Sequence[str]) -> None:
        self._live = [[] for _ in texts]
        super().begin(texts)

    def add_progress(self, progress: WriteProgress) -> None:
        if progress.windows is None:
            return
        for i, rows in enumerate(progress.windows):
            if i < len(self._live) and len(rows):
                self._live[i].append(rows)
        if self.line < len(progress.windows) and len(progress.windows[self.line]):
            self.redraw()

    def set_result(self, result: WriteResult) -> None:
        self._live = []
        super().set_result(result)

    def window(self, line: int) -> np.ndarray | None:
        """(steps, characters + 1) weights for the line's own text (a style's text, read first, is cut off)."""
        if self.recording is not None and line < len(self.recording.windows):
            weights = self.recording.windows[line]
        elif line < len(self._live) and self._live[line]:
            weights = np.concatenate(self._live[line])
        else:
            return None
        if weights.size == 0 or line >= len(self.texts):
            return None
        own = len(self.texts[line]) + 1
        return weights[:, -own:] if weights.shape[1] >= own else weights

    def _draw(self) -> None:
        weights = self.window(self.line)
        if weights is None:
            self.show_hint()
            return
        self.show_plot()
        # Saturating at a high percentile keeps the path readable past the odd very sharp step.
        top = max(float(np.percentile(weights, 99.8)), 1e-6)
        self.image.setImage(weights, autoLevels=False, levels=(0.0, top))
        self.image.setRect(0, 0, weights.shape[0], weights.shape[1])
        text = self.texts[self.line] if self.line < len(self.texts) else ""
        labels = [("␣" if c == " " else c) for c in text][: weights.shape[1] - 1] + [END_LABEL]
        ticks = [(i + 0.5, label) for i, label in enumerate(labels)]
        self.plot.getAxis("left").setTicks([ticks, []])
        self.plot.setXRange(0, weights.shape[0], padding=0)
        self.plot.setYRange(0, weights.shape[1], padding=0)


class DensityPlot(_InsightPlot):
    """The predicted next-offset mixtures of every step, summed at the pen's positions, with the ink on top."""

    hint_text = "Write some text to see the model's predicted pen positions (the mixture density)."

    def __init__(self, parent: QWidget | None = None) -> None:
        self.image: Any = None
        self.ink: Any = None
        self.grid: np.ndarray | None = None
        self.strokes: list[list[np.ndarray]] = []
        super().__init__(parent)

    def _build_plot(self, pg: Any) -> None:
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(pg.ColorMap(*DENSITY_STOPS))
        self.ink = pg.PlotDataItem(pen=pg.mkPen(26, 26, 64, 110, width=1), connect="finite")
        self.plot.addItem(self.image)
        self.plot.addItem(self.ink)
        self.plot.setAspectLocked(True)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")

    def set_result(self, result: WriteResult) -> None:
        self.strokes = result.lines
        super().set_result(result)

    def _draw(self) -> None:
        # The grid takes a moment for a long line: computed only when someone is looking (see redraw).
        recording, line = self.recording, self.line
        self.grid = None
        if recording is None or line >= len(recording.params) or not len(recording.offsets[line]):
            self.show_hint(None if recording is None else "Nothing was recorded for this line.")
            return
        self.show_plot()
        offsets = recording.offsets[line]
        grid, (left, bottom, cell) = density_grid(offsets, recording.params[line], recording.mean, recording.std)
        self.grid = grid
        # A few very confident steps dwarf the rest: saturate at a high percentile of the inked cells.
        inked = grid[grid > 0]
        top = float(np.percentile(inked, 99.5)) if inked.size else 1.0
        self.image.setImage(np.sqrt(grid), autoLevels=False, levels=(0.0, max(np.sqrt(top), 1e-12)))
        self.image.setRect(left, bottom, grid.shape[0] * cell, grid.shape[1] * cell)
        self.ink.setData(*_ink_xy(self.strokes[line] if line < len(self.strokes) else []))


def _ink_xy(strokes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The line's strokes as one path with NaN breaks where the pen was lifted, for one PlotDataItem."""
    parts = [np.vstack([np.asarray(s, np.float64)[:, :2], [[np.nan, np.nan]]]) for s in strokes if len(s)]
    xy = np.concatenate(parts) if parts else np.zeros((0, 2))
    return xy[:, 0], xy[:, 1]
