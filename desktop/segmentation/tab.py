"""The Segmentation tab: a photo, the network's labels and the CRF's, compared, tuned and exported.

Layout: a toolbar (photo, model, Segment/Cancel), the canvas on the left, the controls on the right (overlay,
compare, CRF, legend, export), a status bar (messages, the class under the cursor, progress). All engine work
runs on the background worker (`SegmentationRunner`); the view model decides what is drawn.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from desktop import settings
from desktop.segmentation import exports
from desktop.segmentation.canvas import SegmentationCanvas
from desktop.segmentation.compare import CompareBar
from desktop.segmentation.crf_panel import CrfPanel
from desktop.segmentation.legend import Legend
from desktop.segmentation.model_picker import ModelPicker
from desktop.segmentation.photos import (
    IMAGE_FILTER,
    SAMPLE_CREDIT,
    SAMPLE_PHOTO,
    LoadedPhoto,
    from_qimage,
    is_image_path,
    load_file,
)
from desktop.segmentation.runner import JobFactory, SegmentationRunner, engine_job_factory
from desktop.segmentation.view_model import SegmentationViewModel, format_colours, parse_colours
from desktop.workers import JobRunner

PNG_FILTER = "PNG image (*.png)"
# Share of the progress bar per engine stage: (start, width) for a full run and for a CRF re-run.
STAGES = {"loading model": (0.0, 0.1), "unaries": (0.1, 0.3), "crf": (0.4, 0.55), "labels": (0.95, 0.05)}
RERUN_STAGES = {"crf": (0.0, 0.9), "labels": (0.9, 0.1)}
STATUS_STYLES = {"info": "", "error": "color: #8f1515; background: #fde6e6; border-radius: 4px; padding: 1px 4px;"}


def segmentation_backend() -> str:
    """File → Settings' backend, with Automatic meaning ONNX Runtime here: the app already runs the handwriting
    model on it, while importing torch on the worker holds the GIL long enough to freeze the window for
    ~0.7 s (measured), and ONNX was the faster of the two on this app's 2-core test machine."""
    backend = settings.runtime()[0]
    return "onnx" if backend == "auto" else backend


class SegmentationTab(QWidget):
    def __init__(self, job_factory: JobFactory = engine_job_factory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SegmentationViewModel()
        self.runner = SegmentationRunner(job_factory, self)
        self.export_jobs = JobRunner(self)  # its own queue: an export never cancels a segmentation
        # The engine needs an installed model; a test's job factory brings its own unary source.
        self.model_required = job_factory is engine_job_factory
        self.photo: LoadedPhoto | None = None
        self.request_options: dict[str, Any] = {}  # extra SegmentationRequest fields (tests: a small max_pixels)
        self.last_seconds = 0.0
        self._started = 0.0
        self._rerun = False
        self._shown_once = False
        self._export_dir = str(Path.home())
        self.setAcceptDrops(True)
        self._build()
        self._restore_settings()
        self._connect()
        self._update_enabled()

    # --- building ---------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.open_button = QPushButton("Open photo…")
        self.open_button.setToolTip("Open a photo (or drop one here, or paste with Ctrl+V)")
        self.sample_button = QPushButton("Sample")
        self.sample_button.setToolTip(f"The photo that ships with Penwright: {SAMPLE_CREDIT}")
        self.picker = ModelPicker()
        self.segment_button = QPushButton("Segment")
        self.segment_button.setToolTip("Run the network and the CRF on the photo (Ctrl+R)")
        self.segment_button.setDefault(True)
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.open_button)
        toolbar.addWidget(self.sample_button)
        toolbar.addSpacing(12)
        toolbar.addWidget(QLabel("Model"))
        toolbar.addWidget(self.picker, 1)
        toolbar.addSpacing(12)
        toolbar.addWidget(self.segment_button)

        self.canvas = SegmentationCanvas()
        self.compare = CompareBar()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.canvas, 1)
        left_layout.addWidget(self.compare)

        self.show_overlay = QCheckBox("Overlay (H)")
        self.show_overlay.setChecked(True)
        self.contours = QCheckBox("Outlines only (O)")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Overlay opacity")
        overlay_box = QGroupBox("Overlay")
        overlay_layout = QVBoxLayout(overlay_box)
        row = QHBoxLayout()
        row.addWidget(self.show_overlay)
        row.addWidget(self.contours)
        overlay_layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        overlay_layout.addLayout(row)

        self.crf_panel = CrfPanel()
        crf_box = QGroupBox("CRF (mean-field)")
        QVBoxLayout(crf_box).addWidget(self.crf_panel)
        self.legend = Legend()
        legend_box = QGroupBox("Classes")
        QVBoxLayout(legend_box).addWidget(self.legend)
        self.export_ids = QPushButton("Class ids…")
        self.export_ids.setToolTip("PNG with one class id per pixel (VOC palette), at the photo's size")
        self.export_overlay = QPushButton("Overlay…")
        self.export_overlay.setToolTip("The photo with the overlay as shown")
        self.export_pair = QPushButton("Side by side…")
        self.export_pair.setToolTip("Photo | unaries only | after the CRF, in one PNG")
        export_box = QGroupBox("Export PNG")
        export_layout = QHBoxLayout(export_box)
        for button in (self.export_ids, self.export_overlay, self.export_pair):
            export_layout.addWidget(button)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(4, 0, 4, 0)
        side_layout.addWidget(overlay_box)
        side_layout.addWidget(crf_box)
        side_layout.addWidget(legend_box, 1)
        side_layout.addWidget(export_box)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([760, 320])

        self.status_label = QLabel()
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_label = QLabel()
        self.hover_label.setMinimumWidth(260)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the segmentation (Esc)")
        self.cancel_button.hide()
        self.status_bar = QStatusBar()
        self.status_bar.setSizeGripEnabled(False)
        self.status_bar.addWidget(self.status_label, 1)
        self.status_bar.addPermanentWidget(self.hover_label)
        self.status_bar.addPermanentWidget(self.progress)
        self.status_bar.addPermanentWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status_bar)

        def key(sequence: str | QKeySequence, slot) -> QShortcut:
            shortcut = QShortcut(QKeySequence(sequence), self, slot)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            return shortcut

        key("H", self.show_overlay.toggle)
        key("O", self.contours.toggle)
        key("F", self.canvas.fit)
        key("+", lambda: self.canvas.zoom_by(1.25))
        key("=", lambda: self.canvas.zoom_by(1.25))
        key("-", lambda: self.canvas.zoom_by(0.8))
        key("1", self.canvas.actual_size)
        key("C", lambda: self.compare.set_view("crf"))
        key("U", lambda: self.compare.set_view("unaries"))
        key("S", lambda: self.compare.set_view("split"))
        key(QKeySequence.StandardKey.Paste, self.paste)
        key("Ctrl+R", self.segment)
        key("Esc", self.cancel)

    def _connect(self) -> None:
        self.open_button.clicked.connect(self.choose_photo)
        self.sample_button.clicked.connect(self.open_sample)
        self.segment_button.clicked.connect(self.segment)
        self.cancel_button.clicked.connect(self.cancel)
        self.picker.model_changed.connect(self._model_changed)
        self.picker.message.connect(lambda text, error: self.set_status(text, "error" if error else "info"))
        self.runner.progress.connect(self._progress)
        self.runner.busy_changed.connect(self._busy_changed)
        self.show_overlay.toggled.connect(self._overlay_toggled)
        self.contours.toggled.connect(self._contours_toggled)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.compare.view_changed.connect(self._view_changed)
        self.compare.iteration_changed.connect(self._iteration_changed)
        self.canvas.hovered.connect(self._hovered)
        self.canvas.split_changed.connect(self._split_moved)
        self.crf_panel.settled.connect(self.rerun_crf)
        self.crf_panel.mode_failed.connect(lambda text: self.set_status(text, "error"))
        self.legend.visibility_changed.connect(self._visibility_changed)
        self.legend.colour_clicked.connect(self.choose_colour)
        self.legend.reset_colours.connect(self.reset_colours)
        self.export_ids.clicked.connect(lambda: self.choose_export("ids"))
        self.export_overlay.clicked.connect(lambda: self.choose_export("overlay"))
        self.export_pair.clicked.connect(lambda: self.choose_export("pair"))

    def _restore_settings(self) -> None:
        self.opacity.setValue(max(0, min(100, settings.read("segmentation/opacity", 60, int))))
        self.model.opacity = self.opacity.value() / 100
        self.canvas.set_overlay_opacity(self.model.opacity)
        self.contours.setChecked(settings.read("segmentation/contours", "false") == "true")
        self.model.contours = self.contours.isChecked()
        self.model.set_user_colours(parse_colours(settings.read("segmentation/colours", ""), 256))
        self.picker.preferred = settings.read("segmentation/model", "") or None

    # --- status -----------------------------------------------------------------------------------------------
    @property
    def status_text(self) -> str:
        return self.status_label.text()

    def set_status(self, text: str, kind: str = "info") -> None:
        self.status_label.setText(text)
        self.status_label.setProperty("kind", kind)
        self.status_label.setStyleSheet(STATUS_STYLES[kind])

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def _busy_changed(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)
        self._update_enabled()

    def _update_enabled(self) -> None:
        has_result = self.model.has_result
        self.segment_button.setEnabled(self.photo is not None)
        for widget in (self.export_ids, self.export_overlay, self.export_pair, self.compare, self.legend):
            widget.setEnabled(has_result)

    def _progress(self, stage: str, fraction: float) -> None:
        start, width = (RERUN_STAGES if self._rerun else STAGES).get(stage, (0.0, 1.0))
        self.progress.setValue(int(1000 * (start + width * max(0.0, min(1.0, fraction)))))
        self.progress.setFormat(stage)

    # --- photos -----------------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        """First use: the shipped sample photo, so there is something to segment straight away."""
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.picker.ensure_listed()
            if self.photo is None and not self.runner.busy and SAMPLE_PHOTO.is_file():
                self.open_sample(segment=False)

    def choose_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a photo", "", IMAGE_FILTER)
        if path:
            self.open_photo(path)

    def open_sample(self, segment: bool = True) -> None:
        self.open_photo(SAMPLE_PHOTO, segment=segment, note=f"Sample: {SAMPLE_CREDIT}.")

    def open_photo(self, path: str | Path, segment: bool = True, note: str = "") -> None:
        """Decode the photo on the worker, show it, then segment it (when a model is installed)."""
        self.set_status(f"Opening {Path(path).name}…")
        self.runner.submit(
            load_file,
            str(path),
            on_done=lambda photo: self.set_photo(photo, segment, note),
            on_error=lambda reason: self.set_status(f"Could not open {Path(path).name}: {reason}", "error"),
        )

    def set_photo(self, photo: LoadedPhoto, segment: bool = True, note: str = "") -> None:
        """Show a decoded photo; a job still running for the previous one is cancelled (its result would not fit)."""
        self.runner.cancel()
        self.photo = photo
        self.model.clear()
        self.canvas.set_photo(photo.qimage, photo.preview)
        self.canvas.set_split(self.model.view == "split", self.model.split)
        self.legend.set_entries([])
        self.compare.set_iterations(0, 0)
        width, height = photo.image.size
        self._update_enabled()
        ready = self.picker.has_model or not self.model_required
        if segment and ready:
            self.segment()
        else:
            hint = "Press Segment (Ctrl+R)." if ready else "Install a model (Install… or Download…)."
            self.set_status(f"{note + ' ' if note else ''}{photo.name}: {width} x {height}. {hint}")

    def paste(self) -> None:
        data = QGuiApplication.clipboard().mimeData()
        if data is None:
            return
        if data.hasImage():
            image = QGuiApplication.clipboard().image()
            if not image.isNull():
                self.set_photo(from_qimage(image, "pasted"))
                return
        for url in data.urls() if data.hasUrls() else []:
            if url.isLocalFile():
                self.open_photo(url.toLocalFile())
                return
        self.set_status("The clipboard holds no image.", "error")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        data = event.mimeData()
        if data.hasImage() or any(u.isLocalFile() and is_image_path(u.toLocalFile()) for u in data.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        data = event.mimeData()
        for url in data.urls():
            if url.isLocalFile():
                self.open_photo(url.toLocalFile())
                event.acceptProposedAction()
                return
        if data.hasImage():
            self.set_photo(from_qimage(data.imageData(), "dropped"))
            event.acceptProposedAction()

    # --- running --------------------------------------------------------------------------------------------
    def _model_changed(self, name: str) -> None:
        settings.write("segmentation/model", name)
        if self.photo is not None and (self.model.has_result or self.runner.segmenting):
            self.segment()

    def segment(self) -> None:
        """The network and the CRF on the photo, with the CRF panel's mode, iterations and parameters."""
        if self.photo is None:
            self.set_status("Open a photo first.", "error")
            return
        if self.model_required and not self.picker.has_model:
            self.set_status("No segmentation model installed: use Install… or Download… above.", "error")
            return
        from engine.segmentation.job import SegmentationRequest

        panel = self.crf_panel
        panel.flush_silently()
        mode = panel.mode
        try:  # the mode's own parameters are the engine's to choose (it knows the model's classes)
            params = panel.params() if panel.customised else None
        except Exception as exc:  # learned parameters went missing since the mode was chosen
            self.set_status(f"CRF parameters unavailable: {exc}", "error")
            return
        request = SegmentationRequest(
            self.photo.image,
            model=self.picker.current,
            crf=mode,  # type: ignore[arg-type]
            iterations=panel.iterations.value() if mode != "none" else 0,
            crf_params=params,
            **{"backend": segmentation_backend(), **self.request_options},
        )
        self._start(f"Segmenting {self.photo.name} with {self.picker.current}…", rerun=False)
        self.runner.run(request, on_done=self._segmented, on_error=self._failed)

    def rerun_crf(self) -> None:
        """Only the CRF again, on the cached unaries, after the CRF panel settles (cancels a run in flight)."""
        result = self.model.result
        if self.photo is not None and self.runner.segmenting and not self._rerun:
            self.segment()  # a full run is in flight: restart it with the new settings
            return
        if result is None or self.photo is None:
            return
        panel = self.crf_panel
        try:
            params = panel.params()
        except Exception as exc:
            self.set_status(f"CRF parameters unavailable: {exc}", "error")
            return
        iterations = panel.iterations.value() if panel.mode != "none" else 0
        self._start(f"Re-running the CRF ({iterations} iterations)…", rerun=True)
        self.runner.run(
            result.request, self._segmented, self._failed, rerun_of=result, params=params, iterations=iterations
        )

    def _start(self, text: str, rerun: bool) -> None:
        self._rerun = rerun
        self._started = time.perf_counter()
        self.set_status(text)

    def cancel(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
            self.set_status("Cancelled.")

    def _failed(self, reason: str) -> None:
        self.set_status(f"Segmentation failed: {reason}", "error")

    def _segmented(self, result: Any) -> None:
        self.last_seconds = time.perf_counter() - self._started
        at_end = self.model.iteration >= self.model.last_iteration
        self.model.set_result(result, keep_iteration=self._rerun and not at_end)
        self.crf_panel.num_classes = len(result.classes)
        self.compare.set_iterations(self.model.last_iteration, self.model.iteration)
        self.refresh()
        self._update_enabled()
        what = "CRF re-run" if self._rerun else f"{result.model_name} ({result.backend or 'engine'})"
        steps = self.model.last_iteration
        crf = "no CRF" if result.crf_mode == "none" else f"{result.crf_mode} CRF, {steps} iterations"
        self.set_status(f"{what}: {crf}, {self.last_seconds:.1f} s. Hover for class and probability.")

    # --- drawing ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Overlays, legend and hover from the view model (after a result, a slide, a colour or a toggle)."""
        if not self.model.has_result:
            return
        model = self.model
        self.canvas.set_overlay(model.overlay_argb32(model.display_labels("main")), "right")
        split = model.view == "split"
        if split:
            self.canvas.set_overlay(model.overlay_argb32(model.display_labels("left")), "left")
        self.canvas.set_split(split, model.split)
        if split:
            step = f"step {model.iteration}/{model.last_iteration}"
            self.canvas.set_tags("Unaries (network)", f"After CRF ({step})")
        self.legend.set_entries(model.legend())

    def _overlay_toggled(self, shown: bool) -> None:
        self.model.overlay_shown = shown
        self.canvas.set_overlay_visible(shown)

    def _contours_toggled(self, on: bool) -> None:
        self.model.contours = on
        settings.write("segmentation/contours", "true" if on else "false")
        self.refresh()

    def _opacity_changed(self, value: int) -> None:
        self.model.opacity = value / 100
        self.canvas.set_overlay_opacity(self.model.opacity)
        settings.write("segmentation/opacity", value)

    def _view_changed(self, view: str) -> None:
        self.model.view = view  # type: ignore[assignment]
        self.compare.slider.setEnabled(view != "unaries")
        self.refresh()

    def _iteration_changed(self, iteration: int) -> None:
        self.model.iteration = iteration
        self.refresh()

    def _split_moved(self, fraction: float) -> None:
        self.model.split = fraction

    def _hovered(self, x: float, y: float) -> None:
        self.hover_label.setText(self.model.hover_text(x, y) if x >= 0 else "")

    def _visibility_changed(self, index: int, visible: bool) -> None:
        if index < len(self.model.visible):
            self.model.set_visible(index, visible)
            self.refresh()

    def choose_colour(self, index: int) -> None:
        from PySide6.QtGui import QColor

        current = QColor(*self.model.colours[index])
        colour = QColorDialog.getColor(current, self, f"Colour for {self.model.classes[index]}")
        if colour.isValid():
            self.set_class_colour(index, (colour.red(), colour.green(), colour.blue()))

    def set_class_colour(self, index: int, rgb: tuple[int, int, int]) -> None:
        """A user's colour for a class: shown at once and kept in the settings for next time."""
        self.model.set_colour(index, rgb)
        settings.write("segmentation/colours", format_colours(self.model.user_colours))
        self.refresh()

    def reset_colours(self) -> None:
        self.model.reset_colours()
        settings.write("segmentation/colours", "")
        self.refresh()

    # --- exports ------------------------------------------------------------------------------------------
    def choose_export(self, kind: str) -> None:
        if not self.model.has_result or self.photo is None:
            return
        suffix = {"ids": "classes", "overlay": "overlay", "pair": "compare"}[kind]
        suggested = str(Path(self._export_dir) / f"{self.photo.name}-{suffix}.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG", suggested, PNG_FILTER)
        if path:
            self.export(kind, path)

    def export(self, kind: str, path: str | Path) -> Path | None:
        """Start writing one of the PNGs (atomically) on the export worker; returns the final path at once.

        Off the UI thread because a large photo's full-size intermediate labels (the engine upsamples every
        class) take seconds; the view model is copied first, so the picture is the one on screen now.
        """
        if not self.model.has_result or self.photo is None:
            return None
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        writers = {
            "ids": exports.export_class_ids,
            "overlay": exports.export_overlay,
            "pair": exports.export_side_by_side,
        }
        write, snapshot = writers[kind], self.model.snapshot()
        args = (snapshot, path) if kind == "ids" else (snapshot, self.photo.pixels, path)
        self.set_status(f"Exporting {path.name}…")
        self.export_jobs.submit(
            write,
            *args,
            on_return=self._exported,
            on_error=lambda reason: self.set_status(f"Could not export {path.name}: {reason}", "error"),
        )
        return path

    @property
    def exporting(self) -> bool:
        return self.export_jobs.busy

    def _exported(self, written: Path) -> None:
        self._export_dir = str(written.parent)
        self.set_status(f"Exported {written}.")

    def shutdown(self) -> None:
        """Stop any job and install, so no worker outlives the window."""
        self.runner.shutdown()
        self.export_jobs.shutdown()
        self.picker.shutdown()
