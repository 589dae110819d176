"""Settings that outlive the window (QSettings, organisation "Penwright") and the dialog that edits them.

Stored: which backend and device run the model, the last neatness, seed and style, the page setup, which text
model Dream uses and at what temperature, the window's geometry.
QSettings' default format is used, so tests (and the screenshot tool) can point it at a temporary ini file.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from engine.text.dream import text_model_path

ORGANISATION = "Penwright"
APPLICATION = "Penwright"
BACKENDS = {"auto": "Automatic (ONNX when exported, else PyTorch)", "onnx": "ONNX Runtime", "torch": "PyTorch"}
DEVICES = {"auto": "Automatic", "cpu": "CPU", "cuda": "GPU (CUDA)"}
TEXT_MODEL_LABELS = {"shakespeare": "Shakespeare", "iam": "IAM-OnDB sentences"}
DEFAULT_TEMPERATURE = 0.8  # a little safer than the text model as trained: fewer invented words


def settings() -> QSettings:
    """The app's settings store, in QSettings' default format (the native one unless a test or tool changed it)."""
    return QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def read(key: str, default: Any, kind: type = str) -> Any:
    """A stored value of ``kind``, or ``default`` when missing or unreadable (a hand-edited ini file)."""
    value = settings().value(key, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        return default


def read_flag(key: str, default: bool) -> bool:
    """A stored yes/no: an ini file keeps it as the text "true" or "false", which Qt converts when asked."""
    return bool(settings().value(key, default, type=bool))


def write(key: str, value: Any) -> None:
    settings().setValue(key, value)


def write_many(values: dict[str, Any]) -> None:
    """Several values with one store, so the file is written once (each store syncs as it goes: ~10 ms)."""
    store = settings()
    for key, value in values.items():
        store.setValue(key, value)


def runtime() -> tuple[str, str]:
    """The chosen (backend, device), falling back to automatic for values this version does not know."""
    backend, device = read("model/backend", "auto"), read("model/device", "auto")
    return (backend if backend in BACKENDS else "auto", device if device in DEVICES else "auto")


def text_model() -> str:
    """Which text model Dream uses: "shakespeare" or "iam"."""
    name = read("dream/model", "shakespeare")
    return name if name in TEXT_MODEL_LABELS else "shakespeare"


def temperature() -> float:
    """Dream's sampling temperature, kept within 0.1 to 2."""
    return min(max(read("dream/temperature", DEFAULT_TEMPERATURE, float), 0.1), 2.0)


class SettingsDialog(QDialog):
    """Backend and device (applying them reloads the model: the caller does that when they change), and the
    text model and temperature of Dream."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        backend, device = runtime()
        self.backend_box = _combo(BACKENDS, backend)
        self.backend_box.setToolTip("ONNX Runtime needs the model exported beside its file (a .onnx); no torch needed.")
        self.device_box = _combo(DEVICES, device)
        self.device_box.setToolTip("A GPU needs a CUDA build of the backend; Automatic uses one when available.")
        note = QLabel("The handwriting model is reloaded when the backend or device change.")
        note.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        labels = {
            key: label + ("" if text_model_path(key).exists() else " (not installed)")
            for key, label in TEXT_MODEL_LABELS.items()
        }
        self.text_model_box = _combo(labels, text_model())
        self.text_model_box.setToolTip(
            "What Dream's text model learned from: Shakespeare's plays, or the sentences of IAM-OnDB "
            "(plain English the handwriting model writes well)."
        )
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.1, 2.0)
        self.temperature_spin.setSingleStep(0.05)
        self.temperature_spin.setValue(temperature())
        self.temperature_spin.setToolTip("Below 1: safer, more common words; above 1: wilder, more invented ones.")
        form = QFormLayout()
        form.addRow("Backend", self.backend_box)
        form.addRow("Device", self.device_box)
        form.addRow("Dream text model", self.text_model_box)
        form.addRow("Dream temperature", self.temperature_spin)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    @property
    def chosen(self) -> tuple[str, str]:
        return self.backend_box.currentData(), self.device_box.currentData()

    def accept(self) -> None:
        backend, device = self.chosen
        write("model/backend", backend)
        write("model/device", device)
        write("dream/model", self.text_model_box.currentData())
        write("dream/temperature", round(self.temperature_spin.value(), 2))
        super().accept()


def _combo(choices: dict[str, str], current: str) -> QComboBox:
    box = QComboBox()
    for key, label in choices.items():
        box.addItem(label, key)
    box.setCurrentIndex(max(box.findData(current), 0))
    return box
