"""The compare bar: after the CRF, the unaries alone, or both split by a divider; and the iteration slider
that steps through the mean-field RNN's unrolled iterations (0 = the network's softmax, T = final)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QRadioButton, QSlider, QWidget

VIEWS = {"crf": "After CRF", "unaries": "Unaries only", "split": "Split"}


class CompareBar(QWidget):
    view_changed = Signal(str)
    iteration_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        tips = {
            "crf": "The labels after the CRF's mean-field iterations (C)",
            "unaries": "The network's own labels, before any CRF (U)",
            "split": "Unaries left of the divider, after the CRF right of it; drag the divider (S)",
        }
        for key, label in VIEWS.items():
            button = QRadioButton(label)
            button.setToolTip(tips[key])
            self.group.addButton(button)
            self.buttons[key] = button
            layout.addWidget(button)
            button.toggled.connect(lambda on, key=key: on and self.view_changed.emit(key))
        self.buttons["crf"].setChecked(True)
        layout.addSpacing(16)
        layout.addWidget(QLabel("Mean-field step"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setToolTip("0: softmax of the network's scores; each step one mean-field iteration")
        self.slider.setMinimumWidth(140)
        self.slider.valueChanged.connect(self._slid)
        layout.addWidget(self.slider, 1)
        self.step_label = QLabel("–")
        self.step_label.setMinimumWidth(48)
        layout.addWidget(self.step_label)

    @property
    def view(self) -> str:
        return next((key for key, button in self.buttons.items() if button.isChecked()), "crf")

    def set_view(self, view: str) -> None:
        self.buttons[view].setChecked(True)

    def set_iterations(self, last: int, current: int) -> None:
        """Range 0..last (T) without emitting; the label follows."""
        self.slider.blockSignals(True)
        self.slider.setRange(0, last)
        self.slider.setValue(current)
        self.slider.blockSignals(False)
        self._label(current)

    def _slid(self, value: int) -> None:
        self._label(value)
        self.iteration_changed.emit(value)

    def _label(self, value: int) -> None:
        self.step_label.setText(f"{value} / {self.slider.maximum()}")
