"""Helpers for the desktop tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations


def write_and_wait(qtbot, tab, text: str, timeout: int = 20000) -> None:
    """Type ``text``, click Write, wait for the job to end (finished or failed)."""
    from PySide6.QtCore import Qt

    tab.text_edit.setPlainText(text)
    qtbot.mouseClick(tab.write_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.busy, timeout=timeout)
