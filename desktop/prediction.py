"""Prediction mode: while the user writes, the prediction network's heat map follows the pen on the canvas.

The network and the density grid are the engine's (``engine.handwriting.prediction_heatmap``); they run on a
background :class:`~desktop.workers.JobRunner` of their own, never on the UI thread. While the pen moves a
new map is asked for at most every ``THROTTLE_MS``; a newer request replaces one still waiting, so the map
lags the pen by about one computation and the canvas stays smooth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from desktop import settings
from desktop.pen_canvas import GUIDE_LETTER_HEIGHT, PenCanvas
from desktop.workers import JobError, JobRunner, readable_error
from engine.handwriting.prediction_heatmap import HeatMap, PenPredictor
from engine.handwriting.writer import shipped_model_path

THROTTLE_MS = 250
CELL_PX = 4.0


class PredictorCache:
    """The prediction network, loaded on first use on the worker thread and kept for the next map."""

    def __init__(self) -> None:
        self._loaded: tuple[tuple, PenPredictor] | None = None

    def get(self, path: Path, backend: str, device: str) -> PenPredictor:
        key = (path, backend, device)
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = (key, PenPredictor.load(path, backend, device))
        return self._loaded[1]


def heatmap_job(
    cache: PredictorCache,
    path: Path,
    backend: str,
    device: str,
    strokes: list[np.ndarray],
    size: tuple[int, int],
) -> HeatMap:
    """Load the network (once) and compute the heat map for the canvas's ink."""
    if not path.exists():
        raise JobError(f"No prediction model found at {path}; prediction mode needs it.")
    try:
        predictor = cache.get(path, backend, device)
    except Exception as exc:  # a file that cannot be used: say why, once
        raise JobError("Could not load the prediction model: " + readable_error(exc)) from exc
    return predictor.heatmap(strokes, size, GUIDE_LETTER_HEIGHT, CELL_PX)


class PredictionMode(QObject):
    """Keeps a canvas's heat map up to date while enabled; ``message`` reports problems for a status line."""

    message = Signal(str)
    updated = Signal(object)  # HeatMap

    def __init__(self, canvas: PenCanvas, model_path: str | Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.model_path = Path(model_path) if model_path else shipped_model_path("prediction")
        self.enabled = False
        self.runner = JobRunner(self)
        self._cache = PredictorCache()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THROTTLE_MS)
        self._timer.timeout.connect(self.refresh)
        canvas.changed.connect(self._ink_changed)
        canvas.inking.connect(self._ink_changed)

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if enabled:
            self.refresh()
        else:
            self._timer.stop()
            self.runner.cancel()
            self.canvas.set_heatmap(None)

    def _ink_changed(self) -> None:
        if self.enabled and not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        """Ask for a new map of the ink as it is now (replacing any request still waiting)."""
        if not self.enabled:
            return
        strokes = self.canvas.ink()
        if not strokes:
            self.canvas.set_heatmap(None)
            return
        backend, device = settings.runtime()
        size = (self.canvas.width(), self.canvas.height())
        self.runner.submit(
            heatmap_job,
            self._cache,
            self.model_path,
            backend,
            device,
            strokes,
            size,
            on_return=self._show,
            on_error=self.message.emit,
        )

    def _show(self, heatmap: HeatMap) -> None:
        if self.enabled:
            self.canvas.set_heatmap(heatmap)
            self.updated.emit(heatmap)

    def shutdown(self) -> None:
        self._timer.stop()
        self.runner.shutdown()
