"""Start the desktop app (what `penwright` with no arguments runs)."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QObject

from engine import __version__

MODEL_ENV = "PENWRIGHT_SYNTHESIS_MODEL"  # a synthesis model to use instead of the shipped one


def binding_drops_none_references() -> bool:
    """True where the Qt binding releases a reference to None it never took (PySide6 6.12.0 on Python 3.11).

    Each void Qt call then lowers None's reference count; after a few thousand calls Python aborts with
    "deallocating None". Probing is cheaper than guessing versions, and on Python 3.12+ None is immortal.
    """
    if sys.version_info >= (3, 12):
        return False
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(20):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before - 10


def run_app(argv: list[str] | None = None) -> int:
    """Create (or reuse) the QApplication, show the main window and run the event loop until it closes."""
    from PySide6.QtWidgets import QApplication

    from desktop.main_window import MainWindow

    if binding_drops_none_references():
        import PySide6

        print(
            f"penwright: PySide6 {PySide6.__version__} has a reference-counting bug on Python "
            f"{sys.version_info.major}.{sys.version_info.minor} that crashes the app; install another version, "
            'e.g. pip install "PySide6-Essentials<6.12", or use Python 3.12 or newer',
            file=sys.stderr,
        )
        return 1
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("Penwright")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("Penwright")
    window = MainWindow(os.environ.get(MODEL_ENV) or None)
    window.show()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(run_app())
