"""Waiting on the Qt event loop in scripts (screenshots, the self-test) while the app's workers report."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication


def wait_until(app: QApplication, done: Callable[[], bool], seconds: float) -> bool:
    """Run the event loop until ``done()`` or ``seconds`` pass; returns ``done()``."""
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    return done()
