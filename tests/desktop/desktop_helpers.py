"""Helpers for the desktop tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations


def write_and_wait(qtbot, tab, text: str, timeout: int = 20000) -> None:
    """Type ``text``, click Write, wait for the job to end (finished or failed)."""
    from PySide6.QtCore import Qt

    tab.text_edit.setPlainText(text)
    qtbot.mouseClick(tab.write_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.busy, timeout=timeout)


def loops(x0: float, count: int, y0: float = 120.0, height: float = 30.0) -> list[tuple[float, float]]:
    """A cursive-looking word: ``count`` loops along the baseline ``y0`` (y down, canvas pixels)."""
    import numpy as np

    t = np.linspace(0, 2 * np.pi * count, 24 * count)
    x = x0 + 14 * t / np.pi - 9 * np.sin(t)
    y = y0 - height / 2 + height / 2 * np.cos(t)
    return [(float(a), float(b)) for a, b in zip(x, y, strict=True)]


LINE_WORDS = [loops(40, 3), loops(200, 3)]  # two words: about right for the text "abc cab"


def tablet_device(eraser: bool = False):
    """A pen (or its eraser end) as Qt describes tablet tools; kept alive by the caller."""
    from PySide6.QtGui import QInputDevice, QPointingDevice

    caps = QInputDevice.Capability.Position | QInputDevice.Capability.Pressure
    kind = QPointingDevice.PointerType.Eraser if eraser else QPointingDevice.PointerType.Pen
    return QPointingDevice("test pen", 7 + eraser, QInputDevice.DeviceType.Stylus, kind, caps, 1, 2)


def tablet_stroke(widget, device, points, pressures) -> None:
    """Press, move and release a tablet tool along ``points`` with the given pressures."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QTabletEvent
    from PySide6.QtWidgets import QApplication

    last = len(points) - 1
    for i, ((x, y), pressure) in enumerate(zip(points, pressures, strict=True)):
        kind = QEvent.Type.TabletPress if i == 0 else QEvent.Type.TabletRelease if i == last else QEvent.Type.TabletMove
        button = Qt.MouseButton.LeftButton if kind != QEvent.Type.TabletMove else Qt.MouseButton.NoButton
        buttons = Qt.MouseButton.NoButton if i == last else Qt.MouseButton.LeftButton
        pos = QPointF(x, y)
        event = QTabletEvent(
            kind, device, pos, widget.mapToGlobal(pos), pressure, 0, 0, 0, 0, 0,
            Qt.KeyboardModifier.NoModifier, button, buttons,
        )  # fmt: skip
        QApplication.sendEvent(widget, event)


def mouse_stroke(widget, points, device=None) -> None:
    """Press, drag and release the left mouse button along ``points`` (``device``: who Qt says sent it)."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent, QPointingDevice
    from PySide6.QtWidgets import QApplication

    device = device or QPointingDevice.primaryPointingDevice()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    last = len(points) - 1
    for i, (x, y) in enumerate(points):
        if i == 0:
            kind, button, buttons = QEvent.Type.MouseButtonPress, left, left
        elif i == last:
            kind, button, buttons = QEvent.Type.MouseButtonRelease, left, none
        else:
            kind, button, buttons = QEvent.Type.MouseMove, none, left
        pos = QPointF(x, y)
        event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier, device)
        QApplication.sendEvent(widget, event)
