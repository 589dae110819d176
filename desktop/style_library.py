"""The user's saved styles, shared by every widget that lists them, and the picker that chooses one.

A thin layer over ``engine.handwriting.styles``: it turns engine errors into sentences for the window and
tells every picker when a style is saved or deleted, so the lists never go stale.

A style is named by a key: the user's saved styles by their name (as pages and settings have always stored
them), the presets that ship with the app by ``"preset:" + name``, so a user style may share a preset's name.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QMessageBox, QPushButton, QSizePolicy, QWidget

from desktop.workers import readable_error
from engine.handwriting.styles import (
    PRESET_PREFIX,
    Style,
    StyleError,
    check_text,
    delete_style,
    list_presets,
    list_styles,
    load_named_style,
    load_preset,
    normalise_strokes,
    save_named_style,
    style_path,
)
from engine.handwriting.writer import HandwritingWriter, Prime

NO_STYLE = "No style (model's own)"
PRESET_SUFFIX = " (preset)"
TOOLTIP_ROLE = Qt.ItemDataRole.ToolTipRole


def preset_key(name: str) -> str:
    return PRESET_PREFIX + name


def is_preset(key: str) -> bool:
    return key.startswith(PRESET_PREFIX)


def style_label(key: str) -> str:
    """How a style is shown: presets are marked, so they are never mistaken for the user's own."""
    return key[len(PRESET_PREFIX) :] + PRESET_SUFFIX if is_preset(key) else key


class StyleLibrary(QObject):
    """Saved styles on disk (engine.paths.data_dir()/styles); ``changed(name)`` after a save or delete."""

    changed = Signal(str)

    def names(self) -> list[str]:
        try:
            return list_styles()
        except OSError:
            return []

    def presets(self) -> list[str]:
        """Keys of the preset styles that ship with the app (read-only)."""
        try:
            return [preset_key(name) for name in list_presets()]
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

    def prime(self, key: str, writer: HandwritingWriter) -> Prime:
        """The prime of a style (a preset or a saved one) for the loaded model; StyleError (readable) when it
        cannot be used."""
        try:
            style = load_preset(key[len(PRESET_PREFIX) :]) if is_preset(key) else load_named_style(key)
            return style.prime(writer.convention, writer.alphabet)
        except (StyleError, OSError) as exc:
            raise StyleError(f"The style {style_label(key)!r} cannot be used: {readable_error(exc)}") from exc


class StylePicker(QWidget):
    """A combo box of "No style", the presets (marked, when ``presets``) and the saved styles, with a Delete
    button for saved ones; follows the library. Values are style keys (see the module docstring)."""

    style_changed = Signal(str)  # "" for no style
    error = Signal(str)

    def __init__(self, library: StyleLibrary, parent: QWidget | None = None, presets: bool = True) -> None:
        super().__init__(parent)
        self.library = library
        self.with_presets = presets
        self.combo = QComboBox()
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setToolTip("Write in a preset style, one of your saved styles, or the model's own hand.")
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
        """The chosen style's key, "" for none."""
        return str(self.combo.currentData() or "")

    def keys(self) -> list[str]:
        """Every style offered, presets first."""
        return [str(self.combo.itemData(i)) for i in range(1, self.combo.count()) if self.combo.itemData(i)]

    def names(self) -> list[str]:
        """The user's saved styles offered (presets left out)."""
        return [key for key in self.keys() if not is_preset(key)]

    def presets(self) -> list[str]:
        return [key for key in self.keys() if is_preset(key)]

    def select(self, key: str) -> None:
        index = self.combo.findData(key) if key else 0
        self.combo.setCurrentIndex(max(index, 0))

    def refresh(self, select: str | None = None) -> None:
        before = self.current
        keep = before if select is None else select
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(NO_STYLE, "")
        presets = self.library.presets() if self.with_presets else []
        for key in presets:
            self.combo.addItem(style_label(key), key)
            self.combo.setItemData(self.combo.count() - 1, "Ships with Penwright (read-only)", TOOLTIP_ROLE)
        names = self.library.names()
        if presets and names:
            self.combo.insertSeparator(self.combo.count())
        for name in names:
            self.combo.addItem(name, name)
            self.combo.setItemData(self.combo.count() - 1, "Your saved style", TOOLTIP_ROLE)
        index = self.combo.findData(keep) if keep else 0
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(False)
        self._update_delete()
        # a newly saved style chosen (the chosen one saved again: new strokes), or the chosen one gone: listeners
        # follow
        if self.current != before or (select and self.current == select):
            self.style_changed.emit(self.current)

    def delete_current(self) -> None:
        name = self.current
        if not name or is_preset(name) or not self.confirm(name):
            return
        try:
            self.library.delete(name)
        except StyleError as exc:
            self.error.emit(str(exc))

    def _ask(self, name: str) -> bool:
        answer = QMessageBox.question(self, "Delete style", f"Delete the style {name!r}? This cannot be undone.")
        return answer == QMessageBox.StandardButton.Yes

    def _update_delete(self) -> None:
        self.delete_button.setEnabled(bool(self.current) and not is_preset(self.current))

    def _picked(self) -> None:
        self._update_delete()
        self.style_changed.emit(self.current)

    def _library_changed(self, saved: str) -> None:
        # A style just saved is selected: the next Write shows it at once.
        self.refresh(select=saved or None)
