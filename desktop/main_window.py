"""The main window: one tab per task (Handwriting, My handwriting, Segmentation) and the shared menus."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QTabWidget, QWidget

from desktop import settings
from desktop.about import AboutDialog
from desktop.handwriting_tab import HandwritingTab
from desktop.insight import AttentionPlot, DensityPlot
from desktop.page_document import SUFFIX
from desktop.segmentation.tab import SegmentationTab
from desktop.style_library import StyleLibrary
from desktop.style_panel import StylePanel

PAGE_FILTER = f"Penwright pages (*{SUFFIX} *.json);;All files (*)"


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
        self.handwriting.style_checked.connect(self.my_handwriting.style_checked)
        self.segmentation = SegmentationTab()
        self.tabs.addTab(self.segmentation, "Segmentation")
        self.setCentralWidget(self.tabs)
        self.attention = AttentionPlot()
        self.density = DensityPlot()
        self.attention_dock = self._insight_dock("Attention window", self.attention, "attention")
        self.density_dock = self._insight_dock("Mixture density", self.density, "density")
        self._build_menus()
        self.restore_layout()

    def _insight_dock(self, title: str, plot: AttentionPlot | DensityPlot, name: str) -> QDockWidget:
        """A plot of the model's workings beside the page, hidden until the View menu opens it."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{name}-dock")
        dock.setWidget(plot)
        dock.setAllowedAreas(Qt.DockWidgetArea.RightDockWidgetArea | Qt.DockWidgetArea.BottomDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock.hide()
        self.handwriting.job_started.connect(plot.begin)
        self.handwriting.job_progress.connect(plot.add_progress)
        self.handwriting.job_finished.connect(plot.set_result)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        load = QAction("&Load handwriting model…", self)
        load.triggered.connect(self.choose_model)
        open_page = QAction("&Open page…", self)
        open_page.setShortcut(QKeySequence.StandardKey.Open)
        open_page.triggered.connect(self.choose_page_to_open)
        save_page = QAction("&Save page…", self)
        save_page.setShortcut(QKeySequence.StandardKey.Save)
        save_page.triggered.connect(self.choose_page_to_save)
        self.export_action = QAction("&Export…", self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setEnabled(False)
        self.export_action.triggered.connect(self.handwriting.export)
        self.handwriting.export_available.connect(self.export_action.setEnabled)
        settings_action = QAction("&Settings…", self)
        settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        settings_action.triggered.connect(self.show_settings)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(open_page)
        file_menu.addAction(save_page)
        page_setup = QAction("Page set&up…", self)
        page_setup.triggered.connect(self.handwriting.edit_page_setup)
        file_menu.addAction(page_setup)
        file_menu.addSeparator()
        file_menu.addAction(load)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(settings_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        for dock in (self.attention_dock, self.density_dock):
            view_menu.addAction(dock.toggleViewAction())

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

    def choose_page_to_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open page", "", PAGE_FILTER)
        if path:
            self.tabs.setCurrentWidget(self.handwriting)
            self.handwriting.open_page(path)

    def choose_page_to_save(self) -> None:
        """Save the text, style, seed and neatness (not the strokes: they are written again on opening)."""
        path, _ = QFileDialog.getSaveFileName(self, "Save page", str(Path.home() / f"page{SUFFIX}"), PAGE_FILTER)
        if path:
            if not path.endswith(".json"):
                path += SUFFIX
            self.handwriting.save_page(path)

    def show_settings(self) -> settings.SettingsDialog:
        """Backend and device; the model is reloaded when the dialog is accepted with a change."""
        dialog = settings.SettingsDialog(self)
        dialog.accepted.connect(lambda: self.handwriting.set_runtime(*dialog.chosen))
        dialog.open()
        return dialog

    def restore_layout(self) -> None:
        """Where the window was, its size and which insight docks were open."""
        geometry, state = settings.settings().value("window/geometry"), settings.settings().value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self)
        dialog.open()
        return dialog

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        settings.write("window/geometry", self.saveGeometry())
        settings.write("window/state", self.saveState())
        self.handwriting.shutdown()
        self.segmentation.shutdown()
        self.my_handwriting.shutdown()
        super().closeEvent(event)
