"""The legend: each class's colour (click to change), name with a visibility tick, and share of the pixels.

Classes absent from the shown labels are hidden unless "All classes" is ticked, so a 21-class model's
legend lists what is in the photo. Changes go out as signals; the tab updates the view model.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.segmentation.view_model import RGB, LegendEntry


def swatch(colour: RGB, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class Legend(QWidget):
    visibility_changed = Signal(int, bool)  # class index, visible
    colour_clicked = Signal(int)  # class index: the tab asks for a colour
    reset_colours = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["", "Class", "Pixels"])
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setToolTip("Tick to show a class; click its colour swatch to change it")
        self.table.itemChanged.connect(self._item_changed)
        self.table.cellClicked.connect(self._cell_clicked)
        self.all_classes = QCheckBox("All classes")
        self.all_classes.setToolTip("Also list the classes not found in this photo")
        self.all_classes.toggled.connect(self._apply_row_visibility)
        reset = QPushButton("Reset colours")
        reset.clicked.connect(self.reset_colours)
        row = QHBoxLayout()
        row.addWidget(self.all_classes)
        row.addStretch(1)
        row.addWidget(reset)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(row)
        self._entries: list[LegendEntry] = []
        self._filling = False

    def set_entries(self, entries: list[LegendEntry]) -> None:
        """Refill from the view model (colours, ticks and shares); keeps the scroll position."""
        self._filling = True
        self._entries = entries
        if self.table.rowCount() != len(entries):
            self.table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            colour = self._item(row, 0)
            colour.setIcon(swatch(entry.colour))
            colour.setToolTip(f"{entry.name}: RGB {entry.colour}; click to change")
            colour.setFlags(Qt.ItemFlag.ItemIsEnabled)
            name = self._item(row, 1)
            name.setText(entry.name)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            name.setCheckState(Qt.CheckState.Checked if entry.visible else Qt.CheckState.Unchecked)
            name.setData(Qt.ItemDataRole.UserRole, entry.index)
            share = self._item(row, 2)
            share.setText(f"{100 * entry.share:.1f} %")
            share.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            share.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self._filling = False
        self._apply_row_visibility()

    def _item(self, row: int, column: int) -> QTableWidgetItem:
        item = self.table.item(row, column)
        if item is None:
            item = QTableWidgetItem()
            self.table.setItem(row, column, item)
        return item

    def _apply_row_visibility(self) -> None:
        for row, entry in enumerate(self._entries):
            self.table.setRowHidden(row, not (self.all_classes.isChecked() or entry.share > 0))

    def shown_names(self) -> list[str]:
        """The class names listed now (for tests and the status line)."""
        return [e.name for row, e in enumerate(self._entries) if not self.table.isRowHidden(row)]

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 1:
            return
        index = int(item.data(Qt.ItemDataRole.UserRole))
        self.visibility_changed.emit(index, item.checkState() == Qt.CheckState.Checked)

    def _cell_clicked(self, row: int, column: int) -> None:
        if column == 0 and row < len(self._entries):
            self.colour_clicked.emit(self._entries[row].index)

    def set_visible(self, index: int, visible: bool) -> None:
        """Tick or untick a class as a user would (emits visibility_changed)."""
        for row, entry in enumerate(self._entries):
            if entry.index == index:
                item = self.table.item(row, 1)
                item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
