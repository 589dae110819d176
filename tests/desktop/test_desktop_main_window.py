"""The window around the tabs: tabs, menus, About, and `penwright` opening it."""

from __future__ import annotations

import platform

from desktop_helpers import write_and_wait
from PySide6.QtCore import QTimer, qVersion
from PySide6.QtWidgets import QApplication

from desktop.app import MODEL_ENV, run_app
from desktop.main_window import MainWindow
from engine import __version__


def test_window_has_a_handwriting_tab_and_export_follows_results(qtbot, tiny_synthesis_model) -> None:
    window = MainWindow(tiny_synthesis_model)
    qtbot.addWidget(window)
    window.show()
    assert window.windowTitle() == "Penwright"
    assert window.tabs.tabText(0) == "Handwriting"
    qtbot.waitUntil(lambda: window.handwriting.model_ready, timeout=20000)
    assert not window.export_action.isEnabled()
    write_and_wait(qtbot, window.handwriting, "abc")
    assert window.export_action.isEnabled()
    window.close()


def test_about_lists_versions_and_licences(qtbot, tmp_path) -> None:
    window = MainWindow(tmp_path / "no-model.npz")
    qtbot.addWidget(window)
    dialog = window.show_about()
    text = dialog.text.text()
    for needle in (
        f"Penwright {__version__}",
        qVersion(),
        platform.python_version(),
        "IAM-OnDB",
        "non-commercial research",
        "M. Liwicki and H. Bunke",
        "ICDAR",
        "LGPLv3",
    ):
        assert needle in text, needle
    dialog.close()
    window.close()


def test_run_app_opens_the_window_and_returns_when_it_closes(qtbot, monkeypatch, tiny_synthesis_model) -> None:
    monkeypatch.setenv(MODEL_ENV, str(tiny_synthesis_model))
    seen: dict[str, object] = {}
    deadline = [40]

    def close_when_ready() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].handwriting.model_ready:
            seen["status"] = windows[0].handwriting.status_text
            windows[0].close()
        elif deadline[0] > 0:
            deadline[0] -= 1
            QTimer.singleShot(250, close_when_ready)
        else:
            QApplication.quit()

    QTimer.singleShot(100, close_when_ready)
    assert run_app() == 0
    assert QApplication.applicationName() == "Penwright"
    assert str(seen.get("status", "")).startswith("Model ready")
