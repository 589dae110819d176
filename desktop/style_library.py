"""The user's saved styles, shared by every widget that lists them, and the picker that chooses one.

A thin layer over ``engine.handwriting.styles``: it turns engine errors into sentences for the window and
tells every picker when a style is saved or deleted, so the lists never go stale.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QMessageBox, QPushButton, QSizePolicy, QWidget

from desktop.workers import readable_error
from engine.handwriting.styles import (
    Style,
    StyleError,
    check_text,
    delete_style,
    list_styles,
    load_named_style,
    normalise_strokes,
    save_named_style,
    style_path,
)
from engine.handwriting.writer import HandwritingWriter, Prime

NO_STYLE = "No style (model's own)"


class StyleLibrary(QObject):
    """Saved styles on disk (engine.paths.data_dir()/styles); ``changed(name)`` after a save or delete."""

    changed = Signal(str)

    def names(self) -> list[str]:
        try:
            return list_styles()
        except OSError:
            return []

    def exists(self, name: str) -> bool:
        try:
            return style_path(name).exists()
        except StyleError:
            return False

    def save(
        self, name: str, text: str, strokes: list, source: dict, writer: HandwritingWriter | None, overwrite: bool
    ) -> str:
        """Check and save a style; returns its stored name. Raises StyleError with a readable message.

        With a model loaded its alphabet and convention check the text and prepare the prime (cached in the
        file); without one the ink is still checked against the length of the text.
        """
        if not name.strip():
            raise StyleError("Give the style a name.")
        if not strokes:
            raise StyleError("Write a line on the canvas first.")
        try:
            style = Style(name=name.strip(), text=text.strip(), strokes=strokes, source=dict(source))
            if writer is not None:
                style.prime(writer.convention, writer.alphabet)
            else:
                normalise_strokes(style.strokes, check_text(style.text, None))
            path = save_named_style(style, overwrite=overwrite)
        except (StyleError, OSError) as exc:
            raise StyleError(readable_error(exc)) from exc
        saved = path.name.split(".penwright-style.json")[0]
        self.changed.emit(saved)
        return saved

    def delete(self, name: str) -> None:
        try:
            delete_style(name)
        except (StyleError, OSError) as exc:
            raise StyleError(readable_error(exc)) from exc
        self.changed.emit("")

    def prime(self, name: str, writer: HandwritingWriter) -> Prime:
        """The prime of a saved style for the loaded model; StyleError (readable) when it cannot be used."""
        try:
            return load_named_style(name).prime(writer.convention, writer.alphabet)
        except (StyleError, OSError) as exc:
            raise StyleError(f"The style {name!r} cannot be used: {readable_error(exc)}") from exc


class StylePicker(QWidget):
    """A combo box of "No style" plus the saved styles, with a Delete button; follows the library."""

    style_changed = Signal(str)  # "" for no style
    error = Signal(str)

    def __init__(self, library: StyleLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.combo = QComboBox()
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setToolTip("Write in one of your saved styles, or in the model's own hand.")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the chosen style (its file in your Penwright folder).")
        self.delete_button.clicked.connect(self.delete_current)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.delete_button)
        self.confirm: Callable[[str], bool] = self._ask
        self.refresh()
        self.combo.currentIndexChanged.connect(self._picked)
        library.changed.connect(self._library_changed)

    @property
    def current(self) -> str:
        """The chosen style's name, "" for none."""
        return "" if self.combo.currentIndex() <= 0 else self.combo.currentText()

    def names(self) -> list[str]:
        return [self.combo.itemText(i) for i in range(1, self.combo.count())]

    def select(self, name: str) -> None:
        index = self.combo.findText(name) if name else 0
        self.combo.setCurrentIndex(max(index, 0))

    def refresh(self, select: str | None = None) -> None:
        keep = self.current if select is None else select
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(NO_STYLE)
        self.combo.addItems(self.library.names())
        index = self.combo.findText(keep) if keep else 0
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(False)
        self.delete_button.setEnabled(bool(self.current))
        if self.current != keep:
            self.style_changed.emit(self.current)

    def delete_current(self) -> None:
        name = self.current
        if not name or not self.confirm(name):
            return
        try:
            self.library.delete(name)
        except StyleError as exc:
            self.error.emit(str(exc))

    def _ask(self, name: str) -> bool:
        answer = QMessageBox.question(self, "Delete style", f"Delete the style {name!r}? This cannot be undone.")
        return answer == QMessageBox.StandardButton.Yes

    def _picked(self) -> None:
        self.delete_button.setEnabled(bool(self.current))
        self.style_changed.emit(self.current)

    def _library_changed(self, saved: str) -> None:
        # A style just saved is selected: the next Write shows it at once.
        self.refresh(select=saved or None)
