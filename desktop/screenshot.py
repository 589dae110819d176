"""Save a picture of the main window having written some text, or of the pen canvas, for the docs.

    PENWRIGHT_SYNTHESIS_MODEL=model.npz xvfb-run -s "-screen 0 1280x800x24" \
        python -m desktop.screenshot docs/app-handwriting.png
    xvfb-run -s "-screen 0 1280x800x24" python -m desktop.screenshot --canvas docs/app-pen-canvas.png
    PENWRIGHT_SYNTHESIS_MODEL=model.npz xvfb-run -s "-screen 0 1600x900x24" \
        python -m desktop.screenshot --insight attention --size 1560x760 docs/app-insight.png

User data (styles, the canvas autosave, settings) goes to a temporary folder, so a screenshot never touches yours.

Kept beside the app so the picture can be remade whenever the window changes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable

from PySide6.QtCore import QEventLoop, QSettings
from PySide6.QtWidgets import QApplication

from desktop.app import MODEL_ENV
from desktop.main_window import MainWindow
from desktop.pen_canvas import BASELINE, X_HEIGHT

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
    parser.add_argument("--canvas", action="store_true", help="show the My handwriting tab with demo ink")
    parser.add_argument("--insight", choices=("attention", "density"), help="open this insight plot beside the page")
    args = parser.parse_args(argv)
    os.environ["PENWRIGHT_DATA_DIR"] = tempfile.mkdtemp(prefix="penwright-screenshot-")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)  # settings too: the picture uses the defaults
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, os.environ["PENWRIGHT_DATA_DIR"])
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Penwright")
    window = MainWindow(os.environ.get(MODEL_ENV) or None)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    tab = window.handwriting
    _wait(app, lambda: tab.model_ready or tab.status_kind == "error", 120)
    if args.canvas:
        show_canvas(window)
    elif tab.model_ready:
        if args.insight:
            (window.attention_dock if args.insight == "attention" else window.density_dock).show()
        tab.text_edit.setPlainText(args.text.replace("\\n", "\n"))
        tab.seed_spin.setValue(args.seed)
        tab.write()
        _wait(app, lambda: not tab.busy, 300)
    _wait(app, lambda: False, 0.3)  # let the last repaint land
    ok = window.grab().save(args.output)
    print(f"{'wrote' if ok else 'could not write'} {args.output}: {tab.status_text}")
    window.close()
    return 0 if ok else 1


def demo_line(words: str = "lel elle", baseline: float = BASELINE, x_height: float = X_HEIGHT) -> list[list[tuple]]:
    """Loopy cursive made up for the picture: 'l' a tall loop, 'e' a small one, pressure swelling on downstrokes."""
    strokes, x, clock = [], 40.0, 0.0
    for word in words.split():
        stroke = []
        for letter in word:
            height = 2.2 * x_height if letter == "l" else x_height
            for i in range(40):
                t = 2 * math.pi * i / 40
                px = x + 30 * t / (2 * math.pi) + 11 * math.sin(t) * (height / x_height) ** 0.5
                py = baseline - height * (1 - math.cos(t)) / 2
                pressure = 0.45 + 0.35 * math.sin(t)
                stroke.append((px, py, clock, pressure))
                clock += 0.005
            x += 30
        strokes.append(stroke)
        x += 46
        clock += 0.3
    return strokes


def show_canvas(window: MainWindow) -> None:
    """The My handwriting tab with demo ink on the canvas and two saved styles in the picker."""
    panel = window.my_handwriting
    window.tabs.setCurrentWidget(panel)
    panel.canvas.set_strokes(demo_line())
    panel.text_edit.setText("lel elle")
    for name in ("Everyday hand", "Slow and neat"):
        panel.name_edit.setText(name)
        panel.save_style()
    panel.picker.select("Everyday hand")


if __name__ == "__main__":
    sys.exit(main())
