"""Settings that outlive the window (QSettings, organisation "Penwright") and the dialog that edits them.

Stored: which backend and device run the model, the last neatness, seed and style, the window's geometry.
QSettings' default format is used, so tests (and the screenshot tool) can point it at a temporary ini file.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

ORGANISATION = "Penwright"
APPLICATION = "Penwright"
BACKENDS = {"auto": "Automatic (ONNX when exported, else PyTorch)", "onnx": "ONNX Runtime", "torch": "PyTorch"}
DEVICES = {"auto": "Automatic", "cpu": "CPU", "cuda": "GPU (CUDA)"}


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


def write(key: str, value: Any) -> None:
    settings().setValue(key, value)


def runtime() -> tuple[str, str]:
    """The chosen (backend, device), falling back to automatic for values this version does not know."""
    backend, device = read("model/backend", "auto"), read("model/device", "auto")
    return (backend if backend in BACKENDS else "auto", device if device in DEVICES else "auto")


class SettingsDialog(QDialog):
    """Backend and device; applying them reloads the model (the caller does that when they change)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        backend, device = runtime()
        self.backend_box = _combo(BACKENDS, backend)
        self.backend_box.setToolTip("ONNX Runtime needs the model exported beside its file (a .onnx); no torch needed.")
        self.device_box = _combo(DEVICES, device)
        self.device_box.setToolTip("A GPU needs a CUDA build of the backend; Automatic uses one when available.")
        note = QLabel("The handwriting model is reloaded when these change.")
        note.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        form = QFormLayout()
        form.addRow("Backend", self.backend_box)
        form.addRow("Device", self.device_box)
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
        super().accept()


def _combo(choices: dict[str, str], current: str) -> QComboBox:
    box = QComboBox()
    for key, label in choices.items():
        box.addItem(label, key)
    box.setCurrentIndex(max(box.findData(current), 0))
    return box
