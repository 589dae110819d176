"""The main window: one tab per task (Handwriting, My handwriting; Segmentation later) and the shared menus."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QTabWidget, QWidget

from desktop.about import AboutDialog
from desktop.handwriting_tab import HandwritingTab
from desktop.style_library import StyleLibrary
from desktop.style_panel import StylePanel


class MainWindow(QMainWindow):
    def __init__(self, model_path: str | Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Penwright")
        self.resize(1120, 680)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.styles = StyleLibrary(self)
        self.handwriting = HandwritingTab(model_path, self.styles)
        self.tabs.addTab(self.handwriting, "Handwriting")
        self.my_handwriting = StylePanel(self.styles, lambda: self.handwriting.writer)
        self.tabs.addTab(self.my_handwriting, "My handwriting")
        self.setCentralWidget(self.tabs)
        self._build_menus()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        load = QAction("&Load handwriting model…", self)
        load.triggered.connect(self.choose_model)
        self.export_action = QAction("&Export…", self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setEnabled(False)
        self.export_action.triggered.connect(self.handwriting.export)
        self.handwriting.export_available.connect(self.export_action.setEnabled)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(load)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Penwright", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def choose_model(self) -> None:
        """Use another synthesis model file (e.g. one just trained) without restarting."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Load handwriting model", "", "Penwright handwriting models (*.npz);;All files (*)"
        )
        if path:
            self.handwriting.load_model(path)

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self)
        dialog.open()
        return dialog

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.handwriting.shutdown()
        self.my_handwriting.canvas.flush()
        super().closeEvent(event)
