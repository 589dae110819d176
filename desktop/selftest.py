"""`penwright --selftest`: a quick check that an installed or frozen Penwright works, without a display.

It checks, in order: that the app imports without torch; that the shipped synthesis model loads with the ONNX
Runtime backend (when the synthesis model is not shipped, the prediction model's ONNX is loaded instead and the
synthesis model is reported missing); that one short line is written and rendered to a PNG in a temporary
folder; that the main window opens and closes. It measures the time to a usable window, prints a short
report and returns 0 on success, 1 with the reasons on failure. User settings and data are redirected to the
temporary folder, so a self-test never touches them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SELFTEST_TEXT = "Penwright self-test"
WINDOW_TARGET_S = 3.0  # the release target for a usable window, from process start


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class Report:
    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout
        self.failures: list[str] = []

    def line(self, status: str, name: str, detail: str = "") -> None:
        print(f"  [{status:>4}] {name}{': ' + detail if detail else ''}", file=self.out, flush=True)

    def check(self, name: str, func: Callable[[], str]) -> object:
        try:
            detail = func()
        except Exception as exc:  # a self-test reports every failure rather than stopping at the first
            self.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            self.line("FAIL", name, f"{type(exc).__name__}: {exc}")
            return None
        self.line("ok", name, detail or "")
        return detail


def _check_no_torch() -> str:
    import desktop.main_window  # noqa: F401  (the whole app's import graph)
    import engine.backends.onnx_backend  # noqa: F401
    import engine.handwriting.writer  # noqa: F401

    if "torch" in sys.modules:
        raise AssertionError("torch was imported by the app's ONNX-only code path")
    return "app modules imported; torch not loaded"


def run_selftest(scope: str = "basic", out=None) -> int:
    """The self-test; ``scope`` "all" also segments the sample photo (when a segmentation model is installed)."""
    started = time.perf_counter()
    age_at_start = process_age()
    report = Report(out)
    p = report.out
    tmp = Path(tempfile.mkdtemp(prefix="penwright-selftest-"))
    # Keep the real user's folders and settings out of it (set before anything reads them).
    os.environ.setdefault("PENWRIGHT_DATA_DIR", str(tmp / "data"))
    os.environ.setdefault("PENWRIGHT_CACHE_DIR", str(tmp / "cache"))
    # Always offscreen: the window is opened and closed, never shown to anyone (and CI has no display).
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from engine import __version__

    frozen = bool(getattr(sys, "frozen", False))
    print(
        f"penwright {__version__} self-test ({'frozen' if frozen else 'Python'} {sys.version.split()[0]}, "
        f"{sys.platform}, QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')})",
        file=p,
        flush=True,
    )

    report.check("imports without torch", _check_no_torch)

    state: dict = {}

    def load_model() -> str:
        from engine.handwriting.writer import HandwritingWriter, shipped_model_path

        synthesis = shipped_model_path("synthesis")
        if synthesis.exists() and synthesis.with_suffix(".onnx").exists():
            t = time.perf_counter()
            writer = HandwritingWriter.load(synthesis, backend="onnx")
            state["writer"] = writer
            return f"{synthesis.name} with {writer.backend_description} in {time.perf_counter() - t:.2f} s"
        from engine.handwriting.checkpoint import load_model_file
        from engine.handwriting.writer import make_stepper

        prediction = shipped_model_path("prediction")
        t = time.perf_counter()
        model = load_model_file(prediction)
        stepper = make_stepper(model, "onnx", "cpu", prediction)
        state["prediction"] = (model, stepper)
        state["synthesis_missing"] = synthesis.name
        return (
            f"synthesis model MISSING ({synthesis.name} not shipped); loaded {prediction.name} with "
            f"{stepper.description} in {time.perf_counter() - t:.2f} s"
        )

    report.check("shipped model (ONNX backend)", load_model)

    def write_line() -> str:
        t = time.perf_counter()
        if "writer" in state:
            writer = state["writer"]
            text = SELFTEST_TEXT
            if writer.alphabet.unknown(text):  # a model with a small alphabet (a test model): its own letters
                known = "".join(c for c in text if c in writer.alphabet).strip()
                text = known or "".join(c for c in writer.alphabet.characters if c.isalnum())[:6]
            lines = writer.write([text], bias=1.0, seed=1)
            strokes = lines[0].strokes
            what = f"wrote {text!r}"
        elif "prediction" in state:
            strokes = _predict_strokes(*state["prediction"])
            what = "drew 120 pen steps with the prediction model (no text: synthesis model missing)"
        else:
            raise RuntimeError("no model loaded")
        points = sum(len(s) for s in strokes)
        if points < 2:
            raise RuntimeError("the model produced no strokes")
        from engine.formats.png import write_png

        png = tmp / "selftest.png"
        write_png(png, [strokes])
        if not png.exists() or png.stat().st_size < 100 or png.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise RuntimeError(f"{png} was not written as a PNG")
        return f"{what}, {points} points, {png} ({png.stat().st_size} bytes) in {time.perf_counter() - t:.2f} s"

    report.check("write and render a line", write_line)

    def open_window() -> str:
        from PySide6.QtCore import QCoreApplication, QSettings
        from PySide6.QtWidgets import QApplication

        from desktop.app import binding_drops_none_references

        if binding_drops_none_references():
            import PySide6

            raise RuntimeError(f"PySide6 {PySide6.__version__} drops references to None on this Python")
        # Settings go to the temporary folder too (the main window saves its geometry on closing).
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
        app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "penwright"])
        QCoreApplication.setApplicationName("Penwright")
        t = time.perf_counter()
        from desktop.main_window import MainWindow

        window = MainWindow(os.environ.get("PENWRIGHT_SYNTHESIS_MODEL") or None)
        window.show()
        app.processEvents()
        shown = time.perf_counter()
        if not window.isVisible():
            raise RuntimeError("the main window did not show")
        # Wait (briefly) for the background model load to settle, so its outcome can be reported.
        deadline = shown + 20.0
        tab = window.handwriting
        while time.perf_counter() < deadline and tab.writer is None and "could not" not in tab.model_label.text():
            app.processEvents()
            time.sleep(0.01)
        loaded = tab.writer is not None
        window.close()
        app.processEvents()
        window.deleteLater()
        app.processEvents()
        state["window_s"] = (age_at_start + (shown - started)) if age_at_start is not None else shown - started
        state["window_from"] = "process start" if age_at_start is not None else "self-test start"
        model_note = (
            "window's model loaded"
            if loaded
            else f"window's model not loaded ({tab.model_label.text()})"
            if "synthesis_missing" in state
            else None
        )
        if model_note is None:
            raise RuntimeError(f"the window could not load its model: {tab.model_label.text()}")
        return (
            f"shown in {shown - t:.2f} s (construct + first paint), usable {state['window_s']:.2f} s after "
            f"{state['window_from']} (the checks above included); {model_note}; closed"
        )

    report.check("main window opens and closes", open_window)

    if scope == "all":
        from desktop.segmentation.selftest_check import check_segmentation

        check_segmentation(report, tmp)
    if "synthesis_missing" in state:
        report.line("note", "synthesis model", f"{state['synthesis_missing']} is not shipped in this build")
    total = time.perf_counter() - started
    if "window_s" in state:
        slow = state["window_s"] > WINDOW_TARGET_S
        report.line(
            "slow" if slow else "ok",
            "time to a usable window",
            f"{state['window_s']:.2f} s from {state['window_from']} (target {WINDOW_TARGET_S:.0f} s)",
        )
    if not os.environ.get("PENWRIGHT_SELFTEST_KEEP"):  # set it to keep the PNG and settings for a look
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if report.failures:
        print(f"self-test FAILED in {total:.2f} s:", file=p)
        for reason in report.failures:
            print(f"  - {reason}", file=p)
        return 1
    print(f"self-test passed in {total:.2f} s", file=p, flush=True)
    return 0


def _predict_strokes(model, stepper, steps: int = 120):
    """Unconditional pen steps from the prediction network (what runs when no synthesis model is shipped)."""
    import numpy as np

    from engine.handwriting.preprocessing import Normalizer
    from engine.handwriting.sampling import draw, mixture_params
    from engine.handwriting.writer import offsets_to_strokes

    rng = np.random.default_rng(1)
    normalizer = Normalizer.from_dict(model.meta["normalizer"])
    state = stepper.start(np.zeros((1, 1), np.int64))
    x = np.zeros((1, 3), np.float32)
    out = []
    for _ in range(steps):
        y, _, state = stepper.step(x, state)
        x = draw(mixture_params(y, stepper.mixtures, bias=1.0), rng)
        out.append(x[0])
    return offsets_to_strokes(normalizer.denormalize(np.array(out)))
