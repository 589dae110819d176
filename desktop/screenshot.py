"""Save a picture of the main window having written some text, for the docs.

    PENWRIGHT_SYNTHESIS_MODEL=model.npz xvfb-run -s "-screen 0 1280x800x24" \
        python -m desktop.screenshot docs/app-handwriting.png

Kept beside the app so the picture can be remade whenever the window changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

from desktop.app import MODEL_ENV
from desktop.main_window import MainWindow

SAMPLE = "Penwright writes by hand\nthe quick brown fox jumps"


def _wait(app: QApplication, done: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    return done()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="PNG file to write")
    parser.add_argument("--text", default=SAMPLE, help="text to write (\\n separates lines)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--size", default="1120x680", help="window size WxH")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Penwright")
    window = MainWindow(os.environ.get(MODEL_ENV) or None)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    tab = window.handwriting
    _wait(app, lambda: tab.model_ready or tab.status_kind == "error", 120)
    if tab.model_ready:
        tab.text_edit.setPlainText(args.text.replace("\\n", "\n"))
        tab.seed_spin.setValue(args.seed)
        tab.write()
        _wait(app, lambda: not tab.busy, 300)
    _wait(app, lambda: False, 0.3)  # let the last repaint land
    ok = window.grab().save(args.output)
    print(f"{'wrote' if ok else 'could not write'} {args.output}: {tab.status_text}")
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
