"""Pictures of the real window's Segmentation tab for the docs (overlay, split compare, CRF panel).

    xvfb-run -s "-screen 0 1400x900x24" python -m desktop.segmentation.screenshot \\
        --install ../shared/models/espnetv2/espnetv2_s_2.0_pascal_384x384.pth docs/

writes docs/segmentation-overlay.png, docs/segmentation-compare.png and docs/segmentation-crf.png. User data
and settings go to a temporary folder (the checkpoint is installed there), so nothing of yours is touched.
Kept beside the tab so the pictures can be remade whenever it changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from desktop.event_wait import wait_until


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the PNGs")
    parser.add_argument("--install", help="a segmentation checkpoint to install into the temporary data folder")
    parser.add_argument("--size", default="1360x820", help="window size WxH")
    args = parser.parse_args(argv)
    data = tempfile.mkdtemp(prefix="penwright-screenshot-")
    os.environ["PENWRIGHT_DATA_DIR"] = data
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, data)
    if args.install:
        from engine.segmentation.install import install_from_file

        install_from_file(args.install)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Penwright")
    from desktop.main_window import MainWindow

    window = MainWindow()
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    tab = window.segmentation
    window.tabs.setCurrentWidget(tab)
    wait_until(app, lambda: tab.photo is not None and not tab.busy, 30)
    tab.segment()
    wait_until(app, lambda: tab.model.has_result and not tab.busy, 300)
    if not tab.model.has_result:
        print(f"could not segment: {tab.status_text}")
        return 1
    out = Path(args.folder)
    out.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        wait_until(app, lambda: False, 0.4)  # let the last repaint land
        path = out / f"segmentation-{name}.png"
        ok = window.grab().save(str(path))
        print(f"{'wrote' if ok else 'could not write'} {path}: {tab.status_text} | {tab.hover_label.text()}")

    canvas = tab.canvas

    def hover(x: float, y: float) -> None:
        canvas.hovered.emit(x, y)

    hover(230, 170)
    shot("overlay")
    tab.compare.set_view("split")
    canvas.divider.setPos(canvas.photo_rect.width() * 0.52, 0)
    hover(300, 120)
    shot("compare")
    tab.compare.set_view("crf")
    panel = tab.crf_panel
    panel.iterations.setValue(5)
    panel.theta_beta.setValue(8)
    panel.bilateral_weight.setValue(8)
    panel.flush()
    wait_until(app, lambda: not tab.busy, 120)
    tab.contours.setChecked(True)
    if "cat" in tab.model.classes:
        tab.set_class_colour(tab.model.classes.index("cat"), (255, 214, 0))  # a user's colour, kept in settings
    tab.compare.slider.setValue(2)
    hover(200, 150)
    shot("crf")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
