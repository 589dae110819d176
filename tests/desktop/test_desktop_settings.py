"""Settings persist (in a per-test ini file): backend and device reload the model; bias, seed, style, geometry."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from desktop import settings
from desktop.handwriting_tab import HandwritingTab
from desktop.main_window import MainWindow


def test_settings_go_to_the_test_ini_file(settings_dir) -> None:
    settings.write("model/backend", "torch")
    assert settings.settings().format() == QSettings.Format.IniFormat
    assert settings.settings().fileName().startswith(str(settings_dir))
    assert settings.runtime() == ("torch", "auto")


def test_unknown_stored_values_fall_back_to_defaults() -> None:
    settings.write("model/backend", "tensorflow")
    settings.write("write/seed", "many")
    assert settings.runtime() == ("auto", "auto")
    assert settings.read("write/seed", 1, int) == 1


def test_bias_seed_and_style_survive_a_restart(qtbot, tab, tiny_synthesis_model) -> None:
    tab.bias_slider.setValue(140)
    tab.seed_spin.setValue(4242)
    assert tab.match_check.isChecked()  # matching a style's proportions is on until the user turns it off
    tab.match_check.setChecked(False)
    tab.shutdown()
    again = HandwritingTab(tiny_synthesis_model)
    qtbot.addWidget(again)
    assert again.bias == 1.4 and again.seed_spin.value() == 4242 and again.style_name == ""
    assert not again.match_check.isChecked()  # stored as the text "false" in the ini file
    again.shutdown()


def test_first_start_writes_in_the_neat_preset_and_a_saved_choice_wins(qtbot) -> None:
    from desktop.handwriting_tab import DEFAULT_STYLE

    first = HandwritingTab()  # the shipped model: it writes the preset's text
    qtbot.addWidget(first)
    qtbot.waitUntil(lambda: first.model_ready, timeout=20000)
    assert first.style_name == DEFAULT_STYLE == "preset:Penwright neat"
    first.style_picker.select("")  # the user picks the model's own hand
    first.shutdown()
    again = HandwritingTab()
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.model_ready, timeout=20000)
    assert again.style_name == ""
    again.shutdown()


def test_a_model_that_cannot_write_the_default_preset_starts_without_a_style(tab) -> None:
    # the tiny test model knows a few letters only: the default preset would be an error, so no style is chosen
    assert tab.style_name == "" and tab.status_kind != "error"


def test_status_names_the_backend_and_device(tab) -> None:
    assert "PyTorch, CPU (cpu)" in tab.status_text
    assert "PyTorch" in tab.model_label.text()


def test_settings_dialog_saves_and_reloads_the_model(qtbot, tiny_synthesis_model) -> None:
    window = MainWindow(tiny_synthesis_model)
    qtbot.addWidget(window)
    tab = window.handwriting
    qtbot.waitUntil(lambda: tab.model_ready, timeout=20000)
    first = tab.writer
    dialog = window.show_settings()
    dialog.backend_box.setCurrentIndex(dialog.backend_box.findData("torch"))
    dialog.device_box.setCurrentIndex(dialog.device_box.findData("cpu"))
    dialog.accept()
    assert settings.runtime() == ("torch", "cpu")
    qtbot.waitUntil(lambda: tab.model_ready, timeout=20000)
    assert tab.writer is not first and (tab.backend, tab.device) == ("torch", "cpu")
    window.close()


def test_unchanged_settings_do_not_reload(qtbot, tab) -> None:
    writer = tab.writer
    tab.set_runtime(tab.backend, tab.device)
    assert tab.writer is writer and not tab.busy


def test_onnx_without_an_export_says_so(qtbot, tiny_synthesis_model) -> None:
    settings.write("model/backend", "onnx")
    widget = HandwritingTab(tiny_synthesis_model)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.status_kind == "error", timeout=20000)
    assert widget.status_text.startswith("Could not load the handwriting model") and not widget.model_ready
    widget.shutdown()


def restart(qtbot, window, tmp_path) -> MainWindow:
    window.close()
    again = MainWindow(tmp_path / "no-model.npz")
    qtbot.addWidget(again)
    again.show()
    return again


def test_window_geometry_survives_a_restart(qtbot, tmp_path) -> None:
    window = MainWindow(tmp_path / "no-model.npz")
    qtbot.addWidget(window)
    window.show()
    # Not below the window's minimum (the tabs set it), and within the offscreen screen as far as that allows.
    size = (max(760, window.minimumSizeHint().width()), 520)
    window.resize(*size)
    again = restart(qtbot, window, tmp_path)
    assert (again.width(), again.height()) == size
    again.close()


def test_open_insight_docks_survive_a_restart(qtbot, tmp_path) -> None:
    window = MainWindow(tmp_path / "no-model.npz")
    qtbot.addWidget(window)
    window.show()
    window.attention_dock.show()
    again = restart(qtbot, window, tmp_path)
    assert again.attention_dock.isVisible() and not again.density_dock.isVisible()
    again.close()
