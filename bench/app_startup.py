"""Start-up time of the app: from process start to a usable main window, in fresh processes.

    python bench/app_startup.py [--runs 5]            # offscreen; under xvfb-run: QT_QPA_PLATFORM=xcb

"Usable" is the first turn of the event loop after the window was shown (it has painted and answers input);
the handwriting model keeps loading in the background, and the time until Write is enabled is reported too.
Each run is a new Python process (nothing cached in memory), with settings and user data in a temporary folder.
Last line: ``window_s=<median> model_ready_s=<median> runs=<n>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, sys, time
from desktop.selftest import process_age
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
QSettings.setDefaultFormat(QSettings.Format.IniFormat)
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, os.environ["PENWRIGHT_DATA_DIR"])
app = QApplication(sys.argv[:1])
from desktop.main_window import MainWindow
window = MainWindow()
window.show()
times = {}
def usable():
    times["window_s"] = process_age()
def poll():
    if window.handwriting.model_ready:
        times["model_ready_s"] = process_age()
        print(json.dumps(times), flush=True)
        window.close()
        app.quit()
    else:
        QTimer.singleShot(10, poll)
QTimer.singleShot(0, usable)
QTimer.singleShot(0, poll)
app.exec()
"""


def one_run() -> dict:
    with tempfile.TemporaryDirectory(prefix="penwright-startup-") as folder:
        env = dict(os.environ, PENWRIGHT_DATA_DIR=folder, PENWRIGHT_CACHE_DIR=folder)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"the app did not start: {out.stderr[-2000:]}")
        return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    runs = [one_run() for _ in range(args.runs)]
    for i, run in enumerate(runs, 1):
        print(f"run {i}: usable window {run['window_s']:.2f} s, model ready {run['model_ready_s']:.2f} s")
    window = statistics.median(r["window_s"] for r in runs)
    model = statistics.median(r["model_ready_s"] for r in runs)
    print(f"window_s={window:.2f} model_ready_s={model:.2f} runs={len(runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
