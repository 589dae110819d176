"""Page setup: paper size (A4, A5, Letter or custom), margins, line spacing and letter height, in mm or inches.

Edits an engine :class:`~engine.handwriting.page.PageGeometry` (always millimetres inside); the engine checks
that the values work together and its message is shown in the dialog, so a page that cannot be written is
never accepted. The chosen unit is remembered in the settings.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from desktop import settings
from engine.handwriting.page import MM_PER_INCH, PAGE_SIZES, PageError, PageGeometry

UNITS = {"mm": 1.0, "in": MM_PER_INCH}
SIZE_NAMES = {"a4": "A4", "a5": "A5", "letter": "Letter"}
CUSTOM = "custom"
MARGIN_SIDES = ("Top", "Right", "Bottom", "Left")


def size_name(geometry: PageGeometry) -> str:
    """ "a4", "letter", ... (portrait or landscape) or "custom"."""
    for key, (w, h) in PAGE_SIZES.items():
        if {round(geometry.width, 1), round(geometry.height, 1)} == {round(w, 1), round(h, 1)}:
            return key
    return CUSTOM


def describe(geometry: PageGeometry, unit: str = "mm") -> str:
    """A one-line summary for the studio: "A4, margins 20 mm, letters 3.5 mm, lines 10 mm apart"."""
    k = UNITS[unit]
    name = size_name(geometry)
    paper = SIZE_NAMES.get(name) or f"{geometry.width / k:g} × {geometry.height / k:g} {unit}"
    if name != CUSTOM and geometry.width > geometry.height:
        paper += " landscape"
    margins = {round(m / k, 2) for m in geometry.margins}
    margin = f"{margins.pop():g} {unit}" if len(margins) == 1 else "mixed"
    return (
        f"{paper}, margins {margin}, letters {geometry.letter_height / k:.3g} {unit}, "
        f"lines {geometry.line_spacing / k:.3g} {unit} apart"
    )


def saved_unit() -> str:
    unit = settings.read("page/unit", "mm")
    return unit if unit in UNITS else "mm"


class PageSetupDialog(QDialog):
    """The page's paper, margins and writing size; ``geometry`` is the result once accepted."""

    def __init__(self, geometry: PageGeometry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Page setup")
        self.geometry_value = geometry
        self._unit = saved_unit()
        self.size_box = QComboBox()
        for key, label in SIZE_NAMES.items():
            self.size_box.addItem(label, key)
        self.size_box.addItem("Custom", CUSTOM)
        self.unit_box = QComboBox()
        self.unit_box.addItem("Millimetres", "mm")
        self.unit_box.addItem("Inches", "in")
        self.width_spin, self.height_spin = self._spin(), self._spin()
        self.margin_spins = [self._spin(0.0) for _ in MARGIN_SIDES]
        self.spacing_spin, self.letter_spin = self._spin(), self._spin()
        self.letter_spin.setToolTip("The height of a small letter such as 'x'; capitals and loops reach higher.")
        self.spacing_spin.setToolTip("From one line's baseline to the next.")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #8f1515;")

        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        margin_row = QHBoxLayout()
        for side, spin in zip(MARGIN_SIDES, self.margin_spins, strict=True):
            spin.setToolTip(f"{side} margin")
            margin_row.addWidget(spin)
        form = QFormLayout()
        form.addRow("Paper", self.size_box)
        form.addRow("Width × height", size_row)
        form.addRow("Margins (top, right, bottom, left)", margin_row)
        form.addRow("Line spacing", self.spacing_spin)
        form.addRow("Letter height", self.letter_spin)
        form.addRow("Units", self.unit_box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self.unit_box.setCurrentIndex(self.unit_box.findData(self._unit))
        self._show(geometry)
        self.size_box.currentIndexChanged.connect(self._size_picked)
        self.unit_box.currentIndexChanged.connect(self._unit_picked)
        for spin in (self.width_spin, self.height_spin, *self.margin_spins, self.spacing_spin, self.letter_spin):
            spin.valueChanged.connect(self._check)
        self._check()

    @staticmethod
    def _spin(minimum: float = 0.01) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(minimum, 5000.0)
        spin.setDecimals(2)
        spin.setKeyboardTracking(False)
        return spin

    @property
    def unit(self) -> str:
        return self._unit

    def _show(self, geometry: PageGeometry) -> None:
        k = UNITS[self._unit]
        spins = (self.width_spin, self.height_spin, *self.margin_spins, self.spacing_spin, self.letter_spin)
        values = (geometry.width, geometry.height, *geometry.margins, geometry.line_spacing, geometry.letter_height)
        for spin, value in zip(spins, values, strict=True):
            spin.blockSignals(True)
            spin.setSuffix(f" {self._unit}")
            spin.setSingleStep(1.0 if self._unit == "mm" else 0.05)
            spin.setValue(value / k)
            spin.blockSignals(False)
        self.size_box.blockSignals(True)
        self.size_box.setCurrentIndex(self.size_box.findData(size_name(geometry)))
        self.size_box.blockSignals(False)
        custom = size_name(geometry) == CUSTOM
        self.width_spin.setEnabled(custom)
        self.height_spin.setEnabled(custom)

    def read(self) -> PageGeometry:
        """The geometry the fields describe (PageError when the values do not work together)."""
        k = UNITS[self._unit]
        return PageGeometry(
            self.width_spin.value() * k,
            self.height_spin.value() * k,
            tuple(spin.value() * k for spin in self.margin_spins),
            self.spacing_spin.value() * k,
            self.letter_spin.value() * k,
        )

    def _size_picked(self) -> None:
        key = self.size_box.currentData()
        custom = key == CUSTOM
        self.width_spin.setEnabled(custom)
        self.height_spin.setEnabled(custom)
        if not custom:
            k = UNITS[self._unit]
            width, height = PAGE_SIZES[key]
            for spin, value in ((self.width_spin, width), (self.height_spin, height)):
                spin.blockSignals(True)
                spin.setValue(value / k)
                spin.blockSignals(False)
        self._check()

    def _unit_picked(self) -> None:
        try:
            geometry = self.read()
        except PageError:
            geometry = self.geometry_value
        self._unit = self.unit_box.currentData()
        self._show(geometry)
        self._check()

    def _check(self) -> None:
        try:
            self.read()
        except PageError as exc:
            self.error_label.setText(str(exc)[:1].upper() + str(exc)[1:] + ".")
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            return
        self.error_label.setText("")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)

    def accept(self) -> None:
        try:
            self.geometry_value = self.read()
        except PageError:
            return
        settings.write("page/unit", self._unit)
        super().accept()
