"""The model picker: installed segmentation models, plus installing one from a file or downloading one.

Installing goes through `engine.segmentation.install` (published checkpoints, identified by SHA-256) or
`engine.segmentation.custom` (a user's ONNX model with its sidecar), on a background worker of its own so
a download never cancels a segmentation. Errors arrive as the engine words them (what is wrong, what to do).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QProgressBar,
    QPushButton,
    QWidget,
)

from desktop.workers import JobRunner

MODEL_FILTER = "Segmentation models (*.pth *.onnx);;All files (*)"


def list_models() -> list[tuple[str, str, str]]:
    """(name, label, problem) for each installed model: published checkpoints first, then the user's own."""
    from engine.segmentation.custom import installed_custom
    from engine.segmentation.install import installed_models

    found = []
    for model in installed_models():
        meta = model.meta
        miou = f", VOC mIoU {meta.voc_val_miou:.1f}" if meta.voc_val_miou else ""
        problem = "" if model.ok else "damaged: reinstall it"
        found.append((meta.name, f"{meta.name} ({meta.parameters / 1e6:.2f} M params{miou})", problem))
    for name, _, sidecar, problem in installed_custom():
        classes = f", {len(sidecar.classes)} classes" if sidecar is not None else ""
        found.append((name, f"{name} (your ONNX model{classes})", problem))
    return found


def downloadable() -> list[tuple[str, str]]:
    """(name, label) of the published checkpoints not installed yet."""
    from engine.segmentation.install import installed_models
    from engine.segmentation.manifest import SegmentationWeights

    have = {m.meta.name for m in installed_models(verify=False)}
    seen, out = set(), []
    for weights in SegmentationWeights:
        meta = weights.meta
        if meta.name not in have and meta.name not in seen:
            seen.add(meta.name)
            out.append((meta.name, f"{meta.name} ({meta.parameters / 1e6:.2f} M params, from {meta.source})"))
    return out


def install_file(path: str) -> str:
    """Install a .pth checkpoint or an .onnx model; returns the installed model's name."""
    if Path(path).suffix.lower() == ".onnx":
        from engine.segmentation.custom import install_custom

        return Path(install_custom(path)).stem
    from engine.segmentation.install import identify, install_from_file

    install_from_file(path)
    return identify(path).meta.name


def download_model(name: str, progress: Callable[[int, int | None], None]) -> str:
    from engine.segmentation.install import download
    from engine.segmentation.manifest import SegmentationWeights

    download(SegmentationWeights.by_name(name), progress=progress)
    return name


class _Relay(QObject):
    progress = Signal(int, int)  # bytes so far, total (-1: unknown)


class ModelPicker(QWidget):
    """A combo of installed models and the buttons that add one; `message` reports outcomes and errors."""

    model_changed = Signal(str)
    message = Signal(str, bool)  # text, is_error
    installed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setMinimumWidth(220)
        self.combo.setToolTip("The network that scores every pixel (the CRF's unaries)")
        self.combo.currentIndexChanged.connect(self._changed)
        self.install_button = QPushButton("Install…")
        self.install_button.setToolTip("Install a model file: a published ESPNetv2 .pth or your own .onnx (+ .json)")
        self.install_button.clicked.connect(self.choose_file)
        self.download_button = QPushButton("Download…")
        self.download_button.setToolTip("Download a published model into your data folder")
        self.download_button.clicked.connect(self.choose_download)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(120)
        self.progress.setTextVisible(True)
        self.progress.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.install_button)
        layout.addWidget(self.download_button)
        layout.addWidget(self.progress)
        self.jobs = JobRunner(self)
        self._relay = _Relay(self)
        self._relay.progress.connect(self._show_progress)
        self._filling = False
        self._listed = False  # listed on first use: hashing checkpoints is not for the window's start-up
        self.preferred: str | None = None  # the model to select when first listed (from the settings)

    # --- listing -------------------------------------------------------------------------------------------
    def ensure_listed(self) -> None:
        if not self._listed:
            self.refresh(select=self.preferred)

    def refresh(self, select: str | None = None) -> None:
        current = select or (self.combo.currentData() if self._listed else self.preferred)
        self._listed = True
        self._filling = True
        self.combo.clear()
        try:
            models = list_models()
        except Exception as exc:  # an unreadable data folder must not stop the tab from opening
            models = []
            self.message.emit(f"Could not list the installed models: {exc}", True)
        for name, label, problem in models:
            self.combo.addItem(label + (f" — {problem}" if problem else ""), name)
        if not models:
            self.combo.addItem("No model installed: Install… or Download…", None)
        index = self.combo.findData(current) if current else -1
        self.combo.setCurrentIndex(max(index, 0))
        self._filling = False

    @property
    def current(self) -> str | None:
        self.ensure_listed()
        return self.combo.currentData()

    @property
    def has_model(self) -> bool:
        return self.current is not None

    def _changed(self) -> None:
        if not self._filling and self.current:
            self.model_changed.emit(self.current)

    # --- installing ----------------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Install a segmentation model", "", MODEL_FILTER)
        if path:
            self.install(path)

    def install(self, path: str) -> None:
        self._begin(f"Installing {Path(path).name}…")
        self.jobs.submit(install_file, path, on_return=self._done, on_error=self._failed)

    def choose_download(self) -> None:
        options = downloadable()
        if not options:
            self.message.emit("Every published model is installed already.", False)
            return
        labels = [label for _, label in options]
        label, ok = QInputDialog.getItem(self, "Download a model", "Model", labels, 0, False)
        if ok:
            self.download(options[labels.index(label)][0])

    def download(self, name: str) -> None:
        self._begin(f"Downloading {name}…")
        self.jobs.submit(
            download_model,
            name,
            lambda done, total: self._relay.progress.emit(done, -1 if total is None else total),
            on_return=self._done,
            on_error=self._failed,
        )

    def _begin(self, text: str) -> None:
        self.install_button.setEnabled(False)
        self.download_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the first progress report
        self.progress.show()
        self.message.emit(text, False)

    def _show_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{done / 1e6:.1f} / {total / 1e6:.1f} MB")
        else:
            self.progress.setRange(0, 0)

    def _end(self) -> None:
        self.install_button.setEnabled(True)
        self.download_button.setEnabled(True)
        self.progress.hide()

    def _done(self, name: Any) -> None:
        self._end()
        self.refresh(select=str(name))
        self.message.emit(f"Installed {name}.", False)
        self.installed.emit(str(name))
        self.model_changed.emit(str(name))

    def _failed(self, reason: str) -> None:
        self._end()
        self.message.emit(f"Could not install the model: {reason}", True)

    def shutdown(self) -> None:
        self.jobs.shutdown()
