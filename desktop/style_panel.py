"""The "My handwriting" tab: write a line on the pen canvas, type what it says, save it as a style; optionally
watch where the prediction network expects the pen to go next."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.pen_canvas import PenCanvas
from desktop.prediction import PredictionMode
from desktop.style_library import StyleLibrary, StylePicker
from engine.handwriting.styles import StyleError
from engine.handwriting.writer import HandwritingWriter

STATUS_STYLES = {
    "info": "color: palette(text);",
    "notice": "color: #6b4700; background: #fff3d1; border-radius: 4px;",
    "error": "color: #8f1515; background: #fde6e6; border-radius: 4px;",
}
HELP = (
    "Write one line on the guides with a pen, the mouse or a touchpad, type exactly what you wrote, name it and "
    "save it. Then pick the style in the Handwriting tab: the model continues in your hand, and Neatness "
    "tidies it up."
)


class StylePanel(QWidget):
    """Canvas above, the save form and the saved styles below.

    ``writer`` returns the loaded model (or None): with it, saving checks the text against the model's
    alphabet and prepares the prime at once, so a style that cannot be used is refused when it is made.
    """

    def __init__(
        self,
        library: StyleLibrary,
        writer: Callable[[], HandwritingWriter | None] = lambda: None,
        canvas: PenCanvas | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self._writer = writer
        self.canvas = canvas or PenCanvas()
        self.prediction = PredictionMode(self.canvas, parent=self)
        self.prediction.message.connect(lambda message: self.set_status(message, "error"))
        self.confirm_overwrite: Callable[[str], bool] = self._ask_overwrite
        self._saved = ""  # the style saved last (its notices, once the engine has read it, are shown here)
        self._build()
        self.canvas.changed.connect(self._canvas_changed)
        self._canvas_changed()

    def _build(self) -> None:
        intro = QLabel(HELP)
        intro.setWordWrap(True)
        intro.setStyleSheet("color: palette(placeholder-text);")

        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Take back the last stroke, erase or clear (Ctrl+Z).")
        self.undo_button.clicked.connect(self.canvas.undo)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Start again (Undo brings the strokes back).")
        self.clear_button.clicked.connect(self.canvas.clear)
        self.guides_check = QCheckBox("Guide lines")
        self.guides_check.setChecked(self.canvas.guides_visible)
        self.guides_check.toggled.connect(self.canvas.set_guides_visible)
        self.prediction_check = QCheckBox("Show prediction")
        self.prediction_check.setToolTip(
            "As you write, the prediction network (the paper's unconditional model) shows where it expects the "
            "pen next: orange for the next point, blue for its guesses along what you wrote."
        )
        self.prediction_check.toggled.connect(self.prediction.set_enabled)
        self.ink_label = QLabel()
        self.ink_label.setStyleSheet("color: palette(placeholder-text);")
        tools = QHBoxLayout()
        tools.addWidget(self.undo_button)
        tools.addWidget(self.clear_button)
        tools.addWidget(self.guides_check)
        tools.addWidget(self.prediction_check)
        tools.addStretch(1)
        tools.addWidget(self.ink_label)

        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Type exactly what you wrote above")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. My everyday hand")
        self.save_button = QPushButton("Save as style")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save_style)
        self.name_edit.returnPressed.connect(self.save_style)
        name_row = QHBoxLayout()
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.save_button)
        self.picker = StylePicker(self.library, presets=False)
        self.picker.error.connect(lambda message: self.set_status(message, "error"))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("What you wrote", self.text_edit)
        form.addRow("Style name", name_row)
        form.addRow("Saved styles", self.picker)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.canvas)
        layout.addLayout(tools)
        layout.addSpacing(8)
        layout.addLayout(form)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

    @property
    def status_text(self) -> str:
        return self.status_label.text()

    @property
    def status_kind(self) -> str:
        return str(self.status_label.property("kind") or "")

    def set_status(self, text: str, kind: str = "info") -> None:
        self.status_label.setText(text)
        self.status_label.setProperty("kind", kind)
        self.status_label.setStyleSheet(STATUS_STYLES[kind] + " padding: 4px 6px;")

    def _canvas_changed(self) -> None:
        count = self.canvas.stroke_count
        self.ink_label.setText(f"{count} stroke{'s' if count != 1 else ''}" if count else "")
        self.undo_button.setEnabled(self.canvas.can_undo)
        self.clear_button.setEnabled(count > 0)

    def save_style(self) -> None:
        """Save the canvas as a named style; problems (too little ink, wrong text, bad name) are shown."""
        name = self.name_edit.text().strip()
        if name and self.library.exists(name) and not self.confirm_overwrite(name):
            return
        source = {"device": self.canvas.device}
        try:
            saved = self.library.save(
                name, self.text_edit.text(), self.canvas.strokes, source, self._writer(), overwrite=True
            )
        except StyleError as exc:
            self.set_status(str(exc), "error")
            return
        self._saved = saved
        self.set_status(f"Saved the style {saved!r}. The Handwriting tab now writes with it.")

    def style_checked(self, key: str, notices: list[str]) -> None:
        """The engine has read a style (in the background, as it is picked): should it be the one just saved and
        its strokes and text disagree, say so here, while the strokes are still on the canvas to compare."""
        if notices and key == self._saved:
            self.set_status(
                f"Saved the style {key!r}, but " + "; ".join(notices) + ". Type exactly what you wrote and save "
                "it again.",
                "notice",
            )

    def shutdown(self) -> None:
        """Save pending ink and stop the prediction worker before the window goes."""
        self.prediction.shutdown()
        self.canvas.flush()

    def _ask_overwrite(self, name: str) -> bool:
        answer = QMessageBox.question(self, "Replace style", f"A style named {name!r} exists. Replace it?")
        return answer == QMessageBox.StandardButton.Yes
