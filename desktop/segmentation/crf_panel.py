"""The CRF panel: which parameters (crfasrnn's defaults, the project's learned ones, or no CRF), the number of
mean-field iterations, the kernel widths and weights.

Edits are debounced (`settled` fires once the user pauses) so dragging a spin box re-runs the CRF once, not
twenty times; the tab then re-runs only the CRF on the cached unaries. Learned parameters are per-class
matrices: the weight boxes show their mean diagonal and scale the whole matrix, so "3.0" means the same
thing in both modes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

MODES = {"default": "Default (crfasrnn)", "learned": "Learned (fitted here)", "none": "None (network only)"}
# 150 ms: still one run for a burst of arrow clicks or wheel steps, and half the wait of 300 ms before a
# re-run starts (a 500 x 375 re-run takes ~0.5 s of CPU, so the debounce was a third of the wait)
DEBOUNCE_MS = 150


def diagonal_mean(matrix: np.ndarray) -> float:
    return float(np.mean(np.diag(np.asarray(matrix, np.float64))))


def scaled_params(base: Any, thetas: tuple[float, float, float], spatial: float, bilateral: float) -> Any:
    """`base` (a CrfParams) with new thetas and its weight matrices scaled so their mean diagonal is the given
    weight (a zero matrix becomes weight x identity)."""

    def scale(matrix: np.ndarray, weight: float) -> np.ndarray:
        matrix = np.asarray(matrix, np.float64)
        mean = diagonal_mean(matrix)
        return matrix * (weight / mean) if abs(mean) > 1e-12 else weight * np.eye(len(matrix))

    return type(base)(
        scale(base.spatial_weights, spatial),
        scale(base.bilateral_weights, bilateral),
        np.asarray(base.compatibility, np.float64),
        *thetas,
    )


def _double(low: float, high: float, value: float, step: float, suffix: str, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(1)
    box.setSingleStep(step)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)
    return box


class CrfPanel(QWidget):
    """Mode, iterations, thetas and weights; `settled` after edits pause, `mode_failed` with a reason."""

    settled = Signal()
    mode_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode_box = QComboBox()
        for key, label in MODES.items():
            self.mode_box.addItem(label, key)
        self.mode_box.setToolTip("Which CRF parameters to use; None shows the network's own labels")
        self.iterations = QSpinBox()
        self.iterations.setRange(0, 50)
        self.iterations.setValue(10)
        self.iterations.setToolTip("Mean-field iterations T (the paper: 5 for training, 10 for inference)")
        self.iterations.setKeyboardTracking(False)
        self.theta_alpha = _double(1, 1000, 160, 10, " px", "θα: how far apart pixels of similar colour still interact")
        self.theta_beta = _double(0.5, 255, 3, 0.5, "", "θβ: how similar colours must be (RGB 0–255) to interact")
        self.theta_gamma = _double(0.5, 100, 3, 0.5, " px", "θγ: the smoothness kernel's width")
        self.spatial_weight = _double(0, 50, 3, 0.5, "", "w(2): weight of the smoothness (spatial) kernel")
        self.bilateral_weight = _double(0, 50, 5, 0.5, "", "w(1): weight of the appearance (bilateral) kernel")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the chosen mode's own values")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        form = QFormLayout(self)
        form.addRow("Parameters", self.mode_box)
        form.addRow("Iterations", self.iterations)
        form.addRow("Bilateral θα", self.theta_alpha)
        form.addRow("Bilateral θβ", self.theta_beta)
        form.addRow("Spatial θγ", self.theta_gamma)
        form.addRow("Bilateral weight", self.bilateral_weight)
        form.addRow("Spatial weight", self.spatial_weight)
        form.addRow(self.reset_button, self.note)
        self.num_classes = 21
        self._bases: dict[tuple[str, int], Any] = {}
        self._mode = "default"
        self._shown = (160.0, 3.0, 3.0, 3.0, 5.0)  # the mode's own values as the boxes show them
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.settled)
        self.mode_box.currentIndexChanged.connect(self._mode_changed)
        self.reset_button.clicked.connect(self.reset)
        for box in self._value_boxes():
            box.valueChanged.connect(self._edited)
        self._update_enabled()

    def _value_boxes(self) -> list[QSpinBox | QDoubleSpinBox]:
        boxes = [self.iterations, self.theta_alpha, self.theta_beta, self.theta_gamma]
        return [*boxes, self.spatial_weight, self.bilateral_weight]

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def pending(self) -> bool:
        """An edit is waiting for the debounce to run out."""
        return self._timer.isActive()

    def _edited(self) -> None:
        self._timer.start()

    def _update_enabled(self) -> None:
        on = self._mode != "none"
        for box in self._value_boxes():
            box.setEnabled(on)

    def base(self, mode: str | None = None) -> Any:
        """The mode's own CrfParams for `num_classes` (learned ones are read once; errors propagate)."""
        from engine.segmentation.job import CrfParams, learned_params

        mode = mode or self._mode
        key = (mode, self.num_classes)
        if key not in self._bases:
            learned = mode == "learned"
            self._bases[key] = learned_params(self.num_classes) if learned else CrfParams.default(self.num_classes)
        return self._bases[key]

    def _mode_changed(self) -> None:
        mode = self.mode_box.currentData()
        if mode == "learned":
            try:
                self.base("learned")
            except Exception as exc:  # a missing or damaged parameter file: say so, stay where we were
                self.mode_box.blockSignals(True)
                self.mode_box.setCurrentIndex(self.mode_box.findData(self._mode))
                self.mode_box.blockSignals(False)
                self.mode_failed.emit(f"Learned CRF parameters are not available: {exc}")
                return
        self._mode = mode
        self._update_enabled()
        if mode != "none":
            self._show_values(self.base())
        self.note.setText("per-class weights: the boxes scale them" if mode == "learned" else "")
        self._timer.start()

    def _show_values(self, params: Any) -> None:
        values = (
            (self.theta_alpha, params.theta_alpha),
            (self.theta_beta, params.theta_beta),
            (self.theta_gamma, params.theta_gamma),
            (self.spatial_weight, diagonal_mean(params.spatial_weights)),
            (self.bilateral_weight, diagonal_mean(params.bilateral_weights)),
        )
        self._shown = tuple(round(float(value), 1) for _, value in values)
        for box, value in values:
            box.blockSignals(True)
            box.setValue(float(value))
            box.blockSignals(False)

    def reset(self) -> None:
        """The mode's own values and 10 iterations."""
        self.iterations.blockSignals(True)
        self.iterations.setValue(10)
        self.iterations.blockSignals(False)
        if self._mode != "none":
            self._show_values(self.base())
        self._timer.start()

    def set_mode(self, mode: str) -> None:
        self.mode_box.setCurrentIndex(self.mode_box.findData(mode))

    def params(self) -> Any:
        """CrfParams for the boxes' values (None in mode "none")."""
        if self._mode == "none":
            return None
        thetas = (self.theta_alpha.value(), self.theta_beta.value(), self.theta_gamma.value())
        return scaled_params(self.base(), thetas, self.spatial_weight.value(), self.bilateral_weight.value())

    @property
    def customised(self) -> bool:
        """The user changed a theta or weight away from the mode's own values."""
        boxes = (self.theta_alpha, self.theta_beta, self.theta_gamma, self.spatial_weight, self.bilateral_weight)
        return tuple(round(box.value(), 1) for box in boxes) != self._shown

    def flush(self) -> None:
        """Fire a pending debounce now (tests, and the Segment button)."""
        if self._timer.isActive():
            self._timer.stop()
            self.settled.emit()

    def flush_silently(self) -> None:
        """Drop a pending debounce: a full run is about to use the boxes' values anyway."""
        self._timer.stop()
