"""The Handwriting tab: type text (or let the text model dream it), pick a style, neatness and a seed, watch it
written, rewrite a line, set up the page and export it."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop import settings
from desktop.dream import DreamedText, TextModelCache, dream_text_job
from desktop.export import DEFAULT_INK, DEFAULT_PEN_WIDTH, FILTERS, FORMATS, export_pages, format_for
from desktop.page_document import PageDocument, PageDocumentError
from desktop.page_setup import PageSetupDialog, describe, saved_unit
from desktop.playback import Playback, PlaybackBar
from desktop.stroke_view import StrokeView
from desktop.style_library import StyleLibrary, StylePicker, is_preset, preset_key, style_label
from desktop.workers import (
    MEASURING_STATUS,
    JobRunner,
    WriteProgress,
    WriteResult,
    load_job,
    prepare_style_job,
    replace_line,
    write_job,
)
from engine.handwriting.page import PageGeometry
from engine.handwriting.styles import StyleError
from engine.handwriting.writer import HandwritingWriter, Prime, shipped_model_path

DEFAULT_TEXT = "Penwright writes by hand"
DEFAULT_BIAS = 0.75  # the command line's default: neat but still varied
# The style on first start: the shipped network writes most legibly primed (it was fine-tuned on pairs of lines),
# so a new user sees a preset, not the network's unprimed hand ("No style" stays one click away).
DEFAULT_STYLE = preset_key("Penwright neat")
BIAS_STEPS_PER_UNIT = 100
PREVIEW_DELAY_MS = 350  # after the neatness slider stops moving, the page is written again with the new value
MAX_SEED = 2**31 - 1
SVG_FILTER, PNG_FILTER, INKML_FILTER, GCODE_FILTER = (f.filter for f in FORMATS)

STATUS_STYLES = {
    "info": "color: palette(text);",
    "notice": "color: #6b4700; background: #fff3d1; border-radius: 4px;",
    "error": "color: #8f1515; background: #fde6e6; border-radius: 4px;",
}


class HandwritingTab(QWidget):
    """Controls on the left, the page on the right, a status line below.

    ``model_path`` None means the shipped model. Loading and writing run on a :class:`JobRunner`, so the
    window stays responsive and a new Write simply replaces the one in flight.
    """

    export_available = Signal(bool)
    job_started = Signal(list)  # the texts being written (cleaned by the engine only once it runs)
    job_progress = Signal(object)  # WriteProgress
    job_finished = Signal(object)  # WriteResult
    style_checked = Signal(str, list)  # a style's key and what the user should know about it (may be empty)

    def __init__(
        self,
        model_path: str | Path | None = None,
        library: StyleLibrary | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library or StyleLibrary(self)
        self._writer: HandwritingWriter | None = None
        self._result: WriteResult | None = None
        self._model_path: Path | None = None
        self._written_style = ""  # the style of the job in flight (the picker may change meanwhile)
        self._requested_path: str | Path | None = model_path
        self.page_geometry = PageGeometry()  # kept with saved pages and the settings; used by Export
        self.line_seeds: dict[int, int] = {}  # lines written again on their own, with their seeds
        self._replay_seeds: dict[int, int] = {}  # rewrites still to do after opening a page
        self._rewriting: int | None = None  # the line being written again
        self._job_notices: list[str] = []  # notices from before the job (e.g. characters the dream dropped)
        self._writing = False  # a page is being written (not a dream's text, not a single line)
        self.text_model_path: Path | None = None  # None: the one chosen in the settings, from resources/models
        self._text_models = TextModelCache()
        self.backend, self.device = settings.runtime()
        self.runner = JobRunner(self)
        self._style_by_default = False
        self._style_to_prepare = False  # the chosen style's correction is to be measured once the runner is idle
        self._build()
        self.restore_settings()
        self.runner.busy_changed.connect(self._busy_changed)
        self.load_model(model_path)

    # --- layout --------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.text_edit = QPlainTextEdit(DEFAULT_TEXT)
        self.text_edit.setPlaceholderText("Type one or more lines to write…")
        self.text_edit.setToolTip("Each line of text becomes one line of handwriting (Ctrl+Enter writes).")

        self.bias_slider = QSlider(Qt.Orientation.Horizontal)
        self.bias_slider.setRange(0, 3 * BIAS_STEPS_PER_UNIT)
        self.bias_slider.setPageStep(BIAS_STEPS_PER_UNIT // 4)
        self.bias_slider.setToolTip("Bias: 0 writes as the model learned (varied, sometimes messy); higher is neater.")
        self.bias_label = QLabel()
        self.bias_label.setMinimumWidth(32)
        self.bias_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.bias_slider.valueChanged.connect(self._show_bias)
        # Live preview: user moves (drag, keys, wheel, clicks; not values set by the program) rewrite the page
        # once the slider rests, replacing the job in flight.
        self.bias_slider.actionTriggered.connect(self._bias_moved)
        self.preview_timer = QTimer(self)
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(PREVIEW_DELAY_MS)
        self.preview_timer.timeout.connect(self._preview)
        self.bias_slider.setValue(round(DEFAULT_BIAS * BIAS_STEPS_PER_UNIT))
        self._show_bias()
        bias_row = QHBoxLayout()
        bias_row.addWidget(self.bias_slider, 1)
        bias_row.addWidget(self.bias_label)

        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setValue(1)
        self.seed_spin.setToolTip("The same text, bias and seed always give the same handwriting.")
        self.variation_button = QPushButton("Another variation")
        self.variation_button.setToolTip("Pick a new seed and write again.")
        self.variation_button.clicked.connect(self.another_variation)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.variation_button)

        self.style_picker = StylePicker(self.library)
        self.style_picker.style_changed.connect(self._style_changed)
        self.style_picker.error.connect(lambda message: self.set_status(message, "error"))
        self.style_hint = QLabel()
        self.style_hint.setWordWrap(True)
        self.style_hint.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.match_check = QCheckBox("Match the style's size, width and slant")
        self.match_check.setChecked(True)
        self.match_check.setToolTip(
            "The network follows a style's letter size, width and slant only part of the way. Checked, Penwright "
            "measures how it writes the style's own text (once per style and neatness) and corrects the difference."
        )
        self.match_check.toggled.connect(self._match_toggled)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Style", self.style_picker)
        form.addRow("", self.style_hint)
        form.addRow("", self.match_check)
        form.addRow("Neatness", bias_row)
        form.addRow("Seed", seed_row)
        self.pen_width_spin = QDoubleSpinBox()
        self.pen_width_spin.setRange(0.1, 2.0)
        self.pen_width_spin.setSingleStep(0.05)
        self.pen_width_spin.setSuffix(" mm")
        self.pen_width_spin.setValue(DEFAULT_PEN_WIDTH)
        self.pen_width_spin.setToolTip("The pen's width on paper (exports) and, in proportion, on screen.")
        self.colour_button = QPushButton("Ink colour…")
        self.colour_button.setToolTip("The ink's colour on screen and in SVG and PNG exports.")
        self.colour_button.clicked.connect(self.choose_colour)
        self.pen_colour = DEFAULT_INK
        self.pen_width_spin.valueChanged.connect(lambda width: self.set_pen(width, self.pen_colour))
        pen_row = QHBoxLayout()
        pen_row.addWidget(self.pen_width_spin, 1)
        pen_row.addWidget(self.colour_button)
        form.addRow("Pen", pen_row)
        self.page_button = QPushButton("Page setup…")
        self.page_button.setToolTip("Paper size, margins, line spacing and letter height of exports.")
        self.page_button.clicked.connect(self.edit_page_setup)
        self.page_label = QLabel()
        self.page_label.setWordWrap(True)
        self.page_label.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        form.addRow("Page", self.page_button)
        form.addRow("", self.page_label)

        self.write_button = QPushButton("Write")
        self.write_button.setDefault(True)
        self.write_button.setMinimumHeight(32)
        self.write_button.clicked.connect(self.write)
        self.dream_button = QPushButton("Dream")
        self.dream_button.setMinimumHeight(32)
        self.dream_button.setToolTip(
            "The text model writes a sentence (continuing your text, if any), then it is written by hand "
            "(Ctrl+D). Choose the text model and its temperature in File → Settings."
        )
        self.dream_button.clicked.connect(self.dream)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the page as SVG, PNG, InkML or pen-plotter G-code.")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export)
        self.rewrite_button = QPushButton("Rewrite line")
        self.rewrite_button.setToolTip(
            "Write the line where the text cursor is again, with a new seed; the other lines stay as they are."
        )
        self.rewrite_button.setEnabled(False)
        self.rewrite_button.clicked.connect(lambda: self.rewrite_line())
        buttons = QHBoxLayout()
        buttons.addWidget(self.write_button, 2)
        buttons.addWidget(self.dream_button, 1)
        more_buttons = QHBoxLayout()
        more_buttons.addWidget(self.rewrite_button, 1)
        more_buttons.addWidget(self.export_button, 1)

        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        text_label = QLabel("Text")
        text_label.setStyleSheet("font-weight: 600;")
        controls = QVBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(text_label)
        controls.addWidget(self.text_edit, 1)
        controls.addLayout(form)
        controls.addLayout(buttons)
        controls.addLayout(more_buttons)
        controls.addSpacing(6)
        controls.addWidget(self.model_label)
        panel = QWidget()
        panel.setLayout(controls)
        panel.setFixedWidth(340)

        self.view = StrokeView()
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._view_menu)
        self.view.setToolTip("Right-click a line to write it again.")
        self.playback = Playback(self.view, self)
        self.playback_bar = PlaybackBar(self.playback)
        page = QVBoxLayout()
        page.setContentsMargins(0, 0, 0, 0)
        page.setSpacing(2)
        page.addWidget(self.view, 1)
        page.addWidget(self.playback_bar)
        body = QHBoxLayout()
        body.addWidget(panel)
        body.addLayout(page, 1)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # indeterminate: the number of steps is not known in advance
        self.progress.setFixedWidth(120)
        self.progress.setTextVisible(False)
        self.progress.hide()
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.progress)

        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addLayout(status_row)

        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, activated=self.write)
        QShortcut(QKeySequence("Ctrl+D"), self, activated=self.dream)
        self._style_changed(self.style_picker.current)

    # --- state shown to the user ---------------------------------------------------------------------

    @property
    def bias(self) -> float:
        return self.bias_slider.value() / BIAS_STEPS_PER_UNIT

    @property
    def writer(self) -> HandwritingWriter | None:
        """The loaded model (None while loading or when none could be loaded)."""
        return self._writer

    @property
    def style_name(self) -> str:
        """The chosen style, "" for the model's own hand."""
        return self.style_picker.current

    @property
    def model_ready(self) -> bool:
        return self._writer is not None

    @property
    def busy(self) -> bool:
        return self.runner.busy

    @property
    def result(self) -> WriteResult | None:
        """The last finished job (what Export saves), or None while writing or before the first write."""
        return self._result

    @property
    def status_text(self) -> str:
        return self.status_label.text()

    @property
    def status_kind(self) -> str:
        return str(self.status_label.property("kind") or "")

    def set_status(self, text: str, kind: str = "info") -> None:
        """One line of feedback; notices and errors are coloured so they are not missed."""
        self.status_label.setText(text)
        self.status_label.setProperty("kind", kind)
        self.status_label.setStyleSheet(STATUS_STYLES[kind] + " padding: 4px 6px;")

    def _show_bias(self) -> None:
        self.bias_label.setText(f"{self.bias:.2f}")

    def _bias_moved(self) -> None:
        if self._writer is not None and (self._result is not None or self._writing):
            self.preview_timer.start()

    def _preview(self) -> None:
        """The slider has rested: write the page again with the new neatness (same text, style and seed)."""
        if self._writer is not None and (self._result is not None or self._writing) and self.texts():
            self.write()

    def _match_toggled(self) -> None:
        """Write the page again with or without matching (as moving the Neatness slider does)."""
        if self.style_name:
            self._bias_moved()
            self._prepare_style()

    def _prepare_style(self) -> None:
        """While nothing else runs, read the chosen style into the network and measure its correction (once per
        style and neatness step), so the first Write in it does not wait for that, and say at once when its
        strokes and text disagree; a job already running prepares it when it ends."""
        self._style_to_prepare = True
        if self._writer is None or self.busy or not self.style_name:
            return
        self._style_to_prepare = False
        try:
            prime = self.library.prime(self.style_name, self._writer)
        except StyleError:
            return  # Write says why
        self.runner.submit(
            prepare_style_job,
            self._writer,
            prime,
            self.bias,
            self.match_check.isChecked(),
            on_return=partial(self._style_prepared, self.style_name),
            on_error=lambda message: None,
        )

    def _style_prepared(self, key: str, notices: list[str]) -> None:
        """A style read in the background: what it told us goes to the status line (the style still chosen and
        nothing being written, no error showing) and to whoever listens (the My handwriting tab, which has just
        saved it)."""
        if notices and key == self.style_name and not self._writing and self.status_kind != "error":
            self.set_status(f"The style {style_label(key)!r}: " + "; ".join(notices) + ".", "notice")
        self.style_checked.emit(key, list(notices))

    def _style_changed(self, name: str) -> None:
        self.match_check.setEnabled(bool(name))
        self._prepare_style()
        if is_preset(name):
            self.style_hint.setText("A preset that ships with Penwright. Save your own in the My handwriting tab.")
        elif name:
            self.style_hint.setText("Writes in your style; raise Neatness to clean up your handwriting.")
        else:
            self.style_hint.setText(
                "The network invents a hand for each seed (Another variation: another hand). "
                "Make a style from your own handwriting in the My handwriting tab."
            )

    def _busy_changed(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        if not busy:
            self._next_replay()
        if not self.busy and self._style_to_prepare:
            self._prepare_style()

    def _set_result(self, result: WriteResult | None) -> None:
        self._result = result
        if result is None:
            self.playback.clear()
        else:
            self.playback.load(result.lines)
        self.export_button.setEnabled(result is not None)
        self.rewrite_button.setEnabled(result is not None)
        self.export_available.emit(result is not None)

    # --- settings ------------------------------------------------------------------------------------

    def restore_settings(self) -> None:
        """Neatness, seed and style as they were when the app last closed."""
        self.bias_slider.setValue(round(settings.read("write/bias", DEFAULT_BIAS, float) * BIAS_STEPS_PER_UNIT))
        self.seed_spin.setValue(settings.read("write/seed", 1, int))
        # first start (nothing saved): the default preset, if the model can write it (see _model_loaded)
        self._style_by_default = not settings.settings().contains("write/style")
        self.style_picker.select(settings.read("write/style", DEFAULT_STYLE))
        self.match_check.setChecked(settings.read_flag("write/match_style", True))
        self.pen_width_spin.setValue(settings.read("pen/width", DEFAULT_PEN_WIDTH, float))
        colour = QColor(settings.read("pen/colour", DEFAULT_INK))
        self.set_pen(self.pen_width_spin.value(), colour.name() if colour.isValid() else DEFAULT_INK)
        try:
            self.page_geometry = PageDocument.from_json(settings.read("page/document", "")).geometry
        except PageDocumentError:
            self.page_geometry = PageGeometry()
        self._show_page_setup()

    def save_settings(self) -> None:
        settings.write_many(
            {
                "write/bias": self.bias,
                "write/seed": self.seed_spin.value(),
                "write/style": self.style_name,
                "write/match_style": self.match_check.isChecked(),
                "pen/width": self.pen_width_spin.value(),
                "pen/colour": self.pen_colour,
                "page/document": PageDocument("", geometry=self.page_geometry).to_json(),
            }
        )

    def set_runtime(self, backend: str, device: str) -> None:
        """Run the model on another backend or device: reloads it when either changed."""
        if (backend, device) != (self.backend, self.device):
            self.backend, self.device = backend, device
            self.load_model(self._requested_path)

    # --- model ---------------------------------------------------------------------------------------

    def load_model(self, path: str | Path | None = None) -> None:
        """Load a synthesis model in the background; Write is enabled once it is ready."""
        self._requested_path = path
        self._writer = None
        self._model_path = Path(path) if path else shipped_model_path("synthesis")
        self.write_button.setEnabled(False)
        self.variation_button.setEnabled(False)
        self.dream_button.setEnabled(False)
        self._writing = False
        self.preview_timer.stop()
        self._set_result(None)
        self.view.show_message("Loading the handwriting model…")
        self.set_status("Loading the handwriting model…")
        self.model_label.setText(f"Model: {self._model_path.name} (loading…)")
        self.model_label.setToolTip(str(self._model_path))
        self.runner.submit(
            load_job, path, self.backend, self.device, on_return=self._model_loaded, on_error=self._model_failed
        )

    def _model_loaded(self, writer: HandwritingWriter) -> None:
        self._writer = writer
        if self._style_by_default and self.style_name == DEFAULT_STYLE:
            try:  # a model of another alphabet (PENWRIGHT_SYNTHESIS_MODEL) may not write the preset's text
                self.library.prime(DEFAULT_STYLE, writer)
            except StyleError:
                self.style_picker.select("")
        self.write_button.setEnabled(True)
        self.variation_button.setEnabled(True)
        self.dream_button.setEnabled(True)
        self.view.show_message("Type some text and press Write.")
        runtime = describe_runtime(writer)
        notices = list(getattr(writer.stepper, "notices", []) or [])
        if notices:
            self.set_status(f"Model ready on {runtime}. Note: " + "; ".join(notices) + ".", "notice")
        else:
            self.set_status(f"Model ready: {describe_model(writer)}, running on {runtime}.")
        self.model_label.setText(f"Model: {self._model_path.name}, {describe_model(writer)}; {runtime}")

    def _model_failed(self, message: str) -> None:
        self.view.show_message("No handwriting model is loaded.")
        self.model_label.setText(f"Model: {self._model_path.name} could not be loaded")
        self.set_status(message, "error")

    # --- writing -------------------------------------------------------------------------------------

    def texts(self) -> list[str]:
        return [line for line in self.text_edit.toPlainText().splitlines() if line.strip()]

    def write(self) -> None:
        """Write the text with the current bias and seed; replaces a job still in flight."""
        if self._writer is None:
            return
        texts = self.texts()
        if not texts:
            self.set_status("Type some text to write first.", "error")
            return
        prime = self._style_prime()
        if prime is False:
            return
        self._set_result(None)
        self.save_settings()
        self.line_seeds = {}
        self._rewriting = None
        self._job_notices = []
        self._writing = True
        self._written_style = self.style_name if prime is not None else ""
        self.view.begin(len(texts))
        noun = "line" if len(texts) == 1 else "lines"
        style = f" in the style {style_label(self.style_name)!r}" if prime is not None else ""
        if prime is not None and self.match_check.isChecked() and self.runner.running is prepare_style_job:
            self.set_status(MEASURING_STATUS)  # the page waits for the style being measured in the background
        else:
            self.set_status(f"Writing {len(texts)} {noun}{style}…")
        try:
            self.job_started.emit(self._writer.prepare(texts)[0])  # the text as the model will read it
        except ValueError:  # unknown characters: the job itself reports them
            self.job_started.emit(texts)
        self.runner.submit(
            partial(write_job, match_style=self.match_check.isChecked()),
            self._writer,
            texts,
            self.bias,
            self.seed_spin.value(),
            prime,
            on_yield=self._progress,
            on_return=self._written,
            on_error=self._write_failed,
        )

    def _style_prime(self) -> Prime | None | bool:
        """The chosen style's prime, None for no style, False (after saying why) when it cannot be used."""
        if not self.style_name or self._writer is None:
            return None
        try:
            return self.library.prime(self.style_name, self._writer)
        except StyleError as exc:
            self.set_status(str(exc), "error")
            return False

    def another_variation(self) -> None:
        """Same text and neatness, new seed: a different hand-written take."""
        seed = self.seed_spin.value()
        while seed == self.seed_spin.value():
            seed = random.randint(0, MAX_SEED)
        self.seed_spin.setValue(seed)
        self.write()

    def _progress(self, progress: WriteProgress) -> None:
        if progress.status is not None:  # nothing written yet: say what the wait is for
            self.set_status(progress.status)
            return
        for update in progress.updates:
            self.view.add(update.line if self._rewriting is None else self._rewriting, update.closed, update.open)
        if self._rewriting is not None:
            return
        self.job_progress.emit(progress)
        finished = sum(progress.done)
        if finished < len(progress.done):
            self.set_status(f"Writing… {finished} of {len(progress.done)} lines done, {progress.steps} pen steps.")

    def _written(self, result: WriteResult) -> None:
        self._writing = False
        self.view.finish()
        self._set_result(result)
        self.job_finished.emit(result)
        noun = "line" if len(result.lines) == 1 else "lines"
        message = (
            f"Wrote {len(result.lines)} {noun} in {result.seconds:.1f} s "
            f"({'style ' + repr(style_label(self._written_style)) + ', ' if result.primed else ''}"
            f"neatness {result.bias:.2f}, seed {result.seed})."
        )
        notes = [*self._job_notices, *result.notices]
        if result.capped_lines:
            which = ", ".join(str(i + 1) for i in result.capped_lines)
            noun = "line" if len(result.capped_lines) == 1 else "lines"
            notes.append(f"{noun} {which} hit the length limit before the model finished")
        if notes:
            self.set_status(message + " Note: " + "; ".join(notes) + ".", "notice")
        else:
            self.set_status(message)

    def _write_failed(self, message: str) -> None:
        self._writing = False
        if self._rewriting is not None and self._result is not None:
            self._rewriting = None
            self.view.set_lines(self._result.lines)
            self.set_status(message, "error")
            return
        self.view.show_message("Nothing written.")
        self.set_status(message, "error")

    # --- one line again ------------------------------------------------------------------------------

    def cursor_line(self) -> int:
        """Which written line the text cursor is on (blank lines are not written, so they do not count)."""
        block = self.text_edit.textCursor().blockNumber()
        lines = self.text_edit.toPlainText().splitlines()
        return max(sum(1 for line in lines[: block + 1] if line.strip()) - 1, 0)

    def rewrite_line(self, index: int | None = None, seed: int | None = None) -> bool:
        """Write one line again (a new seed unless given), keeping the others; False when it cannot be done now."""
        if self._writer is None or self._result is None or self.busy:
            return False
        index = self.cursor_line() if index is None else index
        texts = self.texts()
        if len(texts) != len(self._result.lines):
            self.set_status("The text has changed since it was written: press Write first.", "error")
            return False
        if not 0 <= index < len(texts):
            return False
        if self._written_style != self.style_name:
            self.set_status("The style has changed since the page was written: press Write first.", "error")
            return False
        prime = self._style_prime()
        if prime is False:  # the style cannot be used any more; the status says why
            return False
        if seed is None:
            seed = random.randint(0, MAX_SEED)
        self._rewriting = index
        self.view.restart_line(index)
        self.set_status(f"Writing line {index + 1} again (seed {seed})…")
        # without a style, a page of several lines is in the hand invented for its seed: the line keeps it
        page_seed = self._result.seed if prime is None and len(texts) > 1 else None
        self.runner.submit(
            partial(write_job, page_seed=page_seed, match_style=self.match_check.isChecked()),
            self._writer,
            [texts[index]],
            self._result.bias,
            seed,
            prime,
            on_yield=self._progress,
            on_return=lambda result: self._line_rewritten(index, seed, result),
            on_error=self._write_failed,
        )
        return True

    def _view_menu(self, pos: QPoint) -> None:
        """Right-click on a written line: write that line again."""
        index = self.view.line_at(pos.y())
        if index is None or self._result is None:
            return
        menu = QMenu(self)
        action = menu.addAction(f"Write line {index + 1} again")
        action.setEnabled(not self.busy)
        action.triggered.connect(lambda: self.rewrite_line(index))
        menu.popup(self.view.mapToGlobal(pos))

    def _line_rewritten(self, index: int, seed: int, line: WriteResult) -> None:
        self._rewriting = None
        self.line_seeds[index] = seed
        result = replace_line(self._result, index, line)
        self.view.finish()
        self._result = result
        self.playback.load(result.lines)
        self.job_finished.emit(result)
        self.set_status(
            f"Wrote line {index + 1} again in {line.seconds:.1f} s (seed {seed}); the others are as they were."
        )

    def _next_replay(self) -> None:
        """After opening a page: write again, one by one, the lines its document says were rewritten."""
        if self._replay_seeds and self._result is not None:
            index = min(self._replay_seeds)
            seed = self._replay_seeds.pop(index)
            if not self.rewrite_line(index, seed):
                self._replay_seeds = {}

    # --- dream ---------------------------------------------------------------------------------------

    def dream(self) -> None:
        """The text model writes a sentence (continuing the text, if any), shown as it comes; then it is written."""
        if self._writer is None:
            return
        prime = " ".join(self.text_edit.toPlainText().split())
        self._set_result(None)
        self._rewriting = None
        self._writing = False
        self.preview_timer.stop()
        self.text_edit.setPlainText(prime + " " if prime else "")
        self.view.show_message("The text model is writing…")
        self.set_status("Dreaming: the text model is writing" + (" on from your text…" if prime else " a sentence…"))
        self.runner.submit(
            dream_text_job,
            self._text_models,
            self.text_model_path,
            prime,
            settings.temperature(),
            self.seed_spin.value(),
            self._writer.alphabet,
            on_yield=self._dream_char,
            on_return=self._dreamt,
            on_error=self._write_failed,
        )

    def _dream_char(self, char: str) -> None:
        cursor = self.text_edit.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(" " if char == "\n" and not self.text_edit.toPlainText().endswith(" ") else char.strip("\n"))
        self.text_edit.setTextCursor(cursor)

    def _dreamt(self, dreamt: DreamedText) -> None:
        self.text_edit.setPlainText("\n".join(dreamt.lines))
        self.write()
        self._job_notices = list(dreamt.notices)

    # --- export --------------------------------------------------------------------------------------

    def export(self) -> None:
        """Ask where to save, then write the page as SVG, PNG, InkML or G-code (by extension, else the filter)."""
        if self._result is None:
            return
        path_text, chosen = QFileDialog.getSaveFileName(
            self, "Export handwriting", str(Path.home() / "handwriting.svg"), FILTERS
        )
        if not path_text:
            return
        path = format_for(Path(path_text), chosen)
        try:
            files, pages = export_pages(
                path,
                self._result.lines,
                self._result.texts,
                self.page_geometry,
                self.pen_width_spin.value(),
                self.pen_colour,
            )
        except (OSError, ValueError) as exc:
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
            self.set_status(f"Could not export to {path}: {reason}.", "error")
            return
        where = str(files[0]) if len(files) == 1 else f"{len(files)} pages, {files[0].name} to {files[-1].name}"
        notes = [note for page in pages for note in page.notes]
        if notes:
            self.set_status(f"Exported to {where}. Note: " + "; ".join(notes) + ".", "notice")
        else:
            self.set_status(f"Exported to {where}.")

    # --- pen -----------------------------------------------------------------------------------------

    def set_pen(self, width: float, colour: str) -> None:
        """Pen width (mm) and ink colour ("#rrggbb") for the page on screen and the exports."""
        self.pen_colour = QColor(colour).name()
        if abs(self.pen_width_spin.value() - width) > 1e-9:
            self.pen_width_spin.setValue(width)
        self.view.set_pen(QColor(self.pen_colour), self.pen_width_spin.value() / DEFAULT_PEN_WIDTH)
        swatch = QPixmap(14, 14)
        swatch.fill(QColor(self.pen_colour))
        self.colour_button.setIcon(QIcon(swatch))

    def choose_colour(self) -> None:
        colour = QColorDialog.getColor(QColor(self.pen_colour), self, "Ink colour")
        if colour.isValid():
            self.set_pen(self.pen_width_spin.value(), colour.name())
            self.save_settings()

    # --- page setup ----------------------------------------------------------------------------------

    def edit_page_setup(self) -> PageSetupDialog:
        dialog = PageSetupDialog(self.page_geometry, self)
        dialog.accepted.connect(lambda: self.set_page_geometry(dialog.geometry_value))
        dialog.open()
        return dialog

    def set_page_geometry(self, geometry: PageGeometry) -> None:
        self.page_geometry = geometry
        self._show_page_setup()
        self.save_settings()

    def _show_page_setup(self) -> None:
        self.page_label.setText(describe(self.page_geometry, saved_unit()))

    # --- page documents ------------------------------------------------------------------------------

    def page_document(self) -> PageDocument:
        """What is needed to write this page again."""
        text = self.text_edit.toPlainText()
        return PageDocument(
            text,
            self.style_name,
            self.seed_spin.value(),
            self.bias,
            self.page_geometry,
            dict(self.line_seeds),
            self.match_check.isChecked(),
        )

    def save_page(self, path: str | Path) -> bool:
        try:
            self.page_document().save(path)
        except OSError as exc:
            self.set_status(f"Could not save the page to {path}: {exc.strerror or exc}.", "error")
            return False
        self.set_status(f"Saved the page to {path}.")
        return True

    def open_page(self, path: str | Path) -> bool:
        """Read a saved page into the controls and write it (once the model is ready)."""
        try:
            document = PageDocument.load(path)
        except PageDocumentError as exc:
            self.set_status(f"Could not open {path}: {exc}.", "error")
            return False
        self.text_edit.setPlainText(document.text)
        self.bias_slider.setValue(round(document.bias * BIAS_STEPS_PER_UNIT))
        self.seed_spin.setValue(min(max(document.seed, 0), MAX_SEED))
        self.style_picker.select(document.style)
        self.match_check.blockSignals(True)  # the page is written once below, not also on this change
        self.match_check.setChecked(document.match_style)
        self.match_check.blockSignals(False)
        self.page_geometry = document.geometry
        self._show_page_setup()
        if document.style and self.style_name != document.style:
            self.set_status(
                f"Opened {path}, but the style {style_label(document.style)!r} is not in your styles; "
                "it is written in the model's own hand.",
                "notice",
            )
        else:
            self.set_status(f"Opened {path}.")
        if self._writer is not None:
            notice = (self.status_text, self.status_kind)
            self.write()
            self._replay_seeds = dict(document.line_seeds)
            if notice[1] == "notice":
                self.set_status(notice[0], "notice")
        return True

    def shutdown(self) -> None:
        """Stop background work before the window goes (a worker thread must not outlive Qt)."""
        self.playback.stop()
        self.save_settings()
        self.runner.shutdown()


def describe_model(writer: HandwritingWriter) -> str:
    """A short line about the loaded model, from its metadata (so users know what they are running)."""
    meta = writer.model.meta
    config, training = meta.get("config", {}), meta.get("training", {})
    text = f"{config.get('layers', '?')}×{config.get('hidden', '?')} LSTM"
    if "step" in training:  # with the steps of the model a fine-tuning started from
        text += f", {int(training['step']) + int(training.get('earlier_steps', 0)):,} training steps"
    return text + f", {len(writer.alphabet)} characters"


def describe_runtime(writer: HandwritingWriter) -> str:
    """Which backend and device run the model, from the engine's stepper (ONNX: its provider; torch: its device)."""
    stepper = writer.stepper
    provider = getattr(stepper, "provider", None)
    if provider is not None:
        where = "GPU" if "CUDA" in str(provider) else "CPU"
        return f"ONNX Runtime, {where} ({provider})"
    device = str(getattr(stepper, "device", "cpu"))
    return f"PyTorch, {'GPU' if device.startswith('cuda') else 'CPU'} ({device})"
