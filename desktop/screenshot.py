"""Save a picture of the main window having written some text, or of the pen canvas, for the docs.

The README's pictures (PENWRIGHT_SYNTHESIS_MODEL=model.npz writes with another synthesis model):

    xvfb-run -s "-screen 0 1280x800x24" python -m desktop.screenshot --style "preset:Penwright neat" --bias 1 \\
        --seed 5 --text "Penwright writes in your style\\nthe quick brown fox jumps" docs/app-handwriting.png
    xvfb-run -s "-screen 0 1280x800x24" python -m desktop.screenshot --canvas docs/app-pen-canvas.png
    xvfb-run -s "-screen 0 1280x800x24" python -m desktop.screenshot --prediction --size 1120x420 \\
        docs/app-prediction.png
    xvfb-run -s "-screen 0 1600x900x24" python -m desktop.screenshot --insight attention --size 1560x760 \\
        --style "preset:Penwright neat" --bias 1 --seed 2 --text "Penwright writes by hand" docs/app-insight.png
    (--insight density for docs/app-density.png)
    xvfb-run -s "-screen 0 1280x800x24" python -m desktop.screenshot --dream --style "preset:Penwright neat" \\
        --seed 5 --text "" docs/app-dream.png      # PENWRIGHT_TEXT_MODEL=FILE.npz: another text model

User data (styles, the canvas autosave, settings) goes to a temporary folder, so a screenshot never touches yours.

Kept beside the app so the picture can be remade whenever the window changes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from desktop.app import MODEL_ENV
from desktop.event_wait import wait_until
from desktop.main_window import MainWindow
from desktop.pen_canvas import BASELINE, GUIDE_LETTER_HEIGHT, X_HEIGHT
from engine.handwriting.style_metrics import letter_height
from engine.handwriting.styles import load_preset

SAMPLE = "Penwright writes by hand\nthe quick brown fox jumps"
TEXT_MODEL_ENV = "PENWRIGHT_TEXT_MODEL"  # a text model for --dream instead of the one the settings choose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="PNG file to write")
    parser.add_argument("--text", default=SAMPLE, help="text to write (\\n separates lines)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--bias", type=float, help="neatness (default: the app's)")
    parser.add_argument("--size", default="1120x680", help="window size WxH")
    parser.add_argument("--canvas", action="store_true", help="show the My handwriting tab with demo ink")
    parser.add_argument("--insight", choices=("attention", "density"), help="open this insight plot beside the page")
    parser.add_argument("--style", default="", help='write in this style (a preset: "preset:NAME")')
    parser.add_argument(
        "--prediction", action="store_true", help="the My handwriting tab with ink and the prediction heat map"
    )
    parser.add_argument(
        "--dream", action="store_true", help="press Dream; the picture is taken while the handwriting streams"
    )
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
    wait_until(app, lambda: tab.model_ready or tab.status_kind == "error", 120)
    if args.canvas:
        show_canvas(window)
    elif args.prediction:
        show_prediction(window)
        prediction = window.my_handwriting.prediction
        wait_until(app, lambda: window.my_handwriting.canvas.heatmap is not None, 120)
        wait_until(app, lambda: not prediction.runner.busy, 60)
    elif tab.model_ready:
        if args.insight:
            (window.attention_dock if args.insight == "attention" else window.density_dock).show()
        tab.style_picker.select(args.style)
        if args.bias is not None:
            tab.bias_slider.setValue(round(args.bias * 100))
        tab.text_edit.setPlainText(args.text.replace("\\n", "\n"))
        tab.seed_spin.setValue(args.seed)
        if args.dream:
            text_model = os.environ.get(TEXT_MODEL_ENV)
            tab.text_model_path = Path(text_model) if text_model else None
            tab.dream()
            # the text is complete and the first lines are being written: both halves on one picture
            wait_until(app, lambda: not tab.busy or tab.view.updates_received > 40, 300)
        else:
            tab.write()
            wait_until(app, lambda: not tab.busy, 300)
    wait_until(app, lambda: False, 0.3)  # let the last repaint land
    ok = window.grab().save(args.output)
    status = window.my_handwriting.status_text if args.prediction else tab.status_text
    print(f"{'wrote' if ok else 'could not write'} {args.output}: {status}")
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


def preset_ink(name: str = "Penwright neat", width: float = 1000.0) -> tuple[list[list[tuple]], str]:
    """A preset's strokes on the canvas's guides, up to about ``width`` pixels: ink that looks written, part-way."""
    style = load_preset(name)
    xy = [np.asarray(s, float)[:, :2] for s in style.strokes]
    band = letter_height(xy)
    scale = GUIDE_LETTER_HEIGHT / band
    every = np.concatenate(xy)
    baseline = np.median(every[:, 1]) + 0.5 * band  # the band's lower edge: about the baseline
    left = every[:, 0].min()
    ink = []
    for points in xy:
        placed = np.column_stack([40 + (points[:, 0] - left) * scale, BASELINE + (points[:, 1] - baseline) * scale])
        if placed[:, 0].max() > width:
            break
        ink.append([(x, y, 0.01 * i, 0.55) for i, (x, y) in enumerate(placed.tolist())])
    return ink, style.text


def show_prediction(window: MainWindow) -> None:
    """The My handwriting tab part-way through a line, with the prediction heat map on."""
    panel = window.my_handwriting
    window.tabs.setCurrentWidget(panel)
    ink, _ = preset_ink(width=0.75 * panel.canvas.width())
    panel.canvas.set_strokes(ink)
    panel.prediction_check.setChecked(True)


if __name__ == "__main__":
    sys.exit(main())
